//! Finding a container's cgroup v2 by its id, whatever the runtime: runc
//! and crun with cgroupfs name the directory after the id
//! (`<parent>/<id>`), systemd-driven runtimes use `<prefix>-<id>.scope`
//! (`cri-containerd-`, `crio-`, `libpod-`, `docker-`).

use std::path::{Path, PathBuf};

use crate::target::{Cgroup, CgroupError, Hierarchy};

/// Shortest hex id prefix matched as a prefix, as `docker ps` short ids (12).
pub const MIN_PREFIX_LEN: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum FindError {
    #[error(
        "{0:?} is not a container id; ids are letters, digits, '_', '-' and '.' (a hex id may be shortened to {MIN_PREFIX_LEN} characters)"
    )]
    BadId(String),
    #[error("no cgroup for container {id} under {mount}; is it running? (`ctr task ls`, `crictl ps`, `podman ps`)")]
    NotFound { id: String, mount: PathBuf },
    #[error(
        "container id {id} is too short: a shortened id needs at least {MIN_PREFIX_LEN} characters (as `docker ps` and `crictl ps` show it)"
    )]
    TooShort { id: String },
    #[error("container id {id} is ambiguous: it matches {0}; give more characters", .paths.join(", "))]
    Ambiguous { id: String, paths: Vec<String> },
    #[error(
        "{id} names {path}, which holds {children} other cgroups ({examples}) and no process of its own: a pod, namespace or slice, not one container; give the id of one container (`crictl ps`, `ctr -n NAMESPACE task ls`), or --cgroup {path} to record them all"
    )]
    Parent { id: String, path: PathBuf, children: usize, examples: String },
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
}

/// Finds the one cgroup whose directory name is the container id (or a
/// `<prefix>-<id>.scope` unit). A prefix of the id is accepted if unique.
/// A match that only holds other cgroups (`kubepods`, a pod, a `ctr`
/// namespace) is refused: it would record every container below it.
pub fn container_cgroup(hierarchy: &Hierarchy, id: &str) -> Result<Cgroup, FindError> {
    let valid = !id.is_empty()
        && id != "."
        && id != ".."
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if !valid {
        return Err(FindError::BadId(id.to_owned()));
    }
    let dirs: Vec<PathBuf> = hierarchy.root()?.descendants().into_iter().map(|(_, dir)| dir).collect();
    let mut found: Vec<PathBuf> = dirs
        .iter()
        .filter(|dir| dir.file_name().and_then(|n| n.to_str()).is_some_and(|name| matches_id(name, id)))
        .cloned()
        .collect();
    // A match with a descendant that matches too (runc's nested init cgroup)
    // is one container: keep the outermost.
    found.sort();
    found.dedup_by(|b, a| b.starts_with(&*a));
    match found.as_slice() {
        [] if is_short_prefix_of_any(&dirs, id) => Err(FindError::TooShort { id: id.to_owned() }),
        [] => Err(FindError::NotFound { id: id.to_owned(), mount: hierarchy.mount().to_path_buf() }),
        [one] => {
            let children = other_children(one, id);
            if !children.is_empty() && !has_own_processes(one) {
                let mut examples = children.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
                if children.len() > 3 {
                    examples.push_str(", ...");
                }
                return Err(FindError::Parent {
                    id: id.to_owned(),
                    path: one.clone(),
                    children: children.len(),
                    examples,
                });
            }
            Ok(hierarchy.open(one)?)
        }
        many => Err(FindError::Ambiguous {
            id: id.to_owned(),
            paths: many.iter().map(|p| p.display().to_string()).collect(),
        }),
    }
}

/// The child cgroups of `dir` that are not the container `id` itself
/// (runc's nested cgroup of the same name is), sorted.
fn other_children(dir: &Path, id: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| !matches_id(name, id))
        .collect();
    names.sort();
    names
}

/// Whether processes sit in `dir` itself. A container's cgroup holds its
/// processes; a pod's, a namespace's or a slice only holds cgroups (cgroup
/// v2 keeps processes out of inner nodes that delegate controllers).
fn has_own_processes(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("cgroup.procs")).is_ok_and(|procs| !procs.trim().is_empty())
}

/// Every process in the cgroup directory `dir` and below it, lowest pid
/// first (a container's init is usually the lowest).
pub fn processes(dir: &std::path::Path) -> Vec<i32> {
    let mut pids = super::proc_text::pids(&std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default());
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            pids.extend(processes(&entry.path()));
        }
    }
    pids.sort_unstable();
    pids
}

/// `name` is the container's directory: exactly the id, a systemd unit
/// `<prefix>-<id>.scope`, or (for a hex id of 12+ characters) either of
/// those with the id shortened.
pub(crate) fn matches_id(name: &str, id: &str) -> bool {
    if name == id {
        return true;
    }
    let Some(unit) = name.strip_suffix(".scope") else {
        return is_hex_prefix(id, name);
    };
    let bare = unit.rsplit('-').next().unwrap_or(unit);
    bare == id || is_hex_prefix(id, bare)
}

/// The full container id a runtime named a cgroup directory after:
/// `<id>` (cgroupfs) or `<prefix>-<id>.scope` (systemd).
pub fn id_of_dir(name: &str) -> &str {
    match name.strip_suffix(".scope") {
        Some(unit) => unit.rsplit('-').next().unwrap_or(unit),
        None => name,
    }
}

/// Whether `id` is a hex prefix too short to be matched that some hex
/// container id under the hierarchy starts with: the user gave too few
/// characters, the container may well be running.
fn is_short_prefix_of_any(dirs: &[PathBuf], id: &str) -> bool {
    id.len() < MIN_PREFIX_LEN
        && id.bytes().all(|b| b.is_ascii_hexdigit())
        && dirs.iter().filter_map(|d| d.file_name().and_then(|n| n.to_str())).map(id_of_dir).any(|full| {
            full.len() >= MIN_PREFIX_LEN && full.starts_with(id) && full.bytes().all(|b| b.is_ascii_hexdigit())
        })
}

fn is_hex_prefix(id: &str, full: &str) -> bool {
    id.len() >= MIN_PREFIX_LEN && full.starts_with(id) && full.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_runtime_naming_schemes() {
        let id = "3f2a9c0d1e2b4a5c6d7e8f90";
        assert!(matches_id("3f2a9c0d1e2b4a5c6d7e8f90", "3f2a9c0d1e2b"));
        assert!(matches_id(&format!("cri-containerd-{id}.scope"), "3f2a9c0d1e2b"));
        assert!(matches_id(&format!("crio-{id}.scope"), id));
        assert!(matches_id(&format!("libpod-{id}.scope"), id));
        assert!(!matches_id("kubepods.slice", id));
        assert!(!matches_id("ffff9c0d1e2b", "3f2a9c0d1e2b"));
        assert!(matches_id("web-1", "web-1"));
        assert!(!matches_id("web-12", "web-1"), "non-hex ids match exactly");
    }

    #[test]
    fn unsafe_ids_are_refused() {
        let h = Hierarchy::find();
        if let Ok(h) = h {
            assert!(matches!(container_cgroup(&h, ""), Err(FindError::BadId(_))));
            assert!(matches!(container_cgroup(&h, ".."), Err(FindError::BadId(_))));
            assert!(matches!(container_cgroup(&h, "../../etc/passwd"), Err(FindError::BadId(_))));
            assert!(matches!(container_cgroup(&h, "no-such-container-xyz"), Err(FindError::NotFound { .. })));
        }
    }

    #[test]
    fn a_short_prefix_of_a_hex_id_is_told_apart_from_no_container() {
        let id = "3f2a9c0d1e2b4a5c6d7e8f90";
        let dirs = [PathBuf::from("/sys/fs/cgroup/kubepods/pod1").join(format!("cri-containerd-{id}.scope"))];
        assert!(is_short_prefix_of_any(&dirs, "3f2a9c0d"));
        assert!(!is_short_prefix_of_any(&dirs, "3f2a9c0d1e2b"), "12 characters are matched, not too short");
        assert!(!is_short_prefix_of_any(&dirs, "ffff9c0d"), "no container starts with it");
        assert!(!is_short_prefix_of_any(&dirs, "pod1"), "not hex");
    }
}
