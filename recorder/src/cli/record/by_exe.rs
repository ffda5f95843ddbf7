//! `record --by-exe FILE`: which executable made each call, written next to
//! the profile, with the risky calls' makers on stderr. The profile itself
//! does not change (a filter applies to the whole container).

use crate::{
    algebra::diff::risky,
    bpf::{Observation, by_exe_owned},
    profile::attribution::Attribution,
    syscalls::Family,
};

/// What `record -- CMD` calls the processes whose exec was not seen: the
/// command's process before it exec'd the command (nothing else in a fresh
/// cgroup can have escaped the exec hook).
pub const BEFORE_COMMAND_EXEC: &str = "(the command's process, before its exec)";

/// The attribution of the calls in `cgroups` (all when `None`); processes
/// whose exec was not seen are listed as `not_seen`.
pub fn attribution(
    observation: &Observation,
    cgroups: Option<&[u64]>,
    profile: String,
    container: Option<String>,
    not_seen: &str,
) -> Attribution {
    let executables = by_exe_owned(observation.by_exe(Family::host(), cgroups), not_seen);
    Attribution::new(profile, container, executables)
}

/// One stderr line per risky call: who made it.
pub fn print_risky(attribution: &Attribution) {
    let label = attribution.container.as_deref().map(|c| format!(" ({c})")).unwrap_or_default();
    for (name, exes) in &attribution.syscalls {
        let Some(why) = risky::reason(name) else { continue };
        let who = if exes.len() == 1 {
            format!("only {}", exes.iter().next().map_or("", String::as_str))
        } else {
            format!("made by {}", exes.iter().cloned().collect::<Vec<_>>().join(", "))
        };
        eprintln!("recorder: risky{label}: {name}: {who} ({why})");
    }
}
