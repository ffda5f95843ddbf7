//! Comparing two profiles name by name, per architecture.
//!
//! Both sides are plain (evaluated) profiles. A name is *permitted* when some
//! argument values let it run; it is *conditional* when only some do. The
//! three sets `only_in_profile`, `only_in_base` and `in_both` partition the
//! permitted names; `conditional` says, for each name either side allows only
//! with certain arguments, what those arguments are.

mod report;
pub mod risky;

use std::collections::{BTreeMap, BTreeSet};

pub use report::{describe, human, json};

use crate::profile::{
    ArgCondition, Profile,
    arches::{arch_rank, effective_arches},
    catalog,
};

/// How a profile treats one syscall on one architecture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Treatment {
    Blocked,
    Allowed,
    /// Runs only when one of these condition sets (each an AND) matches.
    AllowedWhen(Vec<Vec<ArgCondition>>),
    /// Runs unless one of these condition sets matches (deny-list profiles).
    BlockedWhen(Vec<Vec<ArgCondition>>),
}

impl Treatment {
    pub fn permits(&self) -> bool {
        !matches!(self, Treatment::Blocked)
    }

    pub fn is_conditional(&self) -> bool {
        matches!(self, Treatment::AllowedWhen(_) | Treatment::BlockedWhen(_))
    }
}

/// One side of a comparison.
#[derive(Clone, Debug)]
pub struct Side {
    pub label: String,
    pub profile: Profile,
}

/// The comparison on one architecture.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArchDiff {
    pub base: BTreeSet<String>,
    pub profile: BTreeSet<String>,
    pub only_in_profile: BTreeSet<String>,
    pub only_in_base: BTreeSet<String>,
    pub in_both: BTreeSet<String>,
    /// name -> (base's treatment, profile's treatment), when either is conditional.
    pub conditional: BTreeMap<String, (Treatment, Treatment)>,
    /// Risky names the profile permits.
    pub risky: BTreeSet<String>,
}

/// The whole comparison.
#[derive(Clone, Debug)]
pub struct Diff {
    pub base_label: String,
    pub profile_label: String,
    /// Architectures compared, in canonical order.
    pub arches: Vec<String>,
    pub per_arch: BTreeMap<String, ArchDiff>,
    /// `diff --by-exe`: call -> the executables that made it (from
    /// `record --by-exe`); shown for risky calls.
    pub made_by: BTreeMap<String, BTreeSet<String>>,
}

impl Diff {
    /// The per-architecture results in `arches` order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &ArchDiff)> {
        self.arches.iter().filter_map(|a| self.per_arch.get(a).map(|d| (a, d)))
    }

    /// Is every architecture's result the same?
    pub fn uniform(&self) -> bool {
        let mut it = self.iter().map(|(_, d)| d);
        let first = it.next();
        it.all(|d| Some(d) == first)
    }
}

/// How `p` treats `name` (ignoring architecture).
pub fn treatment(p: &Profile, name: &str) -> Treatment {
    let rules: Vec<_> = p.syscalls.iter().filter(|r| r.names.iter().any(|n| n == name)).collect();
    let mut when: Vec<Vec<ArgCondition>> = Vec::new();
    if p.default_action.lets_through() {
        if rules.iter().any(|r| !r.action.lets_through() && r.args.is_empty())
            && !rules.iter().any(|r| r.action.lets_through() && r.args.is_empty())
        {
            return Treatment::Blocked;
        }
        when.extend(rules.iter().filter(|r| !r.action.lets_through() && !r.args.is_empty()).map(|r| r.args.clone()));
        when.sort();
        when.dedup();
        return if when.is_empty() { Treatment::Allowed } else { Treatment::BlockedWhen(when) };
    }
    if rules.iter().any(|r| r.action.lets_through() && r.args.is_empty()) {
        return Treatment::Allowed;
    }
    when.extend(rules.iter().filter(|r| r.action.lets_through()).map(|r| r.args.clone()));
    when.sort();
    when.dedup();
    if when.is_empty() { Treatment::Blocked } else { Treatment::AllowedWhen(when) }
}

/// Compares `profile` with `base`.
pub fn diff(base: &Side, profile: &Side) -> Diff {
    let base_arches = effective_arches(&base.profile);
    let prof_arches = effective_arches(&profile.profile);
    let mut arches: Vec<String> = base_arches.iter().chain(&prof_arches).cloned().collect();
    arches.sort_by_key(|a| arch_rank(a));
    arches.dedup();

    let mut universe: BTreeSet<&str> = BTreeSet::new();
    for p in [&base.profile, &profile.profile] {
        universe.extend(p.syscalls.iter().flat_map(|r| r.names.iter().map(String::as_str)));
        if p.default_action.lets_through() {
            universe.extend(catalog::known_syscalls().iter().copied());
        }
    }
    // Treatments do not depend on the architecture (OCI rules apply to every
    // listed one), only on whether the architecture is filtered at all.
    let base_t: BTreeMap<&str, Treatment> = universe.iter().map(|n| (*n, treatment(&base.profile, n))).collect();
    let prof_t: BTreeMap<&str, Treatment> = universe.iter().map(|n| (*n, treatment(&profile.profile, n))).collect();

    let mut per_arch = BTreeMap::new();
    for arch in &arches {
        let in_base = base_arches.contains(arch);
        let in_prof = prof_arches.contains(arch);
        let mut d = ArchDiff::default();
        for name in &universe {
            let b = if in_base { base_t.get(name).cloned().unwrap_or(Treatment::Blocked) } else { Treatment::Blocked };
            let p = if in_prof { prof_t.get(name).cloned().unwrap_or(Treatment::Blocked) } else { Treatment::Blocked };
            let name = (*name).to_owned();
            if b.permits() {
                d.base.insert(name.clone());
            }
            if p.permits() {
                d.profile.insert(name.clone());
                if risky::reason(&name).is_some() {
                    d.risky.insert(name.clone());
                }
            }
            match (b.permits(), p.permits()) {
                (true, true) => d.in_both.insert(name.clone()),
                (true, false) => d.only_in_base.insert(name.clone()),
                (false, true) => d.only_in_profile.insert(name.clone()),
                (false, false) => false,
            };
            if b.is_conditional() || p.is_conditional() {
                d.conditional.insert(name, (b, p));
            }
        }
        per_arch.insert(arch.clone(), d);
    }
    Diff {
        base_label: base.label.clone(),
        profile_label: profile.label.clone(),
        arches,
        per_arch,
        made_by: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests;
