//! A spawned `#[locality]` future is placed when it is created: `spawn`
//! queues it on its targets' node, so it spends no hop getting there. The
//! hop counters are process-wide, so this binary holds a single test.

use numa_rt::locality;
use numa_rt::task::current_node;
use numa_rt::NodeId;

const N0: NodeId = NodeId::new(0);
const N1: NodeId = NodeId::new(1);

#[numa_rt::locality(node)]
async fn runs_on(node: NodeId, yields: u32) -> Vec<Option<NodeId>> {
    let mut seen = vec![current_node()];
    for _ in 0..yields {
        numa_rt::task::yield_now().await;
        seen.push(current_node());
    }
    seen
}

#[numa_rt::test(flavor = "multi_thread", worker_threads = 1, topology = "2x1")]
async fn spawned_locality_futures_start_on_their_node_without_a_hop() {
    let before = locality::metrics();
    // Spawned from a task on node 0 and from outside the workers (this
    // test's block_on), for both nodes.
    let from_node0 = numa_rt::spawn_on(N0, async {
        let mut all = Vec::new();
        for i in 0..50u32 {
            let target = if i % 2 == 0 { N1 } else { N0 };
            all.push((target, numa_rt::spawn(runs_on(target, 2)).await.unwrap()));
        }
        all
    })
    .await
    .unwrap();
    let mut all = from_node0;
    for i in 0..50u32 {
        let target = if i % 2 == 0 { N0 } else { N1 };
        all.push((target, numa_rt::spawn(runs_on(target, 2)).await.unwrap()));
    }
    for (target, seen) in &all {
        assert_eq!(seen, &vec![Some(*target); 3], "every poll on {target}");
    }
    let after = locality::metrics();
    assert_eq!(after.hops, before.hops, "a spawned call hopped");
    assert_eq!(after.refused_hops, before.refused_hops);
    assert_eq!(after.polls_off_target, before.polls_off_target, "{after:?}");
    assert_eq!(after.polls_on_target - before.polls_on_target, 300);

    // Awaited inside a task, the same function still moves its task.
    let moved = numa_rt::spawn_on(N0, async { runs_on(N1, 0).await })
        .await
        .unwrap();
    assert_eq!(moved, vec![Some(N1)]);
    assert_eq!(locality::metrics().hops, after.hops + 1);

    // A call that is not the future being spawned places nothing: the
    // other task starts where plain spawns do (the spawner's node), and
    // the call still hops when awaited.
    let (other, later) = numa_rt::spawn_on(N0, async {
        let call = runs_on(N1, 0);
        let other = numa_rt::spawn(async { current_node() }).await.unwrap();
        (other, call.await)
    })
    .await
    .unwrap();
    assert_eq!(other, Some(N0));
    assert_eq!(later, vec![Some(N1)]);
    assert_eq!(locality::metrics().hops, after.hops + 2);
}
