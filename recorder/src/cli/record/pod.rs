//! `recorder record --pod`: one profile per container, written to a
//! directory, a file (single-container pods) or the kubelet's seccomp root.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    time::Duration,
};

use super::{RecordArgs, SummarySink, by_exe, likely, summary};
use crate::{
    bpf::{Denied, name_denials, preflight},
    cli::exit::{Code, Failure},
    k8s_name::{Kind, validate},
    output::{self, Output, beneath},
    profile::{
        attribution::{Attribution, AttributionFile},
        write::{Format, WriteError},
    },
    record::{self, Recording, Source, stop::StopPolicy},
    runtime::{
        assemble::{Assembled, Recorded, assemble},
        base_set,
        boundary::{ContainerCalls, container_calls},
    },
    syscalls::{Arch, Family},
    target::pod::{ContainerCgroups, CriLost, PodSpec, names::ContainerNames},
    text,
};

/// Where the profiles go.
enum Destination {
    Dir(PathBuf),
    File(PathBuf),
    Install(PathBuf),
}

pub fn execute(args: RecordArgs, duration: Option<Duration>, stop: StopPolicy) -> Result<u8, Failure> {
    let wait_timeout = super::duration::parse(&args.wait_timeout)?;
    let pod_name = args.pod.clone().unwrap_or_default();
    validate(Kind::Pod, &pod_name)?;
    if let Some(ns) = &args.namespace {
        validate(Kind::Namespace, ns)?;
    }
    if let Some(c) = &args.container_name {
        validate(Kind::Container, c)?;
    }
    let destination = destination(&args)?;
    let given_base = super::given_base_set(&args)?;
    let summary_sink = SummarySink::prepare(args.json_summary.as_deref(), None)?;
    let by_exe_sink = SummarySink::prepare(args.by_exe.as_deref(), None)?;
    SummarySink::ensure_distinct(summary_sink.as_ref(), by_exe_sink.as_ref())?;
    if args.install && args.format != Format::Oci {
        return Err(usage("--install writes OCI JSON, the format the kubelet loads; drop --format"));
    }
    if args.install && [&summary_sink, &by_exe_sink].iter().any(|s| s.as_ref().is_some_and(SummarySink::is_stdout)) {
        return Err(usage("--install prints the securityContext on stdout; give --json-summary and --by-exe files"));
    }
    if let Some(name) = &args.name
        && !crate::k8s_name::is_subdomain(name)
    {
        return Err(super::super::convert::write_failure(WriteError::BadName { name: name.clone() }));
    }
    preflight::check_privileges()?;
    preflight::check_btf()?;

    let spec = PodSpec {
        name: pod_name,
        namespace: args.namespace.clone(),
        container: args.container_name.clone(),
        endpoint: args.runtime_endpoint.clone(),
        wait_timeout,
        cgroup_parent: args.cgroup_parent.clone(),
        one_file: match &destination {
            Destination::File(path) => Some(path.clone()),
            Destination::Dir(_) | Destination::Install(_) => None,
        },
    };
    let options = record::Options {
        source: Source::Pod(spec),
        duration,
        stop,
        status: !args.quiet,
        boundary: true,
        learn: args.learn,
        args: args.args,
        by_exe: args.by_exe.is_some() || args.likely || args.with_likely,
        enforce: None,
    };
    let mut checkpoint = |r: &Recording| {
        if let Err(e) = write_all(r, &destination, &args, given_base.as_ref()) {
            eprintln!("recorder: warning: {e}; recording goes on and writes again when the pod ends");
        }
    };
    let recording = record::record_with_checkpoint(options, &mut checkpoint)?;
    let profiles = write_all(&recording, &destination, &args, given_base.as_ref())?;
    let lost = recording.pod.as_ref().and_then(|w| w.cri_lost()).cloned();
    if let Some(sink) = by_exe_sink {
        let attributions = attributions(&recording, &profiles);
        if !args.quiet {
            attributions.iter().for_each(by_exe::print_risky);
        }
        sink.write_text(&AttributionFile::new(attributions).to_json())?;
    }
    if let Some(sink) = summary_sink {
        let pod = recording.pod.as_ref().and_then(|w| w.pod());
        let what = serde_json::json!({
            "kind": "pod",
            "namespace": pod.map(|p| p.namespace.as_str()),
            "name": pod.map(|p| p.name.as_str()),
        });
        let containers: Vec<serde_json::Value> = profiles.iter().map(|p| p["container"].clone()).collect();
        let runtime = recording.pod.as_ref().and_then(|w| w.runtime());
        let target = summary::Target {
            what,
            containers: serde_json::json!(containers),
            base_set: summary::base_set_json(true, runtime),
            partial: lost.as_ref().map(partial_reason),
        };
        sink.write(&summary::json(&recording, target, profiles))?;
    }
    if !args.quiet {
        eprintln!(
            "recorder: recorded pod {} for {} ({}); recorder used {:.3}s CPU",
            recording.pod.as_ref().map(|w| w.display_name()).unwrap_or_default(),
            text::human(recording.elapsed),
            summary::ending(recording.ending),
            recording.cpu.as_secs_f64()
        );
    }
    if let Some(lost) = &lost {
        // Said even with -q: the profiles are not what a full recording makes.
        eprintln!(
            "recorder: warning: the profiles are partial: {}; record again to complete them (exit {})",
            partial_reason(lost),
            Code::Partial.as_u8()
        );
        return Ok(Code::Partial.as_u8());
    }
    Ok(0)
}

/// Why a pod's profiles are partial, in one line.
fn partial_reason(lost: &CriLost) -> String {
    format!(
        "the CRI went away {} into the recording ({}), so containers started after that were not learned; the cgroups already found were recorded to the end",
        text::human(lost.after),
        lost.error
    )
}

/// `--by-exe`: one attribution per container, named like its profile.
fn attributions(recording: &Recording, profiles: &[serde_json::Value]) -> Vec<Attribution> {
    let Some(watch) = recording.pod.as_ref() else { return Vec::new() };
    let pod = watch.pod();
    watch
        .containers()
        .iter()
        .map(|container| {
            let written = profiles
                .iter()
                .find(|p| p["container"] == container.name.as_str())
                .and_then(|p| p["output"].as_str())
                .unwrap_or_default()
                .to_owned();
            let label = pod.map(|p| format!("{}/{}/{}", p.namespace, p.name, container.name));
            let not_seen = crate::bpf::EXEC_NOT_SEEN;
            by_exe::attribution(&recording.observation, Some(&container.cgroups), written, label, not_seen)
        })
        .collect()
}

/// Writes one profile per container of the recorded pod; returns their
/// parts of the JSON summary.
fn write_all(
    recording: &Recording,
    destination: &Destination,
    args: &RecordArgs,
    given_base: Option<&BTreeSet<String>>,
) -> Result<Vec<serde_json::Value>, Failure> {
    let Some(watch) = recording.pod.as_ref() else {
        return Err(Failure::new(Code::Internal, anyhow::anyhow!("pod recording returned no pod state")));
    };
    let Some(pod) = watch.pod() else {
        return Err(Failure::new(Code::Internal, anyhow::anyhow!("pod recording ended without a pod")));
    };
    let family = Family::host();
    recording.observation.log_phases(family);
    let base = match given_base {
        Some(base) => base.clone(),
        None => base_set::for_runtime(args.runtime.as_deref().or(watch.runtime())),
    };
    let containers = watch.containers();
    if containers.is_empty() {
        return Err(Failure::new(
            Code::TargetNotFound,
            anyhow::anyhow!("pod {} had no containers while it was recorded", watch.display_name()),
        ));
    }
    let mut profiles = Vec::new();
    let single = containers.len() == 1;
    for container in &containers {
        let names = ContainerNames { namespace: &pod.namespace, pod: &pod.name, container: &container.name };
        // SPO and snippet names: --name (one container), the -o file's name,
        // else <pod>-<container> (<NAME>-<container> with --name).
        let fallback = match &args.name {
            Some(n) if single => n.clone(),
            Some(n) => format!("{n}-{}", container.name),
            None => format!("{}-{}", pod.name, container.name),
        };
        let file = match destination {
            Destination::File(path) if args.name.is_none() => Some(path.as_path()),
            _ => None,
        };
        let name = super::object_name(args.format, None, file, Some(fallback))?;
        let mut calls = container_calls(&recording.observation, &container.cgroups, family);
        // Learn mode: what the pod's profile denied, the container needed.
        let denied: Vec<Denied> = name_denials(family, &recording.denials)
            .into_iter()
            .filter(|d| container.cgroups.contains(&d.cgroup_id))
            .collect();
        for d in &denied {
            if let Some(arch) = Arch::from_scmp_name(d.arch) {
                calls.by_arch.entry(arch).or_default().insert(d.name.clone());
            }
        }
        if !args.quiet {
            summary::print_denials(&denied);
        }
        // The base set always: it also covers calls a runtime makes only on
        // some starts (runc's rt_sigreturn).
        let recorded = |by_arch| Recorded {
            by_arch,
            base: Some(base.clone()),
            shutdown_observed: recording.ending.shutdown_observed(),
            add_shutdown_set: !args.no_shutdown_set,
            enosys_clone3: !args.no_enosys_clone3,
            args: if args.args {
                recording.observation.arg_values(family, Some(&container.cgroups))
            } else {
                BTreeMap::new()
            },
        };
        let mut assembled = assemble(family, &recorded(super::with_added(&calls.by_arch, family, &args.add)));
        // Paths not taken, read through a running process of the container.
        let found = (args.likely || args.with_likely).then(|| {
            let pid = crate::target::Hierarchy::find()
                .ok()
                .and_then(|h| likely::pid_in(&watch.main_pids(), &container.cgroups, h.mount()));
            let files = pid.map_or(likely::Files::Gone, likely::Files::Pid);
            likely::find(&recording.observation, Some(&container.cgroups), &files, assembled.profile())
        });
        if let Some(found) = found.as_ref().filter(|f| args.with_likely && !f.likely.calls.is_empty()) {
            assembled = assemble(
                family,
                &recorded(super::with_added(&likely::merged(&calls.by_arch, found), family, &args.add)),
            );
        }
        let one = One { names, container, calls: &calls, assembled: &assembled, name };
        let mut json = write_one(&one, destination, args)?;
        if let (true, Some(object)) = (args.learn, json.as_object_mut()) {
            object.insert("denied".to_owned(), serde_json::json!(denied));
            object.insert("learn_hook".to_owned(), recording.learn_hook.describe().into());
        }
        if let Some(found) = &found {
            if !args.quiet {
                likely::print(found, args.with_likely, &format!(" ({})", container.name));
            }
            if let Some(object) = json.as_object_mut() {
                object.insert("likely".to_owned(), likely::json(found, args.with_likely));
            }
        }
        profiles.push(json);
    }
    Ok(profiles)
}

fn usage(message: &str) -> Failure {
    Failure::new(Code::Usage, anyhow::anyhow!("{message}"))
}

fn destination(args: &RecordArgs) -> Result<Destination, Failure> {
    if args.install {
        output::prepare_dir(&args.seccomp_root)?;
        return Ok(Destination::Install(args.seccomp_root.clone()));
    }
    match &args.output {
        None => {
            output::prepare_dir(Path::new("."))?;
            Ok(Destination::Dir(PathBuf::from(".")))
        }
        Some(p) if p.is_dir() || p.as_os_str().to_string_lossy().ends_with('/') => {
            output::prepare_dir(p)?;
            Ok(Destination::Dir(p.clone()))
        }
        Some(p) => {
            // Checked now, written later.
            Output::prepare(Some(p))?;
            Ok(Destination::File(p.clone()))
        }
    }
}

/// One container's profile, ready to write.
struct One<'a> {
    names: ContainerNames<'a>,
    container: &'a ContainerCgroups,
    calls: &'a ContainerCalls,
    assembled: &'a Assembled,
    /// The object name for --format spo and k8s-snippet.
    name: Option<String>,
}

fn write_one(one: &One<'_>, destination: &Destination, args: &RecordArgs) -> Result<serde_json::Value, Failure> {
    let One { names, container, calls, assembled, .. } = *one;
    let completed = &assembled.completed;
    let json = super::render(assembled.profile(), args, one.name.clone())?;
    let path = match destination {
        Destination::Dir(dir) => {
            let mut file = dir.join(names.file_name()?);
            if matches!(args.format, Format::Spo | Format::K8sSnippet) {
                file.set_extension("yaml");
            }
            write_file(&file, &json)?
        }
        Destination::File(path) => write_file(path, &json)?,
        Destination::Install(root) => beneath::write(root, &names.install_path()?, json.as_bytes())?,
    };
    if !args.quiet {
        let line = summary::ContainerLine {
            names,
            syscalls: completed.names.len(),
            startup_observed: calls.startup_observed,
            setup_excluded: calls.setup_excluded.len(),
            attempts: container.attempts,
            shutdown_added: completed.shutdown_set_applied.then_some(completed.shutdown_added.len()),
            recorded_nothing: calls.by_arch.values().all(|n| n.is_empty()),
            destination: &path,
        };
        eprintln!("{line}");
    }
    if matches!(destination, Destination::Install(_)) {
        print!("{}", names.snippet()?);
    }
    let mut json = summary::profile_json(assembled, &calls.by_arch, &path.display().to_string());
    summary::add_format(&mut json, args.format, one.name.clone());
    if let Some(object) = json.as_object_mut() {
        object.insert("container".to_owned(), serde_json::json!(names.container));
        object.insert("runs".to_owned(), serde_json::json!(container.attempts));
        object.insert("startup_observed".to_owned(), serde_json::json!(calls.startup_observed));
        object.insert("setup_excluded".to_owned(), serde_json::json!(calls.setup_excluded));
    }
    Ok(json)
}

fn write_file(path: &Path, json: &str) -> Result<PathBuf, Failure> {
    Output::prepare(Some(path))?.commit(json)?;
    Ok(path.to_path_buf())
}
