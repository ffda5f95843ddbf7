//! The runtime-specific "verbose info" of `ContainerStatus` and `PodSandboxStatus`.
//!
//! The CRI only says that `info` is a map of JSON strings. Both runtimes the recorder knows
//! put one JSON object under the key `"info"`:
//!
//! - containerd 1.6 (`pkg/cri/server/container_status.go`, `ContainerInfo`; sandbox:
//!   `sandbox_status.go`, `SandboxInfo`): `{"sandboxID", "pid", "removing", "snapshotKey",
//!   "snapshotter", "runtimeType", "runtimeOptions", "config", "runtimeSpec"}`.
//! - CRI-O (`server/container_status.go`, `createContainerInfo`): `{"sandboxID", "pid",
//!   "runtimeSpec", "privileged"}`.
//!
//! `runtimeSpec` is the OCI runtime spec the container was created with; its
//! `linux.cgroupsPath` is what the runtime handed to runc/crun (cgroupfs: `/parent/id`,
//! systemd: `slice:prefix:id`).

use std::collections::HashMap;

use serde_json::Value;

/// What the recorder needs from the verbose info.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Info {
    /// Host PID of the container's init process (pause for a sandbox); `None` when the
    /// runtime reports none or 0 (not started, or exited and forgotten).
    pub pid: Option<u32>,
    /// `runtimeSpec.linux.cgroupsPath`.
    pub cgroups_path: Option<String>,
}

/// Parses the verbose info map. Keys other than `"info"` and fields the recorder does not
/// use are ignored; a value under `"info"` that is not JSON is an error.
pub fn parse(info: &HashMap<String, String>) -> Result<Info, serde_json::Error> {
    let Some(text) = info.get("info") else {
        return Ok(Info::default());
    };
    let value: Value = serde_json::from_str(text)?;
    let pid = value.get("pid").and_then(Value::as_u64).and_then(|pid| u32::try_from(pid).ok()).filter(|&pid| pid != 0);
    let cgroups_path = value
        .pointer("/runtimeSpec/linux/cgroupsPath")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
        .map(str::to_owned);
    Ok(Info { pid, cgroups_path })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info_map(json: &str) -> HashMap<String, String> {
        HashMap::from([("info".to_owned(), json.to_owned())])
    }

    #[test]
    fn empty_map_has_nothing() {
        assert_eq!(parse(&HashMap::new()).unwrap(), Info::default());
    }

    #[test]
    fn not_json_is_an_error() {
        assert!(parse(&info_map("pid=12")).is_err());
    }

    #[test]
    fn pid_zero_means_none() {
        let info = parse(&info_map(r#"{"pid": 0, "runtimeSpec": {"linux": {}}}"#)).unwrap();
        assert_eq!(info, Info::default());
    }

    /// `info["info"]` of ContainerStatus{verbose} from containerd 1.6.20~ds1 (Debian 12) for
    /// a running nginx container under runc, cgroup parent `/kubepods/pod-24768-0`.
    const CONTAINERD_CONTAINER: &str = include_str!("testdata/containerd-1.6.20-container-info.json");
    /// `info["info"]` of PodSandboxStatus{verbose} from the same containerd.
    const CONTAINERD_SANDBOX: &str = include_str!("testdata/containerd-1.6.20-sandbox-info.json");

    #[test]
    fn containerd_container() {
        let info = parse(&info_map(CONTAINERD_CONTAINER)).unwrap();
        assert_eq!(info.pid, Some(24996));
        assert_eq!(
            info.cgroups_path.as_deref(),
            Some("/kubepods/pod-24768-0/efd5095b365750523615e733fb09523fce01c162dcd777e1ae1813dce9903a78")
        );
    }

    #[test]
    fn containerd_sandbox() {
        let info = parse(&info_map(CONTAINERD_SANDBOX)).unwrap();
        assert_eq!(info.pid, Some(25745));
        assert_eq!(
            info.cgroups_path.as_deref(),
            Some("/kubepods/pod-25531-0/432d6c8cecb8197d3f86f187580e2957f05500f5f5a751efaaf0400be7a23aa7")
        );
    }

    #[test]
    fn other_keys_are_ignored() {
        let mut map = info_map(CONTAINERD_CONTAINER);
        map.insert("extra".to_owned(), "not json".to_owned());
        assert_eq!(parse(&map).unwrap().pid, Some(24996));
    }

    #[test]
    fn crio_shape() {
        let info = parse(&info_map(
            r#"{"sandboxID":"abc","pid":4242,"runtimeSpec":{"ociVersion":"1.0.2-dev",
               "linux":{"cgroupsPath":"kubepods-besteffort-pod1.slice:crio:0123"}},
               "privileged":false}"#,
        ))
        .unwrap();
        assert_eq!(info.pid, Some(4242));
        assert_eq!(info.cgroups_path.as_deref(), Some("kubepods-besteffort-pod1.slice:crio:0123"));
    }
}
