//! `recorder record`'s command line.

use std::{ffi::OsString, path::PathBuf};

use crate::profile::write::Format;

const RECORD_EXAMPLES: &str = "\
Examples:
  recorder record -o nginx.json -- nginx -g 'daemon off;'   # Ctrl-C ends the recording
  recorder record --duration 30s -o app.json -- ./app --flag
  recorder record --cgroup /sys/fs/cgroup/system.slice/my.service --duration 5m -o svc.json
  recorder record --pid 4242 -o running.json                 # startup is not observed
  recorder record --pod nginx -n default --duration 5m -o ./profiles/
  recorder record --pod nginx --install                      # into the kubelet's seccomp root
  recorder record --container-id 3f2a9c0d1e2b -o p.json      # containerd, CRI-O, podman, ctr
  recorder record --exercise reload -o nginx.json -- nginx -g 'daemon off;'   # reload path too
  recorder record --pod web --duration 5m --until-exit -o ./profiles/   # and its real shutdown

Pods are found through the CRI (containerd or CRI-O socket). A pod that does
not exist yet is waited for and recorded from each container's first
syscall; the runtime's own setup (mount, pivot_root, ...) is split off at its
seccomp() call or, without a filter, at the exec after pivot_root. A pod that
already runs is recorded from now on, and the runtime's base set is added so
the profile can still start the container.

The command runs in a fresh cgroup v2; its threads, children, exec'd programs
and daemons that leave the process tree are all recorded. Recording stops when
every process in the cgroup has exited, when --duration ends, or on Ctrl-C /
SIGTERM. Then it ends the way a runtime stops a workload: --stop-signal
(SIGTERM) to the command's main process only, --grace (5s) to shut down,
still recorded, then SIGKILL for what is left. The summary says whether the
shutdown was clean. The command runs in its own process group, so Ctrl-C
reaches only the recorder.

A recording that cannot see the workload end (--pod, --cgroup, --pid or
--container-id with --duration, on a workload that keeps running) adds the
shipped shutdown set so the workload can still stop under the profile, and
says so; --until-exit records on until it really ends instead, and
--exercise reload,stop sends those signals before the recording ends.
The profile is always written; the exit status is the command's own, or 0
when the recording was stopped on purpose.";

/// The targets that are not a pod. Pod-only flags conflict with them:
/// clap's `requires = "pod"` alone does not fire when another member of
/// the required `what` group is present (it counts pod as excluded by it),
/// so `-n default -- CMD` would be accepted and ignored.
const NOT_POD: [&str; 4] = ["command", "cgroup", "pid", "container_id"];

/// Record the syscalls of a command, cgroup or process, and write a profile.
#[derive(Debug, clap::Args)]
#[command(after_help = RECORD_EXAMPLES)]
#[command(group = clap::ArgGroup::new("what").required(true).args(["command", "cgroup", "pid", "pod", "container_id"]))]
pub struct RecordArgs {
    /// Write the profile here (atomically). `-` or no -o: stdout. With
    /// --pod: a directory for one <namespace>_<pod>_<container>.json per
    /// container (no -o: the current directory), or a file when the pod
    /// has one container. Directories are never created: the directory
    /// must exist (create it first).
    #[arg(short, long, value_name = "FILE|DIR")]
    pub output: Option<PathBuf>,
    /// Stop after this long, e.g. 30s, 5m, 1h30m (more than zero).
    #[arg(short, long, value_name = "DURATION")]
    pub duration: Option<String>,
    /// When the recording is stopped (Ctrl-C, SIGTERM, --duration), the
    /// signal sent to the command's main process only, as docker stop, the
    /// kubelet and service managers do. With --pod, --cgroup, --pid or
    /// --container-id it is sent only with `--exercise stop`.
    #[arg(long, value_name = "SIGNAL", default_value = "SIGTERM")]
    pub stop_signal: String,
    /// How long the workload gets to shut down after the stop signal, still
    /// recorded. Then what is left of a command recorder started is killed
    /// (and the summary says the shutdown was not clean). 0: kill at once.
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    pub grace: String,
    /// Operator signals to send to the main process near the end of the
    /// recording, so their code paths land in the profile: a comma list of
    /// reload (SIGHUP), reopen (SIGUSR1), a signal name such as SIGUSR2, and
    /// stop (the stop signal and --grace; last).
    #[arg(long, value_name = "LIST")]
    pub exercise: Option<String>,
    /// How long to keep recording after each --exercise signal.
    #[arg(long, value_name = "DURATION", default_value = "2s", requires = "exercise")]
    pub exercise_wait: String,
    /// For a workload recorder did not start (--pod, --cgroup, --pid,
    /// --container-id): when --duration ends, write the profile, then keep
    /// recording until the workload ends by itself and write it again, with
    /// its real shutdown (the --install'ed files too).
    #[arg(long, requires = "duration", conflicts_with = "command")]
    pub until_exit: bool,
    /// For a workload that already runs under a seccomp profile (a pod with
    /// a Localhost profile): also see the calls that profile denies
    /// (`sys_exit` without `sys_enter`). They are added to the written
    /// profile and listed in the summary.
    #[arg(long)]
    pub learn: bool,
    /// Argument rules, tighter than runtime/default: keep the values that
    /// decide how risky some calls are (socket family and type, clone's
    /// namespace flags, personality, prctl option, ioctl request, fcntl
    /// command, PROT_EXEC for mmap/mprotect) and allow those calls only
    /// with them. A call with more than 16 values allows any (said).
    #[arg(long)]
    pub args: bool,
    /// Also write which executable made each call to FILE (JSON; `-`:
    /// stdout, when the profile goes to a file), and name the makers of risky calls on stderr. Information
    /// only: the profile is the same (one filter covers the whole process
    /// tree). `diff --by-exe FILE` shows it next to the risky calls.
    #[arg(long, value_name = "FILE")]
    pub by_exe: Option<PathBuf>,
    /// Paths not taken: from the executables the recording saw exec'd, name
    /// the calls they can make (libc imports, Go syscall wrappers, raw
    /// syscall sites) that the profile lacks, each with its reason, in the
    /// summary (and `likely` in the JSON summary). Information only.
    #[arg(long)]
    pub likely: bool,
    /// As --likely, and allow those calls in the profile on purpose; the
    /// JSON summary lists each as "predicted, not observed".
    #[arg(long)]
    pub with_likely: bool,
    /// Do not add the shutdown set (recorder/data/shutdown) to a profile
    /// whose recording did not see the workload shut down.
    #[arg(long)]
    pub no_shutdown_set: bool,
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
    #[arg(short = 'n', long, value_name = "NAMESPACE", requires = "pod", conflicts_with_all = NOT_POD)]
    pub namespace: Option<String>,
    /// Only this container of the pod.
    #[arg(long = "container", value_name = "NAME", requires = "pod", conflicts_with_all = NOT_POD)]
    pub container_name: Option<String>,
    /// Record a running container by id (containerd, CRI-O, podman, ctr):
    /// its cgroup is found by name, whatever the runtime.
    #[arg(long, value_name = "ID")]
    pub container_id: Option<String>,
    /// The container's runtime, for its base set when startup was not
    /// observed (default: the pod's runtime handler, else the union of the
    /// shipped runc and crun sets). Only runc and crun have a shipped set.
    #[arg(long, value_name = "RUNTIME", value_parser = ["runc", "crun"], conflicts_with_all = ["command", "cgroup", "pid"])]
    pub runtime: Option<String>,
    /// A base set to add instead of a shipped one (--pod, --container-id):
    /// a profile whose allowed calls the runtime needs under the filter,
    /// as `recorder baseline --runtime R -o FILE` writes it for a runtime
    /// with no shipped set.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["command", "cgroup", "pid", "runtime"])]
    pub base_set: Option<PathBuf>,
    /// CRI socket (default: containerd's, then CRI-O's).
    #[arg(long, value_name = "PATH", requires = "pod", conflicts_with_all = NOT_POD)]
    pub runtime_endpoint: Option<PathBuf>,
    /// How long to wait for a pod that does not exist yet.
    #[arg(long, value_name = "DURATION", default_value = "5m", requires = "pod", conflicts_with_all = NOT_POD)]
    pub wait_timeout: String,
    /// Parent cgroup of all pods, watched until the pod appears (default:
    /// kubepods.slice or kubepods under the cgroup v2 mount).
    #[arg(long, value_name = "PATH", requires = "pod", conflicts_with_all = NOT_POD)]
    pub cgroup_parent: Option<PathBuf>,
    /// Write each profile into the kubelet's seccomp root as
    /// recorder/<namespace>/<pod>/<container>.json and print the
    /// securityContext to use.
    #[arg(long, requires = "pod", conflicts_with_all = NOT_POD)]
    pub install: bool,
    /// The kubelet's seccomp root, for --install.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/kubelet/seccomp", requires = "install", conflicts_with_all = NOT_POD)]
    pub seccomp_root: PathBuf,
    /// Also allow these syscalls (a comma list), e.g. `--add execve` when
    /// attaching to a running workload (--pid, --cgroup), which does not see
    /// it start.
    #[arg(long, value_name = "SYSCALLS", value_delimiter = ',')]
    pub add: Vec<String>,
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
    /// Also write the summary as one JSON object to FILE (`-`: stdout, when
    /// the profile goes to a file): what was recorded, how it ended, what
    /// was added and why, per architecture. Schema: README, "The JSON summary".
    #[arg(long, value_name = "FILE")]
    pub json_summary: Option<PathBuf>,
    /// The profile's dialect, as `convert --format` writes it: oci, spo (a
    /// SeccompProfile resource), moby, or k8s-snippet (the securityContext
    /// pointing at it). --install always writes OCI.
    #[arg(long, value_enum, default_value_t = Format::Oci)]
    pub format: Format,
    /// Kubernetes object name for --format spo and k8s-snippet. Default: the
    /// output file's name; a pod's profiles: <pod>-<container>.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// The command to start and record (after `--`, or after the last
    /// option: everything from its first word on is the command's; an
    /// unknown option before it is an error, not a command).
    #[arg(value_name = "CMD", trailing_var_arg = true)]
    pub command: Vec<OsString>,
}
