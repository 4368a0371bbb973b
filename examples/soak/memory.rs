//! Memory readings: the process's resident set and the allocator's books.

use std::fmt;
use std::io;

/// Memory in use at one moment.
#[derive(Clone, Copy, Debug)]
pub struct Snapshot {
    /// Resident set size (`/proc/self/statm`), bytes.
    pub rss: u64,
    /// Bytes the allocator has handed out and not had back, all nodes.
    pub in_use: u64,
    /// Bytes the allocator has mapped, all nodes.
    pub mapped: u64,
}

impl Snapshot {
    /// Reads the current values.
    pub fn take() -> io::Result<Snapshot> {
        let mut s = Snapshot {
            rss: rss()?,
            in_use: 0,
            mapped: 0,
        };
        for node in numa_rt::alloc::all_stats() {
            s.in_use += node.in_use_bytes;
            s.mapped += node.mapped_bytes;
        }
        Ok(s)
    }
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rss={:.1}MiB in_use={:.1}MiB mapped={:.1}MiB",
            mib(self.rss as i64),
            mib(self.in_use as i64),
            mib(self.mapped as i64)
        )
    }
}

/// Bytes as MiB, for messages.
pub fn mib(bytes: i64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// The resident set size: the second field of `/proc/self/statm`, in
/// pages.
fn rss() -> io::Result<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| io::Error::other(format!("/proc/self/statm: unexpected {statm:?}")))?;
    // SAFETY: sysconf only reads a configuration value.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let page = u64::try_from(page)
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| io::Error::other("sysconf(_SC_PAGESIZE) failed"))?;
    Ok(pages * page)
}

/// Raises the soft limit on open files to the hard limit; returns the
/// limit now in force.
pub fn raise_nofile_limit() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit for the kernel to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit, read by the kernel.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = lim.rlim_max;
        }
        // Refused (a container may forbid it): keep the soft limit.
    }
    Ok(lim.rlim_cur)
}
