//! Who a cgroup is: its container, pod and workload. Everything comes from
//! the CRI (the labels the kubelet puts on sandboxes and containers), so no
//! API server is needed.
//!
//! The workload is derived from the sandbox's labels:
//! - Deployment: `pod-template-hash`; the workload is the pod name minus
//!   `-<hash>-<suffix>`;
//! - StatefulSet: `statefulset.kubernetes.io/pod-name`; the pod name minus
//!   its `-<ordinal>`;
//! - DaemonSet: `controller-revision-hash` (without the StatefulSet label);
//!   the pod name minus `-<suffix>`;
//! - Job and CronJob: `batch.kubernetes.io/job-name` or `job-name`;
//! - anything else: the pod itself.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What kind of owner a workload is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Deployment,
    StatefulSet,
    DaemonSet,
    Job,
    Pod,
}

/// (namespace, workload, container): what profiles are learned for.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct WorkloadKey {
    pub namespace: String,
    pub workload: String,
    pub container: String,
}

impl std::fmt::Display for WorkloadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.namespace, self.workload, self.container)
    }
}

/// One container of one pod, as the CRI named it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub namespace: String,
    pub pod: String,
    pub pod_uid: String,
    pub container: String,
    pub container_id: String,
    pub workload: String,
    pub kind: Kind,
    /// The image as the pod spec names it.
    pub image: String,
    /// The image's digest or id on the node: a new one starts a generation.
    pub image_ref: String,
    /// The sandbox's runtime handler (runc, crun, or empty for the default).
    pub runtime_handler: String,
    /// The pod's labels (for --selector).
    pub labels: BTreeMap<String, String>,
}

impl Identity {
    pub fn key(&self) -> WorkloadKey {
        WorkloadKey {
            namespace: self.namespace.clone(),
            workload: self.workload.clone(),
            container: self.container.clone(),
        }
    }
}

/// The owner of a pod named `pod` with sandbox labels `labels`.
pub fn workload_of(pod: &str, labels: &BTreeMap<String, String>) -> (String, Kind) {
    let label = |key: &str| labels.get(key).filter(|v| !v.is_empty());
    if let Some(hash) = label("pod-template-hash") {
        // <deployment>-<hash>-<suffix>
        if let Some(rest) = pod.rsplit_once('-').map(|(head, _)| head)
            && let Some(name) = rest.strip_suffix(&format!("-{hash}"))
        {
            return (name.to_owned(), Kind::Deployment);
        }
    }
    if label("statefulset.kubernetes.io/pod-name").is_some() {
        // <statefulset>-<ordinal>
        if let Some((name, ordinal)) = pod.rsplit_once('-')
            && ordinal.bytes().all(|b| b.is_ascii_digit())
            && !ordinal.is_empty()
        {
            return (name.to_owned(), Kind::StatefulSet);
        }
    }
    if let Some(job) = label("batch.kubernetes.io/job-name").or_else(|| label("job-name")) {
        return (job.clone(), Kind::Job);
    }
    if label("controller-revision-hash").is_some() {
        // <daemonset>-<suffix>
        if let Some((name, _)) = pod.rsplit_once('-') {
            return (name.to_owned(), Kind::DaemonSet);
        }
    }
    (pod.to_owned(), Kind::Pod)
}

/// `--selector key=value` pairs (all must match) and `--namespace` names
/// (any may match; none means every namespace).
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub namespaces: Vec<String>,
    pub selector: BTreeMap<String, String>,
}

impl Filter {
    pub fn wants(&self, identity: &Identity) -> bool {
        (self.namespaces.is_empty() || self.namespaces.contains(&identity.namespace))
            && self.selector.iter().all(|(k, v)| identity.labels.get(k) == Some(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn owners_come_from_the_kubelets_labels() {
        assert_eq!(
            workload_of("web-5d4b9c7f8-x2x4z", &labels(&[("pod-template-hash", "5d4b9c7f8")])),
            ("web".to_owned(), Kind::Deployment)
        );
        assert_eq!(
            workload_of("my-api-v2-7c9f-abcde", &labels(&[("pod-template-hash", "7c9f")])),
            ("my-api-v2".to_owned(), Kind::Deployment)
        );
        assert_eq!(
            workload_of(
                "db-2",
                &labels(&[("statefulset.kubernetes.io/pod-name", "db-2"), ("controller-revision-hash", "db-6f")])
            ),
            ("db".to_owned(), Kind::StatefulSet)
        );
        assert_eq!(
            workload_of(
                "node-agent-7xk2p",
                &labels(&[("controller-revision-hash", "85d9"), ("pod-template-generation", "1")])
            ),
            ("node-agent".to_owned(), Kind::DaemonSet)
        );
        assert_eq!(
            workload_of("backup-28912345-abcde", &labels(&[("batch.kubernetes.io/job-name", "backup-28912345")])),
            ("backup-28912345".to_owned(), Kind::Job)
        );
        assert_eq!(workload_of("old-job-x1", &labels(&[("job-name", "old-job")])), ("old-job".to_owned(), Kind::Job));
        assert_eq!(workload_of("debug", &labels(&[])), ("debug".to_owned(), Kind::Pod));
        // A hash label that does not match the name: the pod itself.
        assert_eq!(workload_of("odd", &labels(&[("pod-template-hash", "zz")])), ("odd".to_owned(), Kind::Pod));
    }

    #[test]
    fn filters_match_namespace_and_every_selector_label() {
        let id = Identity {
            namespace: "shop".into(),
            pod: "web-1".into(),
            pod_uid: "u".into(),
            container: "nginx".into(),
            container_id: "c".into(),
            workload: "web".into(),
            kind: Kind::Pod,
            image: "nginx".into(),
            image_ref: "sha256:1".into(),
            runtime_handler: String::new(),
            labels: labels(&[("app", "web"), ("tier", "front")]),
        };
        assert!(Filter::default().wants(&id));
        assert!(Filter { namespaces: vec!["shop".into()], ..Filter::default() }.wants(&id));
        assert!(!Filter { namespaces: vec!["other".into()], ..Filter::default() }.wants(&id));
        assert!(Filter { selector: labels(&[("app", "web")]), ..Filter::default() }.wants(&id));
        assert!(!Filter { selector: labels(&[("app", "web"), ("tier", "back")]), ..Filter::default() }.wants(&id));
    }
}
