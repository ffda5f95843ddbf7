//! Proves the container harness: a private containerd runs a static program under runc and
//! crun, seccomp profiles are enforced, the runtime base sets are enough and needed, and
//! container cgroups are where `ProcCgroups` says.
//!
//! Needs root, containerd, runc, crun, busybox-static and gcc with a static libc
//! (libc6-dev). Every test fails when it cannot run; set RECORDER_SKIP_CONTAINER_TESTS=1 to
//! skip them instead.

#![expect(clippy::expect_used, reason = "test code reports failures by panicking")]

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use recorder_tests::containers::{
    Containerd, NAMESPACE, Runtime, SANDBOX_IMAGE, cgroup_id, cgroup2_mount, ctr_run, ctr_run_detached,
    fix_crun_hybrid_hugetlb, import_image, import_pause_image, rootfs_with,
};
use recorder_tests::runtime_base::{CRUN_1_8_1_POST_FILTER, RUNC_1_1_5_POST_FILTER};

const SKIP_VAR: &str = "RECORDER_SKIP_CONTAINER_TESTS";

/// Writes "hello", then calls uname. Distinct exit codes say which call seccomp denied.
const HELLO_C: &str = r#"
#include <errno.h>
#include <sys/utsname.h>
#include <unistd.h>

int main(void) {
    if (write(1, "hello\n", 6) == -1)
        return errno == EPERM ? 42 : 1;
    struct utsname u;
    if (uname(&u) == -1)
        return errno == EPERM ? 43 : 2;
    return 0;
}
"#;
const EXIT_WRITE_EPERM: i32 = 42;
const EXIT_UNAME_EPERM: i32 = 43;

/// Syscalls of HELLO_C built with `gcc -static -O2` against Debian 12's glibc 2.36 on x86_64,
/// from `strace -f ./hello`: glibc's static startup (brk .. mprotect), then the program's own.
const HELLO_SYSCALLS: &[&str] = &[
    "execve",
    "brk",
    "arch_prctl",
    "set_tid_address",
    "set_robust_list",
    "rseq",
    "prlimit64",
    "readlink",
    "getrandom",
    "mprotect",
    "write",
    "uname",
    "exit_group",
];

/// Fields drop in order: containerd (kills everything) before the directory goes.
struct Fixture {
    containerd: Containerd,
    rootfs: PathBuf,
    dir: tempfile::TempDir,
}

fn skip() -> bool {
    if std::env::var(SKIP_VAR).as_deref() == Ok("1") {
        eprintln!("{SKIP_VAR}=1: skipping container test");
        return true;
    }
    false
}

/// Compiles HELLO_C, builds a rootfs with it and starts a containerd. Panics with what is
/// missing when it cannot.
fn fixture() -> Fixture {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(euid, 0, "container tests need root (containerd, cgroups, mounts); set {SKIP_VAR}=1 to skip");
    let dir =
        tempfile::Builder::new().prefix("rt-").tempdir_in("/tmp").expect("creating a temporary directory in /tmp");
    let source = dir.path().join("hello.c");
    fs::write(&source, HELLO_C).expect("writing hello.c");
    let binary = dir.path().join("hello");
    let gcc = Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&binary)
        .arg(&source)
        .output()
        .unwrap_or_else(|e| panic!("running gcc failed ({e}); install gcc and libc6-dev"));
    assert!(
        gcc.status.success(),
        "gcc -static failed (static glibc comes with libc6-dev): {}",
        String::from_utf8_lossy(&gcc.stderr)
    );
    let rootfs = rootfs_with(&[binary.as_path()], dir.path()).expect("building the rootfs");
    let containerd = Containerd::start(dir.path()).expect("starting a private containerd");
    Fixture { containerd, rootfs, dir }
}

impl Fixture {
    /// Writes an OCI LinuxSeccomp profile allowing exactly `syscalls` (errno EPERM otherwise).
    fn profile<'a>(&self, name: &str, syscalls: impl IntoIterator<Item = &'a str>) -> PathBuf {
        let names: BTreeSet<&str> = syscalls.into_iter().collect();
        let profile = serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": libc::EPERM,
            "architectures": [native_arch()],
            "syscalls": [{ "names": names, "action": "SCMP_ACT_ALLOW" }],
        });
        let path = self.dir.path().join(format!("{name}.json"));
        fs::write(&path, serde_json::to_vec_pretty(&profile).expect("serialising profile")).expect("writing profile");
        path
    }

    fn run(&self, profile: Option<&Path>, runtime: Runtime) -> Output {
        ctr_run(&self.containerd, &self.rootfs, profile, runtime, &["/bin/hello"])
            .unwrap_or_else(|e| panic!("ctr run under {runtime:?}: {e:#}"))
    }

    /// HELLO_SYSCALLS plus the runtime's base set, minus `remove`.
    fn profile_without(&self, runtime: Runtime, remove: &[&str]) -> PathBuf {
        let name = format!("{runtime:?}-without-{}", remove.join("-"));
        self.profile(
            &name,
            HELLO_SYSCALLS.iter().chain(runtime.post_filter_base()).copied().filter(|s| !remove.contains(s)),
        )
    }
}

fn native_arch() -> &'static str {
    if cfg!(target_arch = "x86_64") {
        "SCMP_ARCH_X86_64"
    } else if cfg!(target_arch = "aarch64") {
        "SCMP_ARCH_AARCH64"
    } else {
        panic!("HELLO_SYSCALLS was derived on x86_64; derive it again for this architecture")
    }
}

fn crun_ready() {
    fix_crun_hybrid_hugetlb().expect("moving cgroup v2 controllers off for crun");
}

fn describe(out: &Output) -> String {
    format!(
        "status {:?}, stdout {:?}, stderr {:?}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn assert_hello(out: &Output) {
    assert!(out.status.success() && out.stdout == b"hello\n", "expected hello and exit 0: {}", describe(out));
}

/// Round trip for one runtime: unconfined, full profile, and the profile minus `uname`.
fn round_trip(runtime: Runtime) {
    let f = fixture();
    assert_hello(&f.run(None, runtime));

    let full = f.profile_without(runtime, &[]);
    // Several runs: runc's Go runtime makes some post-filter syscalls only now and then.
    for _ in 0..5 {
        assert_hello(&f.run(Some(&full), runtime));
    }

    let out = f.run(Some(&f.profile_without(runtime, &["uname"])), runtime);
    assert_eq!(out.status.code(), Some(EXIT_UNAME_EPERM), "{}", describe(&out));
    assert_eq!(out.stdout, b"hello\n", "{}", describe(&out));
}

#[test]
fn runc_round_trip() {
    if skip() {
        return;
    }
    round_trip(Runtime::Runc);
}

#[test]
fn crun_round_trip() {
    if skip() {
        return;
    }
    crun_ready();
    round_trip(Runtime::Crun);
}

/// crun does not write after its filter, so a profile without `write` reaches the program
/// and the program's write fails with EPERM.
#[test]
fn crun_denies_write() {
    if skip() {
        return;
    }
    crun_ready();
    let f = fixture();
    let out = f.run(Some(&f.profile_without(Runtime::Crun, &["write"])), Runtime::Crun);
    assert_eq!(out.status.code(), Some(EXIT_WRITE_EPERM), "{}", describe(&out));
    assert!(out.stdout.is_empty(), "{}", describe(&out));
}

/// runc writes to its exec fifo after installing the filter: without `write` the container
/// never reaches the program (which would have exited 42).
#[test]
fn runc_needs_write_itself() {
    if skip() {
        return;
    }
    let f = fixture();
    let out = f.run(Some(&f.profile_without(Runtime::Runc, &["write"])), Runtime::Runc);
    assert!(!out.status.success(), "{}", describe(&out));
    assert_ne!(out.status.code(), Some(EXIT_WRITE_EPERM), "{}", describe(&out));
    assert!(out.stdout.is_empty(), "{}", describe(&out));
}

/// Each deterministic member of a base set is needed: without it runtime init fails
/// before the program runs. (`futex` and `rt_sigreturn` in runc's set fail only some runs;
/// see runtime_base.rs.)
fn base_members_needed(runtime: Runtime, deterministic: &[&str]) {
    let f = fixture();
    for syscall in deterministic {
        assert!(runtime.post_filter_base().contains(syscall), "{syscall} is not in {runtime:?}'s base set");
        let out = f.run(Some(&f.profile_without(runtime, &[syscall])), runtime);
        assert!(
            !out.status.success() && out.stdout.is_empty(),
            "{runtime:?} started the program although the profile denies {syscall}: {}",
            describe(&out)
        );
    }
}

#[test]
fn runtime_base_runc_members_needed() {
    if skip() {
        return;
    }
    // `write` is covered by runc_needs_write_itself.
    base_members_needed(Runtime::Runc, &["close", "openat", "fstatfs", "getdents64", "execve"]);
}

#[test]
fn runtime_base_crun_members_needed() {
    if skip() {
        return;
    }
    crun_ready();
    base_members_needed(Runtime::Crun, &["execve"]);
}

#[test]
fn runtime_base_names_are_known_to_libseccomp() {
    let runc: BTreeSet<&str> = RUNC_1_1_5_POST_FILTER.iter().copied().collect();
    assert_eq!(runc.len(), RUNC_1_1_5_POST_FILTER.len(), "duplicates in the runc set");
    for name in RUNC_1_1_5_POST_FILTER.iter().chain(CRUN_1_8_1_POST_FILTER) {
        assert!(libseccomp::ScmpSyscall::from_name(name).is_ok(), "libseccomp does not know {name}");
    }
}

/// The runc base set through containerd's shim, many times: the Go runtime's `futex` and
/// `rt_sigreturn` on the filtered thread show up in a few percent of runs only.
#[test]
#[ignore = "slow (about a minute); run with --ignored when changing the runc base set"]
fn runtime_base_runc_holds_over_many_runs() {
    if skip() {
        return;
    }
    let f = fixture();
    let full = f.profile_without(Runtime::Runc, &[]);
    let failures: Vec<String> = (0..200)
        .map(|_| f.run(Some(&full), Runtime::Runc))
        .filter(|out| !(out.status.success() && out.stdout == b"hello\n"))
        .map(|out| describe(&out))
        .collect();
    assert!(failures.is_empty(), "{} of 200 runs failed: {failures:#?}", failures.len());
}

/// Where runc and crun put a container's process: `/<namespace>/<id>` in every v1
/// hierarchy and in the v2 one, and the cgroup id is the v2 directory's inode.
fn cgroup_placement(runtime: Runtime) {
    let f = fixture();
    let task = ctr_run_detached(&f.containerd, &f.rootfs, None, runtime, &["/bin/sleep", "30"])
        .unwrap_or_else(|e| panic!("ctr run -d under {runtime:?}: {e:#}"));
    let pid = task.pid().expect("task pid");
    let cgroups = task.cgroups().expect("task cgroups");
    let relative = Path::new(NAMESPACE).join(task.id());

    let v2 = cgroup2_mount().expect("reading mountinfo").expect("no cgroup2 mount on this host");
    let unified = cgroups.unified.clone().expect("task has no cgroup v2 path");
    assert_eq!(unified, v2.join(&relative), "{cgroups:#?}");
    let procs = fs::read_to_string(unified.join("cgroup.procs")).expect("reading cgroup.procs");
    assert!(
        procs.lines().any(|l| l.trim() == pid.to_string()),
        "pid {pid} not in {}/cgroup.procs: {procs}",
        unified.display()
    );
    assert_eq!(cgroups.unified_id().expect("cgroup id"), cgroup_id(&v2.join(&relative)).expect("cgroup id"));
    if let Some(memory) = cgroups.v1_path("memory") {
        assert!(memory.ends_with(&relative), "{cgroups:#?}");
    }
    eprintln!("{runtime:?} task {pid}: {cgroups:#?}");
}

#[test]
fn runc_cgroup_placement() {
    if skip() {
        return;
    }
    cgroup_placement(Runtime::Runc);
}

#[test]
fn crun_cgroup_placement() {
    if skip() {
        return;
    }
    crun_ready();
    cgroup_placement(Runtime::Crun);
}

/// Images built locally with umoci import and run; the CRI plugin is up.
#[test]
fn images_import_and_run() {
    if skip() {
        return;
    }
    let f = fixture();
    let plugins = f.containerd.ctr().args(["plugins", "ls"]).output().expect("ctr plugins ls");
    let plugins = String::from_utf8_lossy(&plugins.stdout);
    assert!(
        plugins.lines().any(|l| l.contains(" cri ") && l.trim_end().ends_with("ok")),
        "CRI plugin not ok:\n{plugins}\n{}",
        f.containerd.log_tail()
    );

    import_image(
        &f.containerd,
        &f.rootfs,
        "localhost/recorder-tests/hello:1",
        &["/bin/hello"],
        NAMESPACE,
        f.dir.path(),
    )
    .expect("importing the hello image");
    let out = f
        .containerd
        .ctr()
        .args(["run", "--rm", "--runc-root"])
        .arg(f.containerd.runtime_root())
        .arg("--fifo-dir")
        .arg(f.containerd.fifo_dir())
        .args(["localhost/recorder-tests/hello:1", "image-hello"])
        .output()
        .expect("ctr run image");
    assert_hello(&out);

    import_pause_image(&f.containerd, f.dir.path()).expect("importing the pause image");
    let images = f.containerd.ctr_in("k8s.io").args(["images", "ls", "-q"]).output().expect("ctr images ls");
    assert!(
        String::from_utf8_lossy(&images.stdout).lines().any(|l| l == SANDBOX_IMAGE),
        "{SANDBOX_IMAGE} not imported: {}",
        describe(&images)
    );
}
