//! Every check the guest runs, in one list.
//!
//! To add a check (scheduler pinning, allocator placement, an I/O suite on
//! each driver...): write `fn(&Machine) -> Outcome` in a module here and add
//! one line to [`CHECKS`]. Each check runs in its own child process, so a
//! crash or a hang fails that check only; [`Sandbox`] sets up that process
//! (environment variables, io_uring refused by seccomp) before the check runs.
//!
//! The I/O suite, for example, runs three times: plainly (io_uring), in
//! [`Sandbox::EPOLL_FORCED`] and in [`Sandbox::NO_IO_URING`] (the fallback
//! chosen automatically because `io_uring_setup` fails with EPERM).

mod allocator;
pub mod devices;
mod io_suite;
mod io_uring;
mod locality;
mod mems;
mod placement;
mod scheduler;
mod topology;

use std::time::Duration;

use crate::expect::Machine;
use crate::report::Outcome;

/// How the child process that runs a check is prepared.
#[derive(Debug, Clone, Copy)]
pub struct Sandbox {
    /// Environment variables set for the check (e.g. `NUMA_RT_IO=epoll`).
    pub env: &'static [(&'static str, &'static str)],
    /// Install a seccomp filter failing `io_uring_setup` with EPERM first,
    /// as Docker's default profile does.
    pub deny_io_uring: bool,
}

impl Sandbox {
    /// A plain child process.
    pub const PLAIN: Sandbox = Sandbox {
        env: &[],
        deny_io_uring: false,
    };
    /// io_uring refused, as in a default Docker container.
    pub const NO_IO_URING: Sandbox = Sandbox {
        env: &[],
        deny_io_uring: true,
    };
    /// The epoll driver forced through the environment.
    pub const EPOLL_FORCED: Sandbox = Sandbox {
        env: &[("NUMA_RT_IO", "epoll")],
        deny_io_uring: false,
    };
}

/// One named check.
#[derive(Debug, Clone, Copy)]
pub struct Check {
    /// Name printed in results; also how `--only` selects it.
    pub name: &'static str,
    /// The check itself.
    pub run: fn(&Machine) -> Outcome,
    /// Process set-up before `run`.
    pub sandbox: Sandbox,
    /// Longest the check may take under TCG before it counts as hung.
    pub timeout: Duration,
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

const fn check(name: &'static str, run: fn(&Machine) -> Outcome) -> Check {
    Check {
        name,
        run,
        sandbox: Sandbox::PLAIN,
        timeout: DEFAULT_TIMEOUT,
    }
}

const fn sandboxed(name: &'static str, run: fn(&Machine) -> Outcome, sandbox: Sandbox) -> Check {
    Check {
        name,
        run,
        sandbox,
        timeout: DEFAULT_TIMEOUT,
    }
}

/// Every check, in the order they run. Kernel sanity first: when one of
/// those fails, the test bed (QEMU, the table) is wrong, not numa_rt.
pub const CHECKS: &[Check] = &[
    // The guest kernel sees what the topology table told QEMU.
    check("kernel_topology", topology::kernel_topology),
    check("getcpu_nodes", placement::getcpu_nodes),
    check("mbind_places_pages", placement::mbind_places_pages),
    check("io_uring_available", io_uring::available),
    sandboxed("io_uring_refused", io_uring::refused, Sandbox::NO_IO_URING),
    check("device_nodes", devices::device_nodes),
    check("files_on_device_node", devices::files_on_device_node),
    // numa_rt under test.
    check("topo_json", topology::topo_json),
    check("spawn_on_runs_on_node", scheduler::spawn_on_runs_on_node),
    check("strict_tasks_stay", scheduler::strict_tasks_stay),
    check("node_memory_lands", allocator::node_memory_lands),
    check("memory_kinds_resolve", allocator::memory_kinds_resolve),
    check("targets_pull_tasks", locality::targets_pull_tasks),
    check("files_pull_tasks", locality::files_pull_tasks),
    check("mems_narrowed", mems::mems_narrowed),
    check("io_on_io_uring", io_suite::on_io_uring),
    sandboxed(
        "io_on_epoll_forced",
        io_suite::on_epoll_forced,
        Sandbox::EPOLL_FORCED,
    ),
    sandboxed(
        "io_on_epoll_auto",
        io_suite::on_epoll_auto,
        Sandbox::NO_IO_URING,
    ),
];

/// The check called `name`.
pub fn find(name: &str) -> Option<&'static Check> {
    CHECKS.iter().find(|c| c.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique_and_findable() {
        let names: HashSet<_> = CHECKS.iter().map(|c| c.name).collect();
        assert_eq!(names.len(), CHECKS.len());
        for c in CHECKS {
            assert_eq!(find(c.name).map(|f| f.name), Some(c.name));
            assert!(!c.name.contains([' ', ':', ',']), "{}", c.name);
        }
        assert!(find("no_such_check").is_none());
    }
}
