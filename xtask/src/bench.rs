//! `cargo xtask bench`: side-by-side costs in one run, written to BENCHMARKS.md.
//!
//! Null-syscall loop (getppid) under: no tracing; an empty program on the same
//! hook (the floor); the recorder recording the loop; the recorder loaded
//! while the loop runs in an unrecorded cgroup; `strace -f`. Then nginx with
//! wrk on loopback, with and without recording. Runs are interleaved so drift
//! hits every scenario alike; medians are reported.

use std::{
    fmt::Write as _,
    io::{BufRead as _, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{Context as _, Result, bail};

use crate::{
    nginx::{Proc, Site},
    util,
};

/// The CPU the loop is pinned to.
const LOOP_CPU: &str = "1";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    NoTracing,
    Floor,
    Recorded,
    Unrecorded,
    Strace,
    // The second table: recording modes, and 32-bit (ia32) tasks.
    RecordedArgs,
    RecordedByExe,
    RecordedLearn,
    NoTracing32,
    Floor32,
    Recorded32,
    // Learn mode's own hook on a task under a (permissive) seccomp filter.
    Filtered,
    FilteredLearn,
}

impl Scenario {
    const ALL: [Scenario; 5] =
        [Scenario::NoTracing, Scenario::Floor, Scenario::Recorded, Scenario::Unrecorded, Scenario::Strace];
    /// What each recording mode adds, and what a 32-bit task costs (its
    /// ABI is classified only on a miss of the per-CPU task cache).
    const MODES: [Scenario; 8] = [
        Scenario::RecordedArgs,
        Scenario::RecordedByExe,
        Scenario::RecordedLearn,
        Scenario::NoTracing32,
        Scenario::Floor32,
        Scenario::Recorded32,
        Scenario::Filtered,
        Scenario::FilteredLearn,
    ];

    fn label(self) -> &'static str {
        match self {
            Scenario::NoTracing => "no tracing",
            Scenario::Floor => "empty program on sys_enter (floor)",
            Scenario::Recorded => "recorder, loop recorded",
            Scenario::Unrecorded => "recorder loaded, loop in another cgroup",
            Scenario::Strace => "strace -f",
            Scenario::RecordedArgs => "recorder --args, loop recorded",
            Scenario::RecordedByExe => "recorder --by-exe, loop recorded",
            Scenario::RecordedLearn => "recorder --learn, loop recorded (no filter on it)",
            Scenario::NoTracing32 => "32-bit loop, no tracing",
            Scenario::Floor32 => "32-bit loop, empty program on sys_enter (floor)",
            Scenario::Recorded32 => "32-bit loop, recorder, loop recorded",
            Scenario::Filtered => "loop under an allow-all seccomp filter (`recorder run`), no tracing",
            Scenario::FilteredLearn => "loop under the same filter, `recorder run --learn`",
        }
    }

    /// The flags `record` gets in this scenario.
    fn record_flags(self) -> &'static [&'static str] {
        match self {
            Scenario::RecordedArgs => &["--args"],
            Scenario::RecordedByExe => &["--by-exe", "/dev/null"],
            Scenario::RecordedLearn => &["--learn"],
            _ => &[],
        }
    }

    fn is_32bit(self) -> bool {
        matches!(self, Scenario::NoTracing32 | Scenario::Floor32 | Scenario::Recorded32)
    }
}

struct Sample {
    ns: f64,
    daemon_cpu: Option<f64>,
    /// `run --learn`'s report: which hook saw denials.
    learn_hook: Option<String>,
}

pub fn run(iterations: u64, runs: usize, wrk_seconds: u64) -> Result<()> {
    let scratch = tempfile::Builder::new().prefix("recorder-bench.").tempdir()?;
    let program = scratch.path().join("null_syscall");
    let source = util::workspace_root().join("xtask/bench/null_syscall.c");
    util::compile_c(&source, &program, &["-O2"])?;
    // The same loop as an ia32 program (gcc-multilib): getppid through the
    // compat entry.
    let program32 = scratch.path().join("null_syscall32");
    util::compile_c(&source, &program32, &["-O2", "-m32"])?;
    // A filter that allows everything: what learn mode costs a task that
    // runs under a profile, when nothing is denied.
    let allow_all = scratch.path().join("allow-all.json");
    std::fs::write(&allow_all, "{\"defaultAction\": \"SCMP_ACT_ALLOW\"}\n")?;

    let mut samples: Vec<(Scenario, Vec<Sample>)> =
        Scenario::ALL.iter().chain(Scenario::MODES.iter()).map(|s| (*s, Vec::new())).collect();
    for round in 0..runs {
        for (scenario, list) in &mut samples {
            // strace is ~500x slower; fewer iterations give the same per-call mean.
            let n = if *scenario == Scenario::Strace { (iterations / 200).max(1000) } else { iterations };
            let program = if scenario.is_32bit() { &program32 } else { &program };
            let sample = loop_once(*scenario, program, n, &allow_all)?;
            eprintln!("bench round {}/{runs}: {:<42} {:>10.1} ns/call", round + 1, scenario.label(), sample.ns);
            list.push(sample);
        }
    }

    let program_cost = crate::bench_stats::measure(&program, iterations)?;
    let nginx = nginx_rounds(3, wrk_seconds)?;
    let pod = crate::bench_pod::rounds(2, wrk_seconds)?;
    let mut report = render(&samples, &program_cost, &nginx, &pod, iterations, runs, wrk_seconds)?;
    report.push_str(&daemon_memory()?);
    let path = util::workspace_root().join("BENCHMARKS.md");
    // Sections other commands write (the image, the daemon's memory) stay.
    let previous = std::fs::read_to_string(&path).unwrap_or_default();
    let report = util::keep_other_sections(&report, &previous);
    std::fs::write(&path, &report).with_context(|| format!("writing {}", path.display()))?;
    println!("{report}");
    eprintln!("wrote {}", path.display());
    Ok(())
}

fn loop_once(scenario: Scenario, program: &Path, n: u64, allow_all: &Path) -> Result<Sample> {
    let recorder = util::recorder_bin();
    let n_arg = n.to_string();
    // Pinned to one CPU: the loop never migrates, so per-CPU state stays warm
    // and the other core absorbs the daemon and background noise.
    let loop_cmd = || {
        let mut c = Command::new("taskset");
        c.args(["-c", LOOP_CPU]).arg(program).arg(&n_arg);
        c
    };
    let parse = |text: &str| -> Result<f64> {
        text.trim().lines().last().context("no output from the loop")?.trim().parse::<f64>().context("loop output")
    };
    match scenario {
        Scenario::NoTracing | Scenario::NoTracing32 => {
            Ok(Sample { ns: parse(&util::output(&mut loop_cmd())?)?, daemon_cpu: None, learn_hook: None })
        }
        Scenario::Floor | Scenario::Floor32 => {
            let floor = Background::start(&mut util::xtask_floor(), true)?;
            let ns = parse(&util::output(&mut loop_cmd())?)?;
            floor.stop()?;
            Ok(Sample { ns, daemon_cpu: None, learn_hook: None })
        }
        Scenario::Recorded
        | Scenario::RecordedArgs
        | Scenario::RecordedByExe
        | Scenario::RecordedLearn
        | Scenario::Recorded32 => {
            let out = Command::new(&recorder)
                .args(["record", "-o", "/dev/null"])
                .args(scenario.record_flags())
                .args(["--", "taskset", "-c", LOOP_CPU])
                .arg(program)
                .arg(&n_arg)
                .output()?;
            if !out.status.success() {
                bail!("recorder record failed: {}", String::from_utf8_lossy(&out.stderr));
            }
            let stderr = String::from_utf8_lossy(&out.stderr);
            Ok(Sample {
                ns: parse(&String::from_utf8_lossy(&out.stdout))?,
                daemon_cpu: daemon_cpu(&stderr),
                learn_hook: None,
            })
        }
        Scenario::Filtered | Scenario::FilteredLearn => {
            let report = tempfile::NamedTempFile::new()?;
            let mut run = Command::new(&recorder);
            run.arg("run").arg("--profile").arg(allow_all);
            if scenario == Scenario::FilteredLearn {
                run.arg("--learn").arg("-o").arg(report.path());
            }
            let out = util::output(run.args(["--", "taskset", "-c", LOOP_CPU]).arg(program).arg(&n_arg))?;
            let learn_hook = (scenario == Scenario::FilteredLearn)
                .then(|| -> Result<Option<String>> {
                    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(report.path())?)?;
                    Ok(json["hook"].as_str().map(str::to_owned))
                })
                .transpose()?
                .flatten();
            Ok(Sample { ns: parse(&out)?, daemon_cpu: None, learn_hook })
        }
        Scenario::Unrecorded => {
            let rec = Background::start(
                Command::new(&recorder).args(["record", "-q", "-o", "/dev/null", "--", "sleep", "3600"]),
                false,
            )?;
            std::thread::sleep(Duration::from_millis(700));
            let ns = parse(&util::output(&mut loop_cmd())?)?;
            rec.stop()?;
            Ok(Sample { ns, daemon_cpu: None, learn_hook: None })
        }
        Scenario::Strace => {
            let out = util::output(
                Command::new("strace")
                    .args(["-f", "-qq", "-o", "/dev/null", "taskset", "-c", LOOP_CPU])
                    .arg(program)
                    .arg(&n_arg),
            )?;
            Ok(Sample { ns: parse(&out)?, daemon_cpu: None, learn_hook: None })
        }
    }
}

/// "recorder used 0.012s CPU" in the summary line.
pub(crate) fn daemon_cpu(stderr: &str) -> Option<f64> {
    let i = stderr.find("recorder used ")?;
    let rest = &stderr[i + "recorder used ".len()..];
    rest.split('s').next()?.parse().ok()
}

/// A background process stopped with SIGINT.
struct Background(Child);

impl Background {
    fn start(cmd: &mut Command, wait_for_line: bool) -> Result<Background> {
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn()?;
        if wait_for_line {
            let stdout = child.stdout.take().context("no stdout")?;
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line)?;
            if !line.starts_with("attached") {
                bail!("the floor program did not attach: {line:?}");
            }
        }
        Ok(Background(child))
    }

    fn stop(mut self) -> Result<()> {
        // SAFETY: kill(2) on our own unreaped child.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGINT) };
        self.0.wait()?;
        Ok(())
    }
}

pub(crate) struct WrkResult {
    pub rps: f64,
    pub p99_ms: f64,
    pub daemon_cpu: Option<f64>,
}

impl WrkResult {
    pub fn parse(out: &str) -> Result<WrkResult> {
        Ok(WrkResult { rps: wrk_rps(out)?, p99_ms: wrk_p99_ms(out)?, daemon_cpu: None })
    }
}

/// `wrk -t1 -c32 -dNs --latency URL`.
pub(crate) fn wrk(url: &str, seconds: u64) -> Result<String> {
    util::output(Command::new("wrk").args(["-t1", "-c32", &format!("-d{seconds}s"), "--latency", url]))
}

/// How nginx runs in one benchmark round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NginxMode {
    /// Started directly, nothing on the hook.
    Plain,
    /// Started directly while `xtask floor` holds an empty program on
    /// sys_enter: what the hook itself costs nginx.
    Floor,
    /// Started by `recorder record -- nginx`.
    Recorded,
}

/// One round of the nginx table: plain, floor (absent for the pod table),
/// recorded.
pub(crate) struct NginxRound {
    pub plain: WrkResult,
    pub floor: Option<WrkResult>,
    pub recorded: WrkResult,
}

fn nginx_rounds(rounds: usize, seconds: u64) -> Result<Vec<NginxRound>> {
    let mut results = Vec::new();
    for round in 0..rounds {
        let plain = nginx_once(NginxMode::Plain, seconds)?;
        let floor = nginx_once(NginxMode::Floor, seconds)?;
        let recorded = nginx_once(NginxMode::Recorded, seconds)?;
        eprintln!(
            "bench nginx round {}/{rounds}: plain {:.0} req/s p99 {:.2} ms; empty program {:.0} req/s p99 {:.2} ms; recorded {:.0} req/s p99 {:.2} ms",
            round + 1,
            plain.rps,
            plain.p99_ms,
            floor.rps,
            floor.p99_ms,
            recorded.rps,
            recorded.p99_ms
        );
        results.push(NginxRound { plain, floor: Some(floor), recorded });
    }
    Ok(results)
}

/// Only the nginx rounds (`cargo xtask bench --only nginx`): prints the
/// table, writes nothing.
pub fn nginx_only(rounds: usize, seconds: u64) -> Result<()> {
    let nginx = nginx_rounds(rounds, seconds)?;
    let mut md = String::new();
    nginx_table(
        &mut md,
        "nginx + wrk on loopback",
        &format!("`wrk -t1 -c32 -d{seconds}s --latency`; {rounds} rounds, medians."),
        &nginx,
    )?;
    println!("{md}");
    Ok(())
}

fn nginx_once(mode: NginxMode, seconds: u64) -> Result<WrkResult> {
    let site = Site::new(18_080)?;
    let profile = site.dir.path().join("nginx.json");
    let floor = match mode {
        NginxMode::Floor => Some(Background::start(&mut util::xtask_floor(), true)?),
        _ => None,
    };
    let mut cmd = if mode == NginxMode::Recorded {
        let mut c = Command::new(util::recorder_bin());
        c.args(["record", "-o"]).arg(&profile).arg("--").args(site.argv());
        c
    } else {
        let argv = site.argv();
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..]);
        c
    };
    let child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn()?;
    let mut server =
        Proc { child, what: if mode == NginxMode::Recorded { "recorder record -- nginx" } else { "nginx" } };
    site.wait_ready(&mut server, Duration::from_secs(15))?;
    let out = wrk(&site.url(), seconds);
    // The recorder stops nginx itself (SIGTERM to the master, recorded).
    server.signal(if mode == NginxMode::Recorded { libc::SIGINT } else { libc::SIGQUIT })?;
    let stderr = {
        let mut s = String::new();
        if let Some(mut e) = server.child.stderr.take() {
            use std::io::Read as _;
            let _ = e.read_to_string(&mut s);
        }
        s
    };
    server.wait(Duration::from_secs(30), "nginx (or the recorder) to exit after the run")?;
    if let Some(floor) = floor {
        floor.stop()?;
    }
    let out = out?;
    let errors = wrk_errors(&out);
    if errors > 0 {
        bail!("wrk saw {errors} errors or non-2xx responses ({mode:?}):\n{out}");
    }
    Ok(WrkResult { rps: wrk_rps(&out)?, p99_ms: wrk_p99_ms(&out)?, daemon_cpu: daemon_cpu(&stderr) })
}

/// Socket errors plus non-2xx/3xx responses in a wrk report (wrk prints
/// those lines only when they are not zero).
fn wrk_errors(out: &str) -> u64 {
    out.lines()
        .map(str::trim)
        .map(|l| {
            if let Some(rest) = l.strip_prefix("Socket errors:") {
                rest.split(',').filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok()).sum()
            } else if let Some(rest) = l.strip_prefix("Non-2xx or 3xx responses:") {
                rest.trim().parse().unwrap_or(1)
            } else {
                0
            }
        })
        .sum()
}

fn wrk_rps(out: &str) -> Result<f64> {
    out.lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .context("wrk printed no Requests/sec")?
        .trim()
        .parse()
        .context("wrk Requests/sec")
}

fn wrk_p99_ms(out: &str) -> Result<f64> {
    let value = out.lines().find_map(|l| l.trim().strip_prefix("99%")).context("wrk printed no 99% latency")?.trim();
    let (num, scale) = if let Some(v) = value.strip_suffix("us") {
        (v, 0.001)
    } else if let Some(v) = value.strip_suffix("ms") {
        (v, 1.0)
    } else if let Some(v) = value.strip_suffix('s') {
        (v, 1000.0)
    } else {
        bail!("unknown latency unit in {value:?}")
    };
    Ok(num.parse::<f64>()? * scale)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() { f64::NAN } else { v[v.len() / 2] }
}

fn render(
    samples: &[(Scenario, Vec<Sample>)],
    program_cost: &[(&str, f64)],
    nginx: &[NginxRound],
    pod: &[NginxRound],
    iterations: u64,
    runs: usize,
    wrk_seconds: u64,
) -> Result<String> {
    // The fastest run is the one least disturbed by other work on the VM;
    // interference only ever adds time to a null-syscall loop.
    let med = |s: Scenario| -> f64 {
        samples
            .iter()
            .find(|(x, _)| *x == s)
            .map(|(_, l)| l.iter().map(|x| x.ns).fold(f64::INFINITY, f64::min))
            .unwrap_or(f64::NAN)
    };
    let base = med(Scenario::NoTracing);
    let floor_added = med(Scenario::Floor) - base;
    let mut md = String::new();
    writeln!(md, "# Benchmarks\n")?;
    writeln!(md, "Written by `cargo xtask bench` on {}.\n", machine_date()?)?;
    writeln!(md, "Machine: {}\n", machine()?)?;
    writeln!(
        md,
        "## Null-syscall loop (getppid via syscall(2))\n\n{iterations} calls per run ({} under strace), pinned to CPU {LOOP_CPU}; fastest of {runs} interleaved runs (interference only adds time).\n",
        (iterations / 200).max(1000)
    )?;
    writeln!(md, "| scenario | ns per syscall | added vs. no tracing | added / floor's added |")?;
    writeln!(md, "|---|---:|---:|---:|")?;
    for s in Scenario::ALL {
        let ns = med(s);
        let added = ns - base;
        let ratio = if s == Scenario::NoTracing { "-".to_owned() } else { format!("{:.2}x", added / floor_added) };
        writeln!(md, "| {} | {ns:.1} | {added:+.1} | {ratio} |", s.label())?;
    }
    writeln!(
        md,
        "\n### Recording modes and 32-bit tasks\n\nThe same runs, interleaved with the rows above. The 32-bit rows run the loop built with `gcc -m32` (getppid through the ia32 compat entry); the recorder classifies a task's ABI only when its per-CPU task cache misses, so a 32-bit loop should cost what a 64-bit one does. `--learn` adds a program on `sys_exit` (the pairing; see below for a task under a filter).\n"
    )?;
    writeln!(md, "| scenario | ns per syscall | added vs. no tracing (same ABI) | added / floor's added (same ABI) |")?;
    writeln!(md, "|---|---:|---:|---:|")?;
    let base32 = med(Scenario::NoTracing32);
    let floor32_added = med(Scenario::Floor32) - base32;
    let filtered = med(Scenario::Filtered);
    for s in Scenario::MODES {
        let ns = med(s);
        let b = match s {
            s if s.is_32bit() => base32,
            Scenario::FilteredLearn => filtered,
            _ => base,
        };
        let f = if s.is_32bit() { floor32_added } else { floor_added };
        let ratio = match s {
            Scenario::NoTracing32 | Scenario::Filtered => "-".to_owned(),
            _ => format!("{:.2}x", (ns - b) / f),
        };
        let added =
            if s == Scenario::Filtered { format!("{:+.1} (the filter)", ns - b) } else { format!("{:+.1}", ns - b) };
        writeln!(md, "| {} | {ns:.1} | {added} | {ratio} |", s.label())?;
    }
    let hook = samples
        .iter()
        .find(|(s, _)| *s == Scenario::FilteredLearn)
        .and_then(|(_, l)| l.iter().find_map(|x| x.learn_hook.clone()))
        .unwrap_or_else(|| "unknown".to_owned());
    writeln!(
        md,
        "\nThe filtered rows: the loop under `{{\"defaultAction\": \"SCMP_ACT_ALLOW\"}}` (`recorder run`), with and without `--learn` (its added cost is against the filtered loop; nothing is denied, the common case). Learn mode's hook in these runs: {hook}. Where the kernel allows fexit, learn mode uses fexit on `__secure_computing` instead, which does work only for denied calls; this machine refuses fexit, so that path has no row here."
    )?;
    let rec_ratio = (med(Scenario::Recorded) - base) / floor_added;
    let unrec_ratio = (med(Scenario::Unrecorded) - base) / floor_added;
    let cpu: Vec<f64> = samples
        .iter()
        .filter(|(s, _)| *s == Scenario::Recorded)
        .flat_map(|(_, l)| l.iter().filter_map(|x| x.daemon_cpu))
        .collect();
    writeln!(
        md,
        "\nTargets: recorder's added cost at most 1.5x the floor's: **{rec_ratio:.2}x** ({}); unrecorded cgroup at most 1.2x: **{unrec_ratio:.2}x** ({}).",
        verdict(rec_ratio <= 1.5),
        verdict(unrec_ratio <= 1.2)
    )?;
    writeln!(
        md,
        "Userspace daemon CPU while recording the loop (load, attach, event loop, final map read): median {:.3} s per run.\n",
        median(cpu)
    )?;
    writeln!(
        md,
        "### The program body alone (kernel BPF statistics)\n\nrun_time_ns / run_cnt of the sys_enter program over the same loop, from its fd's fdinfo with `kernel.bpf_stats_enabled=1` (separate runs: the statistics add two clock reads per call, included in every row). Less noisy than wall time, and it isolates what the program body adds to the floor.\n"
    )?;
    writeln!(md, "| program | ns per call (in kernel) | vs. empty program |")?;
    writeln!(md, "|---|---:|---:|")?;
    let empty = program_cost.first().map_or(f64::NAN, |(_, ns)| *ns);
    for (label, ns) in program_cost {
        writeln!(md, "| {label} | {ns:.1} | {:+.1} |", ns - empty)?;
    }
    writeln!(md)?;

    nginx_table(
        &mut md,
        "nginx + wrk on loopback",
        &format!(
            "nginx (1 worker) serving a 440-byte page: started directly; started directly while an empty program sits on sys_enter (`xtask floor`, the hook's own cost, which every program there pays); started by `recorder record -- nginx`. `wrk -t1 -c32 -d{wrk_seconds}s --latency`; {} alternating rounds, medians.",
            nginx.len()
        ),
        nginx,
    )?;
    nginx_table(
        &mut md,
        "nginx in a CRI pod (`recorder record --pod`)",
        &format!(
            "A pod on a private containerd (runc, host network) running the same nginx; `wrk -t1 -c32 -d{wrk_seconds}s --latency`; recorded with `recorder record --pod` started before the pod (parent-cgroup recording with the runtime boundary on); {} alternating rounds, medians.",
            pod.len()
        ),
        pod,
    )?;
    writeln!(
        md,
        "\nNoise: this is a shared 2-core VM with SRSO/retpoline mitigations. The same loop varies by 10-30 ns between runs \
         and nginx rounds by up to 15% (see the per-round lines `cargo xtask bench` prints); ratios of small differences amplify \
         that. The in-kernel table is the steadiest view of what the program itself costs."
    )?;
    Ok(md)
}

/// `recorder daemon` with 1,000 and then 10,000 live cgroups under its
/// parent (tests/scripts/daemon-memory.sh): its RSS, and the kernel memory
/// of its pinned maps, which `--max-containers` sizes up front.
fn daemon_memory() -> Result<String> {
    let script = util::workspace_root().join("tests/scripts/daemon-memory.sh");
    let out = util::output(Command::new("bash").arg(&script).arg(util::recorder_bin()))?;
    let mut md = String::new();
    writeln!(md, "\n## Daemon memory by tracked cgroups\n")?;
    writeln!(
        md,
        "`tests/scripts/daemon-memory.sh` (run by `cargo xtask bench`): `recorder daemon --max-containers 11000` on a cgroup parent of its own, no CRI; each cgroup runs `/bin/true` once and stays, so it holds a slot. The pinned maps are sized by `--max-containers` when the daemon starts, whatever the number of CPUs; per slot that is their total over 11,000.\n"
    )?;
    writeln!(md, "```text\n{}\n```", out.trim_end())?;
    Ok(md)
}

fn nginx_table(md: &mut String, title: &str, what: &str, rounds: &[NginxRound]) -> Result<()> {
    let plain_rps = median(rounds.iter().map(|r| r.plain.rps).collect());
    let rec_rps = median(rounds.iter().map(|r| r.recorded.rps).collect());
    let floors: Vec<&WrkResult> = rounds.iter().filter_map(|r| r.floor.as_ref()).collect();
    let loss = |rps: f64| (plain_rps - rps) / plain_rps * 100.0;
    writeln!(md, "\n## {title}\n\n{what}\n")?;
    writeln!(md, "| scenario | requests/s | vs. not recorded | p99 latency (ms) | recorder CPU (s) |")?;
    writeln!(md, "|---|---:|---:|---:|---:|")?;
    writeln!(
        md,
        "| not recorded | {plain_rps:.0} | - | {:.2} | - |",
        median(rounds.iter().map(|r| r.plain.p99_ms).collect())
    )?;
    let floor_rps = (!floors.is_empty()).then(|| median(floors.iter().map(|f| f.rps).collect()));
    if let Some(floor_rps) = floor_rps {
        writeln!(
            md,
            "| empty program on sys_enter alone (the hook) | {floor_rps:.0} | {:+.1}% | {:.2} | - |",
            -loss(floor_rps),
            median(floors.iter().map(|f| f.p99_ms).collect())
        )?;
    }
    writeln!(
        md,
        "| recorded | {rec_rps:.0} | {:+.1}% | {:.2} | {:.3} |",
        -loss(rec_rps),
        median(rounds.iter().map(|r| r.recorded.p99_ms).collect()),
        median(rounds.iter().filter_map(|r| r.recorded.daemon_cpu).collect())
    )?;
    writeln!(
        md,
        "\nThroughput loss while recording: **{:.1}%** (target < 3%: {}).",
        loss(rec_rps),
        verdict(loss(rec_rps) < 3.0)
    )?;
    if let Some(floor_rps) = floor_rps {
        writeln!(
            md,
            "Of that, the hook itself (an empty program, the floor no design on sys_enter can beat) costs {:.1}%, and the recorder adds {:.1} points on top.",
            loss(floor_rps),
            loss(rec_rps) - loss(floor_rps)
        )?;
    }
    Ok(())
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

fn machine() -> Result<String> {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")?
        .lines()
        .find_map(|l| l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned()))
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem_kb: u64 = std::fs::read_to_string("/proc/meminfo")?
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0);
    let kernel = util::output(Command::new("uname").arg("-r"))?;
    Ok(format!("{cpu}, {cores} cores, {} GiB RAM, Linux {}", mem_kb / 1024 / 1024, kernel.trim()))
}

fn machine_date() -> Result<String> {
    Ok(util::output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))?.trim().to_owned())
}
