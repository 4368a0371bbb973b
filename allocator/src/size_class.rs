//! Size classes: 8 B, then multiples of 16 up to 128 B, then four classes
//! per doubling up to [`MEDIUM_MAX`] (128 KiB); waste stays under 25 %.
//!
//! Classes up to [`SMALL_MAX`] live in 64 KiB pages, the rest in 512 KiB
//! pages. Anything larger (or aligned beyond what a page can give) is a
//! large block, mapped on its own.

/// Number of size classes.
pub(crate) const CLASSES: usize = 49;
/// Largest size served from 64 KiB pages.
pub(crate) const SMALL_MAX: usize = 8 * 1024;
/// Largest size served from segments at all.
pub(crate) const MEDIUM_MAX: usize = 128 * 1024;
/// Alignment every class block has without padding: block offsets inside a
/// page are multiples of the block size, and pages start 4 KiB-aligned.
pub(crate) const NATURAL_ALIGN: usize = 16;
/// Largest alignment the padded path serves inside segments.
const PAGE_ALIGN_MAX: usize = 4096;

/// Sizes up to this are classed by a table lookup.
const TABLE_MAX: usize = 1024;

/// `CLASS_TABLE[(size + 7) / 8]` is the class of `size` for sizes up to
/// [`TABLE_MAX`].
static CLASS_TABLE: [u8; TABLE_MAX / 8 + 1] = {
    let mut t = [0u8; TABLE_MAX / 8 + 1];
    let mut i = 1;
    while i <= TABLE_MAX / 8 {
        t[i] = class_of_computed(i * 8) as u8;
        i += 1;
    }
    t
};

/// The class of a `size` (1 ..= MEDIUM_MAX) with no alignment demand.
#[inline(always)]
pub(crate) fn class_of(size: usize) -> usize {
    debug_assert!(size <= MEDIUM_MAX);
    if size <= TABLE_MAX {
        // Rounding up to 8 never crosses a class: every class size is a
        // multiple of 8.
        return CLASS_TABLE[(size + 7) >> 3] as usize;
    }
    class_of_computed(size)
}

const fn class_of_computed(size: usize) -> usize {
    if size <= 128 {
        if size <= 8 {
            0
        } else {
            (size + 15) >> 4
        }
    } else {
        let s = size - 1;
        let k = (usize::BITS - 1 - s.leading_zeros()) as usize;
        9 + (k - 7) * 4 + ((s >> (k - 2)) & 3)
    }
}

/// Block size of class `c`.
#[inline(always)]
pub(crate) const fn class_size(c: usize) -> usize {
    if c == 0 {
        8
    } else if c <= 8 {
        c * 16
    } else {
        let j = c - 9;
        let k = 7 + j / 4;
        (1 << k) + (j % 4 + 1) * (1 << (k - 2))
    }
}

/// How a `(size, align)` request is served. Computed the same way on
/// allocation and on free, so the free path knows without a header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fit {
    /// A block of class `c` already has the alignment.
    Class(usize),
    /// A block of class `c` holds the size plus padding; the returned
    /// pointer is aligned up inside it.
    Padded(usize),
    /// Mapped on its own.
    Large,
}

/// Chooses how `size` bytes aligned to `align` are served.
#[inline(always)]
pub(crate) fn fit(size: usize, align: usize) -> Fit {
    if align <= NATURAL_ALIGN {
        // Size 8 with align 16 must not land in the 8-byte class.
        let size = size.max(align);
        if size <= MEDIUM_MAX {
            return Fit::Class(class_of(size));
        }
        return Fit::Large;
    }
    fit_aligned(size, align)
}

#[cold]
fn fit_aligned(size: usize, align: usize) -> Fit {
    if align > PAGE_ALIGN_MAX {
        return Fit::Large;
    }
    let need = size.max(align);
    if need <= MEDIUM_MAX {
        let c = class_of(need);
        if class_size(c) % align == 0 {
            return Fit::Class(c);
        }
    }
    match size.checked_add(align - 1) {
        Some(padded) if padded <= MEDIUM_MAX => Fit::Padded(class_of(padded)),
        _ => Fit::Large,
    }
}

/// Whether class `c` lives in small (64 KiB) pages.
#[inline(always)]
pub(crate) const fn is_small_class(c: usize) -> bool {
    class_size(c) <= SMALL_MAX
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_increasing_and_cover_every_size() {
        for c in 1..CLASSES {
            assert!(class_size(c) > class_size(c - 1));
        }
        assert_eq!(class_size(CLASSES - 1), MEDIUM_MAX);
        for size in 1..=MEDIUM_MAX {
            let c = class_of(size);
            assert!(class_size(c) >= size, "size {size} class {c}");
            if c > 0 {
                assert!(
                    class_size(c - 1) < size,
                    "size {size} not in smallest class"
                );
            }
        }
    }

    #[test]
    fn waste_is_bounded() {
        for size in 129..=MEDIUM_MAX {
            let c = class_size(class_of(size));
            assert!((c - size) * 4 <= size, "size {size} class {c}");
        }
    }

    #[test]
    fn classes_from_16_are_multiples_of_16() {
        for c in 1..CLASSES {
            assert_eq!(class_size(c) % 16, 0);
        }
    }

    #[test]
    fn fit_honours_alignment() {
        assert_eq!(fit(8, 8), Fit::Class(0));
        assert_eq!(fit(8, 16), Fit::Class(1));
        assert_eq!(fit(0, 1), Fit::Class(0));
        assert_eq!(fit(64, 64), Fit::Class(class_of(64)));
        assert_eq!(fit(100, 64), Fit::Padded(class_of(163)));
        assert_eq!(fit(10, 8192), Fit::Large);
        assert_eq!(fit(MEDIUM_MAX + 1, 8), Fit::Large);
        assert_eq!(fit(MEDIUM_MAX, 4096), Fit::Class(CLASSES - 1));
        for align in [32, 64, 128, 256, 512, 1024, 2048, 4096] {
            for size in [1, 7, 33, 100, 1000, 5000, 70000, MEDIUM_MAX] {
                match fit(size, align) {
                    Fit::Class(c) => {
                        assert!(class_size(c) >= size);
                        assert_eq!(class_size(c) % align, 0);
                    }
                    Fit::Padded(c) => assert!(class_size(c) >= size + align - 1),
                    Fit::Large => assert!(size + align - 1 > MEDIUM_MAX),
                }
            }
        }
    }
}
