//! HTTP/1.1 "Hello, World!" server on numa_rt with hyper: one listener per
//! NUMA node (SO_REUSEPORT), each node accepting and serving its own
//! connections, hyper's timers on numa_rt's timers.
//!
//! Run: `cargo run --release --example http` then `curl http://127.0.0.1:8080/`
//!
//! Options: `--addr HOST:PORT` (default 127.0.0.1:8080), `--workers N`
//! (worker threads per node; default: one per CPU). `NUMA_RT_IO=epoll`
//! forces the epoll driver, `NUMA_RT_TOPOLOGY=2x1` emulates two nodes.

use std::convert::Infallible;
use std::process::ExitCode;

use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use numa_rt::hyper::{Timer, TokioIo};
use numa_rt::net::TcpListener;

#[path = "common/numa_server.rs"]
mod numa_server;
#[path = "common/server_args.rs"]
mod server_args;

use server_args::ServerArgs;

/// Parses the options after the program name.
pub(crate) fn parse_args(argv: impl IntoIterator<Item = String>) -> Result<ServerArgs, String> {
    ServerArgs::parse("http", "127.0.0.1:8080", argv)
}

async fn hello(_: Request<Incoming>) -> Result<Response<http_body_util::Full<Bytes>>, Infallible> {
    Ok(Response::new(http_body_util::Full::new(
        Bytes::from_static(b"Hello, World!"),
    )))
}

async fn accept_loop(listener: TcpListener) {
    let mut builder = http1::Builder::new();
    builder.timer(Timer::new());
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                eprintln!("http: accept: {e}");
                numa_rt::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let conn = builder.serve_connection(TokioIo::new(stream), service_fn(hello));
        // Spawned from this node's accept loop: the connection's home is
        // this node. A connection's error ends that connection only.
        drop(numa_rt::spawn(async move {
            let _ = conn.await;
        }));
    }
}

fn main() -> ExitCode {
    match parse_args(std::env::args().skip(1)) {
        Ok(args) => run(args),
        Err(e) => {
            eprintln!("http: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs the server until it stops (the integration tests call this too).
pub(crate) fn run(args: ServerArgs) -> ExitCode {
    let rt = match numa_server::build_runtime("http", &args) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let result = rt.block_on(async move {
        let listeners = TcpListener::bind_per_node(args.addr.clone()).await?;
        numa_server::print_listening("http", "http://", &listeners, &args)?;
        let mut loops = Vec::new();
        for (node, listener) in listeners {
            loops.push(numa_rt::spawn_on(node, accept_loop(listener)));
        }
        for l in loops {
            if let Err(e) = l.await {
                return Err(std::io::Error::other(e.to_string()));
            }
        }
        Ok::<(), std::io::Error>(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("http: {e}");
            ExitCode::FAILURE
        }
    }
}
