//! Per-architecture syscall tables (from the `syscall-numbers` crate, which
//! tracks the kernel's own tables) and the host's architecture family.

use std::{collections::BTreeMap, ffi::c_long, sync::OnceLock};

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
    pub fn name_of(self, nr: u32) -> Option<&'static str> {
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
                .map(|arch| {
                    // Syscall numbers on the MIPS ABIs start at 4000/5000/6000.
                    let limit: u32 = match arch {
                        Arch::Mips | Arch::Mips64 | Arch::Mips64n32 => 7000,
                        _ => MAX_SYSCALLS as u32,
                    };
                    let table = (0..limit).filter_map(|nr| arch.name_of(nr).map(|name| (name, nr))).collect();
                    (arch, table)
                })
                .collect()
        });
        // Every Arch is inserted above.
        static EMPTY: BTreeMap<&str, u32> = BTreeMap::new();
        tables.get(&self).unwrap_or(&EMPTY)
    }
}

/// The architectures one kernel runs: its native ABI plus the ABIs of the
/// 32-bit tasks it can host. A profile lists all of them, as runtimes do.
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn host_family_lists_native_first() {
        let names = Family::host().scmp_names();
        assert_eq!(names.first().copied(), Some(Family::host().native.scmp_name()));
        #[cfg(target_arch = "x86_64")]
        assert_eq!(names, ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
    }
}
