//! Profiles from what the daemon learned: the recorded calls named per ABI,
//! plus what the recording could not see: the runtime's base set when no
//! replica's start was seen, the calls every process needs to end, and the
//! shutdown set when no clean stop was seen.

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
    pub startup_seen: bool,
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

/// The profile for `learned` (with the clone3 ENOSYS rule): the base set
/// when no replica's start was seen or no filter was (an unconfined pod,
/// the default: the runtime's post-filter calls were never observed as
/// such), the shutdown set when no clean stop was.
pub fn profile(learned: &Learned<'_>) -> Assembled {
    let base = (!learned.startup_seen || !learned.calls.saw_filter()).then(|| {
        let runtime = match learned.runtime_handler {
            "" | "runc" => Some("runc"),
            "crun" => Some("crun"),
            _ => None,
        };
        base_set::for_runtime(runtime)
    });
    assemble(
        Family::host(),
        &Recorded {
            by_arch: names(learned.calls),
            base,
            shutdown_observed: learned.clean_stop_seen,
            add_shutdown_set: true,
            enosys_clone3: true,
            // The daemon does not keep argument values (`record --args` does).
            args: BTreeMap::new(),
        },
    )
}
