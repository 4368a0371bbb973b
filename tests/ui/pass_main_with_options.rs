#[numa_rt::main(flavor = "multi_thread", worker_threads = 1, topology = "1x1", nodes = "0")]
async fn main() {
    let node = numa_rt::spawn(async { numa_rt::task::current_node() })
        .await
        .unwrap();
    assert_eq!(node, Some(numa_rt::NodeId::new(0)));
}
