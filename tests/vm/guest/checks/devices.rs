//! PCIe devices QEMU put behind an expander bridge on a node report it.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crate::expect::Machine;
use crate::report::Outcome;
use crate::sysfs;

/// How long a device may take to appear after its module is loaded.
const APPEAR_TIMEOUT: Duration = Duration::from_secs(20);

/// Every device in the table shows up and reports its node.
pub fn device_nodes(m: &Machine) -> Outcome {
    if m.devices.is_empty() {
        return Outcome::Skip("no devices in this topology".into());
    }
    let mut seen = Vec::new();
    let mut problems = Vec::new();
    for dev in &m.devices {
        if !wait_for(&dev.sysfs) {
            problems.push(format!(
                "{} {} did not appear within {}s (module not loaded?)",
                dev.kind,
                dev.sysfs,
                APPEAR_TIMEOUT.as_secs()
            ));
            continue;
        }
        match sysfs::device_node(&dev.sysfs) {
            Ok(n) if n == dev.node => seen.push(format!("{} node {n}", dev.sysfs)),
            Ok(n) => problems.push(format!("{}: node {n}, want {}", dev.sysfs, dev.node)),
            Err(e) => problems.push(e),
        }
    }
    if problems.is_empty() {
        Outcome::Pass(seen.join(", "))
    } else {
        Outcome::Fail(problems.join("; "))
    }
}

fn wait_for(path: &str) -> bool {
    let start = Instant::now();
    while !Path::new(path).exists() {
        if start.elapsed() > APPEAR_TIMEOUT {
            return false;
        }
        thread::sleep(Duration::from_millis(100));
    }
    true
}
