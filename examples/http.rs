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
use numa_rt::runtime::Builder;

/// Command-line options.
pub(crate) struct Args {
    addr: String,
    workers: Option<usize>,
}

/// Parses the options after the program name.
pub(crate) fn parse_args(argv: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        addr: "127.0.0.1:8080".to_string(),
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
                return Err("usage: http [--addr HOST:PORT] [--workers N]".into());
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(args)
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
pub(crate) fn run(args: Args) -> ExitCode {
    let mut builder = Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = args.workers {
        builder.worker_threads(n);
    }
    let rt = match builder.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("http: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        let listeners = TcpListener::bind_per_node(args.addr.clone()).await?;
        let handle = numa_rt::runtime::Handle::current();
        let topo = handle.topology();
        let nodes: Vec<String> = topo
            .cpu_nodes()
            .map(|n| format!("{} cpus {}", n.id(), n.cpus()))
            .collect();
        let local = listeners
            .first()
            .ok_or_else(|| std::io::Error::other("no node to listen on"))?
            .1
            .local_addr()?;
        println!(
            "http: listening on http://{local} | topology: {} node(s) [{}] | workers per node: {} | io: {:?}",
            nodes.len(),
            nodes.join("; "),
            args.workers
                .map_or_else(|| "one per CPU".to_string(), |n| n.to_string()),
            numa_rt::io::current_backend(),
        );
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
