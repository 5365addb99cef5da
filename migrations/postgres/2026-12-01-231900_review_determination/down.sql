-- undo review_determination
ALTER TABLE reviews DROP COLUMN determined_on;
ALTER TABLE reviews DROP COLUMN determination;
