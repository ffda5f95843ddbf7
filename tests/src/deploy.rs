//! The deploy/ artifacts as tests use them: the DaemonSet manifest as data
//! (so a test runs the pod with exactly its securityContext), the image
//! `cargo xtask image` built, the shipped seccomp profile, a private bpffs,
//! and small HTTP and process helpers for the daemon.

use std::{
    ffi::CString,
    io::{Read as _, Write as _},
    net::{Ipv4Addr, SocketAddr, TcpStream},
    os::unix::ffi::OsStrExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, anyhow, bail};
use serde_json::Value;

use crate::{containers::Containerd, workspace_root};

/// The pinned kubernetes-validate (PyPI); `cargo xtask setup` installs this
/// version into its own virtualenv (xtask/src/setup.rs names it too).
pub const KUBERNETES_VALIDATE_VERSION: &str = "1.37.0";

/// The image's name, as the manifests and `cargo xtask image` give it.
pub const IMAGE_NAME: &str = "localhost/recorder";

/// deploy/ in the workspace.
pub fn deploy_dir() -> PathBuf {
    workspace_root().join("deploy")
}

/// The daemon's own seccomp profile, `deploy/recorder-seccomp.json`.
pub fn shipped_profile() -> PathBuf {
    deploy_dir().join("recorder-seccomp.json")
}

/// The kubernetes-validate executable `cargo xtask setup` installed.
pub fn kubernetes_validate() -> PathBuf {
    let home = std::env::var_os("HOME").expect("HOME is set");
    let tool = PathBuf::from(home).join(format!(
        ".cache/recorder-tools/kubernetes-validate-{KUBERNETES_VALIDATE_VERSION}/bin/kubernetes-validate"
    ));
    assert!(
        tool.exists(),
        "{} is missing: run `cargo xtask setup` (it installs kubernetes-validate {KUBERNETES_VALIDATE_VERSION} from PyPI)",
        tool.display()
    );
    tool
}

/// Every YAML document in `path`, as JSON values.
pub fn yaml_documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_saphyr::from_multiple::<Value>(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// The DaemonSet of deploy/kubernetes/base.
pub fn daemonset() -> Value {
    let path = deploy_dir().join("kubernetes/base/daemonset.yaml");
    yaml_documents(&path).into_iter().find(|d| d["kind"] == "DaemonSet").expect("daemonset.yaml holds a DaemonSet")
}

/// A container of the DaemonSet's pod template, by name.
pub fn container<'a>(daemonset: &'a Value, name: &str) -> &'a Value {
    let spec = &daemonset["spec"]["template"]["spec"];
    spec["containers"]
        .as_array()
        .into_iter()
        .chain(spec["initContainers"].as_array())
        .flatten()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("the DaemonSet has no container {name}"))
}

/// A hostPath volume of the DaemonSet: (name, host path), mounted at
/// (container path, read-only) in `container`.
#[derive(Clone, Debug)]
pub struct HostMount {
    pub volume: String,
    pub host_path: PathBuf,
    pub container_path: PathBuf,
    pub read_only: bool,
}

/// The hostPath mounts of `container`, as the DaemonSet declares them.
pub fn host_mounts(daemonset: &Value, container: &Value) -> Vec<HostMount> {
    let volumes = daemonset["spec"]["template"]["spec"]["volumes"].as_array().expect("volumes");
    container["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let name = m["name"].as_str().expect("mount name");
            let volume = volumes.iter().find(|v| v["name"] == name).unwrap_or_else(|| panic!("no volume {name}"));
            HostMount {
                volume: name.to_owned(),
                host_path: PathBuf::from(volume["hostPath"]["path"].as_str().expect("hostPath volume")),
                container_path: PathBuf::from(m["mountPath"].as_str().expect("mountPath")),
                read_only: m["readOnly"].as_bool().unwrap_or(false),
            }
        })
        .collect()
}

/// `container`'s args as strings.
pub fn args(container: &Value) -> Vec<String> {
    container["args"].as_array().expect("args").iter().map(|a| a.as_str().expect("string arg").to_owned()).collect()
}

/// The image archive `cargo xtask image` wrote (`RECORDER_IMAGE`, else
/// target/image/recorder.oci.tar).
pub fn image_archive() -> PathBuf {
    let archive = std::env::var_os("RECORDER_IMAGE")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/image/recorder.oci.tar"));
    assert!(archive.exists(), "{} is missing: run `cargo xtask image` (cargo xtask test does)", archive.display());
    archive
}

/// The image's reference, `localhost/recorder:<version>`, from the tag the
/// kustomization gives it.
pub fn image_reference() -> String {
    let path = deploy_dir().join("kubernetes/base/kustomization.yaml");
    let doc = yaml_documents(&path).remove(0);
    let tag = doc["images"]
        .as_array()
        .and_then(|images| images.iter().find(|i| i["name"] == IMAGE_NAME))
        .and_then(|i| i["newTag"].as_str())
        .expect("the kustomization tags localhost/recorder");
    format!("{IMAGE_NAME}:{tag}")
}

/// Imports the recorder image into `c`'s `k8s.io` namespace.
pub fn import_recorder_image(c: &Containerd) -> anyhow::Result<String> {
    let archive = image_archive();
    let out = c
        .ctr_in("k8s.io")
        .args(["images", "import", "--base-name", IMAGE_NAME])
        .arg(&archive)
        .stdin(Stdio::null())
        .output()
        .context("running ctr images import")?;
    if !out.status.success() {
        bail!("importing {}: {}", archive.display(), String::from_utf8_lossy(&out.stderr));
    }
    let reference = image_reference();
    let listed = c.ctr_in("k8s.io").args(["images", "ls", "-q"]).output().context("ctr images ls")?;
    if !String::from_utf8_lossy(&listed.stdout).lines().any(|l| l.trim() == reference) {
        bail!(
            "the archive holds no {reference} (ctr images ls: {}); rebuild it with `cargo xtask image`",
            String::from_utf8_lossy(&listed.stdout)
        );
    }
    Ok(reference)
}

/// A bpf filesystem mounted on a temporary directory for one test, so pins
/// never touch the host's /sys/fs/bpf. Unmounted (which drops every pin
/// left, and so detaches pinned programs) and removed when dropped.
pub struct Bpffs {
    dir: tempfile::TempDir,
}

impl Bpffs {
    pub fn mount() -> anyhow::Result<Bpffs> {
        let dir = tempfile::Builder::new().prefix("bpffs-").tempdir_in("/tmp").context("creating a temp dir")?;
        let target = CString::new(dir.path().as_os_str().as_bytes())?;
        // SAFETY: mount(2) with NUL-terminated strings that outlive the call
        // and no data.
        let rc = unsafe { libc::mount(c"bpf".as_ptr(), target.as_ptr(), c"bpf".as_ptr(), 0, std::ptr::null()) };
        if rc != 0 {
            bail!("mounting a bpffs on {}: {}", dir.path().display(), std::io::Error::last_os_error());
        }
        Ok(Bpffs { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Bpffs {
    fn drop(&mut self) {
        if let Ok(target) = CString::new(self.dir.path().as_os_str().as_bytes()) {
            // SAFETY: umount2(2) on our own mount point, a valid C string.
            unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

pub use crate::daemon::free_port;

/// One HTTP/1.0 request to 127.0.0.1:`port`: (status, headers, body).
pub fn http(port: u16, path: &str, headers: &[(&str, &str)]) -> anyhow::Result<(u16, String, String)> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut request = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").ok_or_else(|| anyhow!("no header end in {response:?}"))?;
    let status =
        head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| anyhow!("no status in {head:?}"))?;
    Ok((status, head.to_owned(), body.to_owned()))
}

/// Polls `path` until it answers `status`; fails after `timeout`, or at
/// once when `process` (the daemon, or what wraps it) exits.
pub fn wait_for_status(
    port: u16,
    path: &str,
    status: u16,
    timeout: Duration,
    mut process: Option<&mut Child>,
) -> anyhow::Result<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match http(port, path, &[]) {
            Ok((s, _, body)) if s == status => return Ok(body),
            Ok((s, _, body)) => format!("{s} {body}"),
            Err(e) => e.to_string(),
        };
        if let Some(child) = process.as_deref_mut()
            && let Some(exit) = child.try_wait()?
        {
            bail!("the daemon exited with {exit} before {path} answered {status} (last: {last})");
        }
        if Instant::now() > deadline {
            bail!("{path} on port {port} did not answer {status} within {timeout:?}; last: {last}");
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Sends `signal` to `child` and waits for it; returns its stderr so far is
/// the caller's business (pipe it). Kills it after `grace`.
pub fn stop(child: &mut Child, signal: i32, grace: Duration) -> std::process::ExitStatus {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) on a child we started and have not reaped.
        unsafe { libc::kill(pid, signal) };
    }
    let deadline = Instant::now() + grace;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return child.wait().expect("wait after kill");
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// A child process stopped like [`stop`] (SIGINT, SIGKILL after 20 s) when
/// dropped, unless it already exited: a failing test leaves nothing running.
pub struct Guarded(pub Child);

impl Drop for Guarded {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            stop(&mut self.0, libc::SIGINT, Duration::from_secs(20));
        }
    }
}

/// The host's cgroup v2 mount; the kubelet's parent cgroup (`kubepods`, as
/// the pod harness places pods) is created under it when missing, after
/// registering as one of its users, so the daemon finds it at start.
pub fn ensure_kubepods() -> anyhow::Result<PathBuf> {
    crate::cri::KubepodsUse::register();
    let v2 = crate::containers::cgroup2_mount()?.ok_or_else(|| anyhow!("no cgroup v2 hierarchy is mounted"))?;
    let kubepods = v2.join(crate::cri::KUBEPODS);
    match std::fs::create_dir(&kubepods) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("creating {}", kubepods.display())),
    }
    Ok(v2)
}

/// Spawns `cmd` with stderr piped to a file in `dir` (read it with
/// [`read_log`]) and stdout discarded.
pub fn spawn_logged(cmd: &mut Command, log: &Path) -> anyhow::Result<Child> {
    let file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(file).spawn().with_context(|| format!("spawning {cmd:?}"))
}

/// The text of a log file, empty when there is none.
pub fn read_log(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}
