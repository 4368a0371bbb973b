// The test macro defaults to the current-thread flavor.
#[numa_rt::test(worker_threads = 2)]
async fn one_thread() {}

#[numa_rt::main(flavor = "current_thread", worker_threads = 2)]
async fn main() {}
