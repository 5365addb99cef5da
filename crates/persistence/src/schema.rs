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
        deadline_policy -> Nullable<Text>,
        vdr -> Nullable<Text>,
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
        deadline_rule -> Nullable<Text>,
        estimated_cost -> Nullable<Double>,
        actual_cost -> Nullable<Double>,
        deviation_state -> Nullable<Text>,
        vendor_check_in -> Nullable<Date>,
    }
}

diesel::table! {
    /// The items table as the reminders scheduler reads it: `items` is at diesel's 32 columns,
    /// and `remind_after` is the scheduler's alone (the next instant it needs to look at an
    /// item; a trigger moves it to the past on every new version).
    #[sql_name = "items"]
    item_reminders (id) {
        id -> Text,
        system_id -> Text,
        version -> BigInt,
        remind_after -> Timestamp,
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
        item_id -> Nullable<Text>,
    }
}

diesel::joinable!(items -> systems (system_id));
diesel::joinable!(item_controls -> items (item_id));
diesel::joinable!(milestones -> items (item_id));
diesel::joinable!(events -> systems (system_id));
diesel::joinable!(item_controls -> systems (system_id));

diesel::table! {
    milestones (id) {
        id -> Text,
        item_id -> Text,
        system_id -> Text,
        title -> Text,
        description -> Nullable<Text>,
        due_on -> Date,
        status -> Text,
        completed_on -> Nullable<Date>,
        position -> Integer,
        changes -> Text,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        kind -> Text,
        percent_complete -> Integer,
    }
}

diesel::table! {
    reviews (id) {
        id -> Text,
        system_id -> Text,
        item_id -> Nullable<Text>,
        kind -> Text,
        deviation_kind -> Nullable<Text>,
        decision -> Text,
        notes -> Nullable<Text>,
        attendees -> Text,
        action_items -> Text,
        requested_by -> Nullable<Text>,
        reviewer -> Text,
        reviewer_name -> Nullable<Text>,
        reviewed_at -> Timestamp,
        supersedes -> Nullable<Text>,
        determination -> Nullable<Text>,
        determined_on -> Nullable<Date>,
    }
}

diesel::table! {
    transitions (id) {
        id -> Text,
        item_id -> Text,
        from_status -> Text,
        to_status -> Text,
        comment -> Nullable<Text>,
        actor -> Text,
        at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    systems,
    items,
    item_controls,
    events,
    milestones,
    reviews,
    transitions,
    evidence,
    evidence_chunks,
    idempotency_keys,
    cmmc_assessments,
    external_refs,
    scans,
    scan_findings,
    item_signals,
    content_keys,
);

diesel::table! {
    evidence (id) {
        id -> Text,
        item_id -> Text,
        system_id -> Text,
        milestone_id -> Nullable<Text>,
        title -> Text,
        kind -> Text,
        filename -> Text,
        media_type -> Text,
        size -> BigInt,
        sha256 -> Text,
        collected_on -> Nullable<Date>,
        uploaded_by -> Text,
        uploaded_at -> Timestamp,
        withdrawn_at -> Nullable<Timestamp>,
        withdrawn_by -> Nullable<Text>,
        withdrawal_reason -> Nullable<Text>,
        scan_id -> Nullable<Text>,
    }
}

diesel::table! {
    evidence_chunks (evidence_id, n) {
        evidence_id -> Text,
        n -> Integer,
        data -> Binary,
    }
}

diesel::table! {
    idempotency_keys (actor, idem_key) {
        actor -> Text,
        idem_key -> Text,
        path -> Text,
        body_hash -> Nullable<Text>,
        status -> Integer,
        headers -> Text,
        body -> Nullable<Binary>,
        created_at -> Timestamp,
        grants -> Nullable<Text>,
    }
}

diesel::table! {
    cmmc_assessments (system_id) {
        system_id -> Text,
        requirements -> Text,
        conditional_status_date -> Nullable<Date>,
        version -> BigInt,
        updated_at -> Timestamp,
        updated_by -> Text,
    }
}

diesel::table! {
    external_refs (system_id, scheme, ref_key) {
        system_id -> Text,
        scheme -> Text,
        ref_key -> Text,
        resource_kind -> Text,
        resource_id -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    webhook_subscriptions (id) {
        id -> Text,
        url -> Text,
        events -> Text,
        systems -> Nullable<Text>,
        scope -> Nullable<Text>,
        payload -> Text,
        secret -> Text,
        previous_secret -> Nullable<Text>,
        previous_secret_until -> Nullable<Timestamp>,
        state -> Text,
        paused_reason -> Nullable<Text>,
        paused_at -> Nullable<Timestamp>,
        failing_since -> Nullable<Timestamp>,
        description -> Nullable<Text>,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Text,
        subscription_id -> Text,
        event_id -> Text,
        system_id -> Text,
        event_seq -> BigInt,
        event_type -> Text,
        state -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        lease_owner -> Nullable<Text>,
        lease_until -> Nullable<Timestamp>,
        created_at -> Timestamp,
        last_attempt_at -> Nullable<Timestamp>,
        last_status -> Nullable<Integer>,
        last_error -> Nullable<Text>,
        delivered_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    webhook_attempts (id) {
        id -> Text,
        delivery_id -> Text,
        n -> Integer,
        at -> Timestamp,
        status -> Nullable<Integer>,
        latency_ms -> BigInt,
        error -> Nullable<Text>,
        response_excerpt -> Nullable<Text>,
        instance -> Text,
    }
}

diesel::table! {
    reminder_keys (system_id, key) {
        system_id -> Text,
        key -> Text,
        emitted_at -> Timestamp,
    }
}

diesel::table! {
    scans (id) {
        id -> Text,
        system_id -> Text,
        format -> Text,
        filename -> Nullable<Text>,
        media_type -> Text,
        size -> BigInt,
        sha256 -> Text,
        scanner -> Nullable<Text>,
        scope -> Text,
        counts -> Text,
        uploaded_by -> Text,
        uploaded_at -> Timestamp,
    }
}

diesel::table! {
    scan_chunks (scan_id, n) {
        scan_id -> Text,
        n -> Integer,
        data -> Binary,
    }
}

diesel::table! {
    scan_findings (system_id, ref_key) {
        system_id -> Text,
        ref_key -> Text,
        item_id -> Text,
        detector -> Text,
        host -> Text,
        last_seen_scan -> Text,
        last_seen_at -> Timestamp,
        not_seen_since -> Nullable<Timestamp>,
        not_seen_scan -> Nullable<Text>,
    }
}

diesel::table! {
    item_signals (item_id) {
        item_id -> Text,
        system_id -> Text,
        kev -> Bool,
        epss_score -> Nullable<Double>,
        not_seen_since -> Nullable<Timestamp>,
    }
}

diesel::table! {
    catalogs (kind) {
        kind -> Text,
        version -> Text,
        released -> Nullable<Text>,
        entries -> BigInt,
        sha256 -> Text,
        loaded_by -> Text,
        loaded_at -> Timestamp,
    }
}

diesel::table! {
    kev_entries (cve) {
        cve -> Text,
        date_added -> Date,
        due_date -> Date,
        ransomware -> Bool,
        forensic_triage -> Nullable<Bool>,
        vendor_project -> Text,
        product -> Text,
        name -> Text,
        required_action -> Text,
    }
}

diesel::table! {
    epss_scores (cve) {
        cve -> Text,
        score -> Double,
        percentile -> Double,
    }
}

diesel::table! {
    cci_controls (cci) {
        cci -> Text,
        controls -> Text,
    }
}

diesel::table! {
    content_keys (owner_id) {
        owner_id -> Text,
        owner_kind -> Text,
        key_id -> Text,
        wrapped_key -> Binary,
        nonce_prefix -> Binary,
        chunks -> BigInt,
        created_at -> Timestamp,
    }
}
