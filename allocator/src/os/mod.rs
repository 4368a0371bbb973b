//! The operating-system layer: the only place that maps, binds, advises,
//! remaps or moves memory, and asks which CPU and node a thread runs on.
//!
//! Everything above this module talks to the kernel through the [`Os`]
//! trait, so heaps and large blocks can be tested against a double that
//! refuses chosen operations ([`FailingOs`]) without touching the kernel.
//! [`system`] returns the real Linux implementation.

mod failing;
mod huge;
mod linux;

pub use failing::{FailingOs, Op};
pub use huge::{huge_pages, HugePages, ThpMode};
pub use linux::LinuxOs;

use crate::NodeId;
use std::fmt;
use std::ptr::NonNull;

/// How memory is tied to its node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum BindPolicy {
    /// `MPOL_BIND`: pages come only from the node; when it is full the
    /// allocation fails (or the kernel reclaims) instead of spilling over.
    #[default]
    Bind,
    /// `MPOL_PREFERRED`: pages come from the node while it has free memory,
    /// then from the nearest other node.
    Preferred,
}

/// Advice given to the kernel about a range of memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Advice {
    /// `MADV_HUGEPAGE`: back the range with transparent huge pages.
    HugePage,
    /// `MADV_DONTNEED`: drop the pages; the range reads as zero afterwards
    /// and no longer counts towards the resident set.
    DontNeed,
}

/// Which page size a new mapping asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PageSize {
    /// Ordinary base pages (transparent huge pages may still be applied).
    Base,
    /// Explicit 2 MiB huge pages from the reserved pool (`MAP_HUGETLB`).
    Huge2M,
}

/// A refused kernel call: which operation and the `errno` it returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OsError {
    /// The system call that failed (`"mmap"`, `"mbind"`, ...).
    pub op: &'static str,
    /// The `errno` value it returned.
    pub errno: i32,
}

impl OsError {
    /// An error for `op` from the calling thread's current `errno`.
    pub(crate) fn last(op: &'static str) -> OsError {
        // SAFETY: `__errno_location` returns a valid pointer to this thread's errno.
        let errno = unsafe { *libc::__errno_location() };
        OsError { op, errno }
    }
}

impl fmt::Display for OsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let io = std::io::Error::from_raw_os_error(self.errno);
        write!(f, "{} failed: {}", self.op, io)
    }
}

impl std::error::Error for OsError {}

/// The kernel services the allocator needs.
///
/// Implementations must never allocate through the global allocator: they
/// run inside `GlobalAlloc::alloc`.
///
/// # Safety of the unsafe methods
///
/// Their pointer arguments must describe ranges that the caller mapped through
/// the same `Os` and still owns.
pub trait Os: Sync {
    /// Maps `len` bytes (a multiple of the page size) of fresh, zeroed,
    /// private anonymous memory.
    fn map(&self, len: usize, page: PageSize) -> Result<NonNull<u8>, OsError>;

    /// Unmaps a range.
    ///
    /// # Safety
    /// The range must be mapped and no longer used.
    unsafe fn unmap(&self, ptr: NonNull<u8>, len: usize) -> Result<(), OsError>;

    /// Ties the pages of a range to `node` under `policy`.
    ///
    /// # Safety
    /// The range must be mapped by the caller.
    unsafe fn bind(
        &self,
        ptr: NonNull<u8>,
        len: usize,
        node: NodeId,
        policy: BindPolicy,
    ) -> Result<(), OsError>;

    /// Gives the kernel advice about a range.
    ///
    /// # Safety
    /// The range must be mapped by the caller; after [`Advice::DontNeed`] its
    /// contents are gone.
    unsafe fn advise(&self, ptr: NonNull<u8>, len: usize, advice: Advice) -> Result<(), OsError>;

    /// Resizes a mapping, moving it if needed (`MREMAP_MAYMOVE`); the pages
    /// move with it, nothing is copied.
    ///
    /// # Safety
    /// `ptr..ptr+old_len` must be one whole mapping owned by the caller; on
    /// success the old range must no longer be used.
    unsafe fn remap(
        &self,
        ptr: NonNull<u8>,
        old_len: usize,
        new_len: usize,
    ) -> Result<NonNull<u8>, OsError>;

    /// `move_pages(2)`: with `to` set, moves each page to that node; with
    /// `None`, only asks where each page is. `status[i]` receives the node
    /// of `pages[i]` or a negative errno (`-ENOENT`: not yet faulted in).
    ///
    /// # Safety
    /// Every pointer must lie in a range mapped by the caller.
    unsafe fn move_pages(
        &self,
        pages: &[*mut u8],
        to: Option<NodeId>,
        status: &mut [i32],
    ) -> Result<(), OsError>;

    /// The CPU and the NUMA node the calling thread runs on (`getcpu`).
    fn current_cpu(&self) -> Result<(u32, NodeId), OsError>;

    /// Fills `mask` (bit `n` = node `n`) with the nodes this process may
    /// take memory from (`get_mempolicy(MPOL_F_MEMS_ALLOWED)`): nodes that
    /// exist, hold memory and are allowed by the cpuset.
    fn allowed_memory_nodes(&self, mask: &mut [u64]) -> Result<(), OsError>;
}

/// The highest node count the allocator handles (Linux's `MAX_NUMNODES`
/// is at most 1024).
pub(crate) const fn linux_max_nodes() -> usize {
    linux::MAX_NODES
}

/// The real Linux implementation.
pub fn system() -> &'static dyn Os {
    static LINUX: LinuxOs = LinuxOs;
    &LINUX
}

/// The kernel's base page size (4 KiB on every Linux platform we run on;
/// asked once).
pub fn page_size() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static PAGE: AtomicUsize = AtomicUsize::new(0);
    let cached = PAGE.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let size = if size > 0 { size as usize } else { 4096 };
    PAGE.store(size, Ordering::Relaxed);
    size
}

/// Whether this machine has a single NUMA node (`/sys/devices/system/node`
/// lists one `nodeN`, or does not exist). Read once.
pub fn single_node_machine() -> bool {
    use std::sync::atomic::{AtomicU8, Ordering};
    // 0 = not read yet, 1 = single, 2 = several.
    static SINGLE: AtomicU8 = AtomicU8::new(0);
    match SINGLE.load(Ordering::Relaxed) {
        1 => return true,
        2 => return false,
        _ => {}
    }
    let nodes = std::fs::read_dir("/sys/devices/system/node")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter(|e| {
                    let name = e.file_name();
                    let name = name.to_string_lossy();
                    name.strip_prefix("node")
                        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                })
                .count()
        })
        .unwrap_or(1);
    let single = nodes <= 1;
    SINGLE.store(if single { 1 } else { 2 }, Ordering::Relaxed);
    single
}

/// Whether a refused NUMA policy call can be ignored: the kernel refuses
/// such calls altogether (`EPERM` under a seccomp filter such as Docker's
/// default profile, `ENOSYS` without NUMA support) and the machine has one
/// node, so every page lands on it anyway.
pub(crate) fn numa_refusal_is_moot(err: &OsError) -> bool {
    (err.errno == libc::EPERM || err.errno == libc::ENOSYS) && single_node_machine()
}

/// Maps `len` bytes aligned to `align` (a power of two, at least the page
/// size): maps `len + align` and unmaps the unaligned ends.
pub(crate) fn map_aligned(
    os: &dyn Os,
    len: usize,
    align: usize,
    page: PageSize,
) -> Result<NonNull<u8>, OsError> {
    let grain = match page {
        PageSize::Base => page_size(),
        PageSize::Huge2M => 2 << 20,
    };
    let over = len.checked_add(align - grain).ok_or(OsError {
        op: "mmap",
        errno: libc::ENOMEM,
    })?;
    let raw = os.map(over, page)?;
    let start = raw.as_ptr() as usize;
    let aligned = (start + align - 1) & !(align - 1);
    let head = aligned - start;
    let tail = over - head - len;
    if head > 0 {
        // SAFETY: `raw..raw+head` is the unaligned front of the mapping we just made.
        unsafe { os.unmap(raw, head)? };
    }
    if tail > 0 {
        // SAFETY: `aligned+len..+tail` is the unused back of the same mapping.
        unsafe { os.unmap(NonNull::new_unchecked((aligned + len) as *mut u8), tail)? };
    }
    // SAFETY: `aligned` lies inside a successful mapping, so it is not null.
    Ok(unsafe { NonNull::new_unchecked(aligned as *mut u8) })
}

/// Where the pages of `ptr..ptr+len` are now: `(node, pages)` counts for
/// the pages already faulted in, asked from the kernel with `move_pages`.
/// Reports at most `out.len()` distinct nodes; returns how many it filled.
///
/// # Safety
/// The range must be mapped (for example, the memory of a live
/// [`NodeBox`](crate::NodeBox) or [`NodeVec`](crate::NodeVec)).
pub unsafe fn resident_nodes(
    ptr: *const u8,
    len: usize,
    out: &mut [(NodeId, usize)],
) -> Result<usize, OsError> {
    const CHUNK: usize = 256;
    let page = page_size();
    let start = (ptr as usize) & !(page - 1);
    let end = (ptr as usize).saturating_add(len);
    let mut filled = 0;
    let mut addr = start;
    while addr < end {
        let mut pages = [std::ptr::null_mut::<u8>(); CHUNK];
        let mut status = [0i32; CHUNK];
        let mut n = 0;
        while n < CHUNK && addr < end {
            pages[n] = addr as *mut u8;
            n += 1;
            addr += page;
        }
        // SAFETY: the caller guarantees the range is mapped.
        unsafe { system().move_pages(&pages[..n], None, &mut status[..n])? };
        for &s in &status[..n] {
            if s < 0 {
                continue;
            }
            let node = NodeId::new(s as u32);
            let cap = out.len();
            match out[..filled].iter_mut().find(|(n, _)| *n == node) {
                Some(entry) => entry.1 += 1,
                None if filled < cap => {
                    out[filled] = (node, 1);
                    filled += 1;
                }
                None => {}
            }
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_aligned_gives_aligned_usable_memory() {
        let os = system();
        let align = 4 << 20;
        let p = map_aligned(os, align, align, PageSize::Base).unwrap();
        assert_eq!(p.as_ptr() as usize % align, 0);
        // SAFETY: the mapping is ours and `align` bytes long.
        unsafe {
            p.as_ptr().write_bytes(7, align);
            assert_eq!(*p.as_ptr().add(align - 1), 7);
            os.unmap(p, align).unwrap();
        }
    }

    #[test]
    fn os_error_names_the_call() {
        let e = OsError {
            op: "mbind",
            errno: libc::EINVAL,
        };
        let text = e.to_string();
        assert!(text.starts_with("mbind failed: "), "{text}");
        assert!(text.contains("os error 22"), "{text}");
    }

    #[test]
    fn resident_nodes_reports_touched_pages() {
        let os = system();
        let len = 16 * page_size();
        let p = os.map(len, PageSize::Base).unwrap();
        // SAFETY: the mapping is ours.
        unsafe { p.as_ptr().write_bytes(1, len / 2) };
        let mut out = [(NodeId::new(0), 0usize); 4];
        // SAFETY: the range is mapped.
        let n = unsafe { resident_nodes(p.as_ptr(), len, &mut out) }.unwrap();
        let touched: usize = out[..n].iter().map(|e| e.1).sum();
        assert_eq!(touched, 8, "only the written half is resident");
        // SAFETY: the mapping is ours and unused from here on.
        unsafe { os.unmap(p, len).unwrap() };
    }
}
