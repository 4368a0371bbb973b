//! hyper's HTTP/1.1 "Hello, World!" service on the least a runtime can be:
//! one thread, one edge-triggered epoll loop, a task per connection in a
//! slab, wakers that push the task's index on a queue. No timers (hyper's
//! header-read timeout is not armed, where numa_rt's and tokio's servers
//! arm it), no work stealing, no cross-thread anything: the ceiling
//! `scripts/bench-http --ceiling` measures the runtimes against.
//!
//! Reads and writes are the ones tokio makes (a short read means drained,
//! so no read ends in `EAGAIN` on the hot path; vectored writes).
//!
//! Run: `cargo run --release --example bare_http -- --addr 127.0.0.1:8082`

use std::cell::{Cell, RefCell};
use std::convert::Infallible;
use std::future::Future;
use std::io::{self, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

#[path = "common/bare_epoll.rs"]
mod bare_epoll;

use bare_epoll::Epoll;

const LISTENER: u64 = u64::MAX;

async fn hello(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(
        b"Hello, World!",
    ))))
}

/// What the loop and a connection's task share: read readiness and
/// wakers (writes are always tried: the send buffer is rarely full).
struct Readiness {
    readable: Cell<bool>,
    /// The peer closed (or the socket failed): reads go on until they say
    /// so, whatever a short read suggests (no further edge will come).
    closed: Cell<bool>,
    reader: RefCell<Option<Waker>>,
    writer: RefCell<Option<Waker>>,
}

impl Readiness {
    /// A new socket: tried at once (its registration reports what was
    /// already there, too).
    fn new() -> Readiness {
        Readiness {
            readable: Cell::new(true),
            closed: Cell::new(false),
            reader: RefCell::new(None),
            writer: RefCell::new(None),
        }
    }

    fn wait(slot: &RefCell<Option<Waker>>, cx: &Context<'_>) {
        let mut w = slot.borrow_mut();
        if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *w = Some(cx.waker().clone());
        }
    }

    fn wake(slot: &RefCell<Option<Waker>>) {
        if let Some(w) = slot.borrow_mut().take() {
            w.wake();
        }
    }
}

struct Conn {
    stream: TcpStream,
    ready: Rc<Readiness>,
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.ready.readable.get() {
            Readiness::wait(&this.ready.reader, cx);
            return Poll::Pending;
        }
        // Into the unfilled part without zeroing it first, as tokio does.
        // SAFETY: `read` only writes the bytes it reports.
        let room = unsafe { buf.unfilled_mut() };
        let want = room.len();
        // SAFETY: a live descriptor; the pointer and length describe `room`.
        let n = unsafe { libc::read(this.stream.as_raw_fd(), room.as_mut_ptr().cast(), want) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock {
                this.ready.readable.set(false);
                Readiness::wait(&this.ready.reader, cx);
                return Poll::Pending;
            }
            return Poll::Ready(Err(e));
        }
        let n = n as usize;
        if n > 0 && n < want && !this.ready.closed.get() {
            // Short: drained, the next edge brings more.
            this.ready.readable.set(false);
        }
        // SAFETY: the kernel initialised `n` bytes of the unfilled part.
        unsafe { buf.assume_init(n) };
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl Conn {
    fn poll_io(&mut self, cx: &Context<'_>, r: io::Result<usize>) -> Poll<io::Result<usize>> {
        match r {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                Readiness::wait(&self.ready.writer, cx);
                Poll::Pending
            }
            r => Poll::Ready(r),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = this.stream.write(data);
        this.poll_io(cx, r)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = this.stream.write_vectored(bufs);
        this.poll_io(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.stream.shutdown(std::net::Shutdown::Write))
    }
}

/// A task's waker: queues the task's index for the loop, once until the
/// task is polled.
struct TaskWaker {
    index: usize,
    queued: AtomicBool,
    queue: Arc<Mutex<Vec<usize>>>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            if let Ok(mut q) = self.queue.lock() {
                q.push(self.index);
            }
        }
    }
}

struct Task {
    future: Pin<Box<dyn Future<Output = ()>>>,
    waker: Waker,
    queued: Arc<TaskWaker>,
    ready: Rc<Readiness>,
}

fn run(addr: &str) -> io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    println!("bare_http: listening on http://{}", listener.local_addr()?);
    let mut ep = Epoll::new()?;
    ep.add(listener.as_raw_fd(), libc::EPOLLIN, LISTENER)?;
    let queue = Arc::new(Mutex::new(Vec::new()));
    let mut tasks: Vec<Option<Task>> = Vec::new();
    let mut ready = Vec::new();
    let mut events = Vec::new();
    loop {
        if let Ok(mut q) = queue.lock() {
            std::mem::swap(&mut *q, &mut ready);
        }
        if ready.is_empty() {
            events.clear();
            events.extend(ep.wait()?);
            for &(token, flags) in &events {
                if token == LISTENER {
                    while let Ok((stream, _)) = listener.accept() {
                        stream.set_nonblocking(true)?;
                        stream.set_nodelay(true)?;
                        let index = bare_epoll::free_slot(&mut tasks);
                        let interest = libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP;
                        ep.add(stream.as_raw_fd(), interest, index as u64)?;
                        let conn_ready = Rc::new(Readiness::new());
                        let conn = Conn {
                            stream,
                            ready: conn_ready.clone(),
                        };
                        let queued = Arc::new(TaskWaker {
                            index,
                            // Queued below.
                            queued: AtomicBool::new(true),
                            queue: queue.clone(),
                        });
                        let serve = http1::Builder::new()
                            .serve_connection(TokioIo::new(conn), service_fn(hello));
                        tasks[index] = Some(Task {
                            future: Box::pin(async move {
                                let _ = serve.await;
                            }),
                            waker: Waker::from(queued.clone()),
                            queued,
                            ready: conn_ready,
                        });
                        ready.push(index);
                    }
                    continue;
                }
                let Some(Some(task)) = tasks.get(token as usize) else {
                    continue;
                };
                if flags & (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) != 0 {
                    task.ready.closed.set(true);
                }
                if flags & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) != 0
                {
                    task.ready.readable.set(true);
                    Readiness::wake(&task.ready.reader);
                }
                if flags & (libc::EPOLLOUT | libc::EPOLLHUP | libc::EPOLLERR) != 0 {
                    Readiness::wake(&task.ready.writer);
                }
            }
            if let Ok(mut q) = queue.lock() {
                ready.append(&mut q);
            }
        }
        for index in ready.drain(..) {
            let Some(Some(task)) = tasks.get_mut(index) else {
                continue;
            };
            task.queued.queued.store(false, Ordering::Release);
            if task
                .future
                .as_mut()
                .poll(&mut Context::from_waker(&task.waker))
                .is_ready()
            {
                // Dropping the task closes its socket, which leaves epoll.
                tasks[index] = None;
            }
        }
    }
}

fn main() -> ExitCode {
    bare_epoll::main_with("bare_http", "127.0.0.1:8082", run)
}
