-- CMMC Level 2: one self-assessment per system (the status of each 800-171 requirement) and the
-- Conditional status date. Keep in step with the other backend's folder.
CREATE TABLE cmmc_assessments (
    system_id               TEXT NOT NULL PRIMARY KEY REFERENCES systems (id),
    requirements            TEXT NOT NULL,  -- JSON: {"3.1.1": "met", ...}
    conditional_status_date DATE,
    version                 BIGINT NOT NULL,
    updated_at              TIMESTAMP NOT NULL,
    updated_by              TEXT NOT NULL
);
