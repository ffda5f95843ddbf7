//! A recording's profile: the calls recorded per architecture, the
//! runtime's base set when the container's start was not seen, what every
//! process needs to end, and the shutdown set when the end was not seen.
//! `record`, `record --pod` and the daemon all build profiles here.

use std::collections::{BTreeMap, BTreeSet};

use recorder_common::arg_reduce;

use super::shutdown::{self, Completed};
use crate::{
    bpf::ArgValues,
    profile::{Action, AllowList, ArgCondition, Op, Profile, SyscallRule},
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
    /// `--args`: per native syscall name, the argument values seen.
    pub args: BTreeMap<String, ArgValues>,
}

/// The assembled profile and what was added to it.
#[derive(Clone, Debug)]
pub struct Assembled {
    pub list: AllowList,
    pub completed: Completed,
    pub base_added: usize,
    /// Calls allowed only with the recorded argument values.
    pub conditioned: BTreeMap<String, usize>,
    /// Calls whose values did not fit (too many, or the kernel map was
    /// full): allowed with any arguments.
    pub unconditioned: BTreeSet<String>,
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
    // Values were kept for the workload's native calls only: a name that
    // something else needs (the runtime, the shutdown set, another ABI) may
    // need other values, so it stays unconditioned.
    let mut needs_any: BTreeSet<String> = recorded.base.iter().flatten().cloned().collect();
    needs_any.extend(completed.essentials_added.iter().cloned());
    if completed.shutdown_set_applied {
        needs_any.extend(shutdown::shutdown_set());
    }
    for (arch, names) in &recorded.by_arch {
        if *arch != family.native {
            needs_any.extend(names.iter().cloned());
        }
    }
    let (conditioned, unconditioned) = condition_arguments(&mut list.profile, &recorded.args, &needs_any);
    if recorded.enosys_clone3 {
        list.profile = list.profile.with_enosys_clone3();
    }
    Assembled { list, completed, base_added, conditioned, unconditioned }
}

/// Values beyond which a call is allowed with any arguments.
pub const MAX_ARG_VALUES: usize = 16;

/// The conditions that allow call `name` with one reduced value (the
/// inverse of recorder-ebpf's `args::reduce`). `None`: not a watched call.
fn conditions(name: &str, value: u64) -> Option<Vec<ArgCondition>> {
    let eq = |index, value| ArgCondition { index, value, value_two: 0, op: Op::Equal };
    let masked = |index, mask, value| ArgCondition { index, value: mask, value_two: value, op: Op::MaskedEqual };
    Some(match name {
        "socket" => vec![eq(0, value >> 32), masked(1, arg_reduce::SOCK_TYPE_MASK, value & 0xffff_ffff)],
        "clone" => vec![masked(0, arg_reduce::CLONE_NEW_MASK, value)],
        // A 32-bit argument compared whatever a caller left in the upper half.
        "personality" | "prctl" => vec![masked(0, 0xffff_ffff, value)],
        "ioctl" | "fcntl" => vec![masked(1, 0xffff_ffff, value)],
        "mmap" | "mprotect" => vec![masked(2, arg_reduce::PROT_EXEC, value)],
        _ => return None,
    })
}

/// Replaces each watched call's unconditional allow with one rule per
/// recorded value. Calls with too many values, or lost ones, stay
/// unconditional. Returns (conditioned calls and their rule counts, calls
/// left unconditional).
fn condition_arguments(
    profile: &mut Profile,
    args: &BTreeMap<String, ArgValues>,
    needs_any: &BTreeSet<String>,
) -> (BTreeMap<String, usize>, BTreeSet<String>) {
    let mut conditioned = BTreeMap::new();
    let mut unconditioned = BTreeSet::new();
    let allowed = profile.allowed_names().into_iter().map(str::to_owned).collect::<BTreeSet<_>>();
    for (name, values) in args {
        if !allowed.contains(name) || conditions(name, 0).is_none() {
            continue;
        }
        // mmap/mprotect with and without PROT_EXEC: nothing to restrict.
        let all_prot = matches!(name.as_str(), "mmap" | "mprotect") && values.values.len() == 2;
        let too_many = values.overflow || values.values.len() > MAX_ARG_VALUES;
        if too_many || needs_any.contains(name) || values.values.is_empty() || all_prot {
            if too_many || needs_any.contains(name) {
                unconditioned.insert(name.clone());
            }
            continue;
        }
        for rule in profile.syscalls.iter_mut().filter(|r| r.action == Action::Allow && r.args.is_empty()) {
            rule.names.retain(|n| n != name);
        }
        for value in &values.values {
            if let Some(args) = conditions(name, *value) {
                let mut rule = SyscallRule::new([name.clone()], Action::Allow);
                rule.args = args;
                profile.syscalls.push(rule);
            }
        }
        conditioned.insert(name.clone(), values.values.len());
    }
    profile.syscalls.retain(|r| !r.names.is_empty());
    (conditioned, unconditioned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_argument_values_become_rules() {
        let family = Family::X86_64;
        let names: BTreeSet<String> = ["socket", "clone", "read", "mmap"].into_iter().map(str::to_owned).collect();
        let args = BTreeMap::from([
            // AF_INET stream, AF_UNIX datagram.
            (
                "socket".to_owned(),
                ArgValues { values: BTreeSet::from([(2 << 32) | 1, (1 << 32) | 2]), overflow: false },
            ),
            ("clone".to_owned(), ArgValues { values: BTreeSet::from([0]), overflow: false }),
            ("mmap".to_owned(), ArgValues { values: BTreeSet::from([0, 4]), overflow: false }),
        ]);
        let recorded = Recorded {
            by_arch: BTreeMap::from([(Arch::X86_64, names)]),
            base: None,
            shutdown_observed: true,
            add_shutdown_set: false,
            enosys_clone3: false,
            args,
        };
        let a = assemble(family, &recorded);
        let p = a.profile();
        assert!(!p.allowed_names().contains("socket"), "socket is conditional now");
        assert!(p.allowed_names().contains("mmap"), "PROT_EXEC both ways: nothing to restrict");
        let socket_rules: Vec<_> = p.syscalls.iter().filter(|r| r.names == ["socket"]).collect();
        assert_eq!(socket_rules.len(), 2);
        assert_eq!(socket_rules[0].args[0], ArgCondition { index: 0, value: 1, value_two: 0, op: Op::Equal });
        assert_eq!(a.conditioned["socket"], 2);
        let clone = p.syscalls.iter().find(|r| r.names == ["clone"]).expect("clone rule");
        assert_eq!(clone.args[0].value, arg_reduce::CLONE_NEW_MASK);
        assert_eq!(clone.args[0].value_two, 0, "no namespace flags allowed");
    }

    #[test]
    fn calls_others_need_keep_any_arguments() {
        let family = Family::X86_64;
        let args = BTreeMap::from([
            ("prctl".to_owned(), ArgValues { values: BTreeSet::from([15]), overflow: false }),
            ("ioctl".to_owned(), ArgValues { values: BTreeSet::from([0x5401]), overflow: false }),
            ("fcntl".to_owned(), ArgValues { values: BTreeSet::from([1]), overflow: false }),
        ]);
        let recorded = Recorded {
            by_arch: BTreeMap::from([
                (Arch::X86_64, BTreeSet::from(["prctl".to_owned(), "ioctl".to_owned(), "fcntl".to_owned()])),
                (Arch::X86, BTreeSet::from(["ioctl".to_owned()])),
            ]),
            // The runtime calls prctl after the filter is in place.
            base: Some(BTreeSet::from(["prctl".to_owned()])),
            shutdown_observed: true,
            add_shutdown_set: false,
            enosys_clone3: false,
            args,
        };
        let a = assemble(family, &recorded);
        assert_eq!(a.unconditioned, BTreeSet::from(["ioctl".to_owned(), "prctl".to_owned()]));
        assert_eq!(a.conditioned.keys().collect::<Vec<_>>(), ["fcntl"]);
        assert!(a.profile().allowed_names().contains("prctl"));
        assert!(a.profile().allowed_names().contains("ioctl"));
    }

    #[test]
    fn additions_go_to_the_native_list_and_compat_stays_listed() {
        let family = Family::X86_64;
        let recorded = Recorded {
            by_arch: BTreeMap::from([(Arch::X86, BTreeSet::from(["socketcall".to_owned()]))]),
            base: Some(BTreeSet::from(["capset".to_owned()])),
            shutdown_observed: true,
            add_shutdown_set: true,
            enosys_clone3: true,
            args: BTreeMap::new(),
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
