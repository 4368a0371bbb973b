//! [`File`]: an open file with owned-buffer, completion-based operations.

use std::ffi::CString;
use std::fmt;
use std::fs::Permissions;
use std::io::{self, SeekFrom};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use super::blocking::{self, cvt};
use super::stream::Stream;
use super::Metadata;
use super::{ring, OpenOptions};
use crate::io::op::SharedFd;

/// An open file.
///
/// Reads and writes take and give back owned buffers (`Vec<u8>`), so the
/// kernel can work on them while the task waits: on io_uring each is one
/// ring operation (`IORING_OP_READ`/`WRITE` at an offset); on the epoll
/// fallback, a closure on the blocking pool. Dropping a future mid-flight
/// is safe: the buffer and the descriptor stay alive until the kernel is
/// done with them.
///
/// `File` is also a byte stream at the file position, like
/// tokio::fs::File: it implements tokio's `AsyncRead`, `AsyncWrite` and
/// `AsyncSeek` and futures-io's. One operation is in flight at a time and
/// owns the file's internal buffer, so a dropped read or write future
/// loses nothing; `poll_write` returns once its write is started, and
/// `flush` (or the next write) waits for it and reports its error. As with
/// tokio, `flush` before dropping the file: a write still in flight when
/// the `File` is dropped is cancelled if the kernel has not started it.
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// use numa_rt_runtime::fs::File;
/// use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
/// let mut out = File::create("log.txt").await?;
/// out.write_all(b"one\ntwo\n").await?;
/// out.flush().await?;
/// let mut lines = BufReader::new(File::open("log.txt").await?).lines();
/// while let Some(line) = lines.next_line().await? {
///     println!("{line}");
/// }
/// # Ok(()) }
/// ```
///
/// The owned-buffer calls (`*_owned`, `*_at`) fill the buffer's *spare
/// capacity* and extend its length, like `TcpStream::read_owned`:
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// use numa_rt_runtime::fs::File;
/// let file = File::open("data.bin").await?;
/// let (n, buf) = file.read_at(Vec::with_capacity(4096), 8192).await;
/// println!("read {} bytes: {:?}", n?, &buf[..]);
/// # Ok(()) }
/// ```
///
/// Dropping a `File` closes it with `close(2)` on the spot (once no
/// operation holds it any more), as tokio does. A ring close
/// (`IORING_OP_CLOSE`) was measured and costs more CPU: 270 to 330 ns per
/// close even with 64 submitted together, against 200 to 240 ns for
/// `close(2)`, 1.3 to 1.4 times as much (`close_cost` in `ring.rs`, five
/// runs on a loaded 2-core machine); it would also leave the descriptor
/// open after the drop.
pub struct File {
    fd: SharedFd,
    /// The `AsyncRead`/`AsyncWrite`/`AsyncSeek` state.
    stream: Stream,
}

impl File {
    pub(super) fn from_fd(fd: OwnedFd) -> File {
        File {
            fd: SharedFd::new(fd),
            stream: Stream::new(),
        }
    }

    /// Opens `path` read-only.
    pub async fn open(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new().read(true).open(path).await
    }

    /// Opens `path` write-only, creating it or truncating it.
    pub async fn create(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .await
    }

    /// Creates `path` read-write, failing when it exists.
    pub async fn create_new(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .await
    }

    /// A new [`OpenOptions`].
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    /// Wraps a std file.
    pub fn from_std(file: std::fs::File) -> File {
        File::from_fd(OwnedFd::from(file))
    }

    /// The std file back, or `self` when an operation still holds the
    /// descriptor or the stream side has read-ahead or an unreported
    /// write error (`flush` or `seek` first, then try again).
    pub fn try_into_std(mut self) -> Result<std::fs::File, File> {
        if !self.stream.is_idle() {
            return Err(self);
        }
        match Arc::try_unwrap(self.fd.0) {
            Ok(fd) => Ok(std::fs::File::from(fd)),
            Err(fd) => Err(File {
                fd: SharedFd(fd),
                stream: self.stream,
            }),
        }
    }

    /// Reads at most `buf`'s spare capacity from offset `pos`, appending to
    /// `buf`; `Ok(0)` at the end of the file (or with no spare capacity).
    /// The file position is not used or changed.
    pub async fn read_at(&self, buf: Vec<u8>, pos: u64) -> (io::Result<usize>, Vec<u8>) {
        match ring::driver() {
            Some(driver) => ring::read_at(driver, &self.fd, buf, pos).await,
            None => read_blocking(self.fd.clone(), buf, Some(pos)).await,
        }
    }

    /// Writes from `buf` at offset `pos` (once: the count may be short).
    /// The file position is not used or changed (except with `append`,
    /// where Linux writes at the end).
    pub async fn write_at(&self, buf: Vec<u8>, pos: u64) -> (io::Result<usize>, Vec<u8>) {
        self.write_from(buf, 0, Some(pos)).await
    }

    /// Writes all of `buf` starting at offset `pos`.
    pub async fn write_all_at(&self, buf: Vec<u8>, pos: u64) -> (io::Result<()>, Vec<u8>) {
        self.write_all_from(buf, Some(pos)).await
    }

    /// Reads at most `buf`'s spare capacity at the file position, which
    /// advances; `Ok(0)` at the end of the file.
    pub async fn read_owned(&mut self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        if let Err(e) = self.settle().await {
            return (Err(e), buf);
        }
        match ring::driver() {
            Some(driver) => ring::read_at(driver, &self.fd, buf, ring::CURRENT_POSITION).await,
            None => read_blocking(self.fd.clone(), buf, None).await,
        }
    }

    /// Reads from the file position to the end of the file, appending to
    /// `buf`; returns the number of bytes read.
    pub async fn read_to_end_owned(&mut self, mut buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        let start = buf.len();
        loop {
            if buf.capacity() - buf.len() < CHUNK / 2 {
                buf.reserve(CHUNK.max(buf.len()));
            }
            let (r, b) = self.read_owned(buf).await;
            buf = b;
            match r {
                Ok(0) => return (Ok(buf.len() - start), buf),
                Ok(_) => {}
                Err(e) => return (Err(e), buf),
            }
        }
    }

    /// Writes from `buf` at the file position (once: the count may be
    /// short); the position advances.
    pub async fn write_owned(&mut self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        if let Err(e) = self.settle().await {
            return (Err(e), buf);
        }
        self.write_from(buf, 0, None).await
    }

    /// Writes all of `buf` at the file position.
    pub async fn write_all_owned(&mut self, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        if let Err(e) = self.settle().await {
            return (Err(e), buf);
        }
        self.write_all_from(buf, None).await
    }

    /// Lets the stream side's operation finish and gives its read-ahead
    /// back to the kernel position, so owned-buffer calls at the file
    /// position continue where `AsyncRead`/`AsyncWrite` left off.
    async fn settle(&mut self) -> io::Result<()> {
        let File { fd, stream } = self;
        std::future::poll_fn(|cx| stream.poll_settle(fd, cx)).await
    }

    /// Flushes data and metadata to the device (`fsync`).
    pub async fn sync_all(&self) -> io::Result<()> {
        self.sync(false).await
    }

    /// Flushes data, and the metadata needed to read it, to the device
    /// (`fdatasync`).
    pub async fn sync_data(&self) -> io::Result<()> {
        self.sync(true).await
    }

    async fn sync(&self, data_only: bool) -> io::Result<()> {
        if let Some(driver) = ring::driver() {
            return ring::fsync(driver, &self.fd, data_only).await;
        }
        let fd = self.fd.clone();
        blocking::run(move || {
            // SAFETY: plain syscalls on a descriptor `fd` keeps open.
            let r = unsafe {
                if data_only {
                    libc::fdatasync(fd.raw())
                } else {
                    libc::fsync(fd.raw())
                }
            };
            cvt(r as libc::ssize_t).map(drop)
        })
        .await
    }

    /// The file's metadata (`IORING_OP_STATX` on io_uring, `statx` on
    /// the blocking pool otherwise). See [`Metadata`] for why it is not
    /// `std::fs::Metadata`.
    pub async fn metadata(&self) -> io::Result<Metadata> {
        let empty = CString::default();
        if let Some(driver) = ring::driver_for(io_uring::opcode::Statx::CODE) {
            return ring::statx(driver, Some(&self.fd), empty, libc::AT_EMPTY_PATH).await;
        }
        let fd = self.fd.clone();
        blocking::run(move || blocking::statx(fd.raw(), &empty, libc::AT_EMPTY_PATH)).await
    }

    /// Truncates or extends the file to `size` bytes (`ftruncate`, on the
    /// blocking pool: the ring has no truncate operation on the kernels we
    /// support).
    pub async fn set_len(&self, size: u64) -> io::Result<()> {
        self.with_std(move |f| f.set_len(size)).await
    }

    /// Changes the file's permissions (`fchmod`, on the blocking pool).
    pub async fn set_permissions(&self, perm: Permissions) -> io::Result<()> {
        self.with_std(move |f| f.set_permissions(perm)).await
    }

    /// A second handle to the same open file (`dup`).
    pub fn try_clone(&self) -> io::Result<File> {
        self.fd.0.try_clone().map(File::from_fd)
    }

    /// Runs `f` on a borrowed std view of the file, on the blocking pool.
    async fn with_std<R, F>(&self, f: F) -> io::Result<R>
    where
        F: FnOnce(&std::fs::File) -> io::Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let fd = self.fd.clone();
        blocking::run(move || {
            let file = std::fs::File::from(fd.0.try_clone()?);
            f(&file)
        })
        .await
    }

    async fn write_from(
        &self,
        buf: Vec<u8>,
        from: usize,
        pos: Option<u64>,
    ) -> (io::Result<usize>, Vec<u8>) {
        match ring::driver() {
            Some(driver) => {
                let pos = pos.unwrap_or(ring::CURRENT_POSITION);
                ring::write_at(driver, &self.fd, buf, from, pos).await
            }
            None => write_blocking(self.fd.clone(), buf, from, pos).await,
        }
    }

    async fn write_all_from(
        &self,
        mut buf: Vec<u8>,
        pos: Option<u64>,
    ) -> (io::Result<()>, Vec<u8>) {
        let mut done = 0;
        while done < buf.len() {
            let at = pos.map(|p| p + done as u64);
            let (r, b) = self.write_from(buf, done, at).await;
            buf = b;
            match r {
                Ok(0) => {
                    let e = io::Error::new(
                        io::ErrorKind::WriteZero,
                        "numa_rt::fs: the file accepted no more bytes",
                    );
                    return (Err(e), buf);
                }
                Ok(n) => done += n,
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }
}

/// The size of the reads `read_to_end_owned` grows its buffer by.
const CHUNK: usize = 64 * 1024;

/// `pread` (or `read` for `None`) into `buf`'s spare capacity on the
/// blocking pool.
pub(super) async fn read_blocking(
    fd: SharedFd,
    buf: Vec<u8>,
    pos: Option<u64>,
) -> (io::Result<usize>, Vec<u8>) {
    if buf.capacity() == buf.len() {
        return (Ok(0), buf);
    }
    let job = blocking::run(move || {
        let mut buf = buf;
        let spare = buf.spare_capacity_mut();
        let r = loop {
            // SAFETY: the kernel writes at most `spare.len()` bytes into the
            // vector's spare capacity, which outlives the call.
            let n = unsafe {
                match pos {
                    Some(p) => libc::pread(
                        fd.raw(),
                        spare.as_mut_ptr().cast(),
                        spare.len(),
                        p as libc::off_t,
                    ),
                    None => libc::read(fd.raw(), spare.as_mut_ptr().cast(), spare.len()),
                }
            };
            match cvt(n) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        if let Ok(n) = r {
            // SAFETY: the kernel initialised `n` bytes after the length.
            unsafe { buf.set_len(buf.len() + n) };
        }
        Ok((r, buf))
    });
    match job.await {
        Ok(pair) => pair,
        Err(e) => (Err(e), Vec::new()),
    }
}

/// `pwrite` (or `write` for `None`) of `buf[from..]` on the blocking pool.
pub(super) async fn write_blocking(
    fd: SharedFd,
    buf: Vec<u8>,
    from: usize,
    pos: Option<u64>,
) -> (io::Result<usize>, Vec<u8>) {
    let from = from.min(buf.len());
    if from == buf.len() {
        return (Ok(0), buf);
    }
    let job = blocking::run(move || {
        let data = &buf[from..];
        let r = loop {
            // SAFETY: the kernel reads `data.len()` bytes from a live slice.
            let n = unsafe {
                match pos {
                    Some(p) => {
                        libc::pwrite(fd.raw(), data.as_ptr().cast(), data.len(), p as libc::off_t)
                    }
                    None => libc::write(fd.raw(), data.as_ptr().cast(), data.len()),
                }
            };
            match cvt(n) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        Ok((r, buf))
    });
    match job.await {
        Ok(pair) => pair,
        Err(e) => (Err(e), Vec::new()),
    }
}

impl AsRawFd for File {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.raw()
    }
}

impl AsFd for File {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.0.as_fd()
    }
}

impl From<std::fs::File> for File {
    fn from(file: std::fs::File) -> File {
        File::from_std(file)
    }
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("File").field("fd", &self.fd.raw()).finish()
    }
}

impl tokio::io::AsyncRead for File {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let want = buf.remaining();
        let data = ready!(this.stream.poll_fill(&this.fd, cx, want))?;
        let n = data.len().min(want);
        buf.put_slice(&data[..n]);
        this.stream.consume(n);
        Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for File {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        src: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.stream.poll_write(&this.fd, cx, src)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().stream.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().stream.poll_flush(cx)
    }
}

impl tokio::io::AsyncSeek for File {
    fn start_seek(self: Pin<&mut Self>, position: SeekFrom) -> io::Result<()> {
        self.get_mut().stream.start_seek(position)
    }

    fn poll_complete(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        let this = self.get_mut();
        this.stream.poll_complete(&this.fd, cx)
    }
}

impl futures_io::AsyncRead for File {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let data = ready!(this.stream.poll_fill(&this.fd, cx, buf.len()))?;
        let n = data.len().min(buf.len());
        buf[..n].copy_from_slice(&data[..n]);
        this.stream.consume(n);
        Poll::Ready(Ok(n))
    }
}

impl futures_io::AsyncWrite for File {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        src: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.stream.poll_write(&this.fd, cx, src)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().stream.poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().stream.poll_flush(cx)
    }
}

impl futures_io::AsyncSeek for File {
    fn poll_seek(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        pos: SeekFrom,
    ) -> Poll<io::Result<u64>> {
        let this = self.get_mut();
        // A call after `Pending` comes with the same `pos`: ask once.
        if !this.stream.seek_pending() {
            this.stream.start_seek(pos)?;
        }
        this.stream.poll_complete(&this.fd, cx)
    }
}
