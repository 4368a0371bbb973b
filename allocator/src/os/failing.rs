//! An [`Os`] that refuses chosen operations, for fault-injection tests.

use super::{system, Advice, BindPolicy, Os, OsError, PageSize};
use crate::NodeId;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

/// An operation of [`Os`] that [`FailingOs`] can refuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Op {
    /// [`Os::map`]
    Map = 1,
    /// [`Os::bind`]
    Bind = 2,
    /// [`Os::remap`]
    Remap = 4,
    /// [`Os::advise`]
    Advise = 8,
}

/// Forwards to the real kernel, except for the operations it is told to
/// refuse, which fail with `ENOMEM` (map, remap) or `EINVAL` (bind, advise).
///
/// ```
/// use numa_rt_alloc::os::{FailingOs, Op, Os, PageSize};
/// let os = FailingOs::new();
/// os.refuse(Op::Map);
/// assert!(os.map(4096, PageSize::Base).is_err());
/// ```
#[derive(Debug, Default)]
pub struct FailingOs {
    refused: AtomicU32,
    /// Operations still allowed before the refusals start (`usize::MAX`: none).
    maps_before_failing: AtomicUsize,
}

impl FailingOs {
    /// A pass-through that refuses nothing yet.
    pub const fn new() -> FailingOs {
        FailingOs {
            refused: AtomicU32::new(0),
            maps_before_failing: AtomicUsize::new(usize::MAX),
        }
    }

    /// Refuses `op` from now on.
    pub fn refuse(&self, op: Op) {
        self.refused.fetch_or(op as u32, Ordering::SeqCst);
    }

    /// Allows `op` again.
    pub fn allow(&self, op: Op) {
        self.refused.fetch_and(!(op as u32), Ordering::SeqCst);
    }

    /// Lets `n` more maps succeed, then refuses maps.
    pub fn fail_maps_after(&self, n: usize) {
        self.maps_before_failing.store(n, Ordering::SeqCst);
    }

    fn refuses(&self, op: Op) -> bool {
        self.refused.load(Ordering::SeqCst) & op as u32 != 0
    }
}

impl Os for FailingOs {
    fn map(&self, len: usize, page: PageSize) -> Result<NonNull<u8>, OsError> {
        let left = self.maps_before_failing.load(Ordering::SeqCst);
        if left != usize::MAX {
            if left == 0 {
                return Err(OsError {
                    op: "mmap",
                    errno: libc::ENOMEM,
                });
            }
            self.maps_before_failing.store(left - 1, Ordering::SeqCst);
        }
        if self.refuses(Op::Map) {
            return Err(OsError {
                op: "mmap",
                errno: libc::ENOMEM,
            });
        }
        system().map(len, page)
    }

    unsafe fn unmap(&self, ptr: NonNull<u8>, len: usize) -> Result<(), OsError> {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { system().unmap(ptr, len) }
    }

    unsafe fn bind(
        &self,
        ptr: NonNull<u8>,
        len: usize,
        node: NodeId,
        policy: BindPolicy,
    ) -> Result<(), OsError> {
        if self.refuses(Op::Bind) {
            return Err(OsError {
                op: "mbind",
                errno: libc::EINVAL,
            });
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { system().bind(ptr, len, node, policy) }
    }

    unsafe fn advise(&self, ptr: NonNull<u8>, len: usize, advice: Advice) -> Result<(), OsError> {
        if self.refuses(Op::Advise) {
            return Err(OsError {
                op: "madvise",
                errno: libc::EINVAL,
            });
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { system().advise(ptr, len, advice) }
    }

    unsafe fn remap(
        &self,
        ptr: NonNull<u8>,
        old_len: usize,
        new_len: usize,
    ) -> Result<NonNull<u8>, OsError> {
        if self.refuses(Op::Remap) {
            return Err(OsError {
                op: "mremap",
                errno: libc::ENOMEM,
            });
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { system().remap(ptr, old_len, new_len) }
    }

    unsafe fn move_pages(
        &self,
        pages: &[*mut u8],
        to: Option<NodeId>,
        status: &mut [i32],
    ) -> Result<(), OsError> {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { system().move_pages(pages, to, status) }
    }

    fn current_cpu(&self) -> Result<(u32, NodeId), OsError> {
        system().current_cpu()
    }

    fn allowed_memory_nodes(&self, mask: &mut [u64]) -> Result<(), OsError> {
        system().allowed_memory_nodes(mask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::single_node_machine;

    #[test]
    fn refused_binds_are_moot_only_on_one_node_machines() {
        let eperm = OsError {
            op: "mbind",
            errno: libc::EPERM,
        };
        let einval = OsError {
            op: "mbind",
            errno: libc::EINVAL,
        };
        assert_eq!(
            crate::os::numa_refusal_is_moot(&eperm),
            single_node_machine()
        );
        assert!(!crate::os::numa_refusal_is_moot(&einval));
    }

    #[test]
    fn map_budget_runs_out() {
        let os = FailingOs::new();
        os.fail_maps_after(1);
        let p = os.map(4096, PageSize::Base).unwrap();
        assert_eq!(
            os.map(4096, PageSize::Base).unwrap_err().errno,
            libc::ENOMEM
        );
        // SAFETY: the mapping is ours and unused.
        unsafe { os.unmap(p, 4096).unwrap() };
    }
}
