-- Event streams: the service filter, per-job reads, retention and resume floors.
ALTER TABLE events ADD COLUMN service_id TEXT NOT NULL DEFAULT '';
UPDATE events SET service_id = coalesce(
    (SELECT service_id FROM jobs WHERE jobs.id = events.job_id), '');
CREATE INDEX events_job_seq ON events (job_id, seq);
ALTER TABLE jobs ADD COLUMN finished_at TEXT;
ALTER TABLE jobs ADD COLUMN events_kept INTEGER NOT NULL DEFAULT 1;
UPDATE jobs SET finished_at = json_extract(body, '$.finished_at')
    WHERE status IN ('succeeded', 'failed', 'cancelled');
CREATE INDEX jobs_prunable ON jobs (finished_at) WHERE events_kept = 1;
CREATE TABLE event_floors (
    tenant TEXT PRIMARY KEY,
    seq    INTEGER NOT NULL
);
