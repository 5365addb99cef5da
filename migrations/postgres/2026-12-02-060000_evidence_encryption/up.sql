-- Evidence encrypted at rest (issue 20): each encrypted file's data key, wrapped by the
-- operator's master key. A file (an evidence upload or a scan file) with a row here has its
-- chunks sealed with AES-256-GCM under that data key; a file without one is plaintext.
CREATE TABLE content_keys (
    -- The evidence id or the scan id.
    owner_id     TEXT PRIMARY KEY,
    -- evidence or scan.
    owner_kind   TEXT NOT NULL,
    -- The master key's id: the first 8 bytes of its SHA-256, hex.
    key_id       TEXT NOT NULL,
    -- Nonce, wrapped data key and tag (AES-256-GCM under the master key).
    wrapped_key  BYTEA NOT NULL,
    -- The random first 4 bytes of every chunk's nonce (the chunk number makes the rest).
    nonce_prefix BYTEA NOT NULL,
    -- How many chunks the file has (bound into each chunk's associated data).
    chunks       BIGINT NOT NULL,
    created_at   TIMESTAMP NOT NULL
);
CREATE INDEX content_keys_key_idx ON content_keys (key_id);
