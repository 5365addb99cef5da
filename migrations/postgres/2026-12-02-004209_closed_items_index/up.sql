-- The closed items of a system by id, from an index alone: the metrics' days to close by control
-- family start from them. Without it the planner, told by the statistics that a status value
-- may match every row, read every item row of the system (4 s at a million items).
CREATE INDEX items_status_id_idx ON items (system_id, status, archived_at, id);
