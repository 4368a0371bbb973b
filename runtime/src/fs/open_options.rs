//! [`OpenOptions`]: how a file is opened.

use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::{blocking, ring, File};

/// Options and flags to open a file with, as `std::fs::OpenOptions` and
/// `tokio::fs::OpenOptions` have them.
///
/// On io_uring the open is an `IORING_OP_OPENAT`; on the epoll fallback it
/// runs on the blocking pool.
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// use numa_rt_runtime::fs::OpenOptions;
/// let file = OpenOptions::new().append(true).create(true).open("log.txt").await?;
/// let (r, _buf) = file.write_at(b"hello\n".to_vec(), 0).await;
/// r?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct OpenOptions {
    read: bool,
    write: bool,
    append: bool,
    truncate: bool,
    create: bool,
    create_new: bool,
    mode: libc::mode_t,
    custom_flags: libc::c_int,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions::new()
    }
}

impl OpenOptions {
    /// Options with every flag off and mode `0o666` (before the umask).
    pub fn new() -> OpenOptions {
        OpenOptions {
            read: false,
            write: false,
            append: false,
            truncate: false,
            create: false,
            create_new: false,
            mode: 0o666,
            custom_flags: 0,
        }
    }

    /// Open for reading.
    pub fn read(&mut self, read: bool) -> &mut Self {
        self.read = read;
        self
    }

    /// Open for writing.
    pub fn write(&mut self, write: bool) -> &mut Self {
        self.write = write;
        self
    }

    /// Open for appending: every write goes to the end (implies write).
    pub fn append(&mut self, append: bool) -> &mut Self {
        self.append = append;
        self
    }

    /// Truncate the file to length 0 (needs write access).
    pub fn truncate(&mut self, truncate: bool) -> &mut Self {
        self.truncate = truncate;
        self
    }

    /// Create the file when it does not exist (needs write or append).
    pub fn create(&mut self, create: bool) -> &mut Self {
        self.create = create;
        self
    }

    /// Create the file, failing when it exists (needs write or append).
    pub fn create_new(&mut self, create_new: bool) -> &mut Self {
        self.create_new = create_new;
        self
    }

    /// Permission bits of a created file (before the umask).
    pub fn mode(&mut self, mode: u32) -> &mut Self {
        self.mode = mode as libc::mode_t;
        self
    }

    /// Extra `open(2)` flags (e.g. `libc::O_DIRECT`, `libc::O_NOATIME`);
    /// the access mode bits are ignored.
    pub fn custom_flags(&mut self, flags: i32) -> &mut Self {
        self.custom_flags = flags;
        self
    }

    /// The `open(2)` flags, or `InvalidInput` for a combination std refuses
    /// too.
    fn flags(&self) -> io::Result<libc::c_int> {
        let access = match (self.read, self.write, self.append) {
            (true, false, false) => libc::O_RDONLY,
            (false, true, false) => libc::O_WRONLY,
            (true, true, false) => libc::O_RDWR,
            (false, _, true) => libc::O_WRONLY | libc::O_APPEND,
            (true, _, true) => libc::O_RDWR | libc::O_APPEND,
            (false, false, false) => {
                return Err(invalid(
                    "neither read, write nor append access was asked for",
                ))
            }
        };
        let writable = self.write || self.append;
        if (self.truncate || self.create || self.create_new) && !writable {
            return Err(invalid("create and truncate need write or append access"));
        }
        if self.truncate && self.append && !self.create_new {
            return Err(invalid("truncate and append together make no sense"));
        }
        let creation = if self.create_new {
            libc::O_CREAT | libc::O_EXCL
        } else {
            let mut f = 0;
            if self.create {
                f |= libc::O_CREAT;
            }
            if self.truncate {
                f |= libc::O_TRUNC;
            }
            f
        };
        Ok(access | creation | (self.custom_flags & !libc::O_ACCMODE) | libc::O_CLOEXEC)
    }

    /// Opens `path` with these options.
    ///
    /// Errors: whatever `open(2)` reports (`NotFound`, `PermissionDenied`,
    /// `AlreadyExists` ...), `InvalidInput` for a path holding a NUL byte or
    /// a contradictory set of options, and an error outside a runtime.
    pub async fn open(&self, path: impl AsRef<Path>) -> io::Result<File> {
        let flags = self.flags()?;
        let path = c_path(path.as_ref())?;
        let mode = self.mode;
        let fd = match ring::driver() {
            Some(driver) => ring::open(driver, path, flags, mode).await?,
            None => blocking::run(move || open_blocking(&path, flags, mode)).await?,
        };
        Ok(File::from_fd(fd))
    }
}

fn open_blocking(path: &CString, flags: libc::c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
    loop {
        // SAFETY: `path` is a NUL-terminated string alive for the call.
        let fd = unsafe { libc::open(path.as_ptr(), flags, mode as libc::c_uint) };
        if fd >= 0 {
            // SAFETY: a fresh descriptor nothing else owns.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// `path` as a C string, or `InvalidInput` when it holds a NUL byte.
pub(super) fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("numa_rt::fs: path {path:?} contains a NUL byte"),
        )
    })
}

fn invalid(why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("numa_rt::fs::OpenOptions: {why}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_follow_std_rules() {
        assert_eq!(
            OpenOptions::new().read(true).flags().unwrap(),
            libc::O_RDONLY | libc::O_CLOEXEC
        );
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .flags()
            .unwrap();
        assert_eq!(
            f,
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC
        );
        let f = OpenOptions::new()
            .append(true)
            .create_new(true)
            .flags()
            .unwrap();
        assert_eq!(
            f,
            libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC
        );
        assert!(OpenOptions::new().flags().is_err());
        assert!(OpenOptions::new().read(true).create(true).flags().is_err());
        assert!(OpenOptions::new()
            .append(true)
            .truncate(true)
            .flags()
            .is_err());
        // Custom flags cannot change the access mode.
        let f = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_RDWR | libc::O_NOATIME)
            .flags()
            .unwrap();
        assert_eq!(f, libc::O_RDONLY | libc::O_NOATIME | libc::O_CLOEXEC);
    }

    #[test]
    fn nul_in_path_is_invalid_input() {
        let e = c_path(Path::new("a\0b")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }
}
