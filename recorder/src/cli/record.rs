//! `recorder record`: record a workload and write its profile.

use std::{ffi::OsString, path::PathBuf};

use recorder_common::phase;

use crate::{
    bpf::BpfError,
    cgroup::CgroupError,
    exit::{Code, Failure},
    output::Output,
    preflight,
    profile::Profile,
    record::{self, RecordError, Recording, Source, Stop},
    syscalls::Family,
    target::{Command, CommandError},
};

const RECORD_EXAMPLES: &str = "\
Examples:
  recorder record -o nginx.json -- nginx -g 'daemon off;'   # Ctrl-C ends the recording
  recorder record --duration 30s -o app.json -- ./app --flag
  recorder record --cgroup /sys/fs/cgroup/unified/my.slice --duration 5m -o svc.json
  recorder record --pid 4242 -o running.json                 # startup is not observed
  recorder record --pod nginx -n default --duration 5m -o ./profiles/
  recorder record --pod nginx --install                      # into the kubelet's seccomp root
  recorder record --container-id 3f2a9c0d1e2b -o p.json      # containerd, CRI-O, podman, ctr

Pods are found through the CRI (containerd or CRI-O socket). A pod that does
not exist yet is waited for and recorded from each container's first
syscall; the runtime's own setup (mount, pivot_root, ...) is split off at its
seccomp() call or, without a filter, at the exec after pivot_root. A pod that
already runs is recorded from now on, and the runtime's base set is added so
the profile can still start the container.

The command runs in a fresh cgroup v2; its threads, children, exec'd programs
and daemons that leave the process tree are all recorded. Recording stops when
every process in the cgroup has exited, when --duration ends, or on Ctrl-C /
SIGTERM (then the command gets SIGTERM and --grace to exit, still recorded).
The profile is always written; the exit status is the command's own, or 0
when the recording was stopped on purpose.";

/// Record the syscalls of a command, cgroup or process, and write a profile.
#[derive(Debug, clap::Args)]
#[command(after_help = RECORD_EXAMPLES)]
#[command(group = clap::ArgGroup::new("what").required(true).args(["command", "cgroup", "pid", "pod", "container_id"]))]
pub struct RecordArgs {
    /// Write the profile here (atomically). `-` or no -o: stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Stop after this long, e.g. 30s, 5m, 1h30m.
    #[arg(short, long, value_name = "DURATION")]
    pub duration: Option<String>,
    /// After a deliberate stop, how long the command's processes get to exit
    /// after SIGTERM before they are killed. Their shutdown is recorded too.
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    pub grace: String,
    /// Record an existing cgroup v2 directory and everything below it.
    #[arg(long, value_name = "PATH")]
    pub cgroup: Option<PathBuf>,
    /// Record the cgroup v2 that this process is in.
    #[arg(long, value_name = "PID")]
    pub pid: Option<i32>,
    /// Record a Kubernetes pod's containers (found through the CRI), one
    /// profile per container. Waits for the pod if it does not exist yet.
    #[arg(long, value_name = "NAME")]
    pub pod: Option<String>,
    /// The pod's namespace (needed when several namespaces have the pod).
    #[arg(short = 'n', long, value_name = "NAMESPACE", requires = "pod")]
    pub namespace: Option<String>,
    /// Only this container of the pod.
    #[arg(long = "container", value_name = "NAME", requires = "pod")]
    pub container_name: Option<String>,
    /// Record a running container by id (containerd, CRI-O, podman, ctr):
    /// its cgroup is found by name, whatever the runtime.
    #[arg(long, value_name = "ID")]
    pub container_id: Option<String>,
    /// The container's runtime, for its base set when startup was not
    /// observed (default: the union of the shipped runc and crun sets).
    #[arg(long, value_name = "RUNTIME", value_parser = ["runc", "crun"])]
    pub runtime: Option<String>,
    /// CRI socket (default: containerd's, then CRI-O's).
    #[arg(long, value_name = "PATH", requires = "pod")]
    pub runtime_endpoint: Option<PathBuf>,
    /// How long to wait for a pod that does not exist yet.
    #[arg(long, value_name = "DURATION", default_value = "5m", requires = "pod")]
    pub wait_timeout: String,
    /// Parent cgroup of all pods, watched until the pod appears (default:
    /// kubepods.slice or kubepods under the cgroup v2 mount).
    #[arg(long, value_name = "PATH", requires = "pod")]
    pub cgroup_parent: Option<PathBuf>,
    /// Write each profile into the kubelet's seccomp root as
    /// recorder/<namespace>/<pod>/<container>.json and print the
    /// securityContext to use.
    #[arg(long, requires = "pod")]
    pub install: bool,
    /// The kubelet's seccomp root, for --install.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/kubelet/seccomp", requires = "install")]
    pub seccomp_root: PathBuf,
    /// Do not add the `clone3` rule that returns ENOSYS when clone3 was not
    /// recorded (it makes glibc fall back to clone, as runtime defaults do).
    #[arg(long)]
    pub no_enosys_clone3: bool,
    /// Treat cgroups below the recorded one as containers: split off the
    /// runtime's setup calls (experimental; pods and containers use it).
    #[arg(long, hide = true)]
    pub boundary: bool,
    /// No live status line and no summary on stderr.
    #[arg(short, long)]
    pub quiet: bool,
    /// The command to start and record (put it after `--`).
    #[arg(value_name = "CMD", trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<OsString>,
}

pub fn execute(args: RecordArgs) -> Result<u8, Failure> {
    let duration = args
        .duration
        .as_deref()
        .map(super::duration::parse)
        .transpose()
        .map_err(|e| Failure::new(Code::BadDuration, e))?;
    let grace = super::duration::parse(&args.grace).map_err(|e| Failure::new(Code::BadDuration, e))?;
    if args.pod.is_some() {
        return super::record_pod::execute(args, duration, grace);
    }
    let output = Output::prepare(args.output.as_deref()).map_err(|e| Failure::new(Code::OutputUnwritable, e))?;
    let mut base: Option<std::collections::BTreeSet<String>> = None;
    let source = if let Some(id) = &args.container_id {
        let hierarchy = crate::cgroup::Hierarchy::find().map_err(|e| record_failure(e.into()))?;
        let cgroup = crate::container::find::container_cgroup(&hierarchy, id).map_err(|e| {
            let code = match e {
                crate::container::find::FindError::BadId(_) => Code::Usage,
                crate::container::find::FindError::Cgroup(CgroupError::NoV2) => Code::NoCgroupV2,
                _ => Code::TargetNotFound,
            };
            Failure::new(code, e)
        })?;
        // Startup is not observed: the runtime's post-filter calls come from
        // its shipped base set.
        base = Some(crate::container::base_set::for_runtime(args.runtime.as_deref()));
        Source::Cgroup(cgroup.path)
    } else if let Some(path) = args.cgroup {
        Source::Cgroup(path)
    } else if let Some(pid) = args.pid {
        Source::Pid(pid)
    } else {
        Source::Command(Command::resolve(&args.command).map_err(command_failure)?)
    };
    preflight::check_privileges().map_err(|e| Failure::new(Code::NotPrivileged, e))?;
    preflight::check_btf().map_err(|e| Failure::new(Code::KernelUnsupported, e))?;

    let recording = record::record(record::Options { source, duration, grace, status: !args.quiet, boundary: args.boundary })
        .map_err(record_failure)?;
    let family = Family::host();
    let names = profile_names(&recording, family);
    let mut names = names;
    if let Some(base) = base {
        names.extend(base);
        names.sort();
        names.dedup();
    }
    let mut profile = Profile::allow_list(family, names.iter().map(String::as_str));
    if !args.no_enosys_clone3 {
        profile = profile.with_enosys_clone3();
    }
    let destination = output.describe();
    output.commit(&profile.to_oci_json()).map_err(|e| Failure::new(Code::OutputUnwritable, e))?;
    if !args.quiet {
        eprintln!("{}", summary(&recording, names.len(), &destination));
    }
    Ok(recording.exit_code())
}

/// Names for the profile: every recorded number that the tables know. An
/// unknown number is a warning, never a made-up name.
pub(crate) fn profile_names(recording: &Recording, family: Family) -> Vec<String> {
    let mut names = std::collections::BTreeSet::new();
    log_phases(recording, family);
    let workload = recording.observation.calls(None, &[phase::RUN, phase::FILTERED]);
    for (arch_tag, nr) in workload {
        match family.arch_for_tag(arch_tag).and_then(|arch| arch.name_of(nr).map(|n| (arch, n))) {
            Some((_, name)) => {
                names.insert(name.to_owned());
            }
            None => tracing::warn!(
                "syscall number {nr} (arch tag {arch_tag}) is not in the syscall tables; left out of the profile"
            ),
        }
    }
    names.into_iter().collect()
}

/// With -v: each cgroup's calls by phase.
pub(crate) fn log_phases(recording: &Recording, family: Family) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let names = |calls: std::collections::BTreeSet<(u32, u32)>| -> Vec<&'static str> {
        calls
            .into_iter()
            .filter_map(|(tag, nr)| family.arch_for_tag(tag).and_then(|a| a.name_of(nr)))
            .collect()
    };
    for id in recording.observation.cgroup_ids() {
        for (label, p) in [("setup", phase::SETUP), ("filtered", phase::FILTERED), ("run", phase::RUN)] {
            let calls = names(recording.observation.calls(Some(id), &[p]));
            if !calls.is_empty() {
                tracing::debug!(cgroup = id, phase = label, "{}", calls.join(" "));
            }
        }
    }
}

pub(crate) fn summary(r: &Recording, names: usize, destination: &str) -> String {
    let why = match r.stop {
        Stop::Emptied => "workload exited".to_owned(),
        Stop::Duration => "duration reached".to_owned(),
        Stop::Signal(libc::SIGINT) => "interrupted".to_owned(),
        Stop::Signal(_) => "terminated".to_owned(),
    };
    let mut line = format!(
        "recorder: {names} syscalls from {} processes in {} ({why}) -> {destination}",
        r.processes,
        record::status::human(r.elapsed),
    );
    line.push_str(&format!("; recorder used {:.3}s CPU", r.cpu.as_secs_f64()));
    if !r.startup_observed {
        line.push_str("; startup was not observed (attached to a running workload)");
    }
    if r.stats.ringbuf_drops > 0 {
        line.push_str(&format!("; {} events dropped (profile complete: read from the map)", r.stats.ringbuf_drops));
    }
    if r.stats.map_full > 0 || r.stats.out_of_range > 0 {
        line.push_str(&format!(
            "; WARNING: {} map-full and {} out-of-range syscalls not recorded",
            r.stats.map_full, r.stats.out_of_range
        ));
    }
    line
}

pub(crate) fn command_failure(e: CommandError) -> Failure {
    let code = match e {
        CommandError::NotFound(_) => Code::CommandNotFound,
        CommandError::NotExecutable(_) => Code::CannotExecute,
    };
    Failure::new(code, e)
}

pub(crate) fn record_failure(e: RecordError) -> Failure {
    use crate::{cri::CriError, pod::PodError};
    let code = match &e {
        RecordError::Pod(PodError::NotFound(..)) => Code::PodNotFound,
        RecordError::Pod(PodError::Ambiguous { .. }) => Code::Ambiguous,
        RecordError::Pod(PodError::NoSuchContainer(..)) => Code::TargetNotFound,
        RecordError::Pod(PodError::Cgroup(CgroupError::NoV2)) => Code::NoCgroupV2,
        RecordError::Pod(PodError::Cri(CriError::Call { .. } | CriError::EmptyResponse { .. } | CriError::Info { .. })) => {
            Code::RuntimeFailed
        }
        RecordError::Pod(PodError::Cri(CriError::Cgroup(_)) | PodError::Cgroup(_)) => Code::TargetNotFound,
        RecordError::Pod(PodError::Cri(_)) => Code::CriUnavailable,
        RecordError::Cgroup(CgroupError::NoV2) => Code::NoCgroupV2,
        RecordError::Cgroup(CgroupError::NotACgroup { .. } | CgroupError::NoSuchPid(_) | CgroupError::NoV2Membership { .. }) => {
            Code::TargetNotFound
        }
        RecordError::Bpf(BpfError::Attach { .. }) => Code::KernelUnsupported,
        RecordError::Bpf(_) => Code::BpfFailed,
        RecordError::Spawn { source, .. } if source.kind() == std::io::ErrorKind::NotFound => Code::CommandNotFound,
        RecordError::Spawn { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied => Code::CannotExecute,
        _ => Code::Internal,
    };
    Failure::new(code, e)
}
