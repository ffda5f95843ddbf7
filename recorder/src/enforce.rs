//! Applying a profile with libseccomp: the local way to prove a profile.

use std::str::FromStr as _;

use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};

use crate::{
    profile::{Action, ArgCondition, DEFAULT_ERRNO, EvalContext, Op, Profile},
    syscalls::{Arch, Family},
};

#[derive(Debug, thiserror::Error)]
pub enum EnforceError {
    #[error("libseccomp rejected {what}: {source}")]
    Libseccomp {
        what: String,
        #[source]
        source: libseccomp::error::SeccompError,
    },
    #[error("unknown architecture {0:?} in profile; use SCMP_ARCH_* names such as SCMP_ARCH_X86_64")]
    UnknownArch(String),
    #[error(
        "nothing can start under this profile: it does not allow execve on {arch} (a recording attached with --pid, --cgroup or --container-id does not see the start); allow execve, e.g. `recorder record --add execve`"
    )]
    CannotStart { arch: &'static str },
    #[error(
        "no process can end under this profile: it allows neither exit_group nor exit on {arch}, so every program would crash at exit; allow exit_group and exit"
    )]
    CannotEnd { arch: &'static str },
    #[error(
        "the profile hands syscalls to a seccomp agent (SCMP_ACT_NOTIFY, listenerPath {0:?}), which `recorder run` cannot be; test it under runc or crun with the agent running"
    )]
    Notify(String),
}

fn lib(what: impl Into<String>) -> impl FnOnce(libseccomp::error::SeccompError) -> EnforceError {
    let what = what.into();
    move |source| EnforceError::Libseccomp { what, source }
}

fn scmp_action(action: Action, errno: Option<u32>) -> ScmpAction {
    let errno = errno.unwrap_or(DEFAULT_ERRNO) as i32;
    match action {
        Action::Kill | Action::KillThread => ScmpAction::KillThread,
        Action::KillProcess => ScmpAction::KillProcess,
        Action::Trap => ScmpAction::Trap,
        Action::Errno => ScmpAction::Errno(errno),
        Action::Trace => ScmpAction::Trace(errno as u16),
        Action::Allow => ScmpAction::Allow,
        Action::Log => ScmpAction::Log,
        Action::Notify => ScmpAction::Notify,
    }
}

fn scmp_condition(c: &ArgCondition) -> ScmpArgCompare {
    let op = match c.op {
        Op::NotEqual => ScmpCompareOp::NotEqual,
        Op::Less => ScmpCompareOp::Less,
        Op::LessOrEqual => ScmpCompareOp::LessOrEqual,
        Op::Equal => ScmpCompareOp::Equal,
        Op::GreaterEqual => ScmpCompareOp::GreaterEqual,
        Op::Greater => ScmpCompareOp::Greater,
        Op::MaskedEqual => ScmpCompareOp::MaskedEqual(c.value),
    };
    let datum = if c.op == Op::MaskedEqual { c.value_two } else { c.value };
    ScmpArgCompare::new(c.index, op, datum)
}

/// What building a filter skipped: names the running libseccomp does not know
/// (runc skips these too, so a profile from a newer kernel still loads), and
/// settings that mean nothing here.
#[derive(Debug, Default)]
pub struct Skipped {
    pub unknown_names: Vec<String>,
    /// One line each: what was ignored and why.
    pub ignored: Vec<String>,
}

/// Can a program start and end under `profile` on this host's native ABI?
/// The native architecture is always in a libseccomp filter, whatever the
/// profile lists, so its rules decide: `recorder run` execs CMD under the
/// filter (execve), and every process ends with exit_group or exit. A
/// profile that fails this would make CMD crash (SIGSEGV, SIGSYS) with no
/// word of why. Also refuses SCMP_ACT_NOTIFY, which needs an agent.
pub fn check_viable(profile: &Profile) -> Result<(), EnforceError> {
    let profile = evaluated(profile);
    if let Some(e) = viability(&profile, Family::host().native) {
        return Err(e);
    }
    if profile.syscalls.iter().any(|r| r.action == Action::Notify) {
        return Err(EnforceError::Notify(profile.listener_path.clone().unwrap_or_default()));
    }
    Ok(())
}

/// Why nothing could start or end under `profile` on `arch`, if so (an
/// evaluated profile: see [`Profile::evaluate`]).
pub fn viability(profile: &Profile, arch: Arch) -> Option<EnforceError> {
    let name = arch.scmp_name();
    if !profile.permits_on(arch, "execve") {
        return Some(EnforceError::CannotStart { arch: name });
    }
    if !profile.permits_on(arch, "exit_group") && !profile.permits_on(arch, "exit") {
        return Some(EnforceError::CannotEnd { arch: name });
    }
    None
}

/// A moby template evaluated the way dockerd would on this host.
fn evaluated(profile: &Profile) -> std::borrow::Cow<'_, Profile> {
    if profile.is_template() {
        std::borrow::Cow::Owned(profile.evaluate(&EvalContext::host()))
    } else {
        std::borrow::Cow::Borrowed(profile)
    }
}

/// Builds a libseccomp filter for `profile`, with no_new_privs set so an
/// unprivileged caller can load it. Call `.load()` on the result to apply it
/// to the calling thread, right before exec.
pub fn build_filter(profile: &Profile) -> Result<(ScmpFilterContext, Skipped), EnforceError> {
    let profile = &*evaluated(profile);
    let default = scmp_action(profile.default_action, profile.default_errno_ret);
    let mut ctx = ScmpFilterContext::new(default).map_err(lib("the default action"))?;
    for name in &profile.architectures {
        let arch = ScmpArch::from_str(name).map_err(|_| EnforceError::UnknownArch(name.clone()))?;
        if !ctx.is_arch_present(arch).map_err(lib(name.clone()))? {
            ctx.add_arch(arch).map_err(lib(format!("architecture {name}")))?;
        }
    }
    let mut skipped = Skipped::default();
    // The OCI flags, as runc applies them (libcontainer/seccomp).
    for flag in &profile.flags {
        match flag.as_str() {
            "SECCOMP_FILTER_FLAG_TSYNC" => {
                ctx.set_ctl_tsync(true).map_err(lib(flag.clone()))?;
            },
            "SECCOMP_FILTER_FLAG_LOG" => {
                ctx.set_ctl_log(true).map_err(lib(flag.clone()))?;
            },
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => {
                ctx.set_ctl_ssb(true).map_err(lib(flag.clone()))?;
            },
            other => skipped.ignored.push(format!(
                "flag {other} is ignored: it only matters with a seccomp agent (SCMP_ACT_NOTIFY), which `recorder run` is not"
            )),
        }
    }
    if profile.listener_path.is_some() || profile.listener_metadata.is_some() {
        skipped.ignored.push(
            "listenerPath and listenerMetadata are ignored: no rule hands a syscall to a seccomp agent".to_owned(),
        );
    }
    for rule in &profile.syscalls {
        let action = scmp_action(rule.action, rule.errno_ret);
        if action == default {
            // libseccomp refuses rules that repeat the default action.
            continue;
        }
        let conditions: Vec<ScmpArgCompare> = rule.args.iter().map(scmp_condition).collect();
        for name in &rule.names {
            let Ok(syscall) = ScmpSyscall::from_name(name) else {
                skipped.unknown_names.push(name.clone());
                continue;
            };
            if conditions.is_empty() {
                ctx.add_rule(action, syscall)
            } else {
                ctx.add_rule_conditional(action, syscall, &conditions)
            }
            .map_err(lib(format!("the rule for {name}")))?;
        }
    }
    ctx.set_ctl_nnp(true).map_err(lib("no_new_privs"))?;
    Ok((ctx, skipped))
}
