-- coffer metadata, SQLite. Text compares byte-wise (BINARY), as in the PostgreSQL schema.
-- Foreign keys are enforced only with `PRAGMA foreign_keys = ON`, which the store sets on
-- every connection it opens.

CREATE TABLE users (
    name        TEXT    PRIMARY KEY NOT NULL,
    groups      TEXT    NOT NULL, -- JSON array of group names
    clearance   TEXT    NOT NULL, -- JSON array of classifications
    is_admin    BOOLEAN NOT NULL,
    created_at  BIGINT  NOT NULL
);

-- owner is not a foreign key: owners may later be projects.
CREATE TABLE buckets (
    name            TEXT   PRIMARY KEY NOT NULL,
    owner           TEXT   NOT NULL,
    tier            TEXT   NOT NULL,
    classification  TEXT   NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX buckets_owner_idx ON buckets (owner);

CREATE TABLE grants (
    bucket        TEXT   NOT NULL REFERENCES buckets (name) ON DELETE CASCADE,
    grantee_kind  TEXT   NOT NULL, -- 'user' | 'group'
    grantee       TEXT   NOT NULL,
    role          TEXT   NOT NULL, -- 'read' | 'write' | 'admin'
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (bucket, grantee_kind, grantee)
);
CREATE INDEX grants_grantee_idx ON grants (grantee_kind, grantee);

CREATE TABLE access_keys (
    access_key_id   TEXT    PRIMARY KEY NOT NULL,
    user_name       TEXT    NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    secret_sealed   TEXT    NOT NULL,
    read_only       BOOLEAN NOT NULL,
    buckets         TEXT    NULL, -- JSON array of bucket names, or NULL for any bucket
    classification  TEXT    NULL,
    expires_at      BIGINT  NULL,
    created_at      BIGINT  NOT NULL,
    revoked_at      BIGINT  NULL
);
CREATE INDEX access_keys_user_name_idx ON access_keys (user_name);

-- The change counter: one row, bumped by every mutation in its own transaction.
CREATE TABLE revision (
    id     INTEGER PRIMARY KEY NOT NULL,
    value  BIGINT  NOT NULL
);
INSERT INTO revision (id, value) VALUES (1, 0);
