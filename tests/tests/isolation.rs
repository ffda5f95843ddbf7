//! Two recordings at the same time: each profile holds only its own
//! workload's syscalls.

use std::{collections::BTreeSet, process::Command};

use recorder_tests::{allowed_names, assert_runs_under, minimal_program, recorder_bin, scratch_dir, skip_bpf_tests};

#[test]
fn concurrent_recordings_do_not_mix() {
    if skip_bpf_tests() {
        return;
    }
    // getcwd (79) in one, uname (63) in the other; both sleep so they overlap.
    let a_prog = minimal_program(Some(79), Some(1500));
    let b_prog = minimal_program(Some(63), Some(1500));
    let a = scratch_dir().join("iso-a.json");
    let b = scratch_dir().join("iso-b.json");
    let spawn = |out: &std::path::Path, prog: &std::path::Path| {
        Command::new(recorder_bin())
            .args(["record", "-q", "-o"])
            .arg(out)
            .arg("--")
            .arg(prog)
            .spawn()
            .expect("recorder starts")
    };
    let mut ra = spawn(&a, &a_prog);
    let mut rb = spawn(&b, &b_prog);
    assert!(ra.wait().expect("wait a").success());
    assert!(rb.wait().expect("wait b").success());
    let set = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    // Plus `exit`, which every profile allows (a thread ends with it).
    assert_eq!(allowed_names(&a), set(&["execve", "exit", "exit_group", "getcwd", "nanosleep", "write"]));
    assert_eq!(allowed_names(&b), set(&["execve", "exit", "exit_group", "nanosleep", "uname", "write"]));
    // Each runs under its own profile, enforced.
    for (profile, prog) in [(&a, &a_prog), (&b, &b_prog)] {
        assert_runs_under(profile, prog);
    }
}
