//! `record --likely` and `--with-likely`: the paths not taken, for the
//! executables this recording saw exec'd, read as the workload sees them
//! (`/proc/<pid>/root` of one of its processes; the host's root for
//! `record -- CMD`).

use std::{
    collections::{BTreeMap, BTreeSet},
    os::unix::fs::MetadataExt as _,
    path::Path,
};

use crate::{
    audit::{Likely, Root},
    bpf::Observation,
    cli::likely as report,
    profile::Profile,
    syscalls::{Arch, Family},
};

/// Where the executables' files are read.
pub enum Files {
    /// The host's root; relative exec paths are relative to this directory
    /// (`record -- CMD` starts CMD in the recorder's own).
    Host { cwd: Option<std::path::PathBuf> },
    /// A running process's root.
    Pid(i32),
    /// Nothing of the workload runs any more.
    Gone,
}

/// The result for one profile: the likely calls (direct evidence only),
/// those left out, and a note when the files could not be read.
pub struct Found {
    pub likely: Likely,
    pub library_only: usize,
    pub note: Option<String>,
}

/// Executables of `cgroups` (all when `None`) that the recording saw exec'd.
pub fn executables(observation: &Observation, cgroups: Option<&[u64]>) -> Vec<String> {
    observation
        .by_exe(Family::host(), cgroups)
        .into_keys()
        .filter(|e| !e.starts_with('('))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

pub fn find(observation: &Observation, cgroups: Option<&[u64]>, files: &Files, profile: &Profile) -> Found {
    let mut paths = executables(observation, cgroups);
    let root = match files {
        Files::Host { cwd } => {
            if let Some(cwd) = cwd {
                for p in &mut paths {
                    if !p.starts_with('/') {
                        *p = cwd.join(&*p).display().to_string();
                    }
                }
            }
            Root::open(Path::new("/"))
        }
        Files::Pid(pid) => Root::of_pid(*pid),
        Files::Gone => {
            return Found {
                likely: Likely::default(),
                library_only: 0,
                note: Some(
                    "the workload's processes are gone, so its files cannot be read; run `recorder likely` with --root"
                        .to_owned(),
                ),
            };
        }
    };
    match root {
        Ok(root) => {
            let (likely, library_only) = report::analyze(&paths, &root, profile, false);
            Found { likely, library_only, note: None }
        }
        Err(e) => Found { likely: Likely::default(), library_only: 0, note: Some(e.to_string()) },
    }
}

/// The native names with the likely calls added (for `--with-likely`).
pub fn merged(by_arch: &BTreeMap<Arch, BTreeSet<String>>, found: &Found) -> BTreeMap<Arch, BTreeSet<String>> {
    let mut out = by_arch.clone();
    out.entry(Family::host().native).or_default().extend(found.likely.calls.keys().cloned());
    out
}

/// The lines `record` prints for one profile.
pub fn print(found: &Found, merged: bool, label: &str) {
    if let Some(note) = &found.note {
        eprintln!("recorder: paths not taken{label}: not analysed: {note}");
        return;
    }
    let n = found.likely.calls.len();
    let verdict = if merged {
        "allowed in the profile on purpose (--with-likely; \"predicted, not observed\" in the JSON summary)"
    } else {
        "NOT in the profile; review them, or --with-likely adds them"
    };
    eprintln!(
        "recorder: paths not taken{label}: {} the executables can make, never called while recording, {verdict}{}",
        crate::text::count(n as u64, "likely call", "likely calls"),
        if n > 0 { ":" } else { "" }
    );
    eprint!("{}", report::render(&found.likely, "", "  "));
    if found.library_only > 0 {
        eprintln!(
            "  (and {} that only a library they load imports: `recorder likely --libraries`)",
            crate::text::count(found.library_only as u64, "more", "more")
        );
    }
}

/// The `likely` key of a profile's JSON summary.
pub fn json(found: &Found, merged: bool) -> serde_json::Value {
    let mut v = report::json(&found.likely, merged, found.library_only);
    if let (Some(note), Some(object)) = (&found.note, v.as_object_mut()) {
        object.insert("not_analysed".to_owned(), serde_json::json!(note));
    }
    v
}

/// A running process in one of `cgroups` (v2 ids), from `pids`; or any
/// process of the cgroup directory `dir`.
pub fn pid_in(pids: &[i32], cgroups: &[u64], v2_mount: &Path) -> Option<i32> {
    pids.iter().copied().find(|pid| {
        std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .ok()
            .and_then(|text| crate::target::proc_text::v2_path(&text).map(str::to_owned))
            .and_then(|rel| std::fs::metadata(v2_mount.join(rel.trim_start_matches('/'))).ok())
            .is_some_and(|m| cgroups.contains(&m.ino()))
    })
}

/// A process of the cgroup directory `dir` (or below it).
pub fn pid_of_cgroup(dir: &Path) -> Option<i32> {
    crate::target::container::processes(dir).into_iter().next()
}
