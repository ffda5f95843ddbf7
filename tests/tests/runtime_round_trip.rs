//! Round trip through real runtimes: the ground-truth program, recorded with
//! `recorder record`, runs in a container under its profile via containerd's
//! `ctr run --seccomp --seccomp-profile`, with runc and with crun, and
//! behaves as it does unconfined. Without `getcpu` it gets EPERM.
//!
//! The runtime complication: runc and crun make a few syscalls of their own
//! after installing the container's filter and before exec'ing the entrypoint
//! (runc 1.1.5: `fstatfs` for "ensure /proc/self/fd is on procfs", the exec
//! fifo's `openat`/`write`, Go runtime `futex`/`rt_sigreturn`, ...). A profile
//! recorded from the workload alone does not have them, so this test adds the
//! runtime's post-filter base set (`recorder_tests::runtime_base`, derived
//! and verified by the harness tests) to the recorded profile. Recording
//! containers with that boundary handled by the recorder itself is the
//! containers/pods work.

use std::collections::BTreeSet;

use recorder_tests::{
    allowed_names, assert_exit,
    containers::{Containerd, Runtime, ctr_run, fix_crun_hybrid_hugetlb, rootfs_with},
    ground_truth_program, recorder, scratch_dir, skip_bpf_tests, write_profile,
};

fn round_trip(runtime: Runtime) {
    if skip_bpf_tests() {
        return;
    }
    if runtime == Runtime::Crun {
        fix_crun_hybrid_hugetlb().expect("crun needs hugetlb off the v2 hierarchy on hybrid hosts");
    }
    let name = runtime.binary_name();
    let program = ground_truth_program();
    let recorded = scratch_dir().join(format!("{name}-recorded.json"));
    let marker = scratch_dir().join(format!("{name}-marker"));
    let out = recorder(&[
        "record",
        "-q",
        "-o",
        recorded.to_str().expect("utf8"),
        "--",
        program.to_str().expect("utf8"),
        marker.to_str().expect("utf8"),
    ]);
    assert_exit(&out, 0, "recording the ground-truth program");

    let dir = tempfile::Builder::new().prefix("rt-gt-").tempdir_in("/tmp").expect("tempdir");
    let rootfs = rootfs_with(&[program.as_path()], dir.path()).expect("rootfs with the program and its libraries");
    let containerd = Containerd::start(dir.path()).expect("private containerd");
    let args = ["/bin/ground_truth", "/tmp/marker"];

    let unconfined = ctr_run(&containerd, &rootfs, None, runtime, &args).expect("ctr run");
    assert_exit(&unconfined, 0, "unconfined");

    let mut names = allowed_names(&recorded);
    names.extend(runtime.post_filter_base().iter().map(|s| s.to_string()));
    let profile = dir.path().join("profile.json");
    write_profile(&profile, &names);
    let confined = ctr_run(&containerd, &rootfs, Some(&profile), runtime, &args).expect("ctr run");
    assert_exit(&confined, 0, &format!("ground truth under its recorded profile + {name}'s base set"));
    assert_eq!(confined.stdout, unconfined.stdout, "same output as unconfined");
    assert_eq!(String::from_utf8_lossy(&confined.stdout), "ground truth ok\n");

    let mut reduced: BTreeSet<String> = names.clone();
    assert!(reduced.remove("getcpu"));
    let reduced_path = dir.path().join("reduced.json");
    write_profile(&reduced_path, &reduced);
    let denied = ctr_run(&containerd, &rootfs, Some(&reduced_path), runtime, &args).expect("ctr run");
    assert_exit(&denied, 1, "without getcpu");
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert!(stderr.contains("getcpu: EPERM"), "stderr: {stderr}");
}

#[test]
fn runc_enforces_the_recorded_profile() {
    round_trip(Runtime::Runc);
}

#[test]
fn crun_enforces_the_recorded_profile() {
    round_trip(Runtime::Crun);
}
