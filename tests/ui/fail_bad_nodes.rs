#[numa_rt::test(nodes = "1-0")]
async fn backwards() {}

#[numa_rt::test(nodes = "zero")]
async fn not_a_number() {}

#[numa_rt::test(nodes = [0, x])]
async fn not_a_literal() {}

#[numa_rt::main(nodes = [])]
async fn main() {}
