//! Turning a moby template into the plain OCI profile a runtime would load.
//!
//! This follows moby's `setupSeccomp` (moby/profiles `seccomp/seccomp_linux.go`):
//! `archMap` keeps the entry whose architecture is the host's native one, plus
//! its sub-architectures; a rule is kept when every `includes` condition holds
//! (all of its caps are in the bounding set, the GOARCH is listed, the kernel is
//! at least `minKernel`) and dropped when any `excludes` condition holds.
//! Argument conditions are kept as they are.

use std::collections::BTreeSet;

use super::{Filter, Profile, catalog};
use crate::syscalls::{Arch, Family};

/// What a runtime knows when it evaluates a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvalContext {
    /// The host's native architecture.
    pub native: Arch,
    /// The container's bounding capability set, `CAP_*` names.
    pub caps: BTreeSet<String>,
    /// The running kernel (major, minor); `None` counts as new enough.
    pub kernel: Option<(u32, u32)>,
}

impl EvalContext {
    /// This host, Docker's default capabilities, the running kernel.
    pub fn host() -> EvalContext {
        EvalContext {
            native: Family::host().native,
            caps: catalog::DOCKER_DEFAULT_CAPS.iter().map(|c| (*c).to_owned()).collect(),
            kernel: running_kernel(),
        }
    }
}

/// The running kernel's (major, minor), from uname(2)'s release string.
pub fn running_kernel() -> Option<(u32, u32)> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    parse_kernel(release.trim())
}

/// Parses "6.1.0-18-amd64" or "4.8" into (major, minor).
pub fn parse_kernel(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().filter(|s| !s.is_empty()).map_or(Some(0), |s| s.parse().ok())?;
    Some((major, minor))
}

impl Filter {
    fn kernel_at_least(&self, ctx: &EvalContext) -> Option<bool> {
        let min = self.min_kernel.as_deref()?;
        Some(match (parse_kernel(min), ctx.kernel) {
            (Some(min), Some(running)) => running >= min,
            // An unreadable version counts as new enough, as if unchecked.
            _ => true,
        })
    }
}

impl Profile {
    /// The plain OCI profile a runtime would load from this template on the
    /// host `ctx` describes. A profile with no moby keys comes back unchanged.
    pub fn evaluate(&self, ctx: &EvalContext) -> Profile {
        let mut out = self.clone();
        let native = ctx.native.scmp_name();
        if !self.arch_map.is_empty() {
            out.architectures = self
                .arch_map
                .iter()
                .filter(|e| e.architecture == native)
                .flat_map(|e| std::iter::once(e.architecture.clone()).chain(e.sub_architectures.iter().cloned()))
                .collect();
            // An entry that lists itself, or twice, names each one once.
            let mut seen = std::collections::BTreeSet::new();
            out.architectures.retain(|arch| seen.insert(arch.clone()));
            out.arch_map.clear();
        }
        let goarch = catalog::goarch(ctx.native);
        out.syscalls = self
            .syscalls
            .iter()
            .filter(|rule| {
                let ex = &rule.excludes;
                let excluded = ex.arches.iter().any(|a| a == goarch)
                    || ex.caps.iter().any(|c| ctx.caps.contains(c))
                    || ex.kernel_at_least(ctx) == Some(true);
                let inc = &rule.includes;
                let included = (inc.arches.is_empty() || inc.arches.iter().any(|a| a == goarch))
                    && inc.caps.iter().all(|c| ctx.caps.contains(c))
                    && inc.kernel_at_least(ctx) != Some(false);
                included && !excluded
            })
            .map(|rule| {
                let mut rule = rule.clone();
                rule.includes = Filter::default();
                rule.excludes = Filter::default();
                rule.comment = None;
                rule
            })
            .collect();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_versions_parse() {
        assert_eq!(parse_kernel("6.1.0-18-amd64"), Some((6, 1)));
        assert_eq!(parse_kernel("4.8"), Some((4, 8)));
        assert_eq!(parse_kernel("5"), Some((5, 0)));
        assert_eq!(parse_kernel("x"), None);
    }

    #[test]
    fn an_arch_map_that_loops_names_each_architecture_once() {
        let mut profile = Profile::empty(crate::profile::Action::Errno);
        let entry = |arch: &str, subs: &[&str]| crate::profile::ArchMapEntry {
            architecture: arch.to_owned(),
            sub_architectures: subs.iter().map(|s| (*s).to_owned()).collect(),
        };
        profile.arch_map = vec![
            entry("SCMP_ARCH_X86_64", &["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X86"]),
            entry("SCMP_ARCH_X86_64", &["SCMP_ARCH_X32"]),
        ];
        let ctx = EvalContext { native: Arch::X86_64, caps: BTreeSet::new(), kernel: None };
        assert_eq!(profile.evaluate(&ctx).architectures, ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
    }
}
