-- Milestones gain a kind (change, test, training, verification, procurement, other) and a
-- percent complete (0-100; a completed milestone reads 100). `delayed` is derived on read
-- (past due and still planned or in progress), never stored.
-- The item's change_management and escalation_contact live in items.details (JSON): no column.
ALTER TABLE milestones ADD COLUMN kind TEXT NOT NULL DEFAULT 'other';
ALTER TABLE milestones ADD COLUMN percent_complete INTEGER NOT NULL DEFAULT 0;
UPDATE milestones SET percent_complete = 100 WHERE status = 'completed';
