//! `Builder::pools` on the live machine: the quick probe at build time,
//! and given domains becoming pools whose workers run on their CPUs while
//! memory stays on the kernel's node.

use std::time::Instant;

use numa_rt_runtime::locality::Strict;
use numa_rt_runtime::runtime::{Builder, Pools};
use numa_rt_runtime::topology::{CpuSet, Topology};

#[test]
fn probed_pools_on_this_machine() {
    let kernel = Topology::discover().unwrap();
    let start = Instant::now();
    let rt = Builder::new_multi_thread()
        .pools(Pools::Probed)
        .build()
        .unwrap();
    eprintln!("build with the quick probe: {:?}", start.elapsed());
    if kernel.cpus().len() <= 3 {
        // Too few CPUs for two domains of two: the pools are the nodes.
        let nodes: Vec<_> = kernel.cpu_nodes().map(|n| n.id()).collect();
        assert_eq!(rt.handle().nodes(), nodes);
    }
    assert_eq!(rt.block_on(async { 2 + 2 }), 4);
}

#[test]
fn given_domains_become_pinned_pools() {
    let kernel = Topology::discover().unwrap();
    let cpus: Vec<u32> = kernel.cpus().iter().take(2).collect();
    if cpus.len() < 2 || kernel.cpu_nodes().count() != 1 {
        eprintln!("skipped: needs two usable CPUs on one kernel node");
        return;
    }
    let domains: Vec<CpuSet> = cpus.iter().map(|&c| CpuSet::from_iter([c])).collect();
    let rt = Builder::new_multi_thread()
        .pools(Pools::Domains(domains.clone()))
        .worker_threads(1)
        .build()
        .unwrap();
    let pools = rt.handle().nodes();
    assert_eq!(pools.len(), 2);
    let m = rt.metrics();
    for (w, domain) in domains.iter().enumerate() {
        assert_eq!(m.worker_cpus(w).as_ref(), Some(domain));
    }
    for (pool, &cpu) in pools.iter().zip(&cpus) {
        let ran_on = rt.block_on(async move {
            numa_rt_runtime::spawn_on(Strict(*pool), async {
                // SAFETY: sched_getcpu has no preconditions.
                unsafe { libc::sched_getcpu() }
            })
            .await
            .unwrap()
        });
        assert_eq!(ran_on, cpu as i32, "a task of {pool} runs on CPU {cpu}");
    }
    // Memory of both pools is the kernel node's.
    let topo = rt.handle().topology().clone();
    for pool in pools {
        assert_eq!(
            topo.node(pool).unwrap().memory_node(),
            kernel.cpu_nodes().next().unwrap().id()
        );
    }
}

#[test]
fn node_ids_name_kernel_nodes_under_split_pools() {
    let kernel = Topology::discover().unwrap();
    let cpus: Vec<u32> = kernel.cpus().iter().take(2).collect();
    if cpus.len() < 2 || kernel.cpu_nodes().count() != 1 {
        return;
    }
    let node = kernel.cpu_nodes().next().unwrap().id();
    let domains: Vec<CpuSet> = cpus.iter().map(|&c| CpuSet::from_iter([c])).collect();
    let rt = Builder::new_multi_thread()
        .pools(Pools::Domains(domains))
        .nodes([node])
        .worker_threads(1)
        .build()
        .unwrap();
    assert_eq!(rt.handle().nodes().len(), 2, "every piece of {node} runs");
}
