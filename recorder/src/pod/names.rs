//! Names that come from the cluster (namespace, pod, container) become file
//! names and paths only after validation: in a multi-tenant cluster they are
//! attacker-controlled, and `../../etc/x` must never leave the output root.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{kind} name {name:?} is not a valid Kubernetes name (lowercase letters, digits, '-' and '.', at most 253 characters); refusing to use it in a path")]
pub struct NameError {
    pub kind: &'static str,
    pub name: String,
}

/// A DNS-1123 subdomain, which every namespace, pod and container name in
/// Kubernetes is. Anything else (a `/`, `..`, upper case, NUL) is refused.
pub fn validate(kind: &'static str, name: &str) -> Result<(), NameError> {
    let bytes = name.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 253
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'.')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        && !name.contains("..");
    if ok { Ok(()) } else { Err(NameError { kind, name: name.to_owned() }) }
}

/// `<namespace>_<pod>_<container>.json` (`_` cannot occur in the names).
pub fn output_file_name(namespace: &str, pod: &str, container: &str) -> Result<String, NameError> {
    validate("namespace", namespace)?;
    validate("pod", pod)?;
    validate("container", container)?;
    Ok(format!("{namespace}_{pod}_{container}.json"))
}

/// Where `--install` writes: `<root>/recorder/<namespace>/<pod>/<container>.json`.
pub fn install_path(root: &Path, namespace: &str, pod: &str, container: &str) -> Result<PathBuf, NameError> {
    validate("namespace", namespace)?;
    validate("pod", pod)?;
    validate("container", container)?;
    Ok(root.join("recorder").join(namespace).join(pod).join(format!("{container}.json")))
}

/// The `localhostProfile` the kubelet resolves relative to its seccomp root.
pub fn localhost_profile(namespace: &str, pod: &str, container: &str) -> String {
    format!("recorder/{namespace}/{pod}/{container}.json")
}

/// The securityContext snippet to paste into the container spec.
pub fn snippet(namespace: &str, pod: &str, container: &str) -> String {
    format!(
        "# container {container} of pod {namespace}/{pod}:\nsecurityContext:\n  seccompProfile:\n    type: Localhost\n    localhostProfile: {}\n",
        localhost_profile(namespace, pod, container)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_never_become_paths() {
        for bad in ["../../etc/x", "..", "a/b", "", "UPPER", "a..b", "-a", "a-", "x\0y", "a_b"] {
            assert!(validate("pod", bad).is_err(), "{bad:?}");
            assert!(install_path(Path::new("/var/lib/kubelet/seccomp"), "default", bad, "c").is_err());
            assert!(output_file_name("default", "p", bad).is_err());
        }
    }

    #[test]
    fn valid_names_make_the_documented_paths() {
        let p = install_path(Path::new("/var/lib/kubelet/seccomp"), "default", "nginx", "web").expect("valid");
        assert_eq!(p, Path::new("/var/lib/kubelet/seccomp/recorder/default/nginx/web.json"));
        assert_eq!(output_file_name("kube-system", "a.b", "c-1").expect("valid"), "kube-system_a.b_c-1.json");
        assert!(snippet("default", "nginx", "web").contains("localhostProfile: recorder/default/nginx/web.json"));
    }
}
