//! Command-line parsing: a small hand-written parser with one clear message
//! per mistake.
//!
//! Grammar: `numa-rt [--help | --version] <command> [options]`. Options take
//! their value as the next argument or after `=` (`--root DIR`,
//! `--root=DIR`). Paths are kept as `OsString`, so non-UTF-8 paths work.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::error::CliError;

/// What the user asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// Print this help text to stdout and exit 0.
    Help(&'static str),
    /// Print the version and exit 0.
    Version,
    /// `numa-rt topo ...`.
    Topo(TopoArgs),
    /// `numa-rt probe ...`.
    Probe(crate::probe_args::ProbeArgs),
}

/// Options of `numa-rt topo`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TopoArgs {
    /// Read a saved sysfs/procfs tree instead of the live machine.
    pub root: Option<PathBuf>,
    /// Write JSON instead of the readable view.
    pub json: bool,
    /// Write an SVG picture to this file (`-` for stdout).
    pub svg: Option<PathBuf>,
}

/// `numa-rt --help`.
pub const MAIN_HELP: &str = "\
numa-rt: tools for the numa-rt async runtime

Usage: numa-rt <command> [options]

Commands:
  topo    Show the NUMA topology the runtime sees (nodes, CPUs, caches,
          memory, distances, HMAT attributes, memory tiers, devices)
  probe   Measure core-to-core latency and find latency domains the
          kernel does not report (hidden NUMA, cache groups)

Options:
  -h, --help       Print help (also: numa-rt help <command>,
                   numa-rt <command> --help)
  -V, --version    Print the version

Environment:
  NUMA_RT_TOPOLOGY=NxC[:L,R | :d,d,...]
                   Replace the live topology by N emulated nodes of C CPUs
                   each, laid over the CPUs this process may use
";

/// `numa-rt topo --help`.
pub const TOPO_HELP: &str = "\
numa-rt topo: show the NUMA topology the runtime sees

Usage: numa-rt topo [--root DIR] [--json] [--svg FILE]

Without options, prints a readable view of the live machine, limited to the
CPUs and nodes this process may use (cgroup cpusets, CPU affinity), or of the
synthetic topology named by NUMA_RT_TOPOLOGY when it is set.

Options:
  --root DIR    Read a saved tree instead of the live machine: DIR holds
                sys/ and proc/ as on a live system (NUMA_RT_TOPOLOGY is then
                ignored)
  --json        Print machine-readable JSON: {\"nodes\", \"distances\",
                \"memattrs\", ...} in the same form as hwloc's view
  --svg FILE    Draw the topology as an SVG picture into FILE (`-` for
                stdout); combine with --json to get both
  -h, --help    Print this help

Exit status: 0 on success, 1 when the topology cannot be read or the output
cannot be written, 2 on a usage error.
";

/// Parses the arguments after the program name.
pub fn parse<I>(args: I) -> Result<Command, CliError>
where
    I: IntoIterator<Item = OsString>,
{
    let mut args = args.into_iter();
    let Some(first) = args.next() else {
        return Err(CliError::usage("no command given (try 'numa-rt topo')"));
    };
    match first.to_str() {
        Some("-h" | "--help") => Ok(Command::Help(MAIN_HELP)),
        Some("help") => match args.next() {
            None => Ok(Command::Help(MAIN_HELP)),
            Some(topic) if topic == "topo" => Ok(Command::Help(TOPO_HELP)),
            Some(topic) if topic == "probe" => Ok(Command::Help(crate::probe_args::PROBE_HELP)),
            Some(topic) => Err(CliError::usage(format!(
                "no help for '{}' (commands: topo, probe)",
                topic.to_string_lossy()
            ))),
        },
        Some("-V" | "--version") => Ok(Command::Version),
        Some("topo") => parse_topo(args),
        Some("probe") => crate::probe_args::parse(args),
        Some(flag) if flag.starts_with('-') => Err(CliError::usage(format!(
            "unknown option '{flag}' (see 'numa-rt --help')"
        ))),
        _ => Err(CliError::usage(format!(
            "unknown command '{}' (see 'numa-rt --help')",
            first.to_string_lossy()
        ))),
    }
}

fn parse_topo(mut args: impl Iterator<Item = OsString>) -> Result<Command, CliError> {
    let mut out = TopoArgs::default();
    while let Some(arg) = args.next() {
        let (flag, inline) = split_flag(&arg);
        match flag.as_str() {
            "-h" | "--help" if inline.is_none() => return Ok(Command::Help(TOPO_HELP)),
            "--json" if inline.is_none() => out.json = set_once(out.json, "--json")?,
            "--root" => {
                let dir = value(&flag, inline, &mut args)?;
                out.root = Some(set_value(out.root, &flag, dir)?);
            }
            "--svg" => {
                let file = value(&flag, inline, &mut args)?;
                out.svg = Some(set_value(out.svg, &flag, file)?);
            }
            "--json" | "-h" | "--help" => {
                return Err(CliError::usage(format!("'{flag}' takes no value")));
            }
            _ if flag.starts_with('-') && flag != "-" => {
                return Err(CliError::usage(format!(
                    "unknown option '{flag}' for 'topo' (see 'numa-rt topo --help')"
                )));
            }
            _ => {
                return Err(CliError::usage(format!(
                    "unexpected argument '{}' for 'topo' (see 'numa-rt topo --help')",
                    arg.to_string_lossy()
                )));
            }
        }
    }
    if out.json && out.svg.as_deref() == Some(std::path::Path::new("-")) {
        return Err(CliError::usage(
            "'--json' and '--svg -' both write to stdout; give --svg a file name",
        ));
    }
    Ok(Command::Topo(out))
}

/// Splits `--flag=value` into the flag and its inline value. Arguments that
/// are not `--long` options come back whole.
fn split_flag(arg: &OsStr) -> (String, Option<OsString>) {
    let bytes = arg.as_bytes();
    if bytes.starts_with(b"--") {
        if let Some(eq) = bytes.iter().position(|&b| b == b'=') {
            let flag = String::from_utf8_lossy(&bytes[..eq]).into_owned();
            let value = OsStr::from_bytes(&bytes[eq + 1..]);
            return (flag, Some(value.to_owned()));
        }
    }
    (arg.to_string_lossy().into_owned(), None)
}

/// The value of `flag`: the inline `=value`, else the next argument.
fn value(
    flag: &str,
    inline: Option<OsString>,
    rest: &mut impl Iterator<Item = OsString>,
) -> Result<PathBuf, CliError> {
    let value = match inline {
        Some(v) => v,
        None => match rest.next() {
            Some(v) if !looks_like_flag(&v) => v,
            _ => return Err(CliError::usage(format!("'{flag}' needs a value"))),
        },
    };
    if value.is_empty() {
        return Err(CliError::usage(format!("'{flag}' needs a non-empty value")));
    }
    Ok(PathBuf::from(value))
}

fn looks_like_flag(arg: &OsStr) -> bool {
    arg.as_bytes().starts_with(b"--")
}

fn set_once(already: bool, flag: &str) -> Result<bool, CliError> {
    if already {
        return Err(CliError::usage(format!("'{flag}' given twice")));
    }
    Ok(true)
}

fn set_value(old: Option<PathBuf>, flag: &str, new: PathBuf) -> Result<PathBuf, CliError> {
    match old {
        Some(_) => Err(CliError::usage(format!("'{flag}' given twice"))),
        None => Ok(new),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<Command, CliError> {
        parse(args.iter().map(OsString::from))
    }

    fn usage_message(args: &[&str]) -> String {
        match parse_strs(args) {
            Err(e) => {
                assert_eq!(e.exit_code(), 2, "{args:?} should be a usage error");
                e.to_string()
            }
            Ok(cmd) => panic!("{args:?} parsed as {cmd:?}"),
        }
    }

    #[test]
    fn topo_options() {
        assert_eq!(
            parse_strs(&["topo"]).unwrap(),
            Command::Topo(TopoArgs::default())
        );
        let expected = Command::Topo(TopoArgs {
            root: Some("/tmp/tree".into()),
            json: true,
            svg: Some("out.svg".into()),
        });
        assert_eq!(
            parse_strs(&["topo", "--root", "/tmp/tree", "--json", "--svg", "out.svg"]).unwrap(),
            expected
        );
        assert_eq!(
            parse_strs(&["topo", "--svg=out.svg", "--root=/tmp/tree", "--json"]).unwrap(),
            expected
        );
        assert_eq!(
            parse_strs(&["topo", "--svg", "-"]).unwrap(),
            Command::Topo(TopoArgs {
                svg: Some("-".into()),
                ..TopoArgs::default()
            })
        );
    }

    #[test]
    fn help_and_version() {
        assert_eq!(parse_strs(&["--help"]).unwrap(), Command::Help(MAIN_HELP));
        assert_eq!(parse_strs(&["-h"]).unwrap(), Command::Help(MAIN_HELP));
        assert_eq!(
            parse_strs(&["topo", "--json", "--help"]).unwrap(),
            Command::Help(TOPO_HELP)
        );
        assert_eq!(parse_strs(&["-V"]).unwrap(), Command::Version);
        assert_eq!(parse_strs(&["help"]).unwrap(), Command::Help(MAIN_HELP));
        assert_eq!(
            parse_strs(&["help", "topo"]).unwrap(),
            Command::Help(TOPO_HELP)
        );
        assert!(usage_message(&["help", "frob"]).contains("no help for 'frob'"));
    }

    #[test]
    fn usage_errors_name_the_problem() {
        assert!(usage_message(&[]).contains("no command"));
        assert!(usage_message(&["frob"]).contains("unknown command 'frob'"));
        assert!(usage_message(&["--frob"]).contains("unknown option '--frob'"));
        assert!(usage_message(&["topo", "--frob"]).contains("unknown option '--frob'"));
        assert!(usage_message(&["topo", "--root"]).contains("'--root' needs a value"));
        assert!(usage_message(&["topo", "--root", "--json"]).contains("'--root' needs a value"));
        assert!(usage_message(&["topo", "--svg="]).contains("'--svg' needs a non-empty"));
        assert!(usage_message(&["topo", "--json", "--json"]).contains("given twice"));
        assert!(usage_message(&["topo", "--root", "a", "--root", "b"]).contains("given twice"));
        assert!(usage_message(&["topo", "--json=yes"]).contains("takes no value"));
        assert!(usage_message(&["topo", "extra"]).contains("unexpected argument 'extra'"));
        assert!(usage_message(&["topo", "--json", "--svg", "-"]).contains("both write to stdout"));
    }

    #[test]
    fn messages_are_one_line() {
        for args in [&["topo", "--frob"][..], &["topo", "--root"], &["x"]] {
            assert!(!usage_message(args).contains('\n'), "{args:?}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_paths_survive() {
        use std::os::unix::ffi::OsStringExt;
        let raw = b"--root=/tmp/\xff\xfe".to_vec();
        let args = vec![OsString::from("topo"), OsString::from_vec(raw)];
        let Command::Topo(topo) = parse(args).unwrap() else {
            panic!("expected topo")
        };
        let root = topo.root.unwrap();
        assert_eq!(root.as_os_str().as_encoded_bytes(), b"/tmp/\xff\xfe");
    }
}
