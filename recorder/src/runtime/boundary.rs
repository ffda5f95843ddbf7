//! Boundary results: what a container's recorded calls mean once the BPF
//! side has split them at the runtime boundary (`recorder_common::Phase`).
//! Setup calls are the runtime's and stay out of the profile; the workload's
//! calls and the runtime's calls under the container's filter go in; and
//! when the start was not observed, the runtime's base set stands in for it.

use std::collections::BTreeSet;

use recorder_common::Phase;

use crate::{
    bpf::{Observation, Select},
    syscalls::Family,
};

/// One container's recorded calls, split at the boundary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerCalls {
    /// The names its profile needs: workload, post-filter runtime calls and
    /// the base set.
    pub names: BTreeSet<String>,
    /// The container's start was recorded (setup or post-filter calls seen).
    pub startup_observed: bool,
    /// Runtime setup calls that were left out, for reports.
    pub setup_excluded: BTreeSet<&'static str>,
}

/// The names a container's profile needs, from what was recorded in its
/// cgroup(s): the workload (`RUN`), what the runtime did under the filter
/// (`FILTERED`, when the filter install was observed) and the runtime's
/// shipped `base` set (which also covers calls that only happen on some
/// starts, like runc's `rt_sigreturn`). Setup calls are left out.
pub fn container_calls(
    observation: &Observation,
    cgroups: &[u64],
    base: &BTreeSet<String>,
    family: Family,
) -> ContainerCalls {
    let profile = observation.names(family, Select { cgroups: Some(cgroups), phases: &[Phase::RUN, Phase::FILTERED] });
    profile.warn_unknown();
    let mut names = base.clone();
    names.extend(profile.all_owned());
    let setup = observation.names(family, Select { cgroups: Some(cgroups), phases: &[Phase::SETUP] });
    let filtered = observation.calls(Select { cgroups: Some(cgroups), phases: &[Phase::FILTERED] });
    ContainerCalls { names, startup_observed: !setup.is_empty() || !filtered.is_empty(), setup_excluded: setup.all() }
}
