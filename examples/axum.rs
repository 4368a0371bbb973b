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
use numa_rt::signal::unix::{signal, SignalKind};
use serde::Serialize;

#[path = "common/numa_server.rs"]
mod numa_server;
#[path = "common/server_args.rs"]
mod server_args;

use server_args::ServerArgs;

/// Parses the options after the program name.
pub(crate) fn parse_args(argv: impl IntoIterator<Item = String>) -> Result<ServerArgs, String> {
    ServerArgs::parse("axum", "127.0.0.1:3000", argv)
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
pub(crate) fn run(args: ServerArgs) -> ExitCode {
    let rt = match numa_server::build_runtime("axum", &args) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let result = rt.block_on(async move {
        // Listen for the signals before accepting, so none is missed.
        let int = signal(SignalKind::interrupt())?;
        let term = signal(SignalKind::terminate())?;
        let listeners = TcpListener::bind_per_node(args.addr.clone()).await?;
        numa_server::print_listening("axum", "http://", &listeners, &args)?;
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
