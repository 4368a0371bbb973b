//! The tokio runtime the tokio twins of the example servers run on.

use std::process::ExitCode;

use tokio::runtime::Runtime;

/// Builds tokio's multi-thread runtime with `workers` threads (default:
/// one per CPU); on failure prints why (prefixed with `program`) and gives
/// the exit code to return.
pub(crate) fn build_runtime(program: &str, workers: Option<usize>) -> Result<Runtime, ExitCode> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = workers {
        builder.worker_threads(n);
    }
    builder.build().map_err(|e| {
        eprintln!("{program}: {e}");
        ExitCode::FAILURE
    })
}
