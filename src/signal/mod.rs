//! Asynchronous signal handling: [`ctrl_c`] and, on Unix,
//! [`unix::signal`] streams for any catchable signal.
//!
//! Handlers are process-wide: a signal's handler is installed the first time
//! something listens for it and stays installed for the rest of the process
//! (the signal's default action, such as terminating, no longer happens),
//! as in tokio. Deliveries between two receives coalesce into one.
//!
//! Signals are read by one background thread (`numa-rt-signal`), so the
//! futures here work on any numa_rt runtime flavor and under other
//! executors too.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! numa_rt::signal::ctrl_c().await?;
//! println!("interrupted, shutting down");
//! # Ok(())
//! # }
//! ```

mod registry;
pub mod unix;

use std::io;

/// Completes when the process receives SIGINT (Ctrl-C in a terminal).
///
/// The first call installs the handler, so Ctrl-C no longer ends the
/// process by itself: the program decides what to do.
///
/// # Errors
///
/// When the signal machinery cannot be set up (no pipe or thread could be
/// created) or the handler cannot be installed.
pub async fn ctrl_c() -> io::Result<()> {
    let mut sig = unix::signal(unix::SignalKind::interrupt())?;
    // `recv` returns None only if the stream ended, which ours never does.
    sig.recv().await;
    Ok(())
}
