//! A small storage engine that runs each query next to its data.
//!
//! Every NUMA node that holds memory gets a shard: a sorted index of keys
//! in a `NodeVec` placed on that node. A client task on each node issues
//! queries for the next node's shard as plain `numa_rt::spawn`s of a
//! `#[locality(shard)]` function: calling it resolves the shard's node, so
//! `spawn` queues each query there at once (no hop), and it looks its keys
//! up next to the shard. The example prints, per node, the share of query
//! polls that ran on that node (a poll by another node that stole the
//! query counts against it), and ends with one line:
//! `locality: polled_on_target=<fraction> hops=<n>`.
//!
//! Run on the real topology, or emulate two nodes on a one-node machine:
//!
//! ```text
//! cargo run --release --example locality
//! NUMA_RT_TOPOLOGY=2x1 cargo run --release --example locality
//! ```

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use numa_rt::alloc::NodeVec;
use numa_rt::locality::{self, Placement, PlacementError, Strict, Target, Targets};
use numa_rt::topology::Topology;
use numa_rt::NodeId;

/// Keys per shard: 2 Mi keys of 8 bytes = 16 MiB per node.
const KEYS_PER_SHARD: u64 = 2 << 20;
/// Queries in all, spread evenly over the shards.
const QUERIES: u64 = 4_000;
/// Lookups per query, in batches of `BATCH` (one poll each).
const LOOKUPS: u64 = 1024;
const BATCH: u64 = 256;

/// One node's part of the data.
struct Shard {
    index: NodeVec<u64>,
    /// Where placement puts work on this shard (for memory on a CPU-less
    /// node: its best initiator).
    home: NodeId,
    polls: AtomicU64,
    polls_on_home: AtomicU64,
}

impl Target for Shard {
    fn add_to(&self, targets: &mut Targets, topology: &Topology) -> Result<(), PlacementError> {
        self.index.add_to(targets, topology)
    }
}

impl Shard {
    fn build(node: NodeId, topology: &Topology) -> Result<Shard, Box<dyn std::error::Error>> {
        let mut index = NodeVec::with_capacity_on(node, KEYS_PER_SHARD as usize)?;
        for k in 0..KEYS_PER_SHARD {
            // Every third number is a key, so about a third of lookups hit.
            index.push(k * 3);
        }
        let Placement { home, .. } = index.placement(topology)?;
        Ok(Shard {
            index,
            home,
            polls: AtomicU64::new(0),
            polls_on_home: AtomicU64::new(0),
        })
    }

    fn count_poll(&self) {
        self.polls.fetch_add(1, Relaxed);
        if numa_rt::task::current_node() == Some(self.home) {
            self.polls_on_home.fetch_add(1, Relaxed);
        }
    }
}

/// Looks `LOOKUPS` keys up in `shard`, next to its memory.
#[numa_rt::locality(shard)]
async fn query(shard: Arc<Shard>, seed: u64) -> u64 {
    let mut hits = 0;
    let mut key = seed;
    for _ in 0..LOOKUPS / BATCH {
        shard.count_poll();
        for _ in 0..BATCH {
            key = key
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let probe = (key >> 16) % (KEYS_PER_SHARD * 3);
            hits += u64::from(shard.index.binary_search(&probe).is_ok());
        }
        numa_rt::task::yield_now().await;
    }
    hits
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("locality: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let rt = numa_rt::Runtime::new()?;
    let topology = rt.handle().topology().clone();
    let start = Instant::now();
    let shards: Vec<Arc<Shard>> = topology
        .nodes()
        .iter()
        .filter(|n| n.memory_bytes() > 0)
        .map(|n| Shard::build(n.id(), &topology).map(Arc::new))
        .collect::<Result<_, _>>()?;
    if shards.is_empty() {
        return Err("no node of this topology holds memory".into());
    }
    println!(
        "{} shards of {} MiB on nodes {}",
        shards.len(),
        (KEYS_PER_SHARD * 8) >> 20,
        shards
            .iter()
            .map(|s| s.index.node().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );

    // One client task per shard node (strict: it stays there) issues
    // queries for the next shard; each is spawned straight onto the node
    // placement chose for that shard.
    let shards = Arc::new(shards);
    let per_client = QUERIES / shards.len() as u64;
    let hits = rt.block_on(async {
        let clients: Vec<_> = (0..shards.len())
            .map(|c| {
                let shards = shards.clone();
                numa_rt::spawn_on(Strict(shards[c].home), async move {
                    let target = shards[(c + 1) % shards.len()].clone();
                    let queries: Vec<_> = (0..per_client)
                        .map(|q| numa_rt::spawn(query(target.clone(), q * 7 + c as u64)))
                        .collect();
                    let mut hits = 0;
                    for q in queries {
                        hits += q.await?;
                    }
                    Ok::<u64, numa_rt::task::JoinError>(hits)
                })
            })
            .collect();
        let mut hits = 0;
        for c in clients {
            hits += c.await??;
        }
        Ok::<u64, numa_rt::task::JoinError>(hits)
    })?;

    for shard in shards.iter() {
        let polls = shard.polls.load(Relaxed);
        let on = shard.polls_on_home.load(Relaxed);
        println!(
            "node {} (data) -> {} (runs): {polls} polls, {:.4} on target",
            shard.index.node(),
            shard.home,
            on as f64 / polls.max(1) as f64
        );
    }
    let m = locality::metrics();
    println!(
        "{} queries, {hits} hits, {:.2} s; refused hops {}",
        per_client * shards.len() as u64,
        start.elapsed().as_secs_f64(),
        m.refused_hops
    );
    println!(
        "locality: polled_on_target={:.4} hops={}",
        m.polled_on_target_fraction(),
        m.hops
    );
    Ok(())
}
