-- Keys from outside the service, each pointing at the resource it became: OSCAL uuids of an
-- imported document (so importing it twice changes nothing) and scanner finding keys
-- (source, source identifier, asset) that de-duplicate findings arriving through bulk sync.
CREATE TABLE external_refs (
    system_id     TEXT NOT NULL REFERENCES systems (id),
    scheme        TEXT NOT NULL,
    ref_key       TEXT NOT NULL,
    resource_kind TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (system_id, scheme, ref_key)
);
CREATE INDEX external_refs_resource_idx ON external_refs (resource_id);
