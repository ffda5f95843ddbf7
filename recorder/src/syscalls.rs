//! Per-architecture syscall tables (libseccomp's names, which runtimes use,
//! completed by the `syscall-numbers` crate for newer calls), the host's
//! architecture family, and what each syscall does (man-pages' one-liners).

use std::{
    collections::{BTreeMap, BTreeSet},
    ffi::c_long,
    str::FromStr as _,
    sync::OnceLock,
};

use recorder_common::{Abi, MAX_SYSCALLS, X32_SYSCALL_BIT};

/// A seccomp architecture, named as libseccomp and the OCI spec name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arch {
    X86_64,
    X86,
    X32,
    Aarch64,
    Arm,
    Riscv64,
    Ppc64le,
    S390x,
    S390,
    Mips64,
    Mips64n32,
    Mips,
    Loongarch64,
}

impl Arch {
    pub const ALL: [Arch; 13] = [
        Arch::X86_64,
        Arch::X86,
        Arch::X32,
        Arch::Aarch64,
        Arch::Arm,
        Arch::Riscv64,
        Arch::Ppc64le,
        Arch::S390x,
        Arch::S390,
        Arch::Mips64,
        Arch::Mips64n32,
        Arch::Mips,
        Arch::Loongarch64,
    ];

    /// The OCI / libseccomp spelling, e.g. `SCMP_ARCH_X86_64`.
    pub fn scmp_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "SCMP_ARCH_X86_64",
            Arch::X86 => "SCMP_ARCH_X86",
            Arch::X32 => "SCMP_ARCH_X32",
            Arch::Aarch64 => "SCMP_ARCH_AARCH64",
            Arch::Arm => "SCMP_ARCH_ARM",
            Arch::Riscv64 => "SCMP_ARCH_RISCV64",
            Arch::Ppc64le => "SCMP_ARCH_PPC64LE",
            Arch::S390x => "SCMP_ARCH_S390X",
            Arch::S390 => "SCMP_ARCH_S390",
            Arch::Mips64 => "SCMP_ARCH_MIPS64",
            Arch::Mips64n32 => "SCMP_ARCH_MIPS64N32",
            Arch::Mips => "SCMP_ARCH_MIPS",
            Arch::Loongarch64 => "SCMP_ARCH_LOONGARCH64",
        }
    }

    /// Parses `SCMP_ARCH_X86_64` and friends.
    pub fn from_scmp_name(name: &str) -> Option<Arch> {
        Arch::ALL.into_iter().find(|a| a.scmp_name() == name)
    }

    /// Name of syscall `nr` on this architecture. For x32, `nr` is without
    /// the x32 bit, as the BPF side stores it.
    ///
    /// Names are libseccomp's where it knows the number (they are what runc,
    /// crun and `recorder run` resolve profiles with), else the
    /// `syscall-numbers` tables' (newer calls than the host's libseccomp
    /// knows). The two disagree for a few 32-bit time calls, which the
    /// tables spell as musl does (`gettimeofday_time32`) or lack
    /// (`clock_gettime` on ia32).
    pub fn name_of(self, nr: u32) -> Option<&'static str> {
        self.forward_table().get(&nr).copied()
    }

    /// The `syscall-numbers` name of `nr`, before libseccomp's naming.
    fn table_name(self, nr: u32) -> Option<&'static str> {
        let nr = c_long::from(nr);
        match self {
            Arch::X86_64 => syscall_numbers::x86_64::sys_call_name(nr),
            Arch::X86 => syscall_numbers::x86::sys_call_name(nr),
            Arch::X32 => syscall_numbers::x32::sys_call_name(nr | X32_SYSCALL_BIT as c_long),
            Arch::Aarch64 => syscall_numbers::aarch64::sys_call_name(nr),
            Arch::Arm => syscall_numbers::arm::sys_call_name(nr),
            Arch::Riscv64 => syscall_numbers::riscv64::sys_call_name(nr),
            Arch::Ppc64le => syscall_numbers::powerpc64::sys_call_name(nr),
            Arch::S390x | Arch::S390 => syscall_numbers::s390x::sys_call_name(nr),
            Arch::Mips64 => syscall_numbers::mips64::sys_call_name(nr),
            Arch::Mips64n32 => syscall_numbers::mipsn32::sys_call_name(nr),
            Arch::Mips => syscall_numbers::mips::sys_call_name(nr),
            Arch::Loongarch64 => syscall_numbers::loongarch64::sys_call_name(nr),
        }
        // The tables name a few reserved slots; they are not callable names.
        .filter(|name| !name.is_empty())
    }

    /// libseccomp's name of `nr` on this architecture, if it knows one.
    fn libseccomp_name(self, nr: u32) -> Option<String> {
        let arch = libseccomp::ScmpArch::from_str(self.scmp_name()).ok()?;
        let nr = if self == Arch::X32 { nr | X32_SYSCALL_BIT as u32 } else { nr };
        let syscall = libseccomp::ScmpSyscall::from(i32::try_from(nr).ok()?);
        syscall.get_name_by_arch(arch).ok().filter(|n| !n.is_empty())
    }

    /// Number -> name, built once per architecture.
    fn forward_table(self) -> &'static BTreeMap<u32, &'static str> {
        static TABLES: OnceLock<BTreeMap<Arch, BTreeMap<u32, &'static str>>> = OnceLock::new();
        static NAMES: OnceLock<BTreeSet<&'static str>> = OnceLock::new();
        let tables = TABLES.get_or_init(|| {
            // libseccomp's names, kept for the program's life (a few
            // thousand short strings, made once).
            let mut owned: Vec<(Arch, u32, String)> = Vec::new();
            for arch in Arch::ALL {
                for nr in 0..arch.number_limit() {
                    if let Some(name) = arch.libseccomp_name(nr) {
                        owned.push((arch, nr, name));
                    }
                }
            }
            // Each distinct name is leaked once: leaking one per (arch, number)
            // lost the duplicates for good (LeakSanitizer in fuzz/ found it).
            let distinct: BTreeSet<&str> = owned.iter().map(|(_, _, n)| n.as_str()).collect();
            let interned = NAMES
                .get_or_init(|| distinct.into_iter().map(|n| &*Box::leak(n.to_owned().into_boxed_str())).collect());
            let mut tables: BTreeMap<Arch, BTreeMap<u32, &'static str>> = BTreeMap::new();
            for arch in Arch::ALL {
                let table = tables.entry(arch).or_default();
                for nr in 0..arch.number_limit() {
                    if let Some(name) = arch.table_name(nr) {
                        table.insert(nr, name);
                    }
                }
            }
            for (arch, nr, name) in &owned {
                if let (Some(table), Some(name)) = (tables.get_mut(arch), interned.get(name.as_str())) {
                    table.insert(*nr, name);
                }
            }
            tables
        });
        static EMPTY: BTreeMap<u32, &str> = BTreeMap::new();
        tables.get(&self).unwrap_or(&EMPTY)
    }

    /// Numbers below which this architecture's calls are looked up.
    fn number_limit(self) -> u32 {
        // Syscall numbers on the MIPS ABIs start at 4000/5000/6000.
        match self {
            Arch::Mips | Arch::Mips64 | Arch::Mips64n32 => 7000,
            _ => MAX_SYSCALLS as u32,
        }
    }

    /// Number of syscall `name` on this architecture (x32: without the bit).
    pub fn number_of(self, name: &str) -> Option<u32> {
        self.reverse_table().get(name).copied()
    }

    /// Every syscall name this architecture knows, sorted.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        self.reverse_table().keys().copied()
    }

    fn reverse_table(self) -> &'static BTreeMap<&'static str, u32> {
        static TABLES: OnceLock<BTreeMap<Arch, BTreeMap<&'static str, u32>>> = OnceLock::new();
        let tables = TABLES.get_or_init(|| {
            Arch::ALL
                .into_iter()
                .map(|arch| (arch, arch.forward_table().iter().map(|(nr, name)| (*name, *nr)).collect()))
                .collect()
        });
        // Every Arch is inserted above.
        static EMPTY: BTreeMap<&str, u32> = BTreeMap::new();
        tables.get(&self).unwrap_or(&EMPTY)
    }
}

/// The architectures one kernel runs: its native ABI plus the ABIs of the
/// 32-bit tasks it can host. A recorded profile lists those that made calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Family {
    pub native: Arch,
    pub x32: Option<Arch>,
    pub compat: Option<Arch>,
}

impl Family {
    /// An x86_64 kernel: x86_64, plus ia32 compat tasks and x32.
    pub const X86_64: Family = Family { native: Arch::X86_64, x32: Some(Arch::X32), compat: Some(Arch::X86) };
    /// An aarch64 kernel: aarch64, plus 32-bit arm compat tasks.
    pub const AARCH64: Family = Family { native: Arch::Aarch64, x32: None, compat: Some(Arch::Arm) };
    /// A riscv64 kernel (no compat ABI in the kernels we support).
    pub const RISCV64: Family = Family { native: Arch::Riscv64, x32: None, compat: None };

    /// The family of the machine this binary was built for.
    pub const fn host() -> Family {
        #[cfg(target_arch = "x86_64")]
        {
            Family::X86_64
        }
        #[cfg(target_arch = "aarch64")]
        {
            Family::AARCH64
        }
        #[cfg(target_arch = "riscv64")]
        {
            Family::RISCV64
        }
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "riscv64")))]
        {
            compile_error!("recorder supports x86_64, aarch64 and riscv64 hosts")
        }
    }

    /// The architecture a BPF-side ABI tag stands for on this family.
    pub fn arch_for(self, abi: Abi) -> Option<Arch> {
        match abi {
            Abi::NATIVE => Some(self.native),
            Abi::X32 => self.x32,
            Abi::COMPAT => self.compat,
            _ => None,
        }
    }

    /// `architectures` for a profile, in the order runtimes write them:
    /// native first, then compat, then x32 (moby's archMap order).
    pub fn scmp_names(self) -> Vec<&'static str> {
        [Some(self.native), self.compat, self.x32].into_iter().flatten().map(Arch::scmp_name).collect()
    }
}

/// What each syscall does: the NAME lines of section 2 of Linux man-pages,
/// derived by tests/scripts/derive-syscall-descriptions.py (the header says
/// which version). Tab-separated: name, description, page.
const DESCRIPTIONS: &str = include_str!("../data/syscall-descriptions.tsv");

/// What syscall `name` does in one line, and the man page that says so.
/// `None` when man-pages has no page for it (nothing is made up).
pub fn description(name: &str) -> Option<(&'static str, &'static str)> {
    DESCRIPTIONS.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
        let mut columns = line.split('\t');
        if columns.next()? != name {
            return None;
        }
        Some((columns.next()?, columns.next()?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_are_well_formed_and_cover_the_common_calls() {
        let rows: Vec<&str> = DESCRIPTIONS.lines().filter(|l| !l.starts_with('#')).collect();
        let names: Vec<&str> = rows.iter().filter_map(|l| l.split('\t').next()).collect();
        assert!(names.windows(2).all(|w| w[0] < w[1]), "sorted, no duplicates");
        for row in &rows {
            let columns: Vec<&str> = row.split('\t').collect();
            assert_eq!(columns.len(), 3, "{row}");
            assert!(columns.iter().all(|c| !c.trim().is_empty()), "{row}");
        }
        assert_eq!(description("read"), Some(("read from a file descriptor", "read(2)")));
        assert_eq!(description("newfstatat").map(|d| d.1), Some("stat(2)"));
        assert_eq!(description("no_such_call"), None);
        // Most of what an x86_64 process can call has a page.
        let native: Vec<&str> = Arch::X86_64.names().collect();
        let described = native.iter().filter(|n| description(n).is_some()).count();
        assert!(described * 100 / native.len() >= 85, "{described} of {} described", native.len());
    }

    #[test]
    fn x86_64_names_round_trip() {
        assert_eq!(Arch::X86_64.name_of(39), Some("getpid"));
        assert_eq!(Arch::X86_64.number_of("getppid"), Some(110));
        assert_eq!(Arch::X86_64.name_of(59), Some("execve"));
        assert_eq!(Arch::X86_64.name_of(1023), None);
    }

    #[test]
    fn ia32_and_x32_use_their_own_numbers() {
        assert_eq!(Arch::X86.name_of(20), Some("getpid"));
        // x32 execve is 520 once the x32 bit is masked off.
        assert_eq!(Arch::X32.name_of(520), Some("execve"));
        assert_eq!(Arch::X32.number_of("execve"), Some(520));
    }

    #[test]
    fn aarch64_tables_have_the_boundary_calls_and_no_legacy_ones() {
        // asm-generic numbers (include/uapi/asm-generic/unistd.h): what the
        // loader passes the BPF side on an arm64 host.
        for (name, nr) in
            [("seccomp", 277), ("prctl", 167), ("pivot_root", 41), ("chroot", 51), ("setns", 268), ("openat", 56)]
        {
            assert_eq!(Arch::Aarch64.number_of(name), Some(nr), "{name}");
        }
        for legacy in ["open", "dup2", "fork", "stat"] {
            assert_eq!(Arch::Aarch64.number_of(legacy), None, "arm64 has no {legacy}");
        }
        assert_eq!(Family::AARCH64.arch_for(Abi::COMPAT), Some(Arch::Arm));
        assert_eq!(Family::AARCH64.arch_for(Abi::X32), None);
        // 32-bit arm compat tasks use their own numbers.
        assert_eq!(Arch::Arm.name_of(5), Some("open"));
    }

    #[test]
    fn ia32_time_calls_have_libseccomps_names() {
        // The syscall-numbers tables spell these as musl does (or lack them).
        assert_eq!(Arch::X86.name_of(265), Some("clock_gettime"));
        assert_eq!(Arch::X86.name_of(78), Some("gettimeofday"));
        assert_eq!(Arch::X86.number_of("clock_gettime64"), Some(403));
    }

    #[test]
    fn host_family_lists_native_first() {
        let names = Family::host().scmp_names();
        assert_eq!(names.first().copied(), Some(Family::host().native.scmp_name()));
        #[cfg(target_arch = "x86_64")]
        assert_eq!(names, ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
    }
}
