//! A small CRI v1 client: find a pod by name, list its containers, and say which cgroup v2
//! directory each running container is in.
//!
//! Talks gRPC over the runtime's unix socket (containerd with its CRI plugin, or CRI-O),
//! with the generated types of the `k8s-cri` crate (re-exported as [`api`] for callers that
//! need a call this module does not wrap). Every call has a timeout, so a hung runtime makes
//! the recorder fail instead of hang.
//!
//! ```no_run
//! # async fn demo(hierarchy: recorder::target::Hierarchy) -> Result<(), recorder::cri::CriError> {
//! let cri = recorder::cri::connect(None).await?;
//! for pod in cri.find_pods("nginx", Some("default")).await? {
//!     for c in cri.containers(&pod.id, &hierarchy).await? {
//!         println!("{} {:?} pid {:?} cgroup {:?}", c.name, c.state, c.pid, c.cgroup);
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Container pids and cgroups are read from `/proc`, so the caller must share the host's
//! PID namespace (as a recorder that loads BPF programs does).

mod endpoint;
pub mod info;
mod node;

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

pub use endpoint::DEFAULT_ENDPOINTS;
pub use k8s_cri::v1 as api;
pub use node::{ListedContainer, Sandbox};
use tonic::transport::Channel;

use self::api::{
    ContainerFilter, ContainerStatusRequest, ListContainersRequest, ListPodSandboxRequest, PodSandboxFilter,
    PodSandboxStatusRequest, VersionRequest, runtime_service_client::RuntimeServiceClient,
};

/// Label the kubelet puts on every sandbox with the pod's name.
pub const POD_NAME_LABEL: &str = "io.kubernetes.pod.name";
/// Label the kubelet puts on every sandbox with the pod's namespace.
pub const POD_NAMESPACE_LABEL: &str = "io.kubernetes.pod.namespace";
/// Label the kubelet puts on every sandbox with the pod's UID.
pub const POD_UID_LABEL: &str = "io.kubernetes.pod.uid";
/// Label the kubelet puts on every container with its name in the pod spec.
pub const CONTAINER_NAME_LABEL: &str = "io.kubernetes.container.name";

/// CRI API version the client speaks (`VersionRequest.version`).
const API_VERSION: &str = "v1";

/// How long `Version` may take: a CRI runtime answers it at once from memory, so a socket
/// that stays silent this long speaks something else.
const VERSION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum CriError {
    #[error(
        "no CRI socket found (tried {}); start containerd or CRI-O, or pass the socket with --runtime-endpoint PATH",
        display_paths(tried)
    )]
    NoSocket { tried: Vec<PathBuf> },
    #[error("CRI socket {path} does not exist; check the --runtime-endpoint path and that the runtime is running")]
    SocketMissing { path: PathBuf },
    #[error(
        "{path} is not a unix socket; pass the runtime's CRI socket with --runtime-endpoint (e.g. /run/containerd/containerd.sock)"
    )]
    NotASocket { path: PathBuf },
    #[error("cannot stat CRI socket {path}: {source}; check its permissions (the recorder needs root)")]
    Stat {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot connect to CRI socket {path}: {source}; is the runtime running and is this its socket?")]
    Connect {
        path: PathBuf,
        #[source]
        source: tonic::transport::Error,
    },
    #[error(
        "{path} does not answer as a CRI v1 runtime (Version: {}: {}); pass containerd's or CRI-O's socket with --runtime-endpoint (containerd needs its CRI plugin enabled)",
        status.code(),
        status.message()
    )]
    NotCri {
        path: PathBuf,
        #[source]
        status: Box<tonic::Status>,
    },
    #[error("CRI {call} failed: {}: {}; check the runtime's log", status.code(), status.message())]
    Call {
        call: &'static str,
        #[source]
        status: Box<tonic::Status>,
    },
    #[error("the runtime returned an empty {call} response; is it a CRI v1 runtime?")]
    EmptyResponse { call: &'static str },
    #[error(
        "cannot parse the verbose info of {id}: {source}; the runtime's info format is not one the recorder knows (containerd, CRI-O)"
    )]
    Info {
        id: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot find a container's cgroup: {0}")]
    Cgroup(#[source] Box<dyn std::error::Error + Send + Sync>),
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

fn call_error(call: &'static str) -> impl FnOnce(tonic::Status) -> CriError {
    move |status| CriError::Call { call, status: Box::new(status) }
}

/// A connection to a CRI runtime that answered `Version`.
#[derive(Clone, Debug)]
pub struct Cri {
    client: RuntimeServiceClient<Channel>,
    endpoint: PathBuf,
    runtime_name: String,
    runtime_version: String,
}

/// Connects to the CRI socket `endpoint` (a path or `unix:///path`), or with `None` to the
/// first of [`DEFAULT_ENDPOINTS`] that exists, and checks with `Version` that a CRI v1
/// runtime answers there.
pub async fn connect(endpoint: Option<&Path>) -> Result<Cri, CriError> {
    let path = endpoint::resolve(endpoint, &DEFAULT_ENDPOINTS)?;
    let channel = endpoint::channel(&path).await?;
    let mut client = RuntimeServiceClient::new(channel);
    let mut request = tonic::Request::new(VersionRequest { version: API_VERSION.to_owned() });
    // A server that does not speak HTTP/2 (containerd's own ttrpc socket, say) never answers.
    request.set_timeout(VERSION_TIMEOUT);
    let version = client
        .version(request)
        .await
        .map_err(|status| CriError::NotCri { path: path.clone(), status: Box::new(status) })?
        .into_inner();
    Ok(Cri { client, endpoint: path, runtime_name: version.runtime_name, runtime_version: version.runtime_version })
}

/// Whether a pod sandbox is up (`SANDBOX_READY`) or stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodState {
    Ready,
    NotReady,
}

/// A pod sandbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pod {
    /// Sandbox id (the runtime's, not the Kubernetes UID).
    pub id: String,
    pub name: String,
    pub namespace: String,
    /// Kubernetes pod UID.
    pub uid: String,
    pub state: PodState,
    /// Runtime handler (RuntimeClass) the sandbox runs with; empty for the default.
    pub runtime_handler: String,
    /// Creation time, nanoseconds since the Unix epoch.
    pub created_at: i64,
}

impl Pod {
    /// A listed sandbox; names fall back to the kubelet's labels when the
    /// metadata lacks them.
    pub(crate) fn from_sandbox(sandbox: &api::PodSandbox) -> Pod {
        let label = |key: &str| sandbox.labels.get(key).cloned().unwrap_or_default();
        let meta = sandbox.metadata.clone().unwrap_or_default();
        Pod {
            name: non_empty_or(meta.name, || label(POD_NAME_LABEL)),
            namespace: non_empty_or(meta.namespace, || label(POD_NAMESPACE_LABEL)),
            uid: non_empty_or(meta.uid, || label(POD_UID_LABEL)),
            state: match sandbox.state() {
                api::PodSandboxState::SandboxReady => PodState::Ready,
                api::PodSandboxState::SandboxNotready => PodState::NotReady,
            },
            runtime_handler: sandbox.runtime_handler.clone(),
            created_at: sandbox.created_at,
            id: sandbox.id.clone(),
        }
    }
}

/// A container's state, as the CRI reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContainerState {
    Created,
    Running,
    Exited,
    Unknown,
}

impl From<api::ContainerState> for ContainerState {
    fn from(state: api::ContainerState) -> Self {
        match state {
            api::ContainerState::ContainerCreated => ContainerState::Created,
            api::ContainerState::ContainerRunning => ContainerState::Running,
            api::ContainerState::ContainerExited => ContainerState::Exited,
            api::ContainerState::ContainerUnknown => ContainerState::Unknown,
        }
    }
}

/// A container of a pod, running or not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Container {
    pub id: String,
    /// Name in the pod spec (label `io.kubernetes.container.name`, else the CRI metadata name).
    pub name: String,
    /// Restart count: the kubelet creates attempt N+1 when attempt N exited.
    pub attempt: u32,
    pub state: ContainerState,
    /// Creation time, nanoseconds since the Unix epoch.
    pub created_at: i64,
    /// Exit code, once the container has finished.
    pub exit_code: Option<i32>,
    /// Host PID of the container's init process, only while it runs.
    pub pid: Option<u32>,
    /// cgroup v2 directory of `pid` (from `/proc/PID/cgroup`), only while it runs.
    pub cgroup: Option<PathBuf>,
    /// `linux.cgroupsPath` of the OCI spec the runtime created the container with.
    pub cgroups_path: Option<String>,
}

impl Cri {
    /// The socket this client talks to.
    pub fn endpoint(&self) -> &Path {
        &self.endpoint
    }

    /// Runtime name from `Version` (`containerd`, `cri-o`).
    pub fn runtime_name(&self) -> &str {
        &self.runtime_name
    }

    /// Runtime version from `Version` (e.g. `1.6.20~ds1`).
    pub fn runtime_version(&self) -> &str {
        &self.runtime_version
    }

    /// The raw runtime service client, for calls this module does not wrap.
    pub fn runtime_client(&self) -> RuntimeServiceClient<Channel> {
        self.client.clone()
    }

    /// Pod sandboxes named `name` (in `namespace`, or in any namespace), ready or not,
    /// newest first. A pod the kubelet re-created has several sandboxes; the first ready
    /// one is the live one.
    pub async fn find_pods(&self, name: &str, namespace: Option<&str>) -> Result<Vec<Pod>, CriError> {
        let mut selector = HashMap::from([(POD_NAME_LABEL.to_owned(), name.to_owned())]);
        if let Some(namespace) = namespace {
            selector.insert(POD_NAMESPACE_LABEL.to_owned(), namespace.to_owned());
        }
        let request =
            ListPodSandboxRequest { filter: Some(PodSandboxFilter { label_selector: selector, ..Default::default() }) };
        let items = self
            .client
            .clone()
            .list_pod_sandbox(request)
            .await
            .map_err(call_error("ListPodSandbox"))?
            .into_inner()
            .items;
        let mut pods: Vec<Pod> = items.iter().map(Pod::from_sandbox).collect();
        pods.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.id.cmp(&b.id)));
        Ok(pods)
    }

    /// Every container of the sandbox `pod_id`, exited ones included (restarts), oldest
    /// first. For running containers, `pid` and `cgroup` say where they are now.
    ///
    /// A container removed between the listing and its status call is left out. A
    /// container can exit between the status call and the `/proc` read; its `cgroup` is
    /// then `None`. (Its PID could in theory be reused in that window; callers that need
    /// certainty compare the cgroup path with `cgroups_path`.)
    pub async fn containers(&self, pod_id: &str, cgroups: &dyn CgroupLookup) -> Result<Vec<Container>, CriError> {
        let request = ListContainersRequest {
            filter: Some(ContainerFilter { pod_sandbox_id: pod_id.to_owned(), ..Default::default() }),
        };
        let listed = self
            .client
            .clone()
            .list_containers(request)
            .await
            .map_err(call_error("ListContainers"))?
            .into_inner()
            .containers;
        let mut containers = Vec::with_capacity(listed.len());
        for listed in listed {
            let request = ContainerStatusRequest { container_id: listed.id.clone(), verbose: true };
            let response = match self.client.clone().container_status(request).await {
                Ok(response) => response.into_inner(),
                // Removed between the listing and this call: a pod being deleted, which is
                // how a pod recording usually ends. It is gone, not an error.
                Err(status) if status.code() == tonic::Code::NotFound => continue,
                Err(status) => return Err(call_error("ContainerStatus")(status)),
            };
            let status = response.status.ok_or(CriError::EmptyResponse { call: "ContainerStatus" })?;
            let info =
                info::parse(&response.info).map_err(|source| CriError::Info { id: listed.id.clone(), source })?;
            let state = ContainerState::from(status.state());
            let pid = info.pid.filter(|_| state == ContainerState::Running);
            let cgroup = match pid {
                Some(pid) => cgroups.cgroup_of_pid(pid).map_err(CriError::Cgroup)?,
                None => None,
            };
            let meta = status.metadata.unwrap_or_default();
            let name = status.labels.get(CONTAINER_NAME_LABEL).filter(|n| !n.is_empty()).cloned().unwrap_or(meta.name);
            containers.push(Container {
                id: listed.id,
                name,
                attempt: meta.attempt,
                state,
                created_at: status.created_at,
                exit_code: (status.finished_at != 0).then_some(status.exit_code),
                pid,
                cgroup,
                cgroups_path: info.cgroups_path,
            });
        }
        containers.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
        Ok(containers)
    }

    /// Best effort: the cgroup v2 directory holding all of `pod`'s processes, as the common
    /// parent of its sandbox's and running containers' cgroups (cgroupfs driver:
    /// `<v2 mount>/<cgroup_parent>`, e.g. `/kubepods/pod<uid>`; systemd: the pod's slice).
    /// `None` when nothing of the pod runs, or when the only common parent is the root of
    /// the hierarchy (recording it would record the whole host).
    pub async fn pod_cgroup_parent(&self, pod: &Pod, lookup: &dyn CgroupLookup) -> Result<Option<PathBuf>, CriError> {
        let mut cgroups = Vec::new();
        let response = self
            .client
            .clone()
            .pod_sandbox_status(PodSandboxStatusRequest { pod_sandbox_id: pod.id.clone(), verbose: true })
            .await
            .map_err(call_error("PodSandboxStatus"))?
            .into_inner();
        let ready = response.status.as_ref().is_some_and(|s| s.state() == api::PodSandboxState::SandboxReady);
        let sandbox = info::parse(&response.info).map_err(|source| CriError::Info { id: pod.id.clone(), source })?;
        if let Some(pid) = sandbox.pid.filter(|_| ready) {
            cgroups.extend(lookup.cgroup_of_pid(pid).map_err(CriError::Cgroup)?);
        }
        for container in self.containers(&pod.id, lookup).await? {
            cgroups.extend(container.cgroup);
        }
        let Some(parent) = common_parent(&cgroups) else {
            return Ok(None);
        };
        Ok(Some(parent).filter(|p| p.as_path() != lookup.root()))
    }
}

/// Where a process's cgroup v2 directory is. The CRI only reports PIDs;
/// the caller knows the cgroup hierarchy (`target::Hierarchy` implements
/// this), so the client stays below it in the module layers.
pub trait CgroupLookup {
    /// The cgroup v2 directory of `pid`, or `None` when the process is gone.
    fn cgroup_of_pid(&self, pid: u32) -> Result<Option<PathBuf>, Box<dyn std::error::Error + Send + Sync>>;
    /// The hierarchy's root directory (its mount point).
    fn root(&self) -> &Path;
}

/// The deepest directory containing all of `cgroups`: for one cgroup its parent, for several
/// their longest common path prefix. `None` for an empty list.
fn common_parent(cgroups: &[PathBuf]) -> Option<PathBuf> {
    let (first, rest) = cgroups.split_first()?;
    if rest.is_empty() {
        return first.parent().map(Path::to_path_buf);
    }
    let mut prefix: Vec<_> = first.components().collect();
    for path in rest {
        let shared = prefix.iter().zip(path.components()).take_while(|(a, b)| *a == b).count();
        prefix.truncate(shared);
    }
    // Several distinct cgroups can share a prefix that is one of them (a container nested in
    // another's directory, which no runtime does); the pod's directory is then above it.
    let prefix: PathBuf = prefix.into_iter().collect();
    if cgroups.iter().all(|c| c == &prefix) {
        return prefix.parent().map(Path::to_path_buf);
    }
    Some(prefix)
}

fn non_empty_or(value: String, fallback: impl FnOnce() -> String) -> String {
    if value.is_empty() { fallback() } else { value }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(list: &[&str]) -> Vec<PathBuf> {
        list.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn common_parent_of_nothing_is_none() {
        assert_eq!(common_parent(&[]), None);
    }

    #[test]
    fn common_parent_of_one_is_its_parent() {
        let one = paths(&["/sys/fs/cgroup/unified/kubepods/pod-1/abc"]);
        assert_eq!(common_parent(&one), Some(PathBuf::from("/sys/fs/cgroup/unified/kubepods/pod-1")));
    }

    #[test]
    fn common_parent_of_siblings() {
        let pod = paths(&[
            "/sys/fs/cgroup/unified/kubepods/pod-1/sandbox",
            "/sys/fs/cgroup/unified/kubepods/pod-1/nginx",
            "/sys/fs/cgroup/unified/kubepods/pod-1/sidecar",
        ]);
        assert_eq!(common_parent(&pod), Some(PathBuf::from("/sys/fs/cgroup/unified/kubepods/pod-1")));
    }

    #[test]
    fn common_parent_does_not_split_names() {
        // pod-1 and pod-12 share the characters "pod-1" but not a directory.
        let two = paths(&["/cg/kubepods/pod-1/a", "/cg/kubepods/pod-12/b"]);
        assert_eq!(common_parent(&two), Some(PathBuf::from("/cg/kubepods")));
    }

    #[test]
    fn common_parent_of_duplicates_is_their_parent() {
        let same = paths(&["/cg/kubepods/pod-1/a", "/cg/kubepods/pod-1/a"]);
        assert_eq!(common_parent(&same), Some(PathBuf::from("/cg/kubepods/pod-1")));
    }

    #[tokio::test]
    async fn refused_connection_is_a_connect_error() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("stale.sock");
        // A socket file nobody listens on: what a crashed runtime leaves behind.
        drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
        let err = connect(Some(&sock)).await.unwrap_err();
        assert!(matches!(&err, CriError::Connect { path, .. } if path == &sock), "{err:?}");
    }

    #[tokio::test]
    async fn http1_server_is_not_cri() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("http.sock");
        let listener = tokio::net::UnixListener::bind(&sock).unwrap();
        // Something else entirely: answers every connection with an HTTP/1.1 error and hangs up.
        let server = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt as _;
            while let Ok((mut stream, _)) = listener.accept().await {
                let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n").await;
            }
        });
        let err = connect(Some(&sock)).await.unwrap_err();
        server.abort();
        assert!(matches!(&err, CriError::NotCri { path, .. } if path == &sock), "{err:?}");
        assert!(err.to_string().contains("does not answer as a CRI v1 runtime"), "{err}");
    }

    #[test]
    fn errors_say_what_to_do() {
        let err = CriError::NotCri {
            path: PathBuf::from("/run/other.sock"),
            status: Box::new(tonic::Status::unimplemented("unknown service runtime.v1.RuntimeService")),
        };
        let msg = err.to_string();
        assert!(msg.contains("/run/other.sock") && msg.contains("--runtime-endpoint"), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }
}
