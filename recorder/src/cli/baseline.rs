//! `recorder baseline`: what a container runtime itself needs under the
//! container's filter (its post-filter base set), derived by recording it.

use std::path::PathBuf;

use crate::{
    bpf::preflight,
    cli::exit::{Code, Failure},
    output::Output,
    runtime::derive::{self, DeriveError},
    target::Command as Resolved,
    text,
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
    preflight::check_open_files(preflight::MIN_OPEN_FILES)?;
    let output = Output::prepare(args.output.as_deref())?;
    let runtime = Resolved::resolve(&[args.runtime.clone().into()])?.program;
    preflight::check_privileges()?;
    preflight::check_btf()?;
    let found = derive::derive(&runtime, args.runs).map_err(|e| {
        let code = match &e {
            DeriveError::Cgroup(_) | DeriveError::Bpf(_) | DeriveError::Map(_) => Code::BpfFailed,
            _ => Code::RuntimeFailed,
        };
        Failure::new(code, e)
    })?;
    let mut text = serde_json::to_string_pretty(&found.base).map_err(|e| Failure::new(Code::Internal, e))?;
    text.push('\n');
    let destination = output.describe();
    output.commit(&text)?;
    eprintln!(
        "recorder: {} needs {} after installing the filter ({} runs, {} failed) -> {destination}; setup calls seen and excluded: {}",
        found.base.runtime,
        text::count(found.base.syscalls.len() as u64, "syscall", "syscalls"),
        args.runs,
        found.failures.len(),
        found.setup_calls
    );
    Ok(0)
}
