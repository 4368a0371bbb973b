//! Pinning the calling thread to a set of CPUs.

use std::io;

use crate::topology::CpuSet;

/// Restricts the calling thread to `cpus` with `sched_setaffinity`.
///
/// Errs if the set is empty or the kernel refuses it (for example when none
/// of the CPUs is allowed by the process's cpuset).
pub(crate) fn pin_current_thread(cpus: &CpuSet) -> io::Result<()> {
    if cpus.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot pin a thread to an empty CPU set",
        ));
    }
    let mask = to_kernel_mask(cpus);
    let bytes = std::mem::size_of_val(mask.as_slice());
    // SAFETY: `mask` is a live, initialised array of `bytes` bytes, the
    // layout the kernel reads (an array of unsigned longs, bit i of word
    // i / BITS for CPU i); pid 0 names the calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, bytes, mask.as_ptr().cast()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The set as the kernel's CPU mask: unsigned longs, least significant
/// first.
fn to_kernel_mask(cpus: &CpuSet) -> Vec<libc::c_ulong> {
    let bits = libc::c_ulong::BITS;
    let words = cpus.last().map_or(1, |last| (last / bits + 1) as usize);
    let mut mask = vec![0 as libc::c_ulong; words];
    for cpu in cpus {
        mask[(cpu / bits) as usize] |= 1 << (cpu % bits);
    }
    mask
}

/// The CPUs the calling thread may run on, from `sched_getaffinity`.
#[cfg(test)]
pub(super) fn current_affinity() -> CpuSet {
    // SAFETY: an all-zero cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is the
    // calling thread.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    assert_eq!(rc, 0, "sched_getaffinity: {}", io::Error::last_os_error());
    (0..libc::CPU_SETSIZE as u32)
        // SAFETY: `cpu` is below CPU_SETSIZE, in bounds of `set`.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu as usize, &set) })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_layout() {
        let cpus: CpuSet = "0,3,64-65".parse().unwrap();
        let mask = to_kernel_mask(&cpus);
        if libc::c_ulong::BITS == 64 {
            assert_eq!(mask, [0b1001, 0b11]);
        }
        assert_eq!(to_kernel_mask(&CpuSet::new()), [0]);
    }

    #[test]
    fn pins_to_one_allowed_cpu() {
        let allowed = current_affinity();
        let last = allowed.last().unwrap();
        let one: CpuSet = [last].into_iter().collect();
        std::thread::spawn(move || {
            pin_current_thread(&one).unwrap();
            assert_eq!(current_affinity(), one);
            // SAFETY: sched_getcpu has no preconditions.
            assert_eq!(unsafe { libc::sched_getcpu() }, last as i32);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn refuses_empty_and_impossible_sets() {
        assert!(pin_current_thread(&CpuSet::new()).is_err());
        let far: CpuSet = [100_000].into_iter().collect();
        std::thread::spawn(move || {
            assert!(pin_current_thread(&far).is_err());
        })
        .join()
        .unwrap();
    }
}
