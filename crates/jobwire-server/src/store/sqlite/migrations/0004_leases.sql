-- Leases: the server that runs an unfinished job, and until when (Unix ms); and the
-- per-tenant count of unfinished jobs the insert checks.
ALTER TABLE jobs ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_unfinished ON jobs (tenant, seq) WHERE status IN ('queued', 'running');
