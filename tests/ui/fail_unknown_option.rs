#[numa_rt::main(workers = 2)]
async fn main() {}
