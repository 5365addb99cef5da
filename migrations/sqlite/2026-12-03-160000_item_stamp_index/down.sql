DROP INDEX items_stamp_key;
