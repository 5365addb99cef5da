DROP INDEX external_refs_resource_idx;
DROP TABLE external_refs;
