//! examples/axum.rs, run as a server process: its routes answered to a real
//! HTTP client, and graceful shutdown on SIGTERM and SIGINT with a slow
//! request in flight. (No libtest harness: the binary is also the server,
//! re-executed.)

mod http_common;

#[allow(dead_code)]
#[path = "../examples/axum.rs"]
mod example;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use http_common::{client_runtime, Client, ServerProcess};

fn routes() {
    let server = ServerProcess::start("--addr 127.0.0.1:0 --workers 1", &[]);
    client_runtime().block_on(async {
        let mut c = Client::connect(server.addr).await.unwrap();
        let (status, body) = c.get("/users/42").await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(body, r#"{"id":42,"name":"user-42"}"#);
        let (status, body) = c.get("/users/7").await.unwrap();
        assert_eq!(
            (status.as_u16(), body.as_str()),
            (200, r#"{"id":7,"name":"user-7"}"#)
        );
        // A path parameter that is not a number, and an unknown route.
        let (status, _) = c.get("/users/seven").await.unwrap();
        assert_eq!(status, 400);
        let (status, _) = c.get("/nowhere").await.unwrap();
        assert_eq!(status, 404);
        let (status, body) = c.get("/slow/5").await.unwrap();
        assert_eq!((status.as_u16(), body.as_str()), (200, "slept 5 ms"));
    });
}

/// A signal during a slow request: the request completes, the server
/// refuses new connections and exits 0 within 2 s.
fn graceful_shutdown(signo: libc::c_int) {
    let mut server = ServerProcess::start("--addr 127.0.0.1:0", &[]);
    let addr = server.addr;
    let sent = client_runtime().block_on(async {
        let mut c = Client::connect(addr).await.unwrap();
        assert_eq!(c.get("/users/1").await.unwrap().0, 200);
        let slow = numa_rt::spawn(async move { c.get("/slow/700").await });
        // Let the slow request reach the server, then signal it.
        numa_rt::time::sleep(Duration::from_millis(200)).await;
        let sent = Instant::now();
        server.signal(signo);
        let (status, body) = slow.await.unwrap().unwrap();
        assert_eq!((status.as_u16(), body.as_str()), (200, "slept 700 ms"));
        sent
    });
    let status = server
        .wait_exit(Duration::from_secs(2))
        .expect("server still running 2 s after the signal");
    assert!(status.success(), "server exited with {status}");
    assert!(sent.elapsed() < Duration::from_secs(2));
    let out = server.output.lock().unwrap().join("\n");
    assert!(out.contains("finishing in-flight requests"), "{out}");
    // Nothing listens any more.
    assert!(std::net::TcpStream::connect(addr).is_err());
}

fn main() -> ExitCode {
    if let Some(args) = http_common::child_args() {
        return match example::parse_args(args) {
            Ok(args) => example::run(args),
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        };
    }
    let tests: [(&str, fn()); 3] = [
        ("routes", routes),
        ("graceful_shutdown_on_sigterm", || {
            graceful_shutdown(libc::SIGTERM)
        }),
        ("graceful_shutdown_on_sigint", || {
            graceful_shutdown(libc::SIGINT)
        }),
    ];
    for (name, test) in tests {
        test();
        println!("test {name} ... ok");
    }
    ExitCode::SUCCESS
}
