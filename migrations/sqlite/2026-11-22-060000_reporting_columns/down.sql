DROP INDEX items_vendor_idx;
DROP INDEX items_deviation_idx;
DROP INDEX items_money_idx;
ALTER TABLE items DROP COLUMN vendor_check_in;
ALTER TABLE items DROP COLUMN deviation_state;
ALTER TABLE items DROP COLUMN actual_cost;
ALTER TABLE items DROP COLUMN estimated_cost;
