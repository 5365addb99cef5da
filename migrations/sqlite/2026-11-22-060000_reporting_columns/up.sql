-- Reporting columns kept in step with the item's details, so metrics aggregate in the database:
-- planned and spent money, the deviation as kind/status, and the vendor check-in date
-- (1900-01-01 when a vendor dependency was never checked in; NULL without one).
ALTER TABLE items ADD COLUMN estimated_cost DOUBLE PRECISION;
ALTER TABLE items ADD COLUMN actual_cost DOUBLE PRECISION;
ALTER TABLE items ADD COLUMN deviation_state TEXT;
ALTER TABLE items ADD COLUMN vendor_check_in DATE;
CREATE INDEX items_money_idx ON items (system_id, archived_at, estimated_cost, actual_cost);
CREATE INDEX items_deviation_idx ON items (system_id, deviation_state, archived_at);
CREATE INDEX items_vendor_idx ON items (system_id, vendor_check_in, archived_at, status);
