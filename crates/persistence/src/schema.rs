//! The one diesel schema both backends share (see `migrations/`).

diesel::table! {
    systems (id) {
        id -> Text,
        name -> Text,
        description -> Nullable<Text>,
        organization -> Nullable<Text>,
        cage_codes -> Text,
        impact_level -> Nullable<Text>,
        regime -> Text,
        contacts -> Text,
        next_item_seq -> BigInt,
        event_seq -> BigInt,
        event_head -> Text,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        archived_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    items (id) {
        id -> Text,
        system_id -> Text,
        seq -> BigInt,
        display_id -> Text,
        external_id -> Nullable<Text>,
        title -> Text,
        description -> Text,
        controls -> Text,
        source_kind -> Text,
        risk_rating -> Text,
        risk_rank -> Integer,
        adjusted_risk_rating -> Nullable<Text>,
        status -> Text,
        owner -> Nullable<Text>,
        owner_name_key -> Nullable<Text>,
        owner_email_key -> Nullable<Text>,
        detected_on -> Date,
        scheduled_completion -> Nullable<Date>,
        due_key -> Date,
        completed_on -> Nullable<Date>,
        closed_on -> Nullable<Date>,
        details -> Text,
        search_text -> Text,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        archived_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    item_controls (item_id, control) {
        item_id -> Text,
        system_id -> Text,
        control -> Text,
    }
}

diesel::table! {
    events (id) {
        id -> Text,
        system_id -> Text,
        seq -> BigInt,
        resource_kind -> Text,
        resource_id -> Text,
        action -> Text,
        actor -> Text,
        at -> Timestamp,
        version -> BigInt,
        changes -> Text,
        snapshot -> Text,
        prev_hash -> Text,
        hash -> Text,
    }
}

diesel::joinable!(items -> systems (system_id));
diesel::joinable!(item_controls -> items (item_id));
diesel::joinable!(events -> systems (system_id));
diesel::allow_tables_to_appear_in_same_query!(systems, items, item_controls, events);
