//! Profiles from what the daemon learned: the recorded calls named per ABI,
//! plus what the recording could not see: the runtime's base set (its calls
//! after installing the container's filter), the calls every process needs
//! to end, and the shutdown set when no clean stop was seen.

use std::collections::BTreeSet;

use recorder_common::Abi;

use super::learned::Calls;
use crate::{
    profile::Profile,
    runtime::{base_set, shutdown},
    syscalls::Family,
};

/// What a profile is built from.
pub struct Learned<'a> {
    pub calls: &'a Calls,
    pub clean_stop_seen: bool,
    /// The pod's runtime handler (runc, crun, or empty).
    pub runtime_handler: &'a str,
}

/// The names, with what was added and why.
#[derive(Debug, Default)]
pub struct Built {
    pub names: BTreeSet<String>,
    pub base_added: bool,
    pub shutdown_added: bool,
}

/// Syscall names of `calls` (profile phases), per the host's tables.
pub fn names(calls: &Calls) -> BTreeSet<String> {
    let family = Family::host();
    let mut names = BTreeSet::new();
    for (abi, bits) in calls.profile() {
        let Some(arch) = family.arch_for(Abi(abi)) else { continue };
        names.extend(bits.iter().filter_map(|nr| arch.name_of(nr)).map(str::to_owned));
    }
    names
}

pub fn build(learned: &Learned<'_>) -> Built {
    let mut recorded = names(learned.calls);
    // Always, as `record` does: a container started without a filter (the
    // default for pods) shows no post-filter calls at all, yet under its
    // Localhost profile the runtime makes them after installing the filter
    // (runc: `fstatfs`, `execve`, ...); and even a start seen under a filter
    // misses the calls only some starts make (runc's `futex`, `rt_sigreturn`).
    let runtime = match learned.runtime_handler {
        "" | "runc" => Some("runc"),
        "crun" => Some("crun"),
        _ => None,
    };
    recorded.extend(base_set::for_runtime(runtime));
    let completed = shutdown::complete(recorded, learned.clean_stop_seen, true);
    Built { names: completed.names, base_added: true, shutdown_added: completed.shutdown_set_applied }
}

/// The OCI profile for `learned` (with the clone3 ENOSYS rule).
pub fn profile(learned: &Learned<'_>) -> (Profile, Built) {
    let built = build(learned);
    let profile = Profile::allow_list(Family::host(), built.names.iter().map(String::as_str)).with_enosys_clone3();
    (profile, built)
}
