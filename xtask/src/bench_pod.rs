//! nginx in a CRI pod (private containerd, runc, host network) under wrk,
//! recorded with `recorder record --pod` and not: throughput and p99.

use std::{
    io::Read as _,
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{Context as _, Result};
use recorder_tests::{
    containers::Runtime,
    cri::{
        KUBEPODS, Node, Pods,
        images::{self, Image},
    },
};

use crate::{
    bench::{WrkResult, daemon_cpu, wrk},
    util,
};

const PORT: u16 = 18_085;

pub fn rounds(rounds: usize, seconds: u64) -> Result<Vec<(WrkResult, WrkResult)>> {
    let node = Node::start(&[Image::Nginx]).context("starting a private containerd for the pod benchmark")?;
    let pods = Pods::new(&node.containerd)?;
    let v2 = recorder_tests::containers::cgroup2_mount()?.context("no cgroup v2 mount")?;
    std::fs::create_dir_all(v2.join(KUBEPODS))?;
    let out_dir = tempfile::tempdir()?;
    let mut results = Vec::new();
    for round in 0..rounds {
        let plain = one(&pods, &format!("bench-plain-{round}"), seconds, None)?;
        let recorded = one(&pods, &format!("bench-rec-{round}"), seconds, Some((&node, out_dir.path())))?;
        eprintln!(
            "bench pod round {}/{rounds}: plain {:.0} req/s p99 {:.2} ms; recorded {:.0} req/s p99 {:.2} ms",
            round + 1,
            plain.rps,
            plain.p99_ms,
            recorded.rps,
            recorded.p99_ms
        );
        results.push((plain, recorded));
    }
    Ok(results)
}

fn one(pods: &Pods, name: &str, seconds: u64, record: Option<(&Node, &std::path::Path)>) -> Result<WrkResult> {
    let recorder = match record {
        Some((node, dir)) => {
            let child = Command::new(util::recorder_bin())
                .args(["record", "--pod", name, "-n", "bench", "--wait-timeout", "60s", "-o"])
                .arg(format!("{}/", dir.display()))
                .arg("--runtime-endpoint")
                .arg(node.containerd.address())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()?;
            std::thread::sleep(Duration::from_millis(700));
            Some(child)
        }
        None => None,
    };
    let pod = pods.run_pod(name, "bench", Runtime::Runc)?;
    let spec = images::nginx_container(pods.work_dir(), PORT)?;
    pods.run_container(&pod, &spec)?;
    images::wait_for_http(PORT, Duration::from_secs(10))?;
    let out = wrk(&format!("http://127.0.0.1:{PORT}/"), seconds);
    pods.remove_pod(&pod)?;
    let mut cpu = None;
    if let Some(mut child) = recorder {
        let mut stderr = String::new();
        if let Some(mut e) = child.stderr.take() {
            e.read_to_string(&mut stderr)?;
        }
        child.wait()?;
        cpu = daemon_cpu(&stderr);
    }
    let mut result = WrkResult::parse(&out?)?;
    result.daemon_cpu = cpu;
    Ok(result)
}
