//! Where the CRI socket is, and a gRPC channel over it.

use std::{
    io,
    os::unix::fs::FileTypeExt as _,
    path::{Path, PathBuf},
    time::Duration,
};

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

use super::CriError;

/// Sockets tried in order when no endpoint is given: containerd, then CRI-O (the same
/// defaults as crictl, minus dockershim and cri-dockerd, which the recorder does not support).
pub const DEFAULT_ENDPOINTS: [&str; 2] = ["/run/containerd/containerd.sock", "/var/run/crio/crio.sock"];

/// How long connecting to the socket may take. A local socket answers in microseconds; a
/// listener that never accepts (a hung daemon) must not hang the recorder.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one CRI call may take before it fails. containerd answers listing calls in
/// milliseconds even with hundreds of containers.
pub(super) const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// Resolves the socket to talk to: `given` (a path, or crictl's `unix:///path` form), which
/// must exist and be a socket, else the first of `candidates` that exists.
pub(super) fn resolve(given: Option<&Path>, candidates: &[&str]) -> Result<PathBuf, CriError> {
    let Some(given) = given else {
        return candidates
            .iter()
            .map(PathBuf::from)
            .find(|path| path.exists())
            .ok_or_else(|| CriError::NoSocket { tried: candidates.iter().map(PathBuf::from).collect() });
    };
    let path =
        given.to_str().and_then(|s| s.strip_prefix("unix://")).map_or_else(|| given.to_path_buf(), PathBuf::from);
    match std::fs::metadata(&path) {
        Ok(meta) if meta.file_type().is_socket() => Ok(path),
        Ok(_) => Err(CriError::NotASocket { path }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(CriError::SocketMissing { path }),
        Err(source) => Err(CriError::Stat { path, source }),
    }
}

/// Opens an HTTP/2 channel to the unix socket `path`. The URI is a placeholder that tonic
/// needs for request headers; every connection goes to `path`.
pub(super) async fn channel(path: &Path) -> Result<Channel, CriError> {
    let socket = path.to_path_buf();
    let connector = tower::service_fn(move |_: Uri| {
        let socket = socket.clone();
        async move { Ok::<_, io::Error>(TokioIo::new(UnixStream::connect(socket).await?)) }
    });
    Endpoint::from_static("http://cri.invalid")
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(CALL_TIMEOUT)
        .connect_with_connector(connector)
        .await
        .map_err(|source| CriError::Connect { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixListener;

    use super::*;

    #[test]
    fn nothing_found_names_every_path_tried() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.sock");
        let b = dir.path().join("b.sock");
        let candidates = [a.to_str().unwrap(), b.to_str().unwrap()];
        let err = resolve(None, &candidates).unwrap_err();
        assert!(matches!(&err, CriError::NoSocket { tried } if tried == &[a.clone(), b.clone()]));
        let msg = err.to_string();
        assert!(msg.contains(candidates[0]) && msg.contains(candidates[1]), "{msg}");
        assert!(msg.contains("--runtime-endpoint"), "{msg}");
    }

    #[test]
    fn first_existing_candidate_wins() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.sock");
        let b = dir.path().join("b.sock");
        let _listener = UnixListener::bind(&b).unwrap();
        let candidates = [a.to_str().unwrap(), b.to_str().unwrap()];
        assert_eq!(resolve(None, &candidates).unwrap(), b);
        let _listener_a = UnixListener::bind(&a).unwrap();
        assert_eq!(resolve(None, &candidates).unwrap(), a);
    }

    #[test]
    fn given_path_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.sock");
        let err = resolve(Some(&missing), &DEFAULT_ENDPOINTS).unwrap_err();
        assert!(matches!(&err, CriError::SocketMissing { path } if path == &missing));
        assert!(err.to_string().contains(missing.to_str().unwrap()), "{err}");
    }

    #[test]
    fn given_path_must_be_a_socket() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain-file");
        std::fs::write(&file, b"").unwrap();
        let err = resolve(Some(&file), &DEFAULT_ENDPOINTS).unwrap_err();
        assert!(matches!(&err, CriError::NotASocket { path } if path == &file));
    }

    #[test]
    fn crictl_unix_uri_form_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("cri.sock");
        let _listener = UnixListener::bind(&sock).unwrap();
        let uri = PathBuf::from(format!("unix://{}", sock.display()));
        assert_eq!(resolve(Some(&uri), &DEFAULT_ENDPOINTS).unwrap(), sock);
        assert_eq!(resolve(Some(&sock), &DEFAULT_ENDPOINTS).unwrap(), sock);
    }
}
