//! A bridge for libraries that call tokio's runtime directly (feature
//! `tokio-compat`).
//!
//! Runtime-agnostic code (tokio's `sync`, `io` traits, codecs) needs nothing:
//! it runs on numa_rt as is. Code that calls `tokio::spawn`, `tokio::time`
//! or tokio's own net types needs a tokio runtime to be *current*: those
//! functions look for one in a thread-local and panic without it.
//!
//! [`TokioBridge`] keeps a small tokio runtime alive behind the scenes (one
//! thread, `numa-rt-tokio-bridge`, that drives tokio's timers and I/O) and
//! makes it current on every numa_rt thread. Then:
//!
//! - `tokio::spawn` from a numa_rt task spawns on the **bridge's** thread, not
//!   on numa_rt's workers (no NUMA placement for those tasks);
//! - `tokio::time::sleep` and tokio's sockets register with tokio's driver,
//!   and their wake-ups come from the bridge thread (one cross-thread wake
//!   each).
//!
//! That is the cost: such futures are served by one extra thread and pay a
//! cross-thread hop per wake-up. Use it to move a server over step by step;
//! replace `tokio::time`/`tokio::net` with `numa_rt::time`/`numa_rt::net`
//! where the code is yours.
//!
//! ```
//! use numa_rt::compat::TokioBridge;
//!
//! let bridge = TokioBridge::new().unwrap();
//! let mut builder = numa_rt::runtime::Builder::new_multi_thread();
//! builder.enable_all();
//! bridge.install(&mut builder);
//! let rt = builder.build().unwrap();
//! // The thread calling block_on is not a numa_rt worker: enter it too.
//! let _tokio = bridge.enter();
//! let n = rt.block_on(async {
//!     // A library calling tokio directly, unchanged:
//!     tokio::spawn(async {
//!         tokio::time::sleep(std::time::Duration::from_millis(1)).await;
//!         21
//!     })
//!     .await
//!     .unwrap()
//!         * 2
//! });
//! assert_eq!(n, 42);
//! ```

use std::fmt;
use std::io;

use numa_rt_runtime::runtime::Builder;

/// A tokio runtime kept alive for libraries that call tokio directly; see
/// the [module documentation](self).
pub struct TokioBridge {
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
}

impl fmt::Debug for TokioBridge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokioBridge").finish_non_exhaustive()
    }
}

impl TokioBridge {
    /// Starts the bridge: a one-thread tokio runtime with time and I/O.
    ///
    /// # Errors
    ///
    /// When tokio cannot start its thread or its I/O driver.
    pub fn new() -> io::Result<TokioBridge> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("numa-rt-tokio-bridge")
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        Ok(TokioBridge {
            runtime: Some(runtime),
            handle,
        })
    }

    /// tokio's handle of the bridge, to spawn on it explicitly.
    pub fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }

    /// Makes the bridge current on every worker and blocking thread of the
    /// runtime `builder` builds. This sets the builder's `on_thread_start`
    /// hook; to keep a hook of your own, call [`TokioBridge::enter_thread`]
    /// from it instead.
    pub fn install<'b>(&self, builder: &'b mut Builder) -> &'b mut Builder {
        let handle = self.handle.clone();
        builder.on_thread_start(move || enter_for_thread(&handle))
    }

    /// Makes the bridge current on the calling thread until it exits.
    pub fn enter_thread(&self) {
        enter_for_thread(&self.handle);
    }

    /// Makes the bridge current on the calling thread until the guard is
    /// dropped (for the thread that calls `block_on`).
    pub fn enter(&self) -> tokio::runtime::EnterGuard<'_> {
        self.handle.enter()
    }
}

impl Drop for TokioBridge {
    fn drop(&mut self) {
        // Dropping a tokio runtime inside an async context panics; the
        // bridge may be dropped from a numa_rt task, so do not wait.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

fn enter_for_thread(handle: &tokio::runtime::Handle) {
    thread_local! {
        static ENTERED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if ENTERED.with(|e| e.replace(true)) {
        return;
    }
    // The guard must outlive the thread's work; the handle it borrows is
    // leaked with it (one handle per thread that enters).
    let handle: &'static tokio::runtime::Handle = Box::leak(Box::new(handle.clone()));
    std::mem::forget(handle.enter());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn tokio_calls_work_inside_numa_rt_tasks() {
        let bridge = TokioBridge::new().unwrap();
        let mut builder = Builder::new_multi_thread();
        builder.worker_threads(2).enable_all();
        bridge.install(&mut builder);
        let rt = builder.build().unwrap();
        let out = rt.block_on(async {
            numa_rt_runtime::spawn(async {
                let t = tokio::spawn(async {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    std::thread::current().name().map(String::from)
                });
                t.await.unwrap()
            })
            .await
            .unwrap()
        });
        assert_eq!(out.as_deref(), Some("numa-rt-tokio-bridge"));
    }

    #[test]
    fn without_the_bridge_tokio_has_no_runtime() {
        let rt = Builder::new_current_thread().enable_all().build().unwrap();
        let found = rt.block_on(async { tokio::runtime::Handle::try_current().is_ok() });
        assert!(!found);
    }
}
