//! A profile must hold for the workload's whole life: start, serve,
//! reload, stop. Real servers, real clients, real enforcement.
//!
//! a. nginx (1 and 2 workers) recorded with `recorder record -- nginx`
//!    while a client fetches pages, stopped by SIGINT to the recorder (as
//!    Ctrl-C would): the recorder stops nginx with SIGTERM and records its
//!    shutdown. Under that profile (`recorder run`) nginx serves, reloads on
//!    SIGHUP (new workers, still serving, nothing denied in error.log) and
//!    stops within 5 s on SIGTERM, and in another run on SIGQUIT, sent to
//!    the master alone. The same profile plus the runtime's base set runs
//!    nginx in a container (`ctr run --seccomp-profile`, runc and crun):
//!    serve, SIGHUP, SIGTERM to its init. `--exercise reload,reopen` signals
//!    the master only, while recorded; `--until-exit` on a cgroup writes the
//!    profile at --duration and again, with the shutdown, when nginx ends.
//! b. An nginx pod recorded with `--pod --duration` while it keeps running:
//!    its shutdown is never seen, so the shutdown set is added. A fresh pod
//!    under that profile (Localhost) serves wrk with no errors, and
//!    StopContainer (20 s grace) stops it cleanly within 5 s. runc and crun.
//! c. The same for redis (redis-benchmark; SIGTERM saves the RDB) and
//!    postgres (pgbench; SIGTERM is a smart shutdown) pods built from
//!    Debian's packages.
//!
//! The 5 s deadlines are functional: a server whose shutdown is denied
//! hangs until the grace period ends and is killed.
//!
//! Needs root, BPF, containerd, runc, crun, nginx, wrk, redis and
//! postgres; fails when it cannot run (RECORDER_SKIP_BPF_TESTS=1 or
//! RECORDER_SKIP_CONTAINER_TESTS=1 skip). One scenario at a time: the
//! machine has two cores.

use std::{
    collections::BTreeSet,
    io::Read as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use recorder::cri::api::ContainerState;
use recorder_tests::{
    allowed_names,
    containers::{Containerd, Runtime, ctr_run_detached_with, fix_crun_hybrid_hugetlb, rootfs_with},
    cri::{
        ContainerSpec, KUBEPODS, Node, Pods, Seccomp,
        databases::{self, PgData},
        images::{self, Image},
        skip_container_tests,
    },
    recorder_bin,
    servers::{
        Guarded, alive, children,
        clients::{self, HttpLoop, Tally},
        free_port,
        nginx::{self, Site},
        signal, wait_exit, wait_until,
    },
    skip_bpf_tests,
};

/// The functional deadline for a stop: far below every grace period used
/// here (the recorder's 5 s is the default, StopContainer gets 20 s), far
/// above what a clean shutdown of these servers takes.
const STOP_DEADLINE: Duration = Duration::from_secs(5);

/// StopContainer's grace period, as a pod's terminationGracePeriodSeconds.
const POD_GRACE_SECONDS: i64 = 20;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

fn skip() -> bool {
    skip_bpf_tests() || skip_container_tests()
}

fn assert_clean(tally: &Tally, what: &str) {
    assert!(tally.ok > 0 && tally.failed == 0, "{what}: {} ok, {} failed: {:?}", tally.ok, tally.failed, tally.errors);
}

// ---------------------------------------------------------------------------
// a. nginx on the host and in a container

/// nginx recorded from start to a clean stop.
struct Recorded {
    site: Site,
    profile: PathBuf,
}

/// `recorder record -o P -- nginx ...` while a client fetches pages, then
/// SIGINT to the recorder: the summary must say SIGTERM stopped nginx.
fn record_nginx(workers: u32, port_base: u16) -> Recorded {
    let site = Site::new(free_port(port_base), workers);
    let profile = site.dir.path().join("nginx.json");
    let child = Command::new(recorder_bin())
        .args(["record", "-o"])
        .arg(&profile)
        .arg("--")
        .args(site.argv())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("recorder starts");
    let mut recorder = Guarded::polite(child, libc::SIGINT);
    wait_serving(&mut recorder, site.port, || site.error_log());
    let load = HttpLoop::start(site.port, nginx::INDEX_HTML);
    std::thread::sleep(Duration::from_secs(2));
    assert_clean(&load.finish(), "client while recording");

    signal(recorder.pid(), libc::SIGINT);
    let (status, _) = wait_exit(&mut recorder.child, Duration::from_secs(30))
        .expect("the recorder ends within its grace period after SIGINT");
    let mut stderr = String::new();
    recorder.child.stderr.take().expect("stderr").read_to_string(&mut stderr).expect("read stderr");
    assert_eq!(status.code(), Some(0), "a recording stopped on purpose exits 0:\n{stderr}");
    assert!(stderr.contains("SIGTERM stopped it in"), "nginx must stop on SIGTERM while recorded:\n{stderr}");
    assert!(!stderr.contains("killed") && !stderr.contains("shutdown set"), "{stderr}");
    let names = allowed_names(&profile);
    for needed in ["accept4", "epoll_wait", "exit_group", "rt_sigreturn", "rt_sigsuspend"] {
        assert!(names.contains(needed), "{needed} missing from {names:?}");
    }
    assert!(nginx::failures(&site.error_log()).is_empty(), "{}", site.error_log());
    Recorded { site, profile }
}

/// Waits until nginx answers on `port`; fails at once when the process
/// ended, and after 15 s, with `log()`.
fn wait_serving(child: &mut Guarded, port: u16, log: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(Some(status)) = child.child.try_wait() {
            panic!("it exited ({status}) before serving on port {port}; log:\n{}", log());
        }
        if images::http_get(port).is_ok_and(|p| p.starts_with("HTTP/1.1 200")) {
            return;
        }
        assert!(Instant::now() < deadline, "nothing served on 127.0.0.1:{port} within 15 s; log:\n{}", log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The workers of `master` once there are `n` of them.
fn workers(master: u32, n: usize, log: &dyn Fn() -> String) -> BTreeSet<u32> {
    let mut found = BTreeSet::new();
    let ok = wait_until(Duration::from_secs(10), || {
        found = children(master).into_iter().filter(|p| alive(*p)).collect();
        found.len() == n
    });
    assert!(ok, "nginx master {master} has workers {found:?}, expected {n}; log:\n{}", log());
    found
}

/// SIGHUP to the master: new workers replace the old ones, it still serves,
/// and nothing in the log says a call was denied.
fn reload(master: u32, n: usize, port: u16, send: &dyn Fn(), log: &dyn Fn() -> String) {
    let old = workers(master, n, log);
    send();
    let mut now = BTreeSet::new();
    let replaced = wait_until(Duration::from_secs(10), || {
        now = children(master).into_iter().filter(|p| alive(*p)).collect();
        now.len() == n && now.is_disjoint(&old)
    });
    assert!(replaced, "after SIGHUP the workers are {now:?} (before: {old:?}); log:\n{}", log());
    let load = HttpLoop::start(port, nginx::INDEX_HTML);
    std::thread::sleep(Duration::from_secs(1));
    assert_clean(&load.finish(), "client after the reload");
    let text = log();
    assert!(text.contains("reconfiguring"), "the reload is not in the log:\n{text}");
    assert!(nginx::failures(&text).is_empty(), "after the reload:\n{text}");
}

/// nginx under the recorded profile (`recorder run`, which execs nginx: its
/// PID is the master's): serve, optionally reload, then `stop` to the master
/// alone, which must end it within [`STOP_DEADLINE`].
fn run_under_profile(rec: &Recorded, with_reload: bool, stop: i32) -> Duration {
    let site = &rec.site;
    let _ = std::fs::remove_file(site.error_log_path());
    let child = Command::new(recorder_bin())
        .args(["run", "--profile"])
        .arg(&rec.profile)
        .arg("--")
        .args(site.argv())
        .stdin(Stdio::null())
        .spawn()
        .expect("recorder run starts");
    let mut nginx = Guarded::new(child);
    let master = nginx.pid();
    let log = || site.error_log();
    wait_serving(&mut nginx, site.port, log);
    let n = site.workers as usize;
    let load = HttpLoop::start(site.port, nginx::INDEX_HTML);
    std::thread::sleep(Duration::from_secs(1));
    assert_clean(&load.finish(), "client under the profile");
    if with_reload {
        reload(master, n, site.port, &|| signal(master, libc::SIGHUP), &log);
    }
    let last = workers(master, n, &log);
    signal(master, stop);
    let Some((status, took)) = wait_exit(&mut nginx.child, STOP_DEADLINE) else {
        panic!("nginx still runs {STOP_DEADLINE:?} after signal {stop} to its master; log:\n{}", log());
    };
    assert!(status.success(), "nginx exited with {status} after signal {stop}; log:\n{}", log());
    assert!(wait_until(Duration::from_secs(2), || last.iter().all(|w| !alive(*w))), "workers outlived the master");
    let text = log();
    assert!(nginx::failures(&text).is_empty(), "while stopping:\n{text}");
    assert!(text.contains(&format!("{master}#{master}: exit")), "the master did not log its exit:\n{text}");
    took
}

fn nginx_on_the_host(workers: u32, port_base: u16) {
    if skip_bpf_tests() {
        return;
    }
    let _serial = serial();
    let rec = record_nginx(workers, port_base);
    let term = run_under_profile(&rec, true, libc::SIGTERM);
    let quit = run_under_profile(&rec, false, libc::SIGQUIT);
    eprintln!(
        "nginx ({workers} worker(s)) under its profile: SIGTERM stopped it in {:.3} s, SIGQUIT in {:.3} s",
        term.as_secs_f64(),
        quit.as_secs_f64()
    );
}

#[test]
fn nginx_with_one_worker_serves_reloads_and_stops_under_its_profile() {
    nginx_on_the_host(1, 19110);
}

#[test]
fn nginx_with_two_workers_serves_reloads_and_stops_under_its_profile() {
    nginx_on_the_host(2, 19130);
}

/// `--exercise reload,reopen`: SIGHUP and SIGUSR1 reach nginx's master (and
/// only the master: the workers hear of them from it) while recorded, the
/// recording goes on after each, and the stop signal still ends it cleanly.
#[test]
fn exercise_signals_reach_the_master_while_recorded() {
    if skip_bpf_tests() {
        return;
    }
    let _serial = serial();
    let site = Site::new(free_port(19310), 2);
    let profile = site.dir.path().join("nginx.json");
    let child = Command::new(recorder_bin())
        .args(["record", "--duration", "3s", "--exercise", "reload,reopen", "--exercise-wait", "1s", "-o"])
        .arg(&profile)
        .arg("--")
        .args(site.argv())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("recorder starts");
    let mut recorder = Guarded::polite(child, libc::SIGINT);
    let recorder_pid = recorder.pid();
    wait_serving(&mut recorder, site.port, || site.error_log());
    let (status, _) = wait_exit(&mut recorder.child, Duration::from_secs(30)).expect("the recording ends");
    let mut stderr = String::new();
    recorder.child.stderr.take().expect("stderr").read_to_string(&mut stderr).expect("read stderr");
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("SIGTERM stopped it in"), "{stderr}");
    let log = site.error_log();
    for signal in ["signal 1 (SIGHUP) received", "signal 10 (SIGUSR1) received", "signal 15 (SIGTERM) received"] {
        let from_recorder: Vec<&str> =
            log.lines().filter(|l| l.contains(signal) && l.contains(&format!("from {recorder_pid}"))).collect();
        assert_eq!(from_recorder.len(), 1, "{signal} from the recorder, once, to the master:\n{log}");
    }
    assert!(log.contains("reconfiguring") && log.contains("reopening logs"), "{log}");
    assert!(nginx::failures(&log).is_empty(), "{log}");
}

/// `--until-exit` on a cgroup recorder did not start: the profile is
/// written when --duration ends (nginx still running), and again, with the
/// shutdown, when nginx ends by itself.
#[test]
fn until_exit_writes_again_when_the_workload_ends() {
    if skip_bpf_tests() {
        return;
    }
    let _serial = serial();
    let site = Site::new(free_port(19330), 1);
    let cgroup = CgroupDir::create("until-exit");
    let cgroup = &cgroup.0;
    let procs = std::fs::OpenOptions::new().write(true).open(cgroup.join("cgroup.procs")).expect("cgroup.procs");
    let fd = std::os::fd::AsRawFd::as_raw_fd(&procs);
    let argv = site.argv();
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]).stdin(Stdio::null());
    // SAFETY: only write(2) in the child before exec: it joins the cgroup.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            if libc::write(fd, b"0".as_ptr().cast(), 1) == 1 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
        });
    }
    let mut nginx = Guarded::new(cmd.spawn().expect("nginx starts"));
    drop(procs);
    wait_serving(&mut nginx, site.port, || site.error_log());

    let profile = site.dir.path().join("until-exit.json");
    let child = Command::new(recorder_bin())
        .args(["record", "--cgroup"])
        .arg(cgroup)
        .args(["--duration", "2s", "--until-exit", "--no-shutdown-set", "-o"])
        .arg(&profile)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("recorder starts");
    let mut recorder = Guarded::polite(child, libc::SIGINT);
    let load = HttpLoop::start(site.port, nginx::INDEX_HTML);
    let written = wait_until(Duration::from_secs(15), || profile.exists());
    assert_clean(&load.finish(), "client while recorded");
    assert!(written, "no profile when --duration ended");
    assert!(alive(nginx.pid()), "--until-exit must not stop the workload");
    let interim = allowed_names(&profile);
    assert!(interim.contains("accept4") && !interim.contains("unlink"), "{interim:?}");

    // nginx ends by itself (an operator's SIGQUIT): the recording ends with it.
    signal(nginx.pid(), libc::SIGQUIT);
    let (status, _) = wait_exit(&mut recorder.child, Duration::from_secs(15)).expect("the recording ends with nginx");
    let mut stderr = String::new();
    recorder.child.stderr.take().expect("stderr").read_to_string(&mut stderr).expect("read stderr");
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("still running: its shutdown was not seen"), "first write:\n{stderr}");
    assert!(stderr.contains("it exited by itself"), "second write:\n{stderr}");
    let full = allowed_names(&profile);
    assert!(full.is_superset(&interim), "{full:?}");
    // The master removes its pid file as it exits: only the shutdown does that.
    assert!(full.contains("unlink"), "the shutdown is not in the final profile: {full:?}");
}

/// A cgroup of the test's own under the v2 mount, removed when dropped
/// (declare it before the processes in it, so they are gone first).
struct CgroupDir(PathBuf);

impl CgroupDir {
    fn create(name: &str) -> CgroupDir {
        let path = v2_mount().join(format!("lifecycle-{}-{name}", std::process::id()));
        std::fs::create_dir(&path).expect("creating a cgroup");
        CgroupDir(path)
    }
}

impl Drop for CgroupDir {
    fn drop(&mut self) {
        // The processes may take a moment to leave after SIGKILL.
        wait_until(Duration::from_secs(5), || std::fs::remove_dir(&self.0).is_ok());
    }
}

/// `profile` with `extra` added to its allow rule (its other rules, such as
/// clone3's ENOSYS, kept), written to `out`.
fn with_names(profile: &Path, extra: &[&str], out: &Path) {
    let text = std::fs::read_to_string(profile).expect("profile");
    let mut json: serde_json::Value = serde_json::from_str(&text).expect("profile is JSON");
    let rule = json["syscalls"]
        .as_array_mut()
        .expect("syscalls")
        .iter_mut()
        .find(|r| r["action"] == "SCMP_ACT_ALLOW" && r.get("args").is_none())
        .expect("an allow rule");
    let mut names: BTreeSet<String> =
        rule["names"].as_array().expect("names").iter().map(|n| n.as_str().expect("str").to_owned()).collect();
    names.extend(extra.iter().map(|s| s.to_string()));
    rule["names"] = serde_json::json!(names);
    std::fs::write(out, serde_json::to_string_pretty(&json).expect("json")).expect("write profile");
}

/// The recorded profile, plus the runtime's post-filter base set, enforced
/// by runc or crun through containerd (`ctr run --seccomp-profile`): nginx
/// serves, reloads on SIGHUP, and stops on SIGTERM to its init.
fn nginx_in_a_container(runtime: Runtime, port_base: u16) {
    if skip() {
        return;
    }
    let _serial = serial();
    if runtime == Runtime::Crun {
        fix_crun_hybrid_hugetlb().expect("crun needs hugetlb off the v2 hierarchy on hybrid hosts");
    }
    let rec = record_nginx(1, port_base);
    let port = free_port(port_base + 10);
    let dir = tempfile::Builder::new().prefix("lifecycle-ctr-").tempdir_in("/tmp").expect("tempdir");
    let rootfs = rootfs_with(&[Path::new("/usr/sbin/nginx")], dir.path()).expect("rootfs with nginx");
    nginx::populate_rootfs(&rootfs, port, 1);
    let profile = dir.path().join("profile.json");
    with_names(&rec.profile, runtime.post_filter_base(), &profile);
    let containerd = Containerd::start(dir.path()).expect("private containerd");
    let task = ctr_run_detached_with(
        &containerd,
        &rootfs,
        Some(&profile),
        runtime,
        &["--net-host"],
        &["/bin/nginx", "-g", "daemon off;"],
    )
    .expect("ctr run");
    let log_path = rootfs.join("var/log/nginx/error.log");
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let master = task.pid().expect("the container's init");
    let deadline = Instant::now() + Duration::from_secs(15);
    while !images::http_get(port).is_ok_and(|p| p.starts_with("HTTP/1.1 200")) {
        assert!(alive(master), "nginx ended before serving under {runtime:?}; log:\n{}", log());
        assert!(Instant::now() < deadline, "nothing served on {port} within 15 s; log:\n{}", log());
        std::thread::sleep(Duration::from_millis(20));
    }
    let load = HttpLoop::start(port, nginx::INDEX_HTML);
    std::thread::sleep(Duration::from_secs(1));
    assert_clean(&load.finish(), "client of the container");
    reload(master, 1, port, &|| task.kill("SIGHUP").expect("ctr tasks kill -s SIGHUP"), &log);

    let sent = Instant::now();
    task.kill("SIGTERM").expect("ctr tasks kill -s SIGTERM");
    let stopped = wait_until(STOP_DEADLINE, || !alive(master));
    let took = sent.elapsed();
    assert!(stopped, "nginx still runs {STOP_DEADLINE:?} after SIGTERM to its init under {runtime:?}; log:\n{}", log());
    assert!(wait_until(Duration::from_secs(5), || task.status().is_ok_and(|s| s == "STOPPED")), "task not STOPPED");
    let text = log();
    assert!(nginx::failures(&text).is_empty(), "under {runtime:?}:\n{text}");
    assert!(text.contains("1#1: exit"), "the master (PID 1 in the container) did not log its exit:\n{text}");
    eprintln!("nginx in a {runtime:?} container under its profile: SIGTERM stopped it in {:.3} s", took.as_secs_f64());
}

#[test]
fn nginx_container_serves_reloads_and_stops_under_runc() {
    nginx_in_a_container(Runtime::Runc, 19150);
}

#[test]
fn nginx_container_serves_reloads_and_stops_under_crun() {
    nginx_in_a_container(Runtime::Crun, 19170);
}

// ---------------------------------------------------------------------------
// b and c. Pods recorded while they keep running, proven by fresh pods

/// A server in a pod, as these tests drive it.
struct Server {
    /// Pod and container name.
    name: &'static str,
    image: Image,
    /// Seconds of recording (counted from the recorder's start, before the
    /// pod exists).
    duration: &'static str,
    /// Is it up on this port?
    ready: fn(u16) -> bool,
    /// The real client's work; its tally must have no failure.
    client: fn(u16) -> (Tally, String),
}

/// A container to start, and the port it serves on.
struct Spec {
    spec: ContainerSpec,
    port: u16,
}

fn v2_mount() -> PathBuf {
    recorder_tests::containers::cgroup2_mount().expect("mountinfo").expect("a cgroup v2 mount")
}

fn wait_ready(server: &Server, port: u16, pods: &Pods, id: &str) {
    let mut exited = false;
    let ok = wait_until(Duration::from_secs(30), || {
        exited = pods.status(id).is_ok_and(|(s, _)| s.state() == ContainerState::ContainerExited);
        exited || (server.ready)(port)
    });
    let logs = || pods.logs(id).unwrap_or_default();
    assert!(!exited, "{} exited before it served on {port}; logs:\n{}", server.name, logs());
    assert!(ok, "{} did not come up on {port} within 30 s; logs:\n{}", server.name, logs());
}

/// Records `server` in a pod that does not exist yet with `--pod NAME
/// --duration`, while its client runs; the pod keeps running past the end
/// of the recording. Returns the profile.
fn record_running_pod(node: &Node, pods: &Pods, server: &Server, runtime: Runtime, spec: Spec) -> PathBuf {
    let out_dir = pods.work_dir().join(format!("profiles-{}", server.name));
    std::fs::create_dir_all(&out_dir).expect("mkdir");
    let child = Command::new(recorder_bin())
        .args(["record", "--runtime-endpoint"])
        .arg(node.containerd.address())
        .args(["--pod", server.name, "-n", "default", "--wait-timeout", "60s", "--duration", server.duration, "-o"])
        .arg(format!("{}/", out_dir.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("recorder starts");
    let mut recorder = Guarded::polite(child, libc::SIGINT);
    std::thread::sleep(Duration::from_millis(700));
    let pod = pods.run_pod(server.name, "default", runtime).expect("pod");
    let container = ContainerSpec { name: server.name.to_owned(), ..spec.spec };
    let id = pods.run_container(&pod, &container).expect("the server starts");
    wait_ready(server, spec.port, pods, &id);
    let (tally, text) = (server.client)(spec.port);
    assert_clean(&tally, &format!("{} client while recording: {text}", server.name));

    let (status, _) =
        wait_exit(&mut recorder.child, Duration::from_secs(90)).expect("the recording ends at --duration");
    let mut stderr = String::new();
    recorder.child.stderr.take().expect("stderr").read_to_string(&mut stderr).expect("read stderr");
    assert_eq!(status.code(), Some(0), "{stderr}");
    let (state, _) = pods.status(&id).expect("status");
    assert_eq!(state.state(), ContainerState::ContainerRunning, "the recording must not stop the pod");
    assert!(stderr.contains("its shutdown was not seen"), "{stderr}");
    assert!(stderr.contains("the shutdown set was added"), "the shutdown set must be added:\n{stderr}");
    let profile = out_dir.join(format!("default_{}_{}.json", server.name, server.name));
    let names = allowed_names(&profile);
    let missing: Vec<String> = recorder::runtime::shutdown::shutdown_set().difference(&names).cloned().collect();
    assert!(missing.is_empty(), "shutdown set names missing from the profile: {missing:?}");
    pods.remove_pod(&pod).expect("removing the recorded pod");
    profile
}

/// A fresh pod under `profile` (Localhost): the client gets no errors, and
/// StopContainer (SIGTERM, [`POD_GRACE_SECONDS`]) ends it cleanly within
/// [`STOP_DEADLINE`] with exit status 0. Returns the container's logs.
fn prove_fresh_pod(pods: &Pods, server: &Server, runtime: Runtime, profile: &Path, spec: Spec) -> String {
    let name = format!("{}-confined", server.name);
    let pod = pods.run_pod(&name, "default", runtime).expect("pod");
    let container = ContainerSpec {
        name: server.name.to_owned(),
        seccomp: Some(Seccomp::Localhost(profile.to_path_buf())),
        ..spec.spec
    };
    let id = pods.run_container(&pod, &container).expect("the server starts under its profile");
    wait_ready(server, spec.port, pods, &id);
    let (tally, text) = (server.client)(spec.port);
    assert_clean(&tally, &format!("{} client under the profile: {text}", server.name));

    let sent = Instant::now();
    pods.stop_container(&id, POD_GRACE_SECONDS).expect("StopContainer");
    let took = sent.elapsed();
    let code = pods.wait_exited(&id, Duration::from_secs(5)).expect("exited");
    let logs = pods.logs(&id).unwrap_or_default();
    eprintln!(
        "{} pod under its recorded profile ({runtime:?}): StopContainer ({POD_GRACE_SECONDS} s grace) took {:.3} s, exit {code}",
        server.name,
        took.as_secs_f64()
    );
    assert!(
        took < STOP_DEADLINE,
        "{} took {took:?} to stop (grace {POD_GRACE_SECONDS} s): its shutdown is denied under the profile; logs:\n{logs}",
        server.name
    );
    assert_eq!(code, 0, "{} did not exit cleanly; logs:\n{logs}", server.name);
    pods.remove_pod(&pod).expect("removing the pod");
    logs
}

fn start_node(server: &Server) -> Node {
    let node = Node::start(&[server.image]).expect("node");
    // The kubelet creates its parent cgroup at start; so does this "node". Other
    // test processes may share it: registering keeps them from removing it.
    recorder_tests::cri::KubepodsUse::register();
    std::fs::create_dir_all(v2_mount().join(KUBEPODS)).expect("creating the kubepods cgroup");
    node
}

fn nginx_client(port: u16) -> (Tally, String) {
    clients::wrk(port, 4)
}

const NGINX: Server =
    Server { name: "web", image: Image::Nginx, duration: "12s", ready: nginx_ready, client: nginx_client };

fn nginx_ready(port: u16) -> bool {
    images::http_get(port).is_ok_and(|p| p.starts_with("HTTP/1.1 200"))
}

fn nginx_pod(runtime: Runtime, port_base: u16) {
    if skip() {
        return;
    }
    let _serial = serial();
    let node = start_node(&NGINX);
    let pods = Pods::new(&node.containerd).expect("CRI client");
    let port = free_port(port_base);
    let spec = images::nginx_container(pods.work_dir(), port).expect("nginx spec");
    let profile = record_running_pod(&node, &pods, &NGINX, runtime, Spec { spec, port });
    let port = free_port(port_base + 10);
    let spec = images::nginx_container(pods.work_dir(), port).expect("nginx spec");
    let logs = prove_fresh_pod(&pods, &NGINX, runtime, &profile, Spec { spec, port });
    assert!(nginx::failures(&logs).is_empty(), "{logs}");
}

#[test]
fn nginx_pod_recorded_while_running_stops_under_runc() {
    nginx_pod(Runtime::Runc, 19190);
}

#[test]
fn nginx_pod_recorded_while_running_stops_under_crun() {
    nginx_pod(Runtime::Crun, 19210);
}

fn redis_client(port: u16) -> (Tally, String) {
    clients::redis_benchmark_all(port, 20_000)
}

const REDIS: Server =
    Server { name: "redis", image: Image::Redis, duration: "20s", ready: databases::redis_ready, client: redis_client };

fn redis_pod(runtime: Runtime, port_base: u16) {
    if skip() {
        return;
    }
    let _serial = serial();
    let node = start_node(&REDIS);
    let pods = Pods::new(&node.containerd).expect("CRI client");
    let recorded_data = tempfile::tempdir_in("/tmp").expect("tempdir");
    let port = free_port(port_base);
    let spec = databases::redis_container(port, recorded_data.path());
    let profile = record_running_pod(&node, &pods, &REDIS, runtime, Spec { spec, port });

    let data = tempfile::tempdir_in("/tmp").expect("tempdir");
    let port = free_port(port_base + 10);
    let spec = databases::redis_container(port, data.path());
    let logs = prove_fresh_pod(&pods, &REDIS, runtime, &profile, Spec { spec, port });
    assert!(logs.contains("DB saved on disk"), "SIGTERM must save the RDB:\n{logs}");
    assert!(data.path().join("dump.rdb").exists(), "no dump.rdb in the data directory; logs:\n{logs}");
    assert!(!logs.contains("Operation not permitted"), "{logs}");
}

#[test]
fn redis_pod_recorded_while_running_saves_and_stops_under_runc() {
    redis_pod(Runtime::Runc, 19230);
}

#[test]
fn redis_pod_recorded_while_running_saves_and_stops_under_crun() {
    redis_pod(Runtime::Crun, 19250);
}

fn pgbench_client(port: u16) -> (Tally, String) {
    clients::pgbench_init_and_run(port, 6)
}

fn postgres_ready(port: u16) -> bool {
    databases::postgres_ready(port)
}

const POSTGRES: Server =
    Server { name: "pg", image: Image::Postgres, duration: "30s", ready: postgres_ready, client: pgbench_client };

fn postgres_pod(runtime: Runtime, port_base: u16) {
    if skip() {
        return;
    }
    let _serial = serial();
    let node = start_node(&POSTGRES);
    let pods = Pods::new(&node.containerd).expect("CRI client");
    let recorded_data = PgData::init().expect("initdb");
    let port = free_port(port_base);
    let spec = databases::postgres_container(port, &recorded_data).expect("postgres spec");
    let profile = record_running_pod(&node, &pods, &POSTGRES, runtime, Spec { spec, port });

    let data = PgData::init().expect("initdb");
    let port = free_port(port_base + 10);
    let spec = databases::postgres_container(port, &data).expect("postgres spec");
    let logs = prove_fresh_pod(&pods, &POSTGRES, runtime, &profile, Spec { spec, port });
    assert!(logs.contains("received smart shutdown request"), "SIGTERM is postgres's smart shutdown:\n{logs}");
    assert!(logs.contains("database system is shut down"), "postgres did not shut down cleanly:\n{logs}");
    for bad in ["PANIC", "abnormal database system shutdown"] {
        assert!(!logs.contains(bad), "postgres's shutdown failed ({bad}):\n{logs}");
    }
    assert!(!logs.contains("Operation not permitted"), "{logs}");
}

#[test]
fn postgres_pod_recorded_while_running_shuts_down_under_runc() {
    postgres_pod(Runtime::Runc, 19270);
}

#[test]
fn postgres_pod_recorded_while_running_shuts_down_under_crun() {
    postgres_pod(Runtime::Crun, 19290);
}
