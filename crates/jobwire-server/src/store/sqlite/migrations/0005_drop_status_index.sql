-- The status index costs every job change a write and serves no query the partial
-- index of unfinished jobs and the per-tenant index do not.
DROP INDEX IF EXISTS jobs_status;
