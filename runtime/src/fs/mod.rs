//! Files: [`File`], [`OpenOptions`] and tokio::fs's free functions.
//!
//! Where the worker has an io_uring, opening, reading, writing, syncing,
//! metadata and the path operations are ring operations
//! (`IORING_OP_OPENAT`, `READ`, `WRITE`, `FSYNC`, `STATX`, `MKDIRAT`,
//! `UNLINKAT`, `RENAMEAT`, `LINKAT`, `SYMLINKAT`): no thread hop, and many
//! in flight per worker. Regular files are always "ready" to epoll, so on
//! the epoll fallback (and in a runtime built without I/O) each operation
//! runs on the blocking pool of the current node instead, as tokio::fs does
//! everywhere. What the ring has no operation for (`set_len`,
//! `set_permissions`, `read_dir`, `read_link`, `canonicalize`, `copy`,
//! `remove_dir_all`) uses the blocking pool on both backends, as do path
//! operations on kernels whose io_uring lacks them (asked once by probe).
//!
//! Metadata comes back as [`Metadata`], numa_rt's own type with the
//! methods of `std::fs::Metadata`: std cannot build its type from a
//! `statx` result the ring filled in.
//!
//! Reads and writes move owned buffers (`Vec<u8>`) in and out, so a
//! dropped future never leaves the kernel writing into freed memory.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use numa_rt_runtime::fs;
//! fs::write("greeting.txt", "hello").await?;
//! assert_eq!(fs::read_to_string("greeting.txt").await?, "hello");
//! # Ok(()) }
//! ```

mod blocking;
mod file;
mod metadata;
mod open_options;
mod ring;
mod stream;

pub use file::File;
pub use metadata::{FileType, Metadata};
pub use open_options::OpenOptions;

use std::fs::Permissions;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use io_uring::opcode;

use open_options::c_path;

/// Reads the whole file at `path`.
pub async fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    let mut file = File::open(path).await?;
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat on an open descriptor writes a whole `stat` into `st`;
    // it does not touch the disk.
    let hint = match unsafe { libc::fstat(file.as_raw_fd(), st.as_mut_ptr()) } {
        // SAFETY: fstat succeeded, so `st` is initialised.
        0 => usize::try_from(unsafe { st.assume_init() }.st_size).unwrap_or(0),
        _ => 0,
    };
    // One more byte than the size, so a file that did not grow is read
    // with one read plus the read that sees its end.
    let (r, buf) = file.read_to_end_owned(Vec::with_capacity(hint + 1)).await;
    r.map(|_| buf)
}

/// Reads the whole file at `path` as UTF-8 (`InvalidData` when it is not).
pub async fn read_to_string(path: impl AsRef<Path>) -> io::Result<String> {
    let path = path.as_ref();
    let bytes = read(path).await?;
    String::from_utf8(bytes).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("numa_rt::fs: {path:?} is not valid UTF-8: {e}"),
        )
    })
}

/// Writes `contents` as the whole content of `path`, creating it when
/// needed.
pub async fn write(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> io::Result<()> {
    let file = File::create(path).await?;
    let (r, _) = file.write_all_at(contents.as_ref().to_vec(), 0).await;
    r
}

/// Runs a std path operation on the blocking pool.
async fn on_pool<R, F>(f: F) -> io::Result<R>
where
    F: FnOnce() -> io::Result<R> + Send + 'static,
    R: Send + 'static,
{
    blocking::run(f).await
}

/// Creates the directory `path` (its parent must exist), mode 0o777
/// less the umask (`IORING_OP_MKDIRAT` on io_uring).
pub async fn create_dir(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    if let Some(driver) = ring::driver_for(opcode::MkDirAt::CODE) {
        return ring::mkdir(driver, c_path(path)?, 0o777).await;
    }
    let path = path.to_owned();
    on_pool(move || std::fs::create_dir(path)).await
}

/// Creates `path` and every missing parent directory (`Ok` when it is a
/// directory already).
pub async fn create_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    if ring::driver_for(opcode::MkDirAt::CODE).is_none() {
        let path = path.to_owned();
        return on_pool(move || std::fs::create_dir_all(path)).await;
    }
    // Walk up to the first ancestor that exists, then create downwards.
    let mut missing = Vec::new();
    let mut at = path;
    loop {
        if at.as_os_str().is_empty() {
            break;
        }
        match create_dir(at).await {
            Ok(()) => break,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                missing.push(at);
                match at.parent() {
                    Some(parent) => at = parent,
                    None => return Err(e),
                }
            }
            Err(e) => {
                if is_dir(at).await {
                    break;
                }
                return Err(e);
            }
        }
    }
    for dir in missing.into_iter().rev() {
        if let Err(e) = create_dir(dir).await {
            // Someone else made it meanwhile.
            if !is_dir(dir).await {
                return Err(e);
            }
        }
    }
    Ok(())
}

async fn is_dir(path: &Path) -> bool {
    metadata(path).await.is_ok_and(|m| m.is_dir())
}

/// Removes the file `path` (`IORING_OP_UNLINKAT` on io_uring).
pub async fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    if let Some(driver) = ring::driver_for(opcode::UnlinkAt::CODE) {
        return ring::unlink(driver, c_path(path)?, 0).await;
    }
    let path = path.to_owned();
    on_pool(move || std::fs::remove_file(path)).await
}

/// Removes the empty directory `path` (`IORING_OP_UNLINKAT` with
/// `AT_REMOVEDIR` on io_uring).
pub async fn remove_dir(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    if let Some(driver) = ring::driver_for(opcode::UnlinkAt::CODE) {
        return ring::unlink(driver, c_path(path)?, libc::AT_REMOVEDIR).await;
    }
    let path = path.to_owned();
    on_pool(move || std::fs::remove_dir(path)).await
}

/// Removes the directory `path` and everything under it (on the blocking
/// pool: a walk of the tree, with std's protection against symbolic links
/// swapped in meanwhile).
pub async fn remove_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    on_pool(move || std::fs::remove_dir_all(path)).await
}

/// Renames `from` to `to`, replacing `to` when it exists
/// (`IORING_OP_RENAMEAT` on io_uring).
pub async fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    let (from, to) = (from.as_ref(), to.as_ref());
    if let Some(driver) = ring::driver_for(opcode::RenameAt::CODE) {
        return ring::rename(driver, c_path(from)?, c_path(to)?).await;
    }
    let (from, to) = (from.to_owned(), to.to_owned());
    on_pool(move || std::fs::rename(from, to)).await
}

/// Copies the contents and permissions of `from` to `to`; returns the
/// number of bytes copied (on the blocking pool, where std copies inside
/// the kernel with `copy_file_range`).
pub async fn copy(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<u64> {
    let (from, to) = (from.as_ref().to_owned(), to.as_ref().to_owned());
    on_pool(move || std::fs::copy(from, to)).await
}

/// Creates a hard link `dst` to `src` (`IORING_OP_LINKAT` on io_uring).
pub async fn hard_link(src: impl AsRef<Path>, dst: impl AsRef<Path>) -> io::Result<()> {
    let (src, dst) = (src.as_ref(), dst.as_ref());
    if let Some(driver) = ring::driver_for(opcode::LinkAt::CODE) {
        return ring::link(driver, c_path(src)?, c_path(dst)?).await;
    }
    let (src, dst) = (src.to_owned(), dst.to_owned());
    on_pool(move || std::fs::hard_link(src, dst)).await
}

/// Creates a symbolic link `dst` pointing at `src`
/// (`IORING_OP_SYMLINKAT` on io_uring).
pub async fn symlink(src: impl AsRef<Path>, dst: impl AsRef<Path>) -> io::Result<()> {
    let (src, dst) = (src.as_ref(), dst.as_ref());
    if let Some(driver) = ring::driver_for(opcode::SymlinkAt::CODE) {
        return ring::symlink(driver, c_path(src)?, c_path(dst)?).await;
    }
    let (src, dst) = (src.to_owned(), dst.to_owned());
    on_pool(move || std::os::unix::fs::symlink(src, dst)).await
}

/// The target of the symbolic link `path` (on the blocking pool: the ring
/// has no `readlink`).
pub async fn read_link(path: impl AsRef<Path>) -> io::Result<PathBuf> {
    let path = path.as_ref().to_owned();
    on_pool(move || std::fs::read_link(path)).await
}

/// The absolute path of `path` with every link resolved (on the blocking
/// pool).
pub async fn canonicalize(path: impl AsRef<Path>) -> io::Result<PathBuf> {
    let path = path.as_ref().to_owned();
    on_pool(move || std::fs::canonicalize(path)).await
}

/// The metadata of `path`, following symbolic links
/// (`IORING_OP_STATX` on io_uring).
pub async fn metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    statx_path(path.as_ref(), 0).await
}

/// The metadata of `path` itself (a symbolic link is not followed).
pub async fn symlink_metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    statx_path(path.as_ref(), libc::AT_SYMLINK_NOFOLLOW).await
}

async fn statx_path(path: &Path, flags: libc::c_int) -> io::Result<Metadata> {
    let c = c_path(path)?;
    match ring::driver_for(opcode::Statx::CODE) {
        Some(driver) => ring::statx(driver, None, c, flags).await,
        None => on_pool(move || blocking::statx(libc::AT_FDCWD, &c, flags)).await,
    }
}

/// Changes the permissions of `path` (on the blocking pool: the ring has
/// no `chmod`).
pub async fn set_permissions(path: impl AsRef<Path>, perm: Permissions) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    on_pool(move || std::fs::set_permissions(path, perm)).await
}

/// Whether `path` exists, following links (`Ok(false)` when it does not;
/// an error when that cannot be told, e.g. for lack of permission).
pub async fn try_exists(path: impl AsRef<Path>) -> io::Result<bool> {
    match metadata(path).await {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// The entries of the directory `path` (collected on the blocking pool:
/// the ring has no `getdents`).
pub async fn read_dir(path: impl AsRef<Path>) -> io::Result<Vec<std::fs::DirEntry>> {
    let path = path.as_ref().to_owned();
    on_pool(move || std::fs::read_dir(path)?.collect()).await
}
