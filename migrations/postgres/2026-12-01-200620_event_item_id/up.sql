-- postgres: event_item_id (keep in step with the other backend)
-- The item an event belongs to: the item's own events and those of its milestones, evidence
-- and reviews, so that an item's history is one indexed range in chain order. Not part of the
-- hashed content (crates/domain/src/history.rs): existing chains verify unchanged.
ALTER TABLE events ADD COLUMN item_id TEXT;

UPDATE events SET item_id = resource_id WHERE resource_kind = 'item';
UPDATE events SET item_id = m.item_id
  FROM milestones m WHERE events.resource_kind = 'milestone' AND m.id = events.resource_id;
UPDATE events SET item_id = v.item_id
  FROM evidence v WHERE events.resource_kind = 'evidence' AND v.id = events.resource_id;
UPDATE events SET item_id = r.item_id
  FROM reviews r WHERE events.resource_kind = 'review' AND r.id = events.resource_id
  AND r.item_id IS NOT NULL;

-- Only events that belong to an item are indexed (system, export, import events are not).
CREATE INDEX events_item_idx ON events (item_id, seq) WHERE item_id IS NOT NULL;
