//! `numa-vm-guest`: the checks `scripts/numa-vm` runs inside each emulated
//! NUMA machine.
//!
//! Built as a static binary and started by the initramfs's `/init`:
//!
//! ```text
//! numa-vm-guest EXPECT.json               run every check, print DONE
//! numa-vm-guest --child NAME EXPECT.json  run one check here (internal)
//! numa-vm-guest --list                    print the check names
//! ```
//!
//! Each check runs in a child process of its own (see `checks::Sandbox`),
//! with a timeout, and its result goes to the console as one
//! `NUMAVM: PASS|FAIL|SKIP name: detail` line; anything else the check
//! prints becomes `NUMAVM: INFO name: ...`. `NUMAVM_ONLY=a,b` (set on the
//! kernel command line by `scripts/numa-vm --only`) runs a subset.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod checks;
mod expect;
mod json_diff;
mod report;
mod sys;
mod sysfs;

use std::io::Read;
use std::process::{Child, Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use checks::Check;
use expect::Machine;
use report::Outcome;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["--list"] => {
            for c in checks::CHECKS {
                println!("{}", c.name);
            }
            ExitCode::SUCCESS
        }
        ["--child", name, expect] => run_child(name, expect),
        [expect] if !expect.starts_with('-') => run_all(expect),
        _ => {
            eprintln!("usage: numa-vm-guest EXPECT.json | --child NAME EXPECT.json | --list");
            ExitCode::from(2)
        }
    }
}

fn load(path: &str) -> Result<Machine, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    Machine::parse(&text).map_err(|e| format!("{path}: {e}"))
}

/// Parent: every selected check in its own child, one result line each.
fn run_all(expect: &str) -> ExitCode {
    let machine = match load(expect) {
        Ok(m) => m,
        Err(e) => {
            report::emit(
                "FAIL",
                "guest",
                &format!("cannot read the expectation: {e}"),
            );
            return ExitCode::FAILURE;
        }
    };
    let only: Option<Vec<String>> = std::env::var("NUMAVM_ONLY")
        .ok()
        .filter(|s| !s.is_empty())
        .map(|s| s.split(',').map(str::to_string).collect());
    if let Some(names) = &only {
        for unknown in names.iter().filter(|n| checks::find(n).is_none()) {
            report::emit("FAIL", unknown, "no such check (NUMAVM_ONLY)");
        }
    }
    report::emit("INFO", "guest", &format!("topology {}", machine.topology));
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for result in checks::devices::mount_disks(&machine) {
        match result {
            Ok(done) => report::emit("INFO", "setup", &done),
            Err(e) => {
                report::emit("FAIL", "setup", &e);
                failed += 1;
            }
        }
    }
    for check in checks::CHECKS {
        if let Some(names) = &only {
            if !names.iter().any(|n| n == check.name) {
                continue;
            }
        }
        let start = Instant::now();
        let outcome = run_in_child(check, expect);
        let took = format!(
            "{} [{:.1}s]",
            outcome.detail(),
            start.elapsed().as_secs_f64()
        );
        report::emit(outcome.word(), check.name, &took);
        match outcome {
            Outcome::Pass(_) => passed += 1,
            Outcome::Fail(_) => failed += 1,
            Outcome::Skip(_) => skipped += 1,
        }
    }
    report::emit(
        "DONE",
        &format!("passed={passed} failed={failed} skipped={skipped}"),
        "",
    );
    ExitCode::SUCCESS
}

/// Child: set up the sandbox, run one check, print its result line.
fn run_child(name: &str, expect: &str) -> ExitCode {
    let Some(check) = checks::find(name) else {
        println!(
            "{}",
            Outcome::Fail(format!("no check {name}")).to_child_line()
        );
        return ExitCode::FAILURE;
    };
    let outcome = match load(expect) {
        Err(e) => Outcome::Fail(e),
        Ok(machine) => match prepare(check) {
            Err(e) => Outcome::Fail(format!("sandbox set-up: {e}")),
            Ok(()) => (check.run)(&machine),
        },
    };
    println!("{}", outcome.to_child_line());
    ExitCode::SUCCESS
}

fn prepare(check: &Check) -> Result<(), String> {
    if check.sandbox.deny_io_uring {
        sys::deny_io_uring_setup().map_err(|e| format!("seccomp filter: {e}"))?;
    }
    Ok(())
}

fn run_in_child(check: &Check, expect: &str) -> Outcome {
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => return Outcome::Fail(format!("cannot find my own binary: {e}")),
    };
    let mut cmd = Command::new(exe);
    cmd.args(["--child", check.name, expect])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in check.sandbox.env {
        cmd.env(key, value);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::Fail(format!("cannot start the check process: {e}")),
    };
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let status = wait_with_timeout(&mut child, check.timeout);
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();

    let mut outcome = None;
    for line in stdout.lines() {
        match Outcome::from_child_line(line) {
            Some(o) => outcome = Some(o),
            None => report::emit("INFO", check.name, line),
        }
    }
    match (status, outcome) {
        (Err(timeout), _) => Outcome::Fail(timeout),
        (Ok(_), Some(o)) => o,
        (Ok(status), None) => Outcome::Fail(format!(
            "check process ended without a result ({status}): {}",
            last_lines(&stderr, 6)
        )),
    }
}

/// Reads a pipe to its end on a thread, so a chatty child cannot block.
fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut p) = pipe {
            let mut bytes = Vec::new();
            // A read error ends the capture; what was read is still useful.
            let _ = p.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        text
    })
}

fn wait_with_timeout(
    child: &mut Child,
    timeout: Duration,
) -> Result<std::process::ExitStatus, String> {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) if start.elapsed() > timeout => {
                // Kill and reap; the check is reported as hung either way.
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("timed out after {}s", timeout.as_secs()));
            }
            Ok(None) => thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("waiting for the check process: {e}")),
        }
    }
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = &lines[lines.len().saturating_sub(n)..];
    if tail.is_empty() {
        "no output on stderr".to_string()
    } else {
        tail.join(" | ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_lines_keeps_the_tail() {
        assert_eq!(last_lines("a\n\nb\nc\n", 2), "b | c");
        assert_eq!(last_lines("", 3), "no output on stderr");
    }
}
