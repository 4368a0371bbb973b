//! Thread affinity for the probe: read the allowed CPUs, pin a thread.

use std::io;

use super::super::CpuSet;

/// The CPUs the calling thread may run on (`sched_getaffinity`).
pub(crate) fn allowed_cpus() -> io::Result<CpuSet> {
    // SAFETY: cpu_set_t is a plain bit array; all zeroes is a valid value.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a live cpu_set_t and the size passed is its own.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: CPU_ISSET reads `set` for indices below CPU_SETSIZE (`max`).
    Ok((0..max)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .map(|c| c as u32)
        .collect())
}

/// Pins the calling thread to `cpu` alone (`sched_setaffinity`).
pub(crate) fn pin_current_thread(cpu: u32) -> io::Result<()> {
    let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
    let index = cpu as usize;
    if index >= max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("CPU {cpu} is beyond the {max} CPUs a cpu_set_t holds"),
        ));
    }
    // SAFETY: cpu_set_t is a plain bit array; all zeroes is a valid value.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `index` is below CPU_SETSIZE, checked above.
    unsafe { libc::CPU_SET(index, &mut set) };
    // SAFETY: `set` is a live cpu_set_t and the size passed is its own;
    // pid 0 is the calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_to_an_allowed_cpu_and_refuse_a_huge_one() {
        let allowed = allowed_cpus().unwrap();
        let first = allowed.first().unwrap();
        std::thread::spawn(move || {
            pin_current_thread(first).unwrap();
            assert_eq!(allowed_cpus().unwrap(), CpuSet::from_iter([first]));
        })
        .join()
        .unwrap();
        assert!(pin_current_thread(1 << 20).is_err());
    }
}
