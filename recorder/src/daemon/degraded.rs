//! What the daemon does when it cannot start for a reason a restart cannot
//! fix (a missing capability, no BTF, no bpffs, no cgroup v2), with
//! `--on-start-error stay`: it says why once, on stderr, then serves
//! `/healthz` (200: the process is fine, restarting it changes nothing) and
//! `/readyz` (503 with the reason) until SIGTERM. A DaemonSet then shows a
//! pod that is running but not ready, with the reason in its log and its
//! readiness probe, instead of a crash loop that restarts the same failure
//! with a growing back-off.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Router,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use tokio::signal::unix::{SignalKind, signal};

use super::{DaemonError, api};

/// Serves the degraded API on `listen` until SIGTERM or SIGINT. `reason` is
/// the one-line error that stopped the daemon.
pub fn serve(listen: SocketAddr, reason: String) -> Result<(), DaemonError> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| DaemonError::Listen { addr: listen, source })?;
        let reason = Arc::new(reason);
        let router = Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(not_recording))
            .fallback(not_recording)
            .with_state(reason);
        let mut sigterm = signal(SignalKind::terminate())?;
        let mut sigint = signal(SignalKind::interrupt())?;
        tokio::select! {
            () = api::serve(listener, router) => {}
            _ = sigterm.recv() => {}
            _ = sigint.recv() => {}
        }
        Ok(())
    })
}

async fn healthz() -> Response {
    (StatusCode::OK, "ok (not recording: see /readyz)\n").into_response()
}

async fn not_recording(State(reason): State<Arc<String>>) -> Response {
    let body = serde_json::json!({ "error": format!("not recording: {reason}") }).to_string();
    (StatusCode::SERVICE_UNAVAILABLE, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}
