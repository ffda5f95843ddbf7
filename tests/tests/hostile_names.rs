//! Hostile names (issue 14): namespace, pod and container names, labels and
//! annotations come from tenants in a multi-tenant cluster. Each value below
//! goes through the real code paths that turn names into file names, URLs
//! and documents: the naming functions, `record --pod` (`-o DIR` and
//! `--install`), `collect` (`-o DIR` and `--install`, against a daemon that
//! serves hostile names), the daemon's API, and SPO annotations. Nothing may
//! be written outside the intended directory, nothing the user did not ask
//! for may be replaced, and nothing may panic.
//!
//! The naming rules themselves are unit-tested in recorder/src/k8s_name.rs,
//! target/pod/names.rs and output/beneath.rs (symlinks inside a root); this
//! suite drives many more values, end to end.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::{Arc, Mutex},
};

use recorder::{
    daemon::identity::workload_of,
    k8s_name::{Kind, validate},
    output::beneath,
    profile::{
        self, Action, Profile,
        write::{self, Format, WriteOptions},
    },
    syscalls::Family,
    target::pod::names::ContainerNames,
};
use recorder_tests::{assert_exit, recorder_bin};

/// Exit code for a name Kubernetes would refuse (docs/exit-codes).
const BAD_NAME: i32 = 16;

/// Values no Kubernetes name may take, whatever its kind: each is tried as
/// namespace, pod (workload) and container name.
fn hostile() -> Vec<String> {
    let mut v: Vec<String> = [
        "",
        ".",
        "..",
        "../..",
        "../../etc/passwd",
        "/",
        "/etc/cron.d/x",
        "a/b",
        "a\0b",
        "\0",
        "a\nb",
        "a\r\nHost: evil",
        "a\tb",
        " a",
        "a ",
        "-o",
        "--install",
        "-",
        "a_b",
        "UPPER",
        "n\u{430}me",       // Cyrillic a
        "\u{ff41}\u{ff42}", // fullwidth ab
        "e\u{301}",         // combining accent
        "\u{202e}nosj.x",   // right-to-left override
        "\u{200b}a",        // zero-width space
        "\u{feff}a",        // byte order mark
        "a;rm -rf /",
        "$(reboot)",
        "`id`",
        "a|b",
        "a&b",
        "*",
        "a?format=spo",
        "a#b",
        "a'b",
        "a\"b",
        "~root",
        "%2e%2e",
        "..%2f..",
        "a..b",
        ".a",
        "a.",
        "a:b",
        "a\\b",
        "a=b",
        "{{.}}",
        "${HOME}",
        "a\u{7f}",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    v.push("a".repeat(254));
    v.push(format!("{}.{}", "a".repeat(200), "b".repeat(64)));
    v.push("a/".repeat(64));
    v
}

/// Every file and directory below `dir`.
fn walk(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        out.insert(e.path());
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(walk(&e.path()));
        }
    }
    out
}

fn assert_no_panic(out: &Output, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.code().is_some_and(|c| c != 101) && !stderr.contains("panicked"), "{what}: panicked:\n{stderr}");
}

/// One line on stderr, naming the rule; exit 16.
fn assert_refused(out: &Output, what: &str) {
    assert_no_panic(out, what);
    assert_exit(out, BAD_NAME, what);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{what}: one line expected:\n{stderr}");
    assert!(stderr.contains("not a valid Kubernetes name"), "{what}: {stderr}");
}

/// A name slot (namespace, pod or container) filled with `bad`, the others valid.
fn slots(bad: &str) -> [(&'static str, [&str; 3]); 3] {
    [("namespace", [bad, "web", "app"]), ("pod", ["default", bad, "app"]), ("container", ["default", "web", bad])]
}

/// A seccomp root that is a symlink (`seccomp` -> `real-root`) beside a
/// directory holding a file nothing may touch (`outside/victim.json`).
struct SymlinkedRoot {
    top: tempfile::TempDir,
    real: PathBuf,
    outside: PathBuf,
    victim: PathBuf,
    root: PathBuf,
}

fn symlinked_root() -> SymlinkedRoot {
    let top = tempfile::tempdir().expect("tmp");
    let real = top.path().join("real-root");
    let outside = top.path().join("outside");
    std::fs::create_dir(&real).expect("mkdir");
    std::fs::create_dir(&outside).expect("mkdir");
    let victim = outside.join("victim.json");
    std::fs::write(&victim, "keep").expect("victim");
    let root = top.path().join("seccomp");
    std::os::unix::fs::symlink(&real, &root).expect("symlink root");
    SymlinkedRoot { top, real, outside, victim, root }
}

/// An empty seccomp root and output directory, for runs that must write nothing.
fn empty_destinations() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let top = tempfile::tempdir().expect("tmp");
    let root = top.path().join("seccomp");
    let out_dir = top.path().join("out");
    std::fs::create_dir(&root).expect("mkdir");
    std::fs::create_dir(&out_dir).expect("mkdir");
    (top, root, out_dir)
}

#[test]
fn suite_has_enough_hostile_values() {
    let values = hostile();
    assert!(values.len() >= 30, "{} hostile values", values.len());
    assert_eq!(values.iter().collect::<BTreeSet<_>>().len(), values.len(), "duplicates in the suite");
}

#[test]
fn every_hostile_name_is_refused_for_every_kind_and_makes_no_path() {
    for bad in hostile() {
        for kind in [Kind::Namespace, Kind::Pod, Kind::Container, Kind::Object] {
            assert!(validate(kind, &bad).is_err(), "{kind:?} {bad:?} accepted");
        }
        for (slot, [namespace, pod, container]) in slots(&bad) {
            let names = ContainerNames { namespace, pod, container };
            assert!(names.file_name().is_err(), "{slot} {bad:?}: file name made");
            assert!(names.install_path().is_err(), "{slot} {bad:?}: install path made");
            assert!(names.snippet().is_err(), "{slot} {bad:?}: snippet made");
        }
    }
    // Too long for a namespace or container (a label), fine for a pod.
    let long_label = "a".repeat(64);
    assert!(validate(Kind::Namespace, &long_label).is_err() && validate(Kind::Container, &long_label).is_err());
    assert!(validate(Kind::Pod, &long_label).is_ok());
}

/// Labels name the workload the daemon folds pods into (and the file
/// `collect` writes): a hostile label must never make a usable name.
#[test]
fn hostile_labels_never_name_a_workload() {
    for bad in hostile() {
        for key in ["batch.kubernetes.io/job-name", "job-name"] {
            let labels = BTreeMap::from([(key.to_owned(), bad.clone())]);
            let (workload, _) = workload_of("web-1", &labels);
            if workload != "web-1" {
                assert!(validate(Kind::Object, &workload).is_err(), "label {key}={bad:?} named workload {workload:?}");
            }
        }
        // A hostile pod-template-hash or pod name cannot smuggle one in either.
        let labels = BTreeMap::from([("pod-template-hash".to_owned(), bad.clone())]);
        for pod in [format!("web-{bad}-x"), format!("{bad}-abc-x"), bad.clone()] {
            let (workload, _) = workload_of(&pod, &labels);
            if validate(Kind::Object, &workload).is_ok() && workload != pod {
                assert!(pod.starts_with(&format!("{workload}-")), "pod {pod:?} named workload {workload:?}");
            }
        }
    }
}

/// Annotations (an SPO resource's, and through it the tenant's) may hold
/// anything: written as YAML and read back they must stay the same strings,
/// never turn into keys or documents of their own.
#[test]
fn hostile_annotations_round_trip_through_spo_yaml() {
    let profile = Profile::allow_list(Family::host(), ["read", "write"]);
    let mut annotations: BTreeMap<String, String> =
        hostile().into_iter().enumerate().map(|(i, v)| (format!("example.com/hostile-{i:02}"), v)).collect();
    annotations.insert("example.com/yaml".to_owned(), "x\n---\nkind: Secret\nspec: {a: 1}\n# ".to_owned());
    let opts = WriteOptions { name: Some("web".to_owned()), annotations: annotations.clone() };
    let text = write::write(&profile, Format::Spo, &opts).expect("write SPO").text;
    let loaded = profile::parse_str(&text, "hostile.yaml").unwrap_or_else(|e| panic!("read back: {e}\n{text}"));
    assert_eq!(loaded.name.as_deref(), Some("web"));
    for (key, value) in &annotations {
        assert_eq!(loaded.annotations.get(key), Some(value), "annotation {key} changed in:\n{text}");
    }
    assert_eq!(loaded.profile.default_action, Action::Errno);
    assert_eq!(loaded.profile.allowed_names(), profile.allowed_names());
}

/// `beneath::write`, what `--install` uses, with every hostile value as
/// every component of `recorder/<namespace>/<pod>/<container>.json`, under a
/// seccomp root that is itself a symlink: whatever is written lands inside
/// the root's target, and nothing appears beside it.
#[test]
fn install_paths_from_hostile_names_stay_beneath_a_symlinked_root() {
    let SymlinkedRoot { top, real, outside, victim, root } = symlinked_root();
    for bad in hostile() {
        for (slot, [namespace, pod, container]) in slots(&bad) {
            let rel = PathBuf::from("recorder").join(namespace).join(pod).join(format!("{container}.json"));
            if let Ok(written) = beneath::write(&root, &rel, b"{}") {
                let canonical = written.canonicalize().expect("the written file exists");
                assert!(canonical.starts_with(&real), "{slot} {bad:?} wrote {}", canonical.display());
            }
        }
    }
    let beside: BTreeSet<PathBuf> = walk(top.path()).into_iter().filter(|p| !p.starts_with(&real)).collect();
    assert_eq!(beside, BTreeSet::from([root, outside, victim.clone()]), "files appeared outside the seccomp root");
    assert_eq!(std::fs::read_to_string(&victim).expect("victim"), "keep");
}

/// `record --pod` checks every name before it connects to anything, creates
/// anything or loads BPF: the CRI endpoint here does not even exist.
#[test]
fn record_pod_refuses_hostile_names_and_writes_nothing() {
    let (top, root, out_dir) = empty_destinations();
    let endpoint = top.path().join("no-cri.sock");
    // argv cannot hold a NUL byte; every other value is passed as given.
    for bad in hostile().into_iter().filter(|b| !b.contains('\0')) {
        for (flag, value) in [("--pod", bad.as_str()), ("--namespace", bad.as_str()), ("--container", bad.as_str())] {
            let pod_arg = if flag == "--pod" { format!("--pod={value}") } else { "--pod=web".to_owned() };
            let mut args = vec!["record".to_owned(), "--runtime-endpoint".to_owned(), endpoint.display().to_string()];
            args.push(pod_arg);
            if flag != "--pod" {
                args.push(format!("{flag}={value}"));
            }
            for dest in [
                vec!["--install".to_owned(), "--seccomp-root".to_owned(), root.display().to_string()],
                vec!["-o".to_owned(), format!("{}/", out_dir.display())],
            ] {
                let out = Command::new(recorder_bin()).args(&args).args(&dest).output().expect("run recorder");
                assert_refused(&out, &format!("record {flag} {bad:?} {dest:?}"));
            }
        }
    }
    assert_eq!(walk(top.path()), BTreeSet::from([root, out_dir]), "record --pod wrote something");
}

/// A fake daemon: answers `/v1/workloads` with `list`, any profile URL with
/// a small OCI profile, and records every path it was asked for.
struct FakeDaemon {
    url: String,
    list: Arc<Mutex<String>>,
    asked: Arc<Mutex<Vec<String>>>,
}

const PROFILE: &str = r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read", "exit_group"], "action": "SCMP_ACT_ALLOW"}]}"#;

impl FakeDaemon {
    fn start() -> FakeDaemon {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let list = Arc::new(Mutex::new("[]".to_owned()));
        let asked = Arc::new(Mutex::new(Vec::new()));
        let (l, a) = (list.clone(), asked.clone());
        // Serves until the test binary exits; one request per connection.
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = serve_one(stream, &l, &a);
            }
        });
        FakeDaemon { url, list, asked }
    }

    fn serve(&self, workloads: &serde_json::Value) {
        *self.list.lock().expect("lock") = workloads.to_string();
        self.asked.lock().expect("lock").clear();
    }

    fn asked(&self) -> Vec<String> {
        self.asked.lock().expect("lock").clone()
    }
}

fn serve_one(stream: TcpStream, list: &Mutex<String>, asked: &Mutex<Vec<String>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or_default().to_owned();
    asked.lock().expect("lock").push(path.clone());
    let body = if path == "/v1/workloads" { list.lock().expect("lock").clone() } else { PROFILE.to_owned() };
    let mut stream = stream;
    write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())?;
    stream.flush()
}

fn workload(namespace: &str, name: &str, container: &str) -> serde_json::Value {
    serde_json::json!([{
        "namespace": namespace, "workload": name, "container": container,
        "generation": "default/web/app@sha256:1", "seconds_since_new_syscall": 5
    }])
}

fn collect(daemon: &FakeDaemon, dest: &[String]) -> Output {
    Command::new(recorder_bin()).arg("collect").arg(&daemon.url).args(dest).output().expect("run recorder collect")
}

/// `collect` gets names from daemons: a hostile one is refused before it
/// goes into a URL (no profile is even asked for) or a file name.
#[test]
fn collect_refuses_hostile_names_from_a_daemon() {
    let daemon = FakeDaemon::start();
    let (top, root, out_dir) = empty_destinations();
    for bad in hostile() {
        for (slot, [namespace, pod, container]) in slots(&bad) {
            for dest in [
                vec!["-o".to_owned(), out_dir.display().to_string()],
                vec!["--install".to_owned(), "--seccomp-root".to_owned(), root.display().to_string()],
            ] {
                daemon.serve(&workload(namespace, pod, container));
                let out = collect(&daemon, &dest);
                assert_refused(&out, &format!("collect, {slot} {bad:?}, {dest:?}"));
                assert_eq!(daemon.asked(), ["/v1/workloads"], "{slot} {bad:?}: a profile URL was built from it");
            }
        }
    }
    assert_eq!(walk(top.path()), BTreeSet::from([root, out_dir]), "collect wrote something");
}

/// `collect --install` with a symlinked seccomp root writes into its target;
/// a symlink pre-created where the profile goes, or in place of one of the
/// directories, is refused and what it points at stays untouched.
#[test]
fn collect_install_refuses_precreated_symlinks() {
    let daemon = FakeDaemon::start();
    daemon.serve(&workload("default", "web", "app"));
    let SymlinkedRoot { top: _top, real, outside, victim, root } = symlinked_root();
    let install = ["--install".to_owned(), "--seccomp-root".to_owned(), root.display().to_string()];

    let out = collect(&daemon, &install);
    assert_exit(&out, 0, "collect --install into a symlinked root");
    let profile = real.join("recorder/default/web/app.json");
    assert!(profile::read_file(&profile).is_ok(), "no valid profile at {}", profile.display());

    // A symlink where the profile will be written.
    std::fs::remove_file(&profile).expect("rm");
    std::os::unix::fs::symlink(&victim, &profile).expect("symlink target");
    let out = collect(&daemon, &install);
    assert_no_panic(&out, "symlink at the target");
    assert_ne!(out.status.code(), Some(0), "collect replaced or followed a symlink at the target");
    assert!(std::fs::symlink_metadata(&profile).expect("still there").file_type().is_symlink());

    // A symlink in place of a directory on the way.
    std::fs::remove_dir_all(real.join("recorder/default")).expect("rm");
    std::os::unix::fs::symlink(&outside, real.join("recorder/default")).expect("symlink dir");
    let out = collect(&daemon, &install);
    assert_no_panic(&out, "symlinked directory");
    assert_ne!(out.status.code(), Some(0), "collect wrote through a symlinked directory");

    assert_eq!(std::fs::read_to_string(&victim).expect("victim"), "keep");
    assert_eq!(walk(&outside), BTreeSet::from([victim]), "something was written outside the root");
}

/// The daemon's API with hostile names in its paths (percent-encoded, as a
/// client must send them): 400 or 404 (414/431 for a path over the header
/// limit), never a panic or a 5xx, and the API still answers afterwards.
#[test]
fn daemon_api_refuses_hostile_path_names() {
    use recorder::daemon::{api, state::DaemonState};

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let addr = listener.local_addr().expect("addr");
    listener.set_nonblocking(true).expect("nonblocking");
    let router =
        api::router(api::Api { state: Arc::new(Mutex::new(DaemonState::default())), stable_after: 60, by_exe: false });
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            api::serve(listener, router).await;
        });
    });
    let get = |path: &str| -> u16 {
        let mut stream = TcpStream::connect(addr).expect("connect");
        write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").expect("send");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
    };
    let encode = |s: &str| s.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
    for bad in hostile() {
        for (slot, [namespace, pod, container]) in slots(&bad) {
            let names = [namespace, pod, container].map(encode).join("/");
            for path in
                [format!("/v1/profiles/{names}"), format!("/v1/profiles/{names}/by-exe"), format!("/v1/pods/{names}")]
            {
                let status = get(&path);
                assert!([400, 404, 414, 431].contains(&status), "{slot} {bad:?}: {path} answered {status}");
            }
        }
    }
    assert_eq!(get("/healthz"), 200, "the API stopped answering");
}
