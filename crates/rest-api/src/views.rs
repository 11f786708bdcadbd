//! The JSON bodies the API sends and receives, with their OpenAPI schemas. Stored records
//! (buckets, grants, keys, audit events) are answered in their serde form, the same JSON as
//! `coffer admin --json`; what the API adds (a caller's role, an object's listing entry, a
//! link's URL) is defined here.

use std::time::{SystemTime, UNIX_EPOCH};

use coffer_backend::ObjectInfo;
use coffer_core::{AccessKey, AuditEvent, Bucket, Classification, Role, ShareTarget};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Who the API takes the caller for.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub name: String,
    pub groups: Vec<String>,
    /// The classifications the caller may touch.
    pub clearance: Vec<Classification>,
    /// Admin on every bucket (clearance still applies).
    pub is_admin: bool,
    /// `bearer`, `sigv4`, `session` (the web console's cookie) or `headers`.
    pub authenticated_by: String,
}

/// A bucket the caller may see, with the caller's role on it.
#[derive(Debug, Serialize, ToSchema)]
pub struct BucketView {
    #[serde(flatten)]
    pub bucket: Bucket,
    /// The caller's role (a read-only credential makes it `read`).
    pub role: Role,
    /// How the bucket is the caller's.
    pub kind: BucketKind,
}

/// How a bucket is the caller's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BucketKind {
    /// The caller's personal bucket (`[personal_buckets]`).
    Personal,
    /// Another bucket the caller owns.
    Owned,
    /// A project's bucket (owner `project:<name>`).
    Project,
    /// Someone else's bucket the caller may use: a grant to them or their group, a policy,
    /// or the platform admin's reach.
    Shared,
}

/// `POST /buckets`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBucket {
    /// An S3-valid bucket name, unique on this server.
    #[schema(pattern = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
    pub name: String,
    /// The tier (default: the configured default tier).
    #[schema(pattern = r"^[a-z0-9-]{1,64}$")]
    pub tier: Option<String>,
}

/// `PUT /buckets/{name}/grants` and `PUT /projects/{name}/members`: exactly one of `user`
/// and `group`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGrant {
    #[schema(pattern = r"^[A-Za-z0-9._@:-]{1,128}$")]
    pub user: Option<String>,
    #[schema(pattern = r"^[A-Za-z0-9._@:-]{1,128}$")]
    pub group: Option<String>,
    pub role: Role,
}

/// `POST /projects`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProject {
    /// The project's name, also the name of its bucket.
    #[schema(pattern = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
    pub name: String,
}

/// A project the caller is a member of.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectView {
    pub name: String,
    /// The caller's role in the project.
    pub role: Role,
    /// Unix seconds.
    pub created_at: i64,
    /// Its buckets, the one named after it first.
    pub buckets: Vec<Bucket>,
}

impl From<coffer_gateway::projects::Project> for ProjectView {
    fn from(p: coffer_gateway::projects::Project) -> Self {
        Self { name: p.name, role: p.role, created_at: p.created_at, buckets: p.buckets }
    }
}

/// An object in a listing, or the object just written.
#[derive(Debug, Serialize, ToSchema)]
pub struct ObjectView {
    pub key: String,
    /// Bytes.
    pub size: u64,
    /// The ETag, without quotes.
    pub etag: String,
    /// RFC 3339.
    pub last_modified: String,
    pub content_type: Option<String>,
}

/// RFC 3339, UTC, whole seconds.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

impl From<&ObjectInfo> for ObjectView {
    fn from(o: &ObjectInfo) -> Self {
        Self {
            key: o.key.clone(),
            size: o.size,
            etag: o.etag.clone(),
            last_modified: rfc3339(o.last_modified),
            content_type: o.meta.content_type.clone(),
        }
    }
}

/// One page of a listing.
#[derive(Debug, Serialize, ToSchema)]
pub struct ObjectPage {
    pub objects: Vec<ObjectView>,
    /// Common prefixes (with a delimiter): the "folders" at this level.
    pub prefixes: Vec<String>,
    /// Pass as `start_after` for the next page; null on the last page.
    pub next: Option<String>,
}

/// `GET /buckets/{name}/objects` (and a prefix link's listing).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only keys starting with this.
    #[serde(default)]
    pub prefix: String,
    /// Roll keys up to common prefixes at this delimiter (usually `/`).
    pub delimiter: Option<String>,
    /// Only keys (and prefixes) after this one: the `next` of the previous page.
    pub start_after: Option<String>,
    /// At most this many entries, 1–1000 (default 1000).
    #[param(minimum = 0)]
    pub max_keys: Option<u32>,
}

/// `GET /buckets/{name}/objects/{key}`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DownloadParams {
    /// `1` (or `true`): answer with `Content-Disposition: attachment` and the key's last
    /// segment as the file name, so that a browser saves the object rather than shows it.
    #[param(pattern = "^(0|1|true|false)$")]
    pub download: Option<String>,
}

/// `POST /buckets/{name}/uploads`: start a multipart upload (for large files, sent in parts).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUpload {
    /// The key of the object the upload will make.
    #[schema(min_length = 1, max_length = 1024)]
    pub key: String,
    /// The object's `Content-Type`.
    #[schema(max_length = 256)]
    pub content_type: Option<String>,
}

/// A multipart upload in progress.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadView {
    /// Names the upload in the part, complete and abort calls.
    pub upload_id: String,
    pub key: String,
    /// RFC 3339; set in listings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initiated: Option<String>,
}

/// The key of a multipart upload (`?key=…`).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UploadKey {
    /// The key the upload was started for.
    #[param(min_length = 1, max_length = 1024)]
    pub key: String,
}

/// `GET /buckets/{name}/uploads/{upload_id}/parts`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PartListParams {
    /// The key the upload was started for.
    #[param(min_length = 1, max_length = 1024)]
    pub key: String,
    /// Only parts after this part number: the `next` of the previous page.
    #[param(minimum = 0, maximum = 10000)]
    pub start_after: Option<u32>,
    /// At most this many parts, 1–1000 (default 1000).
    #[param(minimum = 0)]
    pub max_parts: Option<u32>,
}

/// A part stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartView {
    pub part_number: u32,
    /// The part's ETag, without quotes: give it back to complete the upload.
    pub etag: String,
    /// Bytes.
    pub size: u64,
}

/// A page of an upload's parts.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartPage {
    pub parts: Vec<PartView>,
    /// Pass as `start_after` for the next page; null on the last page.
    pub next: Option<u32>,
}

/// `GET /buckets/{name}/uploads`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UploadListParams {
    /// Only uploads of keys starting with this.
    #[serde(default)]
    pub prefix: String,
    /// Only uploads of keys after this one (with `start_after_upload_id`: also the later
    /// uploads of this key): the `next_key` of the previous page.
    pub start_after_key: Option<String>,
    /// The `next_upload_id` of the previous page.
    pub start_after_upload_id: Option<String>,
    /// At most this many uploads, 1–1000 (default 1000).
    #[param(minimum = 0)]
    pub max_uploads: Option<u32>,
}

/// A page of the uploads in progress, oldest key first.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadPage {
    pub uploads: Vec<UploadView>,
    /// With `next_upload_id`, where the next page starts; null on the last page.
    pub next_key: Option<String>,
    pub next_upload_id: Option<String>,
}

/// `POST /buckets/{name}/uploads/{upload_id}/complete`: the parts, in order, that make the
/// object (every part but the last at least 5 MiB).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteUpload {
    /// The key the upload was started for.
    #[schema(min_length = 1, max_length = 1024)]
    pub key: String,
    #[schema(min_items = 1, max_items = 10000)]
    pub parts: Vec<CompletedPart>,
}

/// A part of a completion: its number and the ETag its upload answered.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompletedPart {
    #[schema(minimum = 1, maximum = 10000)]
    pub part_number: u32,
    #[schema(min_length = 1, max_length = 256)]
    pub etag: String,
}

/// A user record with their quota and usage, for the platform admin.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    #[serde(flatten)]
    pub user: coffer_core::User,
    /// Bytes allowed over all the buckets they own; null: no byte limit.
    pub max_bytes: Option<u64>,
    /// Objects allowed over all the buckets they own; null: no object limit.
    pub max_objects: Option<u64>,
    /// Bytes stored in the buckets they own whose usage is tracked (every bucket under a
    /// quota is).
    pub bytes: u64,
    /// Objects stored in those buckets.
    pub objects: u64,
    /// Buckets they own whose usage is not tracked and so not counted here
    /// (`GET /users/{name}/quota` measures them).
    pub untracked_buckets: u64,
}

/// `POST /buckets/{name}/copy`: copy an object into this bucket (read on the source, write
/// here, the same classification on both sides).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CopyRequest {
    #[schema(pattern = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
    pub from_bucket: String,
    #[schema(min_length = 1, max_length = 1024)]
    pub from_key: String,
    #[schema(min_length = 1, max_length = 1024)]
    pub to_key: String,
}

/// `POST /me/keys`: the new key's narrowing (it never reaches beyond the credential making
/// it).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// Refuse every write.
    #[serde(default)]
    pub read_only: bool,
    /// Only these buckets.
    #[schema(min_items = 1, inline, value_type = Option<Vec<BucketNameText>>)]
    pub buckets: Option<Vec<String>>,
    /// Only buckets of this classification.
    #[schema(pattern = r"^[a-z0-9-]{1,64}$")]
    pub classification: Option<String>,
    /// Seconds until the key stops working (at least 60); none: until revoked.
    #[schema(minimum = 60)]
    pub expires_in_seconds: Option<i64>,
}

/// A new access key. The secret is shown here once and never again (and never by `Debug`).
#[derive(Serialize, ToSchema)]
pub struct CreatedKey {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub key: AccessKey,
}

impl std::fmt::Debug for CreatedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedKey")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("key", &self.key)
            .finish()
    }
}

/// `POST /buckets/{name}/links`: exactly one of `key` and `prefix`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLink {
    /// Share this object.
    #[schema(min_length = 1, max_length = 1024)]
    pub key: Option<String>,
    /// Share every object under this prefix (empty: the whole bucket).
    #[schema(max_length = 1024)]
    pub prefix: Option<String>,
    /// Seconds until the link stops working (default and maximum from the configuration).
    #[schema(minimum = 60)]
    pub expires_in_seconds: Option<i64>,
}

/// A share link, for its creator and the bucket's admins.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkView {
    pub id: String,
    /// The link to hand out: anyone holding it may read what it shares until it expires or
    /// is revoked.
    pub url: String,
    /// The same, as a path on this server.
    pub path: String,
    pub bucket: String,
    pub target: ShareTarget,
    /// Who made it.
    pub creator: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// Unix seconds, once revoked.
    pub revoked_at: Option<i64>,
}

/// `GET /audit`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only this principal's decisions.
    pub user: Option<String>,
    /// Only decisions on this bucket (required unless you are the platform admin).
    pub bucket: Option<String>,
    /// `allow` or `deny`.
    #[param(inline)]
    pub decision: Option<Decision>,
    /// Only events at or after this time (RFC 3339).
    pub since: Option<String>,
    /// Only events before this time (RFC 3339): the `next_until` of the previous page.
    pub until: Option<String>,
    /// About this many events, 1–1000 (default 100): a full page also holds every other
    /// event of its oldest event's millisecond, so that the next page misses none.
    #[param(minimum = 0)]
    pub limit: Option<u32>,
}

/// An authorization outcome.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Allow,
    Deny,
}

/// A page of audit events, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub events: Vec<AuditEventView>,
    /// Pass as `until` for older events; null when this page is the last.
    pub next_until: Option<String>,
}

/// One authorization decision.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventView {
    /// RFC 3339, milliseconds.
    pub time: String,
    #[serde(flatten)]
    pub event: AuditEvent,
}

/// RFC 3339 with milliseconds, from Unix milliseconds.
pub fn rfc3339_millis(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
            ))
            .ok()
        })
        .unwrap_or_default()
}

/// A bucket name, for the OpenAPI document.
#[derive(ToSchema)]
#[schema(value_type = String, pattern = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
pub struct BucketNameText(#[allow(dead_code)] String);

/// Raw bytes (an object's content), for the OpenAPI document.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct Binary(#[allow(dead_code)] Vec<u8>);
