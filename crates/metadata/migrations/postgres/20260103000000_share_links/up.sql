-- Share links: expiring, revocable, read-only URLs for one object or a prefix. A link acts
-- as its creator as they were when it was made: `principal` is that snapshot (JSON), and
-- `creator` its name, kept apart for listing. Deleting a bucket deletes its links.
CREATE TABLE share_links (
    id           TEXT COLLATE "C" PRIMARY KEY,
    creator      TEXT COLLATE "C" NOT NULL,
    principal    TEXT   NOT NULL, -- JSON of the creator's principal (name, groups, clearance, is_admin)
    bucket       TEXT COLLATE "C" NOT NULL REFERENCES buckets (name) ON DELETE CASCADE,
    target_kind  TEXT COLLATE "C" NOT NULL, -- 'object' | 'prefix'
    target       TEXT COLLATE "C" NOT NULL, -- the key, or the prefix (may be empty)
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT NULL
);
CREATE INDEX share_links_creator_idx ON share_links (creator);
CREATE INDEX share_links_bucket_idx ON share_links (bucket);
