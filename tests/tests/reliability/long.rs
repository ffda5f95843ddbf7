//! The long run (`cargo xtask reliability --long`): the daemon under cgroup churn for
//! `RECORDER_RELIABILITY_MINUTES` (60 by default), its RSS, CPU and slot-map fill sampled
//! every `RECORDER_RELIABILITY_SAMPLE_SECONDS` (10) into `RECORDER_RELIABILITY_SAMPLES`
//! (one JSON object per line), which xtask plots.

use std::{
    fs,
    io::Write as _,
    time::{Duration, Instant},
};

use recorder_tests::{
    daemon::{Daemon, DaemonEnv, cpu_ticks, metric, remove_cgroup, run_in_cgroup},
    minimal_program, skip_bpf_tests,
};
use serde_json::json;

use crate::{
    load::{EXTRAS, daemon_options},
    report,
};

fn env_number(name: &str, default: f64) -> f64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
#[ignore = "runs for an hour by default: cargo xtask reliability --long"]
fn long_churn() {
    if skip_bpf_tests() {
        return;
    }
    let started = Instant::now();
    let minutes = env_number("RECORDER_RELIABILITY_MINUTES", 60.0);
    let every = Duration::from_secs_f64(env_number("RECORDER_RELIABILITY_SAMPLE_SECONDS", 10.0));
    let mut samples = std::env::var_os("RECORDER_RELIABILITY_SAMPLES")
        .map(|p| fs::OpenOptions::new().create(true).truncate(true).write(true).open(p).expect("samples file"));
    let env = DaemonEnv::new("rel-long");
    let mut daemon = Daemon::start(&env, &daemon_options(&env, "node", &[]));
    let parent = env.parent_dir();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let end = started + Duration::from_secs_f64(minutes * 60.0);
    let (mut churned, mut next_sample, mut last_ticks, mut last_at) =
        (0usize, Instant::now(), cpu_ticks(daemon.pid()), Instant::now());
    let (mut rss_max, mut rss_first, mut rss_last, mut count) = (0u64, None, 0u64, 0usize);
    let mut live = std::collections::VecDeque::new();
    while Instant::now() < end {
        // Churn: a new cgroup used and kept for a while (up to 200 live), the oldest removed.
        let dir = parent.join(format!("l{churned}"));
        fs::create_dir(&dir).expect("mkdir");
        let prog = minimal_program(Some(EXTRAS[churned % EXTRAS.len()].0), None);
        run_in_cgroup(&dir, prog.to_str().expect("utf8"), &[]);
        live.push_back(dir);
        if live.len() > 200 {
            remove_cgroup(&live.pop_front().expect("oldest"));
        }
        churned += 1;
        if Instant::now() >= next_sample {
            let m = daemon.metrics();
            let (ticks, at) = (cpu_ticks(daemon.pid()), Instant::now());
            let cpu = (ticks - last_ticks) as f64 / hz / at.duration_since(last_at).as_secs_f64().max(1e-3);
            (last_ticks, last_at) = (ticks, at);
            let rss = daemon.rss_kib();
            rss_first.get_or_insert(rss);
            (rss_max, rss_last, count) = (rss_max.max(rss), rss, count + 1);
            let sample = json!({
                "t": started.elapsed().as_secs_f64(), "rss_kib": rss, "cpu_percent": cpu * 100.0,
                "slots_used": metric(&m, "recorder_slots_used"), "slots_capacity": metric(&m, "recorder_slots_capacity"),
                "churned": churned,
            });
            if let Some(f) = samples.as_mut() {
                writeln!(f, "{sample}").expect("sample");
            }
            next_sample = at + every;
        }
    }
    live.iter().for_each(|d| remove_cgroup(d));
    let figures = json!({
        "minutes": minutes, "cgroups_churned": churned, "samples": count, "rss_first_kib": rss_first,
        "rss_max_kib": rss_max, "rss_last_kib": rss_last,
        "persist_errors": metric(&daemon.metrics(), "recorder_persist_errors_total"),
    });
    report("long_churn", started, figures.clone());
    assert_eq!(metric(&daemon.metrics(), "recorder_persist_errors_total"), 0.0, "{figures}");
    assert!(daemon.terminate().success(), "{}", daemon.log_text());
    env.unpin("node");
}
