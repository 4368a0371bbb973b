//! The tokio twin of `examples/http.rs` that `scripts/bench-http` compares
//! numa_rt against: the same hyper HTTP/1.1 "Hello, World!" service, the
//! same http1 builder configuration (hyper-util's `TokioTimer` where numa_rt
//! has `numa_rt::hyper::Timer`, so both arm hyper's header-read timeout),
//! `TCP_NODELAY`, one task per connection, on tokio's multi-thread runtime.
//!
//! Run: `cargo run --release --example tokio_http -- --addr 127.0.0.1:8081 --workers 1`

use std::convert::Infallible;
use std::process::ExitCode;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

#[path = "../../examples/common/server_args.rs"]
mod server_args;
#[path = "common/tokio_runtime.rs"]
mod tokio_runtime;

use server_args::ServerArgs;

async fn hello(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(
        b"Hello, World!",
    ))))
}

async fn serve(listener: TcpListener) {
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new());
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                eprintln!("tokio_http: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let conn = builder.serve_connection(TokioIo::new(stream), service_fn(hello));
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}

fn main() -> ExitCode {
    let args = match ServerArgs::parse("tokio_http", "127.0.0.1:8081", std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tokio_http: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio_runtime::build_runtime("tokio_http", args.workers) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let result = rt.block_on(async move {
        let listener = TcpListener::bind(&args.addr).await?;
        println!(
            "tokio_http: listening on http://{} | workers: {}",
            listener.local_addr()?,
            args.workers_label(),
        );
        // The accept loop is a task on a worker, as in examples/http.rs.
        tokio::spawn(serve(listener))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokio_http: {e}");
            ExitCode::FAILURE
        }
    }
}
