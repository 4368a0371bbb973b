//! Unix signal streams: [`signal`] and [`SignalKind`].

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::registry::{self, Slot};

/// A signal to listen for.
///
/// ```
/// use numa_rt::signal::unix::SignalKind;
///
/// assert_eq!(SignalKind::terminate().as_raw_value(), libc::SIGTERM);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SignalKind(libc::c_int);

impl SignalKind {
    /// Any signal by number (e.g. `libc::SIGRTMIN() + 1`).
    pub const fn from_raw(signum: libc::c_int) -> SignalKind {
        SignalKind(signum)
    }

    /// The signal's number.
    pub const fn as_raw_value(&self) -> libc::c_int {
        self.0
    }

    /// SIGALRM: a real-time timer expired.
    pub const fn alarm() -> SignalKind {
        SignalKind(libc::SIGALRM)
    }

    /// SIGCHLD: a child process changed state.
    pub const fn child() -> SignalKind {
        SignalKind(libc::SIGCHLD)
    }

    /// SIGHUP: the terminal hung up; daemons often reload on it.
    pub const fn hangup() -> SignalKind {
        SignalKind(libc::SIGHUP)
    }

    /// SIGINT: interrupt from the keyboard (Ctrl-C).
    pub const fn interrupt() -> SignalKind {
        SignalKind(libc::SIGINT)
    }

    /// SIGIO: I/O is possible on a descriptor.
    pub const fn io() -> SignalKind {
        SignalKind(libc::SIGIO)
    }

    /// SIGPIPE: a write to a pipe or socket with no reader.
    pub const fn pipe() -> SignalKind {
        SignalKind(libc::SIGPIPE)
    }

    /// SIGQUIT: quit from the keyboard (Ctrl-\).
    pub const fn quit() -> SignalKind {
        SignalKind(libc::SIGQUIT)
    }

    /// SIGTERM: a polite request to terminate (what `kill` and service
    /// managers send).
    pub const fn terminate() -> SignalKind {
        SignalKind(libc::SIGTERM)
    }

    /// SIGUSR1: user-defined.
    pub const fn user_defined1() -> SignalKind {
        SignalKind(libc::SIGUSR1)
    }

    /// SIGUSR2: user-defined.
    pub const fn user_defined2() -> SignalKind {
        SignalKind(libc::SIGUSR2)
    }

    /// SIGWINCH: the terminal window changed size.
    pub const fn window_change() -> SignalKind {
        SignalKind(libc::SIGWINCH)
    }
}

impl From<libc::c_int> for SignalKind {
    fn from(signum: libc::c_int) -> SignalKind {
        SignalKind(signum)
    }
}

/// A stream of deliveries of one signal; see [`signal`].
#[derive(Debug)]
pub struct Signal {
    slot: Arc<Slot>,
}

/// Listens for `kind`: every delivery after this call wakes the returned
/// stream (several deliveries before a receive count as one).
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// use numa_rt::signal::unix::{signal, SignalKind};
///
/// let mut hup = signal(SignalKind::hangup())?;
/// while hup.recv().await.is_some() {
///     println!("reloading configuration");
/// }
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// `InvalidInput` for signals that cannot or must not be caught (SIGKILL,
/// SIGSTOP, SIGILL, SIGFPE, SIGSEGV, numbers out of range); an error when
/// the handler cannot be installed.
pub fn signal(kind: SignalKind) -> io::Result<Signal> {
    Ok(Signal {
        slot: registry::listen(kind.0)?,
    })
}

impl Signal {
    /// Waits for the next delivery. Never returns `None` (the stream does
    /// not end); the `Option` keeps tokio's signature.
    pub async fn recv(&mut self) -> Option<()> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls for the next delivery; see [`Signal::recv`].
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<()>> {
        self.slot.poll(cx).map(Some)
    }
}

impl futures_core::Stream for Signal {
    type Item = ();

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<()>> {
        self.get_mut().poll_recv(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rt() -> numa_rt_runtime::Runtime {
        numa_rt_runtime::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    }

    fn raise(signo: libc::c_int) {
        // SAFETY: kill on our own pid with a signal whose handler is ours.
        assert_eq!(unsafe { libc::kill(libc::getpid(), signo) }, 0);
    }

    #[test]
    fn receives_a_signal_sent_to_the_process() {
        let rt = rt();
        let got = rt.block_on(async {
            let mut usr1 = signal(SignalKind::user_defined1()).unwrap();
            raise(libc::SIGUSR1);
            numa_rt_runtime::time::timeout(Duration::from_secs(5), usr1.recv()).await
        });
        assert_eq!(got, Ok(Some(())));
    }

    #[test]
    fn every_listener_is_woken_and_others_are_not() {
        let rt = rt();
        rt.block_on(async {
            let mut a = signal(SignalKind::user_defined2()).unwrap();
            let mut b = signal(SignalKind::user_defined2()).unwrap();
            let mut other = signal(SignalKind::window_change()).unwrap();
            raise(libc::SIGUSR2);
            let t = Duration::from_secs(5);
            assert_eq!(
                numa_rt_runtime::time::timeout(t, a.recv()).await,
                Ok(Some(()))
            );
            assert_eq!(
                numa_rt_runtime::time::timeout(t, b.recv()).await,
                Ok(Some(()))
            );
            let quiet = Duration::from_millis(50);
            assert!(numa_rt_runtime::time::timeout(quiet, other.recv())
                .await
                .is_err());
        });
    }

    #[test]
    fn forbidden_and_out_of_range_signals_are_errors() {
        for signo in [libc::SIGKILL, libc::SIGSTOP, libc::SIGSEGV, 0, -1, 1000] {
            let err = signal(SignalKind::from_raw(signo)).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "signal {signo}");
        }
    }
}
