-- The audit trail: one row per authorization decision. Not metadata about rights: writing
-- here does not move the revision counter.
CREATE TABLE audit_events (
    id BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    principal TEXT COLLATE "C" NOT NULL,
    access_key_id TEXT NOT NULL,
    action TEXT NOT NULL,
    bucket TEXT COLLATE "C" NOT NULL,
    object_key TEXT NOT NULL,
    allowed BOOLEAN NOT NULL,
    rule TEXT NOT NULL,
    request_id TEXT NOT NULL,
    source TEXT NOT NULL
);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_principal ON audit_events (principal, at);
CREATE INDEX audit_events_bucket ON audit_events (bucket, at);
