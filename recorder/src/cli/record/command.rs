//! `record -- CMD`, `--cgroup`, `--pid` and `--container-id`: one profile.

use std::{collections::BTreeSet, time::Duration};

use super::{RecordArgs, summary};
use crate::{
    bpf::{Select, preflight},
    cli::exit::Failure,
    output::Output,
    profile::Profile,
    record::{self, Recording, Source, stop::StopPolicy},
    runtime::{base_set, shutdown},
    syscalls::Family,
    target::{Command, Hierarchy, container},
};

pub fn execute(args: RecordArgs, duration: Option<Duration>, stop: StopPolicy) -> Result<u8, Failure> {
    let output = Output::prepare(args.output.as_deref())?;
    let mut base: Option<BTreeSet<String>> = None;
    let source = if let Some(id) = &args.container_id {
        let cgroup = container::container_cgroup(&Hierarchy::find()?, id)?;
        // Startup is not observed: the runtime's post-filter calls come from
        // its shipped base set.
        base = Some(base_set::for_runtime(args.runtime.as_deref()));
        Source::Cgroup(cgroup.path)
    } else if let Some(path) = args.cgroup.clone() {
        Source::Cgroup(path)
    } else if let Some(pid) = args.pid {
        Source::Pid(pid)
    } else {
        Source::Command(Command::resolve(&args.command)?)
    };
    preflight::check_privileges()?;
    preflight::check_btf()?;

    let options = record::Options { source, duration, stop, status: !args.quiet, boundary: args.boundary };
    // With --until-exit the profile is written when --duration ends (the
    // workload still running), and again when the workload ends.
    let mut checkpoint = |r: &Recording| {
        if let Err(e) = write(r, base.as_ref(), &args, &output) {
            eprintln!("recorder: warning: {e}; recording goes on and writes again when the workload ends");
        }
    };
    let recording = record::record_with_checkpoint(options, &mut checkpoint)?;
    write(&recording, base.as_ref(), &args, &output)?;
    Ok(recording.exit_code())
}

/// Builds the profile from `recording` and writes it (and the summary).
fn write(
    recording: &Recording,
    base: Option<&BTreeSet<String>>,
    args: &RecordArgs,
    output: &Output,
) -> Result<(), Failure> {
    let family = Family::host();
    recording.observation.log_phases(family);
    let named = recording.observation.names(family, Select::PROFILE);
    named.warn_unknown();
    let mut recorded = named.all_owned();
    recorded.extend(base.into_iter().flatten().cloned());
    let completed = shutdown::complete(recorded, recording.ending.shutdown_observed(), !args.no_shutdown_set);
    let mut profile = Profile::allow_list(family, completed.names.iter().map(String::as_str));
    if !args.no_enosys_clone3 {
        profile = profile.with_enosys_clone3();
    }
    output.clone().commit(&profile.to_oci_json())?;
    if !args.quiet {
        eprintln!("{}", summary::line(recording, &completed, &output.describe()));
    }
    Ok(())
}
