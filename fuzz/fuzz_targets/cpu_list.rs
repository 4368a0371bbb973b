//! The kernel's CPU/node list (`0-3,8-11:2`) and mask (`ff,0000000f`)
//! formats, as read from cpulist, cpumap, online, cpuset.* files.
//!
//! Properties: no panic; anything accepted prints back as a list that
//! parses to the same set; a mask accepted as a list-looking string is not
//! required to agree (the formats differ), but each round-trips itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use numa_rt_runtime::topology::parse::{parse_list, parse_mask};
use numa_rt_runtime::topology::CpuSet;

fn round_trips(set: &CpuSet) {
    let text = set.to_string();
    let again: CpuSet = parse_list(&text).expect("a printed set parses");
    assert_eq!(&again, set, "list round trip through {text:?}");
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(set) = parse_list::<numa_rt_runtime::topology::CpuKind>(text) {
        round_trips(&set);
    }
    if let Ok(set) = parse_mask::<numa_rt_runtime::topology::CpuKind>(text) {
        round_trips(&set);
    }
});
