ALTER TABLE items DROP COLUMN deadline_rule;
ALTER TABLE systems DROP COLUMN deadline_policy;
