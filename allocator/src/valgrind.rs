//! Valgrind client requests, so memcheck checks the allocator's blocks as
//! it checks `malloc`'s: use after free, reads of uninitialised memory,
//! overruns into a neighbour, leaks.
//!
//! With the `valgrind` feature off (the default) every function is empty.
//! With it on, each is the client-request instruction sequence, a handful
//! of no-op instructions when the program does not run under valgrind.

#[cfg(all(feature = "valgrind", target_arch = "x86_64"))]
mod imp {
    const MALLOCLIKE_BLOCK: usize = 0x1301;
    const FREELIKE_BLOCK: usize = 0x1302;
    const RESIZEINPLACE_BLOCK: usize = 0x130b;
    /// memcheck's tool base: ('M' << 24) | ('C' << 16).
    const MC_BASE: usize = 0x4d43_0000;
    const MAKE_MEM_UNDEFINED: usize = MC_BASE + 1;
    const MAKE_MEM_DEFINED: usize = MC_BASE + 2;

    #[inline(always)]
    fn request(args: [usize; 6]) -> usize {
        let mut result: usize = 0;
        // SAFETY: this is valgrind's documented "special instruction"
        // preamble: four rotations of rdi that add up to 128 bits (so rdi
        // is unchanged) followed by `xchg rbx, rbx` (a no-op). Natively it
        // does nothing; under valgrind it reads the six words at rax and
        // writes the answer to rdx. `args` outlives the asm block.
        unsafe {
            std::arch::asm!(
                "rol rdi, 3",
                "rol rdi, 13",
                "rol rdi, 61",
                "rol rdi, 51",
                "xchg rbx, rbx",
                inout("rdx") result,
                in("rax") args.as_ptr(),
                out("rdi") _,
                options(nostack, preserves_flags),
            );
        }
        result
    }

    pub(crate) fn malloclike(ptr: *const u8, size: usize, zeroed: bool) {
        request([MALLOCLIKE_BLOCK, ptr as usize, size, 0, zeroed as usize, 0]);
    }

    pub(crate) fn freelike(ptr: *const u8) {
        request([FREELIKE_BLOCK, ptr as usize, 0, 0, 0, 0]);
    }

    pub(crate) fn resize_in_place(ptr: *const u8, old: usize, new: usize) {
        request([RESIZEINPLACE_BLOCK, ptr as usize, old, new, 0, 0]);
    }

    pub(crate) fn make_defined(ptr: *const u8, len: usize) {
        request([MAKE_MEM_DEFINED, ptr as usize, len, 0, 0, 0]);
    }

    pub(crate) fn make_undefined(ptr: *const u8, len: usize) {
        request([MAKE_MEM_UNDEFINED, ptr as usize, len, 0, 0, 0]);
    }
}

#[cfg(not(all(feature = "valgrind", target_arch = "x86_64")))]
mod imp {
    #[inline(always)]
    pub(crate) fn malloclike(_ptr: *const u8, _size: usize, _zeroed: bool) {}
    #[inline(always)]
    pub(crate) fn freelike(_ptr: *const u8) {}
    #[inline(always)]
    pub(crate) fn resize_in_place(_ptr: *const u8, _old: usize, _new: usize) {}
    #[inline(always)]
    pub(crate) fn make_defined(_ptr: *const u8, _len: usize) {}
    #[inline(always)]
    pub(crate) fn make_undefined(_ptr: *const u8, _len: usize) {}
}

#[allow(unused_imports)]
pub(crate) use imp::{freelike, make_defined, make_undefined, malloclike, resize_in_place};
