-- Safe retries: the first response to each (caller, Idempotency-Key) of a POST, kept 24 hours.
-- Keep in step with the other backend's folder: a test compares the two.
CREATE TABLE idempotency_keys (
    actor      TEXT NOT NULL,
    idem_key   TEXT NOT NULL,
    path       TEXT NOT NULL,
    body_hash  TEXT,                       -- SHA-256 of the request content, once known
    status     INTEGER NOT NULL,           -- 0 while the first request runs
    headers    TEXT NOT NULL,              -- JSON: the response headers a replay repeats
    body       BLOB,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (actor, idem_key)
);
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);
