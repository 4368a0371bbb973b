//! Shared by the HTTP tests: a server run as a child process (the test
//! binary itself, re-executed) and a hyper client on numa_rt.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::{Request, StatusCode};
use numa_rt::hyper::TokioIo;

/// Environment variable that turns the test binary into the server.
pub const CHILD_ARGS: &str = "NUMA_RT_HTTP_TEST_CHILD_ARGS";

/// The options the child server runs with, when this process is one.
pub fn child_args() -> Option<Vec<String>> {
    std::env::var(CHILD_ARGS)
        .ok()
        .map(|a| a.split_whitespace().map(String::from).collect())
}

/// A server process and the address it listens on.
pub struct ServerProcess {
    pub child: Child,
    pub addr: SocketAddr,
    pub output: Arc<Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Re-runs this test binary as a server with `args` and `env`, and waits
    /// for its "listening on http://ADDR" line.
    pub fn start(args: &str, env: &[(&str, &str)]) -> ServerProcess {
        let exe = std::env::current_exe().unwrap();
        let mut cmd = Command::new(exe);
        cmd.env(CHILD_ARGS, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let output = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let lines = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let addr = line
                    .split("listening on http://")
                    .nth(1)
                    .map(|rest| rest.split_whitespace().next().unwrap_or("").to_string());
                lines.lock().unwrap().push(line);
                if let Some(addr) = addr {
                    let _ = tx.send(addr);
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a.parse().unwrap(),
            Err(e) => {
                let _ = child.kill();
                panic!("server did not start: {e}");
            }
        };
        ServerProcess {
            child,
            addr,
            output,
        }
    }

    /// Sends `signo` to the server.
    pub fn signal(&self, signo: libc::c_int) {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill with the pid of our own child process.
        assert_eq!(unsafe { libc::kill(pid, signo) }, 0);
    }

    /// Waits up to `limit` for the server to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let start = std::time::Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A runtime for the client side.
pub fn client_runtime() -> numa_rt::Runtime {
    numa_rt::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// An HTTP/1.1 connection made with hyper's client over numa_rt's TCP.
pub struct Client {
    sender: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    addr: SocketAddr,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> std::io::Result<Client> {
        let stream = numa_rt::net::TcpStream::connect(addr).await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        drop(numa_rt::spawn(async move {
            let _ = conn.await;
        }));
        Ok(Client { sender, addr })
    }

    /// GET `path`: the status and the body as text.
    pub async fn get(&mut self, path: &str) -> hyper::Result<(StatusCode, String)> {
        let req = Request::get(path)
            .header("host", self.addr.to_string())
            .body(Empty::new())
            .unwrap();
        // hyper's client connection takes a poll to be ready again after
        // a response: sending before that fails with "not ready".
        self.sender.ready().await?;
        let res = self.sender.send_request(req).await?;
        let status = res.status();
        let body = res.into_body().collect().await?.to_bytes();
        Ok((status, String::from_utf8(body.to_vec()).unwrap()))
    }
}
