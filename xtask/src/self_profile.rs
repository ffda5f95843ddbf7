//! `cargo xtask self-profile`: deploy/recorder-seccomp.json, the daemon's
//! own seccomp profile, recorded from the daemon doing its whole job. The
//! cycle needs the tests crate's private containerd and pod harness, so
//! this runs its ignored `regenerate` test (tests/tests/self_profile.rs)
//! and reads the lines it prints.

use anyhow::{Context as _, Result};

use crate::util;

pub fn run() -> Result<()> {
    let target = util::workspace_root().join("deploy/recorder-seccomp.json");
    let out = util::output(
        util::cargo()
            .args(["test", "-p", "recorder-tests", "--test", "self_profile", "--"])
            .args(["--ignored", "--exact", "regenerate", "--nocapture", "--test-threads=1"])
            .env("RECORDER_BIN", util::static_recorder_bin())
            .env("RECORDER_SELF_PROFILE_OUT", &target),
    )
    .context("recording the daemon's own profile")?;
    // libtest may print "test regenerate ... " on the same line first.
    let value = |key: &str| out.lines().find_map(|l| l.split_once(key).map(|(_, v)| v.trim().to_owned()));
    let names = value("SELF_PROFILE_NAMES ").unwrap_or_else(|| "?".to_owned());
    eprintln!("xtask self-profile: wrote {} ({names} syscalls)", target.display());
    if let Some(line) = value("SELF_PROFILE_MEMORY ") {
        let v: serde_json::Value = serde_json::from_str(&line).context("SELF_PROFILE_MEMORY line")?;
        let kib = |key: &str| v[key].as_u64().unwrap_or(0);
        util::write_benchmarks_section(
            "Daemon memory",
            &format!(
                "Written by `cargo xtask self-profile`: `recorder daemon` (static build) after a pod's whole life \
                 and every API request, on a private containerd, just before SIGTERM.\n\n\
                 | measure | KiB | MiB |\n|---|---:|---:|\n\
                 | peak resident set (VmHWM) | {} | {:.1} |\n\
                 | resident set (VmRSS) | {} | {:.1} |\n\n\
                 The DaemonSet requests 48Mi and limits memory at 128Mi: its pod's memory cgroup also holds \
                 the BPF maps (charged to it on this kernel; `deploy_pod` prints the pod's peak as \
                 DEPLOY_POD_MEMORY, about 39 MiB), plus room for many more workloads (each learned workload \
                 generation is a few KiB; snapshots are built in memory).\n",
                kib("vmhwm_kib"),
                kib("vmhwm_kib") as f64 / 1024.0,
                kib("vmrss_kib"),
                kib("vmrss_kib") as f64 / 1024.0,
            ),
        )?;
    }
    Ok(())
}
