//! Behaviour of `#[numa_rt::main]` and `#[numa_rt::test]`.

use std::thread;

use numa_rt::NodeId;

#[numa_rt::test]
async fn test_defaults_to_the_current_thread() {
    let caller = thread::current().id();
    let ran_on = numa_rt::spawn(async { thread::current().id() })
        .await
        .unwrap();
    assert_eq!(
        ran_on, caller,
        "a current-thread runtime runs tasks on its block_on thread"
    );
}

#[numa_rt::test(flavor = "multi_thread", worker_threads = 1)]
async fn multi_thread_runs_tasks_on_workers() {
    let caller = thread::current().id();
    let (ran_on, node) =
        numa_rt::spawn(async { (thread::current().id(), numa_rt::task::current_node()) })
            .await
            .unwrap();
    assert_ne!(ran_on, caller);
    assert!(node.is_some(), "a worker knows its node");
}

#[numa_rt::test(flavor = "multi_thread", worker_threads = 1, topology = "2x1")]
async fn synthetic_topology_gives_two_nodes() {
    for id in [0, 1] {
        let node = numa_rt::spawn_on(NodeId::new(id), async { numa_rt::task::current_node() })
            .await
            .unwrap();
        assert_eq!(node, Some(NodeId::new(id)));
    }
}

#[numa_rt::test(flavor = "multi_thread", topology = "2x1", nodes = "1")]
async fn nodes_limits_the_pools() {
    for _ in 0..10 {
        let node = numa_rt::spawn(async { numa_rt::task::current_node() })
            .await
            .unwrap();
        assert_eq!(node, Some(NodeId::new(1)));
    }
}

#[numa_rt::test(flavor = "multi_thread", topology = "2x1", nodes = [0])]
async fn nodes_as_a_list() {
    let node = numa_rt::spawn(async { numa_rt::task::current_node() })
        .await
        .unwrap();
    assert_eq!(node, Some(NodeId::new(0)));
}

#[numa_rt::test]
async fn question_mark_uses_the_declared_error_type() -> Result<(), std::num::ParseIntError> {
    let n: u32 = "42".parse()?;
    assert_eq!(n, 42);
    Ok(())
}

#[numa_rt::test]
#[should_panic(expected = "the body panics")]
async fn other_attributes_are_kept() {
    panic!("the body panics");
}

#[numa_rt::main(worker_threads = 1)]
async fn not_named_main() -> u32 {
    numa_rt::spawn(async { 6 * 7 }).await.unwrap()
}

#[test]
fn main_works_on_any_function() {
    assert_eq!(not_named_main(), 42);
    // Each call builds a fresh runtime.
    assert_eq!(not_named_main(), 42);
}

#[numa_rt::main(flavor = "current_thread")]
async fn current_thread_main() -> thread::ThreadId {
    numa_rt::spawn(async { thread::current().id() })
        .await
        .unwrap()
}

#[test]
fn main_with_the_current_thread_flavor() {
    assert_eq!(current_thread_main(), thread::current().id());
}

#[numa_rt::main(topology = "64x64")]
async fn impossible_topology() {}

#[test]
#[should_panic(expected = "cannot build the synthetic topology \"64x64\"")]
fn a_topology_too_big_for_the_machine_panics_clearly() {
    impossible_topology();
}

mod renamed {
    extern crate numa_rt as rt;

    #[rt::test(crate = "rt")]
    async fn crate_option_names_the_path() {
        assert_eq!(rt::spawn(async { 1 }).await.unwrap(), 1);
    }
}
