//! `cargo xtask fuzz`: every cargo-fuzz target in fuzz/ for a while, then
//! docs/fuzzing.md with what each did. `cargo xtask test` runs a short slice
//! of each (CI_SECONDS) without writing the page.
//!
//! The seed corpora are kept in the repository (fuzz/corpus/<target>/);
//! what a run discovers goes to target/fuzz-corpus/<target>/ (libFuzzer
//! writes new inputs to the first corpus directory it is given), so a run
//! never adds thousands of files to the tree. A crash fails the command and
//! leaves its input in fuzz/artifacts/<target>/.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{Context as _, Result, bail};

use crate::util::{self, output, workspace_root};

/// Seconds per target in `cargo xtask test` (7 targets: about 70 s of
/// fuzzing after the build; 60 s each would add 7 minutes to every CI run).
pub const CI_SECONDS: u64 = 10;

/// What one target did.
struct Outcome {
    target: String,
    seconds: f64,
    executions: u64,
    crashed: bool,
    seeds: usize,
    corpus: usize,
}

fn fuzz_dir() -> PathBuf {
    workspace_root().join("fuzz")
}

fn cargo_fuzz() -> Command {
    let mut cmd = Command::new("cargo");
    cmd.args(["+nightly", "fuzz"]).current_dir(workspace_root()).stdin(std::process::Stdio::null());
    // The targets fuzz parsers, never the BPF object: do not build it.
    cmd.env("AYA_BUILD_SKIP", "1");
    cmd
}

/// The targets `cargo fuzz list` names.
fn targets() -> Result<Vec<String>> {
    let listed = output(cargo_fuzz().args(["list", "--fuzz-dir"]).arg(fuzz_dir()))
        .context("`cargo fuzz list` failed; run `cargo xtask setup` to install cargo-fuzz")?;
    let targets: Vec<String> = listed.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect();
    if targets.is_empty() {
        bail!("cargo fuzz list found no target in {}", fuzz_dir().display());
    }
    Ok(targets)
}

fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.flatten().filter(|e| e.path().is_file()).count()).unwrap_or(0)
}

/// Builds every target, then runs each for `seconds`. Fails when any target
/// could not run or crashed.
fn run_all(seconds: u64) -> Result<Vec<Outcome>> {
    util::run(cargo_fuzz().args(["build", "--fuzz-dir"]).arg(fuzz_dir()))
        .context("building the fuzz targets failed (cargo +nightly fuzz build)")?;
    let mut outcomes = Vec::new();
    for target in targets()? {
        let seeds_dir = fuzz_dir().join("corpus").join(&target);
        let work_dir = workspace_root().join("target/fuzz-corpus").join(&target);
        std::fs::create_dir_all(&work_dir).with_context(|| format!("creating {}", work_dir.display()))?;
        eprintln!("xtask fuzz: {target} for {seconds} s");
        let started = Instant::now();
        let out = cargo_fuzz()
            .args(["run", "--fuzz-dir"])
            .arg(fuzz_dir())
            .arg(&target)
            .arg(&work_dir)
            .arg(&seeds_dir)
            .args(["--", &format!("-max_total_time={seconds}"), "-print_final_stats=1", "-timeout=10"])
            .output()
            .with_context(|| format!("cannot start cargo fuzz run {target}"))?;
        let elapsed = started.elapsed().as_secs_f64();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let executions = final_stat(&stderr, "stat::number_of_executed_units").with_context(|| {
            format!("fuzz target {target} printed no final stats; it did not run:\n{}", tail(&stderr))
        })?;
        let crashed = !out.status.success();
        if crashed {
            eprintln!("xtask fuzz: {target} CRASHED; input in fuzz/artifacts/{target}/\n{}", tail(&stderr));
        }
        outcomes.push(Outcome {
            target,
            seconds: elapsed,
            executions,
            crashed,
            seeds: files_in(&seeds_dir),
            corpus: files_in(&work_dir) + files_in(&seeds_dir),
        });
    }
    Ok(outcomes)
}

/// `stat::name: value` from libFuzzer's `-print_final_stats=1`.
fn final_stat(stderr: &str, name: &str) -> Option<u64> {
    stderr.lines().rev().find_map(|l| l.strip_prefix(name)?.trim_start_matches(':').trim().parse().ok())
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

fn fail_on_crash(outcomes: &[Outcome]) -> Result<()> {
    let crashed: Vec<&str> = outcomes.iter().filter(|o| o.crashed).map(|o| o.target.as_str()).collect();
    if !crashed.is_empty() {
        bail!("fuzz targets crashed: {} (inputs in fuzz/artifacts/)", crashed.join(", "));
    }
    Ok(())
}

/// The short slice `cargo xtask test` runs.
pub fn ci_slice() -> Result<()> {
    let outcomes = run_all(CI_SECONDS)?;
    for o in &outcomes {
        eprintln!("xtask fuzz: {} {} executions in {:.0} s, crashed: {}", o.target, o.executions, o.seconds, o.crashed);
    }
    fail_on_crash(&outcomes)
}

/// `cargo xtask fuzz`: `seconds` per target, or `hours` shared by all of
/// them; writes docs/fuzzing.md.
pub fn run(seconds: u64, hours: Option<f64>) -> Result<()> {
    let count = targets()?.len() as u64;
    let per_target = match hours {
        Some(h) if h > 0.0 => ((h * 3600.0) as u64 / count).max(1),
        Some(_) => bail!("--hours must be more than 0"),
        None => seconds,
    };
    let outcomes = run_all(per_target)?;
    let page = page(&outcomes, per_target)?;
    let path = workspace_root().join("docs/fuzzing.md");
    std::fs::write(&path, page).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("xtask fuzz: wrote {}", path.display());
    fail_on_crash(&outcomes)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name").map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned()))
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let kernel = output(Command::new("uname").arg("-r")).unwrap_or_default();
    let rustc = output(Command::new("rustc").args(["+nightly", "--version"])).unwrap_or_default();
    format!("{cpu}, {cores} cores (shared with other builds), Linux {}, {}", kernel.trim(), rustc.trim())
}

fn page(outcomes: &[Outcome], per_target: u64) -> Result<String> {
    let date = output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))?;
    let mut s = String::new();
    s.push_str("# Fuzzing\n\n");
    s.push_str(
        "Every parser of outside input has a [cargo-fuzz](https://github.com/rust-fuzz/cargo-fuzz) target in \
         [`fuzz/`](../fuzz/fuzz_targets) (libFuzzer with AddressSanitizer, nightly). A target fails on a panic, \
         an out-of-bounds access or a broken invariant it asserts. This page is written by \
         `cargo xtask fuzz` (`--seconds N` per target, default 60, or `--hours H` shared by all targets).\n\n",
    );
    writeln!(s, "Run of {}: {per_target} s per target, on {}.\n", date.trim(), machine())?;
    s.push_str("| target | what it feeds | executions | seconds | crashes | seeds | corpus after |\n");
    s.push_str("|---|---|---:|---:|---:|---:|---:|\n");
    for o in outcomes {
        writeln!(
            s,
            "| `{}` | {} | {} | {:.0} | {} | {} | {} |",
            o.target,
            describe(&o.target),
            o.executions,
            o.seconds,
            u8::from(o.crashed),
            o.seeds,
            o.corpus
        )?;
    }
    let total: u64 = outcomes.iter().map(|o| o.executions).sum();
    let crashes = outcomes.iter().filter(|o| o.crashed).count();
    writeln!(s, "\nIn all: {total} executions, {crashes} crashes.\n")?;
    s.push_str(
        "Found so far: the first runs stopped on LeakSanitizer in four targets: the syscall name table \
         leaked one copy of each name per architecture and number and kept only the distinct ones, so \
         about 5,000 strings (48 KB) were lost for good in every process that read a profile. Fixed in \
         `recorder/src/syscalls.rs` (each distinct name is leaked once); the figures above are from after \
         the fix.\n\n",
    );
    writeln!(
        s,
        "Seeds (the corpora kept in the repository, small files from the shipped profiles, the test data and \
         hand-written cases) are in `fuzz/corpus/<target>/`; what a run discovers stays in \
         `target/fuzz-corpus/<target>/`. A crash leaves its input in `fuzz/artifacts/<target>/`; \
         `cargo +nightly fuzz run <target> <input>` replays it.\n\n\
         CI: `cargo xtask test` (the full suite, without a test filter) builds the targets and runs each for \
         {} s; a crash, or a target that cannot build or run, fails it. 60 s each would add seven minutes \
         to every run on the 2-core CI machine; the first build of the targets (AddressSanitizer, release) \
         took 15 minutes here, later ones only rebuild what changed. \"corpus after\" counts the seeds and \
         everything runs on this machine added to `target/fuzz-corpus/`.",
        CI_SECONDS
    )?;
    Ok(s)
}

fn describe(target: &str) -> &'static str {
    match target {
        "profile_json" => {
            "profile reader, JSON (OCI, moby, containers/common, SPO); loaded profiles written and read again"
        }
        "profile_yaml" => "profile reader, YAML; loaded profiles written and read again",
        "spo_resource" => "SPO `SeccompProfile` v1/v1beta1 `spec`",
        "moby_evaluate" => "moby template evaluation for any arch, caps and kernel; idempotent",
        "cri_info" => "CRI verbose info (`pid`, `runtimeSpec.linux.cgroupsPath`)",
        "proc_text" => "`/proc/PID/cgroup`, `/proc/PID/stat`, `/proc/PID/status`, `cgroup.events`, `cgroup.procs`",
        "k8s_names" => "namespace/pod/container names to file names and install paths; never leave the directory",
        _ => "",
    }
}
