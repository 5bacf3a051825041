-- The nodes sharing this database: where each answers, and when it last said it was alive.
-- A request for a session another node holds is forwarded to that node's `url`.
CREATE TABLE nodes (
    id           VARCHAR(64)   NOT NULL PRIMARY KEY,
    url          VARCHAR(1024) NOT NULL,
    last_seen_ms BIGINT        NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
