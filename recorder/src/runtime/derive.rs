//! Deriving a runtime's base set by recording it: start a container whose
//! entrypoint only exits, many times, directly with the runtime, and keep
//! what the filter-installing thread did after its seccomp call.

use std::{path::Path, process::Command, time::Duration};

use recorder_common::Phase;

use super::{
    base_set::BaseSet,
    bundle::{Bundle, BundleError, first_line},
    supervise::{self, RunError, Scratch},
};
use crate::{
    bpf::{BpfError, Probe, ProbeConfig, Select},
    syscalls::Family,
    target::{CgroupError, Hierarchy},
};

#[derive(Debug, thiserror::Error)]
pub enum DeriveError {
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Bpf(#[from] BpfError),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error("reading BPF maps failed: {0}")]
    Map(#[from] aya::maps::MapError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("cannot create a scratch directory in {}: {source}", std::env::temp_dir().display())]
    Scratch {
        #[source]
        source: std::io::Error,
    },
    #[error("{runtime} could not start the test container: {first}")]
    NeverStarted { runtime: String, first: String },
    #[error(
        "{runtime} never installed the container's seccomp filter in {runs} runs; is seccomp enabled in this build of {runtime}?"
    )]
    NoFilter { runtime: String, runs: u32 },
}

/// What a derivation found.
#[derive(Debug)]
pub struct Derivation {
    pub base: BaseSet,
    /// First line of each failed start's error.
    pub failures: Vec<String>,
    /// Distinct setup calls seen (and excluded).
    pub setup_calls: usize,
}

/// Records `runs` container starts by `runtime` (a path), half of them with
/// no_new_privs and half without: the runtime installs the filter at a
/// different point, and a profile must work either way.
/// Each runtime command may take `timeout`; past it, or on SIGINT/SIGTERM,
/// what it started is killed and nothing is derived.
pub fn derive(runtime: &Path, runs: u32, timeout: Duration) -> Result<Derivation, DeriveError> {
    supervise::catch_stop_signals();
    let scratch = Scratch::create().map_err(|source| DeriveError::Scratch { source })?;
    let version = supervise::run(Command::new(runtime).arg("--version"), &scratch.path().join("version"), timeout)
        .map(|o| String::from_utf8_lossy(&o.stderr).lines().next().unwrap_or("").trim().to_owned())?;
    let name = runtime.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let hierarchy = Hierarchy::find()?;
    let parent = hierarchy.create_for_recording()?;
    let parent_rel = parent.path.strip_prefix(hierarchy.mount()).unwrap_or(&parent.path).to_path_buf();
    let probe = Probe::attach(&ProbeConfig {
        target: (*parent).clone(),
        boundary: true,
        slots: 64,
        pin: None,
        learn: false,
        args: false,
        by_exe: false,
    })?;
    let mut failures = Vec::new();
    for run in 0..runs {
        let id = format!("recorder-baseline-{}-{run}", std::process::id());
        let cgroups_path = format!("/{}/{id}", parent_rel.display());
        let bundle = Bundle::create(scratch.path(), runtime, &cgroups_path, run % 2 == 0, timeout)?;
        let out = bundle.run(runtime, &id, timeout)?;
        if !out.status.success() {
            failures.push(first_line(&out));
        }
    }
    if failures.len() as u32 == runs {
        let first = failures.into_iter().next().unwrap_or_default();
        return Err(DeriveError::NeverStarted { runtime: name, first });
    }
    let observation = probe.observe()?;
    drop(probe);
    remove_v1_leftovers(&parent_rel);
    let family = Family::host();
    let filtered = observation.names(family, Select { cgroups: None, phases: &[Phase::FILTERED] });
    if filtered.is_empty() {
        return Err(DeriveError::NoFilter { runtime: name, runs });
    }
    let setup_calls = observation.names(family, Select { cgroups: None, phases: &[Phase::SETUP] }).all().len();
    let base = BaseSet { runtime: name, version, runs, syscalls: filtered.all_owned().into_iter().collect() };
    Ok(Derivation { base, failures, setup_calls })
}

/// On hybrid hosts the runtime also created our parent path in every v1
/// controller hierarchy; remove those empty directories (best effort).
fn remove_v1_leftovers(rel: &Path) {
    let Ok(mounts) = procfs::process::Process::myself().and_then(|p| p.mountinfo()) else { return };
    for m in mounts.into_iter().filter(|m| m.fs_type == "cgroup") {
        // rel and then its parents (`recorder/`), as long as they are empty.
        let mut dir = m.mount_point.join(rel);
        while dir != m.mount_point && dir.is_dir() && std::fs::remove_dir(&dir).is_ok() {
            if !dir.pop() {
                break;
            }
        }
    }
}
