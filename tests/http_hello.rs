//! examples/http.rs, run as a server process and asked by a real HTTP
//! client, on each I/O driver. (No libtest harness: the binary is also the
//! server, re-executed.)

mod http_common;

#[allow(dead_code)]
#[path = "../examples/http.rs"]
mod example;

use std::process::ExitCode;

use http_common::{client_runtime, Client, ServerProcess};

fn hello_world(io: &str) {
    let server = ServerProcess::start("--addr 127.0.0.1:0 --workers 1", &[("NUMA_RT_IO", io)]);
    let line = server.output.lock().unwrap().join("\n");
    assert!(
        line.contains("| topology: ") && line.contains("node(s)"),
        "{line}"
    );
    client_runtime().block_on(async {
        // Several requests on one keep-alive connection, and several
        // connections at once.
        let mut c = Client::connect(server.addr).await.unwrap();
        for _ in 0..20 {
            let (status, body) = c.get("/").await.unwrap();
            assert_eq!(status, 200);
            assert_eq!(body, "Hello, World!");
        }
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let addr = server.addr;
            tasks.push(numa_rt::spawn(async move {
                let mut c = Client::connect(addr).await.unwrap();
                c.get("/any/path").await.unwrap()
            }));
        }
        for t in tasks {
            let (status, body) = t.await.unwrap();
            assert_eq!((status.as_u16(), body.as_str()), (200, "Hello, World!"));
        }
    });
}

fn bad_arguments_are_refused() {
    for bad in [&["--workers", "0"][..], &["--workers", "x"], &["--bogus"]] {
        let r = example::parse_args(bad.iter().map(|s| s.to_string()));
        assert!(r.is_err(), "{bad:?} accepted");
    }
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
        ("hello_world_uring_or_fallback", || hello_world("auto")),
        ("hello_world_epoll", || hello_world("epoll")),
        ("bad_arguments_are_refused", bad_arguments_are_refused),
    ];
    for (name, test) in tests {
        test();
        println!("test {name} ... ok");
    }
    ExitCode::SUCCESS
}
