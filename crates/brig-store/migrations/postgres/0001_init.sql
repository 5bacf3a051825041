-- Brig's store, PostgreSQL flavour. Same logical schema as ../sqlite and ../mysql:
-- times are unix milliseconds, ids short hex strings, JSON is TEXT, sealed values are BYTEA.

CREATE TABLE tenants (
    id               TEXT    NOT NULL PRIMARY KEY,
    name             TEXT    NOT NULL UNIQUE,
    plan             TEXT    NOT NULL,
    anonymous_compat BOOLEAN NOT NULL DEFAULT FALSE,
    created_at_ms    BIGINT  NOT NULL
);

CREATE TABLE api_keys (
    id              TEXT    NOT NULL PRIMARY KEY,
    tenant_id       TEXT    NOT NULL REFERENCES tenants (id),
    key_hash        TEXT    NOT NULL UNIQUE,
    prefix          TEXT    NOT NULL,
    admin           BOOLEAN NOT NULL,
    created_at_ms   BIGINT  NOT NULL,
    revoked_at_ms   BIGINT,
    last_used_at_ms BIGINT
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

CREATE TABLE sessions (
    id             TEXT   NOT NULL PRIMARY KEY,
    tenant_id      TEXT   NOT NULL REFERENCES tenants (id),
    node_id        TEXT   NOT NULL,
    template       TEXT   NOT NULL,
    status         TEXT   NOT NULL,
    end_reason     TEXT,
    metadata       TEXT   NOT NULL,
    ttl_s          BIGINT NOT NULL,
    idle_timeout_s BIGINT NOT NULL,
    created_at_ms  BIGINT NOT NULL,
    ended_at_ms    BIGINT
);
CREATE INDEX sessions_tenant ON sessions (tenant_id, created_at_ms);
CREATE INDEX sessions_node_status ON sessions (node_id, status);

CREATE TABLE executions (
    id                TEXT   NOT NULL PRIMARY KEY,
    tenant_id         TEXT   NOT NULL REFERENCES tenants (id),
    session_id        TEXT,
    node_id           TEXT   NOT NULL,
    language          TEXT   NOT NULL,
    code_enc          BYTEA  NOT NULL,
    code_sha256       TEXT   NOT NULL,
    status            TEXT   NOT NULL,
    created_at_ms     BIGINT NOT NULL,
    started_at_ms     BIGINT,
    finished_at_ms    BIGINT,
    wall_ms           BIGINT,
    cpu_ms            BIGINT,
    memory_peak_bytes BIGINT,
    result_enc        BYTEA
);
CREATE INDEX executions_tenant ON executions (tenant_id, id);
CREATE INDEX executions_node_status ON executions (node_id, status);
CREATE INDEX executions_session ON executions (session_id);

CREATE TABLE idempotency (
    tenant_id     TEXT   NOT NULL,
    key_hash      TEXT   NOT NULL,
    request_hash  TEXT   NOT NULL,
    status        BIGINT NOT NULL,
    body_enc      BYTEA  NOT NULL,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, key_hash)
);
CREATE INDEX idempotency_created ON idempotency (created_at_ms);

CREATE TABLE audit_events (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_ms             BIGINT NOT NULL,
    tenant_id         TEXT,
    key_id            TEXT,
    action            TEXT   NOT NULL,
    session_id        TEXT,
    execution_id      TEXT,
    language          TEXT,
    code_sha256       TEXT,
    status            TEXT,
    http_status       BIGINT,
    wall_ms           BIGINT,
    cpu_ms            BIGINT,
    memory_peak_bytes BIGINT,
    client_addr       TEXT,
    detail            TEXT   NOT NULL
);
CREATE INDEX audit_tenant_at ON audit_events (tenant_id, at_ms);
CREATE INDEX audit_at ON audit_events (at_ms);
