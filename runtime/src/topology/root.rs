//! Reading files of a sysfs/procfs tree relative to a filesystem root.
//!
//! Discovery never opens an absolute path directly: every path is relative
//! to a [`FsRoot`], which is `/` on the live machine or the folder of a saved
//! tree. Symbolic links are resolved inside the root, so an absolute link
//! target in a saved tree (`/sys/devices/...`) stays inside that tree.
//! Errors name the full path of the file at fault.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use super::parse::{parse_list, parse_mask};
use super::{IdSet, TopologyError};

/// How many symbolic links one path may go through before giving up
/// (the kernel's own limit is 40).
const MAX_LINK_HOPS: usize = 40;

/// A filesystem root that discovery reads from.
#[derive(Clone, Debug)]
pub(crate) struct FsRoot {
    root: PathBuf,
}

impl FsRoot {
    /// A root at `root`, which must be an existing directory.
    pub(crate) fn open(root: PathBuf) -> Result<FsRoot, TopologyError> {
        match fs::metadata(&root) {
            Ok(meta) if meta.is_dir() => Ok(FsRoot { root }),
            Ok(_) => Err(TopologyError::file(&root, "not a directory")),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Err(TopologyError::file(
                &root,
                "no such directory (expected a root holding sys/ and proc/)",
            )),
            Err(err) => Err(TopologyError::io(&root, err)),
        }
    }

    /// The full path of `rel` under the root.
    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel.trim_start_matches('/'))
    }

    /// The contents of `rel`, or `None` when it does not exist. Other I/O
    /// errors (permissions, a directory where a file was expected) are
    /// returned with the file's name.
    pub(crate) fn read(&self, rel: &str) -> Result<Option<String>, TopologyError> {
        let path = self.path(rel);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(text_of(&bytes))),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(TopologyError::io(&path, err)),
        }
    }

    /// The contents of `rel` when it can be read; `None` when it is missing
    /// or unreadable. For optional files, whose absence has a fallback.
    pub(crate) fn read_optional(&self, rel: &str) -> Option<String> {
        fs::read(self.path(rel)).ok().map(|bytes| text_of(&bytes))
    }

    /// Parses `rel` as a kernel list (`0-3,8`); `None` when it is missing.
    pub(crate) fn read_list<K>(&self, rel: &str) -> Result<Option<IdSet<K>>, TopologyError> {
        match self.read(rel)? {
            Some(text) => parse_list(&text)
                .map(Some)
                .map_err(|e| TopologyError::file(&self.path(rel), e.to_string())),
            None => Ok(None),
        }
    }

    /// Parses `rel` as a kernel mask (`00000000,0000000f`); `None` when it
    /// is missing. An empty file is an empty set.
    pub(crate) fn read_mask<K>(&self, rel: &str) -> Result<Option<IdSet<K>>, TopologyError> {
        match self.read(rel)? {
            Some(text) if text.trim().is_empty() => Ok(Some(IdSet::new())),
            Some(text) => parse_mask(&text)
                .map(Some)
                .map_err(|e| TopologyError::file(&self.path(rel), e.to_string())),
            None => Ok(None),
        }
    }

    /// Reads an unsigned integer as C's `strtoul` would (leading digits),
    /// `None` when the file is missing, unreadable or holds no number.
    pub(crate) fn read_u64(&self, rel: &str) -> Option<u64> {
        leading_u64(self.read_optional(rel)?.trim_start())
    }

    /// Reads a signed integer (leading digits, optional `-`), `None` when
    /// the file is missing, unreadable or holds no number.
    pub(crate) fn read_i64(&self, rel: &str) -> Option<i64> {
        let text = self.read_optional(rel)?;
        let text = text.trim_start();
        match text.strip_prefix('-') {
            Some(rest) => leading_u64(rest)
                .and_then(|n| i64::try_from(n).ok())
                .map(|n| -n),
            None => leading_u64(text).and_then(|n| i64::try_from(n).ok()),
        }
    }

    /// Whether `rel` exists (following links).
    pub(crate) fn exists(&self, rel: &str) -> bool {
        self.path(rel).exists()
    }

    /// Whether `rel` is a directory (following links).
    pub(crate) fn is_dir(&self, rel: &str) -> bool {
        self.path(rel).is_dir()
    }

    /// The names in directory `rel`, sorted; `None` when it cannot be listed.
    pub(crate) fn list_dir(&self, rel: &str) -> Option<Vec<String>> {
        let mut names: Vec<String> = fs::read_dir(self.path(rel))
            .ok()?
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        Some(names)
    }

    /// The target of symbolic link `rel`, as written in the link.
    pub(crate) fn read_link(&self, rel: &str) -> Option<PathBuf> {
        fs::read_link(self.path(rel)).ok()
    }

    /// Resolves `rel` to a path relative to the root with no symbolic links
    /// left, following links inside the root: an absolute target is taken
    /// relative to the root, and `..` never climbs above it. `None` when a
    /// component is missing or links loop.
    pub(crate) fn resolve(&self, rel: &str) -> Option<PathBuf> {
        let mut pending: Vec<String> = components(Path::new(rel));
        pending.reverse();
        let mut resolved = PathBuf::new();
        let mut hops = 0;
        while let Some(part) = pending.pop() {
            if part == ".." {
                resolved.pop();
                continue;
            }
            let candidate = resolved.join(&part);
            let full = self.root.join(&candidate);
            let meta = fs::symlink_metadata(&full).ok()?;
            if !meta.file_type().is_symlink() {
                resolved = candidate;
                continue;
            }
            hops += 1;
            if hops > MAX_LINK_HOPS {
                return None;
            }
            let target = fs::read_link(&full).ok()?;
            if target.is_absolute() {
                resolved = PathBuf::new();
            }
            let mut parts = components(&target);
            parts.reverse();
            pending.extend(parts);
        }
        Some(resolved)
    }
}

/// The text of a sysfs file: up to the first NUL byte (some saved trees
/// keep the kernel's terminating NUL, which C readers never see).
fn text_of(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// The normal components of `path` and its `..`s, in order, as strings.
fn components(path: &Path) -> Vec<String> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".to_owned()),
            _ => None,
        })
        .collect()
}

/// The number made of the leading ASCII digits of `text`.
pub(crate) fn leading_u64(text: &str) -> Option<u64> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    text[..digits].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (tempfile::TempDir, FsRoot) {
        let dir = tempfile::tempdir().unwrap();
        let root = FsRoot::open(dir.path().to_owned()).unwrap();
        (dir, root)
    }

    #[test]
    fn missing_root_names_it() {
        let err = FsRoot::open(PathBuf::from("/definitely/not/here")).unwrap_err();
        assert_eq!(err.path(), Some(Path::new("/definitely/not/here")));
        assert!(err.to_string().contains("no such directory"), "{err}");
    }

    #[test]
    fn reads_and_parses() {
        let (dir, root) = tree();
        fs::create_dir_all(dir.path().join("a")).unwrap();
        fs::write(dir.path().join("a/list"), "0-2,5\n").unwrap();
        fs::write(dir.path().join("a/mask"), "00000000,00000011\n").unwrap();
        fs::write(dir.path().join("a/num"), "42 kB\n").unwrap();
        fs::write(dir.path().join("a/neg"), "-1\n").unwrap();
        fs::write(dir.path().join("a/bad"), "zz\n").unwrap();
        fs::write(dir.path().join("a/nul"), "0-1\n\0junk").unwrap();
        let list: IdSet<()> = root.read_list("/a/list").unwrap().unwrap();
        assert_eq!(list.to_string(), "0-2,5");
        let mask: IdSet<()> = root.read_mask("a/mask").unwrap().unwrap();
        fs::write(dir.path().join("a/empty"), "\n").unwrap();
        assert!(root.read_mask::<()>("a/empty").unwrap().unwrap().is_empty());
        assert_eq!(mask.to_string(), "0,4");
        assert_eq!(root.read_u64("a/num"), Some(42));
        let nul: IdSet<()> = root.read_list("a/nul").unwrap().unwrap();
        assert_eq!(nul.to_string(), "0-1");
        assert_eq!(root.read_i64("a/neg"), Some(-1));
        assert_eq!(root.read_u64("a/missing"), None);
        assert!(root.read_list::<()>("a/missing").unwrap().is_none());
        let err = root.read_list::<()>("a/bad").unwrap_err();
        assert!(err.to_string().contains("a/bad"), "{err}");
        assert_eq!(
            root.list_dir("a").unwrap(),
            ["bad", "empty", "list", "mask", "neg", "nul", "num"]
        );
    }

    #[test]
    fn links_resolve_inside_the_root() {
        let (dir, root) = tree();
        let base = dir.path();
        fs::create_dir_all(base.join("sys/devices/pci0000:00/0000:00:01.0/net/eth0")).unwrap();
        fs::create_dir_all(base.join("sys/class/net")).unwrap();
        fs::create_dir_all(base.join("sys/bus/pci/devices")).unwrap();
        // A relative link, as sysfs writes them.
        std::os::unix::fs::symlink(
            "../../devices/pci0000:00/0000:00:01.0/net/eth0",
            base.join("sys/class/net/eth0"),
        )
        .unwrap();
        // An absolute link: must land inside the root, not on this machine.
        std::os::unix::fs::symlink(
            "/sys/devices/pci0000:00/0000:00:01.0",
            base.join("sys/bus/pci/devices/0000:00:01.0"),
        )
        .unwrap();
        assert_eq!(
            root.resolve("sys/class/net/eth0").unwrap(),
            Path::new("sys/devices/pci0000:00/0000:00:01.0/net/eth0")
        );
        assert_eq!(
            root.resolve("/sys/bus/pci/devices/0000:00:01.0/../../..")
                .unwrap(),
            Path::new("sys")
        );
        // `..` cannot climb out of the root.
        assert_eq!(root.resolve("../../sys").unwrap(), Path::new("sys"));
        assert!(root.resolve("sys/nothing").is_none());
        // A loop gives up.
        std::os::unix::fs::symlink("loop", base.join("loop")).unwrap();
        assert!(root.resolve("loop").is_none());
    }
}
