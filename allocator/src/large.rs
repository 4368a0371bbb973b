//! Large blocks: anything above the size classes, mapped on its own.
//!
//! A large block is one mapping whose first page holds a small header
//! (just below the returned pointer). It grows and shrinks with `mremap`,
//! so the kernel moves page-table entries instead of copying, and growing
//! a block to N bytes never holds old + new. Fresh mappings read as zero,
//! so `alloc_zeroed` writes nothing. Freed blocks are unmapped at once, so
//! the resident set falls as soon as the program frees.

use crate::os::{self, page_size, Advice, BindPolicy, Os, OsError, PageSize, ThpMode};
use crate::stats;
use crate::valgrind;
use crate::NodeId;
use std::ptr::NonNull;

const MAGIC: u64 = 0x6e75_6d61_2d6c_6172; // "numa-lar"
/// Mappings at least this long are advised for transparent huge pages.
const THP_MIN: usize = 2 << 20;

#[repr(C)]
struct Header {
    magic: u64,
    /// Start of the mapping.
    base: *mut u8,
    /// Length of the mapping.
    map_len: usize,
    /// Bytes asked for.
    size: usize,
    node: NodeId,
    /// Bytes counted as huge-page backed in the stats.
    huge: bool,
}

/// # Safety
/// `p` is a live large block.
unsafe fn header(p: *mut u8) -> *mut Header {
    // SAFETY: the header sits right below the block, inside the first page.
    unsafe { p.sub(std::mem::size_of::<Header>()).cast() }
}

fn round_up(n: usize, to: usize) -> Option<usize> {
    Some(n.checked_add(to - 1)? & !(to - 1))
}

fn enomem(op: &'static str) -> OsError {
    OsError {
        op,
        errno: libc::ENOMEM,
    }
}

/// Advises transparent huge pages for a long mapping when the system
/// offers them; returns whether the range counts as huge-page backed.
fn advise_huge(os: &dyn Os, base: NonNull<u8>, len: usize) -> bool {
    if len < THP_MIN || os::huge_pages().thp == ThpMode::Never {
        return false;
    }
    // SAFETY: the mapping is ours; the advice does not change its contents.
    unsafe { os.advise(base, len, Advice::HugePage) }.is_ok()
}

/// Maps a large block of `size` bytes aligned to `align` on `node`.
/// `memory_node` is the real node to bind to; when binding fails, `strict`
/// decides between failing and keeping the memory unbound.
pub(crate) fn alloc(
    os: &dyn Os,
    node: NodeId,
    memory_node: NodeId,
    policy: BindPolicy,
    strict: bool,
    size: usize,
    align: usize,
) -> Result<NonNull<u8>, OsError> {
    let page = page_size();
    let offset = align.max(page);
    let map_len = size
        .checked_add(offset)
        .and_then(|n| round_up(n, page))
        .ok_or(enomem("mmap"))?;
    let base = if align > page {
        os::map_aligned(os, map_len, align, PageSize::Base)?
    } else {
        os.map(map_len, PageSize::Base)?
    };
    // SAFETY: `base..base+map_len` is a fresh mapping we own.
    if let Err(e) = unsafe { os.bind(base, map_len, memory_node, policy) } {
        if strict && !os::numa_refusal_is_moot(&e) {
            // SAFETY: as above; nothing uses it yet.
            let _ = unsafe { os.unmap(base, map_len) };
            return Err(e);
        }
    }
    let huge = advise_huge(os, base, map_len);
    // SAFETY: `offset` >= one page > header size, all inside the mapping.
    let p = unsafe {
        let p = base.as_ptr().add(offset);
        header(p).write(Header {
            magic: MAGIC,
            base: base.as_ptr(),
            map_len,
            size,
            node,
            huge,
        });
        p
    };
    stats::add_mapped(node, map_len, huge);
    stats::add_large(node, size);
    valgrind::malloclike(p, size, true);
    // SAFETY: inside a successful mapping, not null.
    Ok(unsafe { NonNull::new_unchecked(p) })
}

/// Unmaps a large block.
///
/// # Safety
/// `p` is a live large block, no longer used.
pub(crate) unsafe fn free(os: &dyn Os, p: *mut u8) {
    // SAFETY: guaranteed by the caller.
    unsafe {
        let h = header(p);
        debug_assert_eq!((*h).magic, MAGIC, "not a large block");
        let Header {
            base,
            map_len,
            size,
            node,
            huge,
            ..
        } = h.read();
        valgrind::freelike(p);
        stats::sub_large(node, size);
        stats::sub_mapped(node, map_len, huge);
        let _ = os.unmap(NonNull::new_unchecked(base), map_len);
    }
}

/// Resizes a large block with `mremap`: no copy, and the old and new
/// ranges are never both resident. Only for blocks aligned to at most a
/// page (a moved mapping keeps only page alignment).
///
/// # Safety
/// `p` is a live large block; on success only the returned pointer is used.
pub(crate) unsafe fn realloc(
    os: &dyn Os,
    p: *mut u8,
    new_size: usize,
    memory_node: NodeId,
    policy: BindPolicy,
) -> Result<NonNull<u8>, OsError> {
    let page = page_size();
    // SAFETY: guaranteed by the caller.
    unsafe {
        let h = header(p);
        let old = h.read();
        let offset = p as usize - old.base as usize;
        let new_len = new_size
            .checked_add(offset)
            .and_then(|n| round_up(n, page))
            .ok_or(enomem("mremap"))?;
        let mut base = NonNull::new_unchecked(old.base);
        let mut huge = old.huge;
        if new_len != old.map_len {
            base = os.remap(base, old.map_len, new_len)?;
            if new_len > old.map_len {
                // The kernel keeps the policy of a moved or grown mapping;
                // binding again covers kernels that do not for the tail.
                let _ = os.bind(base, new_len, memory_node, policy);
            }
            huge = advise_huge(os, base, new_len) || (huge && new_len >= THP_MIN);
        }
        let q = base.as_ptr().add(offset);
        header(q).write(Header {
            magic: MAGIC,
            base: base.as_ptr(),
            map_len: new_len,
            size: new_size,
            node: old.node,
            huge,
        });
        stats::sub_mapped(old.node, old.map_len, old.huge);
        stats::add_mapped(old.node, new_len, huge);
        stats::sub_large(old.node, old.size);
        stats::add_large(old.node, new_size);
        if q == p {
            valgrind::resize_in_place(p, old.size, new_size);
        } else {
            valgrind::freelike(p);
            valgrind::malloclike(q, new_size, true);
        }
        Ok(NonNull::new_unchecked(q))
    }
}

/// The node a large block was placed on.
///
/// # Safety
/// `p` is a live large block.
pub(crate) unsafe fn node_of(p: *mut u8) -> NodeId {
    // SAFETY: guaranteed by the caller.
    unsafe { (*header(p)).node }
}

/// Moves a large block's pages to `node` (`move_pages`) and binds the
/// mapping there for pages faulted in later.
///
/// # Safety
/// `p` is a live large block.
pub(crate) unsafe fn migrate(
    os: &dyn Os,
    p: *mut u8,
    node: NodeId,
    memory_node: NodeId,
    policy: BindPolicy,
) -> Result<(), OsError> {
    const CHUNK: usize = 256;
    let page = page_size();
    // SAFETY: guaranteed by the caller.
    unsafe {
        let h = header(p);
        let (base, map_len) = ((*h).base, (*h).map_len);
        os.bind(NonNull::new_unchecked(base), map_len, memory_node, policy)?;
        let mut addr = base as usize;
        let end = addr + map_len;
        while addr < end {
            let mut pages = [std::ptr::null_mut::<u8>(); CHUNK];
            let mut status = [0i32; CHUNK];
            let mut n = 0;
            while n < CHUNK && addr < end {
                pages[n] = addr as *mut u8;
                n += 1;
                addr += page;
            }
            os.move_pages(&pages[..n], Some(memory_node), &mut status[..n])?;
            // -ENOENT: not faulted in yet, so it will be on the new node.
            if let Some(&s) = status[..n].iter().find(|&&s| s < 0 && s != -libc::ENOENT) {
                return Err(OsError {
                    op: "move_pages",
                    errno: -s,
                });
            }
        }
        let old = (*h).node;
        if old != node {
            stats::sub_mapped(old, map_len, (*h).huge);
            stats::add_mapped(node, map_len, (*h).huge);
            stats::sub_large(old, (*h).size);
            stats::add_large(node, (*h).size);
            (*h).node = node;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::{resident_nodes, system, FailingOs, Op};

    fn here() -> NodeId {
        crate::thread::current_node()
    }

    fn resident(p: *const u8, len: usize) -> usize {
        let mut out = [(NodeId::new(0), 0usize); 8];
        // SAFETY: the callers pass live blocks.
        let n = unsafe { resident_nodes(p, len, &mut out) }.unwrap();
        out[..n].iter().map(|e| e.1).sum()
    }

    #[test]
    fn fresh_blocks_read_zero_without_being_touched() {
        let len = 64 << 20;
        let p = alloc(system(), here(), here(), BindPolicy::Bind, true, len, 8).unwrap();
        // Only the header below the block was written. Its page can be
        // part of a transparent huge page, so allow one 2 MiB page.
        let touched = resident(p.as_ptr(), len);
        assert!(touched <= 512, "{touched} pages resident without a write");
        // SAFETY: the block is live and `len` bytes long; freed once.
        unsafe {
            assert_eq!(*p.as_ptr().add(len - 1), 0);
            free(system(), p.as_ptr());
        }
    }

    #[test]
    fn growth_moves_pages_not_bytes() {
        let len = 8 << 20;
        let p = alloc(system(), here(), here(), BindPolicy::Bind, true, len, 8).unwrap();
        // SAFETY: live block of `len` bytes, then only the remapped one.
        unsafe {
            for i in (0..len).step_by(4096) {
                *p.as_ptr().add(i) = (i >> 12) as u8;
            }
            let q = realloc(system(), p.as_ptr(), 4 * len, here(), BindPolicy::Bind).unwrap();
            for i in (0..len).step_by(4096) {
                assert_eq!(*q.as_ptr().add(i), (i >> 12) as u8);
            }
            let r = realloc(system(), q.as_ptr(), 4096, here(), BindPolicy::Bind).unwrap();
            assert_eq!(*r.as_ptr().add(4095), 0);
            assert_eq!(*r.as_ptr(), 0);
            free(system(), r.as_ptr());
        }
    }

    #[test]
    fn refusals_are_errors_and_leave_the_block_alone() {
        static OS: FailingOs = FailingOs::new();
        OS.refuse(Op::Bind);
        let err = alloc(&OS, here(), here(), BindPolicy::Bind, true, 1 << 20, 8).unwrap_err();
        assert_eq!(err.op, "mbind");
        OS.allow(Op::Bind);
        let p = alloc(&OS, here(), here(), BindPolicy::Bind, true, 1 << 20, 8).unwrap();
        OS.refuse(Op::Remap);
        // SAFETY: live block; after the failed remap it is still ours.
        unsafe {
            p.as_ptr().write(42);
            let err = realloc(&OS, p.as_ptr(), 4 << 20, here(), BindPolicy::Bind).unwrap_err();
            assert_eq!(err.op, "mremap");
            assert_eq!(*p.as_ptr(), 42);
            free(&OS, p.as_ptr());
        }
        OS.refuse(Op::Map);
        assert_eq!(
            alloc(&OS, here(), here(), BindPolicy::Bind, false, 1 << 20, 8)
                .unwrap_err()
                .op,
            "mmap"
        );
    }

    #[test]
    fn long_blocks_are_advised_for_huge_pages() {
        let p = alloc(
            system(),
            here(),
            here(),
            BindPolicy::Preferred,
            true,
            8 << 20,
            8,
        )
        .unwrap();
        // SAFETY: live block, freed once.
        unsafe {
            let huge = (*header(p.as_ptr())).huge;
            assert_eq!(huge, os::huge_pages().thp != ThpMode::Never);
            free(system(), p.as_ptr());
        }
        let small = alloc(system(), here(), here(), BindPolicy::Bind, true, 200_000, 8).unwrap();
        // SAFETY: live block, freed once.
        unsafe {
            assert!(
                !(*header(small.as_ptr())).huge,
                "under 2 MiB stays on base pages"
            );
            free(system(), small.as_ptr());
        }
    }

    #[test]
    fn big_alignments_are_honoured() {
        for align in [8192, 1 << 16, 1 << 21] {
            let p = alloc(
                system(),
                here(),
                here(),
                BindPolicy::Bind,
                true,
                300_000,
                align,
            )
            .unwrap();
            assert_eq!(p.as_ptr() as usize % align, 0);
            // SAFETY: live block, freed once.
            unsafe { free(system(), p.as_ptr()) };
        }
    }
}
