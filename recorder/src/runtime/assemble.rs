//! A recording's profile: the calls recorded per architecture, the
//! runtime's base set when the container's start was not seen, what every
//! process needs to end, and the shutdown set when the end was not seen.
//! `record`, `record --pod` and the daemon all build profiles here.

use std::collections::{BTreeMap, BTreeSet};

use super::shutdown::{self, Completed};
use crate::{
    profile::{AllowList, Profile},
    syscalls::{Arch, Family},
};

/// What a profile is assembled from.
#[derive(Clone, Debug, Default)]
pub struct Recorded {
    /// Names per architecture, as recorded.
    pub by_arch: BTreeMap<Arch, BTreeSet<String>>,
    /// The runtime's base set, when the start was not seen.
    pub base: Option<BTreeSet<String>>,
    pub shutdown_observed: bool,
    /// Add the shutdown set when the shutdown was not observed.
    pub add_shutdown_set: bool,
    /// Add the clone3 -> ENOSYS rule (as runtime defaults do).
    pub enosys_clone3: bool,
}

/// The assembled profile and what was added to it.
#[derive(Clone, Debug)]
pub struct Assembled {
    pub list: AllowList,
    pub completed: Completed,
    pub base_added: usize,
}

impl Assembled {
    pub fn profile(&self) -> &Profile {
        &self.list.profile
    }

    /// Distinct names the profile allows.
    pub fn syscall_count(&self) -> usize {
        self.completed.names.len()
    }
}

pub fn assemble(family: Family, recorded: &Recorded) -> Assembled {
    let mut by_arch = recorded.by_arch.clone();
    let native = by_arch.entry(family.native).or_default();
    let before = native.len();
    // The runtime and the shutdown path run natively.
    native.extend(recorded.base.iter().flatten().cloned());
    let base_added = native.len() - before;
    let all: BTreeSet<String> = by_arch.values().flatten().cloned().collect();
    let completed = shutdown::complete(all, recorded.shutdown_observed, recorded.add_shutdown_set);
    by_arch
        .entry(family.native)
        .or_default()
        .extend(completed.essentials_added.iter().chain(&completed.shutdown_added).cloned());
    let mut list = Profile::allow_list_by_arch(family, &by_arch);
    if recorded.enosys_clone3 {
        list.profile = list.profile.with_enosys_clone3();
    }
    Assembled { list, completed, base_added }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn additions_go_to_the_native_list_and_compat_stays_listed() {
        let family = Family::X86_64;
        let recorded = Recorded {
            by_arch: BTreeMap::from([(Arch::X86, BTreeSet::from(["socketcall".to_owned()]))]),
            base: Some(BTreeSet::from(["capset".to_owned()])),
            shutdown_observed: true,
            add_shutdown_set: true,
            enosys_clone3: true,
        };
        let a = assemble(family, &recorded);
        assert_eq!(a.profile().architectures, ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]);
        let names = a.profile().allowed_names();
        for n in ["socketcall", "capset", "exit", "exit_group"] {
            assert!(names.contains(n), "{n}");
        }
        assert_eq!(a.base_added, 1);
        assert!(a.profile().mentions("clone3"));
    }
}
