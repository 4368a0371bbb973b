//! The tokio echo server `scripts/bench-echo` compares numa_rt's
//! `examples/echo.rs` against: tokio's multi-thread runtime, one task per
//! connection, `AsyncReadExt::read` into a 4 KiB buffer and `write_all`
//! back (what a tokio user writes).
//!
//! Run: `cargo run --release --example tokio_echo -- --addr 127.0.0.1:7001 --workers 1`

use std::process::ExitCode;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[path = "../../examples/common/server_args.rs"]
mod server_args;
#[path = "common/tokio_runtime.rs"]
mod tokio_runtime;

use server_args::ServerArgs;

async fn serve(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; 4096];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if stream.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

fn main() -> ExitCode {
    let args = match ServerArgs::parse("tokio_echo", "127.0.0.1:7001", std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tokio_echo: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio_runtime::build_runtime("tokio_echo", args.workers) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let result = rt.block_on(async move {
        let listener = TcpListener::bind(&args.addr).await?;
        println!("tokio_echo: listening on {}", listener.local_addr()?);
        let accept = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => drop(tokio::spawn(serve(stream))),
                    Err(e) => eprintln!("tokio_echo: accept: {e}"),
                }
            }
        });
        let _ = accept.await;
        Ok::<(), std::io::Error>(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokio_echo: {e}");
            ExitCode::FAILURE
        }
    }
}
