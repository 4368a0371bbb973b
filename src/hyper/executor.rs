//! [`Executor`]: hyper's task spawner on numa_rt.

use std::future::Future;

use numa_rt_runtime::runtime::Handle;

/// Spawns the background tasks hyper asks for (HTTP/2 streams and
/// connection drivers) as numa_rt tasks.
///
/// A task spawned from a worker stays on that worker's node, so the streams
/// of a connection accepted on node 1 are served on node 1.
///
/// ```
/// use numa_rt::hyper::Executor;
///
/// let builder = hyper::server::conn::http2::Builder::new(Executor::new());
/// # drop(builder);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Executor {
    handle: Option<Handle>,
}

impl Executor {
    /// An executor that spawns on the runtime it is called from.
    pub fn new() -> Executor {
        Executor { handle: None }
    }

    /// An executor that always spawns on the runtime of `handle`, also when
    /// hyper calls it from a thread outside that runtime.
    pub fn with_handle(handle: Handle) -> Executor {
        Executor {
            handle: Some(handle),
        }
    }
}

impl<F> hyper::rt::Executor<F> for Executor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        let handle = match &self.handle {
            Some(handle) => handle.clone(),
            None => match Handle::try_current() {
                Ok(handle) => handle,
                // hyper's `execute` cannot return an error; this is a
                // set-up mistake (a connection driven outside any runtime).
                Err(e) => panic!(
                    "numa_rt::hyper::Executor used outside a numa_rt runtime ({e}); \
                     drive the connection inside the runtime or use Executor::with_handle"
                ),
            },
        };
        // The join handle is dropped: hyper's tasks report through their own
        // channels, and dropping a handle detaches the task.
        drop(handle.spawn(future));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::rt::Executor as _;
    use std::sync::mpsc;

    #[test]
    fn executes_on_the_runtime() {
        let rt = numa_rt_runtime::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let exec = Executor::with_handle(rt.handle().clone());
        exec.execute(async move {
            tx.send(Handle::try_current().is_ok()).unwrap();
        });
        assert!(rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap());
    }

    #[test]
    fn new_spawns_on_the_current_runtime() {
        let rt = numa_rt_runtime::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let out = rt.block_on(async {
            let (tx, rx) = std::sync::mpsc::channel();
            Executor::new().execute(async move { tx.send(7).unwrap() });
            numa_rt_runtime::task::yield_now().await;
            numa_rt_runtime::time::sleep(std::time::Duration::from_millis(5)).await;
            rx.try_recv()
        });
        assert_eq!(out, Ok(7));
    }
}
