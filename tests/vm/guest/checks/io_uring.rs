//! io_uring as the I/O driver will find it: available in a plain process,
//! refused with EPERM under a Docker-like seccomp filter (the 6.1 guest
//! kernel has no `io_uring_disabled` switch). The runtime's I/O suites run
//! in those same two sandboxes once they exist.

use crate::expect::Machine;
use crate::report::Outcome;
use crate::sys;

/// `io_uring_setup` gives a ring.
pub fn available(_: &Machine) -> Outcome {
    match sys::io_uring_probe(8) {
        Ok(features) => Outcome::Pass(format!("ring created, features {features:#x}")),
        Err(e) => Outcome::Fail(format!("io_uring_setup: {e}")),
    }
}

/// Under the seccomp filter `io_uring_setup` fails with EPERM, and only it.
/// Runs in [`super::Sandbox::NO_IO_URING`].
pub fn refused(_: &Machine) -> Outcome {
    match sys::io_uring_probe(8) {
        Ok(_) => Outcome::Fail("io_uring_setup succeeded under the seccomp filter".into()),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            // Everything else still works: the filter is not a blanket ban.
            match sys::getcpu() {
                Ok(_) => Outcome::Pass("io_uring_setup refused with EPERM".into()),
                Err(e) => Outcome::Fail(format!("the filter also broke getcpu: {e}")),
            }
        }
        Err(e) => Outcome::Fail(format!("io_uring_setup failed with {e}, want EPERM")),
    }
}
