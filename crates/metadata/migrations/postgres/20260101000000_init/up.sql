-- coffer metadata, PostgreSQL. Names are compared byte-wise (COLLATE "C") so that sorting
-- and uniqueness match SQLite whatever the database's default collation is.

CREATE TABLE users (
    name        TEXT COLLATE "C" PRIMARY KEY,
    groups      TEXT    NOT NULL, -- JSON array of group names
    clearance   TEXT    NOT NULL, -- JSON array of classifications
    is_admin    BOOLEAN NOT NULL,
    created_at  BIGINT  NOT NULL
);

-- owner is not a foreign key: owners may later be projects.
CREATE TABLE buckets (
    name            TEXT COLLATE "C" PRIMARY KEY,
    owner           TEXT COLLATE "C" NOT NULL,
    tier            TEXT   NOT NULL,
    classification  TEXT   NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX buckets_owner_idx ON buckets (owner);

CREATE TABLE grants (
    bucket        TEXT COLLATE "C" NOT NULL REFERENCES buckets (name) ON DELETE CASCADE,
    grantee_kind  TEXT COLLATE "C" NOT NULL, -- 'user' | 'group'
    grantee       TEXT COLLATE "C" NOT NULL,
    role          TEXT   NOT NULL,           -- 'read' | 'write' | 'admin'
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (bucket, grantee_kind, grantee)
);
CREATE INDEX grants_grantee_idx ON grants (grantee_kind, grantee);

CREATE TABLE access_keys (
    access_key_id   TEXT COLLATE "C" PRIMARY KEY,
    user_name       TEXT COLLATE "C" NOT NULL REFERENCES users (name) ON DELETE CASCADE,
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
    id     INTEGER PRIMARY KEY,
    value  BIGINT NOT NULL
);
INSERT INTO revision (id, value) VALUES (1, 0);
