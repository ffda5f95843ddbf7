//! deploy/kubernetes, offline: every resource validates against the
//! Kubernetes schemas (kubernetes-validate, pinned, strict), rendered as a
//! whole with `kubectl kustomize` where kubectl exists, file by file
//! otherwise; and the DaemonSet keeps the least-privilege promises the
//! README makes. Needs neither root nor a cluster.

use std::{collections::BTreeSet, path::Path, process::Command};

use recorder_tests::deploy::{
    IMAGE_NAME, args, container, daemonset, deploy_dir, host_mounts, kubernetes_validate, yaml_documents,
};
use serde_json::Value;

/// The oldest Kubernetes still supported upstream when this was written,
/// and the newest the pinned kubernetes-validate knows.
const VERSIONS: [&str; 2] = ["1.32.0", "1.37.0"];

fn validate(files: &[&Path]) {
    for version in VERSIONS {
        let out = Command::new(kubernetes_validate())
            .args(["--strict", "--kubernetes-version", version])
            .args(files)
            .output()
            .expect("kubernetes-validate runs");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "kubernetes-validate {version} failed:\n{text}");
        assert!(!text.contains("ERROR"), "kubernetes-validate {version}:\n{text}");
        // Only the ServiceMonitor (a CRD) and kustomize's own files have no
        // schema; everything else must have been checked.
        for line in text.lines().filter(|l| l.contains("Couldn't find schema")) {
            assert!(
                line.contains("ServiceMonitor") || line.contains("Kustomization") || line.contains("Component"),
                "unvalidated resource: {line}"
            );
        }
    }
}

/// Files listed under `resources:` of a kustomization.
fn resources_of(kustomization: &Path) -> Vec<std::path::PathBuf> {
    let doc = yaml_documents(kustomization).remove(0);
    let dir = kustomization.parent().expect("dir");
    doc["resources"].as_array().expect("resources").iter().map(|r| dir.join(r.as_str().expect("str"))).collect()
}

#[test]
fn every_resource_validates_against_the_kubernetes_schemas() {
    let k8s = deploy_dir().join("kubernetes");
    let base = resources_of(&k8s.join("base/kustomization.yaml"));
    let listed: BTreeSet<_> = base.iter().cloned().collect();
    let on_disk: BTreeSet<_> = std::fs::read_dir(k8s.join("base"))
        .expect("base/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.file_name().is_some_and(|n| n != "kustomization.yaml"))
        .collect();
    assert_eq!(listed, on_disk, "base/kustomization.yaml lists exactly the files in base/");
    let monitor = k8s.join("components/servicemonitor/servicemonitor.yaml");
    let mut files: Vec<&Path> = base.iter().map(|p| p.as_path()).collect();
    files.push(&monitor);
    validate(&files);

    // The kustomizations as kubectl applies them, when kubectl is here.
    if Command::new("kubectl").arg("version").arg("--client").output().is_ok_and(|o| o.status.success()) {
        let scratch = tempfile::tempdir().expect("tempdir");
        for (name, dir) in [("base", k8s.clone()), ("with-servicemonitor", k8s.join("overlays/with-servicemonitor"))] {
            let out = Command::new("kubectl").arg("kustomize").arg(&dir).output().expect("kubectl kustomize");
            assert!(out.status.success(), "kubectl kustomize {name}: {}", String::from_utf8_lossy(&out.stderr));
            let rendered = scratch.path().join(format!("{name}.yaml"));
            std::fs::write(&rendered, &out.stdout).expect("write");
            validate(&[&rendered]);
            let kinds: BTreeSet<String> =
                yaml_documents(&rendered).iter().map(|d| d["kind"].as_str().expect("kind").to_owned()).collect();
            let mut expected: BTreeSet<String> =
                ["Namespace", "ServiceAccount", "DaemonSet", "Service"].map(String::from).into();
            if name == "with-servicemonitor" {
                expected.insert("ServiceMonitor".to_owned());
            }
            assert_eq!(kinds, expected, "{name} renders exactly these kinds (no RBAC)");
        }
    } else {
        eprintln!("kubectl is not installed: validated the resource files one by one");
    }
}

fn caps(security: &Value, key: &str) -> BTreeSet<String> {
    security["capabilities"][key]
        .as_array()
        .map(|a| a.iter().map(|c| c.as_str().expect("cap").to_owned()).collect())
        .unwrap_or_default()
}

#[test]
fn the_daemonset_asks_for_the_least_the_kernel_requires() {
    let ds = daemonset();
    let pod = &ds["spec"]["template"]["spec"];
    for key in ["hostPID", "hostNetwork", "hostIPC"] {
        assert_eq!(pod[key], false, "{key} is false");
    }
    assert_eq!(pod["automountServiceAccountToken"], false, "no API server token");

    let recorder = container(&ds, "recorder");
    let security = &recorder["securityContext"];
    assert_eq!(security["privileged"], false);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(caps(security, "drop"), BTreeSet::from(["ALL".to_owned()]));
    assert_eq!(caps(security, "add"), BTreeSet::from(["BPF".to_owned(), "PERFMON".to_owned()]));
    assert_eq!(security["seccompProfile"]["type"], "Localhost");
    let localhost = security["seccompProfile"]["localhostProfile"].as_str().expect("localhostProfile");

    // The init container installs exactly that profile, with nothing added.
    let install = container(&ds, "install-profile");
    let install_security = &install["securityContext"];
    assert_eq!(install_security["allowPrivilegeEscalation"], false);
    assert_eq!(install_security["readOnlyRootFilesystem"], true);
    assert_eq!(caps(install_security, "drop"), BTreeSet::from(["ALL".to_owned()]));
    assert!(caps(install_security, "add").is_empty());
    let install_args = args(install);
    let target = install_args.last().expect("convert's -o target");
    let seccomp_mount =
        host_mounts(&ds, install).into_iter().find(|m| target.starts_with(m.container_path.to_str().unwrap()));
    let seccomp_mount = seccomp_mount.expect("the profile is written into a host mount");
    let relative = Path::new(target).strip_prefix(&seccomp_mount.container_path).expect("below the mount");
    let host_file = seccomp_mount.host_path.join(relative);
    assert_eq!(
        host_file,
        Path::new("/var/lib/kubelet/seccomp").join(localhost),
        "the init container writes the profile where the kubelet resolves localhostProfile"
    );

    // Mounts: read-only except bpffs (pins) and the state dir (snapshots);
    // the kubelet's seccomp root is not mounted in the daemon.
    let mounts = host_mounts(&ds, recorder);
    let writable: BTreeSet<&str> = mounts.iter().filter(|m| !m.read_only).map(|m| m.volume.as_str()).collect();
    assert_eq!(writable, BTreeSet::from(["bpffs", "state"]));
    assert!(mounts.iter().all(|m| !m.host_path.starts_with("/var/lib/kubelet")), "{mounts:?}");
    assert!(mounts.iter().all(|m| !m.host_path.starts_with("/proc")), "no host /proc: {mounts:?}");
    let daemon_args = args(recorder);
    let arg = |flag: &str| {
        daemon_args
            .iter()
            .find_map(|a| a.strip_prefix(&format!("{flag}=")))
            .unwrap_or_else(|| panic!("the daemon gets {flag}"))
    };
    let mount_of = |volume: &str| mounts.iter().find(|m| m.volume == volume).expect("mount").container_path.clone();
    assert_eq!(Path::new(arg("--host-cgroup-root")), mount_of("host-cgroup"));
    assert_eq!(Path::new(arg("--pin-dir")).parent(), Some(mount_of("bpffs").as_path()));
    assert_eq!(Path::new(arg("--state-dir")), mount_of("state"));
    assert_eq!(Path::new(arg("--runtime-endpoint")), mount_of("cri-socket"));
    assert_eq!(arg("--on-start-error"), "stay", "a missing capability makes a not-ready pod, not a crash loop");

    // Probes on the API's health endpoints, on the port it listens on.
    assert_eq!(recorder["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(recorder["readinessProbe"]["httpGet"]["path"], "/readyz");
    let port = recorder["ports"][0]["containerPort"].as_u64().expect("port");
    assert!(arg("--listen").ends_with(&format!(":{port}")));
    assert!(recorder["resources"]["limits"]["memory"].is_string(), "a memory limit");
    assert!(recorder["resources"]["requests"]["memory"].is_string(), "a memory request");

    // The image is the one `cargo xtask image` builds.
    assert_eq!(recorder["image"], IMAGE_NAME);
    assert_eq!(install["image"], IMAGE_NAME);
}

#[test]
fn the_service_and_servicemonitor_select_the_daemon() {
    let ds = daemonset();
    let labels = &ds["spec"]["template"]["metadata"]["labels"];
    let k8s = deploy_dir().join("kubernetes");
    let service = yaml_documents(&k8s.join("base/service.yaml")).remove(0);
    for (k, v) in service["spec"]["selector"].as_object().expect("selector") {
        assert_eq!(&labels[k], v, "the Service selects the DaemonSet's pods by {k}");
    }
    let port_name = service["spec"]["ports"][0]["targetPort"].as_str().expect("named targetPort");
    let recorder = container(&ds, "recorder");
    assert_eq!(recorder["ports"][0]["name"], port_name);
    let monitor = yaml_documents(&k8s.join("components/servicemonitor/servicemonitor.yaml")).remove(0);
    for (k, v) in monitor["spec"]["selector"]["matchLabels"].as_object().expect("matchLabels") {
        let service_label = service["metadata"]["labels"].get(k).cloned().unwrap_or_else(|| {
            // Labels the kustomization adds to every resource.
            let kustomization = yaml_documents(&k8s.join("base/kustomization.yaml")).remove(0);
            kustomization["labels"][0]["pairs"][k].clone()
        });
        assert_eq!(&service_label, v, "the ServiceMonitor selects the Service by {k}");
    }
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], service["spec"]["ports"][0]["name"]);
}
