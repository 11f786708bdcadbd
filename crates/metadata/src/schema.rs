//! The Diesel table definitions, shared by PostgreSQL and SQLite.
//!
//! They mirror the `up.sql` files under `migrations/`; only SQL types that Diesel's
//! `MultiConnection` supports on both backends are used (`Text`, `Bool`, `Integer`, `BigInt`,
//! `Nullable`).

diesel::table! {
    /// Users; `groups` and `clearance` are JSON arrays of strings.
    users (name) {
        name -> Text,
        groups -> Text,
        clearance -> Text,
        is_admin -> Bool,
        created_at -> BigInt,
    }
}

diesel::table! {
    /// Buckets; `owner` is a plain name, not a foreign key.
    buckets (name) {
        name -> Text,
        owner -> Text,
        tier -> Text,
        classification -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    /// Roles on buckets; `grantee_kind` is `user` or `group`, `role` is `read`, `write` or
    /// `admin`.
    grants (bucket, grantee_kind, grantee) {
        bucket -> Text,
        grantee_kind -> Text,
        grantee -> Text,
        role -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    /// Long-term access keys; `buckets` is a JSON array of bucket names or NULL.
    access_keys (access_key_id) {
        access_key_id -> Text,
        user_name -> Text,
        secret_sealed -> Text,
        read_only -> Bool,
        buckets -> Nullable<Text>,
        classification -> Nullable<Text>,
        expires_at -> Nullable<BigInt>,
        created_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// The change counter: a single row with `id = 1`.
    revision (id) {
        id -> Integer,
        value -> BigInt,
    }
}

diesel::table! {
    /// Share links; `principal` is the creator's principal as JSON, `creator` its name;
    /// `target_kind` is `object` or `prefix`, `target` the key or the (possibly empty) prefix.
    share_links (id) {
        id -> Text,
        creator -> Text,
        principal -> Text,
        bucket -> Text,
        target_kind -> Text,
        target -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// Bucket quotas; a NULL limit leaves that dimension unlimited.
    bucket_quotas (bucket) {
        bucket -> Text,
        max_bytes -> Nullable<BigInt>,
        max_objects -> Nullable<BigInt>,
        updated_at -> BigInt,
    }
}

diesel::table! {
    /// User quotas, on every bucket the user owns; `user_name` is not a foreign key
    /// (federated users have no record).
    user_quotas (user_name) {
        user_name -> Text,
        max_bytes -> Nullable<BigInt>,
        max_objects -> Nullable<BigInt>,
        updated_at -> BigInt,
    }
}

diesel::table! {
    /// The tracked usage of a bucket; a bucket without a row is not tracked.
    bucket_usage (bucket) {
        bucket -> Text,
        bytes -> BigInt,
        objects -> BigInt,
    }
}

diesel::joinable!(grants -> buckets (bucket));
diesel::joinable!(access_keys -> users (user_name));
diesel::joinable!(share_links -> buckets (bucket));
diesel::joinable!(bucket_quotas -> buckets (bucket));
diesel::joinable!(bucket_usage -> buckets (bucket));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    buckets,
    grants,
    access_keys,
    share_links,
    revision,
    audit_events,
    bucket_quotas,
    user_quotas,
    bucket_usage,
);

diesel::table! {
    /// The audit trail, one row per authorization decision; `at` in Unix milliseconds.
    audit_events (id) {
        id -> BigInt,
        at -> BigInt,
        principal -> Text,
        access_key_id -> Text,
        action -> Text,
        bucket -> Text,
        object_key -> Text,
        allowed -> Bool,
        rule -> Text,
        request_id -> Text,
        source -> Text,
    }
}
