//! `record -- CMD`, `--cgroup`, `--pid` and `--container-id`: one profile.

use std::{collections::BTreeSet, time::Duration};

use super::{RecordArgs, summary};
use crate::{
    bpf::{Select, preflight},
    cli::exit::Failure,
    output::Output,
    profile::Profile,
    record::{self, Source},
    runtime::base_set,
    syscalls::Family,
    target::{Command, Hierarchy, container},
};

pub fn execute(args: RecordArgs, duration: Option<Duration>, grace: Duration) -> Result<u8, Failure> {
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

    let recording =
        record::record(record::Options { source, duration, grace, status: !args.quiet, boundary: args.boundary })?;
    let family = Family::host();
    recording.observation.log_phases(family);
    let named = recording.observation.names(family, Select::PROFILE);
    named.warn_unknown();
    let mut names = named.all_owned();
    names.extend(base.unwrap_or_default());
    let mut profile = Profile::allow_list(family, names.iter().map(String::as_str));
    if !args.no_enosys_clone3 {
        profile = profile.with_enosys_clone3();
    }
    let destination = output.describe();
    output.commit(&profile.to_oci_json())?;
    if !args.quiet {
        eprintln!("{}", summary::line(&recording, names.len(), &destination));
    }
    Ok(recording.exit_code())
}
