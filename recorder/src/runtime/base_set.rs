//! The syscalls an OCI runtime makes after installing the container's
//! seccomp filter, shipped as data derived by `recorder baseline`.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// A runtime's post-filter base set, as `recorder baseline` writes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseSet {
    /// Runtime binary name (`runc`, `crun`).
    pub runtime: String,
    /// First line of `<runtime> --version` where it was derived.
    pub version: String,
    /// How many container starts were recorded.
    pub runs: u32,
    /// Sorted syscall names.
    pub syscalls: Vec<String>,
}

/// Derived with `recorder baseline --runtime runc` from Debian 12's runc.
const RUNC: &str = include_str!("../../data/baseline/runc.json");
/// Derived with `recorder baseline --runtime crun` from Debian 12's crun.
const CRUN: &str = include_str!("../../data/baseline/crun.json");

/// Runtimes with a shipped base set.
pub const KNOWN: [&str; 2] = ["runc", "crun"];

/// The shipped base set for `runtime`.
pub fn shipped(runtime: &str) -> Option<BaseSet> {
    let text = match runtime {
        "runc" => RUNC,
        "crun" => CRUN,
        _ => return None,
    };
    serde_json::from_str(text).ok()
}

/// The union of every shipped base set: for containers whose runtime is not
/// known (it only ever adds the runtime's own few calls).
pub fn union_of_shipped() -> BTreeSet<String> {
    KNOWN.iter().filter_map(|r| shipped(r)).flat_map(|b| b.syscalls).collect()
}

/// The base set for a runtime name, or the union when it is unknown.
pub fn for_runtime(runtime: Option<&str>) -> BTreeSet<String> {
    match runtime.and_then(shipped) {
        Some(base) => base.syscalls.into_iter().collect(),
        None => union_of_shipped(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_sets_parse_and_hold_execve() {
        for runtime in KNOWN {
            let base = shipped(runtime).expect("shipped data parses");
            assert_eq!(base.runtime, runtime);
            assert!(base.syscalls.iter().any(|s| s == "execve"), "{runtime}");
            let mut sorted = base.syscalls.clone();
            sorted.sort();
            assert_eq!(sorted, base.syscalls);
        }
        assert!(union_of_shipped().contains("fstatfs"));
    }
}
