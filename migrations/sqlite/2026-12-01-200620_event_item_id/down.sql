-- undo event_item_id
DROP INDEX events_item_idx;
ALTER TABLE events DROP COLUMN item_id;
