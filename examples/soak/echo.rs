//! TCP echo: the server, and clients that check every byte comes back.
//!
//! A client slot opens connection after connection until the deadline.
//! Each connection is either ping-pong (write a chunk, read its echo,
//! verify, repeat) or split (a writer task, on any node, streams up to
//! 1 MiB through one half while the reader verifies the echo on the
//! other). It ends in one of three ways: gracefully (shut down the write
//! side, read EOF), dropped with an exchange in flight, or reset
//! (`SO_LINGER` 0). Some connections also cancel a read in flight (a
//! timeout while no data is due) and go on using the socket; some drop
//! an owned-buffer read in flight just before they close.

use std::io;
use std::net::Shutdown;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use numa_rt::net::{OwnedReadHalf, OwnedWriteHalf, TcpListener, TcpStream};
use numa_rt::time::{sleep, timeout, Instant};
use tokio::io::AsyncReadExt;

use crate::pattern::{fill, mismatch, Rng};
use crate::Soak;

/// An exchange or a connect taking longer than this is a stall (a lost
/// wake-up or a lost completion): a failure.
pub const STALL: Duration = Duration::from_secs(30);

/// Largest chunk of one ping-pong exchange (below the socket buffers, so
/// writing it all before reading cannot deadlock).
const MAX_EXCHANGE: usize = 32 * 1024;

/// Largest write of the split writer, and the read buffer size.
const MAX_CHUNK: usize = 64 * 1024;

// ----- server -----

/// Accepts connections on `listener` and serves each in its own task
/// (spawned here, so on this node).
pub async fn accept_loop(soak: Arc<Soak>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                soak.ledger.accepted.inc();
                soak.ledger.serving.up();
                drop(numa_rt::spawn(serve(soak.clone(), stream)));
            }
            // A client gave up before we took its connection.
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
            Err(e) => {
                soak.ledger.fail(format!("accept: {e}"));
                sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Counts a server connection task as gone when it is dropped, however it
/// ends.
struct Serving(Arc<Soak>);

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.ledger.serving.down();
    }
}

/// Echoes until the client closes or resets.
async fn serve(soak: Arc<Soak>, stream: TcpStream) {
    let _serving = Serving(soak.clone());
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::with_capacity(MAX_CHUNK);
    loop {
        buf.clear();
        let (r, b) = stream.read_owned(buf).await;
        buf = b;
        let n = match r {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Self-check (`--inject-corruption`): flip one bit, once.
        if soak.corrupt_next.swap(false, Ordering::Relaxed) {
            buf[0] ^= 0x20;
        }
        let (r, b) = stream.write_all_owned(buf).await;
        buf = b;
        if r.is_err() {
            return;
        }
        soak.ledger.echoed.add(n as u64);
    }
}

// ----- clients -----

/// One client slot: connections one after another until `deadline`.
pub async fn client(soak: Arc<Soak>, slot: u64, deadline: Instant) {
    let mut rng = Rng::new(soak.seed, slot);
    // Spread the first connects over 200 ms (a burst of thousands of SYNs
    // would overflow the listen backlog and wait for retransmits).
    sleep(Duration::from_millis(rng.below(200))).await;
    while Instant::now() < deadline {
        let id = soak.next_conn.fetch_add(1, Ordering::Relaxed);
        let Some(stream) = connect(&soak).await else {
            return;
        };
        soak.ledger.connections.inc();
        if soak.leak.load(Ordering::Relaxed) {
            // Self-check (`--inject-leak`): 4 KiB never freed.
            std::mem::forget(Vec::<u8>::with_capacity(4096));
        }
        let _ = stream.set_nodelay(true);
        let conn = Conn {
            soak: &soak,
            id,
            key: rng.next_u64(),
        };
        if rng.chance(20) {
            conn.split(stream, &mut rng).await;
        } else {
            conn.ping_pong(stream, &mut rng).await;
        }
    }
}

/// Connects to the soak's server; `None` after recording why it could not.
async fn connect(soak: &Soak) -> Option<TcpStream> {
    for _ in 0..100 {
        match timeout(STALL, TcpStream::connect(soak.addr)).await {
            Ok(Ok(s)) => return Some(s),
            // Ephemeral ports all in TIME_WAIT: wait for some to free.
            Ok(Err(e)) if e.kind() == io::ErrorKind::AddrNotAvailable => {
                soak.ledger.no_port.inc();
                sleep(Duration::from_millis(20)).await;
            }
            Ok(Err(e)) => {
                soak.ledger.fail(format!("connect: {e}"));
                return None;
            }
            Err(_) => {
                soak.ledger
                    .fail(format!("connect: no answer within {STALL:?}"));
                return None;
            }
        }
    }
    soak.ledger
        .fail("connect: no local port free after 100 tries".into());
    None
}

/// One client connection.
struct Conn<'a> {
    soak: &'a Soak,
    id: u64,
    /// The key of the byte pattern sent on this connection.
    key: u64,
}

impl Conn<'_> {
    /// Records that the echo of `len` bytes at `offset` did not come back.
    fn lost(&self, offset: u64, len: u64, why: impl std::fmt::Display) {
        self.soak.ledger.lost.add(len);
        self.soak.ledger.fail(format!(
            "connection {}: {len} byte(s) at offset {offset}: {why}",
            self.id
        ));
    }

    /// Exchanges, then ends the connection one of three ways.
    async fn ping_pong(&self, mut stream: TcpStream, rng: &mut Rng) {
        let ledger = &self.soak.ledger;
        let exchanges = rng.range(1, 24);
        let cancel_at = rng.chance(10).then(|| rng.below(exchanges));
        let mut offset = 0u64;
        let mut rbuf = Vec::with_capacity(MAX_CHUNK);
        for i in 0..exchanges {
            if cancel_at == Some(i) && !self.cancel_a_read(&mut stream, rng).await {
                return;
            }
            let len = rng.size(MAX_EXCHANGE);
            let r = timeout(STALL, self.exchange(&stream, offset, len, &mut rbuf)).await;
            match r {
                Ok(Ok(())) => {
                    ledger.bytes.add(len as u64);
                    offset += len as u64;
                }
                Ok(Err(e)) => return self.lost(offset, len as u64, e),
                Err(_) => return self.lost(offset, len as u64, format!("no echo in {STALL:?}")),
            }
        }
        match rng.below(100) {
            0..=49 => {
                if let Err(e) = stream.shutdown_std(Shutdown::Write) {
                    return self.lost(offset, 0, format!("shutdown: {e}"));
                }
                self.expect_eof(&stream, offset, rbuf).await;
                ledger.graceful.inc();
            }
            50..=74 => {
                // Drop with a chunk on its way (its echo is not awaited).
                let mut buf = Vec::new();
                fill(&mut buf, self.key, offset, rng.size(MAX_EXCHANGE));
                let _ = timeout(STALL, stream.write_all_owned(buf)).await;
                if rng.chance(50) {
                    // Abandon an owned read in flight (on io_uring the
                    // driver keeps the buffer and cancels the receive).
                    let wait = Duration::from_micros(rng.below(500));
                    let rbuf = Vec::with_capacity(MAX_CHUNK);
                    if timeout(wait, stream.read_owned(rbuf)).await.is_err() {
                        ledger.abandoned_reads.inc();
                    }
                }
                ledger.dropped.inc();
            }
            _ => {
                if rng.chance(50) {
                    let mut buf = Vec::new();
                    fill(&mut buf, self.key, offset, rng.size(MAX_EXCHANGE));
                    let _ = timeout(STALL, stream.write_all_owned(buf)).await;
                }
                if let Err(e) = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO)) {
                    return self.lost(offset, 0, format!("SO_LINGER: {e}"));
                }
                ledger.resets.inc();
            }
        }
    }

    /// Writes `len` pattern bytes at `offset` and reads their echo back,
    /// verifying each piece as it arrives.
    async fn exchange(
        &self,
        stream: &TcpStream,
        offset: u64,
        len: usize,
        rbuf: &mut Vec<u8>,
    ) -> io::Result<()> {
        let mut out = Vec::with_capacity(len);
        fill(&mut out, self.key, offset, len);
        let (r, _) = stream.write_all_owned(out).await;
        r?;
        let mut got = 0usize;
        while got < len {
            let mut buf = std::mem::take(rbuf);
            buf.clear();
            let (r, b) = stream.read_owned(buf).await;
            *rbuf = b;
            let n = r?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("connection closed after {got} byte(s) of the echo"),
                ));
            }
            if got + n > len {
                return Err(invalid(format!(
                    "{} byte(s) more than were sent",
                    got + n - len
                )));
            }
            let at = offset + got as u64;
            if let Some(i) = mismatch(&rbuf[..n], self.key, at) {
                return Err(invalid(format!("corrupt echo at offset {}", at + i as u64)));
            }
            got += n;
        }
        Ok(())
    }

    /// Reads after a graceful shutdown: the server must close with nothing
    /// more to say.
    async fn expect_eof(&self, stream: &TcpStream, offset: u64, mut rbuf: Vec<u8>) {
        rbuf.clear();
        match timeout(STALL, stream.read_owned(rbuf)).await {
            Ok((Ok(0), _)) => {}
            Ok((Ok(n), _)) => self.lost(offset, 0, format!("{n} byte(s) after the last echo")),
            // A reset instead of a FIN would also be a bug of ours: the
            // server read everything before closing.
            Ok((Err(e), _)) => self.lost(offset, 0, format!("at end of stream: {e}")),
            Err(_) => self.lost(offset, 0, format!("no end of stream in {STALL:?}")),
        }
    }

    /// Starts a read while no data is due and cancels it with a timeout;
    /// the socket must go on working (the next exchange checks it).
    /// `false` when something arrived that should not have.
    ///
    /// This goes through tokio's `AsyncRead` (cancel-safe: a dropped read
    /// has taken no bytes). An owned-buffer read is not: on io_uring a
    /// receive dropped in flight may still complete with data nobody gets,
    /// so owned reads are only abandoned on connections about to close.
    async fn cancel_a_read(&self, stream: &mut TcpStream, rng: &mut Rng) -> bool {
        let wait = Duration::from_micros(rng.below(2000));
        let mut buf = [0u8; 64];
        match timeout(wait, stream.read(&mut buf)).await {
            Err(_) => {
                self.soak.ledger.cancelled_reads.inc();
                true
            }
            Ok(r) => {
                self.lost(0, 0, format!("a read with no data due returned {r:?}"));
                false
            }
        }
    }

    /// A writer task (on a random node) streams through one half while
    /// this task reads and verifies the echo through the other.
    async fn split(&self, stream: TcpStream, rng: &mut Rng) {
        let ledger = &self.soak.ledger;
        let total = rng.range(16 * 1024, 1024 * 1024);
        let (reader, writer) = stream.into_split();
        let node = self.soak.nodes[rng.below(self.soak.nodes.len() as u64) as usize];
        let key = self.key;
        let wrng = Rng::new(rng.next_u64(), self.id);
        let write = numa_rt::spawn_on(node, write_stream(writer, key, total, wrng));
        let read = timeout(STALL, self.read_stream(&reader, total)).await;
        if !matches!(read, Ok(Ok(()))) {
            // The writer may be stuck on a full socket nobody reads.
            write.abort();
        }
        let wrote = timeout(STALL, write).await;
        match (read, wrote) {
            (Ok(Ok(())), Ok(Ok(Ok(())))) => {
                ledger.bytes.add(total);
                ledger.split.inc();
            }
            (Ok(Err(e)), _) => self.lost(0, total, format!("split reader: {e}")),
            (Err(_), _) => self.lost(0, total, format!("split reader: stalled {STALL:?}")),
            (_, Ok(Ok(Err(e)))) => self.lost(0, total, format!("split writer: {e}")),
            (_, Ok(Err(e))) => self.lost(0, total, format!("split writer task: {e}")),
            (_, Err(_)) => self.lost(0, total, format!("split writer: stalled {STALL:?}")),
        }
    }

    /// Reads `total` bytes of echo, then end of stream.
    async fn read_stream(&self, reader: &OwnedReadHalf, total: u64) -> io::Result<()> {
        let mut got = 0u64;
        let mut buf = Vec::with_capacity(MAX_CHUNK);
        loop {
            buf.clear();
            let (r, b) = reader.read_owned(buf).await;
            buf = b;
            let n = r?;
            if n == 0 {
                break;
            }
            if let Some(i) = mismatch(&buf[..n], self.key, got) {
                return Err(invalid(format!(
                    "corrupt echo at offset {}",
                    got + i as u64
                )));
            }
            got += n as u64;
        }
        if got == total {
            Ok(())
        } else {
            Err(invalid(format!(
                "end of stream after {got} of {total} bytes"
            )))
        }
    }
}

/// Streams `total` pattern bytes in random pieces, then shuts down the
/// write side (dropping the half does it).
async fn write_stream(
    writer: OwnedWriteHalf,
    key: u64,
    total: u64,
    mut rng: Rng,
) -> io::Result<()> {
    let mut offset = 0u64;
    let mut buf = Vec::with_capacity(MAX_CHUNK);
    while offset < total {
        let len = (rng.size(MAX_CHUNK) as u64).min(total - offset);
        buf.clear();
        fill(&mut buf, key, offset, len as usize);
        while !buf.is_empty() {
            let (r, b) = writer.write_owned(buf).await;
            buf = b;
            match r? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => drop(buf.drain(..n)),
            }
        }
        offset += len;
    }
    Ok(())
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}
