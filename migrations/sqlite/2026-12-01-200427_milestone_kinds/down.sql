ALTER TABLE milestones DROP COLUMN percent_complete;
ALTER TABLE milestones DROP COLUMN kind;
