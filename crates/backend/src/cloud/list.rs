//! Listings: prefix, delimiter, start-after and limit over encoded names.
//!
//! The store lists below `<root><bucket>/` + the encoded prefix (see
//! [`keys::encode_prefix`]), in byte order of the encoded names, and rolls up common
//! prefixes itself when the delimiter survives the encoding (`/`, or one without `%`, `/`,
//! `.`, `\`, upper-case hex digits and control characters, see [`keys::delimiter_is_safe`];
//! on Azure only `/`, as Azurite mishandles longer delimiters); other delimiters are rolled
//! up here. Names that do not decode (not written by coffer) are skipped with a warning,
//! and keys are checked against the raw prefix.
//!
//! `start_after` becomes the store's offset (`start-after` on S3 and GCS, `startFrom` on
//! Azure): the encoding of the key. When it is a common prefix of this query, every key
//! under it is skipped too, as the filesystem backend does. When it lies *inside* a common
//! prefix, that prefix is reported first if a key under it follows `start_after` (stores
//! differ on whether they report it themselves), and its keys are then skipped. Entries
//! at or before the offset are dropped here as well, which covers stores that ignore the
//! offset (Azurite ignores `startFrom`).
//!
//! ETags: S3's listing ETag is coffer's by construction (the MD5 for single PUTs; the MD5
//! of the part MD5s for multipart uploads), so S3 listings cost one request per page. GCS
//! listing ETags are the MD5 for single PUTs; other objects are looked up with a HEAD
//! (made [`FAN_OUT`] at a time). Azure is listed with coffer's own request (`raw`), which
//! includes each blob's properties and metadata: coffer's ETag and the metadata come with
//! the page. Entries listed without metadata (S3, GCS single PUTs) leave it empty.

use std::borrow::Cow;
use std::collections::HashSet;
use std::time::SystemTime;

use futures::{StreamExt, TryStreamExt, stream};
use object_store::list::PaginatedListOptions;

use super::metadata::{self, Provider};
use super::raw::ListedBlob;
use super::{FAN_OUT, Inner, errors, keys, name_fits, valid_bucket, whole_seconds};
use crate::{Error, ListEntry, ListPage, ListQuery, ObjectInfo, Result};

/// The most names one store request returns.
const STORE_PAGE: usize = 1000;

/// One listed object before its ETag is settled.
enum Found {
    /// From a listing: the ETag may need a HEAD.
    Listed { key: String, meta: object_store::ObjectMeta },
    /// Already complete (from a HEAD).
    Complete(ObjectInfo),
}

// A page holds a thousand entries at most: boxing objects would buy nothing.
#[allow(clippy::large_enum_variant)]
enum Entry {
    Object(Found),
    Prefix(String),
}

/// A name from the store: an object or a common prefix.
enum Candidate {
    /// From object_store's listing: its ETag may need a HEAD.
    Object(object_store::ObjectMeta),
    /// From a listing with the properties and metadata (Azure).
    Described(ListedBlob),
    Prefix(String),
}

impl Candidate {
    fn name(&self) -> &str {
        match self {
            Candidate::Object(m) => m.location.as_ref(),
            Candidate::Described(b) => &b.name,
            Candidate::Prefix(name) => name,
        }
    }
}

/// One page of names from the store, in name order, and where the next one starts.
struct StorePage {
    candidates: Vec<Candidate>,
    token: Option<String>,
}

/// The query's rules on raw keys.
struct Filter<'q> {
    prefix: &'q str,
    start_after: Option<&'q str>,
    delimiter: Option<&'q str>,
    /// A common prefix whose keys are all accounted for: `start_after` itself when it is
    /// a common prefix of this query (a previous page returned it), or the common prefix
    /// `start_after` lies in (its remaining keys are reported as that prefix, first).
    skip_under: Option<String>,
}

impl<'q> Filter<'q> {
    fn new(q: &'q ListQuery) -> Self {
        let mut f = Filter {
            prefix: &q.prefix,
            start_after: q.start_after.as_deref(),
            delimiter: q.delimiter.as_deref().filter(|d| !d.is_empty()),
            skip_under: None,
        };
        f.skip_under = q.start_after.clone().filter(|sa| f.common_prefix(sa).as_deref() == Some(sa.as_str()));
        f
    }

    /// The common prefix `key` rolls up into, if any.
    fn common_prefix(&self, key: &str) -> Option<String> {
        let d = self.delimiter?;
        let rest = key.strip_prefix(self.prefix)?;
        rest.find(d).map(|at| key[..self.prefix.len() + at + d.len()].to_owned())
    }

    fn skipped(&self, key: &str) -> bool {
        !key.starts_with(self.prefix)
            || self.start_after == Some(key)
            || self.skip_under.as_deref().is_some_and(|s| key.starts_with(s))
    }
}

impl Inner {
    pub(super) async fn list_objects(&self, bucket: &str, q: &ListQuery) -> Result<ListPage> {
        if !valid_bucket(bucket) {
            return Err(Error::NoSuchBucket);
        }
        let mut filter = Filter::new(q);
        let bucket_root = self.bucket_root(bucket);
        let encoded = keys::encode_prefix(&q.prefix, self.dialect());
        let server_prefix = format!("{bucket_root}{}", encoded.encoded);
        let server_delimiter = filter.delimiter.filter(|d| match self.provider {
            // Azurite mishandles delimiters of more than one character.
            Provider::Azure => *d == "/",
            Provider::S3 | Provider::Gcs => keys::delimiter_is_safe(d),
        });
        let offset = q.start_after.as_deref().map(|sa| format!("{bucket_root}{}", offset_name(sa, self.dialect())));
        let want = q.max_keys.saturating_add(1);

        let mut entries: Vec<Entry> = Vec::new();
        if name_fits(self.provider, &server_prefix) {
            // `start_after` inside a common prefix: that prefix comes first if a key under
            // it follows `start_after` (stores differ on whether they report it), and its
            // keys are then accounted for.
            if filter.skip_under.is_none()
                && let (Some(sa), Some(offset)) = (q.start_after.as_deref(), offset.as_deref())
                && let Some(within) = filter.common_prefix(sa)
            {
                let name = format!("{bucket_root}{}", keys::encode_prefix(&within, self.dialect()).encoded);
                if self.has_key_after(&bucket_root, &name, &within, offset, Some(sa)).await? {
                    entries.push(Entry::Prefix(within.clone()));
                }
                filter.skip_under = Some(within);
            }
            let mut walk = Walk {
                inner: self,
                filter: &filter,
                bucket_root: &bucket_root,
                delimiter: server_delimiter,
                client_rollup: filter.delimiter.is_some() && server_delimiter.is_none(),
                offset: offset.as_deref(),
                seen_prefixes: HashSet::new(),
                entries: &mut entries,
                want,
            };
            walk.run(&server_prefix).await?;
        }
        if entries.is_empty() {
            self.require_bucket(bucket).await?;
        }
        let is_truncated = entries.len() > q.max_keys;
        entries.truncate(q.max_keys);
        let entries = self.settle(entries).await?;
        Ok(ListPage { entries, is_truncated })
    }

    /// Turn found objects into entries, looking up ETags where the listing's cannot be used.
    async fn settle(&self, entries: Vec<Entry>) -> Result<Vec<ListEntry>> {
        let settled: Vec<Option<ListEntry>> = stream::iter(entries)
            .map(|e| async move {
                match e {
                    Entry::Prefix(p) => Ok(Some(ListEntry::CommonPrefix(p))),
                    Entry::Object(Found::Complete(info)) => Ok(Some(ListEntry::Object(info))),
                    Entry::Object(Found::Listed { key, meta }) => {
                        let etag = metadata::strip_etag(meta.e_tag.as_deref().unwrap_or_default());
                        let listed_etag_is_coffers = match self.provider {
                            Provider::S3 => true,
                            Provider::Gcs => metadata::is_md5_hex(&etag),
                            Provider::Azure => false,
                        };
                        if listed_etag_is_coffers {
                            return Ok(Some(ListEntry::Object(ObjectInfo {
                                key,
                                size: meta.size,
                                etag,
                                last_modified: whole_seconds(SystemTime::from(meta.last_modified)),
                                meta: Default::default(),
                            })));
                        }
                        match self.head_path(&key, &meta.location).await {
                            Ok(info) => Ok(Some(ListEntry::Object(info))),
                            // Deleted since it was listed.
                            Err(object_store::Error::NotFound { .. }) => Ok(None),
                            Err(e) => Err(errors::failure(&self.tier, "list", &e)),
                        }
                    }
                }
            })
            .buffered(FAN_OUT)
            .try_collect()
            .await?;
        Ok(settled.into_iter().flatten().collect())
    }

    /// One page of names below `prefix` (raw, encoded), in name order: through Azure's own
    /// listing (properties and metadata included), or object_store's.
    async fn store_page(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
        offset: Option<&str>,
        max: usize,
        token: Option<String>,
    ) -> Result<StorePage> {
        let mut candidates = Vec::new();
        let token = match self.provider {
            Provider::Azure => {
                let page = self.raw.list_blobs(&self.tier, prefix, delimiter, offset, token.as_deref(), max).await?;
                candidates.extend(page.blobs.into_iter().map(Candidate::Described));
                candidates.extend(page.prefixes.into_iter().map(Candidate::Prefix));
                page.next_marker
            }
            Provider::S3 | Provider::Gcs => {
                let opts = PaginatedListOptions {
                    offset: offset.map(str::to_owned),
                    delimiter: delimiter.map(|d| Cow::Owned(d.to_owned())),
                    max_keys: Some(max),
                    page_token: token,
                    ..Default::default()
                };
                let page = self
                    .lister
                    .list_paginated(Some(prefix), opts)
                    .await
                    .map_err(|e| errors::failure(&self.tier, "list", &e))?;
                candidates.extend(page.result.objects.into_iter().map(Candidate::Object));
                candidates.extend(page.result.common_prefixes.into_iter().map(|p| {
                    Candidate::Prefix(match delimiter {
                        // object_store's paths lose the trailing `/`.
                        Some("/") => format!("{p}/"),
                        _ => p.to_string(),
                    })
                }));
                page.page_token
            }
        };
        candidates.sort_by(|a, b| a.name().cmp(b.name()));
        Ok(StorePage { candidates, token })
    }

    /// Whether a key under the raw prefix `within` (named below `name`) comes after the
    /// encoded `offset` (and is not `start_after` itself).
    async fn has_key_after(
        &self,
        bucket_root: &str,
        name: &str,
        within: &str,
        offset: &str,
        start_after: Option<&str>,
    ) -> Result<bool> {
        let mut token = None;
        loop {
            let page = self.store_page(name, None, Some(offset), STORE_PAGE, token).await?;
            let found = page.candidates.iter().any(|c| {
                let name = c.name();
                name > offset
                    && name
                        .strip_prefix(bucket_root)
                        .and_then(|rel| keys::decode_key(rel, self.dialect()))
                        .is_some_and(|k| k.starts_with(within) && Some(k.as_str()) != start_after)
            });
            if found {
                return Ok(true);
            }
            token = page.token;
            if token.is_none() {
                return Ok(false);
            }
        }
    }
}

/// Where a listing resumes after `start_after`, as an encoded name: its encoding as a key,
/// except when its last segment is empty (`photos/`, or the empty string): then the
/// encoding of the complete segments, so that keys such as `photos/ x` (which sort
/// before the encoded empty segment `%`) are not skipped; the key equal to `start_after`
/// itself is then dropped by the filter.
fn offset_name(start_after: &str, dialect: keys::Dialect) -> String {
    if start_after.is_empty() || start_after.ends_with('/') {
        keys::encode_prefix(start_after, dialect).encoded
    } else {
        keys::encode_key(start_after, dialect)
    }
}

/// The state of one listing.
struct Walk<'a, 'q> {
    inner: &'a Inner,
    filter: &'a Filter<'q>,
    bucket_root: &'a str,
    /// The delimiter the store applies.
    delimiter: Option<&'q str>,
    /// Whether common prefixes are computed here.
    client_rollup: bool,
    offset: Option<&'a str>,
    seen_prefixes: HashSet<String>,
    entries: &'a mut Vec<Entry>,
    want: usize,
}

impl Walk<'_, '_> {
    async fn run(&mut self, server_prefix: &str) -> Result<()> {
        let mut token: Option<String> = None;
        loop {
            let page_size =
                if self.client_rollup { STORE_PAGE } else { (self.want - self.entries.len() + 1).min(STORE_PAGE) };
            let page = self.inner.store_page(server_prefix, self.delimiter, self.offset, page_size, token).await?;
            for candidate in page.candidates {
                self.take(candidate);
                if self.entries.len() >= self.want {
                    return Ok(());
                }
            }
            token = page.token;
            if token.is_none() {
                return Ok(());
            }
        }
    }

    fn decode(&self, name: &str, what: &str) -> Option<String> {
        let rel = name.strip_prefix(self.bucket_root)?;
        let decoded = match what {
            "object" => keys::decode_key(rel, self.inner.dialect()),
            _ => keys::decode_common_prefix(rel, self.delimiter.unwrap_or("/"), self.inner.dialect()),
        };
        if decoded.is_none() {
            tracing::warn!(tier = %self.inner.tier, name, "skipping a listed {what} whose name coffer did not write");
        }
        decoded
    }

    /// Consider one name the store listed.
    fn take(&mut self, candidate: Candidate) {
        let name = candidate.name().to_owned();
        if let Candidate::Prefix(_) = candidate {
            let Some(prefix) = self.decode(&name, "common prefix") else { return };
            if !prefix.starts_with(self.filter.prefix) || self.filter.skip_under.as_deref() == Some(prefix.as_str()) {
                return;
            }
            // Wholly before the offset: the store ignored it.
            if self.offset.is_some_and(|o| name.as_str() <= o && !o.starts_with(&name)) {
                return;
            }
            self.push_prefix(prefix);
            return;
        }
        if self.offset.is_some_and(|o| name.as_str() <= o) {
            return; // the store ignored the offset
        }
        let Some(key) = self.decode(&name, "object") else { return };
        let found = match candidate {
            Candidate::Object(meta) => Found::Listed { key: key.clone(), meta },
            Candidate::Described(blob) => {
                let (meta, coffer_etag) = metadata::from_attributes(self.inner.provider, &blob.attributes);
                Found::Complete(ObjectInfo {
                    key: key.clone(),
                    size: blob.size,
                    etag: coffer_etag.unwrap_or_else(|| metadata::strip_etag(&blob.etag)),
                    last_modified: whole_seconds(blob.last_modified),
                    meta,
                })
            }
            Candidate::Prefix(_) => unreachable!("handled above"),
        };
        self.object(key, found);
    }

    fn object(&mut self, key: String, found: Found) {
        if self.filter.skipped(&key) {
            return;
        }
        if self.client_rollup
            && let Some(prefix) = self.filter.common_prefix(&key)
        {
            self.push_prefix(prefix);
            return;
        }
        self.entries.push(Entry::Object(found));
    }

    fn push_prefix(&mut self, prefix: String) {
        if self.seen_prefixes.insert(prefix.clone()) {
            self.entries.push(Entry::Prefix(prefix));
        }
    }
}
