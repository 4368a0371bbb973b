//! `#[locality]`, `uses!` and `#[derive(Target)]` through the facade, on a
//! synthetic two-node topology (two emulated nodes of one CPU each).

use numa_rt::alloc::NodeVec;
use numa_rt::locality::{self, Target};
use numa_rt::task::current_node;
use numa_rt::NodeId;

const N0: NodeId = NodeId::new(0);
const N1: NodeId = NodeId::new(1);

#[numa_rt::locality(data)]
async fn node_of(data: &NodeVec<u64>) -> Option<NodeId> {
    numa_rt::task::yield_now().await;
    current_node()
}

#[numa_rt::locality(a, b = 3)]
async fn weighted(a: &NodeVec<u64>, b: &NodeVec<u64>) -> Option<NodeId> {
    current_node()
}

#[numa_rt::locality(data, strict)]
async fn strict_sum(
    data: NodeVec<u64>,
) -> Result<(Option<NodeId>, u64), std::num::TryFromIntError> {
    let mut nodes = Vec::new();
    for _ in 0..50 {
        nodes.push(current_node());
        numa_rt::task::yield_now().await;
    }
    assert!(nodes.iter().all(|&n| n == current_node()));
    let total: u64 = data.iter().sum();
    let small: u32 = u32::try_from(total)?;
    Ok((current_node(), u64::from(small)))
}

#[derive(numa_rt::Target)]
struct Shard {
    index: NodeVec<u64>,
    #[target(weight = 4)]
    rows: NodeVec<u8>,
    #[target(skip)]
    #[allow(dead_code)]
    name: String,
}

struct Engine {
    shard: Shard,
}

impl Engine {
    #[numa_rt::locality(self)]
    async fn query(&self) -> Option<NodeId> {
        current_node()
    }
}

impl numa_rt::locality::Target for Engine {
    fn add_to(
        &self,
        targets: &mut numa_rt::locality::Targets,
        topology: &numa_rt::topology::Topology,
    ) -> Result<(), numa_rt::locality::PlacementError> {
        self.shard.add_to(targets, topology)
    }
}

fn vec_on(node: NodeId, values: &[u64]) -> NodeVec<u64> {
    let mut v = NodeVec::with_capacity_on(node, values.len()).unwrap();
    for &x in values {
        v.push(x);
    }
    v
}

#[numa_rt::test(flavor = "multi_thread", worker_threads = 1, topology = "2x1")]
async fn locality_functions_run_on_their_data() {
    let r = numa_rt::spawn_on(N0, async {
        let on1 = vec_on(N1, &[1, 2, 3]);
        let on0 = vec_on(N0, &[4]);
        let first = node_of(&on1).await;
        let back = node_of(&on0).await;
        let heavy = weighted(&on1, &on0).await;
        let strict = strict_sum(on1).await.unwrap();
        (first, back, heavy, strict)
    })
    .await
    .unwrap();
    assert_eq!(r, (Some(N1), Some(N0), Some(N0), (Some(N1), 6)));
}

#[numa_rt::test(flavor = "multi_thread", worker_threads = 1, topology = "2x1")]
async fn spawned_locality_futures_are_placed_by_their_targets() {
    let data = std::sync::Arc::new(vec_on(N1, &[7]));
    let mut handles = Vec::new();
    for _ in 0..20 {
        let data = data.clone();
        handles.push(numa_rt::spawn(async move { node_of(&data).await }));
    }
    for h in handles {
        assert_eq!(h.await.unwrap(), Some(N1));
    }
    let m = locality::metrics();
    assert!(m.polls_on_target > 0);
}

#[numa_rt::test(flavor = "multi_thread", worker_threads = 1, topology = "2x1")]
async fn derived_targets_and_methods() {
    let engine = Engine {
        shard: Shard {
            index: vec_on(N0, &[1]),
            rows: NodeVec::with_capacity_on(N1, 16).unwrap(),
            name: "s".into(),
        },
    };
    let topo = numa_rt::runtime::Handle::current().topology().clone();
    // The rows count four times: node 1.
    assert_eq!(engine.shard.placement(&topo).unwrap().home, N1);
    let node = numa_rt::spawn_on(N0, async move { engine.query().await })
        .await
        .unwrap();
    assert_eq!(node, Some(N1));
}

#[numa_rt::test(flavor = "multi_thread", worker_threads = 1, topology = "2x1")]
async fn uses_moves_mid_function() {
    let node = numa_rt::spawn_on(N0, async {
        let before = current_node();
        let data = vec_on(N1, &[1]);
        numa_rt::uses!(data);
        (before, current_node())
    })
    .await
    .unwrap();
    assert_eq!(node, (Some(N0), Some(N1)));
}

#[test]
fn under_another_executor_nothing_moves() {
    let data = vec_on(N0, &[5]);
    let before = locality::metrics().refused_hops;
    let rt = numa_rt::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert_eq!(rt.block_on(node_of(&data)), Some(N0));
    assert!(locality::metrics().refused_hops > before);
}
