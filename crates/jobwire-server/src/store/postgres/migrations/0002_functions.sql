-- Every write of a job is one statement in its own transaction, one round trip: the
-- locks it takes (the key's, the tenant's, the event counter's row) are held for the
-- function and its commit only, not across round trips.

-- Takes ids for the events from the counter, records them and notifies the listeners at
-- commit; returns the last id (NULL for no events). Called last in its transaction: the
-- counter row stays locked until commit, which is what puts ids in commit order.
CREATE FUNCTION jobwire_record_events(
    p_tenant text, p_job_ids text[], p_service_ids text[], p_kinds text[], p_data text[],
    p_created_at text[]
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint := coalesce(array_length(p_kinds, 1), 0);
    v_last bigint;
BEGIN
    IF n = 0 THEN
        RETURN NULL;
    END IF;
    UPDATE event_counter SET last = last + n RETURNING last INTO v_last;
    INSERT INTO events (seq, tenant, job_id, service_id, kind, data, created_at)
    SELECT v_last - n + e.ord, p_tenant, e.job_id, e.service_id, e.kind, e.data, e.created_at
    FROM unnest(p_job_ids, p_service_ids, p_kinds, p_data, p_created_at)
        WITH ORDINALITY AS e (job_id, service_id, kind, data, created_at, ord);
    PERFORM pg_notify('jobwire_events', v_last::text);
    RETURN v_last;
END $$;

-- A new job, its key and its events, or nothing: 'key_taken' (with what the key was
-- used for) or 'at_limit'.
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
                      lease_until)
    VALUES (p_id, p_tenant, p_service_id, p_status, p_labels::jsonb, p_body, p_finished_at,
            p_owner, now() + p_lease * interval '1 second');
    IF p_key IS NOT NULL THEN
        INSERT INTO idempotency_keys (tenant, key, fingerprint, job_id, created_at)
        VALUES (p_tenant, p_key, p_fingerprint, p_id, p_created_at);
    END IF;
    RETURN QUERY SELECT 'stored',
        jobwire_record_events(p_tenant, p_job_ids, p_service_ids, p_kinds, p_data,
                              p_event_times),
        NULL::text, NULL::text, NULL::integer;
END $$;

-- Compare-and-set of a job and its events: false (nothing written) when the job is not
-- in the expected state, or (no owner given) held by anyone.
CREATE FUNCTION jobwire_update_job(
    p_tenant text, p_id text, p_status text, p_body text, p_finished_at text,
    p_labels text, p_expected text, p_owner text, p_job_ids text[], p_service_ids text[],
    p_kinds text[], p_data text[], p_event_times text[]
) RETURNS TABLE (o_changed boolean, o_last bigint) LANGUAGE plpgsql AS $$
BEGIN
    -- The row lock it takes also holds off a concurrent claim until commit.
    UPDATE jobs j SET status = p_status, body = p_body, finished_at = p_finished_at,
                      labels = p_labels::jsonb
    WHERE j.id = p_id AND j.tenant = p_tenant AND j.status = p_expected
      AND (p_owner IS NULL OR j.owner = p_owner);
    IF NOT FOUND THEN
        RETURN QUERY SELECT false, NULL::bigint;
        RETURN;
    END IF;
    RETURN QUERY SELECT true, jobwire_record_events(p_tenant, p_job_ids, p_service_ids,
                                                    p_kinds, p_data, p_event_times);
END $$;

-- Events of a job still in the expected state; false (nothing written) otherwise. FOR
-- SHARE: a peer's change of the job (a cancel) waits for this commit, so nothing is
-- recorded after the `done` it records.
CREATE FUNCTION jobwire_append_events(
    p_tenant text, p_id text, p_expected text, p_owner text, p_job_ids text[],
    p_service_ids text[], p_kinds text[], p_data text[], p_event_times text[]
) RETURNS TABLE (o_held boolean, o_last bigint) LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM jobs j
    WHERE j.id = p_id AND j.tenant = p_tenant AND j.status = p_expected
      AND (p_owner IS NULL OR j.owner = p_owner)
    FOR SHARE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT false, NULL::bigint;
        RETURN;
    END IF;
    RETURN QUERY SELECT true, jobwire_record_events(p_tenant, p_job_ids, p_service_ids,
                                                    p_kinds, p_data, p_event_times);
END $$;
