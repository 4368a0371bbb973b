//! The kernel calls the checks make, as small safe wrappers.
//!
//! The test bed asks the kernel directly (not through numa_rt) so that it
//! stays an independent witness of what the code under test claims.

use std::io;
use std::ptr;

/// `getcpu(2)`: the CPU and NUMA node the calling thread runs on now.
pub fn getcpu() -> io::Result<(u32, u32)> {
    let mut cpu: libc::c_uint = 0;
    let mut node: libc::c_uint = 0;
    // SAFETY: both out-pointers are valid for writes of one c_uint; the third
    // argument (the unused tcache) may be null.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_getcpu,
            &mut cpu as *mut libc::c_uint,
            &mut node as *mut libc::c_uint,
            ptr::null_mut::<libc::c_void>(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((cpu, node))
}

/// Restricts the calling thread to one CPU and gives the scheduler a chance
/// to move it there.
pub fn pin_to_cpu(cpu: usize) -> io::Result<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("CPU {cpu} is beyond CPU_SETSIZE"),
        ));
    }
    // SAFETY: cpu_set_t is plain old data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` was checked against CPU_SETSIZE above, so the bit lies
    // inside `set`.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is the
    // calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: sched_yield has no preconditions.
    unsafe { libc::sched_yield() };
    Ok(())
}

/// The CPUs the calling thread may run on (`sched_getaffinity`).
pub fn allowed_cpus() -> io::Result<Vec<u32>> {
    // SAFETY: cpu_set_t is plain old data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a writable cpu_set_t of the size passed; pid 0 is the
    // calling thread.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((0..libc::CPU_SETSIZE as usize)
        // SAFETY: every index is below CPU_SETSIZE, inside `set`.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .map(|cpu| cpu as u32)
        .collect())
}

/// The node of the page holding `addr` (`move_pages` with null nodes), or
/// the negative errno the kernel reports for it.
pub fn node_of_address(addr: *const u8) -> io::Result<i32> {
    let page = (addr as usize) & !(page_size() - 1);
    let mut pages = [page as *mut libc::c_void];
    let mut status = [0i32; 1];
    // SAFETY: one page pointer and one status slot; a null `nodes` array
    // only queries; pid 0 is us. The kernel validates the address itself.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_pages,
            0,
            1 as libc::c_ulong,
            pages.as_mut_ptr(),
            ptr::null::<libc::c_int>(),
            status.as_mut_ptr(),
            0,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(status[0])
}

/// Anonymous private memory, unmapped on drop.
pub struct Mapping {
    addr: *mut libc::c_void,
    len: usize,
}

impl Mapping {
    /// Maps `pages` fresh pages (not yet touched, so not yet placed).
    pub fn anonymous(pages: usize) -> io::Result<Mapping> {
        let len = pages * page_size();
        // SAFETY: a fresh private anonymous mapping at an address the kernel
        // chooses aliases nothing.
        let addr = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping { addr, len })
    }

    /// Binds the whole mapping to `node` with `MPOL_BIND`.
    pub fn bind_to_node(&self, node: u32) -> io::Result<()> {
        if node >= 64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("node {node} does not fit the one-word node mask"),
            ));
        }
        let mask: libc::c_ulong = 1 << node;
        // The kernel reads `maxnode - 1` bits (an old off-by-one kept for
        // compatibility), so pass one more than the mask's width.
        let maxnode: libc::c_ulong = 64 + 1;
        // SAFETY: the range is our own mapping; `mask` is valid for reads of
        // the 64 bits the kernel will read.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_mbind,
                self.addr,
                self.len,
                libc::MPOL_BIND,
                &mask as *const libc::c_ulong,
                maxnode,
                0 as libc::c_uint,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Writes one byte to every page, so the kernel allocates and places it.
    pub fn touch(&self) {
        let base = self.addr.cast::<u8>();
        for offset in (0..self.len).step_by(page_size()) {
            // SAFETY: `offset < len`, inside our writable mapping.
            unsafe { ptr::write_volatile(base.add(offset), 1) };
        }
    }

    /// The node each page is on now (`move_pages` with null nodes), or the
    /// negative errno the kernel reports for that page.
    pub fn page_nodes(&self) -> io::Result<Vec<i32>> {
        let count = self.len / page_size();
        let base = self.addr.cast::<u8>();
        let mut pages: Vec<*mut libc::c_void> = (0..count)
            // SAFETY: every offset is inside the mapping.
            .map(|i| unsafe { base.add(i * page_size()) }.cast())
            .collect();
        let mut status = vec![0i32; count];
        // SAFETY: `pages` and `status` both hold `count` elements; a null
        // `nodes` array asks for the current node of each page; pid 0 is us.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_move_pages,
                0,
                count as libc::c_ulong,
                pages.as_mut_ptr(),
                ptr::null::<libc::c_int>(),
                status.as_mut_ptr(),
                0,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(status)
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `addr`/`len` are exactly what mmap returned, unmapped once.
        unsafe { libc::munmap(self.addr, self.len) };
    }
}

/// The system page size.
pub fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 {
        size as usize
    } else {
        4096
    }
}

/// Mounts the ext4 file system on block device `device` at `target`.
pub fn mount_ext4(device: &str, target: &str) -> io::Result<()> {
    let c = |s: &str| {
        std::ffi::CString::new(s)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("NUL in {s:?}")))
    };
    let (device, target, fstype) = (c(device)?, c(target)?, c("ext4")?);
    // SAFETY: three valid NUL-terminated strings that outlive the call; no
    // mount data.
    let rc = unsafe {
        libc::mount(
            device.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            ptr::null(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Major and minor numbers of a `dev_t` (glibc's encoding).
pub fn major_minor(dev: u64) -> (u64, u64) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & 0xffff_f000);
    let minor = (dev & 0xff) | ((dev >> 12) & 0xffff_ff00);
    (major, minor)
}

/// Size of `struct io_uring_params` in the kernel ABI.
const IO_URING_PARAMS_LEN: usize = 120;
/// Offset of `features` in `struct io_uring_params`.
const IO_URING_FEATURES_OFFSET: usize = 20;

/// `io_uring_setup(2)` with `entries` entries; returns the ring's feature
/// bits. The ring is closed again at once.
pub fn io_uring_probe(entries: u32) -> io::Result<u32> {
    let mut params = [0u8; IO_URING_PARAMS_LEN];
    // SAFETY: `params` is a zeroed buffer of the size of io_uring_params,
    // which the kernel reads and writes.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, entries, params.as_mut_ptr()) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just gave us this descriptor; nothing else owns it.
    unsafe { libc::close(fd as libc::c_int) };
    let mut features = [0u8; 4];
    features.copy_from_slice(&params[IO_URING_FEATURES_OFFSET..IO_URING_FEATURES_OFFSET + 4]);
    Ok(u32::from_ne_bytes(features))
}

/// `AUDIT_ARCH_X86_64` from linux/audit.h.
const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
/// Offsets in `struct seccomp_data`.
const SECCOMP_DATA_NR: u32 = 0;
const SECCOMP_DATA_ARCH: u32 = 4;

fn bpf_stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

fn bpf_jump(code: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// Installs a seccomp filter on this process that fails `io_uring_setup`
/// with `EPERM` and allows everything else, as Docker's default profile
/// does. Irreversible: call it only in a child process.
pub fn deny_io_uring_setup() -> io::Result<()> {
    let nr = libc::SYS_io_uring_setup as u32;
    let mut program = [
        bpf_stmt(
            libc::BPF_LD | libc::BPF_W | libc::BPF_ABS,
            SECCOMP_DATA_ARCH,
        ),
        // Another ABI (x32, i386): not ours to judge, allow.
        bpf_jump(
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            AUDIT_ARCH_X86_64,
            0,
            3,
        ),
        bpf_stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, SECCOMP_DATA_NR),
        bpf_jump(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, nr, 0, 1),
        bpf_stmt(
            libc::BPF_RET | libc::BPF_K,
            libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        ),
        bpf_stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
    ];
    let prog = libc::sock_fprog {
        len: program.len() as libc::c_ushort,
        filter: program.as_mut_ptr(),
    };
    // SAFETY: PR_SET_NO_NEW_PRIVS takes plain integers.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `prog` points at `program`, which outlives the call (the
    // kernel copies the filter).
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &prog as *const libc::sock_fprog,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_t_splits_like_glibc() {
        assert_eq!(major_minor(0x0000_0000_0000_0801), (8, 1));
        // nvme0n1 on Linux: 259:0.
        assert_eq!(major_minor(259 << 8), (259, 0));
        // glibc's makedev, to round-trip numbers that need the high bits.
        let makedev = |major: u64, minor: u64| {
            ((major & 0xfff) << 8)
                | ((major & 0xffff_f000) << 32)
                | (minor & 0xff)
                | ((minor & 0xffff_ff00) << 12)
        };
        for (major, minor) in [(0, 0), (4095, 255), (4096, 256), (0xabcde, 0x12345)] {
            assert_eq!(major_minor(makedev(major, minor)), (major, minor));
        }
    }
}
