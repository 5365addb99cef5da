-- Foundation: systems, items (with their control index) and the event history.
-- Portable column types only (TEXT ids and JSON, BIGINT, DOUBLE PRECISION, DATE, TIMESTAMP in
-- UTC), so that one diesel schema serves PostgreSQL and SQLite. Keep in step with
-- migrations/postgres/2026-11-22-000000_foundation: a test compares the two.

CREATE TABLE systems (
    id            TEXT NOT NULL PRIMARY KEY,
    name          TEXT NOT NULL,
    description   TEXT,
    organization  TEXT,
    cage_codes    TEXT NOT NULL,           -- JSON array
    impact_level  TEXT,
    regime        TEXT NOT NULL,
    contacts      TEXT NOT NULL,           -- JSON object
    next_item_seq BIGINT NOT NULL DEFAULT 0,
    event_seq     BIGINT NOT NULL DEFAULT 0, -- the chain head: last event's seq and hash
    event_head    TEXT NOT NULL DEFAULT '0000000000000000000000000000000000000000000000000000000000000000',
    version       BIGINT NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    archived_at   TIMESTAMP
);
CREATE INDEX systems_created_at_idx ON systems (created_at, id);
CREATE INDEX systems_name_idx ON systems (name, id);
CREATE INDEX systems_regime_idx ON systems (regime);

CREATE TABLE items (
    id                   TEXT NOT NULL PRIMARY KEY,
    system_id            TEXT NOT NULL REFERENCES systems (id),
    seq                  BIGINT NOT NULL,
    display_id           TEXT NOT NULL,
    external_id          TEXT,
    title                TEXT NOT NULL,
    description          TEXT NOT NULL,
    controls             TEXT NOT NULL,    -- JSON array; item_controls indexes it
    source_kind          TEXT NOT NULL,
    risk_rating          TEXT NOT NULL,
    risk_rank            INTEGER NOT NULL, -- 4 critical .. 1 low: the severity sort key
    adjusted_risk_rating TEXT,
    status               TEXT NOT NULL,
    owner                TEXT,             -- JSON object
    owner_name_key       TEXT,             -- lower-cased, for the owner filter
    owner_email_key      TEXT,
    detected_on          DATE NOT NULL,
    scheduled_completion DATE,
    due_key              DATE NOT NULL,    -- scheduled_completion, or 9999-12-31 when unset
    completed_on         DATE,
    closed_on            DATE,
    details              TEXT NOT NULL,    -- JSON object: the fields no query filters or sorts on
    search_text          TEXT NOT NULL,    -- lower-cased text the q filter searches
    version              BIGINT NOT NULL,
    created_at           TIMESTAMP NOT NULL,
    updated_at           TIMESTAMP NOT NULL,
    archived_at          TIMESTAMP
);
CREATE UNIQUE INDEX items_system_seq_key ON items (system_id, seq);
CREATE UNIQUE INDEX items_system_external_id_key ON items (system_id, external_id);
CREATE INDEX items_created_at_idx ON items (system_id, created_at, id);
CREATE INDEX items_updated_at_idx ON items (system_id, updated_at, id);
CREATE INDEX items_detected_on_idx ON items (system_id, detected_on, id);
CREATE INDEX items_due_key_idx ON items (system_id, due_key, id);
CREATE INDEX items_risk_rank_idx ON items (system_id, risk_rank, id);
CREATE INDEX items_status_idx ON items (system_id, status);
CREATE INDEX items_risk_rating_idx ON items (system_id, risk_rating);
CREATE INDEX items_source_kind_idx ON items (system_id, source_kind);
CREATE INDEX items_owner_name_idx ON items (system_id, owner_name_key);
CREATE INDEX items_owner_email_idx ON items (system_id, owner_email_key);

CREATE TABLE item_controls (
    item_id   TEXT NOT NULL REFERENCES items (id),
    system_id TEXT NOT NULL REFERENCES systems (id),
    control   TEXT NOT NULL,
    PRIMARY KEY (item_id, control)
);
CREATE INDEX item_controls_control_idx ON item_controls (system_id, control);

-- Append-only history, hash-chained per system: each event stores its predecessor's hash and
-- the hash of its own canonical content (see crates/domain/src/history.rs).
CREATE TABLE events (
    id            TEXT NOT NULL PRIMARY KEY,
    system_id     TEXT NOT NULL REFERENCES systems (id),
    seq           BIGINT NOT NULL,         -- 1, 2, 3, ... per system
    resource_kind TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    action        TEXT NOT NULL,
    actor         TEXT NOT NULL,
    at            TIMESTAMP NOT NULL,
    version       BIGINT NOT NULL,
    changes       TEXT NOT NULL,           -- JSON: {field: {before, after}}
    snapshot      TEXT NOT NULL,           -- JSON: the resource after the change
    prev_hash     TEXT NOT NULL,
    hash          TEXT NOT NULL
);
CREATE UNIQUE INDEX events_system_seq_key ON events (system_id, seq);
CREATE INDEX events_resource_idx ON events (resource_kind, resource_id, seq);
