//! The tokio twin of `examples/axum.rs` that `scripts/bench-http` compares
//! numa_rt against: the same axum `Router` (same routes and handlers), a
//! 10 s request timeout answering 408 (tower-http's `TimeoutLayer` on
//! tokio's timer, where numa_rt has `numa_rt::hyper::TimeoutLayer`), and
//! the server loop `numa_rt::serve` runs: hyper-util's auto builder
//! (HTTP/1.1 and HTTP/2) with hyper timers on both protocols,
//! `serve_connection_with_upgrades`, `TCP_NODELAY`, one task per
//! connection watched for graceful shutdown on SIGINT/SIGTERM.
//! (`axum::serve` sets no hyper timer, so it would do less per request than
//! numa_rt does.)
//!
//! Run: `cargo run --release --example tokio_axum -- --addr 127.0.0.1:3001 --workers 1`

use std::pin::pin;
use std::process::ExitCode;
use std::time::Duration;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tower_http::timeout::TimeoutLayer;

#[path = "../../examples/common/server_args.rs"]
mod server_args;
#[path = "common/tokio_runtime.rs"]
mod tokio_runtime;

use server_args::ServerArgs;

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
    tokio::time::sleep(Duration::from_millis(ms)).await;
    format!("slept {ms} ms")
}

fn app() -> Router {
    Router::new()
        .route("/", get(|| async { "Hello from axum on numa_rt" }))
        .route("/users/{id}", get(user))
        .route("/slow/{ms}", get(slow))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(10),
        ))
}

/// Accepts until a signal arrives, then waits for open connections.
async fn serve(listener: TcpListener, app: Router) -> std::io::Result<()> {
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    let mut stop = pin!(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    });
    loop {
        let stream = tokio::select! {
            _ = stop.as_mut() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let conn = builder
            .serve_connection_with_upgrades(
                TokioIo::new(stream),
                TowerToHyperService::new(app.clone()),
            )
            .into_owned();
        let watched = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = watched.await;
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

fn main() -> ExitCode {
    let args = match ServerArgs::parse("tokio_axum", "127.0.0.1:3001", std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tokio_axum: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio_runtime::build_runtime("tokio_axum", args.workers) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let result = rt.block_on(async move {
        let listener = TcpListener::bind(&args.addr).await?;
        println!(
            "tokio_axum: listening on http://{} | workers: {}",
            listener.local_addr()?,
            args.workers_label(),
        );
        // The server loop is a task on a worker, as numa_rt::serve's are.
        tokio::spawn(serve(listener, app()))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokio_axum: {e}");
            ExitCode::FAILURE
        }
    }
}
