//! TCP echo server on numa_rt: one listener per NUMA node (SO_REUSEPORT),
//! each node accepting and serving its own connections with owned-buffer
//! reads and writes (on io_uring a multishot receive per connection and
//! sends tried at once; on epoll system calls and readiness).
//!
//! Run: `cargo run --release --example echo -- --addr 127.0.0.1:7000 --workers 1`
//!
//! Options: `--addr HOST:PORT` (default 127.0.0.1:7000), `--workers N`
//! (worker threads per node; default: one per CPU). `NUMA_RT_IO=epoll`
//! forces the epoll driver, `NUMA_RT_TOPOLOGY=2x1` emulates two nodes.

use std::process::ExitCode;

use numa_rt::net::{TcpListener, TcpStream};

#[path = "common/numa_server.rs"]
mod numa_server;
#[path = "common/server_args.rs"]
mod server_args;

use server_args::ServerArgs;

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
    let args = match ServerArgs::parse("echo", "127.0.0.1:7000", std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("echo: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match numa_server::build_runtime("echo", &args) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let result = rt.block_on(async move {
        let listeners = TcpListener::bind_per_node(args.addr.clone()).await?;
        numa_server::print_listening("echo", "", &listeners, &args)?;
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
