//! Command line of the soak test.

use numa_rt::io::IoDriver;

/// What the soak was asked to do.
#[derive(Clone, Debug)]
pub struct Args {
    /// Length of the measured run (after the warm-up).
    pub seconds: f64,
    /// Length of the warm-up run that sets the memory baseline.
    pub warmup: f64,
    /// Concurrent client connections; `None`: sized from the file limit.
    pub connections: Option<usize>,
    /// I/O backend (`Auto` honours `NUMA_RT_IO`).
    pub io: IoDriver,
    /// Seed of every random choice (connection sizes, endings, task kinds).
    pub seed: u64,
    /// Self-check: the server flips one echoed byte; the soak must fail.
    pub inject_corruption: bool,
    /// Self-check: every client connection leaks 4 KiB; the soak must fail.
    pub inject_leak: bool,
}

const USAGE: &str = "usage: soak [--seconds N] [--warmup N] [--connections N] \
                     [--io auto|epoll|uring] [--seed N]";

fn number<T: std::str::FromStr>(flag: &str, v: Option<String>) -> Result<T, String> {
    let v = v.ok_or_else(|| format!("{flag} needs a number"))?;
    v.parse()
        .map_err(|_| format!("{flag}: {v:?} is not a valid number"))
}

fn seconds(flag: &str, v: Option<String>) -> Result<f64, String> {
    let s: f64 = number(flag, v)?;
    if !(s.is_finite() && s > 0.0 && s <= 7.0 * 86_400.0) {
        return Err(format!(
            "{flag}: {s} is not between 0 and a week of seconds"
        ));
    }
    Ok(s)
}

/// Parses `args` (without the program name).
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut out = Args {
        seconds: 20.0,
        warmup: 0.0,
        connections: None,
        io: IoDriver::Auto,
        seed: 0x5eed_50a4,
        inject_corruption: false,
        inject_leak: false,
    };
    let mut warmup = None;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => out.seconds = seconds("--seconds", it.next())?,
            "--warmup" => warmup = Some(seconds("--warmup", it.next())?),
            "--connections" => {
                let n: usize = number("--connections", it.next())?;
                if n == 0 {
                    return Err("--connections must be at least 1".into());
                }
                out.connections = Some(n);
            }
            "--io" => {
                out.io = match it.next().as_deref() {
                    Some("auto") => IoDriver::Auto,
                    Some("epoll") => IoDriver::Epoll,
                    Some("uring") | Some("io_uring") => IoDriver::Uring,
                    other => return Err(format!("--io: {other:?} is not auto, epoll or uring")),
                }
            }
            "--seed" => out.seed = number("--seed", it.next())?,
            "--inject-corruption" => out.inject_corruption = true,
            "--inject-leak" => out.inject_leak = true,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?} ({USAGE})")),
        }
    }
    // The warm-up fills pools and caches before the baseline is taken: a
    // fifth of the run, between 1 and 5 seconds, unless given.
    out.warmup = warmup.unwrap_or_else(|| (out.seconds / 5.0).clamp(1.0, 5.0));
    Ok(out)
}
