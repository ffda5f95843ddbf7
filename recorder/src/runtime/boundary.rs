//! Boundary results: what a container's recorded calls mean once the BPF
//! side has split them at the runtime boundary (`recorder_common::Phase`).
//! Setup calls are the runtime's and stay out of the profile; the workload's
//! calls and the runtime's calls under the container's filter go in.

use std::collections::{BTreeMap, BTreeSet};

use recorder_common::Phase;

use crate::{
    bpf::{Observation, Select},
    syscalls::{Arch, Family},
};

/// One container's recorded calls, split at the boundary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerCalls {
    /// Per architecture, the names its profile needs: the workload and the
    /// runtime's post-filter calls.
    pub by_arch: BTreeMap<Arch, BTreeSet<String>>,
    /// The container's start was recorded (setup or post-filter calls seen).
    pub startup_observed: bool,
    /// Runtime setup calls that were left out, for reports.
    pub setup_excluded: BTreeSet<&'static str>,
}

/// What was recorded in a container's cgroup(s): the workload (`RUN`) and
/// what the runtime did under the filter (`FILTERED`, when the filter
/// install was observed). Setup calls are left out.
pub fn container_calls(observation: &Observation, cgroups: &[u64], family: Family) -> ContainerCalls {
    let profile = observation.names(family, Select { cgroups: Some(cgroups), phases: &[Phase::RUN, Phase::FILTERED] });
    profile.warn_unknown();
    let by_arch = profile.by_arch_owned();
    let setup = observation.names(family, Select { cgroups: Some(cgroups), phases: &[Phase::SETUP] });
    let filtered = observation.calls(Select { cgroups: Some(cgroups), phases: &[Phase::FILTERED] });
    ContainerCalls { by_arch, startup_observed: !setup.is_empty() || !filtered.is_empty(), setup_excluded: setup.all() }
}
