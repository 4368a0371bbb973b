//! The process-wide signal machinery: one handler per signal number that
//! writes the number into a pipe, and one thread that reads the pipe and
//! wakes every listener of that signal.
//!
//! A dedicated thread keeps signals independent of any runtime: a listener
//! is woken whether it lives on a numa_rt worker, in `block_on`, or under
//! another executor.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::task::{Context, Poll, Waker};

/// Signals whose default action must stay (they report faults or cannot be
/// caught at all).
const FORBIDDEN: [libc::c_int; 5] = [
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGKILL,
    libc::SIGSEGV,
    libc::SIGSTOP,
];

/// Write end of the pipe, read by the handler (`-1` until set up).
static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);

/// What the handler's thread and the listeners share.
struct Registry {
    /// Listeners per signal number; dead ones are pruned on delivery.
    listeners: Mutex<HashMap<libc::c_int, Vec<Weak<Slot>>>>,
    /// Signal numbers whose handler is installed.
    installed: Mutex<Vec<libc::c_int>>,
}

/// One listener's state: a delivery flag (deliveries between two receives
/// coalesce into one, as in tokio) and the waker of its task.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    delivered: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Slot {
    fn deliver(&self) {
        self.delivered.store(true, Ordering::Release);
        let waker = self
            .waker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Ready once a signal arrived since the last ready poll.
    pub(crate) fn poll(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.delivered.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        *self.waker.lock().unwrap_or_else(PoisonError::into_inner) = Some(cx.waker().clone());
        // A delivery between the first check and storing the waker.
        if self.delivered.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

fn registry() -> io::Result<&'static Registry> {
    static REGISTRY: OnceLock<Result<Registry, String>> = OnceLock::new();
    REGISTRY
        .get_or_init(set_up)
        .as_ref()
        .map_err(|e| io::Error::other(e.clone()))
}

/// Creates the pipe and starts the thread that reads it.
fn set_up() -> Result<Registry, String> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    if rc != 0 {
        return Err(format!(
            "numa_rt::signal: cannot create the signal pipe: {}",
            io::Error::last_os_error()
        ));
    }
    // SAFETY: pipe2 succeeded, so both descriptors are open and owned by
    // nobody else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // The handler must never block: a full pipe drops the byte, and the
    // bytes already in it wake the same listeners.
    // SAFETY: fcntl on a descriptor we own, with integer arguments.
    let rc = unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
    if rc != 0 {
        return Err(format!(
            "numa_rt::signal: cannot make the signal pipe non-blocking: {}",
            io::Error::last_os_error()
        ));
    }
    std::thread::Builder::new()
        .name("numa-rt-signal".into())
        .spawn(move || dispatch(read))
        .map_err(|e| format!("numa_rt::signal: cannot start the signal thread: {e}"))?;
    // The write end lives for the rest of the process: handlers may run at
    // any time.
    PIPE_WRITE.store(
        std::os::fd::IntoRawFd::into_raw_fd(write),
        Ordering::Release,
    );
    Ok(Registry {
        listeners: Mutex::new(HashMap::new()),
        installed: Mutex::new(Vec::new()),
    })
}

/// The signal thread: reads signal numbers and wakes their listeners.
fn dispatch(read: OwnedFd) {
    let mut buf = [0u8; 64];
    loop {
        // SAFETY: `buf` is valid for `buf.len()` bytes and `read` is open.
        let n = unsafe { libc::read(read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        if n == 0 {
            return;
        }
        let Ok(reg) = registry() else { return };
        let mut listeners = reg.listeners.lock().unwrap_or_else(PoisonError::into_inner);
        for &signo in &buf[..n as usize] {
            if let Some(list) = listeners.get_mut(&libc::c_int::from(signo)) {
                list.retain(|slot| match slot.upgrade() {
                    Some(slot) => {
                        slot.deliver();
                        true
                    }
                    None => false,
                });
            }
        }
    }
}

/// The handler: async-signal-safe (one `write`, errno preserved).
extern "C" fn on_signal(signo: libc::c_int) {
    let fd = PIPE_WRITE.load(Ordering::Acquire);
    if fd < 0 {
        return;
    }
    // Signal numbers on Linux are below 65, so they fit in a byte.
    let byte = signo as u8;
    // SAFETY: __errno_location returns this thread's errno slot, valid for
    // the thread's lifetime.
    let errno = unsafe { *libc::__errno_location() };
    // SAFETY: `byte` is one valid byte; `fd` is the pipe's write end, open
    // for the rest of the process. write(2) is async-signal-safe.
    let _ = unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    // SAFETY: as above; restores errno for the interrupted code.
    unsafe { *libc::__errno_location() = errno };
}

/// Installs the handler for `signo` (once per process) and registers a
/// listener for it.
pub(crate) fn listen(signo: libc::c_int) -> io::Result<Arc<Slot>> {
    if signo <= 0 || signo > libc::SIGRTMAX() || FORBIDDEN.contains(&signo) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("numa_rt::signal: signal {signo} cannot be listened for"),
        ));
    }
    let reg = registry()?;
    {
        let mut installed = reg.installed.lock().unwrap_or_else(PoisonError::into_inner);
        if !installed.contains(&signo) {
            install(signo)?;
            installed.push(signo);
        }
    }
    let slot = Arc::new(Slot::default());
    reg.listeners
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(signo)
        .or_default()
        .push(Arc::downgrade(&slot));
    Ok(slot)
}

fn install(signo: libc::c_int) -> io::Result<()> {
    // SAFETY: an all-zero sigaction is a valid value to fill in.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    action.sa_flags = libc::SA_RESTART;
    // SAFETY: `action.sa_mask` is a valid sigset_t to initialise.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    // SAFETY: `action` is initialised; a null old action is allowed. The
    // handler only does async-signal-safe work.
    let rc = unsafe { libc::sigaction(signo, &action, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::other(format!(
            "numa_rt::signal: cannot install a handler for signal {signo}: {}",
            io::Error::last_os_error()
        )));
    }
    Ok(())
}
