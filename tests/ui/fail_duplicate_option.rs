#[numa_rt::main(worker_threads = 1, worker_threads = 2)]
async fn main() {}
