//! What the BPF side aggregated, read back: per (cgroup, ABI, phase), the
//! syscall numbers seen. Turning numbers into names happens here and
//! nowhere else.

use std::collections::{BTreeMap, BTreeSet};

use recorder_common::{Abi, CgroupKey, Phase};

use crate::syscalls::{Arch, Family};

/// Everything recorded so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observation {
    pub cgroups: BTreeMap<CgroupKey, BTreeSet<u32>>,
    /// `--args`: per (cgroup, native syscall number), the reduced argument
    /// values seen (`recorder_common::arg_reduce`).
    pub args: BTreeMap<(u64, u32), ArgValues>,
    /// `--by-exe`: per (cgroup, executable id, ABI), the numbers it made.
    pub exes: BTreeMap<(u64, u64, Abi), BTreeSet<u32>>,
    /// `--by-exe`: executable id -> the exec'd path.
    pub exe_paths: BTreeMap<u64, String>,
}

/// `--by-exe`, named: per executable path, the calls it made per
/// architecture. Processes whose exec was not seen are under
/// [`EXEC_NOT_SEEN`].
pub type ByExe = BTreeMap<String, BTreeMap<Arch, BTreeSet<&'static str>>>;

/// [`ByExe`] in owned strings, architectures by their `SCMP_ARCH_*` names,
/// with [`EXEC_NOT_SEEN`] called `not_seen` (what the reader knows about
/// those processes).
pub fn by_exe_owned(by_exe: ByExe, not_seen: &str) -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    by_exe
        .into_iter()
        .map(|(exe, by_arch)| {
            let exe = if exe == EXEC_NOT_SEEN { not_seen.to_owned() } else { exe };
            let by_arch = by_arch
                .into_iter()
                .map(|(arch, names)| (arch.scmp_name().to_owned(), names.into_iter().map(str::to_owned).collect()))
                .collect();
            (exe, by_arch)
        })
        .collect()
}

/// The "path" of processes whose exec the recording did not see.
pub const EXEC_NOT_SEEN: &str = "(exec not seen)";

/// The argument values one call was made with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArgValues {
    pub values: BTreeSet<u64>,
    /// Values were lost (the kernel map was full): allow any arguments.
    pub overflow: bool,
}

impl ArgValues {
    pub fn merge(&mut self, other: &ArgValues) {
        self.values.extend(other.values.iter().copied());
        self.overflow |= other.overflow;
    }
}

/// Which part of an observation to name.
#[derive(Clone, Copy, Debug)]
pub struct Select<'a> {
    /// These cgroups only (`None`: all of them).
    pub cgroups: Option<&'a [u64]>,
    /// These phases only.
    pub phases: &'a [Phase],
}

impl Select<'_> {
    /// Every cgroup, the phases that belong in a profile: the workload and
    /// what the runtime did under the container's filter.
    pub const PROFILE: Select<'static> = Select { cgroups: None, phases: &[Phase::RUN, Phase::FILTERED] };

    fn matches(&self, key: &CgroupKey) -> bool {
        self.cgroups.is_none_or(|ids| ids.contains(&key.cgroup_id)) && self.phases.contains(&key.phase)
    }
}

/// Syscall names, per architecture, and the numbers no table knows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Named {
    pub by_arch: BTreeMap<Arch, BTreeSet<&'static str>>,
    /// (ABI, number) pairs that are not in the syscall tables.
    pub unknown: BTreeSet<(Abi, u32)>,
}

impl Named {
    /// Every name, whatever its architecture.
    pub fn all(&self) -> BTreeSet<&'static str> {
        self.by_arch.values().flatten().copied().collect()
    }

    /// Every name, as owned strings.
    pub fn all_owned(&self) -> BTreeSet<String> {
        self.by_arch.values().flatten().map(|n| (*n).to_owned()).collect()
    }

    /// Names per architecture, as owned strings.
    pub fn by_arch_owned(&self) -> BTreeMap<Arch, BTreeSet<String>> {
        self.by_arch.iter().map(|(arch, names)| (*arch, names.iter().map(|n| (*n).to_owned()).collect())).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.by_arch.values().all(BTreeSet::is_empty)
    }

    /// Logs every unknown number once (they are left out of profiles).
    pub fn warn_unknown(&self) {
        for (abi, nr) in &self.unknown {
            tracing::warn!("syscall number {nr} (ABI {abi:?}) is not in the syscall tables; left out of the profile");
        }
    }
}

impl Observation {
    /// Distinct (ABI, number) pairs in the selected part.
    pub fn calls(&self, select: Select<'_>) -> BTreeSet<(Abi, u32)> {
        self.cgroups
            .iter()
            .filter(|(key, _)| select.matches(key))
            .flat_map(|(key, calls)| calls.iter().map(move |nr| (key.abi, *nr)))
            .collect()
    }

    /// Adds what `other` recorded (a harvested cgroup, a restart).
    pub fn merge(&mut self, other: Observation) {
        for (key, calls) in other.cgroups {
            self.cgroups.entry(key).or_default().extend(calls);
        }
        for (key, values) in other.args {
            self.args.entry(key).or_default().merge(&values);
        }
        for (key, calls) in other.exes {
            self.exes.entry(key).or_default().extend(calls);
        }
        self.exe_paths.extend(other.exe_paths);
    }

    /// `--by-exe`: the calls each executable made, over `cgroups` (all when
    /// `None`), named with `family`'s tables.
    pub fn by_exe(&self, family: Family, cgroups: Option<&[u64]>) -> ByExe {
        let mut out = ByExe::new();
        for ((cgroup, exe, abi), calls) in &self.exes {
            if cgroups.is_none_or(|ids| ids.contains(cgroup)) {
                self.book_exe(&mut out, family, *exe, *abi, calls);
            }
        }
        out
    }

    /// `--by-exe` for each cgroup, in one pass (the daemon, every poll).
    pub fn by_exe_per_cgroup(&self, family: Family) -> BTreeMap<u64, ByExe> {
        let mut out: BTreeMap<u64, ByExe> = BTreeMap::new();
        for ((cgroup, exe, abi), calls) in &self.exes {
            self.book_exe(out.entry(*cgroup).or_default(), family, *exe, *abi, calls);
        }
        out
    }

    fn book_exe(&self, out: &mut ByExe, family: Family, exe: u64, abi: Abi, calls: &BTreeSet<u32>) {
        let Some(arch) = family.arch_for(abi) else { return };
        let path = match (exe, self.exe_paths.get(&exe)) {
            (recorder_common::EXE_NOT_SEEN, _) => EXEC_NOT_SEEN.to_owned(),
            (_, Some(path)) => path.clone(),
            // EXE_PATHS was full when it was exec'd.
            (id, None) => format!("(path not kept: {id:016x})"),
        };
        out.entry(path).or_default().entry(arch).or_default().extend(calls.iter().filter_map(|nr| arch.name_of(*nr)));
    }

    /// `--args`: argument values per native syscall name, over `cgroups`
    /// (all when `None`).
    pub fn arg_values(&self, family: Family, cgroups: Option<&[u64]>) -> BTreeMap<String, ArgValues> {
        let mut out: BTreeMap<String, ArgValues> = BTreeMap::new();
        for ((cgroup, nr), values) in &self.args {
            if cgroups.is_some_and(|ids| !ids.contains(cgroup)) {
                continue;
            }
            if let Some(name) = family.native.name_of(*nr) {
                out.entry(name.to_owned()).or_default().merge(values);
            }
        }
        out
    }

    /// The selected part, named with `family`'s tables.
    pub fn names(&self, family: Family, select: Select<'_>) -> Named {
        let mut named = Named::default();
        for (abi, nr) in self.calls(select) {
            match family.arch_for(abi).and_then(|arch| arch.name_of(nr).map(|name| (arch, name))) {
                Some((arch, name)) => {
                    named.by_arch.entry(arch).or_default().insert(name);
                }
                None => {
                    named.unknown.insert((abi, nr));
                }
            }
        }
        named
    }

    /// The cgroups that made any syscall.
    pub fn cgroup_ids(&self) -> BTreeSet<u64> {
        self.cgroups.keys().map(|k| k.cgroup_id).collect()
    }

    /// Distinct (ABI, number) pairs over all cgroups and phases.
    pub fn distinct(&self) -> BTreeSet<(Abi, u32)> {
        self.cgroups.iter().flat_map(|(key, calls)| calls.iter().map(move |nr| (key.abi, *nr))).collect()
    }

    /// With -v: each cgroup's calls by phase.
    pub fn log_phases(&self, family: Family) {
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return;
        }
        for id in self.cgroup_ids() {
            for phase in [Phase::SETUP, Phase::FILTERED, Phase::RUN] {
                let names = self.names(family, Select { cgroups: Some(&[id]), phases: &[phase] }).all();
                if !names.is_empty() {
                    let names: Vec<&str> = names.into_iter().collect();
                    tracing::debug!(cgroup = id, phase = ?phase, "{}", names.join(" "));
                }
            }
        }
    }
}

/// A call a seccomp filter denied, named.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Denied {
    pub arch: &'static str,
    pub name: String,
    /// The process's name (`comm`).
    pub process: String,
    pub count: u64,
    #[serde(skip)]
    pub cgroup_id: u64,
}

/// Names the denials of a learn-mode recording; numbers no table knows are
/// kept as `syscall_<n>` (a denial must not vanish from a report).
pub fn name_denials(family: Family, denials: &BTreeMap<recorder_common::DenialKey, u64>) -> Vec<Denied> {
    let mut named: Vec<Denied> = denials
        .iter()
        .filter_map(|(key, count)| {
            let arch = family.arch_for(key.abi)?;
            let name = arch.name_of(key.nr).map_or_else(|| format!("syscall_{}", key.nr), str::to_owned);
            let end = key.comm.iter().position(|b| *b == 0).unwrap_or(key.comm.len());
            let process = String::from_utf8_lossy(&key.comm[..end]).into_owned();
            Some(Denied { arch: arch.scmp_name(), name, process, count: *count, cgroup_id: key.cgroup_id })
        })
        .collect();
    named.sort();
    named
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(cgroup_id: u64, abi: Abi, phase: Phase) -> CgroupKey {
        CgroupKey { cgroup_id, abi, phase }
    }

    #[test]
    fn names_per_abi_and_phase() {
        let mut obs = Observation::default();
        // 59 is execve natively; 5 is fstat natively but open on ia32.
        obs.cgroups.insert(key(1, Abi::NATIVE, Phase::RUN), BTreeSet::from([59, 5]));
        obs.cgroups.insert(key(1, Abi::COMPAT, Phase::RUN), BTreeSet::from([5]));
        obs.cgroups.insert(key(2, Abi::NATIVE, Phase::SETUP), BTreeSet::from([155]));
        obs.cgroups.insert(key(2, Abi::NATIVE, Phase::RUN), BTreeSet::from([1023]));
        let family = Family::X86_64;
        let named = obs.names(family, Select::PROFILE);
        assert_eq!(named.by_arch[&Arch::X86_64], BTreeSet::from(["execve", "fstat"]));
        assert_eq!(named.by_arch[&Arch::X86], BTreeSet::from(["open"]));
        assert_eq!(named.unknown, BTreeSet::from([(Abi::NATIVE, 1023)]));
        let setup = obs.names(family, Select { cgroups: Some(&[2]), phases: &[Phase::SETUP] });
        assert_eq!(setup.all(), BTreeSet::from(["pivot_root"]));
    }
}
