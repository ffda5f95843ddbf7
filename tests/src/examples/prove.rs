//! Proving a profile: a fresh pod runs the workload under it (a Localhost seccomp profile, the
//! runtime enforcing it), the workload's own client gets no error, and StopContainer with a
//! grace period ends it by itself, cleanly and well within the grace period.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{bail, ensure};

use super::{GRACE_SECONDS, NAMESPACE, STOP_DEADLINE_SECONDS, Workload, record::client_summary};
use crate::{
    containers::Runtime,
    cri::{ContainerSpec, Pods, Seccomp},
    servers::free_port,
};

/// What one proof saw.
pub struct Proof {
    pub runtime: Runtime,
    /// Client requests (wrk), benchmarks (redis-benchmark) or runs (pgbench) that succeeded.
    pub client_ok: u64,
    /// The client's report, shortened.
    pub client: String,
    /// From StopContainer to the container's exit.
    pub stop_seconds: f64,
    pub exit_code: i32,
}

/// Runs `workload` under `profile` in a new pod under `runtime`; fails unless its client has
/// no error and it stops by itself on SIGTERM with exit status 0 within
/// [`STOP_DEADLINE_SECONDS`], its log saying so, and nothing in its log says a call was not
/// permitted.
pub fn prove(pods: &Pods, workload: &Workload, runtime: Runtime, profile: &Path) -> anyhow::Result<Proof> {
    let port = free_port(19450);
    let (spec, _data) = (workload.container)(pods.work_dir(), port)?;
    let spec = ContainerSpec { seccomp: Some(Seccomp::Localhost(profile.to_path_buf())), ..spec };
    let pod = pods.run_pod(&format!("{}-proof", workload.name), NAMESPACE, runtime)?;
    let id = pods.run_container(&pod, &spec)?;
    super::record::wait_ready(pods, workload, &id, port)?;
    let (tally, report) = (workload.client)(port);
    let what = format!("{} under {} ({runtime:?})", workload.name, profile.display());
    if tally.failed > 0 || tally.ok == 0 {
        let logs = pods.logs(&id).unwrap_or_default();
        bail!("{what}: the client had {} failures: {:?}\n{report}\nlogs:\n{logs}", tally.failed, tally.errors);
    }
    let sent = Instant::now();
    pods.stop_container(&id, GRACE_SECONDS)?;
    let stop_seconds = sent.elapsed().as_secs_f64();
    let exit_code = pods.wait_exited(&id, Duration::from_secs(5))?;
    let logs = pods.logs(&id).unwrap_or_default();
    ensure!(
        stop_seconds < STOP_DEADLINE_SECONDS,
        "{what}: StopContainer ({GRACE_SECONDS} s grace) took {stop_seconds:.1} s: its shutdown is denied; logs:\n{logs}"
    );
    ensure!(exit_code == 0, "{what}: exited with {exit_code} on SIGTERM; logs:\n{logs}");
    for line in workload.stop_log {
        ensure!(logs.contains(line), "{what}: the log lacks {line:?} after SIGTERM; logs:\n{logs}");
    }
    ensure!(!logs.contains("Operation not permitted"), "{what}: a call was denied; logs:\n{logs}");
    pods.remove_pod(&pod)?;
    eprintln!("{what}: client ok ({} ok), stopped in {stop_seconds:.3} s, exit {exit_code}", tally.ok);
    Ok(Proof { runtime, client_ok: tally.ok, client: client_summary(&report), stop_seconds, exit_code })
}
