//! `recorder explain`: everything the tool knows about one syscall name.
//! What it does (man-pages' one-liner), on which architectures it exists,
//! how each built-in runtime default treats it and under which conditions,
//! and why it is risky (the table `diff` uses).

use crate::{
    algebra::diff::{Treatment, risky, treatment},
    profile::{Action, EvalContext, Filter, ProfileError, SyscallRule, catalog, runtime_default::RuntimeDefault},
    syscalls::{self, Arch},
};

/// What is known about one syscall name.
#[derive(Clone, Debug)]
pub struct Explanation {
    pub name: String,
    /// (what it does, the man page that says so), when man-pages has a page.
    pub description: Option<(&'static str, &'static str)>,
    /// The architectures that have it, with its number there (x32: without the x32 bit).
    pub arches: Vec<(Arch, u32)>,
    /// How each runtime default treats it.
    pub defaults: Vec<DefaultTreatment>,
    /// Why it is risky, when `diff` calls it risky.
    pub risky: Option<&'static str>,
}

/// How one runtime default treats a name.
#[derive(Clone, Debug)]
pub struct DefaultTreatment {
    pub label: &'static str,
    /// On the host `ctx` describes (architecture, capabilities, kernel).
    pub here: Treatment,
    /// Every rule of the template that names it, in words: the conditions
    /// under which it applies, so a reader sees why `here` is what it is.
    pub rules: Vec<String>,
}

/// A name no architecture and no runtime default knows.
#[derive(Debug, thiserror::Error)]
#[error("unknown syscall {name:?}{}", suggestion.map(|s| format!("; did you mean {s:?}?")).unwrap_or_default())]
pub struct UnknownSyscall {
    pub name: String,
    pub suggestion: Option<&'static str>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error(transparent)]
    Unknown(#[from] UnknownSyscall),
    /// The built-in default did not parse (a bug: it is embedded).
    #[error(transparent)]
    BuiltIn(#[from] ProfileError),
}

/// Explains `name` for the host `ctx` describes.
pub fn explain(name: &str, ctx: &EvalContext) -> Result<Explanation, ExplainError> {
    if !catalog::is_known_syscall(name) {
        let suggestion = catalog::suggest(name, catalog::known_syscalls().iter().copied());
        return Err(UnknownSyscall { name: name.to_owned(), suggestion }.into());
    }
    let arches = Arch::ALL
        .into_iter()
        // S390 shares s390x's table here; listing it twice says nothing new.
        .filter(|a| *a != Arch::S390)
        .filter_map(|a| a.number_of(name).map(|nr| (a, nr)))
        .collect();
    let mut defaults = Vec::new();
    for default in [RuntimeDefault::Moby, RuntimeDefault::Containerd] {
        let template = default.template()?;
        let here = treatment(&template.evaluate(ctx), name);
        let rules = template.syscalls.iter().filter(|r| r.names.iter().any(|n| n == name)).map(describe_rule).collect();
        defaults.push(DefaultTreatment { label: default.label(), here, rules });
    }
    Ok(Explanation {
        name: name.to_owned(),
        description: syscalls::description(name),
        arches,
        defaults,
        risky: risky::reason(name),
    })
}

/// One template rule in words: "allowed with CAP_SYS_PTRACE", "allowed on
/// kernel 4.8 and later", "allowed when arg0 & 0x7e020000 == 0x0, except
/// with CAP_SYS_ADMIN".
fn describe_rule(rule: &SyscallRule) -> String {
    let action = match rule.action {
        Action::Allow => "allowed".to_owned(),
        Action::Log => "allowed and logged".to_owned(),
        Action::Errno => format!("refused with errno {}", rule.errno_ret.unwrap_or(1)),
        other => other.as_str().to_owned(),
    };
    let mut parts = vec![action];
    if !rule.args.is_empty() {
        let args: Vec<String> = rule.args.iter().map(ToString::to_string).collect();
        parts.push(format!("when {}", args.join(" and ")));
    }
    parts.extend(filter_words(&rule.includes, "with", "on", "on kernel", "and later"));
    let excluded = filter_words(&rule.excludes, "except with", "except on", "except on kernel", "and later");
    parts.extend(excluded);
    if rule.includes.is_empty() && rule.excludes.is_empty() && rule.args.is_empty() {
        parts.push("always".to_owned());
    }
    parts.join(", ")
}

fn filter_words(filter: &Filter, caps: &str, arches: &str, kernel: &str, later: &str) -> Vec<String> {
    let mut words = Vec::new();
    if !filter.caps.is_empty() {
        words.push(format!("{caps} {}", filter.caps.join(" and ")));
    }
    if !filter.arches.is_empty() {
        words.push(format!("{arches} {}", filter.arches.join(" or ")));
    }
    if let Some(k) = &filter.min_kernel {
        words.push(format!("{kernel} {k} {later}"));
    }
    words
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn ctx() -> EvalContext {
        EvalContext {
            native: Arch::X86_64,
            caps: catalog::DOCKER_DEFAULT_CAPS.iter().map(|c| (*c).to_owned()).collect(),
            kernel: Some((6, 1)),
        }
    }

    #[test]
    fn ptrace_is_conditional_in_moby_and_risky() {
        let e = explain("ptrace", &ctx()).expect("known");
        assert!(e.description.is_some());
        assert!(e.arches.iter().any(|(a, nr)| *a == Arch::X86_64 && *nr == 101));
        assert_eq!(e.defaults[0].label, "runtime/default");
        assert_eq!(e.defaults[0].here, Treatment::Allowed);
        assert!(e.defaults[0].rules.iter().any(|r| r.contains("on kernel 4.8 and later")), "{:?}", e.defaults[0]);
        assert!(e.defaults[0].rules.iter().any(|r| r.contains("with CAP_SYS_PTRACE")), "{:?}", e.defaults[0]);
        assert!(e.risky.is_some());
    }

    #[test]
    fn mount_needs_sys_admin_and_open_is_not_on_arm64() {
        let e = explain("mount", &ctx()).expect("known");
        assert_eq!(e.defaults[0].here, Treatment::Blocked);
        assert!(e.defaults[0].rules.iter().any(|r| r.contains("with CAP_SYS_ADMIN")));
        let open = explain("open", &ctx()).expect("known");
        let arches: BTreeSet<Arch> = open.arches.iter().map(|(a, _)| *a).collect();
        assert!(arches.contains(&Arch::X86_64) && !arches.contains(&Arch::Aarch64));
    }

    #[test]
    fn containerd_differs_on_the_lsm_calls() {
        let e = explain("lsm_list_modules", &ctx()).expect("known");
        assert_eq!(e.defaults[0].here, Treatment::Blocked);
        assert_eq!(e.defaults[1].here, Treatment::Allowed);
    }

    #[test]
    fn an_unknown_name_gets_a_suggestion() {
        let Err(ExplainError::Unknown(u)) = explain("opnat", &ctx()) else { panic!("opnat is not a syscall") };
        assert_eq!(u.suggestion, Some("openat"));
        assert_eq!(u.to_string(), "unknown syscall \"opnat\"; did you mean \"openat\"?");
    }
}
