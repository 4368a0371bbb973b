//! The `numa-rt` command: inspect the machine's topology.
fn main() {
    match numa_rt::topology::Topology::load() {
        Ok(topo) => println!("{topo:?}"),
        Err(e) => {
            eprintln!("numa-rt: {e}");
            std::process::exit(1);
        }
    }
}
