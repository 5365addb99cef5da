-- An item's stamp (its system, version and the instant of that version) by its id, from an
-- index alone: `GET /v1/items/{id}` reads the stamp on every request and answers a kept
-- rendering of exactly that stamp (SQLite). Through this index a read touches about 110 bytes
-- an item (1.2 MB for 10,000 items) instead of the item's row page (21 MB for 10,000), so the
-- reads of a large system stay in SQLite's page cache. Both backends carry it, one schema.
CREATE UNIQUE INDEX items_stamp_key ON items (id, system_id, version, updated_at);
