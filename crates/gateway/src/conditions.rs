//! Conditional requests: `If-Match`, `If-None-Match`, `If-Modified-Since`,
//! `If-Unmodified-Since` (RFC 9110 §13.2.2, as S3 applies them), and the
//! `x-amz-copy-source-if-*` variants of a copy.

use std::time::{SystemTime, UNIX_EPOCH};

use coffer_backend::ObjectInfo;

use crate::{Error, Result};

/// An entity-tag condition: `*` or a list of tags (without quotes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EtagMatch {
    Any,
    Tags(Vec<String>),
}

impl EtagMatch {
    fn matches(&self, etag: &str) -> bool {
        match self {
            EtagMatch::Any => true,
            EtagMatch::Tags(tags) => tags.iter().any(|t| t == etag),
        }
    }
}

/// The preconditions of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditions {
    pub if_match: Option<EtagMatch>,
    pub if_none_match: Option<EtagMatch>,
    pub if_modified_since: Option<SystemTime>,
    pub if_unmodified_since: Option<SystemTime>,
}

fn not_modified(info: &ObjectInfo) -> Error {
    Error::NotModified { etag: info.etag.clone(), last_modified: info.last_modified }
}

/// HTTP dates have whole seconds; compare at that precision.
fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Conditions {
    pub fn is_empty(&self) -> bool {
        *self == Conditions::default()
    }

    /// For GET and HEAD: `PreconditionFailed` (412) or `NotModified` (304).
    /// If-Match wins over If-Unmodified-Since, If-None-Match over If-Modified-Since.
    pub fn check_read(&self, info: &ObjectInfo) -> Result<()> {
        let modified = secs(info.last_modified);
        match &self.if_match {
            Some(m) if !m.matches(&info.etag) => return Err(Error::PreconditionFailed),
            Some(_) => {}
            None => {
                if self.if_unmodified_since.is_some_and(|t| modified > secs(t)) {
                    return Err(Error::PreconditionFailed);
                }
            }
        }
        match &self.if_none_match {
            Some(m) if m.matches(&info.etag) => return Err(not_modified(info)),
            Some(_) => {}
            None => {
                if self.if_modified_since.is_some_and(|t| modified <= secs(t)) {
                    return Err(not_modified(info));
                }
            }
        }
        Ok(())
    }

    /// For the source of a copy: every failure is `PreconditionFailed`.
    pub fn check_copy_source(&self, info: &ObjectInfo) -> Result<()> {
        match self.check_read(info) {
            Err(Error::NotModified { .. }) => Err(Error::PreconditionFailed),
            other => other,
        }
    }

    /// For a write (PutObject, CompleteMultipartUpload with `If-None-Match: *` or `If-Match`):
    /// `existing` is the current object, if any.
    pub fn check_write(&self, existing: Option<&ObjectInfo>) -> Result<()> {
        if let Some(m) = &self.if_none_match
            && existing.is_some_and(|i| m.matches(&i.etag))
        {
            return Err(Error::PreconditionFailed);
        }
        if let Some(m) = &self.if_match {
            match existing {
                Some(i) if m.matches(&i.etag) => {}
                Some(_) => return Err(Error::PreconditionFailed),
                None => return Err(Error::NoSuchKey),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn info(etag: &str, at: u64) -> ObjectInfo {
        ObjectInfo {
            key: "k".into(),
            size: 1,
            etag: etag.into(),
            last_modified: UNIX_EPOCH + Duration::from_millis(at * 1000 + 500),
            meta: Default::default(),
        }
    }

    fn at(s: u64) -> Option<SystemTime> {
        Some(UNIX_EPOCH + Duration::from_secs(s))
    }

    fn tags(t: &[&str]) -> Option<EtagMatch> {
        Some(EtagMatch::Tags(t.iter().map(|s| s.to_string()).collect()))
    }

    #[test]
    fn read_conditions_table() {
        let obj = info("abc", 1000);
        let c = |if_match, if_none_match, ims, ius| Conditions {
            if_match,
            if_none_match,
            if_modified_since: ims,
            if_unmodified_since: ius,
        };
        #[rustfmt::skip]
        let table: Vec<(Conditions, Result<(), &str>)> = vec![
            (c(None, None, None, None), Ok(())),
            (c(tags(&["abc"]), None, None, None), Ok(())),
            (c(Some(EtagMatch::Any), None, None, None), Ok(())),
            (c(tags(&["x", "abc"]), None, None, None), Ok(())),
            (c(tags(&["x"]), None, None, None), Err("412")),
            (c(None, tags(&["abc"]), None, None), Err("304")),
            (c(None, tags(&["x"]), None, None), Ok(())),
            (c(None, None, at(1000), None), Err("304")),
            (c(None, None, at(999), None), Ok(())),
            (c(None, None, None, at(999)), Err("412")),
            (c(None, None, None, at(1000)), Ok(())),
            // If-Match true wins over a failing If-Unmodified-Since
            (c(tags(&["abc"]), None, None, at(10)), Ok(())),
            // If-None-Match false (no match) wins over If-Modified-Since
            (c(None, tags(&["x"]), at(5000), None), Ok(())),
            (c(None, tags(&["abc"]), at(10), None), Err("304")),
        ];
        for (i, (cond, want)) in table.into_iter().enumerate() {
            let got = match cond.check_read(&obj) {
                Ok(()) => Ok(()),
                Err(Error::PreconditionFailed) => Err("412"),
                Err(Error::NotModified { .. }) => Err("304"),
                Err(e) => panic!("row {i}: unexpected {e}"),
            };
            assert_eq!(got, want, "row {i}");
        }
    }

    #[test]
    fn copy_source_conditions_fail_with_412_only() {
        let obj = info("abc", 1000);
        let c = Conditions { if_none_match: tags(&["abc"]), ..Default::default() };
        assert!(matches!(c.check_copy_source(&obj), Err(Error::PreconditionFailed)));
    }

    #[test]
    fn write_conditions() {
        let obj = info("abc", 1000);
        let create_only = Conditions { if_none_match: Some(EtagMatch::Any), ..Default::default() };
        assert!(create_only.check_write(None).is_ok());
        assert!(matches!(create_only.check_write(Some(&obj)), Err(Error::PreconditionFailed)));
        let replace = Conditions { if_match: tags(&["abc"]), ..Default::default() };
        assert!(replace.check_write(Some(&obj)).is_ok());
        assert!(matches!(replace.check_write(None), Err(Error::NoSuchKey)));
    }
}
