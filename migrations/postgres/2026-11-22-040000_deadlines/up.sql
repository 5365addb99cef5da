-- Deadline policies: a system's own policy (JSON, days per rating), and which rule set each
-- item's scheduled completion date ('manual' when a person set it).
ALTER TABLE systems ADD COLUMN deadline_policy TEXT;
ALTER TABLE items ADD COLUMN deadline_rule TEXT;
