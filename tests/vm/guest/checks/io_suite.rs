//! numa_rt's I/O on each driver, from every node: TCP echo over loopback
//! and a file round trip (on the NVMe disk when the machine has one) from
//! tasks pinned (`Strict`) to each node, and timers. The same suite
//! runs three times (see `CHECKS`): plainly (io_uring), with
//! `NUMA_RT_IO=epoll`, and under the seccomp filter refusing io_uring
//! (epoll chosen automatically).

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use numa_rt::fs;
use numa_rt::io::{current_backend, Backend};
use numa_rt::locality::Strict;
use numa_rt::net::{TcpListener, TcpStream};
use numa_rt::runtime::Builder;
use numa_rt::time::{sleep, timeout};
use numa_rt::NodeId;

use crate::expect::Machine;
use crate::report::Outcome;
use crate::sys;

/// Echo rounds per client, and bytes per round.
const ROUNDS: usize = 32;
const MESSAGE: usize = 1024;
/// Longest the whole suite may take.
const SUITE_LIMIT: Duration = Duration::from_secs(40);

/// The suite in a plain process: io_uring must be the backend.
pub fn on_io_uring(m: &Machine) -> Outcome {
    suite(m, Backend::Uring)
}

/// The suite with `NUMA_RT_IO=epoll`: the forced fallback.
pub fn on_epoll_forced(m: &Machine) -> Outcome {
    suite(m, Backend::Epoll)
}

/// The suite with `io_uring_setup` refused: epoll chosen automatically.
pub fn on_epoll_auto(m: &Machine) -> Outcome {
    suite(m, Backend::Epoll)
}

fn suite(m: &Machine, want: Backend) -> Outcome {
    let rt = match Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return Outcome::Fail(format!("cannot build the runtime: {e}")),
    };
    let nodes: Vec<(u32, Vec<u32>)> = m
        .nodes
        .iter()
        .filter(|n| !n.cpus.is_empty())
        .map(|n| (n.id, n.cpus.clone()))
        .collect();
    let dir = m
        .devices
        .iter()
        .find_map(|d| d.mount.clone())
        .map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    let result = rt.block_on(async move {
        match timeout(SUITE_LIMIT, run(nodes, dir, want)).await {
            Ok(r) => r,
            Err(_) => Err(format!("did not finish within {}s", SUITE_LIMIT.as_secs())),
        }
    });
    match result {
        Ok(summary) => Outcome::Pass(summary),
        Err(e) => Outcome::Fail(e),
    }
}

async fn run(nodes: Vec<(u32, Vec<u32>)>, dir: PathBuf, want: Backend) -> Result<String, String> {
    let backend = numa_rt::spawn(async { current_backend() })
        .await
        .map_err(|e| format!("backend probe task: {e}"))?;
    if backend != Some(want) {
        return Err(format!("backend is {backend:?}, want {want:?}"));
    }
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("bind 127.0.0.1:0: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("local_addr: {e}"))?;
    let clients = nodes.len();
    let server = numa_rt::spawn(async move {
        let mut echoes = Vec::new();
        for _ in 0..clients {
            let (stream, _) = listener.accept().await?;
            echoes.push(numa_rt::spawn(echo(stream)));
        }
        for e in echoes {
            e.await.map_err(io::Error::other)??;
        }
        Ok::<_, io::Error>(())
    });
    let mut handles = Vec::new();
    for (node, cpus) in &nodes {
        let cpus = cpus.clone();
        let node = *node;
        let client = numa_rt::spawn_on(Strict(NodeId::new(node)), async move {
            client(addr, node, cpus).await
        });
        handles.push((node, client));
    }
    for (node, handle) in handles {
        handle
            .await
            .map_err(|e| format!("client on node {node}: {e}"))?
            .map_err(|e| format!("client on node {node}: {e}"))?;
    }
    let mut files = Vec::new();
    for (node, _) in &nodes {
        let node = *node;
        let path = dir.join(format!("numa-vm-{want:?}-node{node}.bin"));
        files.push((
            node,
            numa_rt::spawn_on(Strict(NodeId::new(node)), file_round_trip(path, node)),
        ));
    }
    for (node, handle) in files {
        handle
            .await
            .map_err(|e| format!("file task on node {node}: {e}"))?
            .map_err(|e| format!("file on node {node}: {e}"))?;
    }
    server
        .await
        .map_err(|e| format!("server task: {e}"))?
        .map_err(|e| format!("server: {e}"))?;

    let asked = Duration::from_millis(20);
    let start = Instant::now();
    sleep(asked).await;
    let slept = start.elapsed();
    if slept < asked {
        return Err(format!("sleep({asked:?}) returned after {slept:?}"));
    }
    let start = Instant::now();
    if timeout(Duration::from_millis(10), sleep(Duration::from_secs(5)))
        .await
        .is_ok()
    {
        return Err("timeout(10ms, sleep(5s)) did not time out".into());
    }
    let waited = start.elapsed();
    if waited > Duration::from_secs(3) {
        return Err(format!("timeout(10ms) fired after {waited:?}"));
    }
    Ok(format!(
        "{want:?}: {clients} clients (one per node) x {ROUNDS} x {MESSAGE} B echoed intact \
         on their nodes; a file per node in {} written and read back; sleep {slept:.1?}, \
         timeout after {waited:.1?}",
        dir.display()
    ))
}

/// Writes 256 KiB to `path`, reads it back, compares, removes the file.
async fn file_round_trip(path: PathBuf, node: u32) -> Result<(), String> {
    let name = |p: &Path| p.display().to_string();
    let data: Vec<u8> = (0..256 * 1024)
        .map(|i| (i * 13 + node as usize) as u8)
        .collect();
    fs::write(&path, &data)
        .await
        .map_err(|e| format!("write {}: {e}", name(&path)))?;
    let back = fs::read(&path)
        .await
        .map_err(|e| format!("read {}: {e}", name(&path)))?;
    if back != data {
        return Err(format!(
            "{}: read back {} bytes that differ",
            name(&path),
            back.len()
        ));
    }
    fs::remove_file(&path)
        .await
        .map_err(|e| format!("remove {}: {e}", name(&path)))?;
    let (_, on) = sys::getcpu().map_err(|e| format!("getcpu: {e}"))?;
    if on != node {
        return Err(format!("file task for node {node} ended on node {on}"));
    }
    Ok(())
}

/// Echoes until the peer closes. (`read_owned` fills a buffer's spare
/// capacity.)
async fn echo(stream: TcpStream) -> io::Result<()> {
    let mut buf = Vec::with_capacity(4096);
    loop {
        let (n, filled) = stream.read_owned(buf).await;
        if n? == 0 {
            return Ok(());
        }
        let (r, mut back) = stream.write_all_owned(filled).await;
        r?;
        back.clear();
        buf = back;
    }
}

/// Sends `ROUNDS` messages and checks each comes back intact, on `node`.
async fn client(addr: std::net::SocketAddr, node: u32, cpus: Vec<u32>) -> Result<(), String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    for round in 0..ROUNDS {
        let message: Vec<u8> = (0..MESSAGE)
            .map(|i| (i * 31 + round * 7 + node as usize) as u8)
            .collect();
        let (r, _) = stream.write_all_owned(message.clone()).await;
        r.map_err(|e| format!("write: {e}"))?;
        let mut got = Vec::with_capacity(MESSAGE);
        while got.len() < MESSAGE {
            let (n, buf) = stream
                .read_owned(Vec::with_capacity(MESSAGE - got.len()))
                .await;
            if n.map_err(|e| format!("read: {e}"))? == 0 {
                return Err(format!("peer closed after {} bytes", got.len()));
            }
            got.extend_from_slice(&buf);
        }
        if got != message {
            return Err(format!("round {round}: echoed bytes differ"));
        }
        let (cpu, on) = sys::getcpu().map_err(|e| format!("getcpu: {e}"))?;
        if on != node || !cpus.contains(&cpu) {
            return Err(format!("round {round} ran on CPU {cpu} (node {on})"));
        }
    }
    Ok(())
}
