-- A job whose handler finished within its submit is stored once, already finished, and
-- its idempotency key with the status of the answer (`p_key_status`), in the same
-- transaction: no second write records it. Otherwise as in 0005.
DROP FUNCTION jobwire_insert_job(text, text, text, text, text, text, text, text, float8,
    bigint, text, text, text, text[], text[], text[], text[], text[]);
CREATE FUNCTION jobwire_insert_job(
    p_tenant text, p_id text, p_service_id text, p_status text, p_labels text, p_body text,
    p_finished_at text, p_owner text, p_lease float8, p_max bigint, p_key text,
    p_fingerprint text, p_created_at text, p_job_ids text[], p_service_ids text[],
    p_kinds text[], p_data text[], p_event_times text[], p_key_status integer
) RETURNS TABLE (o_outcome text, o_pos bigint[], o_fingerprint text, o_job_id text,
                 o_status integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_unfinished bigint;
BEGIN
    IF p_key IS NOT NULL THEN
        -- Inserts with the same key queue here, so the second sees the first's key.
        PERFORM pg_advisory_xact_lock(jobwire_key_lock(p_tenant, p_key));
        RETURN QUERY SELECT 'key_taken', NULL::bigint[], k.fingerprint, k.job_id, k.status
            FROM idempotency_keys k WHERE k.tenant = p_tenant AND k.key = p_key;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;
    -- The tenant's inserts queue here, so two servers cannot both pass the count.
    -- (Finishing a job only lowers it, so updates need not take the lock.)
    PERFORM pg_advisory_xact_lock(jobwire_tenant_lock(p_tenant));
    SELECT count(*) INTO v_unfinished FROM (
        SELECT 1 FROM jobs j
        WHERE j.tenant = p_tenant AND j.status IN ('queued', 'running') LIMIT p_max) u;
    IF v_unfinished >= p_max THEN
        RETURN QUERY SELECT 'at_limit', NULL::bigint[], NULL::text, NULL::text,
            NULL::integer;
        RETURN;
    END IF;
    INSERT INTO jobs (id, tenant, service_id, status, labels, body, finished_at, owner,
                      lease_until, bytes)
    VALUES (p_id, p_tenant, p_service_id, p_status, p_labels::jsonb, p_body, p_finished_at,
            p_owner, now() + p_lease * interval '1 second', octet_length(p_body));
    IF p_key IS NOT NULL THEN
        INSERT INTO idempotency_keys (tenant, key, fingerprint, job_id, created_at, status)
        VALUES (p_tenant, p_key, p_fingerprint, p_id, p_created_at, p_key_status);
    END IF;
    RETURN QUERY SELECT 'stored',
        jobwire_record_events(p_tenant, p_job_ids, p_service_ids, p_kinds, p_data,
                              p_event_times),
        NULL::text, NULL::text, NULL::integer;
END $$;

-- Plans made for each call: a plan cached while the table looked empty counted the
-- tenant's unfinished jobs by reading all its jobs (`jobs_tenant_seq`), thousands of
-- index entries per insert, for the life of the connection.
ALTER FUNCTION jobwire_insert_job(text, text, text, text, text, text, text, text, float8,
    bigint, text, text, text, text[], text[], text[], text[], text[], integer)
    SET plan_cache_mode = force_custom_plan;
