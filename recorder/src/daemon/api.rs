//! The daemon's read-only HTTP API.
//!
//! - `GET /healthz`, `GET /readyz`;
//! - `GET /metrics` (Prometheus text, see `metrics`);
//! - `GET /v1/workloads`: one object per (namespace, workload, container,
//!   generation);
//! - `GET /v1/profiles/{namespace}/{workload}/{container}[?format=oci|spo|
//!   moby|k8s-snippet][&generation=IMAGE_REF]`: the merged profile, with an
//!   `ETag`;
//! - `GET /v1/profiles/{namespace}/{workload}/{container}/by-exe`: which
//!   executables made which calls (`recorder daemon --by-exe`), in the
//!   format `record --by-exe` writes;
//! - `GET /v1/pods/{namespace}/{pod}/{container}[?format=...]`: one pod's own
//!   profile, before merging.
//!
//! Names in paths go through the Kubernetes name rules before use; errors
//! are JSON (`{"error": "..."}`). Connections are bounded in number, and a
//! client that sends its headers too slowly is dropped, so slow or many
//! clients cannot take the API (or the daemon's memory) down.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::json;

use super::{
    engine::unix_now,
    metrics,
    profiles::{self, Learned},
    state::{DaemonState, WorkloadView},
};
use crate::{
    k8s_name::{Kind, validate},
    profile::{
        attribution::{Attribution, AttributionFile},
        write::{Format, WriteOptions},
    },
};

/// What handlers share.
#[derive(Clone)]
pub struct Api {
    pub state: Arc<Mutex<DaemonState>>,
    /// Seconds without a new syscall before a workload is stable.
    pub stable_after: u64,
    /// Calls are attributed to executables (`--by-exe`).
    pub by_exe: bool,
}

/// Connections served at once; more wait in the kernel's accept queue.
const MAX_CONNECTIONS: usize = 256;
/// A client must send its request headers within this.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest request line plus headers accepted (hyper's read buffer).
const MAX_HEADER_BYTES: usize = 16 * 1024;

pub fn router(api: Api) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/v1/workloads", get(workloads))
        .route("/v1/profiles/{namespace}/{workload}/{container}", get(workload_profile))
        .route("/v1/profiles/{namespace}/{workload}/{container}/by-exe", get(workload_by_exe))
        .route("/v1/pods/{namespace}/{pod}/{container}", get(pod_profile))
        .fallback(not_found)
        .with_state(api)
}

/// Serves `router` on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, router: Router) {
    let limit = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = limit.clone().acquire_owned().await else { return };
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!("API accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEADER_BYTES)
                .keep_alive(true)
                .serve_connection(io, service);
            // A connection may not outlive a minute of idleness between
            // requests or a stuck client.
            let _ = tokio::time::timeout(Duration::from_secs(60), conn).await;
            drop(permit);
        });
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    ApiError { status, message: message.into() }.into_response()
}

/// A refusal: its status and one line saying why.
struct ApiError {
    status: StatusCode,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.message }).to_string();
        (self.status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "no such endpoint; try /v1/workloads, /v1/profiles/NAMESPACE/WORKLOAD/CONTAINER[/by-exe], /v1/pods/NAMESPACE/POD/CONTAINER, /metrics",
    )
}

fn lock(api: &Api) -> std::sync::MutexGuard<'_, DaemonState> {
    api.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn healthz(State(api): State<Api>) -> Response {
    let last = lock(&api).last_tick;
    if last != 0 && unix_now().saturating_sub(last) > 30 {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the recording loop has not run for 30 s");
    }
    (StatusCode::OK, "ok\n").into_response()
}

async fn readyz(State(api): State<Api>) -> Response {
    if lock(&api).ready {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        error(StatusCode::SERVICE_UNAVAILABLE, "still loading: BPF programs and the first CRI poll")
    }
}

async fn metrics_text(State(api): State<Api>) -> Response {
    let text = metrics::render(&lock(&api), unix_now(), api.stable_after);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

fn rfc3339(seconds: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(seconds)).to_string()
}

fn view_json(view: &WorkloadView, now: u64) -> serde_json::Value {
    let r = &view.record;
    let reasons: Vec<serde_json::Value> =
        r.partial_reasons().iter().map(|reason| serde_json::to_value(reason).unwrap_or_default()).collect();
    json!({
        "namespace": r.key.namespace,
        "workload": r.key.workload,
        "kind": r.kind,
        "container": r.key.container,
        "generation": r.image_ref,
        "image": r.image,
        "state": view.state.as_str(),
        "partial_reasons": reasons,
        "syscalls": r.calls.profile_len(),
        "replicas_seen": r.pods_folded as usize + view.live_replicas,
        "replicas_running": view.live_replicas,
        "pods": r.pods,
        "first_seen_at": rfc3339(r.first_seen),
        "last_new_syscall_at": rfc3339(r.last_new_call),
        "seconds_since_new_syscall": now.saturating_sub(r.last_new_call),
        "start_observed": r.startup_seen,
        "clean_stop_observed": r.clean_stop_seen,
    })
}

async fn workloads(State(api): State<Api>) -> Response {
    let now = unix_now();
    let views = lock(&api).views(now, api.stable_after);
    let list: Vec<serde_json::Value> = views.values().map(|v| view_json(v, now)).collect();
    let mut body = serde_json::to_string_pretty(&list).unwrap_or_else(|_| "[]".to_owned());
    body.push('\n');
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// `?format=` and `?generation=`.
fn format_of(query: &BTreeMap<String, String>) -> Result<Format, ApiError> {
    match query.get("format").map(String::as_str) {
        None | Some("oci") => Ok(Format::Oci),
        Some("spo") => Ok(Format::Spo),
        Some("moby") => Ok(Format::Moby),
        Some("k8s-snippet") => Ok(Format::K8sSnippet),
        Some(other) => Err(ApiError {
            status: StatusCode::BAD_REQUEST,
            message: format!("unknown format {other:?}; use oci, spo, moby or k8s-snippet"),
        }),
    }
}

fn check_names(names: &[(Kind, &str)]) -> Result<(), ApiError> {
    for (kind, name) in names {
        validate(*kind, name).map_err(|e| ApiError { status: StatusCode::BAD_REQUEST, message: e.to_string() })?;
    }
    Ok(())
}

/// Writes `learned` in `format`, answering 304 to a matching If-None-Match.
fn respond(
    learned: &Learned<'_>,
    format: Format,
    name: String,
    headers: &HeaderMap,
    extra: &[(&str, String)],
) -> Response {
    let assembled = profiles::profile(learned);
    let profile = assembled.profile();
    let mut annotations = BTreeMap::new();
    for (k, v) in extra {
        annotations.insert((*k).to_owned(), v.clone());
    }
    annotations.insert("recorder.dev/base-set-added".to_owned(), (assembled.base_added > 0).to_string());
    annotations
        .insert("recorder.dev/shutdown-set-added".to_owned(), assembled.completed.shutdown_set_applied.to_string());
    let written = match crate::profile::write::write(profile, format, &WriteOptions { name: Some(name), annotations }) {
        Ok(w) => w,
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    };
    let etag = format!("\"{:016x}\"", fnv1a(written.text.as_bytes()));
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let content_type = match format {
        Format::Oci | Format::Moby => "application/json",
        Format::Spo | Format::K8sSnippet => "application/yaml",
    };
    let mut response = ([(header::CONTENT_TYPE, content_type)], written.text).into_response();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// FNV-1a, for ETags (content identity, not security).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// The workload generation a `/v1/profiles/...` path names: the newest
/// unless `?generation=` asks for one.
fn workload_view(
    api: &Api,
    (namespace, workload, container): &(String, String, String),
    query: &BTreeMap<String, String>,
) -> Result<WorkloadView, ApiError> {
    check_names(&[(Kind::Namespace, namespace), (Kind::Object, workload), (Kind::Container, container)])?;
    let views = lock(api).views(unix_now(), api.stable_after);
    let mut matching: Vec<WorkloadView> = views
        .into_values()
        .filter(|v| {
            v.record.key.namespace == *namespace
                && v.record.key.workload == *workload
                && v.record.key.container == *container
        })
        .filter(|v| query.get("generation").is_none_or(|g| *g == v.record.image_ref))
        .collect();
    matching.sort_by_key(|v| v.record.last_new_call.max(v.record.first_seen));
    matching.pop().ok_or_else(|| ApiError {
        status: StatusCode::NOT_FOUND,
        message: format!("no workload {namespace}/{workload}/{container} learned on this node; see /v1/workloads"),
    })
}

async fn workload_profile(
    State(api): State<Api>,
    Path(names): Path<(String, String, String)>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let (view, format) = match workload_view(&api, &names, &query).and_then(|v| Ok((v, format_of(&query)?))) {
        Ok(found) => found,
        Err(e) => return e.into_response(),
    };
    let (namespace, workload, container) = names;
    let r = &view.record;
    let learned = Learned { calls: &r.calls, clean_stop_seen: r.clean_stop_seen, runtime_handler: &r.runtime_handler };
    let coverage = serde_json::to_string(&r.coverage).unwrap_or_default();
    respond(
        &learned,
        format,
        format!("{namespace}-{workload}-{container}"),
        &headers,
        &[
            ("recorder.dev/generation", r.image_ref.clone()),
            ("recorder.dev/state", view.state.as_str().to_owned()),
            ("recorder.dev/replicas", (r.pods_folded as usize + view.live_replicas).to_string()),
            ("spo.x-k8s.io/syscall-coverage", coverage),
        ],
    )
}

/// `/v1/profiles/.../by-exe`: which executables made which of the
/// workload's calls, in `record --by-exe`'s format. Information only: the
/// profile cannot differ per executable.
async fn workload_by_exe(
    State(api): State<Api>,
    Path(names): Path<(String, String, String)>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    if !api.by_exe {
        return error(
            StatusCode::NOT_FOUND,
            "this daemon does not attribute calls to executables; start it with --by-exe",
        );
    }
    let view = match workload_view(&api, &names, &query) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let (namespace, workload, container) = names;
    let label = format!("{namespace}/{workload}/{container}");
    let attribution = Attribution::new(
        format!("/v1/profiles/{label}?generation={}", view.record.image_ref),
        Some(label),
        view.record.executables,
    );
    ([(header::CONTENT_TYPE, "application/json")], AttributionFile::new(vec![attribution]).to_json()).into_response()
}

async fn pod_profile(
    State(api): State<Api>,
    Path((namespace, pod, container)): Path<(String, String, String)>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = check_names(&[(Kind::Namespace, &namespace), (Kind::Pod, &pod), (Kind::Container, &container)]) {
        return e.into_response();
    }
    let format = match format_of(&query) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let Some(calls) = lock(&api).pod_calls(&namespace, &pod, &container) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no pod container {namespace}/{pod}/{container} learned on this node"),
        );
    };
    let learned =
        Learned { calls: &calls.calls, clean_stop_seen: calls.clean_stop, runtime_handler: &calls.runtime_handler };
    respond(&learned, format, format!("{namespace}-{pod}-{container}"), &headers, &[])
}

/// Where the API listens, with a warning when that is not loopback.
pub fn warn_if_exposed(addr: &SocketAddr) {
    if !addr.ip().is_loopback() {
        tracing::warn!(
            "the API on {addr} is reachable from other hosts: anyone who can connect reads every workload's profile and names; bind 127.0.0.1 and use a Service or port-forward instead"
        );
    }
}
