-- Scanner results and threat catalogs (issue 16).

-- Every imported scan file, stored once (its bytes in scan_chunks): the evidence of the system
-- that items created or touched by it link to.
CREATE TABLE scans (
    id          TEXT PRIMARY KEY,
    system_id   TEXT NOT NULL REFERENCES systems (id),
    format      TEXT NOT NULL,
    filename    TEXT,
    media_type  TEXT NOT NULL,
    size        BIGINT NOT NULL,
    sha256      TEXT NOT NULL,
    scanner     TEXT,
    -- JSON: the scope ([{"detector":…,"host":…}]) and the import's counts.
    scope       TEXT NOT NULL,
    counts      TEXT NOT NULL,
    uploaded_by TEXT NOT NULL,
    uploaded_at TIMESTAMP NOT NULL
);
CREATE INDEX scans_system_idx ON scans (system_id, uploaded_at);
CREATE INDEX scans_sha_idx ON scans (system_id, sha256);

CREATE TABLE scan_chunks (
    scan_id TEXT NOT NULL REFERENCES scans (id),
    n       INTEGER NOT NULL,
    data    BLOB NOT NULL,
    PRIMARY KEY (scan_id, n)
);

-- Item evidence that is a scan: its bytes are the scan's.
ALTER TABLE evidence ADD COLUMN scan_id TEXT REFERENCES scans (id);
CREATE UNIQUE INDEX evidence_scan_item_idx ON evidence (scan_id, item_id);

-- Each finding a scan tracks: where it was last seen, and since when it is not.
CREATE TABLE scan_findings (
    system_id      TEXT NOT NULL REFERENCES systems (id),
    ref_key        TEXT NOT NULL,
    item_id        TEXT NOT NULL REFERENCES items (id),
    detector       TEXT NOT NULL,
    host           TEXT NOT NULL,
    last_seen_scan TEXT NOT NULL,
    last_seen_at   TIMESTAMP NOT NULL,
    not_seen_since TIMESTAMP,
    not_seen_scan  TEXT,
    PRIMARY KEY (system_id, ref_key)
);
CREATE INDEX scan_findings_scope_idx ON scan_findings (system_id, detector, host);
CREATE INDEX scan_findings_item_idx ON scan_findings (item_id);

-- What the list filters and sorts on (the item's JSON shows the same): KEV, EPSS, not seen.
CREATE TABLE item_signals (
    item_id        TEXT PRIMARY KEY REFERENCES items (id),
    system_id      TEXT NOT NULL,
    kev            BOOLEAN NOT NULL,
    epss_score     DOUBLE PRECISION,
    not_seen_since TIMESTAMP
);
CREATE INDEX item_signals_kev_idx ON item_signals (system_id, kev);
CREATE INDEX item_signals_not_seen_idx ON item_signals (system_id, not_seen_since);

-- Catalogs an operator loads: one row per kind, its entries below.
CREATE TABLE catalogs (
    kind       TEXT PRIMARY KEY,
    version    TEXT NOT NULL,
    released   TEXT,
    entries    BIGINT NOT NULL,
    sha256     TEXT NOT NULL,
    loaded_by  TEXT NOT NULL,
    loaded_at  TIMESTAMP NOT NULL
);

CREATE TABLE kev_entries (
    cve             TEXT PRIMARY KEY,
    date_added      DATE NOT NULL,
    due_date        DATE NOT NULL,
    ransomware      BOOLEAN NOT NULL,
    forensic_triage BOOLEAN,
    vendor_project  TEXT NOT NULL,
    product         TEXT NOT NULL,
    name            TEXT NOT NULL,
    required_action TEXT NOT NULL
);

CREATE TABLE epss_scores (
    cve        TEXT PRIMARY KEY,
    score      DOUBLE PRECISION NOT NULL,
    percentile DOUBLE PRECISION NOT NULL
);

CREATE TABLE cci_controls (
    cci      TEXT PRIMARY KEY,
    controls TEXT NOT NULL
);
