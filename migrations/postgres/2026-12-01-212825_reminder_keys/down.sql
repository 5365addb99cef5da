-- undo reminder_keys
DROP TABLE reminder_keys;
