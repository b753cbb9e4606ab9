-- Events are numbered after commit by one elected sequencer (see the store's module
-- docs), not by a counter row every writer locks until its commit is durable. A writer
-- inserts its events into `event_inbox`, with no id and an insertion key (`pos`); the
-- sequencer moves the events it sees committed from the inbox to `events`, giving them
-- ids in `pos` order, and advances `event_counter.last`, which only it writes now.
-- `events` keeps only numbered events, as before, plus the key they came with (which
-- tells a writer of this process the ids its events got).
CREATE TABLE event_inbox (
    pos        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant     text NOT NULL,
    job_id     text NOT NULL,
    service_id text NOT NULL,
    kind       text NOT NULL,
    data       text NOT NULL,
    created_at text COLLATE "C" NOT NULL
);
-- A vacuum (the sequencer runs one every second or so) must not shorten the file: that
-- takes a lock every writer's insert would queue behind.
ALTER TABLE event_inbox SET (vacuum_truncate = false);
ALTER TABLE events ADD COLUMN pos bigint;

-- Records events with no id yet; returns their insertion keys.
DROP FUNCTION jobwire_record_events(text, text[], text[], text[], text[], text[]);
CREATE FUNCTION jobwire_record_events(
    p_tenant text, p_job_ids text[], p_service_ids text[], p_kinds text[], p_data text[],
    p_created_at text[]
) RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    v_pos bigint[];
BEGIN
    IF coalesce(array_length(p_kinds, 1), 0) = 0 THEN
        RETURN '{}';
    END IF;
    WITH inserted AS (
        INSERT INTO event_inbox (tenant, job_id, service_id, kind, data, created_at)
        SELECT p_tenant, e.job_id, e.service_id, e.kind, e.data, e.created_at
        FROM unnest(p_job_ids, p_service_ids, p_kinds, p_data, p_created_at)
            WITH ORDINALITY AS e (job_id, service_id, kind, data, created_at, ord)
        ORDER BY e.ord
        RETURNING pos)
    SELECT array_agg(pos ORDER BY pos) INTO v_pos FROM inserted;
    RETURN v_pos;
END $$;

-- As in migration 4, with the events' insertion keys for their ids. Outcomes:
-- 'stored', 'key_taken' (with what the key was used for) or 'at_limit'.
DROP FUNCTION jobwire_insert_job(text, text, text, text, text, text, text, text, float8,
    bigint, text, text, text, text[], text[], text[], text[], text[]);
CREATE FUNCTION jobwire_insert_job(
    p_tenant text, p_id text, p_service_id text, p_status text, p_labels text, p_body text,
    p_finished_at text, p_owner text, p_lease float8, p_max bigint, p_key text,
    p_fingerprint text, p_created_at text, p_job_ids text[], p_service_ids text[],
    p_kinds text[], p_data text[], p_event_times text[]
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
        INSERT INTO idempotency_keys (tenant, key, fingerprint, job_id, created_at)
        VALUES (p_tenant, p_key, p_fingerprint, p_id, p_created_at);
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
    bigint, text, text, text, text[], text[], text[], text[], text[])
    SET plan_cache_mode = force_custom_plan;

-- The advisory locks of an insert, as functions: a batch of inserts takes them all
-- first, in one order, so that two batches never wait on each other in a cycle.
CREATE FUNCTION jobwire_key_lock(p_tenant text, p_key text) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT hashtextextended('jobwire-key:' || length(p_tenant) || ':' || p_tenant || ':'
                            || p_key, 0)
$$;
CREATE FUNCTION jobwire_tenant_lock(p_tenant text) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT hashtext('jobwire-tenant:' || p_tenant)::bigint
$$;

DROP FUNCTION jobwire_update_job(text, text, text, text, text, text, text, text, text[],
    text[], text[], text[], text[]);
CREATE FUNCTION jobwire_update_job(
    p_tenant text, p_id text, p_status text, p_body text, p_finished_at text,
    p_labels text, p_expected text, p_owner text, p_job_ids text[], p_service_ids text[],
    p_kinds text[], p_data text[], p_event_times text[]
) RETURNS TABLE (o_changed boolean, o_pos bigint[], o_was_bytes bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_seq bigint;
    v_was bigint;
    v_tenant text;
    v_status text;
    v_owner text;
BEGIN
    -- Found by id alone, the only index the lookup can use, whatever plan is cached
    -- (with the tenant in the condition, a plan cached while the table looked empty
    -- read all the tenant's jobs); checked once locked, as it is then, so the row lock
    -- holds off a concurrent claim until commit.
    SELECT j.seq, j.bytes, j.tenant, j.status, j.owner
    INTO v_seq, v_was, v_tenant, v_status, v_owner
    FROM jobs j WHERE j.id = p_id FOR UPDATE;
    IF FOUND AND v_tenant = p_tenant AND v_status = p_expected
       AND (p_owner IS NULL OR v_owner = p_owner) THEN
        UPDATE jobs SET status = p_status, body = p_body, finished_at = p_finished_at,
                        labels = p_labels::jsonb, bytes = octet_length(p_body)
        WHERE seq = v_seq;
    ELSE
        RETURN QUERY SELECT false, NULL::bigint[], NULL::bigint;
        RETURN;
    END IF;
    RETURN QUERY SELECT true, jobwire_record_events(p_tenant, p_job_ids, p_service_ids,
                                                    p_kinds, p_data, p_event_times), v_was;
END $$;

DROP FUNCTION jobwire_append_events(text, text, text, text, text[], text[], text[],
    text[], text[]);
CREATE FUNCTION jobwire_append_events(
    p_tenant text, p_id text, p_expected text, p_owner text, p_job_ids text[],
    p_service_ids text[], p_kinds text[], p_data text[], p_event_times text[]
) RETURNS TABLE (o_held boolean, o_pos bigint[]) LANGUAGE plpgsql AS $$
DECLARE
    v_tenant text;
    v_status text;
    v_owner text;
BEGIN
    -- By id alone, as in jobwire_update_job.
    SELECT j.tenant, j.status, j.owner INTO v_tenant, v_status, v_owner
    FROM jobs j WHERE j.id = p_id FOR SHARE;
    IF NOT FOUND OR v_tenant <> p_tenant OR v_status <> p_expected
       OR (p_owner IS NOT NULL AND v_owner <> p_owner) THEN
        RETURN QUERY SELECT false, NULL::bigint[];
        RETURN;
    END IF;
    RETURN QUERY SELECT true, jobwire_record_events(p_tenant, p_job_ids, p_service_ids,
                                                    p_kinds, p_data, p_event_times);
END $$;

-- The sequencer's step: moves up to p_limit committed events from the inbox to `events`,
-- numbered in insertion order after the last id given, and tells the listeners. Only
-- the holder of the sequencer's advisory lock calls it; were two sessions to call it at
-- once, the counter row's lock would make the second wait, and its next statement's
-- snapshot would not see what the first moved: nothing numbered twice.
--
-- One range of the inbox's index, read in order, with plans made for the actual limit
-- (the sequencer vacuums the inbox often, so the range holds few dead rows). No JIT:
-- compiling costs tens of milliseconds, running this step well under one.
CREATE FUNCTION jobwire_number_events(p_limit bigint)
RETURNS TABLE (o_numbered bigint, o_last bigint) LANGUAGE plpgsql
SET jit = off SET enable_hashjoin = off SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    v_last bigint;
    v_n bigint;
BEGIN
    SELECT last INTO v_last FROM event_counter FOR UPDATE;
    WITH taken AS (
        DELETE FROM event_inbox WHERE pos <= (
            SELECT max(pos) FROM (SELECT pos FROM event_inbox ORDER BY pos LIMIT p_limit) l)
        RETURNING *)
    INSERT INTO events (seq, tenant, job_id, service_id, kind, data, created_at, pos)
    SELECT v_last + row_number() OVER (ORDER BY t.pos), t.tenant, t.job_id, t.service_id,
           t.kind, t.data, t.created_at, t.pos
    FROM taken t;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    IF v_n > 0 THEN
        UPDATE event_counter SET last = v_last + v_n;
        PERFORM pg_notify('jobwire_events', (v_last + v_n)::text);
    END IF;
    RETURN QUERY SELECT v_n, v_last + v_n;
END $$;
