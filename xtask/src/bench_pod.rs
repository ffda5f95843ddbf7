//! nginx in a CRI pod (private containerd, runc, host network) under wrk,
//! recorded with `recorder record --pod` and not: throughput and p99. The
//! pod harness lives in the tests crate, so this runs its ignored
//! `bench_pod` test and reads the `BENCH_POD` lines it prints.

use anyhow::{Context as _, Result};

use crate::{
    bench::{NginxRound, WrkResult, daemon_cpu},
    util,
};

pub fn rounds(rounds: usize, seconds: u64) -> Result<Vec<NginxRound>> {
    let out = util::output(
        util::cargo()
            .args([
                "test",
                "--release",
                "-p",
                "recorder-tests",
                "--test",
                "bench_pod",
                "--",
                "--ignored",
                "--nocapture",
            ])
            .env("RECORDER_BIN", util::recorder_bin())
            .env("BENCH_WRK_SECONDS", seconds.to_string())
            .env("BENCH_POD_ROUNDS", rounds.to_string()),
    )?;
    let mut plain = Vec::new();
    let mut recorded = Vec::new();
    for line in out.lines().filter_map(|l| l.strip_prefix("BENCH_POD ")) {
        let v: serde_json::Value = serde_json::from_str(line).context("BENCH_POD line")?;
        let mut result = WrkResult::parse(v["wrk"].as_str().unwrap_or_default())?;
        if v["recorded"].as_bool() == Some(true) {
            result.daemon_cpu = daemon_cpu(v["recorder_stderr"].as_str().unwrap_or_default());
            recorded.push(result);
        } else {
            plain.push(result);
        }
    }
    let pairs: Vec<_> = plain.into_iter().zip(recorded).collect();
    for (i, (p, r)) in pairs.iter().enumerate() {
        eprintln!(
            "bench pod round {}/{rounds}: plain {:.0} req/s p99 {:.2} ms; recorded {:.0} req/s p99 {:.2} ms",
            i + 1,
            p.rps,
            p.p99_ms,
            r.rps,
            r.p99_ms
        );
    }
    anyhow::ensure!(!pairs.is_empty(), "the pod benchmark printed no results");
    Ok(pairs.into_iter().map(|(plain, recorded)| NginxRound { plain, floor: None, recorded }).collect())
}
