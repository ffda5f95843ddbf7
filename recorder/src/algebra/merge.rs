//! Merging profiles recorded from replicas, nodes or test runs.
//!
//! The result permits a syscall (with given arguments) when any input does,
//! on the union of the inputs' architectures, so each input's workload still
//! runs. Per syscall name:
//! - any input allows it unconditionally: one unconditional ALLOW;
//! - otherwise the union of the inputs' argument-conditioned rules is kept
//!   (seccomp ORs rules, so this allows exactly what some input allowed); when
//!   every input agrees on them nothing changes, and when they disagree a
//!   warning says so;
//! - a name no input lets through keeps its strictest deny rule (e.g. the
//!   clone3 ENOSYS rule).
//!
//! `defaultAction` is never loosened: the strictest input's wins, with a
//! warning when the inputs disagree. The result is canonical (one rule per
//! action and argument set, names sorted), so merging is commutative,
//! associative and idempotent on that form.

use std::collections::{BTreeMap, BTreeSet};

use crate::{
    profile::arches::{arch_rank, effective_arches},
    profile::{Action, ArgCondition, DEFAULT_ERRNO, EvalContext, Profile, SyscallRule},
    syscalls::Arch,
};

/// How many inputs needed each syscall.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    pub inputs: usize,
    pub syscalls: BTreeMap<String, usize>,
}

impl Coverage {
    /// Compact JSON for the SPO annotation.
    pub fn to_annotation(&self) -> String {
        serde_json::json!({"inputs": self.inputs, "syscalls": self.syscalls}).to_string()
    }

    /// Pretty JSON for the OCI sidecar file.
    pub fn to_sidecar(&self, sources: &[String]) -> String {
        let v = serde_json::json!({"inputs": self.inputs, "sources": sources, "syscalls": self.syscalls});
        let mut text = serde_json::to_string_pretty(&v).unwrap_or_default();
        text.push('\n');
        text
    }
}

/// The SPO annotation key for coverage.
pub const COVERAGE_ANNOTATION: &str = "spo.x-k8s.io/syscall-coverage";

#[derive(Clone, Debug)]
pub struct Merged {
    pub profile: Profile,
    pub coverage: Coverage,
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("nothing to merge; pass at least one profile")]
    NoInputs,
}

/// The key rules are grouped by: action, errno, argument conditions.
type RuleKey = (Action, Option<u32>, Vec<ArgCondition>);

/// 64-bit architectures: one per kernel family (the others are their
/// compat ABIs).
const FAMILY_NATIVES: [Arch; 7] =
    [Arch::X86_64, Arch::Aarch64, Arch::Riscv64, Arch::Ppc64le, Arch::S390x, Arch::Mips64, Arch::Loongarch64];

/// When the inputs come from different kernel families (replicas of one
/// multi-arch image on amd64 and arm64 nodes), the merged profile lists
/// both families, each resolving the shared names on its own: say which
/// names one family permits that the other cannot have (arm64 has no
/// `open` or `dup2`; it uses `openat` and `dup3`).
fn cross_family_warnings(inputs: &[Profile]) -> Vec<String> {
    let native_of = |p: &Profile| -> Option<Arch> {
        effective_arches(p).iter().filter_map(|a| Arch::from_scmp_name(a)).find(|a| FAMILY_NATIVES.contains(a))
    };
    let families: BTreeSet<Arch> = inputs.iter().filter_map(native_of).collect();
    if families.len() < 2 {
        return Vec::new();
    }
    let mut warnings = vec![format!(
        "inputs come from {} kernel families ({}); the merged profile lists all of them, and each resolves the shared names on its own",
        families.len(),
        families.iter().map(|a| a.scmp_name()).collect::<Vec<_>>().join(", ")
    )];
    for p in inputs {
        let Some(mine) = native_of(p) else { continue };
        for other in families.iter().filter(|f| **f != mine) {
            let missing: BTreeSet<&str> = p
                .permitted_names()
                .into_iter()
                .filter(|n| mine.number_of(n).is_some() && other.number_of(n).is_none())
                .collect();
            if !missing.is_empty() {
                warnings.push(format!(
                    "{} permits calls {} does not have (it has their newer forms): {}",
                    mine.scmp_name(),
                    other.scmp_name(),
                    missing.into_iter().collect::<Vec<_>>().join(" ")
                ));
            }
        }
    }
    warnings.sort();
    warnings.dedup();
    warnings
}

/// Merges `inputs`. moby templates are evaluated for this host first.
pub fn merge(inputs: &[Profile]) -> Result<Merged, MergeError> {
    let first = inputs.first().ok_or(MergeError::NoInputs)?;
    let mut warnings = Vec::new();
    let ctx = EvalContext::host();
    let plain: Vec<Profile> =
        inputs.iter().map(|p| if p.is_template() { p.evaluate(&ctx) } else { p.clone() }).collect();
    if inputs.iter().any(Profile::is_template) {
        warnings.push("moby includes/excludes were evaluated for this host before merging".to_owned());
    }

    // Never loosen: the strictest default wins; ties broken by the full
    // value so the choice does not depend on input order.
    let default_key = |p: &Profile| {
        (
            p.default_action.strictness(),
            p.default_action,
            p.default_errno_ret.unwrap_or(DEFAULT_ERRNO),
            p.default_errno_ret,
        )
    };
    let strictest = plain.iter().max_by_key(|p| default_key(p)).unwrap_or(first);
    let mut out = Profile::empty(strictest.default_action);
    out.default_errno_ret = strictest.default_errno_ret;
    let defaults: BTreeSet<String> = plain
        .iter()
        // An unset errno is EPERM to every runtime: SPO's copy of an OCI
        // profile (v1 has no defaultErrnoRet) agrees with it.
        .map(|p| match p.default_errno_ret.or(p.default_action.takes_errno_ret().then_some(DEFAULT_ERRNO)) {
            Some(e) => format!("{} (errno {e})", p.default_action),
            None => p.default_action.to_string(),
        })
        .collect();
    if defaults.len() > 1 {
        warnings.push(format!(
            "inputs disagree on defaultAction ({}); kept the strictest, {}",
            defaults.into_iter().collect::<Vec<_>>().join(", "),
            out.default_action
        ));
    }

    // An empty list means "native only" to libseccomp; spell that out when
    // another input lists architectures, or the union would lose it.
    let any_listed = plain.iter().any(|p| !p.architectures.is_empty());
    let listed = |p: &Profile| {
        if any_listed { effective_arches(p) } else { Vec::new() }
    };
    let mut arches: Vec<String> = plain.iter().flat_map(listed).collect();
    arches.sort_by_key(|a| (arch_rank(a), a.clone()));
    arches.dedup();
    let arch_sets: BTreeSet<Vec<String>> = plain
        .iter()
        .map(|p| {
            let mut a = listed(p);
            a.sort();
            a
        })
        .collect();
    if arch_sets.len() > 1 {
        warnings.push(
            "inputs list different architectures; OCI rules apply to every listed architecture, so the union is used"
                .to_owned(),
        );
    }
    warnings.extend(cross_family_warnings(&plain));
    out.architectures = arches;
    let mut flags: Vec<String> = plain.iter().flat_map(|p| p.flags.iter().cloned()).collect();
    flags.sort();
    flags.dedup();
    out.flags = flags;
    out.listener_path = plain.iter().filter_map(|p| p.listener_path.clone()).max();
    out.listener_metadata = plain.iter().filter_map(|p| p.listener_metadata.clone()).max();

    // Per name: every input's rules for it.
    let mut per_name: BTreeMap<&str, Vec<BTreeSet<RuleKey>>> = BTreeMap::new();
    for p in &plain {
        let mut mine: BTreeMap<&str, BTreeSet<RuleKey>> = BTreeMap::new();
        for rule in &p.syscalls {
            for name in &rule.names {
                mine.entry(name).or_default().insert((rule.action, rule.errno_ret, rule.args.clone()));
            }
        }
        for (name, rules) in mine {
            per_name.entry(name).or_default().push(rules);
        }
    }

    let mut coverage = Coverage { inputs: plain.len(), syscalls: BTreeMap::new() };
    let mut grouped: BTreeMap<(u8, RuleKey), BTreeSet<String>> = BTreeMap::new();
    let mut disagreements = Vec::new();
    for (name, sets) in &per_name {
        let needed = sets.iter().filter(|s| s.iter().any(|(a, _, _)| a.lets_through())).count();
        if needed > 0 {
            coverage.syscalls.insert((*name).to_owned(), needed);
        }
        let all: BTreeSet<&RuleKey> = sets.iter().flatten().collect();
        let through: Vec<&RuleKey> = all.iter().copied().filter(|(a, _, _)| a.lets_through()).collect();
        let kept: Vec<RuleKey> = if let Some(best) =
            through.iter().filter(|(_, _, args)| args.is_empty()).min_by_key(|(a, _, _)| (a.strictness(), *a))
        {
            vec![(*best).clone()]
        } else if !through.is_empty() {
            let conditional: Vec<&BTreeSet<RuleKey>> =
                sets.iter().filter(|s| s.iter().any(|(a, _, _)| a.lets_through())).collect();
            if conditional.windows(2).any(|w| w[0] != w[1]) {
                disagreements.push((*name).to_owned());
            }
            through.into_iter().cloned().collect()
        } else {
            // Nobody lets it through: keep the strictest unconditional deny,
            // and any conditional ones.
            let mut kept: Vec<RuleKey> =
                all.iter().filter(|(_, _, args)| !args.is_empty()).map(|k| (*k).clone()).collect();
            if let Some(best) = all
                .iter()
                .filter(|(_, _, args)| args.is_empty())
                .max_by_key(|(a, e, _)| (a.strictness(), *a, e.unwrap_or(DEFAULT_ERRNO), *e))
            {
                kept.push((*best).clone());
            }
            kept
        };
        for key in kept {
            let rank = match (key.0.lets_through(), key.2.is_empty()) {
                (true, true) => 0,
                (true, false) => 1,
                (false, _) => 2,
            };
            grouped.entry((rank, key)).or_default().insert((*name).to_owned());
        }
    }
    if !disagreements.is_empty() {
        warnings.push(format!(
            "inputs allow {} only with different arguments; kept every input's conditions (allowed when any matches)",
            disagreements.join(", ")
        ));
    }
    out.syscalls = grouped
        .into_iter()
        .map(|((_, (action, errno_ret, args)), names)| {
            let mut rule = SyscallRule::new(names, action);
            rule.errno_ret = errno_ret;
            rule.args = args;
            rule
        })
        .collect();
    Ok(Merged { profile: out, coverage, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syscalls::Family;

    #[test]
    fn union_and_coverage() {
        let a = Profile::allow_list(Family::host(), ["read", "write"]);
        let b = Profile::allow_list(Family::host(), ["read", "openat"]);
        let m = merge(&[a.clone(), b]).expect("merges");
        assert_eq!(m.profile.allowed_names().into_iter().collect::<Vec<_>>(), ["openat", "read", "write"]);
        assert_eq!(m.coverage.syscalls.get("read"), Some(&2));
        assert_eq!(m.coverage.syscalls.get("write"), Some(&1));
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
        assert_eq!(merge(std::slice::from_ref(&a)).expect("merges").profile, a);
    }

    #[test]
    fn an_unset_errno_is_eperm_when_defaults_are_compared() {
        let oci = Profile::allow_list(Family::host(), ["read"]);
        assert_eq!(oci.default_errno_ret, Some(DEFAULT_ERRNO));
        let mut spo = oci.clone();
        spo.default_errno_ret = None;
        let m = merge(&[oci.clone(), spo.clone()]).expect("merges");
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
        spo.default_errno_ret = Some(38);
        assert!(!merge(&[oci, spo]).expect("merges").warnings.is_empty(), "ENOSYS and EPERM still disagree");
    }

    #[test]
    fn default_action_is_never_loosened() {
        let a = Profile::allow_list(Family::host(), ["read"]);
        let mut b = a.clone();
        b.default_action = Action::KillProcess;
        b.default_errno_ret = None;
        let m = merge(&[a, b]).expect("merges");
        assert_eq!(m.profile.default_action, Action::KillProcess);
        assert!(m.warnings.iter().any(|w| w.contains("disagree on defaultAction")), "{:?}", m.warnings);
    }

    #[test]
    fn argument_rules_survive_when_inputs_agree() {
        let mut a = Profile::allow_list(Family::host(), ["read"]);
        let mut rule = SyscallRule::new(["socket"], Action::Allow);
        rule.args = vec![ArgCondition { index: 0, value: 1, value_two: 0, op: crate::profile::Op::Equal }];
        a.syscalls.push(rule);
        let m = merge(&[a.clone(), a.clone()]).expect("merges");
        assert_eq!(
            crate::algebra::diff::treatment(&m.profile, "socket"),
            crate::algebra::diff::treatment(&a, "socket")
        );
        assert!(m.warnings.is_empty());
        // An input that needs socket with any arguments wins.
        let b = Profile::allow_list(Family::host(), ["socket"]);
        let m = merge(&[a, b]).expect("merges");
        assert_eq!(crate::algebra::diff::treatment(&m.profile, "socket"), crate::algebra::diff::Treatment::Allowed);
    }
}
