//! `recorder baseline`: what a container runtime itself needs under the
//! container's filter (its post-filter base set), derived by recording it.

use std::path::PathBuf;

use crate::{
    bpf::preflight,
    cli::exit::{Code, Failure},
    output::Output,
    profile::Profile,
    runtime::{
        bundle::BundleError,
        derive::{self, DeriveError},
        supervise::RunError,
    },
    syscalls::Family,
    target::Command as Resolved,
    text,
};

const BASELINE_EXAMPLES: &str = "\
Examples:
  recorder baseline --runtime runc -o runc.json
  recorder baseline --runtime crun --runs 20
  recorder baseline --runtime /opt/bin/youki -o youki.json --timeout 1m
  recorder record --pod web --base-set youki.json -o ./profiles/   # use it

The base set is written as an OCI profile (an allow-list of those calls):
`check` reads it, `merge` adds it to any profile, and `record --base-set
FILE` adds it to a container's profile instead of the shipped set. Each
runtime command may take --timeout; a runtime that hangs is killed with
everything it started (exit 29), and so it is on Ctrl-C or SIGTERM (exit
130 or 143). Nothing is written until the end; the bundles live in
$TMPDIR/recorder-baseline-<pid>-<start>, removed when baseline ends (or by
the next baseline, after a SIGKILL).

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
    /// Write the base set (an OCI profile) here, atomically. `-` or no -o:
    /// stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// How long one runtime command (spec, create, start, delete) may take
    /// before the runtime is taken to hang and killed.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub timeout: String,
}

pub fn execute(args: BaselineArgs) -> Result<u8, Failure> {
    preflight::check_open_files(preflight::MIN_OPEN_FILES)?;
    let timeout = super::duration::parse(&args.timeout)?;
    let output = Output::prepare(args.output.as_deref())?;
    let runtime = Resolved::resolve(&[args.runtime.clone().into()])?.program;
    preflight::check_privileges()?;
    preflight::check_btf()?;
    let found = match derive::derive(&runtime, args.runs, timeout) {
        Ok(found) => found,
        Err(e) => {
            let code = match &e {
                DeriveError::Cgroup(_) | DeriveError::Bpf(_) | DeriveError::Map(_) => Code::BpfFailed,
                DeriveError::Run(run) | DeriveError::Bundle(BundleError::Run(run)) => match run {
                    RunError::TimedOut { .. } => Code::RuntimeTimeout,
                    // Like a shell: 128 + the signal.
                    RunError::Interrupted { signal } => {
                        eprintln!("recorder: {e}");
                        return Ok(128u8.saturating_add(*signal as u8));
                    }
                    RunError::Io { .. } => Code::RuntimeFailed,
                },
                _ => Code::RuntimeFailed,
            };
            return Err(Failure::new(code, e));
        }
    };
    let text = Profile::allow_list(Family::host(), found.base.syscalls.iter().cloned()).to_oci_json();
    let destination = output.describe();
    output.commit(&text)?;
    eprintln!(
        "recorder: {} ({}) needs {} after installing the filter ({} runs, {} failed) -> {destination}; setup calls seen and excluded: {}",
        found.base.runtime,
        found.base.version,
        text::count(found.base.syscalls.len() as u64, "syscall", "syscalls"),
        args.runs,
        found.failures.len(),
        found.setup_calls
    );
    Ok(0)
}
