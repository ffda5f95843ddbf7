//! Recording one example through the CRI: `recorder record --pod` is started before the pod
//! exists, the pod runs the server, its client does its work, and the container is stopped as
//! the kubelet would (StopContainer with a grace period), so the recording holds the whole life:
//! the runtime's start, serving, and the real graceful shutdown (no shutdown set is added).

use std::{
    io::Read as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail, ensure};
use recorder::cri::api::ContainerState;

use super::{GRACE_SECONDS, NAMESPACE, Workload};
use crate::{
    containers::Runtime,
    cri::{ContainerSpec, Node, Pods},
    recorder_bin,
    servers::{Guarded, free_port, wait_exit, wait_until},
};

/// One recording of one example under one runtime.
pub struct Recording {
    pub runtime: Runtime,
    /// The profile `record` wrote.
    pub profile: PathBuf,
    /// Its `--json-summary`.
    pub summary: serde_json::Value,
    /// `recorder record ...` as run, with the temporary paths replaced by `SOCKET` and `OUT`.
    pub command: Vec<String>,
    /// The container's command and arguments, with the port.
    pub container: Vec<String>,
    /// The client's report.
    pub client: String,
}

/// How long a recording waits for its pod to appear.
const WAIT_FOR_POD: &str = "60s";

/// Records `workload` in a pod under `runtime` on `node`; the profile and summary go to `out`.
pub fn record(
    node: &Node,
    pods: &Pods,
    workload: &Workload,
    runtime: Runtime,
    out: &Path,
) -> anyhow::Result<Recording> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let summary_path = out.join("summary.json");
    let args: Vec<String> = [
        "record",
        "--runtime-endpoint",
        "SOCKET",
        "--pod",
        workload.name,
        "-n",
        NAMESPACE,
        "--wait-timeout",
        WAIT_FOR_POD,
        "--json-summary",
        "OUT/summary.json",
        "-o",
        "OUT/",
    ]
    .map(str::to_owned)
    .to_vec();
    let out_text = out.display().to_string();
    let socket = node.containerd.address().display().to_string();
    let real: Vec<String> = args.iter().map(|a| a.replace("SOCKET", &socket).replace("OUT", &out_text)).collect();
    let child = Command::new(recorder_bin())
        .args(&real)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting recorder record")?;
    let mut recorder = Guarded::polite(child, libc::SIGINT);
    // The recorder must watch before the pod exists, or it misses the runtime's start.
    std::thread::sleep(Duration::from_millis(700));

    let port = free_port(19400);
    let (spec, _data) = (workload.container)(pods.work_dir(), port)?;
    let container = container_argv(&spec);
    let pod = pods.run_pod(workload.name, NAMESPACE, runtime)?;
    let id = pods.run_container(&pod, &spec)?;
    wait_ready(pods, workload, &id, port)?;
    let (tally, client) = (workload.client)(port);
    ensure!(
        tally.ok > 0 && tally.failed == 0,
        "{} client while recording under {runtime:?}: {} ok, {} failed: {:?}\n{client}",
        workload.name,
        tally.ok,
        tally.failed,
        tally.errors
    );
    let sent = Instant::now();
    pods.stop_container(&id, GRACE_SECONDS)?;
    let code = pods.wait_exited(&id, Duration::from_secs(5))?;
    let logs = pods.logs(&id).unwrap_or_default();
    ensure!(code == 0, "{} exited with {code} when stopped while recorded; logs:\n{logs}", workload.name);
    eprintln!("{} recorded under {runtime:?}: stopped in {:.3} s", workload.name, sent.elapsed().as_secs_f64());
    // The pod gone, the recording ends and writes the profile.
    pods.remove_pod(&pod)?;

    let Some((status, _)) = wait_exit(&mut recorder.child, Duration::from_secs(60)) else {
        bail!("recorder record did not end within 60 s of the pod's removal");
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = recorder.child.stderr.take() {
        pipe.read_to_string(&mut stderr).context("reading the recorder's stderr")?;
    }
    ensure!(status.success(), "recorder record failed ({status}):\n{stderr}");
    let profile = out.join(format!("{NAMESPACE}_{}_{}.json", workload.name, spec.name));
    ensure!(profile.exists(), "recorder record wrote no {}:\n{stderr}", profile.display());
    // The temporary output directory becomes `OUT`, as in the command.
    let summary = std::fs::read_to_string(&summary_path)
        .with_context(|| format!("reading {}", summary_path.display()))?
        .replace(&out_text, "OUT");
    let summary: serde_json::Value = serde_json::from_str(&summary).context("the JSON summary")?;
    ensure!(
        summary["provenance"]["shutdown_observed"] == true && summary["provenance"]["startup_observed"] == true,
        "the recording of {} must see its start and its shutdown:\n{stderr}",
        workload.name
    );
    Ok(Recording { runtime, profile, summary, command: args, container, client: client_summary(&client) })
}

/// Waits until the server answers on `port`; fails at once when its container exited.
pub fn wait_ready(pods: &Pods, workload: &Workload, id: &str, port: u16) -> anyhow::Result<()> {
    let mut exited = false;
    let ok = wait_until(Duration::from_secs(30), || {
        exited = pods.status(id).is_ok_and(|(s, _)| s.state() == ContainerState::ContainerExited);
        exited || (workload.ready)(port)
    });
    if exited || !ok {
        let logs = pods.logs(id).unwrap_or_default();
        bail!("{} did not come up on port {port} (exited: {exited}); logs:\n{logs}", workload.name);
    }
    Ok(())
}

/// The container's entrypoint (from its image when not overridden) and arguments.
fn container_argv(spec: &ContainerSpec) -> Vec<String> {
    let mut argv = if spec.command.is_empty() { vec![format!("(image {})", spec.image)] } else { spec.command.clone() };
    argv.extend(spec.args.iter().cloned());
    argv
}

/// The lines of a client's report that say how it went (wrk's totals, redis-benchmark's
/// rates, pgbench's results), without latency distributions.
pub fn client_summary(report: &str) -> String {
    let keep = |l: &&str| {
        [
            "requests in",
            "Requests/sec",
            "Socket errors",
            "Non-2xx",
            "requests per second",
            "number of transactions actually processed",
            "number of failed transactions",
            "tps =",
            "BGSAVE",
        ]
        .iter()
        .any(|k| l.contains(k))
    };
    report.lines().map(str::trim).filter(keep).collect::<Vec<_>>().join("\n")
}
