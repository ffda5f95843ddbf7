//! Syscalls worth a second look when a profile allows them, each with the
//! reason in one line. Most are the ones moby's default profile gates behind
//! a capability; the reasons follow its documentation (docs/security/seccomp.md).

/// (name, why it is risky), sorted by name.
pub const RISKY: [(&str, &str); 40] = [
    ("acct", "switches process accounting on or off for the whole host"),
    ("add_key", "the kernel keyring is not namespaced, so keys are shared with the host"),
    ("bpf", "loads programs into the kernel: a large attack surface and a way to read kernel memory"),
    ("clock_settime", "sets the host's clock; time is not namespaced"),
    ("delete_module", "unloads kernel modules"),
    ("fanotify_init", "watches filesystem events across mounts, beyond the container"),
    ("finit_module", "loads kernel modules"),
    ("fsconfig", "configures a new mount (new mount API)"),
    ("fsmount", "creates a mount (new mount API)"),
    ("fsopen", "opens a filesystem for mounting (new mount API)"),
    ("init_module", "loads kernel modules"),
    ("io_uring_enter", "io_uring runs operations that seccomp never sees, and has had many kernel bugs"),
    ("io_uring_register", "io_uring runs operations that seccomp never sees, and has had many kernel bugs"),
    ("io_uring_setup", "io_uring runs operations that seccomp never sees, and has had many kernel bugs"),
    ("ioperm", "gives raw access to I/O ports"),
    ("iopl", "gives raw access to I/O ports"),
    ("kexec_file_load", "replaces the running kernel"),
    ("kexec_load", "replaces the running kernel"),
    ("keyctl", "the kernel keyring is not namespaced, so keys are shared with the host"),
    ("lookup_dcookie", "reveals host paths; tracing-only and long obsolete"),
    ("mount", "changes the filesystem view: the first step of many container escapes"),
    ("move_mount", "attaches a mount (new mount API)"),
    ("name_to_handle_at", "with open_by_handle_at, reaches files outside the container's mounts"),
    ("open_by_handle_at", "opens files by handle, bypassing the mount namespace (the 'shocker' escape)"),
    ("open_tree", "clones mount trees (new mount API)"),
    ("perf_event_open", "a large kernel attack surface that can leak kernel addresses"),
    ("personality", "can turn off ASLR or make data executable"),
    ("pivot_root", "changes the root mount"),
    ("process_vm_readv", "reads another process's memory"),
    ("process_vm_writev", "writes another process's memory"),
    ("ptrace", "reads and writes other processes' memory and registers; used in escapes"),
    ("reboot", "reboots or halts the host, or loads a kexec kernel"),
    ("request_key", "the kernel keyring is not namespaced, so keys are shared with the host"),
    ("setns", "joins other namespaces, including the host's when their files are reachable"),
    ("settimeofday", "sets the host's clock; time is not namespaced"),
    ("swapon", "changes the host's swap"),
    ("syslog", "reads the kernel log, which can leak kernel addresses"),
    ("umount2", "changes the filesystem view, can uncover what mounts hide"),
    ("unshare", "creates namespaces; user namespaces expose root-only kernel code to the container"),
    ("userfaultfd", "stalls kernel page faults: a staple of kernel exploit races"),
];

/// Why `name` is risky, if it is.
pub fn reason(name: &str) -> Option<&'static str> {
    RISKY.binary_search_by(|(n, _)| n.cmp(&name)).ok().and_then(|i| RISKY.get(i)).map(|(_, r)| *r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_has_the_issue_examples() {
        assert!(RISKY.windows(2).all(|w| w[0].0 < w[1].0));
        for name in [
            "ptrace",
            "bpf",
            "mount",
            "unshare",
            "setns",
            "keyctl",
            "userfaultfd",
            "perf_event_open",
            "io_uring_setup",
            "open_by_handle_at",
        ] {
            assert!(reason(name).is_some(), "{name}");
        }
    }
}
