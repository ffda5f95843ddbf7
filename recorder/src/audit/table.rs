//! The shipped table of libc functions and the syscalls each may make
//! (`recorder/data/libc-syscalls/x86_64.tsv`, derived from glibc 2.36 and
//! musl 1.2.5 by `generate.py`; docs/libc-syscalls.md).

use std::{collections::BTreeMap, sync::OnceLock};

use crate::syscalls::Arch;

const TABLE: &str = include_str!("../../data/libc-syscalls/x86_64.tsv");

/// The libcs the table was derived from (for reports).
pub const SOURCES: &str = "glibc 2.36 and musl 1.2.5 (recorder/data/libc-syscalls)";

fn table() -> &'static BTreeMap<&'static str, Vec<&'static str>> {
    static PARSED: OnceLock<BTreeMap<&'static str, Vec<&'static str>>> = OnceLock::new();
    PARSED.get_or_init(|| {
        TABLE
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| {
                let mut fields = l.split('\t');
                let name = fields.next()?;
                let calls = fields.next()?.split(',').filter(|c| !c.is_empty()).collect();
                Some((name, calls))
            })
            .collect()
    })
}

/// The syscalls libc function `function` may make, named for `arch`
/// (names the architecture does not have are left out: the table is
/// x86_64's, and aarch64 has no `open` or `fork`).
pub fn calls_of(function: &str, arch: Arch) -> Vec<&'static str> {
    // `fopen64` and friends are the same functions on 64-bit targets.
    let entry = table().get(function).or_else(|| function.strip_suffix("64").and_then(|f| table().get(f)));
    entry
        .map(|calls| calls.iter().filter_map(|c| arch.number_of(c).and_then(|nr| arch.name_of(nr))).collect())
        .unwrap_or_default()
}

/// Number of functions in the table.
pub fn len() -> usize {
    table().len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_knows_the_paths_that_matter() {
        assert!(len() > 1000, "{} functions", len());
        assert!(calls_of("fork", Arch::X86_64).contains(&"clone"));
        assert!(calls_of("posix_spawn", Arch::X86_64).contains(&"clone3"));
        assert!(calls_of("system", Arch::X86_64).contains(&"wait4"));
        assert!(calls_of("rename", Arch::X86_64).contains(&"rename"));
        assert!(calls_of("sync_file_range", Arch::X86_64).contains(&"sync_file_range"));
        assert!(calls_of("fopen64", Arch::X86_64).contains(&"openat"));
        assert!(calls_of("strlen", Arch::X86_64).is_empty());
        // aarch64 has no fork syscall: only the names it has are given.
        let arm = calls_of("fork", Arch::Aarch64);
        assert!(arm.contains(&"clone") && !arm.contains(&"fork"), "{arm:?}");
    }
}
