#[numa_rt::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u32 = "7".parse()?;
    assert_eq!(numa_rt::spawn(async move { n * 6 }).await?, 42);
    Ok(())
}
