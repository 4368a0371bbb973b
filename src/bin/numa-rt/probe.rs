//! `numa-rt probe`: measure, cluster, compare, and print in the chosen form.

use numa_rt::topology::probe::{Probe, ProbeConfig};
use numa_rt::topology::{Topology, TOPOLOGY_ENV};

use crate::error::CliError;
use crate::probe_args::ProbeArgs;
use crate::{output, probe_json, probe_svg, probe_text};

/// Runs `numa-rt probe` with the parsed options.
pub fn run(opts: &ProbeArgs) -> Result<(), CliError> {
    let topo = Topology::load().map_err(|e| {
        let from_env = std::env::var_os(TOPOLOGY_ENV).is_some_and(|v| !v.is_empty());
        if from_env {
            CliError::failed(format!("{TOPOLOGY_ENV}: {e}"))
        } else {
            CliError::failed(format!("cannot read the topology: {e}"))
        }
    })?;
    let mut config = if opts.quick {
        ProbeConfig::quick()
    } else {
        ProbeConfig::standard()
    };
    if let Some(cpus) = &opts.cpus {
        let usable = topo.cpus();
        let outside = cpus.difference(&usable);
        if !outside.is_empty() {
            return Err(CliError::failed(format!(
                "--cpus: CPUs {outside} are offline or not allowed to this process \
                 (usable CPUs: {usable})"
            )));
        }
        config.only = Some(cpus.clone());
    }
    let probe =
        Probe::run(&topo, &config).map_err(|e| CliError::failed(format!("probe failed: {e}")))?;
    let report = Report {
        probe: &probe,
        config: &config,
        quick: opts.quick,
    };
    if let Some(path) = &opts.svg {
        output::file_or_stdout(path, &probe_svg::render(&report))?;
    }
    if opts.json {
        output::stdout(&probe_json::render(&report))
    } else if opts.svg.is_none() {
        output::stdout(&probe_text::render(&report))
    } else {
        Ok(())
    }
}

/// What the three output forms render.
pub struct Report<'a> {
    /// The probe's results.
    pub probe: &'a Probe,
    /// How it measured.
    pub config: &'a ProbeConfig,
    /// Whether `--quick` was given.
    pub quick: bool,
}

/// The sentence every form carries about memory placement.
pub const MEMORY_NOTE: &str = "memory cannot be bound to a latency domain the kernel does not \
    know: such a domain can group threads, but its memory comes from the reported NUMA node";

/// What `confidence` means, for the readable and JSON forms.
pub fn confidence_meaning(split: bool) -> &'static str {
    if split {
        "probability that a pair of CPUs in different domains is slower than a pair inside \
         one domain (1 = perfectly separated, 0.5 = chance)"
    } else {
        "share of measured pairs within 10% of the median latency (1 = uniform machine)"
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use numa_rt::topology::probe::{LatencyMatrix, Measurement, Probe, ProbeConfig};
    use numa_rt::topology::{CpuSet, Topology};

    /// A probe of a hidden two-socket VM: one node of 8 CPUs, CPUs 0-3 and
    /// 4-7 on different sockets, CPU 7 not allowed.
    pub(crate) fn hidden_two_socket() -> Probe {
        let mut matrix = LatencyMatrix::new((0..8).collect());
        for i in 0..7usize {
            for j in i + 1..7 {
                let base = if i / 4 == j / 4 { 48.0 } else { 131.0 };
                matrix.set(i, j, base + ((i * 7 + j * 3) % 5) as f64);
            }
        }
        let measurement = Measurement {
            matrix,
            probed: "0-6".parse().unwrap(),
            not_allowed: "7".parse().unwrap(),
            sampled: false,
            timed_out: 0,
            elapsed: Duration::from_millis(20),
        };
        let topo = Topology::single_node("0-6".parse::<CpuSet>().unwrap(), 1 << 30);
        Probe::from_measurement(measurement, &[], &topo)
    }

    pub(crate) fn report(probe: &Probe) -> super::Report<'_> {
        super::Report {
            probe,
            config: Box::leak(Box::new(ProbeConfig::quick())),
            quick: true,
        }
    }

    #[test]
    fn hidden_domains_are_reported_in_text() {
        let probe = hidden_two_socket();
        let text = crate::probe_text::render(&report(&probe));
        assert!(text.contains("Latency domains: 2"), "{text}");
        assert!(text.contains("domain 0: CPUs 0-3"), "{text}");
        assert!(text.contains("domain 1: CPUs 4-6"), "{text}");
        assert!(text.contains("2 latency domains inside node 0"), "{text}");
        assert!(
            text.contains("Not allowed to this process (null): CPUs 7"),
            "{text}"
        );
        assert!(text.contains("memory cannot be bound"), "{text}");
        assert!(text.contains("NUMA_RT_POOLS=probe"), "{text}");
    }
}
