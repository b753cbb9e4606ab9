CREATE TABLE services (
    seq    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id     text NOT NULL UNIQUE,
    tenant text,
    name   text NOT NULL,
    body   text NOT NULL
);
CREATE INDEX services_name ON services (name);

CREATE TABLE jobs (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          text NOT NULL UNIQUE,
    tenant      text NOT NULL,
    service_id  text NOT NULL,
    status      text NOT NULL,
    labels      jsonb NOT NULL DEFAULT '{}',
    body        text NOT NULL,
    finished_at text COLLATE "C",
    events_kept boolean NOT NULL DEFAULT true,
    owner       text NOT NULL,
    lease_until timestamptz NOT NULL
);
CREATE INDEX jobs_tenant_seq ON jobs (tenant, seq);
CREATE INDEX jobs_labels ON jobs USING gin (labels jsonb_path_ops);
-- The per-tenant limit counts these; lease renewal and orphan claims scan them.
CREATE INDEX jobs_unfinished_tenant ON jobs (tenant) WHERE status IN ('queued', 'running');
CREATE INDEX jobs_unfinished_owner ON jobs (owner) WHERE status IN ('queued', 'running');
CREATE INDEX jobs_unfinished_lease ON jobs (lease_until, seq)
    WHERE status IN ('queued', 'running');
CREATE INDEX jobs_prunable ON jobs (finished_at) WHERE events_kept;

CREATE TABLE events (
    seq        bigint PRIMARY KEY,
    tenant     text NOT NULL,
    job_id     text NOT NULL,
    service_id text NOT NULL,
    kind       text NOT NULL,
    data       text NOT NULL,
    created_at text COLLATE "C" NOT NULL
);
CREATE INDEX events_tenant_seq ON events (tenant, seq);
CREATE INDEX events_job_seq ON events (job_id, seq);

-- The last event id given out; only grows (pruning never touches it).
CREATE TABLE event_counter (
    id   boolean PRIMARY KEY DEFAULT true CHECK (id),
    last bigint NOT NULL
);
INSERT INTO event_counter (last) VALUES (0);

CREATE TABLE event_floors (
    tenant text PRIMARY KEY,
    seq    bigint NOT NULL
);

CREATE TABLE idempotency_keys (
    tenant      text NOT NULL,
    key         text NOT NULL,
    fingerprint text NOT NULL,
    job_id      text NOT NULL,
    status      integer,
    created_at  text COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
