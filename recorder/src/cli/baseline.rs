//! `recorder baseline`: what a container runtime itself needs under the
//! container's filter (its post-filter base set), derived by recording it.

use std::{collections::BTreeSet, path::PathBuf, process::Command};

use recorder_common::phase;

use crate::{
    bpf::Probe,
    cgroup::Hierarchy,
    container::{
        base_set::BaseSet,
        bundle::{Bundle, first_line},
    },
    exit::{Code, Failure},
    output::Output,
    preflight,
    syscalls::Family,
    target::Command as Resolved,
};

const BASELINE_EXAMPLES: &str = "\
Examples:
  recorder baseline --runtime runc -o runc.json
  recorder baseline --runtime crun --runs 20
  recorder baseline --runtime /opt/bin/runc

Starts a container whose entrypoint only exits, --runs times, directly with
the runtime (`create`, `start`, `delete` on a fresh OCI bundle with a permissive seccomp
filter, so the runtime installs one; half the starts with noNewPrivileges,
half without, since the runtime's calls under the filter differ). The recording splits
each start at the runtime's own seccomp() / prctl(PR_SET_SECCOMP) call: what
that thread does afterwards, up to and including the execve of the
entrypoint, is the base set. Nothing is matched by runtime name. recorder
ships the sets it derived for Debian's runc and crun (recorder/data/baseline).";

/// Derive the syscalls a container runtime makes after installing the
/// container's seccomp filter (what every profile it enforces must allow).
#[derive(Debug, clap::Args)]
#[command(after_help = BASELINE_EXAMPLES)]
pub struct BaselineArgs {
    /// The runtime: a name looked up in PATH (runc, crun) or a path.
    #[arg(long, value_name = "RUNTIME")]
    pub runtime: String,
    /// Container starts to record; calls that happen on only some starts
    /// (a signal arriving, a futex wake) need several.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub runs: u32,
    /// Write the base set (JSON) here, atomically. `-` or no -o: stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn execute(args: BaselineArgs) -> Result<u8, Failure> {
    let output = Output::prepare(args.output.as_deref()).map_err(|e| Failure::new(Code::OutputUnwritable, e))?;
    let runtime = Resolved::resolve(&[args.runtime.clone().into()]).map_err(super::record::command_failure)?.program;
    preflight::check_privileges().map_err(|e| Failure::new(Code::NotPrivileged, e))?;
    preflight::check_btf().map_err(|e| Failure::new(Code::KernelUnsupported, e))?;
    let version = Command::new(&runtime)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or("").trim().to_owned())
        .unwrap_or_default();
    let name = runtime.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();

    let hierarchy = Hierarchy::find().map_err(|e| super::record::record_failure(e.into()))?;
    let parent = hierarchy.create_for_recording().map_err(|e| super::record::record_failure(e.into()))?;
    let parent_rel = parent.path.strip_prefix(hierarchy.mount()).unwrap_or(&parent.path).to_path_buf();
    let probe = Probe::attach(&parent, true).map_err(|e| super::record::record_failure(e.into()))?;

    let mut failures = Vec::new();
    for run in 0..args.runs {
        let id = format!("recorder-baseline-{}-{run}", std::process::id());
        let cgroups_path = format!("/{}/{id}", parent_rel.display());
        // Half the starts with no_new_privs, half without: the runtime's
        // post-filter calls differ, and a profile must work either way.
        let bundle = Bundle::create(&runtime, &cgroups_path, run % 2 == 0).map_err(|e| Failure::new(Code::RuntimeFailed, e))?;
        let out = bundle.run(&runtime, &id).map_err(|e| Failure::new(Code::RuntimeFailed, e))?;
        if !out.status.success() {
            failures.push(first_line(&out));
        }
    }
    if failures.len() as u32 == args.runs {
        return Err(Failure::new(
            Code::RuntimeFailed,
            anyhow::anyhow!("{name} could not start the test container: {}", failures[0]),
        ));
    }
    let observation = probe.observe().map_err(|e| super::record::record_failure(e.into()))?;
    drop(probe);
    remove_v1_leftovers(&parent_rel);

    let family = Family::host();
    let names = |phases: &[u32]| -> BTreeSet<String> {
        observation
            .calls(None, phases)
            .into_iter()
            .filter_map(|(tag, nr)| family.arch_for_tag(tag).and_then(|a| a.name_of(nr)))
            .map(str::to_owned)
            .collect()
    };
    let filtered = names(&[phase::FILTERED]);
    if filtered.is_empty() {
        return Err(Failure::new(
            Code::RuntimeFailed,
            anyhow::anyhow!(
                "{name} never installed the container's seccomp filter in {} runs; is seccomp enabled in this build of {name}?",
                args.runs
            ),
        ));
    }
    let base = BaseSet { runtime: name.clone(), version, runs: args.runs, syscalls: filtered.into_iter().collect() };
    let mut text = serde_json::to_string_pretty(&base).map_err(|e| Failure::new(Code::Internal, e))?;
    text.push('\n');
    let destination = output.describe();
    output.commit(&text).map_err(|e| Failure::new(Code::OutputUnwritable, e))?;
    eprintln!(
        "recorder: {name} needs {} syscalls after installing the filter ({} runs, {} failed) -> {destination}; setup calls seen and excluded: {}",
        base.syscalls.len(),
        args.runs,
        failures.len(),
        names(&[phase::SETUP]).len()
    );
    Ok(0)
}

/// On hybrid hosts the runtime also created our parent path in every v1
/// controller hierarchy; remove those empty directories (best effort).
fn remove_v1_leftovers(rel: &std::path::Path) {
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
