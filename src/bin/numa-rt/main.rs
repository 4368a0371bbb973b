//! The `numa-rt` command: look at the machine the way the runtime sees it.
//!
//! ```text
//! numa-rt topo                 readable view of the live machine
//! numa-rt topo --root DIR      the same for a saved sysfs/procfs tree
//! numa-rt topo --json          machine-readable (hwloc's shape)
//! numa-rt topo --svg FILE      a picture
//! numa-rt probe [--quick]      core-to-core latency and latency domains
//! ```
//!
//! Errors are one line on stderr; the exit status is 2 for a usage error
//! and 1 for any other failure.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod args;
mod error;
mod output;
mod probe;
mod probe_args;
mod probe_json;
mod probe_svg;
mod probe_text;
mod topo;
mod topo_json;
mod topo_svg;
mod topo_text;

use std::process::ExitCode;

use args::Command;
use error::CliError;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("numa-rt: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}

fn run() -> Result<(), CliError> {
    match args::parse(std::env::args_os().skip(1))? {
        Command::Help(text) => output::stdout(text),
        Command::Version => output::stdout(&format!("numa-rt {}\n", env!("CARGO_PKG_VERSION"))),
        Command::Topo(opts) => topo::run(&opts),
        Command::Probe(opts) => probe::run(&opts),
    }
}
