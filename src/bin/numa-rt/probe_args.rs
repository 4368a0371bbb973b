//! Command-line options of `numa-rt probe`.

use std::ffi::OsString;
use std::path::PathBuf;

use numa_rt::topology::CpuSet;

use crate::args::Command;
use crate::error::CliError;

/// Options of `numa-rt probe`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ProbeArgs {
    /// Write JSON instead of the readable report.
    pub json: bool,
    /// Write an SVG heat map to this file (`-` for stdout).
    pub svg: Option<PathBuf>,
    /// Measure less (a few seconds on a small machine).
    pub quick: bool,
    /// Probe only these CPUs.
    pub cpus: Option<CpuSet>,
}

/// `numa-rt probe --help`.
pub const PROBE_HELP: &str = "\
numa-rt probe: measure core-to-core latency and find hidden NUMA domains

Usage: numa-rt probe [--quick] [--cpus LIST] [--json] [--svg FILE]

Two threads pinned to CPUs a and b bounce one cache line; the one-way
latency of a pair is the median of several samples. The CPUs are then
clustered into latency domains and compared with the NUMA nodes and cache
groups the kernel reports (\"2 latency domains inside node 0\").

Every pair of allowed CPUs is measured, up to 4096 pairs (512 with
--quick); on larger machines one CPU per cache group and CPUs spread evenly
over the rest are probed, and the others join the domain of a probed CPU
sharing their cache. Each pair has a time budget; pairs that run out of it
are left unmeasured (null).

Absolute numbers need an optimized build (cargo run --release -- probe): a
debug build's unoptimized atomics add tens of ns per transfer.

A domain found only by the probe can group threads, but memory cannot be
bound to it: the kernel allocates by the nodes it knows.

Options:
  --quick       Fewer, shorter samples (a few seconds on a small machine)
  --cpus LIST   Probe only these CPUs (e.g. 0-3,8); the matrix still covers
                every online CPU
  --json        Print JSON: {\"cpus\", \"matrix\" (ns, null where not
                measured), \"domains\", \"confidence\", \"comparison\", ...}
  --svg FILE    Draw the matrix as a heat map into FILE (`-` for stdout);
                combine with --json to get both
  -h, --help    Print this help

Exit status: 0 on success, 1 when the probe cannot run or the output cannot
be written, 2 on a usage error.
";

/// Parses the arguments after `probe`.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, CliError> {
    let mut out = ProbeArgs::default();
    let mut help = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let text = arg.to_string_lossy().into_owned();
        let (flag, inline) = match text.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (text.clone(), None),
        };
        let mut value = |flag: &str| -> Result<String, CliError> {
            let v = match inline.clone() {
                Some(v) => v,
                None => match args.next() {
                    Some(v) if !v.to_string_lossy().starts_with("--") => {
                        v.to_string_lossy().into_owned()
                    }
                    _ => return Err(CliError::usage(format!("'{flag}' needs a value"))),
                },
            };
            if v.is_empty() {
                return Err(CliError::usage(format!("'{flag}' needs a non-empty value")));
            }
            Ok(v)
        };
        match flag.as_str() {
            "-h" | "--help" if inline.is_none() => help = true,
            "--json" | "--quick" if inline.is_some() => {
                return Err(CliError::usage(format!("'{flag}' takes no value")));
            }
            "--json" => out.json = once(out.json, &flag)?,
            "--quick" => out.quick = once(out.quick, &flag)?,
            "--svg" => {
                let file = value(&flag)?;
                if out.svg.replace(PathBuf::from(file)).is_some() {
                    return Err(CliError::usage("'--svg' given twice"));
                }
            }
            "--cpus" => {
                let list = value(&flag)?;
                let cpus: CpuSet = list.parse().map_err(|e| {
                    CliError::usage(format!("'--cpus {list}' is not a CPU list: {e}"))
                })?;
                if cpus.is_empty() {
                    return Err(CliError::usage("'--cpus' needs at least one CPU"));
                }
                if out.cpus.replace(cpus).is_some() {
                    return Err(CliError::usage("'--cpus' given twice"));
                }
            }
            _ if flag.starts_with('-') && flag != "-" => {
                return Err(CliError::usage(format!(
                    "unknown option '{flag}' for 'probe' (see 'numa-rt probe --help')"
                )));
            }
            _ => {
                return Err(CliError::usage(format!(
                    "unexpected argument '{text}' for 'probe' (see 'numa-rt probe --help')"
                )));
            }
        }
    }
    if help {
        return Ok(Command::Help(PROBE_HELP));
    }
    if out.json && out.svg.as_deref() == Some(std::path::Path::new("-")) {
        return Err(CliError::usage(
            "'--json' and '--svg -' both write to stdout; give --svg a file name",
        ));
    }
    Ok(Command::Probe(out))
}

fn once(already: bool, flag: &str) -> Result<bool, CliError> {
    if already {
        return Err(CliError::usage(format!("'{flag}' given twice")));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<ProbeArgs, CliError> {
        match parse(args.iter().map(OsString::from))? {
            Command::Probe(p) => Ok(p),
            other => panic!("{args:?} parsed as {other:?}"),
        }
    }

    fn usage(args: &[&str]) -> String {
        let e = parse_strs(args).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        e.to_string()
    }

    #[test]
    fn options() {
        assert_eq!(parse_strs(&[]).unwrap(), ProbeArgs::default());
        let all = parse_strs(&["--quick", "--json", "--svg", "m.svg", "--cpus=0-1"]).unwrap();
        assert_eq!(
            all,
            ProbeArgs {
                json: true,
                svg: Some("m.svg".into()),
                quick: true,
                cpus: Some("0-1".parse().unwrap()),
            }
        );
    }

    #[test]
    fn help() {
        let help = parse(["--quick", "--help"].map(OsString::from)).unwrap();
        assert_eq!(help, Command::Help(PROBE_HELP));
    }

    #[test]
    fn mistakes() {
        assert!(usage(&["--frob"]).contains("unknown option '--frob'"));
        assert!(usage(&["--cpus", "x"]).contains("not a CPU list"));
        assert!(usage(&["--cpus"]).contains("needs a value"));
        assert!(usage(&["--quick", "--quick"]).contains("given twice"));
        assert!(usage(&["--json=1"]).contains("takes no value"));
        assert!(usage(&["--json", "--svg", "-"]).contains("both write to stdout"));
        assert!(usage(&["extra"]).contains("unexpected argument 'extra'"));
    }
}
