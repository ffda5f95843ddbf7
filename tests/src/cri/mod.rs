//! Kubernetes-style pods on a private containerd, through its CRI v1 socket.
//!
//! [`Pods`] does what the kubelet would: it runs pod sandboxes with the kubelet's labels,
//! host networking and a cgroup parent under `/kubepods`, creates and starts containers in
//! them with a chosen seccomp setting, waits for them, reads their logs, and removes
//! everything it created when dropped. Images come from [`images`]: nothing is pulled.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use recorder_tests::containers::{Containerd, Runtime};
//! use recorder_tests::cri::{Pods, images};
//! let tmp = tempfile::tempdir_in("/tmp")?;
//! let containerd = Containerd::start(tmp.path())?;
//! images::import_all(&containerd, tmp.path())?;
//! let pods = Pods::new(&containerd)?;
//! let pod = pods.run_pod("web", "default", Runtime::Runc)?;
//! let nginx = pods.run_container(&pod, &images::nginx_container(pods.work_dir(), 18090)?)?;
//! images::wait_for_http(18090, std::time::Duration::from_secs(10))?;
//! # let _ = nginx; Ok(()) }
//! ```

pub mod databases;
pub mod images;
mod placement;

use std::{
    cell::RefCell,
    collections::HashMap,
    fs,
    path::{Path, PathBuf},
    sync::atomic::{AtomicU32, Ordering},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, anyhow, bail};
pub use placement::{CgroupWatch, ProcessSeen};
use recorder::cri::{
    CONTAINER_NAME_LABEL, Cri, POD_NAME_LABEL, POD_NAMESPACE_LABEL, POD_UID_LABEL,
    api::{
        self, ContainerConfig, ContainerMetadata, ContainerStatus, ContainerStatusRequest, CreateContainerRequest,
        ImageSpec, LinuxContainerConfig, LinuxContainerSecurityContext, LinuxPodSandboxConfig,
        LinuxSandboxSecurityContext, Mount, NamespaceMode, NamespaceOption, PodSandboxConfig, PodSandboxMetadata,
        RemoveContainerRequest, RemovePodSandboxRequest, RunPodSandboxRequest, SecurityProfile, StartContainerRequest,
        StopContainerRequest, StopPodSandboxRequest, security_profile::ProfileType,
    },
};

use crate::containers::{Containerd, Runtime, cgroup2_mount, fix_crun_hybrid_hugetlb};

/// Every pod's `linux.cgroup_parent` is `/kubepods/pod-<uid>`, as the kubelet's cgroupfs
/// driver would make it (its real layout adds QoS levels: `/kubepods/besteffort/pod<uid>`).
pub const KUBEPODS: &str = "kubepods";

/// How long a container may take to reach the state a test waits for.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(20);

/// Set to `1` to make container tests return early instead of failing where they cannot run.
pub const SKIP_VAR: &str = "RECORDER_SKIP_CONTAINER_TESTS";

/// True when [`SKIP_VAR`] asks to skip container tests. Otherwise asserts that they can run
/// (root), so that a test never passes without running.
pub fn skip_container_tests() -> bool {
    if std::env::var(SKIP_VAR).as_deref() == Ok("1") {
        eprintln!("{SKIP_VAR}=1: skipping a container test");
        return true;
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(euid, 0, "container tests need root (containerd, cgroups, mounts); set {SKIP_VAR}=1 to skip them");
    false
}

/// A private containerd with images imported, standing in for a Kubernetes node. Fields
/// drop in order: containerd (kills everything) before its directory goes.
pub struct Node {
    pub containerd: Containerd,
    pub dir: tempfile::TempDir,
}

impl Node {
    /// Starts a containerd under a new directory in /tmp (short socket paths) and imports
    /// the pause image plus `images`.
    pub fn start(images: &[images::Image]) -> anyhow::Result<Node> {
        Node::start_with_handlers(images, &[])
    }

    /// [`Node::start`] with extra CRI runtime handlers: (name, OCI runtime
    /// binary) pairs, see [`Containerd::start_with_handlers`].
    pub fn start_with_handlers(images: &[images::Image], handlers: &[(&str, &Path)]) -> anyhow::Result<Node> {
        let dir = tempfile::Builder::new()
            .prefix("cri-")
            .tempdir_in("/tmp")
            .context("creating a temporary directory in /tmp")?;
        let containerd = Containerd::start_with_handlers(dir.path(), handlers)?;
        images::import(&containerd, images, dir.path())?;
        Ok(Node { containerd, dir })
    }
}

/// Seccomp setting of a container (`LinuxContainerSecurityContext.seccomp`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seccomp {
    Unconfined,
    /// containerd's default profile.
    RuntimeDefault,
    /// An OCI `LinuxSeccomp` JSON file on the host; containerd 1.6 wants an absolute path.
    Localhost(PathBuf),
}

/// What to run in a container.
#[derive(Clone, Debug, Default)]
pub struct ContainerSpec {
    /// Name in the pod (label `io.kubernetes.container.name`).
    pub name: String,
    /// Image reference, already imported into `k8s.io`.
    pub image: String,
    /// Overrides the image's entrypoint when not empty.
    pub command: Vec<String>,
    pub args: Vec<String>,
    /// `None` leaves the field unset (containerd 1.6 then runs the container unconfined).
    pub seccomp: Option<Seccomp>,
    /// Read-only bind mounts: (host path, container path).
    pub mounts: Vec<(PathBuf, PathBuf)>,
    /// Writable bind mounts (a database's data directory): (host path,
    /// container path).
    pub writable_mounts: Vec<(PathBuf, PathBuf)>,
    /// `runAsUser` and `runAsGroup` (postgres refuses to run as root).
    pub run_as: Option<(i64, i64)>,
    /// `no_new_privs`. The kubelet sets it only for `allowPrivilegeEscalation: false`; the
    /// runtimes install the seccomp filter at a different point depending on it.
    pub no_new_privs: bool,
    /// Restart attempt (`metadata.attempt`); the kubelet counts restarts with it.
    pub attempt: u32,
    /// Environment variables.
    pub env: Vec<(String, String)>,
    /// The rest of a Kubernetes `securityContext`, as the kubelet passes it.
    pub security: Option<Security>,
}

/// What the kubelet makes of a container's `securityContext` besides
/// seccomp, `allowPrivilegeEscalation` and `runAsUser` (see [`ContainerSpec`]).
#[derive(Clone, Debug, Default)]
pub struct Security {
    pub privileged: bool,
    pub read_only_root_filesystem: bool,
    /// `capabilities.add` and `.drop` as written in the manifest (`BPF`,
    /// `ALL`): containerd prefixes `CAP_`.
    pub add_capabilities: Vec<String>,
    pub drop_capabilities: Vec<String>,
}

/// The kubelet's masked and read-only /proc and /sys paths for a container
/// that is not privileged (`DefaultProcMountType`).
const MASKED_PATHS: [&str; 10] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];
const READONLY_PATHS: [&str; 5] = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// A pod sandbox this harness started.
#[derive(Clone, Debug)]
pub struct PodRef {
    /// Sandbox id.
    pub id: String,
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub runtime: Runtime,
    /// `linux.cgroup_parent` given to the runtime, e.g. `/kubepods/pod-<uid>`.
    pub cgroup_parent: String,
    /// Host directory the CRI writes this pod's container logs to.
    pub log_dir: PathBuf,
    /// Labels beyond the kubelet's own three (e.g. `pod-template-hash`, which the
    /// ReplicaSet controller puts on a Deployment's pods).
    pub labels: Vec<(String, String)>,
}

/// Runs pods on one private containerd. Dropping it stops and removes every pod it ran and
/// the pod cgroups the runtimes left behind.
pub struct Pods<'c> {
    containerd: &'c Containerd,
    /// The cgroup every pod's parent goes under (relative to the root): [`KUBEPODS`] unless
    /// [`Pods::new_under`] chose another.
    parent: String,
    rt: tokio::runtime::Runtime,
    cri: Cri,
    work: tempfile::TempDir,
    pods: RefCell<Vec<PodRef>>,
}

impl<'c> Pods<'c> {
    /// Connects to `containerd`'s CRI socket with [`recorder::cri::connect`].
    pub fn new(containerd: &'c Containerd) -> anyhow::Result<Pods<'c>> {
        Pods::new_under(containerd, KUBEPODS)
    }

    /// Like [`Pods::new`], with every pod's cgroup parent under `parent` (a path relative to
    /// the cgroup root, e.g. `recorder-daemon-1234/kubepods`) instead of the shared
    /// [`KUBEPODS`]: a test whose recorder watches the whole parent then sees only its own
    /// pods. The caller creates and removes `parent`.
    pub fn new_under(containerd: &'c Containerd, parent: &str) -> anyhow::Result<Pods<'c>> {
        let rt =
            tokio::runtime::Builder::new_current_thread().enable_all().build().context("building a tokio runtime")?;
        let cri = rt
            .block_on(recorder::cri::connect(Some(containerd.address())))
            .with_context(|| format!("connecting to the CRI plugin; containerd log:\n{}", containerd.log_tail()))?;
        let work = tempfile::Builder::new()
            .prefix("pods-")
            .tempdir_in(containerd.dir())
            .context("creating the pods' work directory")?;
        Ok(Pods {
            containerd,
            parent: parent.trim_matches('/').to_owned(),
            rt,
            cri,
            work,
            pods: RefCell::new(Vec::new()),
        })
    }

    /// Connects to the CRI again, after [`Containerd::restart`]: a client's connection does
    /// not outlive the daemon it was made to.
    /// containerd answers `ctr version` before its CRI plugin has recovered its state ("server
    /// is not initialized yet"), so this retries for up to [`WAIT_TIMEOUT`].
    pub fn reconnect(&mut self) -> anyhow::Result<()> {
        let deadline = std::time::Instant::now() + WAIT_TIMEOUT;
        loop {
            match self.rt.block_on(recorder::cri::connect(Some(self.containerd.address()))) {
                Ok(cri) => {
                    self.cri = cri;
                    return Ok(());
                }
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("reconnecting to the CRI plugin; containerd log:\n{}", self.containerd.log_tail())
                    });
                }
            }
        }
    }

    /// The CRI client (the recorder's own), for tests of it.
    pub fn cri(&self) -> &Cri {
        &self.cri
    }

    /// Runs a future (e.g. a [`Cri`] call) on this harness's runtime.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.rt.block_on(future)
    }

    /// Scratch directory for configs and profiles, removed with the harness.
    pub fn work_dir(&self) -> &Path {
        self.work.path()
    }

    /// Runs a sandbox named `name` in `namespace` as the kubelet would for a
    /// `hostNetwork: true` pod, under the runtime handler of `runtime`.
    pub fn run_pod(&self, name: &str, namespace: &str, runtime: Runtime) -> anyhow::Result<PodRef> {
        self.run_pod_full(name, namespace, runtime, runtime.handler(), &[])
    }

    /// [`Pods::run_pod`] with `labels` on the sandbox besides the kubelet's own.
    pub fn run_pod_labelled(
        &self,
        name: &str,
        namespace: &str,
        runtime: Runtime,
        labels: &[(&str, &str)],
    ) -> anyhow::Result<PodRef> {
        self.run_pod_full(name, namespace, runtime, runtime.handler(), labels)
    }

    /// [`Pods::run_pod`] under another runtime handler (one configured with
    /// [`Node::start_with_handlers`]) that wraps `runtime`.
    pub fn run_pod_with_handler(
        &self,
        name: &str,
        namespace: &str,
        runtime: Runtime,
        handler: &str,
    ) -> anyhow::Result<PodRef> {
        self.run_pod_full(name, namespace, runtime, handler, &[])
    }

    fn run_pod_full(
        &self,
        name: &str,
        namespace: &str,
        runtime: Runtime,
        handler: &str,
        labels: &[(&str, &str)],
    ) -> anyhow::Result<PodRef> {
        if runtime == Runtime::Crun {
            fix_crun_hybrid_hugetlb().context("moving cgroup v2 controllers off for crun")?;
        }
        if self.parent == KUBEPODS {
            KubepodsUse::register();
        }
        let uid = unique_uid();
        let cgroup_parent = format!("/{}/pod-{uid}", self.parent);
        let log_dir = self.work.path().join("logs").join(format!("{namespace}_{name}_{uid}"));
        fs::create_dir_all(&log_dir).with_context(|| format!("creating {}", log_dir.display()))?;
        let pod = PodRef {
            id: String::new(),
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            uid,
            runtime,
            cgroup_parent,
            log_dir,
            labels: labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        };
        let request = RunPodSandboxRequest { config: Some(sandbox_config(&pod)), runtime_handler: handler.to_owned() };
        let id = self
            .rt
            .block_on(self.cri.runtime_client().run_pod_sandbox(request))
            .map_err(|s| self.failed("RunPodSandbox", &s))?
            .into_inner()
            .pod_sandbox_id;
        let pod = PodRef { id, ..pod };
        self.pods.borrow_mut().push(pod.clone());
        Ok(pod)
    }

    /// Creates (does not start) a container in `pod`; returns its id.
    pub fn create_container(&self, pod: &PodRef, spec: &ContainerSpec) -> anyhow::Result<String> {
        let labels = HashMap::from([
            (CONTAINER_NAME_LABEL.to_owned(), spec.name.clone()),
            (POD_NAME_LABEL.to_owned(), pod.name.clone()),
            (POD_NAMESPACE_LABEL.to_owned(), pod.namespace.clone()),
            (POD_UID_LABEL.to_owned(), pod.uid.clone()),
        ]);
        let seccomp = spec.seccomp.as_ref().map(|s| match s {
            Seccomp::Unconfined => profile(ProfileType::Unconfined, ""),
            Seccomp::RuntimeDefault => profile(ProfileType::RuntimeDefault, ""),
            Seccomp::Localhost(path) => profile(ProfileType::Localhost, &path.display().to_string()),
        });
        let mounts = (spec.mounts.iter().map(|m| (m, true)))
            .chain(spec.writable_mounts.iter().map(|m| (m, false)))
            .map(|((host, container), readonly)| Mount {
                host_path: host.display().to_string(),
                container_path: container.display().to_string(),
                readonly,
                ..Default::default()
            })
            .collect();
        let security = spec.security.clone().unwrap_or_default();
        let (masked_paths, readonly_paths) = match &spec.security {
            Some(s) if !s.privileged => {
                (MASKED_PATHS.map(str::to_owned).to_vec(), READONLY_PATHS.map(str::to_owned).to_vec())
            }
            _ => (Vec::new(), Vec::new()),
        };
        let config = ContainerConfig {
            metadata: Some(ContainerMetadata { name: spec.name.clone(), attempt: spec.attempt }),
            image: Some(ImageSpec { image: spec.image.clone(), ..Default::default() }),
            command: spec.command.clone(),
            args: spec.args.clone(),
            labels,
            mounts,
            envs: spec
                .env
                .iter()
                .map(|(key, value)| api::KeyValue { key: key.clone(), value: value.clone() })
                .collect(),
            log_path: format!("{}/{}.log", spec.name, spec.attempt),
            linux: Some(LinuxContainerConfig {
                security_context: Some(LinuxContainerSecurityContext {
                    namespace_options: Some(kubelet_namespaces()),
                    seccomp,
                    no_new_privs: spec.no_new_privs,
                    privileged: security.privileged,
                    readonly_rootfs: security.read_only_root_filesystem,
                    run_as_user: spec.run_as.map(|(uid, _)| api::Int64Value { value: uid }),
                    run_as_group: spec.run_as.map(|(_, gid)| api::Int64Value { value: gid }),
                    capabilities: spec.security.as_ref().map(|s| api::Capability {
                        add_capabilities: s.add_capabilities.clone(),
                        drop_capabilities: s.drop_capabilities.clone(),
                        ..Default::default()
                    }),
                    masked_paths,
                    readonly_paths,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let request = CreateContainerRequest {
            pod_sandbox_id: pod.id.clone(),
            config: Some(config),
            // containerd derives the container's cgroupsPath from this copy
            // (`<linux.cgroup_parent>/<id>`), not from the sandbox it created: without it the
            // container lands in `/k8s.io/<id>`, outside the pod's cgroup.
            sandbox_config: Some(sandbox_config(pod)),
        };
        Ok(self
            .rt
            .block_on(self.cri.runtime_client().create_container(request))
            .map_err(|s| self.failed("CreateContainer", &s))?
            .into_inner()
            .container_id)
    }

    /// Starts a created container (runtime create + start: the entrypoint runs when this
    /// returns).
    pub fn start_container(&self, id: &str) -> anyhow::Result<()> {
        let request = StartContainerRequest { container_id: id.to_owned() };
        self.rt
            .block_on(self.cri.runtime_client().start_container(request))
            .map_err(|s| self.failed("StartContainer", &s))?;
        Ok(())
    }

    /// Creates and starts a container, then waits until it runs (or already exited, for
    /// short-lived ones). Returns its id.
    pub fn run_container(&self, pod: &PodRef, spec: &ContainerSpec) -> anyhow::Result<String> {
        let id = self.create_container(pod, spec)?;
        self.start_container(&id)?;
        self.wait_for(&id, WAIT_TIMEOUT, |s| s.state() != api::ContainerState::ContainerCreated)?;
        Ok(id)
    }

    /// The container's CRI status (verbose: `info` holds the runtime's JSON).
    pub fn status(&self, id: &str) -> anyhow::Result<(ContainerStatus, HashMap<String, String>)> {
        let request = ContainerStatusRequest { container_id: id.to_owned(), verbose: true };
        let response = self
            .rt
            .block_on(self.cri.runtime_client().container_status(request))
            .map_err(|s| self.failed("ContainerStatus", &s))?
            .into_inner();
        let status = response.status.ok_or_else(|| anyhow!("ContainerStatus of {id} is empty"))?;
        Ok((status, response.info))
    }

    /// Polls the status of `id` until `done` holds; fails after `timeout`.
    pub fn wait_for(
        &self,
        id: &str,
        timeout: Duration,
        done: impl Fn(&ContainerStatus) -> bool,
    ) -> anyhow::Result<ContainerStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let (status, _) = self.status(id)?;
            if done(&status) {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("container {id} still {:?} ({}) after {timeout:?}", status.state(), status.reason);
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The PID of the container's main process on the host (from the
    /// runtime's info in a verbose ContainerStatus).
    pub fn pid(&self, id: &str) -> anyhow::Result<u32> {
        let (_, info) = self.status(id)?;
        let text = info.get("info").ok_or_else(|| anyhow!("ContainerStatus of {id} has no info"))?;
        let json: serde_json::Value = serde_json::from_str(text).context("the container's info is not JSON")?;
        json["pid"]
            .as_u64()
            .and_then(|p| u32::try_from(p).ok())
            .filter(|p| *p != 0)
            .ok_or_else(|| anyhow!("container {id} has no pid (not running?)"))
    }

    /// Waits until `id` exited and returns its exit code.
    pub fn wait_exited(&self, id: &str, timeout: Duration) -> anyhow::Result<i32> {
        let status = self.wait_for(id, timeout, |s| s.state() == api::ContainerState::ContainerExited)?;
        Ok(status.exit_code)
    }

    /// What the container wrote to stdout and stderr so far, without the CRI log prefix
    /// (`<time> <stream> <tag> `) of each line.
    pub fn logs(&self, id: &str) -> anyhow::Result<String> {
        let (status, _) = self.status(id)?;
        let text = fs::read_to_string(&status.log_path)
            .with_context(|| format!("reading the log of {id} at {}", status.log_path))?;
        Ok(text.lines().map(|line| line.splitn(4, ' ').nth(3).unwrap_or("")).collect::<Vec<_>>().join("\n"))
    }

    /// Stops the container (SIGTERM, then SIGKILL after `grace_seconds`). Like the
    /// kubelet, the call may take the whole grace period and then some: it goes over a
    /// channel of its own, without the recorder client's per-call timeout (15 s).
    pub fn stop_container(&self, id: &str, grace_seconds: i64) -> anyhow::Result<()> {
        let mut request =
            tonic::Request::new(StopContainerRequest { container_id: id.to_owned(), timeout: grace_seconds });
        request.set_timeout(Duration::from_secs(grace_seconds.unsigned_abs() + 60));
        self.rt.block_on(async {
            let mut client = long_call_client(self.containerd.address()).await?;
            client.stop_container(request).await.map_err(|s| self.failed("StopContainer", &s))?;
            anyhow::Ok(())
        })
    }

    /// Removes a stopped container.
    pub fn remove_container(&self, id: &str) -> anyhow::Result<()> {
        let request = RemoveContainerRequest { container_id: id.to_owned() };
        self.rt
            .block_on(self.cri.runtime_client().remove_container(request))
            .map_err(|s| self.failed("RemoveContainer", &s))?;
        Ok(())
    }

    /// Stops every container of the pod and its sandbox.
    pub fn stop_pod(&self, pod: &PodRef) -> anyhow::Result<()> {
        let request = StopPodSandboxRequest { pod_sandbox_id: pod.id.clone() };
        self.rt
            .block_on(self.cri.runtime_client().stop_pod_sandbox(request))
            .map_err(|s| self.failed("StopPodSandbox", &s))?;
        Ok(())
    }

    /// Removes a pod (stopping it first if needed), its containers, and the pod's cgroup
    /// directories, which the kubelet, not the runtime, would remove.
    pub fn remove_pod(&self, pod: &PodRef) -> anyhow::Result<()> {
        self.stop_pod(pod)?;
        let request = RemovePodSandboxRequest { pod_sandbox_id: pod.id.clone() };
        self.rt
            .block_on(self.cri.runtime_client().remove_pod_sandbox(request))
            .map_err(|s| self.failed("RemovePodSandbox", &s))?;
        self.pods.borrow_mut().retain(|p| p.id != pod.id);
        remove_pod_cgroups(pod);
        Ok(())
    }

    /// The pod's cgroup v2 directory (`<v2 mount>/kubepods/pod-<uid>`).
    pub fn pod_cgroup(&self, pod: &PodRef) -> anyhow::Result<PathBuf> {
        let v2 = cgroup2_mount()?.ok_or_else(|| anyhow!("no cgroup v2 hierarchy is mounted"))?;
        Ok(v2.join(pod.cgroup_parent.trim_start_matches('/')))
    }

    fn failed(&self, call: &str, status: &tonic::Status) -> anyhow::Error {
        anyhow!(
            "CRI {call} failed: {} ({:?}); containerd log:\n{}",
            status.message(),
            status.code(),
            self.containerd.log_tail()
        )
    }
}

impl Drop for Pods<'_> {
    fn drop(&mut self) {
        let pods = self.pods.take();
        for pod in pods.iter().rev() {
            if let Err(e) = self.remove_pod(pod) {
                eprintln!("cleaning up pod {}: {e:#}", pod.name);
                remove_pod_cgroups(pod);
            }
        }
    }
}

/// A CRI client over its own channel to `socket` with no per-call timeout (each request
/// sets its own).
async fn long_call_client(
    socket: &Path,
) -> anyhow::Result<api::runtime_service_client::RuntimeServiceClient<tonic::transport::Channel>> {
    let path = socket.to_path_buf();
    let connector = tower::service_fn(move |_: tonic::transport::Uri| {
        let path = path.clone();
        async move { Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tokio::net::UnixStream::connect(path).await?)) }
    });
    let channel = tonic::transport::Endpoint::from_static("http://cri.invalid")
        .connect_timeout(Duration::from_secs(5))
        .connect_with_connector(connector)
        .await
        .with_context(|| format!("connecting to {}", socket.display()))?;
    Ok(api::runtime_service_client::RuntimeServiceClient::new(channel))
}

/// The sandbox configuration the kubelet sends with RunPodSandbox and again with every
/// CreateContainer.
fn sandbox_config(pod: &PodRef) -> PodSandboxConfig {
    let mut labels = HashMap::from([
        (POD_NAME_LABEL.to_owned(), pod.name.clone()),
        (POD_NAMESPACE_LABEL.to_owned(), pod.namespace.clone()),
        (POD_UID_LABEL.to_owned(), pod.uid.clone()),
    ]);
    labels.extend(pod.labels.iter().cloned());
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: pod.name.clone(),
            uid: pod.uid.clone(),
            namespace: pod.namespace.clone(),
            attempt: 0,
        }),
        log_directory: pod.log_dir.display().to_string(),
        labels,
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: pod.cgroup_parent.clone(),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(kubelet_namespaces()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn profile(kind: ProfileType, localhost_ref: &str) -> SecurityProfile {
    SecurityProfile { profile_type: kind as i32, localhost_ref: localhost_ref.to_owned() }
}

/// What the kubelet asks for a `hostNetwork: true` pod without `hostPID`/`hostIPC` or a
/// shared process namespace.
fn kubelet_namespaces() -> NamespaceOption {
    NamespaceOption {
        network: NamespaceMode::Node as i32,
        pid: NamespaceMode::Container as i32,
        ipc: NamespaceMode::Pod as i32,
        ..Default::default()
    }
}

/// A pod UID unique on this host across test processes.
fn unique_uid() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Removes `/<parent>/pod-<uid>` in every cgroup hierarchy (runc and crun remove the
/// container's own directory, not its parent), then `/kubepods` if that is the parent, it is
/// empty and no other test process uses it. rmdir fails harmlessly on a cgroup still in use.
fn remove_pod_cgroups(pod: &PodRef) {
    let relative = pod.cgroup_parent.trim_start_matches('/');
    for mount in crate::containers::cgroup_mounts().unwrap_or_default() {
        let _ = fs::remove_dir(mount.join(relative));
    }
    if !relative.starts_with(&format!("{KUBEPODS}/")) {
        return;
    }
    remove_kubepods_if_unused();
}

/// Removes `/kubepods` in every cgroup hierarchy if it is empty and no other test process
/// uses it (for tests that create it themselves, before any pod: see
/// [`crate::deploy::ensure_kubepods`]).
pub fn remove_kubepods_if_unused() {
    if let Some(_last) = KubepodsUse::last_user() {
        for mount in crate::containers::cgroup_mounts().unwrap_or_default() {
            let _ = fs::remove_dir(mount.join(KUBEPODS));
        }
    }
}

/// Several test processes (two test runs, or a run and a helper's) share `/kubepods`: one
/// removing it while another records it would make the other's recorder watch a deleted
/// cgroup. Every process that uses it holds a shared `flock` on the cgroup v2 mount's root
/// directory (which always exists, so no lock file is left behind) for its whole life; only
/// a process that can turn that into an exclusive lock (nobody else holds one) removes the
/// directory.
pub struct KubepodsUse;

static KUBEPODS_LOCK: std::sync::OnceLock<Option<fs::File>> = std::sync::OnceLock::new();

impl KubepodsUse {
    /// Marks this process as a user of `/kubepods` (idempotent).
    pub fn register() {
        KUBEPODS_LOCK.get_or_init(|| {
            let file = fs::File::open(cgroup2_mount().ok()??).ok()?;
            // SAFETY: flock on an fd we own; LOCK_SH blocks only while another process
            // holds the exclusive lock for its short removal.
            unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&file), libc::LOCK_SH) };
            Some(file)
        });
    }

    /// `Some` (holding the exclusive lock until dropped) when no other process uses it.
    fn last_user() -> Option<KubepodsExclusive> {
        let file = KUBEPODS_LOCK.get()?.as_ref()?;
        let fd = std::os::fd::AsRawFd::as_raw_fd(file);
        // SAFETY: converts our own lock on our own fd; never blocks (LOCK_NB).
        (unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) } == 0).then_some(KubepodsExclusive(fd))
    }
}

/// Holds the exclusive lock; gives it back as a shared one when dropped.
struct KubepodsExclusive(i32);

impl Drop for KubepodsExclusive {
    fn drop(&mut self) {
        // SAFETY: converts our own lock back to shared on the fd that stays open.
        unsafe { libc::flock(self.0, libc::LOCK_SH) };
    }
}
