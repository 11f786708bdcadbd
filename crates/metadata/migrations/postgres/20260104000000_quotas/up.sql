-- Quotas: limits on the bytes and objects stored in one bucket, or in every bucket a user
-- owns; a NULL limit leaves that dimension unlimited. Quotas are about rights: changing one
-- moves the revision counter. Deleting a bucket deletes its quota. A user quota needs no
-- user record (federated users have none), so `user_name` is not a foreign key.
CREATE TABLE bucket_quotas (
    bucket       TEXT COLLATE "C" PRIMARY KEY REFERENCES buckets (name) ON DELETE CASCADE,
    max_bytes    BIGINT NULL,
    max_objects  BIGINT NULL,
    updated_at   BIGINT NOT NULL
);

CREATE TABLE user_quotas (
    user_name    TEXT COLLATE "C" PRIMARY KEY,
    max_bytes    BIGINT NULL,
    max_objects  BIGINT NULL,
    updated_at   BIGINT NOT NULL
);

-- The tracked usage of buckets under a quota (their own or their owner's); a bucket
-- without a row is not tracked. Not about rights: writing here does not move the revision
-- counter. Deleting a bucket deletes its usage.
CREATE TABLE bucket_usage (
    bucket   TEXT COLLATE "C" PRIMARY KEY REFERENCES buckets (name) ON DELETE CASCADE,
    bytes    BIGINT NOT NULL,
    objects  BIGINT NOT NULL
);
