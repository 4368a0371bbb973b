//! `numa-rt topo`: load the topology and print it in the chosen form.

use std::path::Path;

use numa_rt::topology::{Device, Source, Topology, TOPOLOGY_ENV};

use crate::args::TopoArgs;
use crate::error::CliError;
use crate::{output, topo_json, topo_svg, topo_text};

/// Runs `numa-rt topo` with the parsed options.
pub fn run(opts: &TopoArgs) -> Result<(), CliError> {
    let topo = load(opts.root.as_deref())?;
    if let Some(path) = &opts.svg {
        output::file_or_stdout(path, &topo_svg::render(&topo))?;
    }
    if opts.json {
        output::stdout(&topo_json::render(&topo))
    } else if opts.svg.is_none() {
        output::stdout(&topo_text::render(&topo))
    } else {
        Ok(())
    }
}

/// The saved tree at `root`, else what every numa_rt program runs on
/// (`NUMA_RT_TOPOLOGY` or the live machine).
fn load(root: Option<&Path>) -> Result<Topology, CliError> {
    let Some(root) = root else {
        return Topology::load().map_err(|e| {
            let e = e.to_string();
            let from_env = std::env::var_os(TOPOLOGY_ENV).is_some_and(|v| !v.is_empty());
            if from_env && !e.contains(TOPOLOGY_ENV) {
                CliError::failed(format!("{TOPOLOGY_ENV}: {e}"))
            } else {
                CliError::failed(format!("cannot read the topology: {e}"))
            }
        });
    };
    match std::fs::metadata(root) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(CliError::failed(format!(
                "--root {}: not a directory",
                root.display()
            )))
        }
        Err(e) => return Err(CliError::failed(format!("--root {}: {e}", root.display()))),
    }
    // The error names the file at fault, which lies under `root`.
    Topology::from_root(root)
        .map_err(|e| CliError::failed(format!("cannot read the topology: {e}")))
}

/// One line saying where the topology came from.
pub fn describe_source(topo: &Topology) -> String {
    match topo.source() {
        Source::Live => "live machine".to_owned(),
        Source::Root(path) => format!("saved tree {}", path.display()),
        Source::Synthetic(spec) => format!("synthetic {spec} (NUMA_RT_TOPOLOGY)"),
    }
}

/// Devices that belong to none of the topology's nodes: the kernel does
/// not know their node, or it is a node the process may not use.
pub fn devices_off_nodes(topo: &Topology) -> Vec<&Device> {
    topo.devices()
        .iter()
        .filter(|d| d.node().and_then(|n| topo.node(n)).is_none())
        .collect()
}

/// A device's name, with its node when that node is not in the topology.
pub fn device_label(topo: &Topology, device: &Device) -> String {
    match device.node() {
        Some(n) if topo.node(n).is_none() => format!("{} (node {})", device.name(), n.index()),
        _ => device.name().to_owned(),
    }
}

/// `bytes` in GiB with one decimal (MiB below 1 GiB).
pub fn human_bytes(bytes: u64) -> String {
    const MIB: f64 = (1u64 << 20) as f64;
    const GIB: f64 = (1u64 << 30) as f64;
    let b = bytes as f64;
    if bytes >= 1 << 30 {
        format!("{:.1} GiB", b / GIB)
    } else {
        format!("{:.0} MiB", b / MIB)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
        assert_eq!(human_bytes(1536 << 20), "1.5 GiB");
        assert_eq!(human_bytes(512 << 20), "512 MiB");
        assert_eq!(human_bytes(0), "0 MiB");
    }

    #[test]
    fn missing_root_is_an_error_naming_it() {
        let err = load(Some(Path::new("/no/such/numa-rt-root"))).unwrap_err();
        assert_eq!(err.exit_code(), 1);
        assert!(err.to_string().contains("/no/such/numa-rt-root"), "{err}");
    }
}
