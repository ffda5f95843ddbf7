//! The built-in `runtime/default` baselines: moby's default profile, embedded
//! from recorder/data, and containerd's, derived from it.
//!
//! containerd's `contrib/seccomp/seccomp_default.go` generates its profile in
//! Go. It has the same rules as moby's JSON except for three facts
//! (runtime-default-notes.md): `riscv_hwprobe` is in a riscv64-only rule
//! instead of the unconditional list; `lsm_get_self_attr`, `lsm_list_modules`
//! and `lsm_set_self_attr` are unconditional instead of needing
//! CAP_SYS_ADMIN; and `defaultErrnoRet` is unset (EPERM either way).

use std::sync::OnceLock;

use crate::profile::{Action, Profile, ProfileError, SyscallRule, parse_str};

/// moby/profiles `seccomp/default.json` at tag seccomp/v0.2.3.
pub const MOBY_DEFAULT_JSON: &str = include_str!("../../data/moby-default-seccomp.json");

const LSM_NAMES: [&str; 3] = ["lsm_get_self_attr", "lsm_list_modules", "lsm_set_self_attr"];

/// Which runtime's default profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuntimeDefault {
    Moby,
    Containerd,
}

impl RuntimeDefault {
    /// Parses `runtime/default`, `runtime/default:moby`, `runtime/default:docker`
    /// and `runtime/default:containerd`. Anything else is a path.
    pub fn from_spec(spec: &str) -> Option<RuntimeDefault> {
        match spec {
            "runtime/default" | "runtime/default:moby" | "runtime/default:docker" | "RuntimeDefault" => {
                Some(RuntimeDefault::Moby)
            }
            "runtime/default:containerd" => Some(RuntimeDefault::Containerd),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            RuntimeDefault::Moby => "runtime/default",
            RuntimeDefault::Containerd => "runtime/default:containerd",
        }
    }

    /// The template (with archMap and includes/excludes), before evaluation.
    pub fn template(self) -> Result<Profile, ProfileError> {
        let moby = parse_str(MOBY_DEFAULT_JSON, "<built-in moby default>")?.profile;
        Ok(match self {
            RuntimeDefault::Moby => moby,
            RuntimeDefault::Containerd => containerd_from_moby(moby),
        })
    }
}

fn containerd_from_moby(mut p: Profile) -> Profile {
    p.default_errno_ret = None;
    for rule in &mut p.syscalls {
        let unconditional = rule.action == Action::Allow && rule.args.is_empty() && !rule.is_template();
        if unconditional {
            rule.names.retain(|n| n != "riscv_hwprobe");
            rule.names.extend(LSM_NAMES.iter().map(|n| (*n).to_owned()));
            rule.names.sort();
        } else if rule.includes.caps == ["CAP_SYS_ADMIN"] && rule.action == Action::Allow {
            rule.names.retain(|n| !LSM_NAMES.contains(&n.as_str()));
        } else if rule.includes.arches == ["riscv64"] && rule.includes.caps.is_empty() {
            rule.names.push("riscv_hwprobe".to_owned());
        }
    }
    if !p.syscalls.iter().any(|r| r.names.iter().any(|n| n == "riscv_hwprobe")) {
        let mut rule = SyscallRule::new(["riscv_hwprobe"], Action::Allow);
        rule.includes.arches = vec!["riscv64".to_owned()];
        p.syscalls.push(rule);
    }
    p
}

/// Every syscall name in the built-in moby profile. Read with serde_json,
/// not our reader, because our reader uses this list to judge names.
pub fn moby_names() -> impl Iterator<Item = &'static str> {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES
        .get_or_init(|| {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(MOBY_DEFAULT_JSON) else {
                return Vec::new();
            };
            v["syscalls"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|r| r["names"].as_array().into_iter().flatten())
                .filter_map(|n| n.as_str().map(str::to_owned))
                .collect()
        })
        .iter()
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::{
        profile::{EvalContext, catalog},
        syscalls::Arch,
    };

    fn effective(b: RuntimeDefault, native: Arch, extra_caps: &[&str]) -> BTreeSet<String> {
        let mut ctx = EvalContext {
            native,
            caps: catalog::DOCKER_DEFAULT_CAPS.iter().map(|c| (*c).to_owned()).collect(),
            kernel: Some((6, 1)),
        };
        ctx.caps.extend(extra_caps.iter().map(|c| (*c).to_owned()));
        let p = b.template().expect("built-in parses").evaluate(&ctx);
        p.syscalls.iter().filter(|r| r.action == Action::Allow).flat_map(|r| r.names.iter().cloned()).collect()
    }

    /// The counts in runtime-default-notes.md ("Effective ALLOW set").
    #[test]
    fn effective_counts_match_the_notes() {
        let cases = [
            (Arch::X86_64, &[][..], 370, 372),
            (Arch::X86_64, &["CAP_SYS_ADMIN"][..], 395, 394),
            (Arch::Aarch64, &[][..], 374, 376),
            (Arch::Riscv64, &[][..], 369, 372),
        ];
        for (arch, caps, moby, containerd) in cases {
            let m = effective(RuntimeDefault::Moby, arch, caps);
            let c = effective(RuntimeDefault::Containerd, arch, caps);
            assert_eq!((m.len(), c.len()), (moby, containerd), "{arch:?} {caps:?}");
        }
        let m = effective(RuntimeDefault::Moby, Arch::X86_64, &[]);
        let c = effective(RuntimeDefault::Containerd, Arch::X86_64, &[]);
        assert_eq!(m.difference(&c).collect::<Vec<_>>(), ["riscv_hwprobe"]);
        assert_eq!(c.difference(&m).collect::<Vec<_>>(), LSM_NAMES);
    }

    #[test]
    fn builtin_parses_without_warnings() {
        let loaded = parse_str(MOBY_DEFAULT_JSON, "moby").expect("parses");
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        assert_eq!(loaded.dialect, crate::profile::Dialect::Moby);
        assert!(moby_names().count() > 400);
    }

    #[test]
    fn old_kernels_lose_the_min_kernel_rule() {
        let ctx = EvalContext { native: Arch::X86_64, caps: BTreeSet::new(), kernel: Some((4, 4)) };
        let p = RuntimeDefault::Moby.template().expect("parses").evaluate(&ctx);
        assert!(!p.syscalls.iter().any(|r| r.names.iter().any(|n| n == "ptrace")));
        let ctx = EvalContext { kernel: Some((4, 8)), ..ctx };
        let p = RuntimeDefault::Moby.template().expect("parses").evaluate(&ctx);
        assert!(p.syscalls.iter().any(|r| r.names.iter().any(|n| n == "ptrace")));
    }
}
