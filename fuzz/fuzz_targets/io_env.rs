//! `NUMA_RT_IO`, read when a runtime is built with the default
//! `IoDriver::Auto` (its parser is private: fuzzed through `Builder::build`).
//!
//! Properties: no panic; `epoll`/`auto`/empty (any case, surrounding
//! spaces) build; anything that is not a known value is refused with an
//! error naming the variable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use numa_rt_runtime::runtime::Builder;
use numa_rt_runtime::topology::{CpuSet, Topology};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    if value.contains('\0') {
        return; // no environment variable can hold a NUL
    }
    std::env::set_var("NUMA_RT_IO", value);
    let cpus: CpuSet = "0".parse().expect("a valid list");
    let built = Builder::new_current_thread()
        .topology(Topology::single_node(cpus, 1 << 30))
        .enable_io()
        .build();
    let wanted = value.trim().to_ascii_lowercase();
    match wanted.as_str() {
        "" | "auto" | "epoll" => {
            if let Err(e) = &built {
                panic!("NUMA_RT_IO={value:?} refused: {e}");
            }
        }
        // Builds, or errs because this kernel refuses io_uring.
        "uring" | "io_uring" | "io-uring" => {}
        _ => match &built {
            Ok(_) => panic!("NUMA_RT_IO={value:?} accepted"),
            Err(e) => assert!(e.to_string().contains("NUMA_RT_IO"), "unclear error: {e}"),
        },
    }
});
