-- sqlite: system_vdr (keep in step with the other backend)
-- FedRAMP 2026 (VDR/VER) settings of a system, one JSON document: fedramp_class, vdr_since,
-- vdr_clock, certification_package_uri. NULL: none set (the legacy regime).
ALTER TABLE systems ADD COLUMN vdr TEXT;
