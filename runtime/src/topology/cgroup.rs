//! The CPUs and memory nodes a process's cpuset allows: cgroup v2, cgroup
//! v1 and the older cpuset filesystem, located the way hwloc 2.9 does.
//!
//! 1. `proc/mounts` gives the hierarchy: the first `cgroup2` mount whose
//!    `cgroup.controllers` lists `cpuset`, a `cpuset` mount, or a `cgroup`
//!    mount with the `cpuset` option (`noprefix` means the files carry no
//!    `cpuset.` prefix, as with the old cpuset filesystem).
//! 2. `proc/self/cpuset` gives the process's cpuset path, else the
//!    `:cpuset:` (v1) or `::` (v2) line of `proc/self/cgroup`.
//! 3. The limits are `cpuset.{cpus,mems}.effective` (v2), `cpuset.{cpus,mems}`
//!    (v1) or `{cpus,mems}` (cpuset filesystem) in that directory.
//!
//! Anything missing means "no limit"; a limit file that exists but does not
//! parse is an error naming it.

use super::root::FsRoot;
use super::{CpuSet, NodeSet, TopologyError};

/// What the process's cpuset allows. `None` means unrestricted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Allowed CPUs.
    pub(crate) cpus: Option<CpuSet>,
    /// Allowed memory nodes.
    pub(crate) mems: Option<NodeSet>,
}

/// How the cpuset files of a hierarchy are named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flavor {
    /// cgroup v2: `cpuset.cpus.effective`.
    V2,
    /// cgroup v1: `cpuset.cpus`.
    V1,
    /// The cpuset filesystem, or cgroup v1 mounted with `noprefix`: `cpus`.
    Cpuset,
}

impl Flavor {
    fn file(self, what: &str) -> String {
        match self {
            Flavor::V2 => format!("cpuset.{what}.effective"),
            Flavor::V1 => format!("cpuset.{what}"),
            Flavor::Cpuset => what.to_owned(),
        }
    }
}

/// Reads the cpuset limits of the process under `root`.
pub(crate) fn limits(root: &FsRoot) -> Result<Limits, TopologyError> {
    let Some((flavor, mount)) = find_mount(root) else {
        return Ok(Limits::default());
    };
    let Some(name) = cgroup_name(root) else {
        return Ok(Limits::default());
    };
    let dir = format!(
        "{}/{}",
        mount.trim_end_matches('/'),
        name.trim_start_matches('/')
    );
    let dir = dir.trim_end_matches('/');
    Ok(Limits {
        cpus: root.read_list(&format!("{dir}/{}", flavor.file("cpus")))?,
        mems: root.read_list(&format!("{dir}/{}", flavor.file("mems")))?,
    })
}

/// The first mount in `proc/mounts` that carries cpusets.
fn find_mount(root: &FsRoot) -> Option<(Flavor, String)> {
    let mounts = root.read_optional("proc/mounts")?;
    for line in mounts.lines() {
        let mut fields = line.split_whitespace();
        let (Some(_), Some(dir), Some(kind)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        let options = fields.next().unwrap_or("");
        let dir = unescape_mount_field(dir);
        match kind {
            "cgroup2" => {
                let controllers = root
                    .read_optional(&format!("{}/cgroup.controllers", dir.trim_end_matches('/')))
                    .unwrap_or_default();
                if controllers.split_whitespace().any(|c| c == "cpuset") {
                    return Some((Flavor::V2, dir));
                }
            }
            "cpuset" => return Some((Flavor::Cpuset, dir)),
            "cgroup" => {
                let opts: Vec<&str> = options.split(',').collect();
                if opts.contains(&"cpuset") {
                    let flavor = if opts.contains(&"noprefix") {
                        Flavor::Cpuset
                    } else {
                        Flavor::V1
                    };
                    return Some((flavor, dir));
                }
            }
            _ => {}
        }
    }
    None
}

/// The process's cpuset path: `proc/self/cpuset`, else the cpuset line of
/// `proc/self/cgroup`.
fn cgroup_name(root: &FsRoot) -> Option<String> {
    if let Some(text) = root.read_optional("proc/self/cpuset") {
        if !text.is_empty() {
            return Some(text.lines().next().unwrap_or("").to_owned());
        }
    }
    let cgroups = root.read_optional("proc/self/cgroup")?;
    cgroups.lines().find_map(|line| {
        let (_, rest) = line.split_once(':')?;
        rest.strip_prefix("cpuset:")
            .or_else(|| rest.strip_prefix(':'))
            .map(str::to_owned)
    })
}

/// Undoes the octal escapes `proc/mounts` uses for spaces, tabs, newlines
/// and backslashes (`\040`, `\011`, `\012`, `\134`).
fn unescape_mount_field(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() {
            let digits = &bytes[i + 1..i + 4];
            if digits.iter().all(|b| (b'0'..=b'7').contains(b)) {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
                if let Ok(byte) = u8::try_from(value) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::Path;

    fn write(base: &Path, rel: &str, text: &str) {
        let path = base.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn limits_of(base: &Path) -> Limits {
        limits(&FsRoot::open(base.to_owned()).unwrap()).unwrap()
    }

    #[test]
    fn cgroup_v2_uses_effective_files() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path();
        write(
            b,
            "proc/mounts",
            "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid 0 0\n",
        );
        write(b, "sys/fs/cgroup/cgroup.controllers", "cpu cpuset memory\n");
        write(b, "proc/self/cgroup", "0::/job.slice/x\n");
        write(b, "sys/fs/cgroup/job.slice/x/cpuset.cpus", "0-7\n");
        write(
            b,
            "sys/fs/cgroup/job.slice/x/cpuset.cpus.effective",
            "2-3\n",
        );
        write(b, "sys/fs/cgroup/job.slice/x/cpuset.mems.effective", "1\n");
        let l = limits_of(b);
        assert_eq!(l.cpus.unwrap().to_string(), "2-3");
        assert_eq!(l.mems.unwrap().to_string(), "1");
    }

    #[test]
    fn cgroup_v2_without_cpuset_controller_is_unlimited() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path();
        write(b, "proc/mounts", "cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n");
        write(b, "sys/fs/cgroup/cgroup.controllers", "cpu memory\n");
        write(b, "proc/self/cgroup", "0::/x\n");
        write(b, "sys/fs/cgroup/x/cpuset.cpus.effective", "1\n");
        assert_eq!(limits_of(b), Limits::default());
    }

    #[test]
    fn cgroup_v1_and_noprefix() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path();
        write(
            b,
            "proc/mounts",
            "cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n\
             cgroup /sys/fs/cgroup/cpuset cgroup rw,nosuid,cpuset 0 0\n",
        );
        write(b, "proc/self/cgroup", "4:memory:/a\n3:cpuset:/batch/7\n");
        write(b, "sys/fs/cgroup/cpuset/batch/7/cpuset.cpus", "4-5\n");
        write(b, "sys/fs/cgroup/cpuset/batch/7/cpuset.mems", "0\n");
        let l = limits_of(b);
        assert_eq!(l.cpus.unwrap().to_string(), "4-5");
        assert_eq!(l.mems.unwrap().to_string(), "0");

        let dir = tempfile::tempdir().unwrap();
        let b = dir.path();
        write(
            b,
            "proc/mounts",
            "none /dev/cpuset cgroup rw,relatime,cpuset,noprefix,release_agent=/x 0 0\n",
        );
        write(b, "proc/self/cpuset", "/job\n");
        write(b, "dev/cpuset/job/cpus", "1,3\n");
        write(b, "dev/cpuset/job/mems", "0\n");
        assert_eq!(limits_of(b).cpus.unwrap().to_string(), "1,3");
    }

    #[test]
    fn cpuset_filesystem_and_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path();
        write(b, "proc/mounts", "none /dev/my\\040cpuset cpuset rw 0 0\n");
        write(b, "proc/self/cpuset", "/dummy\n");
        write(b, "dev/my cpuset/dummy/cpus", "0-1\n");
        let l = limits_of(b);
        assert_eq!(l.cpus.unwrap().to_string(), "0-1");
        assert!(l.mems.is_none(), "a missing mems file does not limit");
    }

    #[test]
    fn malformed_limit_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path();
        write(b, "proc/mounts", "none /dev/cpuset cpuset rw 0 0\n");
        write(b, "proc/self/cpuset", "/\n");
        write(b, "dev/cpuset/cpus", "seven\n");
        let err = limits(&FsRoot::open(b.to_owned()).unwrap()).unwrap_err();
        assert!(err.to_string().contains("dev/cpuset/cpus"), "{err}");
    }

    #[test]
    fn no_mounts_is_unlimited() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(limits_of(dir.path()), Limits::default());
        assert_eq!(unescape_mount_field("a\\040b\\134"), "a b\\");
        assert_eq!(unescape_mount_field("tail\\04"), "tail\\04");
    }
}
