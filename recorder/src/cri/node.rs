//! Everything on the node at once, for the daemon: every pod sandbox and
//! every container (exited ones included, until the kubelet removes them),
//! each with its labels. Two calls per poll, whatever the pod count.

use std::collections::BTreeMap;

use super::{
    CONTAINER_NAME_LABEL, Cri, CriError, Pod, PodState,
    api::{ListContainersRequest, ListPodSandboxRequest},
    call_error,
};
use crate::cri::ContainerState;

/// A pod sandbox and its labels (where the kubelet says who owns the pod).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sandbox {
    pub id: String,
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub state: PodState,
    pub runtime_handler: String,
    pub created_at: i64,
    pub labels: BTreeMap<String, String>,
}

/// A container as listed (no per-container status call).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedContainer {
    pub id: String,
    pub sandbox_id: String,
    /// Name in the pod spec.
    pub name: String,
    pub attempt: u32,
    pub state: ContainerState,
    pub created_at: i64,
    /// The image as the pod spec names it.
    pub image: String,
    /// The image's digest or id on the node: a new one is a new generation.
    pub image_ref: String,
    pub labels: BTreeMap<String, String>,
}

impl Cri {
    /// Every pod sandbox on the node.
    pub async fn list_sandboxes(&self) -> Result<Vec<Sandbox>, CriError> {
        let items = self
            .client
            .clone()
            .list_pod_sandbox(ListPodSandboxRequest { filter: None })
            .await
            .map_err(call_error("ListPodSandbox"))?
            .into_inner()
            .items;
        Ok(items
            .into_iter()
            .map(|sandbox| {
                let pod = Pod::from_sandbox(&sandbox);
                Sandbox {
                    id: pod.id,
                    name: pod.name,
                    namespace: pod.namespace,
                    uid: pod.uid,
                    state: pod.state,
                    runtime_handler: pod.runtime_handler,
                    created_at: pod.created_at,
                    labels: sandbox.labels.into_iter().collect(),
                }
            })
            .collect())
    }

    /// Every container on the node.
    pub async fn list_all_containers(&self) -> Result<Vec<ListedContainer>, CriError> {
        let listed = self
            .client
            .clone()
            .list_containers(ListContainersRequest { filter: None })
            .await
            .map_err(call_error("ListContainers"))?
            .into_inner()
            .containers;
        Ok(listed
            .into_iter()
            .map(|c| {
                let meta = c.metadata.clone().unwrap_or_default();
                let state = ContainerState::from(c.state());
                ListedContainer {
                    name: c.labels.get(CONTAINER_NAME_LABEL).filter(|n| !n.is_empty()).cloned().unwrap_or(meta.name),
                    attempt: meta.attempt,
                    state,
                    created_at: c.created_at,
                    image: c.image.map(|i| i.image).unwrap_or_default(),
                    image_ref: c.image_ref,
                    labels: c.labels.into_iter().collect(),
                    sandbox_id: c.pod_sandbox_id,
                    id: c.id,
                }
            })
            .collect())
    }
}
