//! Start-up shared by the numa_rt example servers: the runtime their
//! options ask for, and the "listening on" line that names the topology
//! (the integration tests and bench scripts wait for it).

use std::io;
use std::process::ExitCode;

use numa_rt::net::TcpListener;
use numa_rt::runtime::Builder;
use numa_rt::{NodeId, Runtime};

use super::server_args::ServerArgs;

/// Builds the multi-thread runtime `args` ask for; on failure prints why
/// (prefixed with `program`) and gives the exit code to return.
pub(crate) fn build_runtime(program: &str, args: &ServerArgs) -> Result<Runtime, ExitCode> {
    let mut builder = Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = args.workers {
        builder.worker_threads(n);
    }
    builder.build().map_err(|e| {
        eprintln!("{program}: {e}");
        ExitCode::FAILURE
    })
}

/// Prints `PROGRAM: listening on SCHEME<addr> | topology: ...` for the
/// per-node `listeners`. Must run inside the runtime.
pub(crate) fn print_listening(
    program: &str,
    scheme: &str,
    listeners: &[(NodeId, TcpListener)],
    args: &ServerArgs,
) -> io::Result<()> {
    let handle = numa_rt::runtime::Handle::current();
    let nodes: Vec<String> = handle
        .topology()
        .cpu_nodes()
        .map(|n| format!("{} cpus {}", n.id(), n.cpus()))
        .collect();
    let local = listeners
        .first()
        .ok_or_else(|| io::Error::other("no node to listen on"))?
        .1
        .local_addr()?;
    println!(
        "{program}: listening on {scheme}{local} | topology: {} node(s) [{}] | workers per node: {} | io: {:?}",
        nodes.len(),
        nodes.join("; "),
        args.workers_label(),
        numa_rt::io::current_backend(),
    );
    Ok(())
}
