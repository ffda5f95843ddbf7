//! Healing a profile from what it denied: the calls a workload attempted
//! under a profile and was refused (`recorder run --learn`, `record
//! --learn`, the daemon) are added, and the change is shown as a unified
//! diff with the risky additions called out.

use std::collections::{BTreeMap, BTreeSet};

use super::diff::risky;
use crate::profile::{Action, EvalContext, Profile, SyscallRule};

/// The patched profile and what changed.
#[derive(Debug)]
pub struct Suggestion {
    pub patched: Profile,
    /// Names added (not allowed before), with the architectures they were
    /// denied on.
    pub added: BTreeMap<String, BTreeSet<String>>,
    /// Added names that are risky, with why.
    pub risky: BTreeMap<String, &'static str>,
}

/// Adds `denied` (name -> architectures) to `profile`'s unconditional allow
/// rule (moby templates are evaluated for this host first).
pub fn suggest(profile: &Profile, denied: &BTreeMap<String, BTreeSet<String>>) -> Suggestion {
    let mut patched = if profile.is_template() { profile.evaluate(&EvalContext::host()) } else { profile.clone() };
    let allowed: BTreeSet<String> = patched.allowed_names().into_iter().map(str::to_owned).collect();
    let added: BTreeMap<String, BTreeSet<String>> =
        denied.iter().filter(|(name, _)| !allowed.contains(*name)).map(|(n, a)| (n.clone(), a.clone())).collect();
    if !added.is_empty() {
        let rule =
            patched.syscalls.iter_mut().find(|r| r.action == Action::Allow && r.args.is_empty() && !r.is_template());
        match rule {
            Some(rule) => {
                rule.names.extend(added.keys().cloned());
                rule.names.sort();
                rule.names.dedup();
            }
            None => patched.syscalls.push(SyscallRule::new(added.keys().cloned(), Action::Allow)),
        }
    }
    let risky = added.keys().filter_map(|n| risky::reason(n).map(|r| (n.clone(), r))).collect();
    Suggestion { patched, added, risky }
}

/// A unified diff of two texts, with `---`/`+++` headers.
pub fn unified_diff(old: &str, new: &str, old_label: &str, new_label: &str) -> String {
    similar::TextDiff::from_lines(old, new).unified_diff().context_radius(3).header(old_label, new_label).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syscalls::Family;

    #[test]
    fn denied_calls_are_added_once_and_risky_ones_named() {
        let profile = Profile::allow_list(Family::host(), ["read", "write"]);
        let arches = BTreeSet::from(["SCMP_ARCH_X86_64".to_owned()]);
        let denied = BTreeMap::from([
            ("getcpu".to_owned(), arches.clone()),
            ("ptrace".to_owned(), arches),
            ("read".to_owned(), BTreeSet::new()),
        ]);
        let s = suggest(&profile, &denied);
        assert_eq!(s.added.keys().cloned().collect::<Vec<_>>(), ["getcpu", "ptrace"]);
        assert!(s.risky.contains_key("ptrace"));
        assert_eq!(s.patched.allowed_names(), BTreeSet::from(["getcpu", "ptrace", "read", "write"]));
        let diff = unified_diff(&profile.to_oci_json(), &s.patched.to_oci_json(), "a", "b");
        assert!(diff.contains("+        \"getcpu\","), "{diff}");
    }
}
