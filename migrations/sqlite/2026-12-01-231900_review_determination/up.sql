-- sqlite: review_determination (keep in step with the other backend)
-- NISP: a dss_determination review carries DSS's determination (open/closed) and its date.
ALTER TABLE reviews ADD COLUMN determination TEXT;
ALTER TABLE reviews ADD COLUMN determined_on DATE;
