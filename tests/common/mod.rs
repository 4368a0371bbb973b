//! Helpers shared by integration tests: the saved sysfs trees of
//! `tests/fixtures/hwloc-linux/` (see the README there).
//!
//! ```ignore
//! mod common;
//! for name in common::fixture_names() {
//!     let root = common::extract_fixture(&name);
//!     let topo = numa_rt::topology::Topology::from_root(&root).unwrap();
//!     let expected = std::fs::read_to_string(common::hwloc_json_path(&name)).unwrap();
//! }
//! ```
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

/// The folder holding the fixture tarballs and their `.hwloc.json` files.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hwloc-linux")
}

/// The stem names of every fixture tarball (`16amd64-8n2c` for
/// `16amd64-8n2c.tar.bz2`), sorted.
pub fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(fixtures_dir())
        .expect("tests/fixtures/hwloc-linux is readable")
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".tar.bz2").map(str::to_owned)
        })
        .collect();
    names.sort();
    names
}

/// The `.hwloc.json` file describing what hwloc 2.9 reports for fixture
/// `name`.
pub fn hwloc_json_path(name: &str) -> PathBuf {
    fixtures_dir().join(format!("{name}.hwloc.json"))
}

/// Extracts fixture `name` (once per build directory) and returns the root
/// to discover from: the single top-level folder inside the tarball, which
/// holds `sys/` and `proc/` (its name may differ from the tarball's).
pub fn extract_fixture(name: &str) -> PathBuf {
    extract_tarball(&fixtures_dir().join(format!("{name}.tar.bz2")), name)
}

/// Extracts `tarball` (a saved tree, `.tar.bz2`) under the name `name`,
/// once per build directory, and returns the single top-level folder inside.
pub fn extract_tarball(tarball: &Path, name: &str) -> PathBuf {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hwloc-linux");
    let dest = base.join(name);
    if !dest.join(".complete").exists() {
        // Extract into a private folder, then move it into place, so tests
        // running in parallel never see a half-written tree.
        // The staging name is unique per process and per call, so threads
        // of one test binary extracting the same tree do not collide.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let call = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let staging = base.join(format!(".{name}.{}.{call}", std::process::id()));
        let _ = fs::remove_dir_all(&staging);
        fs::create_dir_all(&staging).expect("create the staging folder");
        let file =
            fs::File::open(tarball).unwrap_or_else(|e| panic!("open {}: {e}", tarball.display()));
        let mut archive = tar::Archive::new(bzip2::read::BzDecoder::new(file));
        archive.set_preserve_permissions(false);
        archive
            .unpack(&staging)
            .unwrap_or_else(|e| panic!("extract {}: {e}", tarball.display()));
        fs::write(staging.join(".complete"), b"").expect("mark the extraction complete");
        if fs::rename(&staging, &dest).is_err() {
            // Another test process got there first; use its copy.
            let _ = fs::remove_dir_all(&staging);
        }
    }
    let roots: Vec<PathBuf> = fs::read_dir(&dest)
        .expect("the extracted fixture is readable")
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .map(|entry| entry.path())
        .collect();
    assert_eq!(
        roots.len(),
        1,
        "{} should hold exactly one top-level folder, found {roots:?}",
        tarball.display()
    );
    roots.into_iter().next().expect("one root")
}
