//! Where the filesystem tier runs the short calls of a HEAD and a small GET.
//!
//! Every call to tokio's blocking pool is a hand-off between threads, and on a small
//! machine waking a parked thread costs more than opening, reading and closing a 4 KiB file
//! that sits in the page cache (measured in docs/BENCHMARKS.md). On a local filesystem
//! those calls therefore run inline, on the request's own thread: they take microseconds,
//! like the socket calls around them. On a network or FUSE filesystem (NFS, SMB, a cloud
//! bucket mounted by FUSE) a single `open` can take seconds, and must not stall the
//! runtime's few threads: there they go to the blocking pool. Writes, deletes and large
//! reads always go to the pool (they fsync, or stream).

use std::path::Path;

use serde::Deserialize;

/// The `io` setting of a filesystem tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsIo {
    /// Inline on a local filesystem (found by `statfs`), on the blocking pool otherwise.
    #[default]
    Auto,
    /// Always inline: only for a directory known to answer in microseconds.
    Inline,
    /// Always on the blocking pool.
    Pool,
}

impl FsIo {
    /// Whether short calls on the filesystem holding `root` run inline.
    pub fn inline_for(self, root: &Path) -> bool {
        match self {
            FsIo::Inline => true,
            FsIo::Pool => false,
            FsIo::Auto => filesystem_type(root).is_some_and(is_local),
        }
    }
}

/// The `f_type` of the filesystem holding `path` (`statfs(2)`).
fn filesystem_type(path: &Path) -> Option<u32> {
    let st = rustix::fs::statfs(path).ok()?;
    // The magic numbers are 32-bit; `f_type` is a signed word of the target's width.
    Some(st.f_type as u32)
}

/// Filesystems on a local block device or in memory (`linux/magic.h`; ZFS's is its own).
/// Anything else — NFS, SMB, Ceph, 9p, FUSE, an unknown type — is treated as remote.
const LOCAL: &[(u32, &str)] = &[
    (0xEF53, "ext2/3/4"),
    (0x5846_5342, "xfs"),
    (0x9123_683E, "btrfs"),
    (0xF2F5_2010, "f2fs"),
    (0x2FC1_2FC1, "zfs"),
    (0xCA45_1A4E, "bcachefs"),
    (0x0102_1994, "tmpfs"),
    (0x8584_58F6, "ramfs"),
    (0x794C_7630, "overlayfs"),
];

fn is_local(f_type: u32) -> bool {
    LOCAL.iter().any(|&(magic, _)| magic == f_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_modes_ignore_the_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        assert!(FsIo::Inline.inline_for(dir.path()));
        assert!(!FsIo::Pool.inline_for(dir.path()));
        // A path that does not exist cannot be classified: the safe choice.
        assert!(!FsIo::Auto.inline_for(&dir.path().join("missing")));
    }

    #[test]
    fn auto_is_inline_on_the_local_filesystems_only() {
        assert!(is_local(0xEF53));
        assert!(is_local(0x0102_1994));
        assert!(!is_local(0x6969)); // NFS
        assert!(!is_local(0xFF53_4D42)); // CIFS
        assert!(!is_local(0x6573_5546)); // FUSE (s3fs, gcsfuse, blobfuse)
        // /proc is a filesystem of its own kind, neither local storage nor in this list.
        assert_eq!(filesystem_type(Path::new("/proc")), Some(0x9FA0));
        assert!(!FsIo::Auto.inline_for(Path::new("/proc")));
        // The test's temporary directory is on a local disk (or tmpfs, or overlayfs) here.
        let dir = tempfile::tempdir().unwrap();
        let t = filesystem_type(dir.path()).unwrap();
        assert_eq!(FsIo::Auto.inline_for(dir.path()), is_local(t), "f_type {t:#x}");
    }

    #[test]
    fn the_setting_parses() {
        #[derive(Deserialize)]
        struct T {
            io: FsIo,
        }
        let parse = |s: &str| serde_json::from_str::<T>(s).map(|t| t.io);
        assert_eq!(parse(r#"{"io":"auto"}"#).unwrap(), FsIo::Auto);
        assert_eq!(parse(r#"{"io":"inline"}"#).unwrap(), FsIo::Inline);
        assert_eq!(parse(r#"{"io":"pool"}"#).unwrap(), FsIo::Pool);
        assert!(parse(r#"{"io":"fast"}"#).is_err());
    }
}
