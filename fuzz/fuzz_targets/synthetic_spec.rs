//! `NUMA_RT_TOPOLOGY` specs (`2x4`, `2x4:10,21`, `2x2:10,20,20,10`).
//!
//! Properties: no panic in parsing or in laying the spec over a machine;
//! an accepted spec has the node count it names, and laying it over a
//! machine either fails with an error or gives that many nodes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use numa_rt_runtime::topology::{CpuSet, Synthetic, Topology};
use std::sync::OnceLock;

fn base() -> &'static Topology {
    static BASE: OnceLock<Topology> = OnceLock::new();
    BASE.get_or_init(|| {
        let cpus: CpuSet = "0-63".parse().expect("a valid list");
        Topology::single_node(cpus, 64 << 30)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(spec) = Synthetic::from_spec(text) else {
        return;
    };
    assert!(spec.nodes() > 0 && spec.cpus_per_node() > 0);
    for from in 0..spec.nodes().min(8) {
        for to in 0..spec.nodes().min(8) {
            let _ = spec.distance(from, to);
        }
    }
    if let Ok(topo) = Topology::synthetic_over(base(), &spec) {
        assert_eq!(topo.nodes().len(), spec.nodes() as usize);
    }
});
