//! `recorder run`: run a command under a profile, enforced by libseccomp.

use std::{
    ffi::{CString, OsString},
    os::unix::ffi::OsStrExt as _,
    path::PathBuf,
};

use crate::{
    bpf::{name_denials, preflight},
    cli::exit::{Code, Failure},
    enforce,
    output::Output,
    record::{self, Source, stop::StopPolicy},
    syscalls::Family,
    target::Command,
    text,
};

const RUN_EXAMPLES: &str = "\
Examples:
  recorder run --profile app.json -- ./app --flag
  recorder run --profile nginx.json -- nginx -g 'daemon off;'

The filter is installed (with no_new_privs) right before CMD is exec'd, as a
container runtime does, so CMD starts under exactly the profile. Denied
syscalls fail as the profile says (EPERM for recorded profiles). recorder
exits with CMD's status, since CMD replaces it.

With --learn, recorder stays: CMD runs in a cgroup of its own under the
profile, and every call the profile denies is recorded (a syscall exit
without an entry: seccomp refuses a call before raw_syscalls:sys_enter), with
counts and the process name, and written to -o as JSON for `recorder
suggest`:
  recorder run --profile app.json --learn -o denied.json -- ./app --flag
  recorder suggest app.json denied.json -o app-fixed.json";

/// Run a command under a seccomp profile (the local way to test a profile).
#[derive(Debug, clap::Args)]
#[command(after_help = RUN_EXAMPLES)]
pub struct RunArgs {
    /// The seccomp profile to enforce: OCI, moby, containers/common JSON or
    /// an SPO SeccompProfile (detected from the content).
    #[arg(short, long, value_name = "FILE")]
    pub profile: PathBuf,
    /// Record the calls the profile denies (see below) instead of only
    /// running CMD under it.
    #[arg(long, requires = "output")]
    pub learn: bool,
    /// With --learn: where the denied calls go (JSON; `-` for stdout).
    #[arg(short, long, value_name = "FILE", requires = "learn")]
    pub output: Option<PathBuf>,
    /// With --learn: stop CMD after this long (like `record --duration`).
    #[arg(short, long, value_name = "DURATION", requires = "learn")]
    pub duration: Option<String>,
    /// The command to run (after `--`, or after the last option; an
    /// unknown option before it is an error, not a command).
    #[arg(value_name = "CMD", required = true, trailing_var_arg = true)]
    pub command: Vec<OsString>,
}

pub fn execute(args: RunArgs) -> Result<u8, Failure> {
    let profile = super::convert::load(&args.profile)?.profile;
    let command = Command::resolve(&args.command)?;
    enforce::check_viable(&profile)
        .map_err(|e| Failure::new(Code::EnforceFailed, anyhow::anyhow!("{}: {e}", args.profile.display())))?;
    let (filter, skipped) = enforce::build_filter(&profile)?;
    if args.learn {
        return learn(&args, command, filter);
    }
    for name in skipped.unknown_names {
        tracing::warn!("{name}: not a syscall libseccomp knows on this machine; rule skipped");
    }
    for ignored in skipped.ignored {
        eprintln!("recorder: warning: {}: {ignored}", args.profile.display());
    }
    // Everything exec needs is prepared before the filter goes on: after
    // load(), the only syscall we make is execve.
    let to_cstring = |s: &std::ffi::OsStr| {
        CString::new(s.as_bytes())
            .map_err(|_| Failure::new(Code::Usage, anyhow::anyhow!("argument {s:?} contains a NUL byte")))
    };
    let program = to_cstring(command.program.as_os_str())?;
    let mut argv = vec![to_cstring(&args.command[0])?];
    for a in &command.args {
        argv.push(to_cstring(a)?);
    }
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());

    filter
        .load()
        .map_err(|e| Failure::new(Code::EnforceFailed, anyhow::anyhow!("loading the seccomp filter failed: {e}")))?;
    // SAFETY: `program` and every argv entry are NUL-terminated C strings that
    // live until execv returns (it only returns on failure); argv ends with NULL;
    // the environment is the current one.
    unsafe { libc::execv(program.as_ptr(), argv_ptrs.as_ptr()) };
    let err = std::io::Error::last_os_error();
    let code = if err.raw_os_error() == Some(libc::EPERM) { Code::EnforceFailed } else { Code::CannotExecute };
    Err(Failure::new(
        code,
        anyhow::anyhow!(
            "cannot exec {} under the profile: {err}{}",
            command.program.display(),
            if code == Code::EnforceFailed { "; the profile must allow execve" } else { "" }
        ),
    ))
}

/// `run --learn`: CMD under the profile in a recorded cgroup; the calls the
/// profile denied are written to -o.
fn learn(args: &RunArgs, command: Command, filter: libseccomp::ScmpFilterContext) -> Result<u8, Failure> {
    let output = Output::prepare(args.output.as_deref())?;
    let duration = args.duration.as_deref().map(super::duration::parse).transpose()?;
    let program = export(&filter)
        .map_err(|e| Failure::new(Code::EnforceFailed, anyhow::anyhow!("exporting the seccomp filter failed: {e}")))?;
    preflight::check_privileges()?;
    preflight::check_btf()?;
    let recording = record::record(record::Options {
        source: Source::Command(command),
        duration,
        stop: StopPolicy::default(),
        status: false,
        boundary: false,
        learn: true,
        args: false,
        by_exe: false,
        enforce: Some(program),
    })?;
    let denied = name_denials(Family::host(), &recording.denials);
    let report = serde_json::json!({
        "profile": args.profile,
        "hook": recording.learn_hook.describe(),
        "exit_code": recording.exit_code(),
        "denied": denied,
    });
    let mut text = serde_json::to_string_pretty(&report).map_err(|e| Failure::new(Code::Internal, e))?;
    text.push('\n');
    output.commit(&text)?;
    let total: u64 = denied.iter().map(|d| d.count).sum();
    eprintln!(
        "recorder: the profile denied {} ({} calls) -> {}{}",
        text::count(denied.len() as u64, "distinct call", "distinct calls"),
        total,
        args.output.as_deref().map_or_else(|| "-".into(), |p| p.display().to_string()),
        if denied.is_empty() { String::new() } else { "; `recorder suggest` makes the patch".to_owned() }
    );
    Ok(recording.exit_code())
}

/// The filter's classic-BPF program, as libseccomp exports it (to a file).
fn export(filter: &libseccomp::ScmpFilterContext) -> anyhow::Result<Vec<u8>> {
    use std::io::{Read as _, Seek as _};
    let mut file = tempfile::tempfile()?;
    filter.export_bpf(&mut file)?;
    file.rewind()?;
    let mut program = Vec::new();
    file.read_to_end(&mut program)?;
    Ok(program)
}
