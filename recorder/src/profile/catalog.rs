//! Names a profile may use: syscalls, architectures, errno names, flags and
//! capabilities, with "did you mean" suggestions for the misspelt ones.

use std::{collections::BTreeSet, sync::OnceLock};

use crate::syscalls::Arch;

/// Every architecture name libseccomp (2.5+) accepts, `SCMP_ARCH_NATIVE` included.
pub const SCMP_ARCHES: [&str; 24] = [
    "SCMP_ARCH_NATIVE",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_SH",
    "SCMP_ARCH_SHEB",
];

/// The architectures the SPO `SeccompProfile` CRD's enum admits (v1 and
/// v1beta1): no LOONGARCH64, M68K or SH.
pub const SPO_ARCHES: [&str; 20] = [
    "SCMP_ARCH_NATIVE",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
];

/// seccomp(2) filter flags the OCI spec names.
pub const FLAGS: [&str; 4] = [
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
];

/// The GOARCH names moby's `includes.arches`/`excludes.arches` use.
pub const GOARCHES: [&str; 13] =
    ["amd64", "x86", "x32", "386", "arm", "arm64", "ppc64le", "s390", "s390x", "riscv64", "mips64", "mips", "loong64"];

/// The GOARCH a runtime built for `native` reports: what moby compares
/// `includes.arches` with (`runtime.GOARCH`).
pub fn goarch(native: Arch) -> &'static str {
    match native {
        Arch::X86_64 => "amd64",
        Arch::X86 => "386",
        Arch::X32 => "x32",
        Arch::Aarch64 => "arm64",
        Arch::Arm => "arm",
        Arch::Riscv64 => "riscv64",
        Arch::Ppc64le => "ppc64le",
        Arch::S390x => "s390x",
        Arch::S390 => "s390",
        Arch::Mips64 | Arch::Mips64n32 => "mips64",
        Arch::Mips => "mips",
        Arch::Loongarch64 => "loong64",
    }
}

/// The SCMP name for spellings people use for the same thing (`AMD64`,
/// `SCMP_ARCH_ARM64`, `x86_64`), for "did you mean" hints.
pub fn arch_alias(name: &str) -> Option<&'static str> {
    let bare = name.trim_start_matches("SCMP_ARCH_").to_ascii_lowercase();
    let arch = arch_from_user(&bare).or(match bare.as_str() {
        "x86_64" | "x86-64" | "x64" => Some(Arch::X86_64),
        "i386" | "i686" | "ia32" => Some(Arch::X86),
        "aarch64" => Some(Arch::Aarch64),
        _ => None,
    })?;
    Some(arch.scmp_name())
}

/// Parses a `--arch` value: a GOARCH (`amd64`) or an SCMP name.
pub fn arch_from_user(name: &str) -> Option<Arch> {
    Arch::from_scmp_name(name).or_else(|| Arch::ALL.into_iter().find(|a| goarch(*a) == name))
}

/// Linux capabilities (capabilities(7)), as moby's `includes.caps` spells them.
pub const CAPS: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Docker's default capability set (moby `oci/caps/defaults.go`).
pub const DOCKER_DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Normalises `sys_admin`, `SYS_ADMIN`, `cap_sys_admin` to `CAP_SYS_ADMIN`.
pub fn normalise_cap(name: &str) -> Option<&'static str> {
    let upper = name.trim().to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") { upper } else { format!("CAP_{upper}") };
    CAPS.into_iter().find(|c| *c == full)
}

/// Every syscall name any supported architecture knows, plus the names in
/// the built-in moby profile (which may be newer than the syscall tables).
pub fn known_syscalls() -> &'static BTreeSet<&'static str> {
    static KNOWN: OnceLock<BTreeSet<&'static str>> = OnceLock::new();
    KNOWN.get_or_init(|| {
        let mut known: BTreeSet<&'static str> = Arch::ALL.into_iter().flat_map(Arch::names).collect();
        known.extend(crate::profile::runtime_default::moby_names());
        known
    })
}

pub fn is_known_syscall(name: &str) -> bool {
    known_syscalls().contains(name)
}

/// The closest name in `candidates`, if it is close enough to be a likely typo.
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let core = strip_family(name);
    let limit = (core.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .map(|c| {
            let c_core = strip_family(c);
            // The distance is at least the length difference: skip the work.
            let edits =
                if core.len().abs_diff(c_core.len()) > limit { usize::MAX } else { strsim::levenshtein(core, c_core) };
            // SCMP_CMP_EQUAL for SCMP_CMP_EQ: one spelled out the other.
            let spelled_out =
                c_core.len() >= 2 && core.len() >= 2 && (core.starts_with(c_core) || c_core.starts_with(core));
            let d = if spelled_out { edits.min(1) } else { edits };
            // Ties go to the fewer real edits: X8664 is X86_64 (one edit),
            // not X86 (a prefix, but two edits away).
            (d, edits, c)
        })
        .filter(|(d, _, _)| *d <= limit)
        .min()
        .map(|(_, _, c)| c)
}

/// The part after a shared prefix, so SCMP_ACT_NOPE is not "close" to
/// SCMP_ACT_LOG just because the prefix is long.
fn strip_family(name: &str) -> &str {
    ["SCMP_ACT_", "SCMP_ARCH_", "SCMP_CMP_", "SECCOMP_FILTER_FLAG_", "CAP_"]
        .iter()
        .find_map(|p| name.strip_prefix(p))
        .unwrap_or(name)
}

/// errno names (containers/common `"errno": "ENOSYS"`) and their numbers on
/// the asm-generic table that x86, arm and riscv share.
pub const ERRNOS: [(&str, u32); 39] = [
    ("EPERM", 1),
    ("ENOENT", 2),
    ("ESRCH", 3),
    ("EINTR", 4),
    ("EIO", 5),
    ("ENXIO", 6),
    ("E2BIG", 7),
    ("ENOEXEC", 8),
    ("EBADF", 9),
    ("ECHILD", 10),
    ("EAGAIN", 11),
    ("ENOMEM", 12),
    ("EACCES", 13),
    ("EFAULT", 14),
    ("ENOTBLK", 15),
    ("EBUSY", 16),
    ("EEXIST", 17),
    ("EXDEV", 18),
    ("ENODEV", 19),
    ("ENOTDIR", 20),
    ("EISDIR", 21),
    ("EINVAL", 22),
    ("ENFILE", 23),
    ("EMFILE", 24),
    ("ENOTTY", 25),
    ("ETXTBSY", 26),
    ("EFBIG", 27),
    ("ENOSPC", 28),
    ("ESPIPE", 29),
    ("EROFS", 30),
    ("EMLINK", 31),
    ("EPIPE", 32),
    ("EDOM", 33),
    ("ERANGE", 34),
    ("EDEADLK", 35),
    ("ENAMETOOLONG", 36),
    ("ENOLCK", 37),
    ("ENOSYS", 38),
    ("EOPNOTSUPP", 95),
];

pub fn errno_from_name(name: &str) -> Option<u32> {
    ERRNOS.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

/// Largest errno the kernel returns (MAX_ERRNO in include/linux/err.h).
pub const MAX_ERRNO: u32 = 4095;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Op;

    #[test]
    fn suggestions_find_typos_only() {
        let known = known_syscalls().iter().copied();
        assert_eq!(suggest("opnat", known.clone()), Some("openat"));
        assert_eq!(suggest("definitely_not_a_syscall", known), None);
        assert_eq!(suggest("SCMP_ARCH_X8664", SCMP_ARCHES), Some("SCMP_ARCH_X86_64"));
        assert_eq!(suggest("SCMP_ARCH_X86-64", SCMP_ARCHES), Some("SCMP_ARCH_X86_64"));
        assert_eq!(suggest("SCMP_ARCH_AARCH6", SCMP_ARCHES), Some("SCMP_ARCH_AARCH64"));
        assert_eq!(suggest("SCMP_CMP_EQUAL", Op::ALL.map(Op::as_str)), Some("SCMP_CMP_EQ"));
    }

    #[test]
    fn caps_normalise() {
        assert_eq!(normalise_cap("sys_admin"), Some("CAP_SYS_ADMIN"));
        assert_eq!(normalise_cap("CAP_BPF"), Some("CAP_BPF"));
        assert_eq!(normalise_cap("CAP_NOPE"), None);
    }

    #[test]
    fn errno_names_match_libc() {
        assert_eq!(errno_from_name("ENOSYS"), Some(libc::ENOSYS as u32));
        assert_eq!(errno_from_name("EOPNOTSUPP"), Some(libc::EOPNOTSUPP as u32));
        for (name, v) in ERRNOS {
            assert!(v > 0 && v <= MAX_ERRNO, "{name}");
        }
    }
}
