//! Which I/O backend a runtime uses, and how that is decided.

use std::io;

/// The kernel interface the I/O driver uses.
///
/// [`Auto`](IoDriver::Auto) (the default) uses io_uring when the kernel lets
/// the process create a ring and epoll otherwise (setup refused with
/// `EPERM`/`ENOSYS`/`EACCES`, as under Docker's default seccomp profile or
/// `kernel.io_uring_disabled`), also when the workers' rings are refused
/// after a probe ring was allowed. Under `Auto`, the environment variable
/// `NUMA_RT_IO=epoll|uring` forces one; an explicit builder choice wins over
/// the environment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IoDriver {
    /// io_uring when available, else epoll (honours `NUMA_RT_IO`).
    #[default]
    Auto,
    /// io_uring; building the runtime fails when the kernel refuses it.
    Uring,
    /// epoll (readiness-based).
    Epoll,
}

/// The backend actually chosen for a runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// io_uring rings, one per worker.
    Uring,
    /// epoll instances, one per worker.
    Epoll,
}

/// Settings the builder hands to every driver of a runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IoConfig {
    pub(crate) io: bool,
    pub(crate) time: bool,
    pub(crate) backend: Backend,
    /// Submission queue entries per ring.
    pub(crate) entries: u32,
}

/// Reads `NUMA_RT_IO`: `None` when unset or empty.
fn env_choice() -> io::Result<Option<Backend>> {
    match std::env::var("NUMA_RT_IO") {
        Ok(v) => parse_choice(&v),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "numa_rt: NUMA_RT_IO is not valid UTF-8 (expected `epoll` or `uring`)",
        )),
    }
}

fn parse_choice(v: &str) -> io::Result<Option<Backend>> {
    match v.trim().to_ascii_lowercase().as_str() {
        "" | "auto" => Ok(None),
        "epoll" => Ok(Some(Backend::Epoll)),
        "uring" | "io_uring" | "io-uring" => Ok(Some(Backend::Uring)),
        other => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("numa_rt: NUMA_RT_IO={other:?} is not one of `epoll`, `uring`, `auto`"),
        )),
    }
}

/// Settles the backend for a runtime: the builder's choice, else the
/// environment's, else io_uring when a probe ring can be created.
pub(crate) fn resolve(choice: IoDriver) -> io::Result<Backend> {
    let wanted = match choice {
        IoDriver::Uring => Some(Backend::Uring),
        IoDriver::Epoll => Some(Backend::Epoll),
        IoDriver::Auto => env_choice()?,
    };
    match wanted {
        Some(Backend::Epoll) => Ok(Backend::Epoll),
        Some(Backend::Uring) => match super::driver::uring::probe() {
            Ok(()) => Ok(Backend::Uring),
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!("numa_rt: io_uring was requested but the kernel refused it: {e}"),
            )),
        },
        None => match super::driver::uring::probe() {
            Ok(()) => Ok(Backend::Uring),
            Err(e) if refused(&e) => Ok(Backend::Epoll),
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!("numa_rt: cannot set up io_uring: {e}"),
            )),
        },
    }
}

/// Whether `choice` leaves the backend to the runtime (neither the builder
/// nor `NUMA_RT_IO` asked for one), so io_uring refused when the workers'
/// rings are made may still be replaced by epoll.
pub(crate) fn is_automatic(choice: IoDriver) -> bool {
    choice == IoDriver::Auto && matches!(env_choice(), Ok(None))
}

/// Whether an `io_uring_setup` error means "not allowed or not there", so
/// epoll should be used instead.
pub(crate) fn refused(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EPERM | libc::ENOSYS | libc::EACCES | libc::ENOMEM)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_env_values() {
        assert_eq!(parse_choice("epoll").unwrap(), Some(Backend::Epoll));
        assert_eq!(parse_choice(" URING ").unwrap(), Some(Backend::Uring));
        assert_eq!(parse_choice("").unwrap(), None);
        assert_eq!(parse_choice("auto").unwrap(), None);
        let err = parse_choice("kqueue").unwrap_err();
        assert!(err.to_string().contains("kqueue"));
    }

    #[test]
    fn explicit_epoll_needs_no_probe() {
        assert_eq!(resolve(IoDriver::Epoll).unwrap(), Backend::Epoll);
    }

    #[test]
    fn refusal_errors_fall_back() {
        assert!(refused(&io::Error::from_raw_os_error(libc::EPERM)));
        assert!(refused(&io::Error::from_raw_os_error(libc::ENOSYS)));
        assert!(!refused(&io::Error::from_raw_os_error(libc::EBADF)));
    }
}
