//! `record -- CMD`, `--cgroup`, `--pid` and `--container-id`: one profile.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use super::{RecordArgs, SummarySink, by_exe, likely, summary, with_added};
use crate::{
    bpf::{Select, name_denials, preflight},
    cli::exit::Failure,
    output::Output,
    profile::attribution::AttributionFile,
    record::{self, Recording, Source, stop::StopPolicy},
    runtime::{
        assemble::{Recorded, assemble},
        base_set,
    },
    syscalls::{Arch, Family},
    target::{Command, Hierarchy, container},
};

pub fn execute(args: RecordArgs, duration: Option<Duration>, stop: StopPolicy) -> Result<u8, Failure> {
    let output = Output::prepare(args.output.as_deref())?;
    let summary_sink = SummarySink::prepare(args.json_summary.as_deref(), Some(&output))?;
    let by_exe_sink = SummarySink::prepare(args.by_exe.as_deref(), Some(&output))?;
    SummarySink::ensure_distinct(summary_sink.as_ref(), by_exe_sink.as_ref())?;
    let name = super::object_name(args.format, args.name.as_deref(), args.output.as_deref(), None)?;
    let given_base = super::given_base_set(&args)?;
    let mut base: Option<BTreeSet<String>> = None;
    let mut cgroup_dir = args.cgroup.clone();
    let source = if let Some(id) = &args.container_id {
        let cgroup = container::container_cgroup(&Hierarchy::find()?, id)?;
        cgroup_dir = Some(cgroup.path.clone());
        // Startup is not observed: the runtime's post-filter calls come from
        // its shipped base set.
        base = Some(given_base.unwrap_or_else(|| base_set::for_runtime(args.runtime.as_deref())));
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

    let options = record::Options {
        source,
        duration,
        stop,
        status: !args.quiet,
        boundary: args.boundary,
        learn: args.learn,
        args: args.args,
        by_exe: args.by_exe.is_some() || args.likely || args.with_likely,
        enforce: None,
    };
    // With --until-exit the profile is written when --duration ends (the
    // workload still running), and again when the workload ends.
    let mut checkpoint = |r: &Recording| {
        if let Err(e) = write(r, base.as_ref(), &args, &output, name.clone(), cgroup_dir.as_deref()) {
            eprintln!("recorder: warning: {e}; recording goes on and writes again when the workload ends");
        }
    };
    let recording = record::record_with_checkpoint(options, &mut checkpoint)?;
    let profile = write(&recording, base.as_ref(), &args, &output, name, cgroup_dir.as_deref())?;
    if let Some(sink) = by_exe_sink {
        let not_seen = if args.command.is_empty() { crate::bpf::EXEC_NOT_SEEN } else { by_exe::BEFORE_COMMAND_EXEC };
        let attribution = by_exe::attribution(&recording.observation, None, output.describe(), None, not_seen);
        if !args.quiet {
            by_exe::print_risky(&attribution);
        }
        sink.write_text(&AttributionFile::new(vec![attribution]).to_json())?;
    }
    if let Some(sink) = summary_sink {
        let containers: Vec<&String> = args.container_id.iter().collect();
        let base_set = summary::base_set_json(base.is_some(), args.runtime.as_deref());
        let target = summary::Target {
            what: target_json(&args),
            containers: serde_json::json!(containers),
            base_set,
            partial: None,
        };
        sink.write(&summary::json(&recording, target, vec![profile]))?;
    }
    Ok(recording.exit_code())
}

/// What was recorded, for the JSON summary.
fn target_json(args: &RecordArgs) -> serde_json::Value {
    if let Some(id) = &args.container_id {
        serde_json::json!({ "kind": "container", "container_id": id })
    } else if let Some(path) = &args.cgroup {
        serde_json::json!({ "kind": "cgroup", "cgroup": path })
    } else if let Some(pid) = args.pid {
        serde_json::json!({ "kind": "pid", "pid": pid })
    } else {
        let argv: Vec<String> = args.command.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        serde_json::json!({ "kind": "command", "argv": argv })
    }
}

/// Builds the profile from `recording` and writes it (and the summary
/// line); returns the profile's part of the JSON summary.
fn write(
    recording: &Recording,
    base: Option<&BTreeSet<String>>,
    args: &RecordArgs,
    output: &Output,
    name: Option<String>,
    cgroup_dir: Option<&std::path::Path>,
) -> Result<serde_json::Value, Failure> {
    let family = Family::host();
    recording.observation.log_phases(family);
    let named = recording.observation.names(family, Select::PROFILE);
    named.warn_unknown();
    let mut by_arch = named.by_arch_owned();
    // Learn mode: what the profile the workload runs under denied, it needed.
    let denied = name_denials(family, &recording.denials);
    for d in &denied {
        if let Some(arch) = Arch::from_scmp_name(d.arch) {
            by_arch.entry(arch).or_default().insert(d.name.clone());
        }
    }
    let recorded = |by_arch: BTreeMap<Arch, BTreeSet<String>>| Recorded {
        by_arch,
        base: base.cloned(),
        shutdown_observed: recording.ending.shutdown_observed(),
        add_shutdown_set: !args.no_shutdown_set,
        enosys_clone3: !args.no_enosys_clone3,
        args: if args.args { recording.observation.arg_values(family, None) } else { BTreeMap::new() },
    };
    let mut assembled = assemble(family, &recorded(with_added(&by_arch, family, &args.add)));
    // Paths not taken: judged against the profile as recorded; merged only
    // when asked (--with-likely).
    let found = (args.likely || args.with_likely).then(|| {
        let files = if !args.command.is_empty() {
            likely::Files::Host { cwd: std::env::current_dir().ok() }
        } else if let Some(pid) = args.pid.filter(|p| std::path::Path::new(&format!("/proc/{p}")).exists()) {
            likely::Files::Pid(pid)
        } else {
            cgroup_dir.and_then(likely::pid_of_cgroup).map_or(likely::Files::Gone, likely::Files::Pid)
        };
        likely::find(&recording.observation, None, &files, assembled.profile())
    });
    if let Some(found) = found.as_ref().filter(|f| args.with_likely && !f.likely.calls.is_empty()) {
        assembled = assemble(family, &recorded(with_added(&likely::merged(&by_arch, found), family, &args.add)));
    }
    output.clone().commit(&super::render(assembled.profile(), args, name.clone())?)?;
    if !args.quiet {
        let recorded_nothing = by_arch.values().all(BTreeSet::is_empty);
        eprintln!("{}", summary::line(recording, &assembled, &output.describe(), recorded_nothing));
        summary::print_denials(&denied);
        if let Some(found) = &found {
            likely::print(found, args.with_likely, "");
        }
    }
    let mut json = summary::profile_json(&assembled, &by_arch, &output.describe());
    summary::add_format(&mut json, args.format, name);
    if let Some(object) = json.as_object_mut() {
        object.insert("denied".to_owned(), serde_json::json!(denied));
        if args.learn {
            object.insert("learn_hook".to_owned(), recording.learn_hook.describe().into());
        }
        if let Some(found) = &found {
            object.insert("likely".to_owned(), likely::json(found, args.with_likely));
        }
    }
    Ok(json)
}
