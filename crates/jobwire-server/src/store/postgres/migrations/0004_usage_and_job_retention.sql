-- Stored bytes: each job's own (its body), and per tenant the sum of its jobs' and
-- events' text. Writes add to the per-tenant sums through each server's ledger, which
-- flushes its deltas about once a second (see `usage.rs`): a counter row updated by
-- every job would queue every write of a tenant behind the last one's commit.
ALTER TABLE jobs ADD COLUMN bytes bigint NOT NULL DEFAULT 0;
UPDATE jobs SET bytes = octet_length(body);
CREATE TABLE tenant_usage (
    tenant text PRIMARY KEY,
    bytes  bigint NOT NULL
);
INSERT INTO tenant_usage (tenant, bytes)
    SELECT tenant, sum(b) FROM (
        SELECT tenant, bytes AS b FROM jobs
        UNION ALL
        SELECT tenant, octet_length(data) FROM events) u
    GROUP BY tenant;
-- Retention of finished jobs reads them oldest first.
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;

-- The insert and the compare-and-set keep the job's `bytes`; the update says what the
-- job was charged before, so its server's ledger adds the difference.
DROP FUNCTION jobwire_insert_job(text, text, text, text, text, text, text, text, float8,
    bigint, text, text, text, text[], text[], text[], text[], text[]);
CREATE FUNCTION jobwire_insert_job(
    p_tenant text, p_id text, p_service_id text, p_status text, p_labels text, p_body text,
    p_finished_at text, p_owner text, p_lease float8, p_max bigint, p_key text,
    p_fingerprint text, p_created_at text, p_job_ids text[], p_service_ids text[],
    p_kinds text[], p_data text[], p_event_times text[]
) RETURNS TABLE (o_outcome text, o_last bigint, o_fingerprint text, o_job_id text,
                 o_status integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_unfinished bigint;
BEGIN
    IF p_key IS NOT NULL THEN
        -- Inserts with the same key queue here, so the second sees the first's key.
        PERFORM pg_advisory_xact_lock(hashtextextended(
            'jobwire-key:' || length(p_tenant) || ':' || p_tenant || ':' || p_key, 0));
        RETURN QUERY SELECT 'key_taken', NULL::bigint, k.fingerprint, k.job_id, k.status
            FROM idempotency_keys k WHERE k.tenant = p_tenant AND k.key = p_key;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;
    -- The tenant's inserts queue here, so two servers cannot both pass the count.
    -- (Finishing a job only lowers it, so updates need not take the lock.)
    PERFORM pg_advisory_xact_lock(hashtext('jobwire-tenant:' || p_tenant));
    SELECT count(*) INTO v_unfinished FROM (
        SELECT 1 FROM jobs j
        WHERE j.tenant = p_tenant AND j.status IN ('queued', 'running') LIMIT p_max) u;
    IF v_unfinished >= p_max THEN
        RETURN QUERY SELECT 'at_limit', NULL::bigint, NULL::text, NULL::text, NULL::integer;
        RETURN;
    END IF;
    INSERT INTO jobs (id, tenant, service_id, status, labels, body, finished_at, owner,
                      lease_until, bytes)
    VALUES (p_id, p_tenant, p_service_id, p_status, p_labels::jsonb, p_body, p_finished_at,
            p_owner, now() + p_lease * interval '1 second', octet_length(p_body));
    IF p_key IS NOT NULL THEN
        INSERT INTO idempotency_keys (tenant, key, fingerprint, job_id, created_at)
        VALUES (p_tenant, p_key, p_fingerprint, p_id, p_created_at);
    END IF;
    RETURN QUERY SELECT 'stored',
        jobwire_record_events(p_tenant, p_job_ids, p_service_ids, p_kinds, p_data,
                              p_event_times),
        NULL::text, NULL::text, NULL::integer;
END $$;

DROP FUNCTION jobwire_update_job(text, text, text, text, text, text, text, text, text[],
    text[], text[], text[], text[]);
CREATE FUNCTION jobwire_update_job(
    p_tenant text, p_id text, p_status text, p_body text, p_finished_at text,
    p_labels text, p_expected text, p_owner text, p_job_ids text[], p_service_ids text[],
    p_kinds text[], p_data text[], p_event_times text[]
) RETURNS TABLE (o_changed boolean, o_last bigint, o_was_bytes bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_was bigint;
BEGIN
    -- The row lock the update takes also holds off a concurrent claim until commit; the
    -- FROM reads the row as it was before the update.
    UPDATE jobs j SET status = p_status, body = p_body, finished_at = p_finished_at,
                      labels = p_labels::jsonb, bytes = octet_length(p_body)
    FROM (SELECT o.seq, o.bytes FROM jobs o WHERE o.id = p_id) before
    WHERE j.seq = before.seq AND j.tenant = p_tenant AND j.status = p_expected
      AND (p_owner IS NULL OR j.owner = p_owner)
    RETURNING before.bytes INTO v_was;
    IF NOT FOUND THEN
        RETURN QUERY SELECT false, NULL::bigint, NULL::bigint;
        RETURN;
    END IF;
    RETURN QUERY SELECT true, jobwire_record_events(p_tenant, p_job_ids, p_service_ids,
                                                    p_kinds, p_data, p_event_times), v_was;
END $$;
