//! What the kernel itself requires, measured without recorder's own checks:
//! tests/programs/bpf_caps.c does what recorder does in miniature (maps with
//! RLIMIT_MEMLOCK at 0, a ring buffer, a raw tracepoint program attached to
//! sys_enter) under every capability set that matters, as root with a
//! reduced bounding set and as nobody with ambient capabilities. This is
//! the evidence behind the README's capability table and the DaemonSet's
//! `capabilities.add: [BPF, PERFMON]`.

use std::process::Command;

use recorder_tests::{compile, skip_bpf_tests};

const STEPS: [&str; 5] = ["memlock-limit-0", "map", "ringbuf", "raw-tracepoint-program", "attach-sys_enter"];

/// The program's lines under `caps` (setpriv syntax, e.g. `+bpf,+perfmon`).
fn run(caps: &str, as_nobody: bool) -> String {
    let program = compile("bpf_caps.c", "bpf_caps", &["-O2", "-Wall"]);
    let set = if caps.is_empty() { "-all".to_owned() } else { format!("-all,{caps}") };
    let mut cmd = Command::new("setpriv");
    if as_nobody {
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(format!("--inh-caps={set}"))
            .arg(format!("--ambient-caps={set}"));
    } else {
        cmd.arg(format!("--bounding-set={set}"));
    }
    let out = cmd.arg("--").arg(&program).output().expect("setpriv runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The lines expected when every step up to `fails_at` works and that one
/// gets EPERM (`None`: all work).
fn expected(fails_at: Option<&str>) -> String {
    let mut text = String::new();
    for step in STEPS {
        if Some(step) == fails_at {
            text.push_str(&format!("{step}: EPERM\n"));
            return text;
        }
        text.push_str(&format!("{step}: ok\n"));
    }
    text
}

#[test]
fn the_kernel_needs_cap_bpf_and_cap_perfmon_and_nothing_else() {
    if skip_bpf_tests() {
        return;
    }
    for as_nobody in [false, true] {
        let who = if as_nobody { "nobody with ambient" } else { "root with bounding set" };
        // Both: everything works, with no memlock allowance at all (BPF
        // memory is charged to the memory cgroup: no CAP_SYS_RESOURCE).
        assert_eq!(run("+bpf,+perfmon", as_nobody), expected(None), "{who} +bpf,+perfmon");
        // CAP_BPF alone makes maps; a tracing program needs CAP_PERFMON.
        assert_eq!(run("+bpf", as_nobody), expected(Some("raw-tracepoint-program")), "{who} +bpf");
        // CAP_PERFMON alone cannot even make a map.
        assert_eq!(run("+perfmon", as_nobody), expected(Some("map")), "{who} +perfmon");
        assert_eq!(run("", as_nobody), expected(Some("map")), "{who} no capabilities");
        // CAP_SYS_ADMIN implies both (what "root" means to bpf(2)).
        assert_eq!(run("+sys_admin", as_nobody), expected(None), "{who} +sys_admin");
    }
}
