//! `recorder run`: run a command under a profile, enforced by libseccomp.

use std::{
    ffi::{CString, OsString},
    os::unix::ffi::OsStrExt as _,
    path::PathBuf,
};

use crate::{
    cli::exit::{Code, Failure},
    enforce,
    target::Command,
};

const RUN_EXAMPLES: &str = "\
Examples:
  recorder run --profile app.json -- ./app --flag
  recorder run --profile nginx.json -- nginx -g 'daemon off;'

The filter is installed (with no_new_privs) right before CMD is exec'd, as a
container runtime does, so CMD starts under exactly the profile. Denied
syscalls fail as the profile says (EPERM for recorded profiles). recorder
exits with CMD's status, since CMD replaces it.";

/// Run a command under a seccomp profile (the local way to test a profile).
#[derive(Debug, clap::Args)]
#[command(after_help = RUN_EXAMPLES)]
pub struct RunArgs {
    /// The seccomp profile to enforce: OCI, moby, containers/common JSON or
    /// an SPO SeccompProfile (detected from the content).
    #[arg(short, long, value_name = "FILE")]
    pub profile: PathBuf,
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
