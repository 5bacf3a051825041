-- The persisted queue of the compatibility APIs (Judge0 `wait=false` submissions); see
-- ../sqlite/0002_compat_queue.sql.
ALTER TABLE executions ADD COLUMN compat_request_enc LONGBLOB;
ALTER TABLE executions ADD COLUMN from_queue BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX executions_queue ON executions (status, from_queue, created_at_ms);
