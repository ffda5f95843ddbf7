//! Is the filter really applied? A running process's real seccomp state,
//! read from outside (`read`: `/proc/<pid>/status` and
//! `PTRACE_SECCOMP_GET_FILTER`), and each filter evaluated for every
//! syscall number of every architecture of this kernel (`cbpf`): the
//! effective allow set, as a profile the diff can compare.

pub mod cbpf;
pub mod read;

use std::collections::{BTreeMap, BTreeSet};

use self::cbpf::Insn;
pub use self::read::{ReadError, Status};
use crate::{
    profile::{Action, ArgCondition, Op, Profile, SyscallRule},
    syscalls::{Arch, Family},
};

const RET_ACTION_FULL: u32 = 0xffff_0000;
const RET_ALLOW: u32 = 0x7fff_0000;
const RET_LOG: u32 = 0x7ffc_0000;

/// What the filters do with one architecture's calls.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArchView {
    pub arch: Option<Arch>,
    /// Allowed whatever the arguments.
    pub allowed: BTreeSet<String>,
    /// Allowed for some argument values only.
    pub conditional: BTreeSet<String>,
    /// How the other calls are refused: action -> how many calls.
    pub denied: BTreeMap<String, usize>,
    /// Calls the interpreter could not evaluate (malformed or too branchy).
    pub unknown: BTreeSet<String>,
}

impl ArchView {
    pub fn permitted(&self) -> BTreeSet<String> {
        self.allowed.union(&self.conditional).cloned().collect()
    }
}

/// A process's seccomp state.
#[derive(Clone, Debug)]
pub struct Inspection {
    pub pid: i32,
    pub status: Status,
    /// Instructions per filter, most recent first.
    pub filter_lengths: Vec<usize>,
    /// Per architecture of this kernel, native first (empty when unconfined).
    pub arches: Vec<ArchView>,
}

impl Inspection {
    pub fn unconfined(&self) -> bool {
        self.status.mode == 0
    }

    /// The native architecture's view.
    pub fn native(&self) -> Option<&ArchView> {
        self.arches.first()
    }

    /// The effective allow set as a plain profile (one name list for the
    /// architectures that allow anything, as OCI writes it): allowed names
    /// unconditionally, conditional ones under a marker condition that the
    /// diff reports as "allowed only with these arguments".
    pub fn to_profile(&self) -> Profile {
        if self.unconfined() {
            return Profile::empty(Action::Allow);
        }
        let mut profile = Profile::empty(Action::Errno);
        profile.default_errno_ret = Some(1);
        let mut allowed = BTreeSet::new();
        let mut conditional = BTreeSet::new();
        for view in &self.arches {
            let Some(arch) = view.arch else { continue };
            if view.allowed.is_empty() && view.conditional.is_empty() {
                continue;
            }
            profile.architectures.push(arch.scmp_name().to_owned());
            allowed.extend(view.allowed.iter().cloned());
            conditional.extend(view.conditional.iter().cloned());
        }
        let conditional: BTreeSet<String> = conditional.difference(&allowed).cloned().collect();
        if !allowed.is_empty() {
            profile.syscalls.push(SyscallRule::new(&allowed, Action::Allow));
        }
        if !conditional.is_empty() {
            let mut rule = SyscallRule::new(&conditional, Action::Allow);
            // "some argument values": arg0's low bit set, as a stand-in the
            // diff shows as a condition (the filter's own is not recovered).
            rule.args = vec![ArgCondition { index: 0, value: 1, value_two: 1, op: Op::MaskedEqual }];
            profile.syscalls.push(rule);
        }
        profile
    }
}

/// The audit architecture (`AUDIT_ARCH_*`) and number bits of `arch`.
pub fn audit_arch(arch: Arch) -> Option<(u32, u32)> {
    Some(match arch {
        Arch::X86_64 => (0xc000_003e, 0),
        Arch::X32 => (0xc000_003e, 0x4000_0000),
        Arch::X86 => (0x4000_0003, 0),
        Arch::Aarch64 => (0xc000_00b7, 0),
        Arch::Arm => (0x4000_0028, 0),
        Arch::Riscv64 => (0xc000_00f3, 0),
        _ => return None,
    })
}

/// Reads `pid`'s state and evaluates its filters.
pub fn inspect(pid: i32) -> Result<Inspection, ReadError> {
    let status = read::status(pid)?;
    let filters = if status.mode == 2 { read::filters(pid)? } else { Vec::new() };
    let arches = if filters.is_empty() { Vec::new() } else { evaluate(&filters, Family::host()) };
    Ok(Inspection { pid, filter_lengths: filters.iter().map(Vec::len).collect(), status, arches })
}

/// Every named syscall of every architecture of `family`, through every
/// filter. The kernel runs all filters and keeps the strictest action
/// (`seccomp_run_filters`: the lowest `(s32)(ret & SECCOMP_RET_ACTION_FULL)`).
pub fn evaluate(filters: &[Vec<Insn>], family: Family) -> Vec<ArchView> {
    [Some(family.native), family.compat, family.x32]
        .into_iter()
        .flatten()
        .filter_map(|arch| {
            let (audit, bits) = audit_arch(arch)?;
            let mut view = ArchView { arch: Some(arch), ..ArchView::default() };
            for name in arch.names() {
                let Some(nr) = arch.number_of(name) else { continue };
                let mut always = true;
                let mut sometimes = true;
                let mut strictest: Option<u32> = None;
                let mut unknown = false;
                for prog in filters {
                    let Some(outs) = cbpf::outcomes(prog, nr | bits, audit) else {
                        unknown = true;
                        break;
                    };
                    always &= outs.iter().all(|r| lets_through(*r));
                    sometimes &= outs.iter().any(|r| lets_through(*r));
                    for r in outs.iter().filter(|r| !lets_through(**r)) {
                        if strictest.is_none_or(|s| stricter(*r, s)) {
                            strictest = Some(*r);
                        }
                    }
                }
                if unknown {
                    view.unknown.insert(name.to_owned());
                } else if always {
                    view.allowed.insert(name.to_owned());
                } else if sometimes {
                    view.conditional.insert(name.to_owned());
                } else if let Some(r) = strictest {
                    *view.denied.entry(action_name(r)).or_default() += 1;
                }
            }
            Some(view)
        })
        .collect()
}

fn lets_through(ret: u32) -> bool {
    matches!(ret & RET_ACTION_FULL, RET_ALLOW | RET_LOG)
}

fn stricter(a: u32, b: u32) -> bool {
    ((a & RET_ACTION_FULL) as i32) < ((b & RET_ACTION_FULL) as i32)
}

/// `ERRNO(1)`, `KILL_THREAD`, ... for a filter's return value.
pub fn action_name(ret: u32) -> String {
    match ret & RET_ACTION_FULL {
        0x8000_0000 => "KILL_PROCESS".to_owned(),
        0x0000_0000 => "KILL_THREAD".to_owned(),
        0x0003_0000 => "TRAP".to_owned(),
        0x0005_0000 => format!("ERRNO({})", ret & 0xffff),
        0x7fc0_0000 => "USER_NOTIF".to_owned(),
        0x7ff0_0000 => "TRACE".to_owned(),
        RET_LOG => "LOG".to_owned(),
        RET_ALLOW => "ALLOW".to_owned(),
        other => format!("{other:#x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_unconfined_or_read() {
        let me = i32::try_from(std::process::id()).expect("pid");
        let s = read::status(me).expect("status");
        assert!(s.mode <= 2);
        assert!(!s.name.is_empty());
    }

    #[test]
    fn strictest_action_wins() {
        assert!(stricter(0x8000_0000, 0)); // KILL_PROCESS over KILL_THREAD
        assert!(stricter(0, 0x0005_0001)); // KILL_THREAD over ERRNO
        assert!(stricter(0x0005_0026, RET_ALLOW));
        assert_eq!(action_name(0x0005_0026), "ERRNO(38)");
    }
}
