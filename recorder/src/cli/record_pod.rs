//! `recorder record --pod`: one profile per container, written to a
//! directory, a file (single-container pods) or the kubelet's seccomp root.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use super::record::{RecordArgs, record_failure};
use crate::{
    exit::{Code, Failure},
    output::{Output, OutputError},
    pod::{ContainerResult, PodSpec, names},
    preflight,
    profile::Profile,
    record::{self, Source},
    syscalls::Family,
};

/// Where the profiles go.
enum Destination {
    Dir(PathBuf),
    File(PathBuf),
    Install(PathBuf),
}

pub fn execute(args: RecordArgs, duration: Option<Duration>, grace: Duration) -> Result<u8, Failure> {
    let wait_timeout = super::duration::parse(&args.wait_timeout).map_err(|e| Failure::new(Code::BadDuration, e))?;
    let pod_name = args.pod.clone().unwrap_or_default();
    for (kind, name) in [("pod", Some(&pod_name)), ("namespace", args.namespace.as_ref()), ("container", args.container_name.as_ref())] {
        if let Some(name) = name {
            names::validate(kind, name).map_err(|e| Failure::new(Code::BadName, e))?;
        }
    }
    let destination = destination(&args)?;
    preflight::check_privileges().map_err(|e| Failure::new(Code::NotPrivileged, e))?;
    preflight::check_btf().map_err(|e| Failure::new(Code::KernelUnsupported, e))?;

    let spec = PodSpec {
        name: pod_name,
        namespace: args.namespace.clone(),
        container: args.container_name.clone(),
        endpoint: args.runtime_endpoint.clone(),
        wait_timeout,
        cgroup_parent: args.cgroup_parent.clone(),
    };
    let recording = record::record(record::Options {
        source: Source::Pod(spec),
        duration,
        grace,
        status: !args.quiet,
        boundary: true,
    })
    .map_err(record_failure)?;
    let Some(watch) = recording.pod.as_ref() else {
        return Err(Failure::new(Code::Internal, anyhow::anyhow!("pod recording returned no pod state")));
    };
    super::record::log_phases(&recording, Family::host());
    let results = watch.results(&recording.observation, Family::host());
    if results.is_empty() {
        return Err(Failure::new(
            Code::TargetNotFound,
            anyhow::anyhow!("pod {} had no containers while it was recorded", watch.display_name()),
        ));
    }
    if let Destination::File(path) = &destination
        && results.len() > 1
    {
        return Err(Failure::new(
            Code::OutputUnwritable,
            anyhow::anyhow!(
                "pod {} has {} containers; -o {} must be a directory (one <namespace>_<pod>_<container>.json each)",
                watch.display_name(),
                results.len(),
                path.display()
            ),
        ));
    }
    for result in &results {
        write_one(result, &destination, &args)?;
    }
    if !args.quiet {
        eprintln!(
            "recorder: recorded pod {} for {}; recorder used {:.3}s CPU",
            watch.display_name(),
            record::status::human(recording.elapsed),
            recording.cpu.as_secs_f64()
        );
    }
    Ok(0)
}

fn destination(args: &RecordArgs) -> Result<Destination, Failure> {
    let unwritable = |e: OutputError| Failure::new(Code::OutputUnwritable, e);
    if args.install {
        let root = args.seccomp_root.join("recorder");
        std::fs::create_dir_all(&root).map_err(|source| unwritable(OutputError::Unwritable { path: root.clone(), source }))?;
        probe_dir(&root)?;
        return Ok(Destination::Install(args.seccomp_root.clone()));
    }
    match &args.output {
        None => Ok(Destination::Dir(PathBuf::from("."))),
        Some(p) if p.is_dir() || p.as_os_str().to_string_lossy().ends_with('/') => {
            std::fs::create_dir_all(p).map_err(|source| unwritable(OutputError::Unwritable { path: p.clone(), source }))?;
            probe_dir(p)?;
            Ok(Destination::Dir(p.clone()))
        }
        Some(p) => {
            // Checked now, written later.
            drop(Output::prepare(Some(p)).map_err(unwritable)?);
            Ok(Destination::File(p.clone()))
        }
    }
}

/// Proves a directory is writable before recording starts.
fn probe_dir(dir: &Path) -> Result<(), Failure> {
    tempfile::Builder::new().prefix(".recorder-probe.").tempfile_in(dir).map(drop).map_err(|source| {
        Failure::new(Code::OutputUnwritable, OutputError::Unwritable { path: dir.to_path_buf(), source })
    })
}

fn write_one(result: &ContainerResult, destination: &Destination, args: &RecordArgs) -> Result<(), Failure> {
    let bad_name = |e| Failure::new(Code::BadName, e);
    let path = match destination {
        Destination::Dir(dir) => {
            dir.join(names::output_file_name(&result.namespace, &result.pod, &result.container).map_err(bad_name)?)
        }
        Destination::File(path) => path.clone(),
        Destination::Install(root) => {
            let path = names::install_path(root, &result.namespace, &result.pod, &result.container).map_err(bad_name)?;
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|source| {
                    Failure::new(Code::OutputUnwritable, OutputError::Unwritable { path: parent.to_path_buf(), source })
                })?;
            }
            path
        }
    };
    let mut profile = Profile::allow_list(Family::host(), result.names.iter().map(String::as_str));
    if !args.no_enosys_clone3 {
        profile = profile.with_enosys_clone3();
    }
    let output = Output::prepare(Some(&path)).map_err(|e| Failure::new(Code::OutputUnwritable, e))?;
    output.commit(&profile.to_oci_json()).map_err(|e| Failure::new(Code::OutputUnwritable, e))?;
    if !args.quiet {
        let startup = if result.startup_observed {
            format!("startup observed, {} runtime setup calls left out", result.setup_excluded.len())
        } else {
            "startup was not observed (the pod was already running): the runtime's base set was added".to_owned()
        };
        eprintln!(
            "recorder: {}/{} container {}: {} syscalls ({startup}; {} run{}) -> {}",
            result.namespace,
            result.pod,
            result.container,
            result.names.len(),
            result.attempts,
            if result.attempts == 1 { "" } else { "s, restarts merged" },
            path.display()
        );
    }
    if matches!(destination, Destination::Install(_)) {
        print!("{}", names::snippet(&result.namespace, &result.pod, &result.container));
    }
    Ok(())
}
