-- When the reminders scheduler next needs to look at an item: its events change with time only
-- at known instants (a date passing, a window opening), so the scheduler records the next one
-- and reads only the items whose instant has come. Every write to an item bumps its version;
-- the trigger then sets the instant to the past, so a changed item is looked at on the next
-- tick whichever path wrote it. Existing items start in the past: the first tick reads them all.
ALTER TABLE items ADD COLUMN remind_after TIMESTAMP NOT NULL DEFAULT '1970-01-01 00:00:00';
CREATE INDEX items_remind_after_idx ON items (system_id, remind_after);
CREATE TRIGGER items_remind_after_reset AFTER UPDATE OF version ON items
WHEN NEW.version <> OLD.version
BEGIN
  UPDATE items SET remind_after = '1970-01-01 00:00:00' WHERE id = NEW.id;
END;
