//! `recorder inspect`: the seccomp filter a running process really runs
//! under, read from outside with PTRACE_SECCOMP_GET_FILTER and evaluated
//! for every syscall number and ABI.
//!
//! - A process under `recorder run --profile P` (libseccomp, nothing added):
//!   its allow set is exactly P's names, on every architecture P lists;
//!   `--against` a profile lacking one name says which, and
//!   `--fail-on-mismatch` exits 30.
//! - Two stacked filters: the strictest action wins, as in the kernel.
//! - An unconfined process says unconfined.
//! - Containers started by containerd (`ctr run`) under runc and under crun
//!   with a Localhost profile, containerd's RuntimeDefault and Unconfined:
//!   found by `--container-id`, each says which of the three it runs under,
//!   and the Localhost one's allow set equals its profile.
//! - The same three through the CRI (`--pod`), under runc and crun.
//!
//! Needs root; fails when it cannot run (RECORDER_SKIP_BPF_TESTS=1 skips).
//! Every process and container started here is killed at the end.

use std::{
    collections::BTreeSet,
    path::Path,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use recorder_tests::{
    assert_exit,
    containers::{Containerd, Runtime, ctr_run_detached, ctr_run_detached_with, fix_crun_hybrid_hugetlb, rootfs_with},
    cri::{
        ContainerSpec, Node, Pods, Seccomp,
        images::{Image, early_container},
        skip_container_tests,
    },
    recorder, recorder_bin, scratch_dir, skip_bpf_tests, write_profile,
};
use serde_json::Value;

/// Kills (SIGKILL) and reaps a started process when dropped.
struct Started(Child);

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What `sleep` (coreutils or busybox, glibc) may call from execve to exit.
const SLEEP_NEEDS: &[&str] = &[
    "access",
    "arch_prctl",
    "brk",
    "clock_gettime",
    "clock_nanosleep",
    "close",
    "execve",
    "exit",
    "exit_group",
    "fcntl",
    "fstat",
    "futex",
    "getcwd",
    "getegid",
    "geteuid",
    "getgid",
    "getpid",
    "getppid",
    "getrandom",
    "gettid",
    "getuid",
    "ioctl",
    "lseek",
    "madvise",
    "mmap",
    "mprotect",
    "munmap",
    "nanosleep",
    "newfstatat",
    "open",
    "openat",
    "pread64",
    "prlimit64",
    "read",
    "readlink",
    "restart_syscall",
    "rseq",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "set_robust_list",
    "set_tid_address",
    "sigaltstack",
    "stat",
    "statx",
    "sysinfo",
    "uname",
    "write",
];

fn names(extra: &[&str]) -> BTreeSet<String> {
    SLEEP_NEEDS.iter().chain(extra).map(|s| s.to_string()).collect()
}

/// Waits until `pid` runs `comm` under a seccomp filter mode `mode`.
fn wait_for(pid: u32, comm: &str, mode: u8) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let name = status.lines().find_map(|l| l.strip_prefix("Name:")).map(str::trim);
        let seccomp = status.lines().find_map(|l| l.strip_prefix("Seccomp:")).map(str::trim);
        if name == Some(comm) && seccomp == Some(&mode.to_string()) {
            return;
        }
        assert!(Instant::now() < deadline, "pid {pid} never ran {comm} in seccomp mode {mode}:\n{status}");
        thread::sleep(Duration::from_millis(20));
    }
}

fn inspect_json(args: &[&str], code: i32) -> Value {
    let mut all = vec!["inspect", "--json"];
    all.extend_from_slice(args);
    let out = recorder(&all);
    assert_exit(&out, code, &format!("recorder {}", all.join(" ")));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("inspect --json printed no JSON ({e}):\n{}", String::from_utf8_lossy(&out.stdout)))
}

fn allowed(v: &Value, arch: &str) -> BTreeSet<String> {
    v["architectures"][arch]["allowed"]
        .as_array()
        .unwrap_or_else(|| panic!("no {arch} in {v:#}"))
        .iter()
        .map(|n| n.as_str().expect("name").to_owned())
        .collect()
}

/// Names libseccomp resolves on `arch` (the others cannot be in a filter).
fn known_on(names: &BTreeSet<String>, arch: libseccomp::ScmpArch) -> BTreeSet<String> {
    names
        .iter()
        .filter(|n| libseccomp::ScmpSyscall::from_name_by_arch(n, arch).is_ok_and(|s| i32::from(s) >= 0))
        .cloned()
        .collect()
}

#[test]
fn a_recorder_run_process_has_exactly_its_profile() {
    if skip_bpf_tests() {
        return;
    }
    let dir = scratch_dir().join("inspect-run");
    std::fs::create_dir_all(&dir).expect("scratch");
    let profile = dir.join("sleep.json");
    let names = names(&[]);
    write_profile(&profile, &names);
    let child = Command::new(recorder_bin())
        .args(["run", "--profile"])
        .arg(&profile)
        .args(["--", "sleep", "30"])
        .stdin(Stdio::null())
        .spawn()
        .expect("recorder run");
    let child = Started(child);
    let pid = child.0.id();
    wait_for(pid, "sleep", 2);
    let pid_s = pid.to_string();
    let p = profile.to_str().expect("utf8");

    let v = inspect_json(&["--pid", &pid_s, "--against", p, "--fail-on-mismatch"], 0);
    assert_eq!(v["mode"], "filter", "{v:#}");
    assert_eq!(v["filters"], 1, "{v:#}");
    assert_eq!(v["no_new_privs"], true, "{v:#}");
    assert_eq!(v["runs_under"], "custom (a Localhost profile)", "{v:#}");
    assert_eq!(v["profile_kind"], "localhost", "{v:#}");
    assert_eq!(v["against"]["same_allow_set"], true, "{v:#}");
    for (arch, scmp) in
        [("SCMP_ARCH_X86_64", libseccomp::ScmpArch::X8664), ("SCMP_ARCH_X86", libseccomp::ScmpArch::X86)]
    {
        assert_eq!(allowed(&v, arch), known_on(&names, scmp), "{arch}: {v:#}");
        assert_eq!(v["architectures"][arch]["conditional"], serde_json::json!([]), "{arch}: {v:#}");
        let denied: Vec<&String> = v["architectures"][arch]["denied"].as_object().expect("denied").keys().collect();
        assert_eq!(denied, ["ERRNO(1)"], "{arch}: the default action only: {v:#}");
    }

    // Against a profile without `uname`: the filter allows more than intended.
    let mut fewer = names.clone();
    assert!(fewer.remove("uname"));
    let fewer_path = dir.join("fewer.json");
    write_profile(&fewer_path, &fewer);
    let v = inspect_json(&["--pid", &pid_s, "--against", fewer_path.to_str().expect("utf8"), "--fail-on-mismatch"], 30);
    assert_eq!(v["against"]["same_allow_set"], false, "{v:#}");
    let text = recorder(&["inspect", "--pid", &pid_s, "--against", fewer_path.to_str().expect("utf8")]);
    assert_exit(&text, 0, "inspect without --fail-on-mismatch");
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(stdout.contains("DIFFERENT"), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.contains("the filter allows") && l.split_whitespace().any(|w| w == "uname")),
        "{stdout}"
    );
    // The process was only stopped for the read: it still sleeps, untraced.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("still running");
    assert!(status.lines().any(|l| l.starts_with("TracerPid:") && l.ends_with("\t0")), "{status}");
}

/// Two filters stacked (`recorder run` inside `recorder run`): the outer
/// one allows everything but `uname`, the inner one the sleep profile. The
/// kernel keeps the strictest action, so `uname` is refused.
#[test]
fn stacked_filters_combine_as_the_kernel_does() {
    if skip_bpf_tests() {
        return;
    }
    let dir = scratch_dir().join("inspect-stacked");
    std::fs::create_dir_all(&dir).expect("scratch");
    let outer = dir.join("outer.json");
    let json = serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    });
    std::fs::write(&outer, json.to_string()).expect("outer profile");
    let inner = dir.join("inner.json");
    let names = names(&[]);
    write_profile(&inner, &names);
    let child = Command::new(recorder_bin())
        .args(["run", "--profile"])
        .arg(&outer)
        .arg("--")
        .arg(recorder_bin())
        .args(["run", "--profile"])
        .arg(&inner)
        .args(["--", "sleep", "30"])
        .stdin(Stdio::null())
        .spawn()
        .expect("recorder run");
    let child = Started(child);
    let pid = child.0.id();
    wait_for(pid, "sleep", 2);
    let v = inspect_json(&["--pid", &pid.to_string(), "--against", inner.to_str().expect("utf8")], 0);
    assert_eq!(v["filters"], 2, "{v:#}");
    assert_eq!(v["against"]["same_allow_set"], false, "{v:#}");
    let mut expected = known_on(&names, libseccomp::ScmpArch::X8664);
    assert!(expected.remove("uname"));
    assert_eq!(allowed(&v, "SCMP_ARCH_X86_64"), expected, "{v:#}");
}

#[test]
fn an_unconfined_process_says_unconfined() {
    if skip_bpf_tests() {
        return;
    }
    let child = Started(Command::new("sleep").arg("30").stdin(Stdio::null()).spawn().expect("sleep"));
    let pid = child.0.id();
    wait_for(pid, "sleep", 0);
    let v = inspect_json(&["--pid", &pid.to_string()], 0);
    assert_eq!(v["mode"], "disabled", "{v:#}");
    assert_eq!(v["runs_under"], "unconfined", "{v:#}");
    assert_eq!(v["profile_kind"], "unconfined", "{v:#}");
    assert_eq!(v["filters"], 0, "{v:#}");
    let text = recorder(&["inspect", "--pid", &pid.to_string()]);
    assert_exit(&text, 0, "inspect");
    assert!(String::from_utf8_lossy(&text.stdout).contains("runs under: unconfined"));
    let out = recorder(&["inspect", "--pid", "2147483647"]);
    assert_exit(&out, 13, "no such process");
}

/// The three profiles a Kubernetes pod can ask for, under `runtime`.
fn containers_say_what_they_run_under(runtime: Runtime) {
    if skip_bpf_tests() {
        return;
    }
    if runtime == Runtime::Crun {
        fix_crun_hybrid_hugetlb().expect("crun needs hugetlb off the v2 hierarchy on hybrid hosts");
    }
    let dir = tempfile::Builder::new().prefix("inspect-").tempdir_in("/tmp").expect("tempdir");
    let rootfs = rootfs_with(&[Path::new("/usr/bin/busybox")], dir.path()).expect("rootfs");
    let containerd = Containerd::start(dir.path()).expect("private containerd");
    let sleep = ["/bin/sleep", "60"];
    let name = runtime.binary_name();

    let unconfined = ctr_run_detached(&containerd, &rootfs, None, runtime, &sleep).expect("unconfined container");
    let v = inspect_json(&["--container-id", unconfined.id()], 0);
    assert_eq!(v["runs_under"], "unconfined", "{name}: {v:#}");
    assert_eq!(v["profile_kind"], "unconfined", "{name}: {v:#}");
    assert_eq!(v["mode"], "disabled", "{name}: {v:#}");
    drop(unconfined);

    // `ctr run --seccomp` without a file: containerd's default profile, the
    // one CRI applies for RuntimeDefault. This host's containerd (Debian's
    // 1.6.20) is older than the built-in template: it allows io_uring and
    // lacks a few calls added since, so it is named as another version.
    let default = ctr_run_detached_with(&containerd, &rootfs, None, runtime, &["--seccomp"], &sleep)
        .expect("runtime/default container");
    let v = inspect_json(&["--container-id", default.id()], 0);
    assert_eq!(v["mode"], "filter", "{name}: {v:#}");
    assert_eq!(v["profile_kind"], "runtime/default", "{name}: {v:#}");
    let runs_under = v["runs_under"].as_str().expect("runs_under");
    assert!(runs_under.starts_with("runtime/default:containerd"), "{name}: {v:#}");
    drop(default);

    let profile = dir.path().join("localhost.json");
    let names = names(runtime.post_filter_base());
    write_profile(&profile, &names);
    let localhost =
        ctr_run_detached(&containerd, &rootfs, Some(&profile), runtime, &sleep).expect("Localhost container");
    let p = profile.to_str().expect("utf8");
    let v = inspect_json(&["--container-id", localhost.id(), "--against", p, "--fail-on-mismatch"], 0);
    assert_eq!(v["mode"], "filter", "{name}: {v:#}");
    assert_eq!(v["runs_under"], "custom (a Localhost profile)", "{name}: {v:#}");
    assert_eq!(v["profile_kind"], "localhost", "{name}: {v:#}");
    assert_eq!(v["against"]["same_allow_set"], true, "{name}: {v:#}");
    assert_eq!(allowed(&v, "SCMP_ARCH_X86_64"), known_on(&names, libseccomp::ScmpArch::X8664), "{name}: {v:#}");
    drop(localhost);
}

#[test]
fn runc_containers_say_what_they_run_under() {
    containers_say_what_they_run_under(Runtime::Runc);
}

#[test]
fn crun_containers_say_what_they_run_under() {
    containers_say_what_they_run_under(Runtime::Crun);
}

/// `--pod` through the CRI: one pod per runtime with an Unconfined, a
/// RuntimeDefault and a Localhost container (the early_syscalls image, kept
/// running), each named by `profile_kind`.
#[test]
fn a_pods_containers_say_what_they_run_under() {
    if skip_container_tests() {
        return;
    }
    let node = Node::start(&[Image::Early]).expect("starting a private containerd with images");
    let pods = Pods::new(&node.containerd).expect("CRI client");
    let sock = node.containerd.address().to_str().expect("utf8").to_owned();
    let localhost = pods.work_dir().join("deny-ptrace.json");
    let json = serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["ptrace"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    });
    std::fs::write(&localhost, json.to_string()).expect("Localhost profile");
    for runtime in Runtime::ALL {
        let name = format!("inspect-{}", runtime.binary_name());
        let pod = pods.run_pod(&name, "default", runtime).expect("pod");
        let settings = [
            ("unconfined", Seccomp::Unconfined),
            ("default", Seccomp::RuntimeDefault),
            ("localhost", Seccomp::Localhost(localhost.clone())),
        ];
        for (container, seccomp) in &settings {
            let spec = ContainerSpec {
                name: (*container).to_owned(),
                seccomp: Some(seccomp.clone()),
                ..early_container(60_000)
            };
            pods.run_container(&pod, &spec).expect("container");
        }
        // The early program's syscalls are done within a moment; it then sleeps.
        thread::sleep(Duration::from_millis(500));
        let v = inspect_json(&["--pod", &name, "-n", "default", "--runtime-endpoint", &sock], 0);
        let list = v.as_array().unwrap_or_else(|| panic!("an array for --pod: {v:#}"));
        assert_eq!(list.len(), 3, "{runtime:?}: {v:#}");
        for (container, kind) in
            [("unconfined", "unconfined"), ("default", "runtime/default"), ("localhost", "localhost")]
        {
            let entry = list
                .iter()
                .find(|e| e["target"].as_str().is_some_and(|t| t.contains(&format!("container {container} "))))
                .unwrap_or_else(|| panic!("{runtime:?}: no {container} in {v:#}"));
            assert_eq!(entry["profile_kind"], kind, "{runtime:?} {container}: {entry:#}");
        }
        let local = list.iter().find(|e| e["profile_kind"] == "localhost").expect("localhost");
        let allowed = allowed(local, "SCMP_ARCH_X86_64");
        assert!(!allowed.contains("ptrace") && allowed.contains("uname"), "{runtime:?}: {local:#}");
        pods.remove_pod(&pod).expect("removing the pod");
    }
}
