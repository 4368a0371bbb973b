//! Files: [`File`], [`OpenOptions`] and tokio::fs's free functions.
//!
//! Where the worker has an io_uring, opening, reading, writing and syncing
//! are ring operations (`IORING_OP_OPENAT`, `READ`, `WRITE`, `FSYNC`): no
//! thread hop, and many reads in flight per worker. Regular files are
//! always "ready" to epoll, so on the epoll fallback (and in a runtime
//! built without I/O) each operation runs on the blocking pool of the
//! current node instead, as tokio::fs does everywhere. Metadata, `set_len`
//! and directory operations use the blocking pool on both backends.
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
mod open_options;
mod ring;
mod stream;

pub use file::File;
pub use open_options::OpenOptions;

use std::fs::{Metadata, Permissions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

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

/// Creates the directory `path` (its parent must exist).
pub async fn create_dir(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    on_pool(move || std::fs::create_dir(path)).await
}

/// Creates `path` and every missing parent directory.
pub async fn create_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    on_pool(move || std::fs::create_dir_all(path)).await
}

/// Removes the file `path`.
pub async fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    on_pool(move || std::fs::remove_file(path)).await
}

/// Removes the empty directory `path`.
pub async fn remove_dir(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    on_pool(move || std::fs::remove_dir(path)).await
}

/// Removes the directory `path` and everything under it.
pub async fn remove_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    on_pool(move || std::fs::remove_dir_all(path)).await
}

/// Renames `from` to `to`, replacing `to` when it exists.
pub async fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    let (from, to) = (from.as_ref().to_owned(), to.as_ref().to_owned());
    on_pool(move || std::fs::rename(from, to)).await
}

/// Copies the contents and permissions of `from` to `to`; returns the
/// number of bytes copied.
pub async fn copy(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<u64> {
    let (from, to) = (from.as_ref().to_owned(), to.as_ref().to_owned());
    on_pool(move || std::fs::copy(from, to)).await
}

/// Creates a hard link `dst` to `src`.
pub async fn hard_link(src: impl AsRef<Path>, dst: impl AsRef<Path>) -> io::Result<()> {
    let (src, dst) = (src.as_ref().to_owned(), dst.as_ref().to_owned());
    on_pool(move || std::fs::hard_link(src, dst)).await
}

/// Creates a symbolic link `dst` pointing at `src`.
pub async fn symlink(src: impl AsRef<Path>, dst: impl AsRef<Path>) -> io::Result<()> {
    let (src, dst) = (src.as_ref().to_owned(), dst.as_ref().to_owned());
    on_pool(move || std::os::unix::fs::symlink(src, dst)).await
}

/// The target of the symbolic link `path`.
pub async fn read_link(path: impl AsRef<Path>) -> io::Result<PathBuf> {
    let path = path.as_ref().to_owned();
    on_pool(move || std::fs::read_link(path)).await
}

/// The absolute path of `path` with every link resolved.
pub async fn canonicalize(path: impl AsRef<Path>) -> io::Result<PathBuf> {
    let path = path.as_ref().to_owned();
    on_pool(move || std::fs::canonicalize(path)).await
}

/// The metadata of `path`, following symbolic links.
pub async fn metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    let path = path.as_ref().to_owned();
    on_pool(move || std::fs::metadata(path)).await
}

/// The metadata of `path` itself (a symbolic link is not followed).
pub async fn symlink_metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    let path = path.as_ref().to_owned();
    on_pool(move || std::fs::symlink_metadata(path)).await
}

/// Changes the permissions of `path`.
pub async fn set_permissions(path: impl AsRef<Path>, perm: Permissions) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    on_pool(move || std::fs::set_permissions(path, perm)).await
}

/// Whether `path` exists (`Ok(false)` when it does not; an error when that
/// cannot be told, e.g. for lack of permission).
pub async fn try_exists(path: impl AsRef<Path>) -> io::Result<bool> {
    let path = path.as_ref().to_owned();
    on_pool(move || path.try_exists()).await
}

/// The entries of the directory `path` (collected on the blocking pool).
pub async fn read_dir(path: impl AsRef<Path>) -> io::Result<Vec<std::fs::DirEntry>> {
    let path = path.as_ref().to_owned();
    on_pool(move || std::fs::read_dir(path)?.collect()).await
}
