#[numa_rt::main(flavor)]
async fn main() {}
