-- Brig's store, SQLite flavour. Same logical schema as ../mysql and ../postgres:
-- times are unix milliseconds, ids short hex strings, JSON is TEXT, sealed values are BLOBs.

CREATE TABLE tenants (
    id               TEXT    NOT NULL PRIMARY KEY,
    name             TEXT    NOT NULL UNIQUE,
    plan             TEXT    NOT NULL,
    anonymous_compat BOOLEAN NOT NULL DEFAULT FALSE,
    created_at_ms    INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id              TEXT    NOT NULL PRIMARY KEY,
    tenant_id       TEXT    NOT NULL REFERENCES tenants (id),
    key_hash        TEXT    NOT NULL UNIQUE, -- SHA-256 of the secret, hex; never the secret
    prefix          TEXT    NOT NULL,
    admin           BOOLEAN NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    revoked_at_ms   INTEGER,
    last_used_at_ms INTEGER
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

CREATE TABLE sessions (
    id             TEXT    NOT NULL PRIMARY KEY,
    tenant_id      TEXT    NOT NULL REFERENCES tenants (id),
    node_id        TEXT    NOT NULL,
    template       TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    end_reason     TEXT,
    metadata       TEXT    NOT NULL,
    ttl_s          INTEGER NOT NULL,
    idle_timeout_s INTEGER NOT NULL,
    created_at_ms  INTEGER NOT NULL,
    ended_at_ms    INTEGER
);
CREATE INDEX sessions_tenant ON sessions (tenant_id, created_at_ms);
CREATE INDEX sessions_node_status ON sessions (node_id, status);

CREATE TABLE executions (
    id                TEXT    NOT NULL PRIMARY KEY,
    tenant_id         TEXT    NOT NULL REFERENCES tenants (id),
    session_id        TEXT,
    node_id           TEXT    NOT NULL,
    language          TEXT    NOT NULL,
    code_enc          BLOB    NOT NULL, -- sealed (see src/crypto.rs)
    code_sha256       TEXT    NOT NULL,
    status            TEXT    NOT NULL,
    created_at_ms     INTEGER NOT NULL,
    started_at_ms     INTEGER,
    finished_at_ms    INTEGER,
    wall_ms           INTEGER,
    cpu_ms            INTEGER,
    memory_peak_bytes INTEGER,
    result_enc        BLOB              -- sealed result JSON
);
CREATE INDEX executions_tenant ON executions (tenant_id, id);
CREATE INDEX executions_node_status ON executions (node_id, status);
CREATE INDEX executions_session ON executions (session_id);

CREATE TABLE idempotency (
    tenant_id     TEXT    NOT NULL,
    key_hash      TEXT    NOT NULL, -- SHA-256 of the Idempotency-Key header, hex
    request_hash  TEXT    NOT NULL,
    status        INTEGER NOT NULL,
    body_enc      BLOB    NOT NULL, -- sealed response body
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, key_hash)
);
CREATE INDEX idempotency_created ON idempotency (created_at_ms);

CREATE TABLE audit_events (
    id                INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    at_ms             INTEGER NOT NULL,
    tenant_id         TEXT,
    key_id            TEXT,
    action            TEXT    NOT NULL,
    session_id        TEXT,
    execution_id      TEXT,
    language          TEXT,
    code_sha256       TEXT,
    status            TEXT,
    http_status       INTEGER,
    wall_ms           INTEGER,
    cpu_ms            INTEGER,
    memory_peak_bytes INTEGER,
    client_addr       TEXT,
    detail            TEXT    NOT NULL
);
CREATE INDEX audit_tenant_at ON audit_events (tenant_id, at_ms);
CREATE INDEX audit_at ON audit_events (at_ms);
