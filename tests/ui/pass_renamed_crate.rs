extern crate numa_rt as rt;

#[rt::main(crate = "rt")]
async fn main() {
    assert_eq!(rt::spawn(async { 1 }).await.unwrap(), 1);
}
