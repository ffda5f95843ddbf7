//! Applying a profile with libseccomp: the local way to prove a profile.

use std::str::FromStr as _;

use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};

use crate::profile::{Action, ArgCondition, DEFAULT_ERRNO, EvalContext, Op, Profile};

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
/// (runc skips these too, so a profile from a newer kernel still loads).
#[derive(Debug, Default)]
pub struct Skipped {
    pub unknown_names: Vec<String>,
}

/// Builds a libseccomp filter for `profile`, with no_new_privs set so an
/// unprivileged caller can load it. Call `.load()` on the result to apply it
/// to the calling thread, right before exec.
pub fn build_filter(profile: &Profile) -> Result<(ScmpFilterContext, Skipped), EnforceError> {
    // A moby template is evaluated the way dockerd would on this host.
    let evaluated;
    let profile = if profile.is_template() {
        evaluated = profile.evaluate(&EvalContext::host());
        &evaluated
    } else {
        profile
    };
    let default = scmp_action(profile.default_action, profile.default_errno_ret);
    let mut ctx = ScmpFilterContext::new(default).map_err(lib("the default action"))?;
    for name in &profile.architectures {
        let arch = ScmpArch::from_str(name).map_err(|_| EnforceError::UnknownArch(name.clone()))?;
        if !ctx.is_arch_present(arch).map_err(lib(name.clone()))? {
            ctx.add_arch(arch).map_err(lib(format!("architecture {name}")))?;
        }
    }
    let mut skipped = Skipped::default();
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
