//! An axum application on numa_rt: a JSON route with a path parameter, a
//! request timeout, per-node listeners and graceful shutdown on SIGINT or
//! SIGTERM (in-flight requests finish, then the process exits 0).
//!
//! Run: `cargo run --release --example axum` then
//! `curl http://127.0.0.1:3000/users/7` (prints `{"id":7,"name":"user-7"}`).
//!
//! Routes: `GET /` (plain text), `GET /users/{id}` (JSON), `GET /slow/{ms}`
//! (answers after `ms` milliseconds; longer than 10 s gets 408 from the
//! timeout layer).
//!
//! Options: `--addr HOST:PORT` (default 127.0.0.1:3000), `--workers N`
//! (worker threads per node; default: one per CPU).
//!
//! Compared with the same program on tokio, the changes are: the runtime
//! (`numa_rt::runtime::Builder` or `#[numa_rt::main]`), the listener
//! (`numa_rt::net::TcpListener::bind_per_node`), `numa_rt::serve` in place
//! of `axum::serve`, `numa_rt::hyper::TimeoutLayer` in place of tower's
//! timeout, and `numa_rt::signal` in place of `tokio::signal`. The router
//! and handlers do not change.

use std::future::poll_fn;
use std::process::ExitCode;
use std::task::Poll;
use std::time::Duration;

use axum::extract::Path;
use axum::routing::get;
use axum::{Json, Router};
use numa_rt::hyper::TimeoutLayer;
use numa_rt::net::TcpListener;
use numa_rt::runtime::Builder;
use numa_rt::signal::unix::{signal, SignalKind};
use serde::Serialize;

/// Command-line options.
pub(crate) struct Args {
    addr: String,
    workers: Option<usize>,
}

/// Parses the options after the program name.
pub(crate) fn parse_args(argv: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        addr: "127.0.0.1:3000".to_string(),
        workers: None,
    };
    let mut it = argv.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--addr" => args.addr = it.next().ok_or("--addr needs HOST:PORT")?,
            "--workers" => {
                let v = it.next().ok_or("--workers needs a number")?;
                let n: usize = v
                    .parse()
                    .map_err(|_| format!("--workers: {v:?} is not a number"))?;
                if n == 0 {
                    return Err("--workers must be at least 1".into());
                }
                args.workers = Some(n);
            }
            "-h" | "--help" => {
                return Err("usage: axum [--addr HOST:PORT] [--workers N]".into());
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(args)
}

#[derive(Serialize)]
struct User {
    id: u64,
    name: String,
}

async fn user(Path(id): Path<u64>) -> Json<User> {
    Json(User {
        id,
        name: format!("user-{id}"),
    })
}

async fn slow(Path(ms): Path<u64>) -> String {
    numa_rt::time::sleep(Duration::from_millis(ms)).await;
    format!("slept {ms} ms")
}

fn app() -> Router {
    Router::new()
        .route("/", get(|| async { "Hello from axum on numa_rt" }))
        .route("/users/{id}", get(user))
        .route("/slow/{ms}", get(slow))
        .layer(TimeoutLayer::new(Duration::from_secs(10)))
}

/// Completes on the first SIGINT or SIGTERM.
async fn shutdown_signal(
    mut int: numa_rt::signal::unix::Signal,
    mut term: numa_rt::signal::unix::Signal,
) {
    let which = poll_fn(|cx| {
        if int.poll_recv(cx).is_ready() {
            return Poll::Ready("SIGINT");
        }
        if term.poll_recv(cx).is_ready() {
            return Poll::Ready("SIGTERM");
        }
        Poll::Pending
    })
    .await;
    println!("axum: {which}: finishing in-flight requests");
}

fn main() -> ExitCode {
    match parse_args(std::env::args().skip(1)) {
        Ok(args) => run(args),
        Err(e) => {
            eprintln!("axum: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs the server until it stops (the integration tests call this too).
pub(crate) fn run(args: Args) -> ExitCode {
    let mut builder = Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = args.workers {
        builder.worker_threads(n);
    }
    let rt = match builder.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("axum: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        // Listen for the signals before accepting, so none is missed.
        let int = signal(SignalKind::interrupt())?;
        let term = signal(SignalKind::terminate())?;
        let listeners = TcpListener::bind_per_node(args.addr.clone()).await?;
        let handle = numa_rt::runtime::Handle::current();
        let nodes: Vec<String> = handle
            .topology()
            .cpu_nodes()
            .map(|n| format!("{} cpus {}", n.id(), n.cpus()))
            .collect();
        let local = listeners
            .first()
            .ok_or_else(|| std::io::Error::other("no node to listen on"))?
            .1
            .local_addr()?;
        println!(
            "axum: listening on http://{local} | topology: {} node(s) [{}] | workers per node: {} | io: {:?}",
            nodes.len(),
            nodes.join("; "),
            args.workers
                .map_or_else(|| "one per CPU".to_string(), |n| n.to_string()),
            numa_rt::io::current_backend(),
        );
        numa_rt::serve(listeners, app())
            .with_graceful_shutdown(shutdown_signal(int, term))
            .await
    });
    match result {
        Ok(()) => {
            println!("axum: stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("axum: {e}");
            ExitCode::FAILURE
        }
    }
}
