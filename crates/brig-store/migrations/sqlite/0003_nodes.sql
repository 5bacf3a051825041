-- The nodes sharing this database: where each answers, and when it last said it was alive.
-- A request for a session another node holds is forwarded to that node's `url`.
CREATE TABLE nodes (
    id           TEXT   NOT NULL PRIMARY KEY,
    url          TEXT   NOT NULL,
    last_seen_ms BIGINT NOT NULL
);
