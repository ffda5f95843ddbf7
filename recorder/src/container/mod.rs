//! Containers: where a container's cgroup is, which of its syscalls belong
//! to the runtime's setup, and what the runtime itself needs after it
//! installed the container's filter (the base set).

pub mod base_set;
pub mod bundle;
pub mod find;

use std::collections::BTreeSet;

use recorder_common::phase;

use crate::{bpf::Observation, syscalls::Family};

/// The syscall names a container's profile needs, from what was recorded in
/// its cgroup(s): the workload (`RUN`), what the runtime did under the
/// filter (`FILTERED`, when the filter install was observed) and the
/// runtime's shipped base set (which also covers calls that only happen on
/// some starts, like runc's `rt_sigreturn`). Setup calls are left out.
pub fn profile_names(
    observation: &Observation,
    cgroups: &[u64],
    base: &BTreeSet<String>,
    family: Family,
) -> (BTreeSet<String>, Vec<u32>) {
    let mut names: BTreeSet<String> = base.clone();
    let mut unknown = Vec::new();
    for id in cgroups {
        for (tag, nr) in observation.calls(Some(*id), &[phase::RUN, phase::FILTERED]) {
            match family.arch_for_tag(tag).and_then(|arch| arch.name_of(nr)) {
                Some(name) => {
                    names.insert(name.to_owned());
                }
                None => unknown.push(nr),
            }
        }
    }
    (names, unknown)
}

/// Names of the runtime setup calls that were left out, for reports.
pub fn setup_names(observation: &Observation, cgroups: &[u64], family: Family) -> BTreeSet<&'static str> {
    cgroups
        .iter()
        .flat_map(|id| observation.calls(Some(*id), &[phase::SETUP]))
        .filter_map(|(tag, nr)| family.arch_for_tag(tag).and_then(|arch| arch.name_of(nr)))
        .collect()
}
