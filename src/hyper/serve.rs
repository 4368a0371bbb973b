//! [`serve`]: HTTP/1.1 and HTTP/2 for a tower service, with graceful shutdown.

use std::error::Error as StdError;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::io;
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use numa_rt_runtime::net::TcpListener;
use numa_rt_runtime::NodeId;
use tokio::sync::watch;

use super::{Executor, Timer};

type BoxError = Box<dyn StdError + Send + Sync>;

/// Pause after an accept error that is not about one connection (EMFILE,
/// ENFILE, ENOBUFS), so a full descriptor table does not become a busy loop.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// Where [`serve`] accepts connections: one listener, or one per node as
/// [`TcpListener::bind_per_node`] returns them.
#[derive(Debug)]
pub struct Listeners {
    listeners: Vec<(Option<NodeId>, TcpListener)>,
}

impl From<TcpListener> for Listeners {
    /// One listener, accepted on the node of the task that awaits `serve`.
    fn from(listener: TcpListener) -> Listeners {
        Listeners {
            listeners: vec![(None, listener)],
        }
    }
}

impl From<Vec<(NodeId, TcpListener)>> for Listeners {
    /// One listener per node: each is accepted by a task on its node, and
    /// its connections are served there.
    fn from(listeners: Vec<(NodeId, TcpListener)>) -> Listeners {
        Listeners {
            listeners: listeners.into_iter().map(|(n, l)| (Some(n), l)).collect(),
        }
    }
}

/// Serves HTTP/1.1 and HTTP/2 (chosen per connection) on `listeners` with
/// `service`, any tower service of `Request<Incoming>` such as an axum
/// `Router`. Await the result to run the server; it returns only on a
/// failure to start. Call [`Serve::with_graceful_shutdown`] to stop it.
///
/// Each connection runs as its own task on the node that accepted it, with
/// [`Executor`] and [`Timer`] set, so nothing needs a tokio runtime.
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// use numa_rt::net::TcpListener;
///
/// let router = axum::Router::new().route("/", axum::routing::get(|| async { "hi" }));
/// let listeners = TcpListener::bind_per_node("127.0.0.1:3000").await?;
/// numa_rt::serve(listeners, router).await
/// # }
/// ```
pub fn serve<L, S, B>(listeners: L, service: S) -> Serve<S>
where
    L: Into<Listeners>,
    S: tower_service::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    Serve {
        listeners: listeners.into(),
        service,
    }
}

/// The server of [`serve`]; await it to run it.
#[must_use = "a server does nothing until awaited"]
pub struct Serve<S> {
    listeners: Listeners,
    service: S,
}

impl<S> fmt::Debug for Serve<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Serve")
            .field("listeners", &self.listeners)
            .finish_non_exhaustive()
    }
}

impl<S> Serve<S> {
    /// Stops the server when `signal` completes: accepting stops at once,
    /// every open connection finishes its in-flight requests (idle
    /// keep-alive connections are closed), then the server returns.
    ///
    /// ```no_run
    /// # async fn run(router: axum::Router) -> std::io::Result<()> {
    /// let listener = numa_rt::net::TcpListener::bind("127.0.0.1:3000").await?;
    /// numa_rt::serve(listener, router)
    ///     .with_graceful_shutdown(async {
    ///         let _ = numa_rt::signal::ctrl_c().await;
    ///     })
    ///     .await
    /// # }
    /// ```
    pub fn with_graceful_shutdown<F>(self, signal: F) -> WithGracefulShutdown<S, F>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        WithGracefulShutdown {
            serve: self,
            signal,
        }
    }
}

/// A server that stops when its signal completes; see
/// [`Serve::with_graceful_shutdown`].
#[must_use = "a server does nothing until awaited"]
pub struct WithGracefulShutdown<S, F> {
    serve: Serve<S>,
    signal: F,
}

impl<S, F> fmt::Debug for WithGracefulShutdown<S, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WithGracefulShutdown")
            .field("serve", &self.serve)
            .finish_non_exhaustive()
    }
}

impl<S, B> IntoFuture for Serve<S>
where
    S: tower_service::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Output = io::Result<()>;
    type IntoFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(run(self, None::<std::future::Pending<()>>))
    }
}

impl<S, B, F> IntoFuture for WithGracefulShutdown<S, F>
where
    S: tower_service::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
    F: Future<Output = ()> + Send + 'static,
{
    type Output = io::Result<()>;
    type IntoFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(run(self.serve, Some(self.signal)))
    }
}

async fn run<S, B, F>(serve: Serve<S>, signal: Option<F>) -> io::Result<()>
where
    S: tower_service::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
    F: Future<Output = ()> + Send + 'static,
{
    let handle = numa_rt_runtime::runtime::Handle::try_current()
        .map_err(|e| io::Error::other(format!("numa_rt::serve: {e}")))?;
    if serve.listeners.listeners.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "numa_rt::serve: no listeners to accept on",
        ));
    }
    // Accept loops take a watcher for each connection; at shutdown the
    // server takes the tracker out (after the loops stopped) and waits.
    let graceful = Arc::new(Mutex::new(Some(GracefulShutdown::new())));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut loops = Vec::new();
    for (node, listener) in serve.listeners.listeners {
        let accept = accept_loop(
            listener,
            serve.service.clone(),
            graceful.clone(),
            stop_rx.clone(),
        );
        loops.push(match node {
            Some(node) => handle.spawn_on(node, accept),
            None => handle.spawn(accept),
        });
    }
    drop(stop_rx);

    let loops_done = async {
        let mut first_error = None;
        for l in loops {
            match l.await {
                Ok(()) => {}
                Err(e) => {
                    first_error.get_or_insert_with(|| io::Error::other(e.to_string()));
                }
            }
        }
        first_error
    };
    match signal {
        None => {
            // Accept loops end only on a panic (or when the runtime stops).
            if let Some(e) = loops_done.await {
                return Err(e);
            }
        }
        Some(signal) => {
            signal.await;
            let _ = stop_tx.send(true);
            // Every loop has dropped its listener: no new connections.
            let error = loops_done.await;
            let tracker = graceful
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(tracker) = tracker {
                tracker.shutdown().await;
            }
            if let Some(e) = error {
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Accepts on `listener` until told to stop, serving each connection in a
/// task of its own (on this node: spawned from this task).
async fn accept_loop<S, B>(
    listener: TcpListener,
    service: S,
    graceful: Arc<Mutex<Option<GracefulShutdown>>>,
    mut stop: watch::Receiver<bool>,
) where
    S: tower_service::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let mut builder = auto::Builder::new(Executor::new());
    builder.http1().timer(Timer::new());
    builder.http2().timer(Timer::new());
    loop {
        let accepted = {
            let mut stopped = pin!(stop.wait_for(|s| *s));
            let mut accept = pin!(listener.accept());
            std::future::poll_fn(|cx| {
                if stopped.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(None);
                }
                accept.as_mut().poll(cx).map(Some)
            })
            .await
        };
        let stream = match accepted {
            None => return,
            Some(Ok((stream, _peer))) => stream,
            Some(Err(e)) if is_connection_error(&e) => continue,
            Some(Err(_)) => {
                // Out of descriptors or buffers: wait for connections to end.
                numa_rt_runtime::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let conn = builder
            .serve_connection_with_upgrades(
                TokioIo::new(stream),
                TowerToHyperService::new(service.clone()),
            )
            .into_owned();
        let watcher = graceful
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(GracefulShutdown::watcher);
        // A connection's errors (a reset peer, a malformed request) end
        // that connection only.
        drop(match watcher {
            Some(watcher) => {
                let watched = watcher.watch(conn);
                numa_rt_runtime::spawn(async move {
                    let _ = watched.await;
                })
            }
            // Shutting down already: serve what was accepted, untracked.
            None => numa_rt_runtime::spawn(async move {
                let _ = conn.await;
            }),
        });
    }
}

/// Errors that concern one connection, not the listener.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}
