#[numa_rt::test(topology = "2")]
async fn no_cpu_count() {}

#[numa_rt::test(topology = "0x4")]
async fn no_nodes() {}

#[numa_rt::test(topology = "2x1:10,20,30")]
async fn wrong_matrix() {}

#[numa_rt::main(topology = 2)]
async fn main() {}
