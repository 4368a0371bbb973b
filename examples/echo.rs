//! TCP echo server on numa_rt: one listener per NUMA node (SO_REUSEPORT),
//! each node accepting and serving its own connections with owned-buffer
//! reads and writes (ring operations on io_uring, readiness on epoll).
//!
//! Run: `cargo run --release --example echo -- --addr 127.0.0.1:7000 --workers 1`
//!
//! Options: `--addr HOST:PORT` (default 127.0.0.1:7000), `--workers N`
//! (worker threads per node; default: one per CPU). `NUMA_RT_IO=epoll`
//! forces the epoll driver, `NUMA_RT_TOPOLOGY=2x1` emulates two nodes.

use std::process::ExitCode;

use numa_rt::net::{TcpListener, TcpStream};
use numa_rt::runtime::Builder;

struct Args {
    addr: String,
    workers: Option<usize>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        addr: "127.0.0.1:7000".to_string(),
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
                return Err("usage: echo [--addr HOST:PORT] [--workers N]".into());
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(args)
}

async fn serve(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::with_capacity(4096);
    loop {
        buf.clear();
        let (r, b) = stream.read_owned(buf).await;
        buf = b;
        match r {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let (r, b) = stream.write_all_owned(buf).await;
        buf = b;
        if r.is_err() {
            return;
        }
    }
}

async fn accept_loop(listener: TcpListener) {
    loop {
        match listener.accept().await {
            // Spawned from this node's accept loop: the connection's home
            // is this node.
            Ok((stream, _)) => drop(numa_rt::spawn(serve(stream))),
            Err(e) => eprintln!("echo: accept: {e}"),
        }
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("echo: {e}");
            return ExitCode::from(2);
        }
    };
    let mut builder = Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = args.workers {
        builder.worker_threads(n);
    }
    let rt = match builder.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("echo: {e}");
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
        let local = listeners[0].1.local_addr()?;
        println!(
            "echo: listening on {local} | topology: {} node(s) [{}] | workers per node: {} | io: {:?}",
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
            let _ = l.await;
        }
        Ok::<(), std::io::Error>(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo: {e}");
            ExitCode::FAILURE
        }
    }
}
