-- sqlite: webhooks (keep in step with the other backend)
-- Subscriptions, the transactional outbox of their deliveries (written in the transaction of
-- the event that causes them) and the log of every attempt.
CREATE TABLE webhook_subscriptions (
    id TEXT PRIMARY KEY NOT NULL,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    systems TEXT,
    scope TEXT,
    payload TEXT NOT NULL,
    secret TEXT NOT NULL,
    previous_secret TEXT,
    previous_secret_until TIMESTAMP,
    state TEXT NOT NULL,
    paused_reason TEXT,
    paused_at TIMESTAMP,
    failing_since TIMESTAMP,
    description TEXT,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    version BIGINT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY NOT NULL,
    subscription_id TEXT NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    event_id TEXT NOT NULL,
    system_id TEXT NOT NULL,
    event_seq BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    lease_owner TEXT,
    lease_until TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    last_attempt_at TIMESTAMP,
    last_status INTEGER,
    last_error TEXT,
    delivered_at TIMESTAMP
);

-- The queue: per subscription and system, the pending delivery of the lowest chain position.
CREATE INDEX webhook_deliveries_queue ON webhook_deliveries (state, subscription_id, system_id, event_seq);
-- A subscription's delivery log, newest first.
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (subscription_id, id);

CREATE TABLE webhook_attempts (
    id TEXT PRIMARY KEY NOT NULL,
    delivery_id TEXT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    n INTEGER NOT NULL,
    at TIMESTAMP NOT NULL,
    status INTEGER,
    latency_ms BIGINT NOT NULL,
    error TEXT,
    response_excerpt TEXT,
    instance TEXT NOT NULL
);

CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, n);
