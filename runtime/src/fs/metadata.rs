//! [`Metadata`] and [`FileType`]: what `statx(2)` says about a file.
//!
//! tokio::fs returns `std::fs::Metadata`, but std offers no way to build
//! one from a `statx` result that something else (here, the io_uring
//! `IORING_OP_STATX` operation) filled in: its only constructors are
//! std's own `stat` calls. So numa_rt has its own types with the same
//! methods (and std's Unix extension traits, `MetadataExt` and
//! `FileTypeExt`), which is what code written against tokio::fs calls.
//! Code that needs the std type itself can convert with
//! [`Metadata::from`] a std one or ask std (`std::fs::metadata`).

use std::fmt;
use std::fs::Permissions;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::time::{Duration, SystemTime};

/// What `statx` was asked for: everything `stat` gives, and the birth time.
pub(super) const STATX_MASK: u32 = libc::STATX_BASIC_STATS | libc::STATX_BTIME;

/// Metadata of a file: type, size, permissions, times, owner, inode.
///
/// The same methods as `std::fs::Metadata` (and its
/// `std::os::unix::fs::MetadataExt`), built from one `statx` call:
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// use std::os::unix::fs::MetadataExt;
/// let meta = numa_rt_runtime::fs::metadata("Cargo.toml").await?;
/// println!("{} bytes, mode {:o}, dir: {}", meta.len(), meta.mode(), meta.is_dir());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Metadata {
    stx: libc::statx,
}

impl Metadata {
    /// Wraps what a successful `statx` wrote.
    pub(super) fn from_statx(stx: libc::statx) -> Metadata {
        Metadata { stx }
    }

    /// The file's type.
    pub fn file_type(&self) -> FileType {
        FileType {
            mode: u32::from(self.stx.stx_mode),
        }
    }

    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.file_type().is_dir()
    }

    /// Whether this is a regular file.
    pub fn is_file(&self) -> bool {
        self.file_type().is_file()
    }

    /// Whether this is a symbolic link (only from `symlink_metadata`:
    /// `metadata` follows links).
    pub fn is_symlink(&self) -> bool {
        self.file_type().is_symlink()
    }

    /// The size in bytes.
    #[allow(clippy::len_without_is_empty)] // as std::fs::Metadata
    pub fn len(&self) -> u64 {
        self.stx.stx_size
    }

    /// The permission bits.
    pub fn permissions(&self) -> Permissions {
        Permissions::from_mode(u32::from(self.stx.stx_mode))
    }

    /// The last modification time.
    pub fn modified(&self) -> io::Result<SystemTime> {
        self.time(libc::STATX_MTIME, self.stx.stx_mtime, "modification")
    }

    /// The last access time.
    pub fn accessed(&self) -> io::Result<SystemTime> {
        self.time(libc::STATX_ATIME, self.stx.stx_atime, "access")
    }

    /// The creation (birth) time, where the filesystem records it.
    pub fn created(&self) -> io::Result<SystemTime> {
        self.time(libc::STATX_BTIME, self.stx.stx_btime, "creation")
    }

    fn time(&self, bit: u32, t: libc::statx_timestamp, what: &str) -> io::Result<SystemTime> {
        if self.stx.stx_mask & bit == 0 {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("numa_rt::fs: the filesystem does not report the {what} time"),
            ));
        }
        let nanos = Duration::from_nanos(u64::from(t.tv_nsec));
        let time = if t.tv_sec >= 0 {
            SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(t.tv_sec as u64) + nanos)
        } else {
            SystemTime::UNIX_EPOCH
                .checked_sub(Duration::from_secs(t.tv_sec.unsigned_abs()))
                .and_then(|s| s.checked_add(nanos))
        };
        time.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("numa_rt::fs: the {what} time is out of SystemTime's range"),
            )
        })
    }
}

impl MetadataExt for Metadata {
    fn dev(&self) -> u64 {
        libc::makedev(self.stx.stx_dev_major, self.stx.stx_dev_minor)
    }
    fn ino(&self) -> u64 {
        self.stx.stx_ino
    }
    fn mode(&self) -> u32 {
        u32::from(self.stx.stx_mode)
    }
    fn nlink(&self) -> u64 {
        u64::from(self.stx.stx_nlink)
    }
    fn uid(&self) -> u32 {
        self.stx.stx_uid
    }
    fn gid(&self) -> u32 {
        self.stx.stx_gid
    }
    fn rdev(&self) -> u64 {
        libc::makedev(self.stx.stx_rdev_major, self.stx.stx_rdev_minor)
    }
    fn size(&self) -> u64 {
        self.stx.stx_size
    }
    fn atime(&self) -> i64 {
        self.stx.stx_atime.tv_sec
    }
    fn atime_nsec(&self) -> i64 {
        i64::from(self.stx.stx_atime.tv_nsec)
    }
    fn mtime(&self) -> i64 {
        self.stx.stx_mtime.tv_sec
    }
    fn mtime_nsec(&self) -> i64 {
        i64::from(self.stx.stx_mtime.tv_nsec)
    }
    fn ctime(&self) -> i64 {
        self.stx.stx_ctime.tv_sec
    }
    fn ctime_nsec(&self) -> i64 {
        i64::from(self.stx.stx_ctime.tv_nsec)
    }
    fn blksize(&self) -> u64 {
        u64::from(self.stx.stx_blksize)
    }
    fn blocks(&self) -> u64 {
        self.stx.stx_blocks
    }
}

impl From<std::fs::Metadata> for Metadata {
    /// The same facts from a std `Metadata` (the birth time only where std
    /// has it).
    fn from(m: std::fs::Metadata) -> Metadata {
        fn set(t: &mut libc::statx_timestamp, sec: i64, nsec: i64) {
            t.tv_sec = sec;
            t.tv_nsec = nsec as u32;
        }
        // SAFETY: `statx` is plain integers, for which all-zero is valid.
        let mut stx: libc::statx = unsafe { std::mem::zeroed() };
        stx.stx_mask = libc::STATX_BASIC_STATS;
        // std's `stat` fields, all of them present.
        stx.stx_mode = m.mode() as u16;
        stx.stx_nlink = m.nlink() as u32;
        stx.stx_uid = m.uid();
        stx.stx_gid = m.gid();
        stx.stx_ino = m.ino();
        stx.stx_size = m.size();
        stx.stx_blksize = m.blksize() as u32;
        stx.stx_blocks = m.blocks();
        set(&mut stx.stx_atime, m.atime(), m.atime_nsec());
        set(&mut stx.stx_mtime, m.mtime(), m.mtime_nsec());
        set(&mut stx.stx_ctime, m.ctime(), m.ctime_nsec());
        (stx.stx_dev_major, stx.stx_dev_minor) = (libc::major(m.dev()), libc::minor(m.dev()));
        (stx.stx_rdev_major, stx.stx_rdev_minor) = (libc::major(m.rdev()), libc::minor(m.rdev()));
        if let Ok(born) = m.created() {
            if let Ok(d) = born.duration_since(SystemTime::UNIX_EPOCH) {
                set(
                    &mut stx.stx_btime,
                    d.as_secs() as i64,
                    i64::from(d.subsec_nanos()),
                );
                stx.stx_mask |= libc::STATX_BTIME;
            }
        }
        Metadata { stx }
    }
}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metadata")
            .field("file_type", &self.file_type())
            .field("len", &self.len())
            .field("mode", &format_args!("{:o}", self.mode()))
            .field("modified", &self.modified().ok())
            .field("accessed", &self.accessed().ok())
            .field("created", &self.created().ok())
            .finish_non_exhaustive()
    }
}

/// A file's type, from its mode bits; the methods of `std::fs::FileType`
/// and `std::os::unix::fs::FileTypeExt`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileType {
    mode: u32,
}

impl FileType {
    fn is(&self, kind: libc::mode_t) -> bool {
        self.mode & libc::S_IFMT == kind
    }

    /// A directory.
    pub fn is_dir(&self) -> bool {
        self.is(libc::S_IFDIR)
    }

    /// A regular file.
    pub fn is_file(&self) -> bool {
        self.is(libc::S_IFREG)
    }

    /// A symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.is(libc::S_IFLNK)
    }
}

impl FileTypeExt for FileType {
    fn is_block_device(&self) -> bool {
        self.is(libc::S_IFBLK)
    }
    fn is_char_device(&self) -> bool {
        self.is(libc::S_IFCHR)
    }
    fn is_fifo(&self) -> bool {
        self.is(libc::S_IFIFO)
    }
    fn is_socket(&self) -> bool {
        self.is(libc::S_IFSOCK)
    }
}

impl fmt::Debug for FileType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.mode & libc::S_IFMT {
            libc::S_IFDIR => "dir",
            libc::S_IFREG => "file",
            libc::S_IFLNK => "symlink",
            libc::S_IFBLK => "block device",
            libc::S_IFCHR => "char device",
            libc::S_IFIFO => "fifo",
            libc::S_IFSOCK => "socket",
            _ => "unknown",
        };
        f.write_str(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Our metadata agrees with std's on the same file.
    #[test]
    fn matches_std_through_the_conversion_and_statx() {
        let path = std::ffi::CString::new("/proc/self/exe").unwrap();
        // SAFETY: zeroed plain integers; statx writes the whole struct.
        let mut stx: libc::statx = unsafe { std::mem::zeroed() };
        // SAFETY: valid path and buffer for the call.
        let r = unsafe { libc::statx(libc::AT_FDCWD, path.as_ptr(), 0, STATX_MASK, &mut stx) };
        assert_eq!(r, 0);
        let ours = Metadata::from_statx(stx);
        let std_meta = std::fs::metadata("/proc/self/exe").unwrap();
        let converted = Metadata::from(std_meta.clone());
        for m in [&ours, &converted] {
            assert_eq!(m.len(), std_meta.len());
            assert_eq!(m.is_file(), std_meta.is_file());
            assert_eq!(m.is_dir(), std_meta.is_dir());
            assert_eq!(m.mode(), std_meta.mode());
            assert_eq!(m.ino(), std_meta.ino());
            assert_eq!(m.dev(), std_meta.dev());
            assert_eq!(m.uid(), std_meta.uid());
            assert_eq!(m.nlink(), std_meta.nlink());
            assert_eq!(m.modified().unwrap(), std_meta.modified().unwrap());
            assert_eq!(m.permissions(), std_meta.permissions());
            assert_eq!(m.created().ok(), std_meta.created().ok());
        }
        assert_eq!(format!("{:?}", ours.file_type()), "file");
    }

    #[test]
    fn missing_times_are_errors_not_panics() {
        // SAFETY: zeroed plain integers.
        let stx: libc::statx = unsafe { std::mem::zeroed() };
        let m = Metadata::from_statx(stx);
        assert_eq!(m.created().unwrap_err().kind(), io::ErrorKind::Unsupported);
        assert!(!m.is_file() && !m.is_dir() && !m.is_symlink());
        assert_eq!(format!("{:?}", m.file_type()), "unknown");
    }
}
