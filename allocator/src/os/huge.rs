//! What the system offers in huge pages: the transparent huge page mode and
//! the reserved pool of explicit 2 MiB pages.
//!
//! Read once with raw `open`/`read` into stack buffers, because the first
//! read can happen inside `GlobalAlloc::alloc`, where allocating is not
//! allowed.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

/// The kernel's transparent huge page mode
/// (`/sys/kernel/mm/transparent_hugepage/enabled`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ThpMode {
    /// Every suitable anonymous mapping gets huge pages.
    Always,
    /// Only ranges advised with `MADV_HUGEPAGE`.
    Madvise,
    /// Never, or the kernel has no THP support.
    Never,
}

/// Huge pages available to the allocator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HugePages {
    /// Transparent huge page mode.
    pub thp: ThpMode,
    /// Free explicit 2 MiB pages in the reserved pool
    /// (`/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages`) when
    /// first asked.
    pub free_2m: u64,
}

/// The huge pages this system offers, read once and cached.
pub fn huge_pages() -> HugePages {
    // 0 = not read yet, else ThpMode + 1.
    static THP: AtomicU8 = AtomicU8::new(0);
    static FREE_2M: AtomicU64 = AtomicU64::new(0);
    let mut thp = THP.load(Ordering::Acquire);
    if thp == 0 {
        let mode = read_thp_mode("/sys/kernel/mm/transparent_hugepage/enabled\0");
        FREE_2M.store(
            read_number("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages\0").unwrap_or(0),
            Ordering::Relaxed,
        );
        thp = mode as u8 + 1;
        THP.store(thp, Ordering::Release);
    }
    let thp = match thp - 1 {
        0 => ThpMode::Always,
        1 => ThpMode::Madvise,
        _ => ThpMode::Never,
    };
    HugePages {
        thp,
        free_2m: FREE_2M.load(Ordering::Relaxed),
    }
}

/// Reads a small file into `buf` without allocating; `path` ends in NUL.
fn read_small(path: &str, buf: &mut [u8]) -> Option<usize> {
    debug_assert!(path.ends_with('\0'));
    // SAFETY: `path` is NUL-terminated.
    let fd = unsafe { libc::open(path.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    // SAFETY: `buf` is valid for `buf.len()` bytes of writes.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    // SAFETY: `fd` is ours and closed once.
    unsafe { libc::close(fd) };
    (n >= 0).then_some(n as usize)
}

fn read_thp_mode(path: &str) -> ThpMode {
    let mut buf = [0u8; 128];
    match read_small(path, &mut buf) {
        Some(n) => parse_thp_mode(&buf[..n]),
        None => ThpMode::Never,
    }
}

fn read_number(path: &str) -> Option<u64> {
    let mut buf = [0u8; 32];
    let n = read_small(path, &mut buf)?;
    parse_number(&buf[..n])
}

/// The bracketed word of `always [madvise] never`.
pub(crate) fn parse_thp_mode(text: &[u8]) -> ThpMode {
    let open = text.iter().position(|&b| b == b'[');
    let close = text.iter().position(|&b| b == b']');
    match (open, close) {
        (Some(o), Some(c)) if o < c => match &text[o + 1..c] {
            b"always" => ThpMode::Always,
            b"madvise" => ThpMode::Madvise,
            _ => ThpMode::Never,
        },
        _ => ThpMode::Never,
    }
}

pub(crate) fn parse_number(text: &[u8]) -> Option<u64> {
    let digits = text.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in &text[..digits] {
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thp_modes() {
        assert_eq!(
            parse_thp_mode(b"always [madvise] never\n"),
            ThpMode::Madvise
        );
        assert_eq!(parse_thp_mode(b"[always] madvise never\n"), ThpMode::Always);
        assert_eq!(parse_thp_mode(b"always madvise [never]\n"), ThpMode::Never);
        assert_eq!(parse_thp_mode(b""), ThpMode::Never);
        assert_eq!(parse_thp_mode(b"]x["), ThpMode::Never);
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number(b"12\n"), Some(12));
        assert_eq!(parse_number(b"0"), Some(0));
        assert_eq!(parse_number(b"x"), None);
        assert_eq!(parse_number(b"99999999999999999999999"), None);
    }

    #[test]
    fn live_system_is_read() {
        let h = huge_pages();
        assert_eq!(h, huge_pages(), "cached");
    }
}
