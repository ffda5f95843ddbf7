//! Go binaries: Go makes its syscalls itself, not through libc, so there is
//! nothing to import. What it can do is in its function names: `.gopclntab`
//! keeps every function's name even in a stripped binary, and the `syscall`
//! and `golang.org/x/sys/unix` wrappers are named after the calls they make.

use crate::syscalls::Arch;

/// Every function name in a `.gopclntab` section (Go 1.16 and later;
/// empty for an older or unknown layout).
pub fn function_names(pclntab: &[u8]) -> Vec<String> {
    let Some(magic) = pclntab.get(..4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])) else {
        return Vec::new();
    };
    let ptr = usize::from(pclntab.get(7).copied().unwrap_or(0));
    if ptr != 4 && ptr != 8 {
        return Vec::new();
    }
    let word = |i: usize| -> Option<usize> {
        let at = 8 + i * ptr;
        let bytes = pclntab.get(at..at + ptr)?;
        let mut v = [0u8; 8];
        v[..ptr].copy_from_slice(bytes);
        usize::try_from(u64::from_le_bytes(v)).ok()
    };
    // Go 1.18+ (0xfffffff0; 1.20+: 0xfffffff1): nfunc, nfiles, textStart,
    // funcnameOffset, cuOffset, ... ; Go 1.16/1.17 (0xfffffffa): no textStart.
    let (names, end) = match magic {
        0xffff_fff0 | 0xffff_fff1 => (word(3), word(4)),
        0xffff_fffa => (word(2), word(3)),
        _ => (None, None),
    };
    let (Some(start), Some(end)) = (names, end) else { return Vec::new() };
    let Some(table) = pclntab.get(start..end) else { return Vec::new() };
    table.split(|b| *b == 0).filter(|n| !n.is_empty()).map(|n| String::from_utf8_lossy(n).into_owned()).collect()
}

/// Package prefixes whose exported functions are named after a syscall.
const WRAPPER_PACKAGES: &[&str] = &["syscall.", "golang.org/x/sys/unix.", "internal/syscall/unix."];

/// Wrappers whose name is not their syscall's on 64-bit Linux.
const RENAMED: &[(&str, &[&str])] = &[
    ("Open", &["openat"]),
    ("Openat", &["openat"]),
    ("Stat", &["newfstatat"]),
    ("Lstat", &["newfstatat"]),
    ("Fstatat", &["newfstatat"]),
    ("Pipe", &["pipe2"]),
    ("Dup2", &["dup3"]),
    ("Mkdir", &["mkdirat"]),
    ("Unlink", &["unlinkat"]),
    ("Rmdir", &["unlinkat"]),
    ("Rename", &["renameat", "renameat2"]),
    ("Readlink", &["readlinkat"]),
    ("Symlink", &["symlinkat"]),
    ("Link", &["linkat"]),
    ("Chmod", &["fchmodat"]),
    ("Chown", &["fchownat"]),
    ("Mknod", &["mknodat"]),
    ("Access", &["faccessat", "faccessat2"]),
    ("Utimes", &["utimensat"]),
    ("UtimesNano", &["utimensat"]),
    ("Getdents", &["getdents64"]),
    ("ReadDirent", &["getdents64"]),
    ("EpollCreate", &["epoll_create1"]),
    ("Wait4", &["wait4"]),
    ("Kill", &["kill"]),
    ("Exec", &["execve"]),
    ("Mmap", &["mmap"]),
    ("Setrlimit", &["prlimit64"]),
    ("Getrlimit", &["prlimit64"]),
    ("Sendfile", &["sendfile"]),
];

/// What Go's process start makes (syscall/exec_linux.go
/// `forkAndExecInChild1`): a vfork-style clone, then in the child the
/// attribute calls and execve, and in the parent the pipe read and wait4.
const START_PROCESS: &[&str] =
    &["clone", "dup3", "execve", "exit_group", "fcntl", "pipe2", "read", "close", "wait4", "setpgid", "setsid"];

/// Calls a Go function name stands for, if it is a syscall wrapper or a
/// known process-starting function, on `arch`.
pub fn calls_of(function: &str, arch: Arch) -> Vec<&'static str> {
    let fixed: Option<&[&str]> = match function {
        "syscall.forkExec" | "syscall.StartProcess" | "os.StartProcess" | "os/exec.(*Cmd).Start" => Some(START_PROCESS),
        "os.(*Process).wait" | "os.(*Process).Wait" => Some(&["wait4", "waitid"]),
        "os.(*Process).signal" | "os.(*Process).Signal" => Some(&["kill", "pidfd_send_signal"]),
        "plugin.Open" => Some(&["openat", "read", "mmap", "mprotect", "munmap", "close", "newfstatat"]),
        _ => None,
    };
    let names: Vec<String> = if let Some(list) = fixed {
        list.iter().map(|s| (*s).to_owned()).collect()
    } else {
        let Some(base) = WRAPPER_PACKAGES.iter().find_map(|p| function.strip_prefix(p)) else {
            return Vec::new();
        };
        // Exported plain functions only (not methods, closures or types).
        if !base.starts_with(|c: char| c.is_ascii_uppercase()) || !base.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Vec::new();
        }
        if let Some((_, list)) = RENAMED.iter().find(|(n, _)| *n == base) {
            list.iter().map(|s| (*s).to_owned()).collect()
        } else {
            vec![snake(base), base.to_ascii_lowercase()]
        }
    };
    let known: std::collections::BTreeSet<&'static str> =
        names.iter().filter_map(|n| arch.number_of(n).and_then(|nr| arch.name_of(nr))).collect();
    known.into_iter().collect()
}

/// `EpollCreate1` -> `epoll_create1`, `SchedSetaffinity` -> `sched_setaffinity`.
fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrappers_map_to_their_calls() {
        assert_eq!(calls_of("syscall.Setuid", Arch::X86_64), ["setuid"]);
        assert_eq!(calls_of("golang.org/x/sys/unix.EpollCreate1", Arch::X86_64), ["epoll_create1"]);
        assert_eq!(calls_of("syscall.Open", Arch::X86_64), ["openat"]);
        assert!(calls_of("os/exec.(*Cmd).Start", Arch::X86_64).contains(&"execve"));
        assert!(calls_of("syscall.(*Errno).Error", Arch::X86_64).is_empty());
        assert!(calls_of("main.main", Arch::X86_64).is_empty());
        assert!(calls_of("syscall.NotACall", Arch::X86_64).is_empty());
    }

    #[test]
    fn reads_a_go_1_18_function_table() {
        let mut tab = vec![0xf0, 0xff, 0xff, 0xff, 0, 0, 1, 8];
        let names = b"main.main\0syscall.Setuid\0";
        let start = 8 + 8 * 8;
        for w in [2u64, 0, 0, start as u64, (start + names.len()) as u64, 0, 0, 0] {
            tab.extend(w.to_le_bytes());
        }
        tab.extend(names);
        assert_eq!(function_names(&tab), ["main.main", "syscall.Setuid"]);
        assert!(function_names(b"junk").is_empty());
    }
}
