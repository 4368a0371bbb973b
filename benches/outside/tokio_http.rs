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

struct Args {
    addr: String,
    workers: Option<usize>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        addr: "127.0.0.1:8081".to_string(),
        workers: None,
    };
    let mut it = std::env::args().skip(1);
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
                return Err("usage: tokio_http [--addr HOST:PORT] [--workers N]".into());
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(args)
}

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
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tokio_http: {e}");
            return ExitCode::from(2);
        }
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = args.workers {
        builder.worker_threads(n);
    }
    let rt = match builder.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tokio_http: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        let listener = TcpListener::bind(&args.addr).await?;
        println!(
            "tokio_http: listening on http://{} | workers: {}",
            listener.local_addr()?,
            args.workers
                .map_or_else(|| "one per CPU".to_string(), |n| n.to_string()),
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
