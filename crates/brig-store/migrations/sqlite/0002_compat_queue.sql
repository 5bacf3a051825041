-- The persisted queue of the compatibility APIs (Judge0 `wait=false` submissions).
-- `compat_request_enc`: the validated compatibility request (sealed like code: it holds the
-- source and stdin), kept for the life of the row so the submission can be shown in the API's
-- own shape. `from_queue`: a queued row that any node's queue worker may claim and run; it
-- stays queued across a restart (see `Store::recover_node`).
ALTER TABLE executions ADD COLUMN compat_request_enc BLOB;
ALTER TABLE executions ADD COLUMN from_queue BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX executions_queue ON executions (status, from_queue, created_at_ms);
