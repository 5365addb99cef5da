-- What the first request of a key was authorized for (JSON: the permissions its handler
-- required, the system it touched, the caller's scope), so a replay re-checks them.
-- NULL on rows recorded before: a replay of one of those asks for every permission and scope.
-- Keep in step with the other backend's folder: a test compares the two.
ALTER TABLE idempotency_keys ADD COLUMN grants TEXT;
