-- Workflow: milestones (with their due-date changes), reviews, status transitions and evidence.
-- Keep in step with the other backend's folder: a test compares the two.

CREATE TABLE milestones (
    id           TEXT NOT NULL PRIMARY KEY,
    item_id      TEXT NOT NULL REFERENCES items (id),
    system_id    TEXT NOT NULL REFERENCES systems (id),
    title        TEXT NOT NULL,
    description  TEXT,
    due_on       DATE NOT NULL,
    status       TEXT NOT NULL,
    completed_on DATE,
    position     INTEGER NOT NULL,
    changes      TEXT NOT NULL,            -- JSON array: every due-date move {from, to, reason, by, at}
    version      BIGINT NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP NOT NULL
);
CREATE INDEX milestones_item_idx ON milestones (item_id, position, id);

CREATE TABLE reviews (
    id             TEXT NOT NULL PRIMARY KEY,
    system_id      TEXT NOT NULL REFERENCES systems (id),
    item_id        TEXT REFERENCES items (id),
    kind           TEXT NOT NULL,
    deviation_kind TEXT,
    decision       TEXT NOT NULL,
    notes          TEXT,
    attendees      TEXT NOT NULL,          -- JSON array
    action_items   TEXT NOT NULL,          -- JSON array
    requested_by   TEXT,
    reviewer       TEXT NOT NULL,
    reviewer_name  TEXT,
    reviewed_at    TIMESTAMP NOT NULL,
    supersedes     TEXT REFERENCES reviews (id)
);
CREATE INDEX reviews_system_idx ON reviews (system_id, reviewed_at, id);
CREATE INDEX reviews_item_idx ON reviews (item_id, kind, reviewed_at);

CREATE TABLE transitions (
    id          TEXT NOT NULL PRIMARY KEY,
    item_id     TEXT NOT NULL REFERENCES items (id),
    from_status TEXT NOT NULL,
    to_status   TEXT NOT NULL,
    comment     TEXT,
    actor       TEXT NOT NULL,
    at          TIMESTAMP NOT NULL
);
CREATE INDEX transitions_item_idx ON transitions (item_id, at);

-- Evidence: immutable files proving remediation or verification. The bytes live in the
-- database (one backup, transactional with the metadata), in chunks of at most 1 MiB.
CREATE TABLE evidence (
    id                TEXT NOT NULL PRIMARY KEY,
    item_id           TEXT NOT NULL REFERENCES items (id),
    system_id         TEXT NOT NULL REFERENCES systems (id),
    milestone_id      TEXT REFERENCES milestones (id),
    title             TEXT NOT NULL,
    kind              TEXT NOT NULL,
    filename          TEXT NOT NULL,
    media_type        TEXT NOT NULL,
    size              BIGINT NOT NULL,
    sha256            TEXT NOT NULL,
    collected_on      DATE,
    uploaded_by       TEXT NOT NULL,
    uploaded_at       TIMESTAMP NOT NULL,
    withdrawn_at      TIMESTAMP,
    withdrawn_by      TEXT,
    withdrawal_reason TEXT
);
CREATE INDEX evidence_item_idx ON evidence (item_id, uploaded_at);

CREATE TABLE evidence_chunks (
    evidence_id TEXT NOT NULL REFERENCES evidence (id),
    n           INTEGER NOT NULL,
    data        BLOB NOT NULL,
    PRIMARY KEY (evidence_id, n)
);
