-- undo system_vdr
ALTER TABLE systems DROP COLUMN vdr;
