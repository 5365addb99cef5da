DROP INDEX milestones_system_idx;
DROP INDEX items_metrics_idx;
DROP INDEX items_risk_rating_idx;
CREATE INDEX items_risk_rating_idx ON items (system_id, risk_rating);
