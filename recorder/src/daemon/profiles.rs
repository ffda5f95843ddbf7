//! Profiles from what the daemon learned: the recorded calls named per ABI,
//! plus what the recording could not see: the runtime's base set (its calls
//! after installing the container's filter), the calls every process needs
//! to end, and the shutdown set when no clean stop was seen.

use std::collections::{BTreeMap, BTreeSet};

use recorder_common::Abi;

use super::learned::Calls;
use crate::{
    runtime::{
        assemble::{Assembled, Recorded, assemble},
        base_set,
    },
    syscalls::{Arch, Family},
};

/// What a profile is built from.
pub struct Learned<'a> {
    pub calls: &'a Calls,
    pub clean_stop_seen: bool,
    /// The pod's runtime handler (runc, crun, or empty).
    pub runtime_handler: &'a str,
}

/// Syscall names of `calls` (profile phases) per architecture, per the
/// host's tables.
pub fn names(calls: &Calls) -> BTreeMap<Arch, BTreeSet<String>> {
    let family = Family::host();
    let mut names: BTreeMap<Arch, BTreeSet<String>> = BTreeMap::new();
    for (abi, bits) in calls.profile() {
        let Some(arch) = family.arch_for(Abi(abi)) else { continue };
        names.entry(arch).or_default().extend(bits.iter().filter_map(|nr| arch.name_of(nr)).map(str::to_owned));
    }
    names
}

/// The profile for `learned` (with the clone3 ENOSYS rule) and what was added
/// to it: the runtime's base set always, as `record` does (a container
/// started without a filter, the default for pods, shows no post-filter calls
/// at all, yet under its Localhost profile the runtime makes them after
/// installing the filter: runc's `fstatfs`, `execve`, ...; and even a start
/// seen under a filter misses the calls only some starts make, like runc's
/// `futex` and `rt_sigreturn`), the shutdown set when no clean stop was seen.
pub fn profile(learned: &Learned<'_>) -> Assembled {
    let runtime = match learned.runtime_handler {
        "" | "runc" => Some("runc"),
        "crun" => Some("crun"),
        _ => None,
    };
    assemble(
        Family::host(),
        &Recorded {
            by_arch: names(learned.calls),
            base: Some(base_set::for_runtime(runtime)),
            shutdown_observed: learned.clean_stop_seen,
            add_shutdown_set: true,
            enosys_clone3: true,
            // The daemon does not keep argument values (`record --args` does).
            args: BTreeMap::new(),
        },
    )
}
