DROP INDEX items_live_seq_idx;
DROP INDEX items_status_id_idx;
