//! The `numa-rt topo` command, run as a user runs it: the built binary,
//! its stdout, stderr and exit status.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

mod common;

/// The command with a clean environment for topology choices.
fn numa_rt() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_numa-rt"));
    cmd.env_remove("NUMA_RT_TOPOLOGY");
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("the numa-rt binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("stderr is UTF-8")
}

/// Asserts success with nothing on stderr and returns stdout.
fn success(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "expected success; stderr: {}",
        stderr(out)
    );
    assert_eq!(stderr(out), "", "stderr must stay empty on success");
    stdout(out)
}

/// Asserts failure with `code`, one line on stderr mentioning every
/// string in `needles`, and nothing on stdout.
fn failure(out: &Output, code: i32, needles: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert_eq!(stdout(out), "", "stdout must stay empty on failure");
    assert_eq!(err.lines().count(), 1, "one line on stderr, got: {err:?}");
    assert!(err.starts_with("numa-rt: "), "{err}");
    for needle in needles {
        assert!(err.contains(needle), "{err:?} should mention {needle:?}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("numa-rt-cli-{}-{name}", std::process::id()))
}

/// Checks the required fields of `numa-rt topo --json` and returns the
/// parsed document.
fn check_json_shape(text: &str) -> Value {
    let v: Value = serde_json::from_str(text).expect("stdout is only JSON");
    let nodes = v["nodes"].as_array().expect("nodes is a list");
    assert!(!nodes.is_empty());
    for node in nodes {
        assert!(node["id"].is_u64(), "{node}");
        let cpus = node["cpus"].as_array().expect("cpus is a list");
        assert!(cpus.iter().all(Value::is_u64), "{node}");
        assert!(node["memory_bytes"].is_u64(), "{node}");
        assert!(
            node["subtype"].is_null() || node["subtype"].is_string(),
            "{node}"
        );
    }
    match &v["distances"] {
        Value::Null => {}
        Value::Object(d) => {
            let ids = d["ids"].as_array().expect("distances.ids is a list");
            let matrix = d["matrix"].as_array().expect("distances.matrix is a list");
            assert_eq!(matrix.len(), ids.len());
            for row in matrix {
                assert_eq!(row.as_array().map(Vec::len), Some(ids.len()));
            }
        }
        other => panic!("distances must be an object or null, got {other}"),
    }
    let memattrs = v["memattrs"].as_object().expect("memattrs is an object");
    for (kind, list) in memattrs {
        for entry in list.as_array().expect("a memattr kind holds a list") {
            assert!(entry["target"].is_u64(), "{kind}: {entry}");
            assert!(entry["value"].is_u64(), "{kind}: {entry}");
            assert!(entry["initiator_cpus"].is_array(), "{kind}: {entry}");
        }
    }
    v
}

#[test]
fn live_json_has_the_required_shape() {
    let out = run(numa_rt().args(["topo", "--json"]));
    check_json_shape(&success(&out));
}

#[test]
fn synthetic_two_nodes_in_json() {
    let out = run(numa_rt()
        .env("NUMA_RT_TOPOLOGY", "2x1")
        .args(["topo", "--json"]));
    let v = check_json_shape(&success(&out));
    let nodes = v["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes[0]["id"], 0);
    assert_eq!(nodes[1]["id"], 1);
    assert_eq!(nodes[0]["cpus"].as_array().unwrap().len(), 1);
    assert_eq!(nodes[1]["cpus"].as_array().unwrap().len(), 1);
    assert_ne!(nodes[0]["cpus"], nodes[1]["cpus"]);
    assert_eq!(
        v["distances"],
        serde_json::json!({"ids": [0, 1], "matrix": [[10, 20], [20, 10]]})
    );
    assert_eq!(v["memattrs"], serde_json::json!({}));
    assert_eq!(v["source"]["kind"], "synthetic");
}

#[test]
fn readable_view() {
    let out = run(numa_rt().env("NUMA_RT_TOPOLOGY", "2x1:10,30").arg("topo"));
    let text = success(&out);
    assert!(
        text.starts_with("source: synthetic 2x1:10,30,30,10"),
        "{text}"
    );
    assert!(text.contains("\nnode 0: 1 CPU, "), "{text}");
    assert!(text.contains("\nnode 1: 1 CPU, "), "{text}");
    assert!(text.contains("automatic NUMA balancing: "), "{text}");
    assert!(text.contains("distances (SLIT):"), "{text}");

    let live = success(&run(numa_rt().arg("topo")));
    assert!(live.starts_with("source: live machine"), "{live}");
    assert!(live.contains("\nnode "), "{live}");
}

#[test]
fn svg_is_well_formed() {
    let path = temp_path("two.svg");
    let out = run(numa_rt()
        .env("NUMA_RT_TOPOLOGY", "2x1:10,21")
        .args(["topo", "--svg"])
        .arg(&path));
    assert_eq!(success(&out), "", "--svg alone prints nothing");
    let svg = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    let class_count = |class: &str| {
        doc.descendants()
            .filter(|n| n.attribute("class") == Some(class))
            .count()
    };
    assert_eq!(class_count("node"), 2, "one box per node");
    assert_eq!(class_count("arc"), 1, "one link between two nodes");
    let texts: Vec<&str> = doc.descendants().filter_map(|n| n.text()).collect();
    assert!(texts.contains(&"21"), "link labelled with its distance");
    assert!(texts.contains(&"node 1"), "{texts:?}");
}

#[test]
fn svg_to_stdout_and_json_with_svg_file() {
    let out = run(numa_rt()
        .env("NUMA_RT_TOPOLOGY", "2x1")
        .args(["topo", "--svg", "-"]));
    let svg = success(&out);
    roxmltree::Document::parse(&svg).expect("well-formed XML on stdout");

    let path = temp_path("with-json.svg");
    let out = run(numa_rt()
        .env("NUMA_RT_TOPOLOGY", "2x1")
        .args(["topo", "--json", "--svg"])
        .arg(&path));
    check_json_shape(&success(&out));
    let svg = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    roxmltree::Document::parse(&svg).expect("well-formed XML in the file");
}

#[test]
fn help() {
    let main = success(&run(numa_rt().arg("--help")));
    assert!(main.contains("Usage: numa-rt <command>"), "{main}");
    assert!(main.contains("topo"), "{main}");
    let topo = success(&run(numa_rt().args(["topo", "--help"])));
    assert!(topo.contains("Usage: numa-rt topo"), "{topo}");
    for flag in ["--root", "--json", "--svg"] {
        assert!(topo.contains(flag), "{flag} undocumented");
    }
}

#[test]
fn usage_errors_exit_2() {
    failure(&run(&mut numa_rt()), 2, &["no command"]);
    failure(&run(numa_rt().arg("frobnicate")), 2, &["frobnicate"]);
    failure(&run(numa_rt().args(["topo", "--frob"])), 2, &["--frob"]);
    failure(
        &run(numa_rt().args(["topo", "--root"])),
        2,
        &["--root", "value"],
    );
    failure(
        &run(numa_rt().args(["topo", "--svg"])),
        2,
        &["--svg", "value"],
    );
    failure(
        &run(numa_rt().args(["topo", "--root", "--json"])),
        2,
        &["--root", "value"],
    );
}

#[test]
fn missing_root_exits_1_naming_it() {
    let missing = temp_path("no-such-root");
    let out = run(numa_rt().args(["topo", "--root"]).arg(&missing));
    failure(&out, 1, &[missing.to_str().unwrap()]);

    // A file where a directory is expected.
    let file = temp_path("root-is-a-file");
    std::fs::write(&file, "x").unwrap();
    let out = run(numa_rt().args(["topo", "--json", "--root"]).arg(&file));
    std::fs::remove_file(&file).unwrap();
    failure(&out, 1, &[file.to_str().unwrap(), "not a directory"]);
}

#[test]
fn unwritable_svg_exits_1_naming_it() {
    let path = Path::new("/nonexistent-numa-rt-dir/topo.svg");
    let out = run(numa_rt()
        .env("NUMA_RT_TOPOLOGY", "2x1")
        .args(["topo", "--svg"])
        .arg(path));
    failure(&out, 1, &["/nonexistent-numa-rt-dir/topo.svg"]);

    // A directory is not a file to write to.
    let dir = std::env::temp_dir();
    let out = run(numa_rt()
        .env("NUMA_RT_TOPOLOGY", "2x1")
        .args(["topo", "--svg"])
        .arg(&dir));
    failure(&out, 1, &[dir.to_str().unwrap()]);
}

#[test]
fn bad_topology_variable_exits_1_naming_it() {
    let out = run(numa_rt()
        .env("NUMA_RT_TOPOLOGY", "two-by-one")
        .args(["topo", "--json"]));
    failure(&out, 1, &["NUMA_RT_TOPOLOGY"]);

    let out = run(numa_rt().env("NUMA_RT_TOPOLOGY", "4096x1").arg("topo"));
    failure(&out, 1, &["NUMA_RT_TOPOLOGY"]);

    // More CPUs than any machine running this test has.
    let out = run(numa_rt().env("NUMA_RT_TOPOLOGY", "1024x64").arg("topo"));
    failure(&out, 1, &["NUMA_RT_TOPOLOGY", "CPUs"]);
}

/// Every fixture's name and extracted root. Extracted once, by one thread:
/// tests of one process must not extract the same tree at the same time.
fn fixtures() -> &'static [(String, PathBuf)] {
    static FIXTURES: OnceLock<Vec<(String, PathBuf)>> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        common::fixture_names()
            .into_iter()
            .map(|name| {
                let root = common::extract_fixture(&name);
                (name, root)
            })
            .collect()
    })
}

/// The differences between the required fields of `ours` (from
/// `numa-rt topo --json`) and `hwloc` (a fixture's `.hwloc.json`).
fn required_field_differences(ours: &Value, hwloc: &Value) -> Vec<String> {
    let mut diffs = Vec::new();
    let empty = Vec::new();
    let our_nodes = ours["nodes"].as_array().unwrap_or(&empty);
    let hw_nodes = hwloc["nodes"].as_array().unwrap_or(&empty);
    let ids = |nodes: &[Value]| nodes.iter().map(|n| n["id"].clone()).collect::<Vec<_>>();
    if ids(our_nodes) != ids(hw_nodes) {
        diffs.push(format!(
            "node ids: ours {:?}, hwloc {:?}",
            ids(our_nodes),
            ids(hw_nodes)
        ));
    }
    for hw in hw_nodes {
        let Some(node) = our_nodes.iter().find(|n| n["id"] == hw["id"]) else {
            continue;
        };
        let id = &hw["id"];
        if node["cpus"] != hw["cpus"] {
            diffs.push(format!(
                "node {id} cpus: ours {}, hwloc {}",
                node["cpus"], hw["cpus"]
            ));
        }
        if node["subtype"] != hw["subtype"] {
            diffs.push(format!(
                "node {id} subtype: ours {}, hwloc {}",
                node["subtype"], hw["subtype"]
            ));
        }
        let (a, b) = (
            node["memory_bytes"].as_u64().unwrap_or(0) as f64,
            hw["memory_bytes"].as_u64().unwrap_or(0) as f64,
        );
        if (a - b).abs() > b * 0.01 {
            diffs.push(format!(
                "node {id} memory_bytes: ours {a}, hwloc {b} (over 1% apart)"
            ));
        }
    }
    if ours["distances"] != hwloc["distances"] {
        diffs.push(format!(
            "distances: ours {}, hwloc {}",
            ours["distances"], hwloc["distances"]
        ));
    }
    if ours["memattrs"] != hwloc["memattrs"] {
        diffs.push(format!(
            "memattrs: ours {}, hwloc {}",
            ours["memattrs"], hwloc["memattrs"]
        ));
    }
    diffs
}

/// Every saved machine: `numa-rt topo --root <tree> --json` agrees with
/// what hwloc 2.9 reports for it, on every required field. All mismatches
/// of all trees are reported together.
#[test]
fn json_matches_hwloc_on_every_fixture() {
    let fixtures = fixtures();
    assert!(fixtures.len() >= 20, "fixtures missing: {fixtures:?}");
    let mut report = Vec::new();
    for (name, root) in fixtures {
        let out = run(numa_rt().args(["topo", "--json", "--root"]).arg(root));
        if out.status.code() != Some(0) || !out.stderr.is_empty() {
            report.push(format!(
                "{name}: exit {:?}, stderr {}",
                out.status.code(),
                stderr(&out).trim()
            ));
            continue;
        }
        let ours = check_json_shape(&stdout(&out));
        let hwloc: Value =
            serde_json::from_str(&std::fs::read_to_string(common::hwloc_json_path(name)).unwrap())
                .unwrap();
        for diff in required_field_differences(&ours, &hwloc) {
            report.push(format!("{name}: {diff}"));
        }
    }
    assert!(
        report.is_empty(),
        "{} mismatches with hwloc:\n{}",
        report.len(),
        report.join("\n")
    );
}

/// The readable view and the picture work on every saved machine.
#[test]
fn text_and_svg_on_every_fixture() {
    let svg_path = temp_path("fixture.svg");
    let mut report = Vec::new();
    for (name, root) in fixtures() {
        let out = run(numa_rt()
            .args(["topo", "--root"])
            .arg(root)
            .arg("--svg")
            .arg(&svg_path));
        if out.status.code() != Some(0) || !out.stderr.is_empty() {
            report.push(format!("{name} --svg: {}", stderr(&out).trim()));
            continue;
        }
        let svg = std::fs::read_to_string(&svg_path).unwrap();
        if let Err(e) = roxmltree::Document::parse(&svg) {
            report.push(format!("{name} --svg: not well-formed: {e}"));
        }
        let out = run(numa_rt().args(["topo", "--root"]).arg(root));
        if out.status.code() != Some(0) || !out.stderr.is_empty() {
            report.push(format!("{name}: {}", stderr(&out).trim()));
            continue;
        }
        let text = stdout(&out);
        if !text.starts_with("source: saved tree ") || !text.contains("\nnode ") {
            report.push(format!("{name}: unexpected text view:\n{text}"));
        }
    }
    let _ = std::fs::remove_file(&svg_path);
    assert!(report.is_empty(), "{}", report.join("\n"));
}

/// The extracted root of fixture `name`.
fn fixture(name: &str) -> &'static Path {
    fixtures()
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, root)| root.as_path())
        .unwrap_or_else(|| panic!("no fixture {name}"))
}

/// A machine with HMAT and memory-only nodes: the text view lists their
/// initiators and the attributes table; the picture draws them apart.
#[test]
fn memory_only_nodes_and_hmat() {
    let root = fixture("fakeheteromemtiers");
    let text = success(&run(numa_rt().args(["topo", "--root"]).arg(root)));
    assert!(
        text.contains("7 nodes (3 with CPUs, 4 memory-only)"),
        "{text}"
    );
    assert!(
        text.contains(
            "\nnode 8: memory only, 384 MiB NVM\n  near CPUs: 0-1 (local initiators: node 0)\n"
        ),
        "{text}"
    );
    assert!(text.contains("memory attributes (HMAT"), "{text}");
    assert!(text.contains("Bandwidth (MiB/s)"), "{text}");

    let svg = success(&run(numa_rt()
        .args(["topo", "--svg", "-", "--root"])
        .arg(root)));
    let doc = roxmltree::Document::parse(&svg).expect("well-formed XML");
    let count = |class: &str| {
        doc.descendants()
            .filter(|n| n.attribute("class") == Some(class))
            .count()
    };
    assert_eq!(count("node"), 3, "boxes of CPU nodes");
    assert_eq!(count("memnode"), 4, "boxes of memory-only nodes");
    assert_eq!(count("init"), 4, "one initiator link per memory-only node");
    assert_eq!(count("arc"), 3, "every pair of the three CPU nodes");
}

/// Devices are listed under their node; those on no known node apart.
#[test]
fn devices_per_node() {
    let root = fixture("32em64t-2n8c+dax+nvme+mic+dimms");
    let v = check_json_shape(&success(&run(numa_rt()
        .args(["topo", "--json", "--root"])
        .arg(root))));
    let devices = v["devices"].as_array().expect("devices listed");
    let eth0 = devices
        .iter()
        .find(|d| d["kind"] == "net" && d["name"] == "eth0")
        .expect("eth0 listed");
    let text = success(&run(numa_rt().args(["topo", "--root"]).arg(root)));
    let section = format!("\nnode {}:", eth0["node"]);
    let start = text.find(&section).expect("eth0's node has a section");
    let end = text[start + 1..]
        .find("\n\n")
        .map_or(text.len(), |e| start + 1 + e);
    assert!(text[start..end].contains("eth0"), "{text}");
    if devices.iter().any(|d| d["node"].is_null()) {
        assert!(text.contains("\ndevices on no known node:\n"), "{text}");
    }
}
