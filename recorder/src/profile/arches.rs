//! Which architectures a profile filters, and the order they are written in.

use crate::{
    profile::{Profile, catalog},
    syscalls::{Arch, Family},
};

/// The architectures a profile filters, with SCMP_ARCH_NATIVE resolved and an
/// empty list meaning the native one (as libseccomp does).
pub fn effective_arches(p: &Profile) -> Vec<String> {
    let native = Family::host().native.scmp_name();
    let mut out: Vec<String> = Vec::new();
    for a in &p.architectures {
        let a = if a == "SCMP_ARCH_NATIVE" { native } else { a.as_str() };
        if !out.iter().any(|x| x == a) {
            out.push(a.to_owned());
        }
    }
    if out.is_empty() {
        out.push(native.to_owned());
    }
    out
}

/// Canonical architecture order: our table's order (native before compat),
/// then libseccomp's list for the others.
pub fn arch_rank(name: &str) -> (usize, usize) {
    match Arch::from_scmp_name(name) {
        Some(a) => (0, Arch::ALL.iter().position(|x| *x == a).unwrap_or(usize::MAX)),
        None => (1, catalog::SCMP_ARCHES.iter().position(|x| *x == name).unwrap_or(usize::MAX)),
    }
}
