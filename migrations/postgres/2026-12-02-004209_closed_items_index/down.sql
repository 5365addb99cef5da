DROP INDEX items_status_id_idx;
