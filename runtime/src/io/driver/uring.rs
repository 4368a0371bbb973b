//! The io_uring backend: one ring per driver, set up with the cheapest
//! modes the running kernel accepts.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use io_uring::{opcode, squeue, types, IoUring};

use super::Completion;

/// `IORING_ENTER_GETEVENTS` from the kernel's uapi header.
const IORING_ENTER_GETEVENTS: u32 = 1;

/// `user_data` of the read on the driver's eventfd.
const WAKE_TOKEN: u64 = u64::MAX;
/// `user_data` of async-cancel requests (their own completion is ignored).
const CANCEL_TOKEN: u64 = u64::MAX - 1;

/// How often a push retries a submission the kernel refused for want of
/// resources before the operation fails with that error.
const PUSH_RETRIES: u32 = 3;
/// The longest a wait sleeps after the kernel refused its submissions, so
/// a worker under memory pressure neither spins nor stalls.
const REFUSED_BACKOFF: Duration = Duration::from_millis(1);

/// Whether `io_uring_enter` refused for now rather than for good: no memory
/// for requests (`ENOMEM`, `EAGAIN`) or completions to reap first
/// (`EBUSY`). The kernel consumed none of the queued entries: they stay in
/// the submission queue for the next enter.
fn refused_for_now(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOMEM | libc::EAGAIN | libc::EBUSY)
    )
}

/// The setup modes tried, cheapest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `SINGLE_ISSUER | DEFER_TASKRUN`: completions run only when we wait.
    DeferTaskrun,
    /// `SINGLE_ISSUER | COOP_TASKRUN`.
    SingleIssuerCoop,
    /// `COOP_TASKRUN`.
    Coop,
    /// No flags.
    Plain,
}

pub(crate) struct Ring {
    ring: IoUring,
    /// Buffers for multishot receives, registered at the first one; after
    /// `ring` so the ring is torn down first.
    bufs: Option<BufRing>,
    mode: Mode,
    wake_fd: RawFd,
    /// Where the eventfd read lands; boxed so its address is stable.
    wake_buf: Box<u64>,
    wake_armed: bool,
    /// Our operations submitted and not yet completed.
    in_flight: usize,
    /// Completions reaped while pushing (to make room), handed out at the
    /// next wait.
    reaped: Vec<(u64, Completion)>,
}

/// Whether this process may create a ring at all.
pub(crate) fn probe() -> io::Result<()> {
    IoUring::new(2).map(drop)
}

fn build(entries: u32, mode: Mode) -> io::Result<IoUring> {
    let mut b = IoUring::builder();
    match mode {
        Mode::DeferTaskrun => {
            b.setup_single_issuer().setup_defer_taskrun();
        }
        Mode::SingleIssuerCoop => {
            b.setup_single_issuer().setup_coop_taskrun();
        }
        Mode::Coop => {
            b.setup_coop_taskrun();
        }
        Mode::Plain => {}
    }
    b.build(entries)
}

impl Ring {
    /// Sets up a ring, dropping setup flags one by one while the kernel
    /// refuses them (`EINVAL`). `single_issuer`: only the calling thread
    /// will submit.
    pub(crate) fn new(entries: u32, single_issuer: bool, wake_fd: RawFd) -> io::Result<Ring> {
        let modes: &[Mode] = if single_issuer {
            &[
                Mode::DeferTaskrun,
                Mode::SingleIssuerCoop,
                Mode::Coop,
                Mode::Plain,
            ]
        } else {
            &[Mode::Coop, Mode::Plain]
        };
        let mut last = io::Error::from_raw_os_error(libc::EINVAL);
        for &mode in modes {
            match build(entries.max(8), mode) {
                Ok(ring) => {
                    return Ok(Ring {
                        ring,
                        bufs: None,
                        mode,
                        wake_fd,
                        wake_buf: Box::new(0),
                        wake_armed: false,
                        in_flight: 0,
                        reaped: Vec::new(),
                    })
                }
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// The setup mode the kernel accepted.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn mode(&self) -> Mode {
        self.mode
    }

    /// Queues `entry`; it reaches the kernel at the next wait.
    pub(crate) fn push(&mut self, entry: squeue::Entry) -> io::Result<()> {
        self.push_raw(&entry)?;
        self.in_flight += 1;
        Ok(())
    }

    /// Queues `entry`, submitting what is queued when the queue is full.
    /// When the kernel keeps refusing that submission (see
    /// [`refused_for_now`]) the entry is not queued and the error returned;
    /// the entries queued before it stay queued.
    fn push_raw(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        let mut refused = 0;
        loop {
            // SAFETY: every entry we queue points only at memory its
            // operation keeps alive until the completion arrives: op data
            // lives in the op future or, once that is dropped, in the
            // driver's slab (`Slot::Abandoned`); the eventfd buffer lives in
            // `self` and is leaked if the ring dies with the read in flight.
            let pushed = unsafe { self.ring.submission().push(entry) };
            if pushed.is_ok() {
                return Ok(());
            }
            // Full: hand what is queued to the kernel and retry.
            match self.ring.submit() {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) if refused_for_now(&e) && refused < PUSH_RETRIES => {
                    refused += 1;
                    // Free completion queue space (what EBUSY asks for),
                    // keeping the completions for the next wait.
                    let mut reaped = std::mem::take(&mut self.reaped);
                    self.reap_into(&mut reaped);
                    self.reaped = reaped;
                    std::thread::yield_now();
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Asks the kernel to cancel the operation with `user_data`.
    pub(crate) fn cancel(&mut self, user_data: u64) {
        let entry = opcode::AsyncCancel::new(user_data)
            .build()
            .user_data(CANCEL_TOKEN);
        // A failure here (the ring is unusable) leaves the op to complete
        // on its own; its data stays alive until then either way.
        let _ = self.push_raw(&entry);
    }

    /// Queues a multishot receive on `fd` picking buffers from the
    /// driver's buffer ring (registered here the first time), so data is
    /// received as it arrives, each piece in a completion of its own with
    /// the buffer's id (see [`Ring::take_buffer`]).
    pub(crate) fn push_multishot_recv(&mut self, fd: RawFd, user_data: u64) -> io::Result<()> {
        if self.bufs.is_none() {
            self.bufs = Some(BufRing::register(&self.ring)?);
        }
        let entry = opcode::RecvMulti::new(types::Fd(fd), BUF_GROUP)
            .build()
            .user_data(user_data);
        self.push(entry)
    }

    /// Hands the `len` bytes a receive left in the buffer its completion
    /// `flags` name to `sink`, then gives the buffer back to the kernel.
    /// Returns whether there was such a buffer.
    pub(crate) fn take_buffer(&mut self, flags: u32, len: usize, sink: impl FnOnce(&[u8])) -> bool {
        let (Some(bufs), Some(bid)) = (self.bufs.as_mut(), io_uring::cqueue::buffer_select(flags))
        else {
            return false;
        };
        bufs.take(bid, len, sink);
        true
    }

    fn arm_wake(&mut self) -> io::Result<()> {
        if self.wake_armed {
            return Ok(());
        }
        let buf: *mut u64 = &mut *self.wake_buf;
        let entry = opcode::Read::new(types::Fd(self.wake_fd), buf.cast(), 8)
            .build()
            .user_data(WAKE_TOKEN);
        self.push_raw(&entry)?;
        self.wake_armed = true;
        Ok(())
    }

    /// Submits what is queued, waits up to `timeout` (`None`: until
    /// something completes) and collects our completions into `out`.
    ///
    /// A submission the kernel refuses for now (see [`refused_for_now`])
    /// is not an error: the entries stay queued for the next wait, which
    /// comes after a short pause when nothing completed.
    pub(crate) fn wait(
        &mut self,
        mut timeout: Option<Duration>,
        out: &mut Vec<(u64, Completion)>,
    ) -> io::Result<()> {
        if !self.reaped.is_empty() {
            // Completions are waiting already: only look.
            out.append(&mut self.reaped);
            timeout = Some(Duration::ZERO);
        }
        if timeout != Some(Duration::ZERO) {
            if let Err(e) = self.arm_wake() {
                if !refused_for_now(&e) {
                    return Err(e);
                }
                // Without the eventfd read an unpark cannot end the wait:
                // keep it short.
                timeout = Some(timeout.map_or(REFUSED_BACKOFF, |t| t.min(REFUSED_BACKOFF)));
            }
        }
        let result = match timeout {
            Some(t) if t.is_zero() => {
                let queued = self.ring.submission().len();
                if self.mode == Mode::DeferTaskrun && self.in_flight > 0 {
                    // Deferred completions are only posted inside an enter
                    // with GETEVENTS.
                    // SAFETY: a plain io_uring_enter with no argument.
                    unsafe {
                        self.ring.submitter().enter::<libc::sigset_t>(
                            queued as u32,
                            0,
                            IORING_ENTER_GETEVENTS,
                            None,
                        )
                    }
                } else if queued > 0 {
                    self.ring.submit()
                } else {
                    Ok(0)
                }
            }
            None => self.ring.submit_and_wait(1),
            Some(t) => {
                let ts = types::Timespec::new()
                    .sec(t.as_secs())
                    .nsec(t.subsec_nanos());
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(1, &args)
            }
        };
        let before = out.len();
        self.reap_into(out);
        match result {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME | libc::EINTR)) => Ok(()),
            Err(e) if refused_for_now(&e) => {
                let pause = timeout.map_or(REFUSED_BACKOFF, |t| t.min(REFUSED_BACKOFF));
                if out.len() == before && !pause.is_zero() {
                    std::thread::sleep(pause);
                }
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn reap_into(&mut self, out: &mut Vec<(u64, Completion)>) {
        for cqe in self.ring.completion() {
            match cqe.user_data() {
                WAKE_TOKEN => self.wake_armed = false,
                CANCEL_TOKEN => {}
                key => {
                    // A multishot request (flag MORE) stays in flight.
                    if !io_uring::cqueue::more(cqe.flags()) {
                        self.in_flight = self.in_flight.saturating_sub(1);
                    }
                    out.push((
                        key,
                        Completion {
                            result: cqe.result(),
                            flags: cqe.flags(),
                        },
                    ));
                }
            }
        }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        if self.in_flight > 0 {
            // A receive may still pick a buffer while the ring is torn
            // down: never free them under the kernel.
            if let Some(bufs) = self.bufs.take() {
                std::mem::forget(bufs);
            }
        }
        if self.wake_armed {
            // The read may complete while the ring is torn down: keep its
            // 8-byte target alive forever rather than risk a write into
            // freed memory.
            let buf = std::mem::replace(&mut self.wake_buf, Box::new(0));
            Box::leak(buf);
        }
    }
}

/// The buffer group of the driver's buffer ring.
const BUF_GROUP: u16 = 0;
/// Buffers in the ring (a power of two).
const BUF_COUNT: u16 = 256;
/// Bytes per buffer.
const BUF_SIZE: usize = 4096;
/// Bytes of all buffers.
const MEMORY: usize = BUF_COUNT as usize * BUF_SIZE;

/// A provided-buffer ring (`IORING_REGISTER_PBUF_RING`): `BUF_COUNT`
/// buffers the kernel picks from for multishot receives; each buffer goes
/// back to the ring as soon as its data was copied out.
struct BufRing {
    /// The ring of `io_uring_buf` entries shared with the kernel
    /// (page-aligned, `BUF_COUNT` entries).
    entries: std::ptr::NonNull<types::BufRingEntry>,
    /// The buffers, `BUF_SIZE` bytes each, back to back (a leaked boxed
    /// slice: the kernel writes into it, so no Rust reference spans it).
    memory: std::ptr::NonNull<u8>,
    /// Our copy of the ring's tail (entries published so far).
    tail: u16,
}

// SAFETY: the entries and buffers are owned by this value alone; the
// kernel's access to them is ordered by the tail's release store.
unsafe impl Send for BufRing {}

impl BufRing {
    fn layout() -> std::alloc::Layout {
        let size = usize::from(BUF_COUNT) * std::mem::size_of::<types::BufRingEntry>();
        // Both are non-zero and the alignment a power of two.
        std::alloc::Layout::from_size_align(size, 4096).unwrap_or_else(|_| unreachable!())
    }

    fn register(ring: &IoUring) -> io::Result<BufRing> {
        // SAFETY: a non-zero-sized layout.
        let raw = unsafe { std::alloc::alloc_zeroed(Self::layout()) };
        let Some(entries) = std::ptr::NonNull::new(raw.cast::<types::BufRingEntry>()) else {
            return Err(io::ErrorKind::OutOfMemory.into());
        };
        let memory = Box::into_raw(vec![0u8; MEMORY].into_boxed_slice());
        let mut bufs = BufRing {
            entries,
            // SAFETY: `Box::into_raw` never returns null.
            memory: unsafe { std::ptr::NonNull::new_unchecked(memory.cast::<u8>()) },
            tail: 0,
        };
        for bid in 0..BUF_COUNT {
            bufs.put(bid);
        }
        // SAFETY: the entries stay allocated until the ring is gone: `Ring`
        // drops `ring` before `bufs` and leaks `bufs` while operations may
        // still be in flight.
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                entries.as_ptr() as u64,
                BUF_COUNT,
                BUF_GROUP,
                0,
            )?;
        }
        Ok(bufs)
    }

    /// Publishes buffer `bid` to the kernel.
    fn put(&mut self, bid: u16) {
        let index = usize::from(self.tail & (BUF_COUNT - 1));
        // SAFETY: `bid < BUF_COUNT`, so the buffer lies inside `memory`.
        let addr = unsafe { self.memory.as_ptr().add(usize::from(bid) * BUF_SIZE) } as u64;
        // SAFETY: `index < BUF_COUNT`, inside the entries' allocation; the
        // kernel does not read entries past the published tail.
        let entry = unsafe { &mut *self.entries.as_ptr().add(index) };
        entry.set_addr(addr);
        entry.set_len(BUF_SIZE as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
        // SAFETY: the tail field of the first entry is a naturally aligned
        // u16 the kernel reads atomically; the release store orders the
        // entry written above before it.
        let tail = unsafe {
            &*(types::BufRingEntry::tail(self.entries.as_ptr())
                as *const std::sync::atomic::AtomicU16)
        };
        tail.store(self.tail, std::sync::atomic::Ordering::Release);
    }

    fn take(&mut self, bid: u16, len: usize, sink: impl FnOnce(&[u8])) {
        if bid >= BUF_COUNT {
            return;
        }
        // SAFETY: the kernel handed buffer `bid` to us with this completion
        // and does not touch it again until `put` publishes it; it lies
        // inside `memory`.
        let data = unsafe {
            std::slice::from_raw_parts(
                self.memory.as_ptr().add(usize::from(bid) * BUF_SIZE),
                len.min(BUF_SIZE),
            )
        };
        sink(data);
        self.put(bid);
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `register` with this layout.
        unsafe { std::alloc::dealloc(self.entries.as_ptr().cast(), Self::layout()) };
        let memory = std::ptr::slice_from_raw_parts_mut(self.memory.as_ptr(), MEMORY);
        // SAFETY: the boxed slice leaked in `register`, freed once.
        drop(unsafe { Box::from_raw(memory) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_rings_never_claim_a_single_issuer() {
        if probe().is_err() {
            eprintln!("io_uring unavailable here: skipped");
            return;
        }
        let ring = Ring::new(8, false, -1).unwrap();
        assert!(matches!(ring.mode(), Mode::Coop | Mode::Plain));
    }

    #[test]
    fn nop_round_trip() {
        if probe().is_err() {
            eprintln!("io_uring unavailable here: skipped");
            return;
        }
        let mut ring = Ring::new(8, true, -1).unwrap();
        ring.push(opcode::Nop::new().build().user_data(7)).unwrap();
        let mut out = Vec::new();
        // Without the eventfd (-1), waiting arms a read that fails at once.
        while !out.iter().any(|(k, _)| *k == 7) {
            ring.wait(Some(Duration::from_millis(100)), &mut out)
                .unwrap();
        }
        assert_eq!(ring.in_flight, 0);
    }
}
