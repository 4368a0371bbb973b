//! seccomp filters for fault injection in child test processes: make chosen
//! system calls fail with an errno (optionally only when their arguments
//! match), or hand them to a supervisor thread that fails a counted number
//! of them and lets the rest through. The runtime's code runs unmodified;
//! only the kernel's answers change.
//!
//! A filter applies to the thread that installs it and to every thread it
//! creates afterwards, and can never be removed: install it first thing in
//! a child process (the test binary re-run), before building a runtime.

#![allow(dead_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

// Classic BPF opcodes (linux/filter.h, linux/bpf_common.h).
const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JMP_JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JMP_JSET_K: u16 = 0x45; // BPF_JMP | BPF_JSET | BPF_K
const RET_K: u16 = 0x06; // BPF_RET | BPF_K

const RET_ERRNO: u32 = 0x0005_0000;
const RET_USER_NOTIF: u32 = 0x7fc0_0000;
const RET_ALLOW: u32 = 0x7fff_0000;

/// Offset of `seccomp_data.args[i]`'s low 32 bits (little-endian).
fn arg_offset(i: u32) -> u32 {
    assert!(i < 6);
    16 + 8 * i
}

/// A test on the low 32 bits of one argument.
#[derive(Clone, Copy, Debug)]
pub enum Cond {
    /// `args[i] == value`.
    Eq(u32, u32),
    /// `args[i] & mask != 0`.
    AnyBits(u32, u32),
    /// `args[i] != 0`.
    NonZero(u32),
}

/// What a matching call gets.
#[derive(Clone, Copy, Debug)]
pub enum Action {
    /// Fails at once with this errno.
    Errno(i32),
    /// Waits for the supervisor (see [`Supervisor`]).
    Notify,
}

/// One rule: system call `nr` whose arguments pass every condition.
#[derive(Clone, Debug)]
pub struct Rule {
    pub nr: libc::c_long,
    pub conds: Vec<Cond>,
    pub action: Action,
}

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// Compiles `rules` (first match wins; no match: allowed). The
/// architecture is not checked: the children only make native calls.
fn compile(rules: &[Rule]) -> Vec<libc::sock_filter> {
    let mut prog = Vec::new();
    for rule in rules {
        // ld nr; jeq; (ld arg; jump) per condition; ret.
        let len = 2 + 2 * rule.conds.len() + 1;
        let start = prog.len();
        // Jump offset from the instruction at `at` to the next rule.
        let skip = |at: usize| u8::try_from(start + len - (at + 1)).unwrap();
        prog.push(stmt(LD_W_ABS, 0));
        prog.push(jump(JMP_JEQ_K, rule.nr as u32, 0, skip(prog.len())));
        for cond in &rule.conds {
            match *cond {
                Cond::Eq(i, value) => {
                    prog.push(stmt(LD_W_ABS, arg_offset(i)));
                    prog.push(jump(JMP_JEQ_K, value, 0, skip(prog.len())));
                }
                Cond::AnyBits(i, mask) => {
                    prog.push(stmt(LD_W_ABS, arg_offset(i)));
                    prog.push(jump(JMP_JSET_K, mask, 0, skip(prog.len())));
                }
                Cond::NonZero(i) => {
                    prog.push(stmt(LD_W_ABS, arg_offset(i)));
                    prog.push(jump(JMP_JEQ_K, 0, skip(prog.len()), 0));
                }
            }
        }
        prog.push(stmt(
            RET_K,
            match rule.action {
                Action::Errno(e) => RET_ERRNO | (e as u32 & 0xffff),
                Action::Notify => RET_USER_NOTIF,
            },
        ));
        assert_eq!(prog.len(), start + len);
    }
    prog.push(stmt(RET_K, RET_ALLOW));
    prog
}

/// Installs `rules` on the calling thread (and its future threads).
/// Returns the notification descriptor when a rule notifies.
pub fn install(rules: &[Rule]) -> Option<OwnedFd> {
    try_install(rules).unwrap_or_else(|e| panic!("seccomp: {e}"))
}

/// [`install`], or the kernel's refusal (user notification needs Linux
/// 5.5, and a container's own filter may forbid it).
pub fn try_install(rules: &[Rule]) -> io::Result<Option<OwnedFd>> {
    let filter = compile(rules);
    let prog = libc::sock_fprog {
        len: u16::try_from(filter.len()).unwrap(),
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    let notify = rules.iter().any(|r| matches!(r.action, Action::Notify));
    let flags = if notify {
        libc::SECCOMP_FILTER_FLAG_NEW_LISTENER
    } else {
        0
    };
    // SAFETY (test): prctl and seccomp with a live filter program that
    // outlives the calls; results checked.
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        let rc = libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &prog as *const libc::sock_fprog,
        );
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(notify.then(|| OwnedFd::from_raw_fd(rc as i32)))
    }
}

/// Answers notified calls from a thread of its own: fails the next
/// `fail_next(errno, n)` calls with `errno`, lets every other one run.
#[derive(Clone)]
pub struct Supervisor {
    budget: Arc<AtomicUsize>,
    errno: Arc<AtomicI32>,
    failed: Arc<AtomicUsize>,
    passed: Arc<AtomicUsize>,
    /// Only calls whose `args[1]` is at least this are failed.
    min_arg1: Arc<AtomicU64>,
    /// The largest `args[1]` seen.
    max_arg1: Arc<AtomicU64>,
    /// Of the matching calls, every this many-th is failed.
    every: Arc<AtomicUsize>,
    /// Matching calls seen since the last `fail_*`.
    matching: Arc<AtomicUsize>,
    /// Matching calls still to let through before failing any.
    skip: Arc<AtomicUsize>,
}

impl Supervisor {
    /// Starts answering on `listener` (from [`install`]).
    pub fn start(listener: OwnedFd) -> Supervisor {
        let sup = Supervisor {
            budget: Arc::new(AtomicUsize::new(0)),
            errno: Arc::new(AtomicI32::new(0)),
            failed: Arc::new(AtomicUsize::new(0)),
            passed: Arc::new(AtomicUsize::new(0)),
            min_arg1: Arc::new(AtomicU64::new(0)),
            max_arg1: Arc::new(AtomicU64::new(0)),
            every: Arc::new(AtomicUsize::new(1)),
            matching: Arc::new(AtomicUsize::new(0)),
            skip: Arc::new(AtomicUsize::new(0)),
        };
        let me = sup.clone();
        std::thread::spawn(move || me.serve(listener));
        sup
    }

    /// Fails the next `n` notified calls with `errno`.
    pub fn fail_next(&self, errno: i32, n: usize) {
        self.fail_next_from(errno, n, 0);
    }

    /// Fails the next `n` notified calls whose second argument is at least
    /// `min_arg1` with `errno`.
    pub fn fail_next_from(&self, errno: i32, n: usize, min_arg1: u64) {
        self.fail_every(errno, n, min_arg1, 1);
    }

    /// Of the notified calls whose second argument is at least `min_arg1`,
    /// fails every `every`-th (the first included) with `errno`, `n` in
    /// all, and lets the others through.
    pub fn fail_every(&self, errno: i32, n: usize, min_arg1: u64, every: usize) {
        self.fail_after(errno, 0, n, min_arg1, every);
    }

    /// Like [`fail_every`](Self::fail_every), after letting the first
    /// `skip` matching calls through.
    pub fn fail_after(&self, errno: i32, skip: usize, n: usize, min_arg1: u64, every: usize) {
        self.budget.store(0, SeqCst);
        self.skip.store(skip, SeqCst);
        self.errno.store(errno, SeqCst);
        self.min_arg1.store(min_arg1, SeqCst);
        self.every.store(every.max(1), SeqCst);
        self.matching.store(0, SeqCst);
        self.budget.store(n, SeqCst);
    }

    /// The largest second argument of a notified call so far.
    pub fn max_arg1(&self) -> u64 {
        self.max_arg1.load(SeqCst)
    }

    /// Failures still to hand out.
    pub fn budget(&self) -> usize {
        self.budget.load(SeqCst)
    }

    /// Calls failed so far.
    pub fn failed(&self) -> usize {
        self.failed.load(SeqCst)
    }

    /// Calls let through so far.
    pub fn passed(&self) -> usize {
        self.passed.load(SeqCst)
    }

    fn serve(&self, listener: OwnedFd) {
        loop {
            // SAFETY (test): plain-data kernel structs; the kernel wants
            // the request zeroed.
            let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
            // SAFETY (test): `req` is a live, writable seccomp_notif.
            let rc = unsafe {
                libc::ioctl(
                    listener.as_raw_fd(),
                    libc::SECCOMP_IOCTL_NOTIF_RECV,
                    &mut req as *mut libc::seccomp_notif,
                )
            };
            if rc != 0 {
                match io::Error::last_os_error().raw_os_error() {
                    // Interrupted, or the caller went away meanwhile.
                    Some(libc::EINTR | libc::ENOENT) => continue,
                    _ => return,
                }
            }
            // SAFETY (test): as above.
            let mut resp: libc::seccomp_notif_resp = unsafe { std::mem::zeroed() };
            resp.id = req.id;
            let arg1 = req.data.args[1];
            self.max_arg1.fetch_max(arg1, SeqCst);
            let fail = arg1 >= self.min_arg1.load(SeqCst)
                && self
                    .skip
                    .fetch_update(SeqCst, SeqCst, |s| s.checked_sub(1))
                    .is_err()
                && self.matching.fetch_add(1, SeqCst) % self.every.load(SeqCst) == 0
                && self
                    .budget
                    .fetch_update(SeqCst, SeqCst, |b| b.checked_sub(1))
                    .is_ok();
            if fail {
                resp.error = -self.errno.load(SeqCst);
                self.failed.fetch_add(1, SeqCst);
            } else {
                resp.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32;
                self.passed.fetch_add(1, SeqCst);
            }
            // SAFETY (test): `resp` is a live seccomp_notif_resp. ENOENT
            // (the caller was interrupted) needs no answer.
            unsafe {
                libc::ioctl(
                    listener.as_raw_fd(),
                    libc::SECCOMP_IOCTL_NOTIF_SEND,
                    &mut resp as *mut libc::seccomp_notif_resp,
                );
            }
        }
    }
}

/// Re-runs this test binary on `test` alone with `case` in `var`; returns
/// its output, asserting that it succeeded.
pub fn run_child(var: &str, test: &str, case: &str, env: &[(&str, &str)]) -> String {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = std::process::Command::new(exe);
    cmd.args([
        test,
        "--exact",
        "--include-ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(var, case);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child {case} failed:\n{text}");
    text
}
