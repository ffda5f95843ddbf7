//! Exit codes, and every mapping from an error to one. Each failure a user
//! can cause or fix has its own code, so scripts can tell them apart;
//! `--help` and the README list them. Library modules know nothing of exit
//! codes: their error types convert into a [`Failure`] here.

use crate::{
    algebra::explain::ExplainError,
    bpf::{BpfError, preflight::PreflightError},
    cli::duration::DurationError,
    cri::CriError,
    daemon::DaemonError,
    enforce::EnforceError,
    k8s_name::NameError,
    output::{OutputError, beneath::BeneathError},
    profile::{ProfileError, attribution::AttributionError},
    record::RecordError,
    runtime::bundle::BundleError,
    target::{CgroupError, CommandError, container::FindError, pod::PodError},
};

/// Process exit codes of `recorder`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Code {
    /// Success, or a recording stopped on purpose (Ctrl-C, SIGTERM, --duration).
    Ok = 0,
    /// An unexpected internal failure.
    Internal = 1,
    /// Bad command line (clap's own code).
    Usage = 2,
    /// A `--duration` that does not parse.
    BadDuration = 10,
    /// The output path cannot be written.
    OutputUnwritable = 11,
    /// A profile that is not valid (JSON syntax, unknown action, ...).
    BadProfile = 12,
    /// The cgroup, PID or container to record does not exist.
    TargetNotFound = 13,
    /// The pod did not appear within --wait-timeout.
    PodNotFound = 14,
    /// Several pods match; a namespace is needed.
    Ambiguous = 15,
    /// A namespace, pod or container name that cannot be a file name.
    BadName = 16,
    /// Not root, or missing CAP_BPF / CAP_PERFMON / CAP_SYS_ADMIN.
    NotPrivileged = 20,
    /// No cgroup v2 hierarchy is mounted.
    NoCgroupV2 = 21,
    /// The kernel lacks BTF or raw tracepoint support.
    KernelUnsupported = 22,
    /// The BPF programs failed to load or attach for another reason.
    BpfFailed = 23,
    /// The profile could not be applied with libseccomp.
    EnforceFailed = 24,
    /// The container runtime failed (baseline) or the CRI did.
    RuntimeFailed = 25,
    /// No CRI socket, or the socket is not a CRI runtime.
    CriUnavailable = 26,
    /// The open-file limit (RLIMIT_NOFILE, `ulimit -n`) is too low.
    TooManyFiles = 27,
    /// The profiles were written but are partial: the CRI went away during
    /// a pod recording (the rest was recorded from the cgroups).
    Partial = 28,
    /// `baseline`: the runtime did not finish within `--timeout`.
    RuntimeTimeout = 29,
    /// `diff --fail-on-added`/`--fail-on-removed` found drift.
    Drift = 30,
    /// `check` found errors in a profile.
    CheckFailed = 31,
    /// Input too large or too deeply nested.
    InputTooLarge = 32,
    /// An input file cannot be read (missing, unreadable, not a regular file).
    InputUnreadable = 33,
    /// `explain` was given a name that is no syscall.
    UnknownSyscall = 34,
    /// CMD exists but cannot be executed (like a shell).
    CannotExecute = 126,
    /// CMD not found (like a shell).
    CommandNotFound = 127,
}

impl Code {
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

/// An error that knows its exit code. Library errors convert into this at the
/// edge (`main.rs`); the message is printed as one line.
#[derive(Debug)]
pub struct Failure {
    pub code: Code,
    pub error: anyhow::Error,
}

impl Failure {
    /// A failure with `code`, unless the cause is running out of file
    /// descriptors: that is said as such (exit 27), whatever failed on the
    /// way, rather than blamed on BPF, privileges or a bug.
    pub fn new(code: Code, error: impl Into<anyhow::Error>) -> Self {
        let error = error.into();
        if let Some(errno) = out_of_files(&error) {
            tracing::debug!("{error:#}");
            return Self { code: Code::TooManyFiles, error: anyhow::anyhow!(too_many_files(errno)) };
        }
        Self { code, error }
    }
}

/// EMFILE or ENFILE anywhere in the error's chain of causes.
fn out_of_files(error: &anyhow::Error) -> Option<i32> {
    error.chain().find_map(|cause| {
        let errno = match cause.downcast_ref::<std::io::Error>().and_then(std::io::Error::raw_os_error) {
            Some(n) => n,
            // Some libraries keep only the message of the io::Error.
            None if cause.to_string().contains(&format!("(os error {})", libc::EMFILE)) => libc::EMFILE,
            None => return None,
        };
        (errno == libc::EMFILE || errno == libc::ENFILE).then_some(errno)
    })
}

fn too_many_files(errno: i32) -> String {
    if errno == libc::ENFILE {
        return "the system ran out of open files (ENFILE); close some programs, or raise fs.file-max".to_owned();
    }
    match crate::bpf::preflight::open_files_limit() {
        Some(limit) => format!("too many open files (limit {limit}); raise `ulimit -n`, e.g. `ulimit -n 1024`"),
        None => "too many open files; raise `ulimit -n`, e.g. `ulimit -n 1024`".to_owned(),
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.error)
    }
}

impl std::error::Error for Failure {}

/// Text for `--help`: the exit codes users can act on.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0    success, or recording stopped on purpose (Ctrl-C, SIGTERM, --duration)
  N    `record -- CMD`: CMD's own exit status (128+signal if it was killed)
  1    internal error             2    bad command line
  10   malformed --duration      11   output path not writable
  12   invalid profile           13   cgroup, PID or container not found
                                 (or unfit: the root cgroup, a kernel thread,
                                 a --container-id that is a pod or namespace)
  14   pod not found in time     15   several pods match (pass -n)
  16   name unusable as a path
  20   not root / missing CAP_BPF, CAP_PERFMON
  21   no cgroup v2 mounted      22   kernel lacks BTF or raw tracepoints
  23   BPF load/attach failed    24   profile could not be enforced
  25   container runtime failed  26   no CRI socket / not a CRI runtime
  27   too many open files (raise `ulimit -n`)
  28   pod profiles written, but partial (the CRI went away)
  29   baseline: the runtime did not finish within --timeout
  30   drift (diff, inspect)     31   check found errors
  32   input too large or nested 33   cannot read an input file
  34   explain: unknown syscall
  126  CMD not executable        127  CMD not found";

/// Every library error becomes a [`Failure`] with its code through `?`.
macro_rules! failure_from {
    ($($error:ty => |$e:ident| $code:expr;)*) => {
        $(impl From<$error> for Failure {
            fn from($e: $error) -> Self {
                let code = $code;
                Failure::new(code, $e)
            }
        })*
    };
}

failure_from! {
    OutputError => |e| Code::OutputUnwritable;
    BeneathError => |e| Code::OutputUnwritable;
    DurationError => |e| Code::BadDuration;
    AttributionError => |e| Code::BadProfile;
    NameError => |e| Code::BadName;
    EnforceError => |e| Code::EnforceFailed;
    BundleError => |e| Code::RuntimeFailed;
    ExplainError => |e| match e {
        ExplainError::Unknown(_) => Code::UnknownSyscall,
        ExplainError::BuiltIn(_) => Code::Internal,
    };
    ProfileError => |e| profile_code(&e);
    CommandError => |e| match e {
        CommandError::NotFound(_) => Code::CommandNotFound,
        CommandError::NotExecutable(_) => Code::CannotExecute,
    };
    PreflightError => |e| match e {
        PreflightError::NotPrivileged { .. } => Code::NotPrivileged,
        PreflightError::NoBtf => Code::KernelUnsupported,
        PreflightError::TooManyFiles { .. } => Code::TooManyFiles,
        PreflightError::Caps(_) => Code::Internal,
    };
    CgroupError => |e| cgroup_code(&e);
    BpfError => |e| bpf_code(&e);
    FindError => |e| match &e {
        FindError::BadId(_) | FindError::TooShort { .. } => Code::Usage,
        FindError::Cgroup(c) => cgroup_code(c),
        _ => Code::TargetNotFound,
    };
    PodError => |e| pod_code(&e);
    DaemonError => |e| match &e {
        DaemonError::Cgroup(c) => cgroup_code(c),
        DaemonError::NoPodsParent(_) => Code::TargetNotFound,
        DaemonError::Bpf(b) => bpf_code(b),
        DaemonError::Bpffs(_) => Code::KernelUnsupported,
        DaemonError::Store(_) | DaemonError::Listen { .. } => Code::OutputUnwritable,
        _ => Code::Internal,
    };
    RecordError => |e| match &e {
        RecordError::Pod(p) => pod_code(p),
        RecordError::Cgroup(c) => cgroup_code(c),
        RecordError::Bpf(b) => bpf_code(b),
        RecordError::Spawn { source, .. } if source.kind() == std::io::ErrorKind::NotFound => Code::CommandNotFound,
        RecordError::Spawn { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied => Code::CannotExecute,
        _ => Code::Internal,
    };
}

/// The code for a profile that could not be read or parsed.
pub fn profile_code(e: &ProfileError) -> Code {
    if e.is_unreadable() {
        Code::InputUnreadable
    } else if e.is_too_large() {
        Code::InputTooLarge
    } else {
        Code::BadProfile
    }
}

fn cgroup_code(e: &CgroupError) -> Code {
    match e {
        CgroupError::NoV2 | CgroupError::NotHostRoot { .. } => Code::NoCgroupV2,
        CgroupError::NotDelegated { .. } => Code::NotPrivileged,
        CgroupError::NotACgroup { .. }
        | CgroupError::NoSuchPid(_)
        | CgroupError::NoV2Membership { .. }
        | CgroupError::KernelThread { .. }
        | CgroupError::WholeMachine { .. } => Code::TargetNotFound,
        _ => Code::Internal,
    }
}

fn bpf_code(e: &BpfError) -> Code {
    match e {
        BpfError::Attach { .. } => Code::KernelUnsupported,
        _ => Code::BpfFailed,
    }
}

fn pod_code(e: &PodError) -> Code {
    match e {
        PodError::NotFound(..) => Code::PodNotFound,
        PodError::Ambiguous { .. } => Code::Ambiguous,
        PodError::NoSuchContainer(..) => Code::TargetNotFound,
        PodError::OneFile { .. } => Code::OutputUnwritable,
        PodError::BadName(_) => Code::BadName,
        PodError::Cgroup(c) => match cgroup_code(c) {
            Code::Internal => Code::TargetNotFound,
            code => code,
        },
        PodError::Cri(CriError::Call { .. } | CriError::EmptyResponse { .. } | CriError::Info { .. }) => {
            Code::RuntimeFailed
        }
        PodError::Cri(CriError::Cgroup(_)) => Code::TargetNotFound,
        PodError::Cri(_) => Code::CriUnavailable,
    }
}
