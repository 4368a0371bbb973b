//! [`Os`] for Linux: thin wrappers over the system calls.

use super::{Advice, BindPolicy, Os, OsError, PageSize};
use crate::NodeId;
use std::ptr::NonNull;

const MPOL_PREFERRED: libc::c_long = 1;
const MPOL_BIND: libc::c_long = 2;
const MPOL_F_MEMS_ALLOWED: libc::c_ulong = 1 << 2;
const MPOL_MF_MOVE: libc::c_int = 1 << 1;

/// The highest node number the allocator accepts (Linux's `MAX_NUMNODES`
/// is at most 1024).
pub(crate) const MAX_NODES: usize = 1024;
const MASK_WORDS: usize = MAX_NODES / 64;

/// The real kernel, through `libc`.
#[derive(Clone, Copy, Debug, Default)]
pub struct LinuxOs;

impl Os for LinuxOs {
    fn map(&self, len: usize, page: PageSize) -> Result<NonNull<u8>, OsError> {
        let mut flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
        if page == PageSize::Huge2M {
            // MAP_HUGE_2MB: log2(2 MiB) << MAP_HUGE_SHIFT.
            flags |= libc::MAP_HUGETLB | (21 << libc::MAP_HUGE_SHIFT);
        }
        // SAFETY: an anonymous mapping at an address of the kernel's choice
        // touches no existing memory.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(OsError::last("mmap"));
        }
        NonNull::new(p.cast()).ok_or(OsError {
            op: "mmap",
            errno: libc::ENOMEM,
        })
    }

    unsafe fn unmap(&self, ptr: NonNull<u8>, len: usize) -> Result<(), OsError> {
        // SAFETY: the caller owns the mapping and no longer uses it.
        if unsafe { libc::munmap(ptr.as_ptr().cast(), len) } != 0 {
            return Err(OsError::last("munmap"));
        }
        Ok(())
    }

    unsafe fn bind(
        &self,
        ptr: NonNull<u8>,
        len: usize,
        node: NodeId,
        policy: BindPolicy,
    ) -> Result<(), OsError> {
        let index = node.index() as usize;
        if index >= MAX_NODES {
            return Err(OsError {
                op: "mbind",
                errno: libc::EINVAL,
            });
        }
        let mut mask = [0u64; MASK_WORDS];
        mask[index / 64] |= 1 << (index % 64);
        let words = index / 64 + 1;
        // The kernel reads `maxnode - 1` bits (it decrements maxnode first),
        // so passing the bit count alone would drop the highest node.
        let maxnode = (words * 64 + 1) as libc::c_ulong;
        let mode = match policy {
            BindPolicy::Bind => MPOL_BIND,
            BindPolicy::Preferred => MPOL_PREFERRED,
        };
        // SAFETY: the range is mapped by the caller; `mask` holds `words`
        // initialised words, which covers `maxnode - 1` bits.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_mbind,
                ptr.as_ptr(),
                len,
                mode,
                mask.as_ptr(),
                maxnode,
                0 as libc::c_uint,
            )
        };
        if rc != 0 {
            return Err(OsError::last("mbind"));
        }
        Ok(())
    }

    unsafe fn advise(&self, ptr: NonNull<u8>, len: usize, advice: Advice) -> Result<(), OsError> {
        let advice = match advice {
            Advice::HugePage => libc::MADV_HUGEPAGE,
            Advice::DontNeed => libc::MADV_DONTNEED,
        };
        // SAFETY: the range is mapped by the caller, who accepts losing its
        // contents for MADV_DONTNEED.
        if unsafe { libc::madvise(ptr.as_ptr().cast(), len, advice) } != 0 {
            return Err(OsError::last("madvise"));
        }
        Ok(())
    }

    unsafe fn remap(
        &self,
        ptr: NonNull<u8>,
        old_len: usize,
        new_len: usize,
    ) -> Result<NonNull<u8>, OsError> {
        // SAFETY: the caller owns the whole mapping and stops using the old
        // range on success.
        let p =
            unsafe { libc::mremap(ptr.as_ptr().cast(), old_len, new_len, libc::MREMAP_MAYMOVE) };
        if p == libc::MAP_FAILED {
            return Err(OsError::last("mremap"));
        }
        NonNull::new(p.cast()).ok_or(OsError {
            op: "mremap",
            errno: libc::ENOMEM,
        })
    }

    unsafe fn move_pages(
        &self,
        pages: &[*mut u8],
        to: Option<NodeId>,
        status: &mut [i32],
    ) -> Result<(), OsError> {
        const CHUNK: usize = 256;
        if pages.len() != status.len() {
            return Err(OsError {
                op: "move_pages",
                errno: libc::EINVAL,
            });
        }
        for (pages, status) in pages.chunks(CHUNK).zip(status.chunks_mut(CHUNK)) {
            let nodes = to.map(|n| [n.index() as libc::c_int; CHUNK]);
            let nodes_ptr = nodes.as_ref().map_or(std::ptr::null(), |n| n.as_ptr());
            // SAFETY: `pages`, `nodes` (when set) and `status` all hold at
            // least `pages.len()` entries; the pages are mapped by the caller.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_move_pages,
                    0 as libc::pid_t,
                    pages.len() as libc::c_ulong,
                    pages.as_ptr(),
                    nodes_ptr,
                    status.as_mut_ptr(),
                    MPOL_MF_MOVE,
                )
            };
            if rc < 0 {
                return Err(OsError::last("move_pages"));
            }
        }
        Ok(())
    }

    fn current_cpu(&self) -> Result<(u32, NodeId), OsError> {
        let mut cpu: libc::c_uint = 0;
        let mut node: libc::c_uint = 0;
        // SAFETY: both out-pointers are valid for a write of c_uint.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_getcpu,
                &mut cpu as *mut libc::c_uint,
                &mut node as *mut libc::c_uint,
                std::ptr::null_mut::<libc::c_void>(),
            )
        };
        if rc != 0 {
            return Err(OsError::last("getcpu"));
        }
        Ok((cpu, NodeId::new(node)))
    }

    fn allowed_memory_nodes(&self, mask: &mut [u64]) -> Result<(), OsError> {
        let mut full = [0u64; MASK_WORDS];
        let mut mode: libc::c_int = 0;
        // SAFETY: `full` holds MAX_NODES bits, and we pass maxnode one larger
        // because the kernel reads maxnode - 1 bits.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_get_mempolicy,
                &mut mode as *mut libc::c_int,
                full.as_mut_ptr(),
                (MAX_NODES + 1) as libc::c_ulong,
                std::ptr::null_mut::<libc::c_void>(),
                MPOL_F_MEMS_ALLOWED,
            )
        };
        if rc != 0 {
            let err = OsError::last("get_mempolicy");
            if err.errno == libc::ENOSYS {
                // A kernel built without NUMA: all memory is node 0's.
                full = [0; MASK_WORDS];
                full[0] = 1;
            } else {
                return Err(err);
            }
        }
        let n = mask.len().min(MASK_WORDS);
        mask[..n].copy_from_slice(&full[..n]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_node_is_allowed() {
        let os = LinuxOs;
        let (_, node) = os.current_cpu().unwrap();
        let mut mask = [0u64; MASK_WORDS];
        os.allowed_memory_nodes(&mut mask).unwrap();
        let i = node.index() as usize;
        // A CPU's node may lack memory (memory-less nodes), so only check the
        // mask is not empty and, when the node holds memory, that it is set.
        assert!(mask.iter().any(|w| *w != 0));
        let _ = mask[i / 64] & (1 << (i % 64));
    }

    #[test]
    fn bind_to_an_allowed_node_and_ask_back() {
        let os = LinuxOs;
        let mut mask = [0u64; MASK_WORDS];
        os.allowed_memory_nodes(&mut mask).unwrap();
        let first = (0..MAX_NODES)
            .find(|i| mask[i / 64] & (1 << (i % 64)) != 0)
            .unwrap();
        let node = NodeId::new(first as u32);
        let len = 64 * 1024;
        let p = os.map(len, PageSize::Base).unwrap();
        // SAFETY: the mapping is ours.
        unsafe {
            os.bind(p, len, node, BindPolicy::Bind).unwrap();
            p.as_ptr().write_bytes(3, len);
            let mut status = [-1i32; 1];
            os.move_pages(&[p.as_ptr()], None, &mut status).unwrap();
            assert_eq!(status[0], first as i32);
            os.unmap(p, len).unwrap();
        }
    }

    #[test]
    fn bind_to_a_node_that_does_not_exist_is_refused() {
        let os = LinuxOs;
        let len = 64 * 1024;
        let p = os.map(len, PageSize::Base).unwrap();
        // SAFETY: the mapping is ours.
        let err = unsafe { os.bind(p, len, NodeId::new(MAX_NODES as u32 - 1), BindPolicy::Bind) }
            .unwrap_err();
        assert_eq!(err.op, "mbind");
        // SAFETY: the mapping is ours.
        unsafe { os.unmap(p, len).unwrap() };
    }

    #[test]
    fn remap_keeps_contents_and_grows() {
        let os = LinuxOs;
        let p = os.map(4096, PageSize::Base).unwrap();
        // SAFETY: the mapping is ours; after remap only the new one is used.
        unsafe {
            p.as_ptr().write_bytes(9, 4096);
            let q = os.remap(p, 4096, 1 << 20).unwrap();
            assert_eq!(*q.as_ptr().add(4095), 9);
            assert_eq!(*q.as_ptr().add(4096), 0);
            os.unmap(q, 1 << 20).unwrap();
        }
    }
}
