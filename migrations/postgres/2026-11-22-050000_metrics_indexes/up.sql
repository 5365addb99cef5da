-- Metrics read indexes only: counts by rating and status, aging on the due key and the dates
-- of resolved items come from covering indexes, never from the (wide) item rows.
DROP INDEX items_risk_rating_idx;
CREATE INDEX items_risk_rating_idx ON items (system_id, risk_rating, archived_at, status, due_key);
CREATE INDEX items_metrics_idx ON items (system_id, archived_at, status, risk_rating, due_key,
                                         detected_on, scheduled_completion, completed_on, closed_on);
CREATE INDEX milestones_system_idx ON milestones (system_id);
