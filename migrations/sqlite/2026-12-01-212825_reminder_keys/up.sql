-- sqlite: reminder_keys (keep in step with the other backend)
-- Time-driven events already emitted, one row per (system, key): the scheduler inserts the key
-- and appends the history event in one transaction, so an event is emitted once across
-- restarts and instances (a second insert of the key is a no-op).
CREATE TABLE reminder_keys (
    system_id TEXT NOT NULL REFERENCES systems (id),
    key TEXT NOT NULL,
    emitted_at TIMESTAMP NOT NULL,
    PRIMARY KEY (system_id, key)
);
