-- Stored bytes: each job's own (its body), and per tenant the sum of its jobs' and
-- events' text, kept up to date by every write (the quota reads it).
ALTER TABLE jobs ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
UPDATE jobs SET bytes = length(CAST(body AS BLOB));
CREATE TABLE tenant_usage (
    tenant TEXT PRIMARY KEY,
    bytes  INTEGER NOT NULL
);
INSERT INTO tenant_usage (tenant, bytes)
    SELECT tenant, sum(b) FROM (
        SELECT tenant, bytes AS b FROM jobs
        UNION ALL
        SELECT tenant, length(CAST(data AS BLOB)) FROM events)
    GROUP BY tenant;
-- Retention of finished jobs reads them oldest first.
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
