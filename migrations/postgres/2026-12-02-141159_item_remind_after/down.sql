DROP TRIGGER items_remind_after_reset ON items;
DROP FUNCTION items_remind_after_reset();
DROP INDEX items_remind_after_idx;
ALTER TABLE items DROP COLUMN remind_after;
