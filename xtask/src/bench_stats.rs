//! The sys_enter program's own run time per call, from the kernel's BPF
//! statistics (`kernel.bpf_stats_enabled`, read from the program fd's
//! fdinfo). Wall-clock loops on a shared VM are noisy; this isolates what
//! the program body costs. Measured in separate runs: the statistics add
//! their own overhead (two clock reads per call).

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::util;

const SYSCTL: &str = "/proc/sys/kernel/bpf_stats_enabled";

/// (label, ns per call) for the empty program, the recorder with the loop
/// elsewhere, and the recorder recording the loop.
pub fn measure(program: &Path, n: u64) -> Result<Vec<(&'static str, f64)>> {
    let before = std::fs::read_to_string(SYSCTL).unwrap_or_else(|_| "0".to_owned());
    std::fs::write(SYSCTL, "1").context("enabling kernel.bpf_stats_enabled")?;
    let result = measure_all(program, n);
    let _ = std::fs::write(SYSCTL, before.trim());
    result
}

fn measure_all(program: &Path, n: u64) -> Result<Vec<(&'static str, f64)>> {
    let recorder = util::recorder_bin();
    let n = n.to_string();
    let run_loop = || util::output(Command::new("taskset").args(["-c", "1"]).arg(program).arg(&n));
    let mut out = Vec::new();

    let floor = spawn(&mut util::xtask_floor())?;
    std::thread::sleep(Duration::from_millis(700));
    run_loop()?;
    out.push(("empty program (floor)", per_call(&floor)?));
    stop(floor)?;

    let other = spawn(Command::new(&recorder).args(["record", "-q", "-o", "/dev/null", "--", "sleep", "3600"]))?;
    std::thread::sleep(Duration::from_millis(700));
    run_loop()?;
    out.push(("recorder, loop in another cgroup", per_call(&other)?));
    stop(other)?;

    let done = tempfile::NamedTempFile::new()?;
    let script = format!("taskset -c 1 {} {n} > {}; sleep 3600", program.display(), done.path().display());
    let recorded = spawn(Command::new(&recorder).args(["record", "-q", "-o", "/dev/null", "--", "sh", "-c", &script]))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::metadata(done.path()).map(|m| m.len()).unwrap_or(0) == 0 {
        if Instant::now() > deadline {
            bail!("the recorded loop did not finish");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    out.push(("recorder, loop recorded", per_call(&recorded)?));
    stop(recorded)?;
    Ok(out)
}

fn spawn(cmd: &mut Command) -> Result<Child> {
    Ok(cmd.stdout(Stdio::null()).spawn()?)
}

fn stop(mut child: Child) -> Result<()> {
    // SAFETY: kill(2) on our own unreaped child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    child.wait()?;
    Ok(())
}

/// run_time_ns / run_cnt of the busiest BPF program the process holds.
fn per_call(child: &Child) -> Result<f64> {
    let dir = format!("/proc/{}/fdinfo", child.id());
    let mut best: Option<(u64, u64)> = None;
    for entry in std::fs::read_dir(&dir)?.flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path()) else { continue };
        if !text.contains("prog_type") {
            continue;
        }
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim_start_matches([':', '\t', ' ']).trim().parse::<u64>().ok())
        };
        if let (Some(time), Some(count)) = (field("run_time_ns"), field("run_cnt"))
            && best.is_none_or(|(_, c)| count > c)
        {
            best = Some((time, count));
        }
    }
    match best {
        Some((time, count)) if count > 0 => Ok(time as f64 / count as f64),
        _ => bail!("no BPF program with statistics in {dir}"),
    }
}
