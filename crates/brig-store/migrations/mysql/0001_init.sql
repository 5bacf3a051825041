-- Brig's store, MariaDB/MySQL flavour. Same logical schema as ../sqlite and ../postgres:
-- times are unix milliseconds, ids short hex strings, JSON is text, sealed values are LONGBLOBs.
-- Indexed text needs a length here; utf8mb4_bin compares like SQLite and PostgreSQL do
-- (case- and accent-sensitive), so a tenant name unique here is unique everywhere.

CREATE TABLE tenants (
    id               VARCHAR(64)  NOT NULL PRIMARY KEY,
    name             VARCHAR(255) NOT NULL,
    plan             VARCHAR(255) NOT NULL,
    anonymous_compat BOOLEAN      NOT NULL DEFAULT FALSE,
    created_at_ms    BIGINT       NOT NULL,
    UNIQUE KEY tenants_name (name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE api_keys (
    id              VARCHAR(64) NOT NULL PRIMARY KEY,
    tenant_id       VARCHAR(64) NOT NULL,
    key_hash        CHAR(64)    NOT NULL,
    prefix          VARCHAR(64) NOT NULL,
    admin           BOOLEAN     NOT NULL,
    created_at_ms   BIGINT      NOT NULL,
    revoked_at_ms   BIGINT,
    last_used_at_ms BIGINT,
    UNIQUE KEY api_keys_hash (key_hash),
    KEY api_keys_tenant (tenant_id),
    CONSTRAINT api_keys_tenant_fk FOREIGN KEY (tenant_id) REFERENCES tenants (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE sessions (
    id             VARCHAR(64)  NOT NULL PRIMARY KEY,
    tenant_id      VARCHAR(64)  NOT NULL,
    node_id        VARCHAR(255) NOT NULL,
    template       VARCHAR(255) NOT NULL,
    status         VARCHAR(32)  NOT NULL,
    end_reason     TEXT,
    metadata       MEDIUMTEXT   NOT NULL,
    ttl_s          BIGINT       NOT NULL,
    idle_timeout_s BIGINT       NOT NULL,
    created_at_ms  BIGINT       NOT NULL,
    ended_at_ms    BIGINT,
    KEY sessions_tenant (tenant_id, created_at_ms),
    KEY sessions_node_status (node_id, status),
    CONSTRAINT sessions_tenant_fk FOREIGN KEY (tenant_id) REFERENCES tenants (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE executions (
    id                VARCHAR(64)  NOT NULL PRIMARY KEY,
    tenant_id         VARCHAR(64)  NOT NULL,
    session_id        VARCHAR(64),
    node_id           VARCHAR(255) NOT NULL,
    language          VARCHAR(64)  NOT NULL,
    code_enc          LONGBLOB     NOT NULL,
    code_sha256       CHAR(64)     NOT NULL,
    status            VARCHAR(32)  NOT NULL,
    created_at_ms     BIGINT       NOT NULL,
    started_at_ms     BIGINT,
    finished_at_ms    BIGINT,
    wall_ms           BIGINT,
    cpu_ms            BIGINT,
    memory_peak_bytes BIGINT,
    result_enc        LONGBLOB,
    KEY executions_tenant (tenant_id, id),
    KEY executions_node_status (node_id, status),
    KEY executions_session (session_id),
    CONSTRAINT executions_tenant_fk FOREIGN KEY (tenant_id) REFERENCES tenants (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE idempotency (
    tenant_id     VARCHAR(64) NOT NULL,
    key_hash      CHAR(64)    NOT NULL,
    request_hash  VARCHAR(255) NOT NULL,
    status        BIGINT      NOT NULL,
    body_enc      LONGBLOB    NOT NULL,
    created_at_ms BIGINT      NOT NULL,
    PRIMARY KEY (tenant_id, key_hash),
    KEY idempotency_created (created_at_ms)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE audit_events (
    id                BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    at_ms             BIGINT      NOT NULL,
    tenant_id         VARCHAR(64),
    key_id            VARCHAR(64),
    action            VARCHAR(64) NOT NULL,
    session_id        VARCHAR(64),
    execution_id      VARCHAR(64),
    language          VARCHAR(64),
    code_sha256       CHAR(64),
    status            VARCHAR(32),
    http_status       BIGINT,
    wall_ms           BIGINT,
    cpu_ms            BIGINT,
    memory_peak_bytes BIGINT,
    client_addr       VARCHAR(255),
    detail            MEDIUMTEXT  NOT NULL,
    KEY audit_tenant_at (tenant_id, at_ms),
    KEY audit_at (at_ms)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
