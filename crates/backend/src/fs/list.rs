//! Listing a bucket in ascending key order, with prefix, delimiter, start-after and limit.
//!
//! The tree is walked depth-first in key order: within a directory, children are taken in
//! the order of their decoded segment, an object file as `seg` and a directory as `seg/` —
//! exactly the order of the keys they hold, so the walk yields keys in global byte order
//! without ever collecting the whole bucket. The walk stops as soon as one entry more than
//! asked for has been found (that extra entry is what makes `is_truncated` exact), skips
//! directories that cannot hold a matching key (outside the prefix, wholly before
//! `start_after`, under an already returned common prefix), and rolls a directory whose keys
//! all share one common prefix into that prefix after checking only that it holds a
//! matching object.
//!
//! `start_after` is exclusive. When it is exactly a common prefix this query could have
//! returned (it starts with the prefix and rolls up into itself, so it ends with the
//! delimiter), every key under it is skipped too: a previous page returned that prefix and
//! the caller pages on from it. A `start_after` that merely ends with the delimiter, such as
//! a key `a/` listed as an object under the prefix `a/`, skips only itself, so paging with
//! the last entry returned is always exact.
//!
//! The walk is iterative (an explicit stack), because a key may nest a thousand levels deep.
//! Runs on the blocking pool.

use std::io;
use std::path::{Path, PathBuf};

use super::layout::{self, Decoded, NAME_FILE};
use super::object_file::{self, Trailer, is_absent};
use crate::{Error, ListEntry, ListPage, ListQuery, Result};

/// List `bucket_dir` as `query` asks. Blocking.
pub(crate) fn list(bucket_dir: &Path, query: &ListQuery) -> Result<ListPage> {
    if !bucket_dir.is_dir() {
        return Err(Error::NoSuchBucket);
    }
    let filter = Filter::new(query);
    let mut walk =
        Walk { filter: &filter, entries: Vec::new(), limit: query.max_keys.saturating_add(1), last_prefix: None };
    let (start_dir, start_prefix) = layout::prefix_dir(bucket_dir, &query.prefix);
    // Every stored key's file lies below `start_dir` within `MAX_PATH`: a longer directory
    // path holds no key (and the filesystem would refuse it as too long).
    if start_dir.as_os_str().len() <= layout::MAX_PATH {
        walk.run(&start_dir, start_prefix)?;
    }
    let is_truncated = walk.entries.len() > query.max_keys;
    walk.entries.truncate(query.max_keys);
    Ok(ListPage { entries: walk.entries, is_truncated })
}

/// Which keys a query selects, and how they roll up.
struct Filter<'q> {
    prefix: &'q str,
    delimiter: Option<&'q str>,
    start_after: Option<&'q str>,
    /// `start_after` when it is a common prefix this query could have returned: every key
    /// under it was rolled up into it, and is skipped.
    skip_under: Option<&'q str>,
}

impl<'q> Filter<'q> {
    fn new(query: &'q ListQuery) -> Self {
        let mut filter = Filter {
            prefix: &query.prefix,
            delimiter: query.delimiter.as_deref().filter(|d| !d.is_empty()),
            start_after: query.start_after.as_deref(),
            skip_under: None,
        };
        filter.skip_under = filter.start_after.filter(|sa| filter.common_prefix(sa) == Some(*sa));
        filter
    }

    /// The common prefix `s` (a key, or a directory's key prefix) rolls up into: the prefix,
    /// then everything up to and including the first delimiter after it.
    fn common_prefix<'s>(&self, s: &'s str) -> Option<&'s str> {
        let delimiter = self.delimiter?;
        let rest = s.strip_prefix(self.prefix)?;
        let at = rest.find(delimiter)?;
        Some(&s[..self.prefix.len() + at + delimiter.len()])
    }

    /// Whether a key (known to start with the prefix) comes after `start_after`.
    fn after_start(&self, key: &str) -> bool {
        self.start_after.is_none_or(|sa| key > sa) && self.skip_under.is_none_or(|s| !key.starts_with(s))
    }

    /// Whether no key below the directory prefix `dir` can come after `start_after`.
    fn dir_before_start(&self, dir: &str) -> bool {
        self.start_after.is_some_and(|sa| !sa.starts_with(dir) && dir < sa)
            || self.skip_under.is_some_and(|s| dir.starts_with(s))
    }

    /// Whether some key below the directory prefix `dir` might not come after `start_after`.
    fn start_cuts_into(&self, dir: &str) -> bool {
        self.start_after.is_some_and(|sa| sa.starts_with(dir) || dir <= sa)
    }
}

/// What to do next.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

/// One entry of a directory, decoded.
struct Child {
    /// The decoded segment.
    segment: String,
    is_dir: bool,
    path: PathBuf,
    /// The trailer, when it had to be read to learn the segment (hashed object files);
    /// boxed, because a directory's children are all held at once and most have none.
    trailer: Option<Box<Trailer>>,
}

/// A child as read from its directory, before it is taken: its file name instead of its
/// path, which is made only for the children a page visits.
struct Entry {
    segment: String,
    is_dir: bool,
    /// The file name within the directory (also what tells apart two entries that decode to
    /// the same segment, which only damage can make).
    name: String,
    trailer: Option<Box<Trailer>>,
}

impl Entry {
    /// Key order: an object as `seg`, a directory as `seg/`, compared bytewise.
    fn key_order(&self, other: &Self) -> std::cmp::Ordering {
        let a = self.segment.bytes().chain(self.is_dir.then_some(b'/'));
        let b = other.segment.bytes().chain(other.is_dir.then_some(b'/'));
        a.cmp(b).then_with(|| self.name.cmp(&other.name))
    }
}

/// In a max-heap, the entry first in key order on top.
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.key_order(self)
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Entry {}

/// A directory's children, taken in key order. A page takes a few of a large directory's
/// entries, so they are kept in a heap (built in linear time) rather than sorted whole, and
/// each one's path is made when it is taken.
struct Children {
    dir: PathBuf,
    heap: std::collections::BinaryHeap<Entry>,
}

impl Iterator for Children {
    type Item = Child;

    fn next(&mut self) -> Option<Child> {
        let e = self.heap.pop()?;
        Some(Child { path: self.dir.join(&e.name), segment: e.segment, is_dir: e.is_dir, trailer: e.trailer })
    }
}

/// The state of one listing.
struct Walk<'f, 'q> {
    filter: &'f Filter<'q>,
    entries: Vec<ListEntry>,
    limit: usize,
    /// The last common prefix emitted: everything under it is already accounted for.
    last_prefix: Option<String>,
}

impl Walk<'_, '_> {
    /// Walk from `dir`, whose keys all start with `dir_prefix`.
    fn run(&mut self, dir: &Path, dir_prefix: String) -> io::Result<()> {
        let f = self.filter;
        let mut stack = vec![(read_children(dir, &dir_prefix, f)?, dir_prefix)];
        while let Some((children, dir_prefix)) = stack.last_mut() {
            let Some(child) = children.next() else {
                stack.pop();
                continue;
            };
            let flow = if child.is_dir {
                let sub = format!("{dir_prefix}{}/", child.segment);
                match self.visit_dir(&child, &sub)? {
                    Visit::Descend => {
                        let grandchildren = read_children(&child.path, &sub, f)?;
                        stack.push((grandchildren, sub));
                        Flow::Continue
                    }
                    Visit::Done(flow) => flow,
                }
            } else {
                let key = format!("{dir_prefix}{}", child.segment);
                self.visit_object(child, key)?
            };
            if flow == Flow::Stop {
                break;
            }
        }
        Ok(())
    }

    fn visit_object(&mut self, child: Child, key: String) -> io::Result<Flow> {
        let f = self.filter;
        if !key.starts_with(f.prefix) {
            // Past the prefix, every later key is too.
            return Ok(if key.as_str() > f.prefix { Flow::Stop } else { Flow::Continue });
        }
        if !f.after_start(&key) || self.under_last_prefix(&key) {
            return Ok(Flow::Continue);
        }
        if let Some(common) = f.common_prefix(&key) {
            if child.trailer.is_none() && readable_trailer(&child.path).is_none() {
                return Ok(Flow::Continue);
            }
            let common = common.to_owned();
            return Ok(self.push_prefix(common));
        }
        let trailer = match child.trailer {
            Some(t) => *t,
            None => match object_file::open(&child.path) {
                Ok(Some(o)) => o.trailer,
                Ok(None) => return Ok(Flow::Continue), // deleted meanwhile
                Err(e) => {
                    tracing::warn!(path = %child.path.display(), error = %e, "skipping an unreadable object file");
                    return Ok(Flow::Continue);
                }
            },
        };
        let mut info = trailer.object_info();
        info.key = key;
        Ok(self.push(ListEntry::Object(info)))
    }

    fn visit_dir(&mut self, child: &Child, sub: &str) -> io::Result<Visit> {
        let f = self.filter;
        if !sub.starts_with(f.prefix) && !f.prefix.starts_with(sub) {
            return Ok(Visit::Done(if sub > f.prefix { Flow::Stop } else { Flow::Continue }));
        }
        if f.dir_before_start(sub) || self.under_last_prefix(sub) {
            return Ok(Visit::Done(Flow::Continue));
        }
        if let Some(common) = f.common_prefix(sub) {
            // Every key below rolls up into `common`: emit it if one of them is selected.
            let common = common.to_owned();
            if self.any_selected(&child.path, sub)? {
                return Ok(Visit::Done(self.push_prefix(common)));
            }
            return Ok(Visit::Done(Flow::Continue));
        }
        Ok(Visit::Descend)
    }

    /// Whether the directory `dir` (key prefix `dir_prefix`, within the query's prefix)
    /// holds an object that comes after `start_after`.
    fn any_selected(&self, dir: &Path, dir_prefix: &str) -> io::Result<bool> {
        let f = self.filter;
        if !f.start_cuts_into(dir_prefix) {
            return has_object(dir);
        }
        let mut pending = vec![(dir.to_path_buf(), dir_prefix.to_owned())];
        while let Some((dir, dir_prefix)) = pending.pop() {
            for child in read_children(&dir, &dir_prefix, f)? {
                if child.is_dir {
                    let sub = format!("{dir_prefix}{}/", child.segment);
                    if f.dir_before_start(&sub) {
                        continue;
                    }
                    if !f.start_cuts_into(&sub) {
                        if has_object(&child.path)? {
                            return Ok(true);
                        }
                        continue;
                    }
                    pending.push((child.path, sub));
                } else if f.after_start(&format!("{dir_prefix}{}", child.segment))
                    && (child.trailer.is_some() || readable_trailer(&child.path).is_some())
                {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    fn under_last_prefix(&self, s: &str) -> bool {
        self.last_prefix.as_deref().is_some_and(|p| s.starts_with(p))
    }

    fn push_prefix(&mut self, common: String) -> Flow {
        self.last_prefix = Some(common.clone());
        self.push(ListEntry::CommonPrefix(common))
    }

    fn push(&mut self, entry: ListEntry) -> Flow {
        self.entries.push(entry);
        if self.entries.len() >= self.limit { Flow::Stop } else { Flow::Continue }
    }
}

/// What to do with a directory.
enum Visit {
    Descend,
    Done(Flow),
}

/// The entries of `dir` (whose keys start with `dir_prefix`) that this backend wrote,
/// decoded, to be taken in key order, but for objects `filter` puts before its start (a
/// later page of a large directory then holds only what follows the previous one). A
/// missing directory has none.
fn read_children(dir: &Path, dir_prefix: &str, filter: &Filter) -> io::Result<Children> {
    // The key of an object, to compare with the start: one buffer for the whole directory.
    let mut key = String::new();
    let mut before_start = |segment: &str| {
        filter.start_after.is_some() && {
            key.clear();
            key.push_str(dir_prefix);
            key.push_str(segment);
            key.starts_with(filter.prefix) && !filter.after_start(&key)
        }
    };
    let mut children = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if is_absent(&e) => return Ok(Children { dir: dir.to_path_buf(), heap: children.into() }),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else { continue };
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            let segment = match layout::decode_name(&name, true) {
                Some(Decoded::Segment(s)) => s,
                Some(Decoded::Hashed) => match hashed_dir_segment(&entry.path(), dir_prefix)? {
                    Some(s) => s,
                    None => continue,
                },
                None => continue,
            };
            children.push(Entry { segment, is_dir: true, name, trailer: None });
        } else if file_type.is_file() {
            match layout::decode_name(&name, false) {
                Some(Decoded::Segment(segment)) if !before_start(&segment) => {
                    children.push(Entry { segment, is_dir: false, name, trailer: None })
                }
                Some(Decoded::Segment(_)) => {}
                Some(Decoded::Hashed) => {
                    let Some(trailer) = readable_trailer(&entry.path()) else { continue };
                    let Some(segment) = trailer.key.strip_prefix(dir_prefix).filter(|s| !s.contains('/')) else {
                        continue;
                    };
                    if before_start(segment) {
                        continue;
                    }
                    let segment = segment.to_owned();
                    children.push(Entry { segment, is_dir: false, name, trailer: Some(Box::new(trailer)) });
                }
                None => {}
            }
        }
    }
    Ok(Children { dir: dir.to_path_buf(), heap: children.into() })
}

/// The raw segment of a hashed directory: from its name file, or, should that be missing
/// (a delete and a put raced), from the key of any object below it. `None` when the
/// directory holds no object.
fn hashed_dir_segment(dir: &Path, dir_prefix: &str) -> io::Result<Option<String>> {
    match std::fs::read_to_string(dir.join(NAME_FILE)) {
        Ok(s) => return Ok(Some(s)),
        Err(e) if is_absent(&e) => {}
        Err(e) => return Err(e),
    }
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if is_absent(&e) => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else { continue };
            let file_type = entry.file_type()?;
            if file_type.is_dir() && layout::decode_name(&name, true).is_some() {
                pending.push(entry.path());
            } else if file_type.is_file() && layout::decode_name(&name, false).is_some() {
                let Some(trailer) = readable_trailer(&entry.path()) else { continue };
                if let Some(rest) = trailer.key.strip_prefix(dir_prefix)
                    && let Some((segment, _)) = rest.split_once('/')
                {
                    return Ok(Some(segment.to_owned()));
                }
            }
        }
    }
    Ok(None)
}

/// Whether the tree at `dir` holds at least one (readable) object file.
fn has_object(dir: &Path) -> io::Result<bool> {
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if is_absent(&e) => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else { continue };
            let file_type = entry.file_type()?;
            if file_type.is_file()
                && layout::decode_name(&name, false).is_some()
                && readable_trailer(&entry.path()).is_some()
            {
                return Ok(true);
            }
            if file_type.is_dir() && layout::decode_name(&name, true).is_some() {
                pending.push(entry.path());
            }
        }
    }
    Ok(false)
}

/// The trailer of an object file, or `None` (with a warning when it is corrupt).
fn readable_trailer(path: &Path) -> Option<Trailer> {
    match object_file::open(path) {
        Ok(found) => found.map(|o| o.trailer),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "skipping an unreadable object file");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ObjectMeta;

    /// A small deterministic generator (xorshift64*), so failures reproduce.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
    }

    /// Write an object file for `key` directly (no runtime needed).
    fn put(bucket_dir: &Path, key: &str) {
        let kp = layout::key_path(bucket_dir, key).unwrap();
        let mut dir = bucket_dir.to_path_buf();
        for d in &kp.dirs {
            dir.push(&d.name);
            std::fs::create_dir_all(&dir).unwrap();
            if let Some(raw) = &d.hashed_raw {
                std::fs::write(dir.join(NAME_FILE), raw).unwrap();
            }
        }
        let trailer = Trailer {
            key: key.to_owned(),
            etag: "0".repeat(32),
            size: key.len() as u64,
            last_modified: 0,
            meta: ObjectMeta::default(),
            parts: None,
        };
        let mut bytes = key.as_bytes().to_vec();
        bytes.extend(trailer.encode());
        std::fs::write(kp.file_path(bucket_dir), bytes).unwrap();
    }

    /// The reference, written independently of the walk: select, roll up and paginate a
    /// sorted list of all keys.
    fn reference(keys: &[String], q: &ListQuery) -> (Vec<String>, bool) {
        let delimiter = q.delimiter.as_deref().filter(|d| !d.is_empty());
        let roll_up = |key: &str| -> Option<String> {
            let d = delimiter?;
            let rest = key.strip_prefix(q.prefix.as_str())?;
            rest.find(d).map(|at| format!("{}{}{}", q.prefix, &rest[..at], d))
        };
        // A start-after that is itself a common prefix of this query hides all keys under it.
        let skip = q.start_after.clone().filter(|sa| roll_up(sa).as_deref() == Some(sa.as_str()));
        let mut sorted: Vec<&String> = keys.iter().collect();
        sorted.sort();
        sorted.dedup();
        let mut all: Vec<String> = Vec::new();
        for key in sorted {
            let selected = key.starts_with(&q.prefix)
                && q.start_after.as_ref().is_none_or(|sa| key > sa)
                && skip.as_ref().is_none_or(|s| !key.starts_with(s.as_str()));
            if !selected {
                continue;
            }
            let entry = match roll_up(key) {
                Some(common) => format!("P:{common}"),
                None => format!("O:{key}"),
            };
            if all.last() != Some(&entry) {
                all.push(entry);
            }
        }
        let truncated = all.len() > q.max_keys;
        all.truncate(q.max_keys);
        (all, truncated)
    }

    fn names(page: &ListPage) -> Vec<String> {
        page.entries
            .iter()
            .map(|e| match e {
                ListEntry::Object(o) => format!("O:{}", o.key),
                ListEntry::CommonPrefix(p) => format!("P:{p}"),
            })
            .collect()
    }

    fn check(bucket_dir: &Path, keys: &[String], q: &ListQuery) {
        let page = list(bucket_dir, q).unwrap();
        let (want, truncated) = reference(keys, q);
        assert_eq!(names(&page), want, "query {q:?}");
        assert_eq!(page.is_truncated, truncated, "is_truncated of {q:?}");
    }

    /// Page through with `start_after` = the last entry, and compare with one big page.
    fn check_pagination(bucket_dir: &Path, keys: &[String], prefix: &str, delimiter: Option<&str>, page_size: usize) {
        let mut q = ListQuery {
            prefix: prefix.to_owned(),
            delimiter: delimiter.map(str::to_owned),
            start_after: None,
            max_keys: page_size,
        };
        let mut seen = Vec::new();
        for _ in 0..10_000 {
            let page = list(bucket_dir, &q).unwrap();
            let got = names(&page);
            seen.extend(got.iter().cloned());
            if !page.is_truncated {
                break;
            }
            assert_eq!(got.len(), page_size);
            q.start_after = Some(got.last().unwrap()[2..].to_owned());
        }
        let whole = ListQuery { start_after: None, max_keys: usize::MAX, ..q };
        let (want, _) = reference(keys, &whole);
        assert_eq!(seen, want, "pagination by {page_size} of {prefix:?} / {delimiter:?}");
    }

    fn fixed_keys() -> Vec<String> {
        [
            "a", "a/", "a/b", "a-b", "a//c", "a/b/c", "a/b/d", "a/c", "a0", "ab", "b", "résumé", "%41", "A", "/",
            "//x", "z/y/x/w", "z/y/", "z.y", "..", "../x", "x y", "a%", "a%/b", "é/1", "é/2",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    #[test]
    fn table_cases_match_the_reference() {
        let dir = tempfile::tempdir().unwrap();
        let keys = fixed_keys();
        for k in &keys {
            put(dir.path(), k);
        }
        // Strays are ignored: names this backend cannot have written, and files that are
        // not in the object format even if their name could be a key.
        std::fs::write(dir.path().join(".tmp-stray"), b"x").unwrap();
        std::fs::write(dir.path().join("%zz"), b"x").unwrap();
        std::fs::write(dir.path().join("stray%"), b"x").unwrap();
        std::fs::create_dir(dir.path().join("s%")).unwrap();
        std::fs::write(dir.path().join("s%/.tmp"), b"x").unwrap();
        std::fs::create_dir(dir.path().join("empty%")).unwrap();
        std::fs::create_dir_all(dir.path().join("q%/r%")).unwrap();
        let prefixes = ["", "a", "a/", "a/b", "a/b/", "z", "z/y/", "é", "é/", "/", "nothing", "a%", "."];
        let delimiters = [None, Some("/"), Some("-"), Some("b"), Some("//"), Some("é"), Some("")];
        let starts =
            [None, Some(""), Some("a"), Some("a/"), Some("a/b"), Some("a-"), Some("z/"), Some("zz"), Some("/")];
        for prefix in prefixes {
            for delimiter in delimiters {
                for start_after in starts {
                    for max_keys in [0, 1, 2, 3, 1000] {
                        let q = ListQuery {
                            prefix: prefix.to_owned(),
                            delimiter: delimiter.map(str::to_owned),
                            start_after: start_after.map(str::to_owned),
                            max_keys,
                        };
                        check(dir.path(), &keys, &q);
                    }
                }
                for page_size in [1, 2, 5] {
                    check_pagination(dir.path(), &keys, prefix, delimiter, page_size);
                }
            }
        }
        // `q/r` holds no object: no common prefix for it.
        let q = ListQuery { delimiter: Some("/".into()), max_keys: 1000, ..Default::default() };
        let page = list(dir.path(), &q).unwrap();
        assert!(!names(&page).contains(&"P:q/".to_owned()));
        assert!(!names(&page).contains(&"P:empty/".to_owned()));
    }

    #[test]
    fn randomized_cases_match_the_reference() {
        let segments = ["a", "b", "ab", "", ".", "..", "-", "é", "%", "a b", "z", "a-", "aa"];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..24 {
            let dir = tempfile::tempdir().unwrap();
            let mut keys = Vec::new();
            for _ in 0..(20 + rng.below(60)) {
                let depth = 1 + rng.below(4);
                let key: Vec<&str> = (0..depth).map(|_| rng.pick(&segments)).collect();
                let key = key.join("/");
                if key.is_empty() {
                    continue;
                }
                put(dir.path(), &key);
                keys.push(key);
            }
            for _ in 0..150 {
                let prefix = match rng.below(3) {
                    0 => String::new(),
                    _ => {
                        let k = &keys[rng.below(keys.len())];
                        let mut end = rng.below(k.len() + 1);
                        while !k.is_char_boundary(end) {
                            end -= 1;
                        }
                        k[..end].to_owned()
                    }
                };
                let delimiter = match rng.below(5) {
                    0 => None,
                    1 | 2 => Some("/".to_owned()),
                    3 => Some(rng.pick(&["a", "b", "-", "é", "/a", "a/"]).to_owned()),
                    _ => Some("//".to_owned()),
                };
                let start_after = match rng.below(3) {
                    0 => None,
                    1 => Some(keys[rng.below(keys.len())].clone()),
                    _ => Some(format!("{}{}", rng.pick(&segments), rng.pick(&["", "/", "-"]))),
                };
                let max_keys = 1 + rng.below(8);
                let q = ListQuery { prefix: prefix.clone(), delimiter: delimiter.clone(), start_after, max_keys };
                check(dir.path(), &keys, &q);
                if rng.below(10) == 0 {
                    check_pagination(dir.path(), &keys, &prefix, delimiter.as_deref(), max_keys);
                }
            }
        }
    }

    #[test]
    fn hashed_names_list_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let long = "L".repeat(250);
        let keys = vec![
            long.clone(),
            format!("{long}/x"),
            format!("{long}/{long}"),
            format!("{long}/{long}/y"),
            format!("{long}0"),
            "M".to_owned(),
            "K".to_owned(),
        ];
        for k in &keys {
            put(dir.path(), k);
        }
        for delimiter in [None, Some("/".to_owned())] {
            for prefix in ["", "L", &long, &format!("{long}/")] {
                let q = ListQuery {
                    prefix: prefix.to_owned(),
                    delimiter: delimiter.clone(),
                    max_keys: 100,
                    ..Default::default()
                };
                check(dir.path(), &keys, &q);
            }
            check_pagination(dir.path(), &keys, "", delimiter.as_deref(), 1);
        }
        // A hashed directory that lost its name file is still listed.
        let kp = layout::key_path(dir.path(), &format!("{long}/x")).unwrap();
        std::fs::remove_file(kp.dir_path(dir.path(), 1).join(NAME_FILE)).unwrap();
        check(dir.path(), &keys, &ListQuery { max_keys: 100, ..Default::default() });
    }

    #[test]
    fn deep_keys_do_not_overflow() {
        let dir = tempfile::tempdir().unwrap();
        let keys = vec!["a/".repeat(500), format!("{}b", "a/".repeat(499))];
        for k in &keys {
            put(dir.path(), k);
        }
        check(dir.path(), &keys, &ListQuery { max_keys: 10, ..Default::default() });
        check(dir.path(), &keys, &ListQuery { max_keys: 10, start_after: Some(keys[1].clone()), ..Default::default() });
    }
}
