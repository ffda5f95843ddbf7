//! What `examples/profiles/<name>/` holds, how it is written, and how it goes stale:
//!
//! - `profile.json`: `recorder merge` of the runc and crun recordings. One file, because a
//!   pod's Localhost profile names one file whatever RuntimeClass runs it; the two recordings
//!   differ only by the calls each runtime makes after installing the filter (its base set).
//! - `provenance.json`: package versions, the recorder's version and commit, the kernel, the
//!   commands run, and each recording's duration and JSON summary.
//! - `diff.txt`: `recorder diff profile.json --against runtime/default:containerd`.
//! - `likely.txt`: `recorder likely profile.json --exe SERVER`, the paths not taken: calls the
//!   server's executable can make that the recording never saw (information; nothing added).
//! - `proof.md`: the client's results and the graceful stop under the profile, per runtime,
//!   and the size against runtime/default.
//!
//! Stale means: the installed packages differ from the recorded ones, `recorder check` no
//! longer accepts the profile, or the diff or paths not taken computed now differ from
//! `diff.txt` or `likely.txt`.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    path::Path,
    process::{Command, Stdio},
};

use anyhow::{Context as _, bail, ensure};
use serde_json::json;

use super::{
    BASELINE, GRACE_SECONDS, REGENERATE, RUNTIME_PACKAGES, Workload, examples_dir, prove::Proof, record::Recording,
};
use crate::{recorder_bin, workspace_root};

pub const PROFILE: &str = "profile.json";
pub const PROVENANCE: &str = "provenance.json";
pub const DIFF: &str = "diff.txt";
pub const PROOF: &str = "proof.md";
pub const LIKELY: &str = "likely.txt";
/// Every file of an example.
pub const FILES: [&str; 5] = [PROFILE, PROVENANCE, DIFF, LIKELY, PROOF];

/// The installed version of each Debian package in `packages`.
pub fn package_versions(packages: &[&str]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut versions = BTreeMap::new();
    for package in packages {
        let out = Command::new("dpkg-query")
            .args(["-W", "-f=${Version}", package])
            .stdin(Stdio::null())
            .output()
            .context("running dpkg-query")?;
        let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        ensure!(out.status.success() && !version.is_empty(), "package {package} is not installed (cargo xtask setup)");
        versions.insert((*package).to_owned(), version);
    }
    Ok(versions)
}

/// The packages an example's provenance names: its own and the runtimes'.
fn provenance_packages(workload: &Workload) -> Vec<&'static str> {
    workload.packages.iter().chain(RUNTIME_PACKAGES).copied().collect()
}

/// Runs the recorder in `dir` with `args`; its stdout, or an error with its stderr.
fn recorder_in(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(recorder_bin())
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running recorder {args:?}"))?;
    if !out.status.success() {
        bail!(
            "recorder {args:?} in {} failed ({}): {}",
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `recorder diff profile.json --against runtime/default:containerd`, run in `dir`.
pub fn diff_text(dir: &Path) -> anyhow::Result<String> {
    recorder_in(dir, &["diff", "--color", "never", PROFILE, "--against", BASELINE])
}

/// `recorder likely profile.json --exe SERVER`, run in `dir`.
pub fn likely_text(workload: &Workload, dir: &Path) -> anyhow::Result<String> {
    recorder_in(dir, &["likely", "--color", "never", PROFILE, "--exe", workload.executable])
}

/// (names the profile allows, names runtime/default allows) on the host's native ABI.
pub fn sizes(dir: &Path) -> anyhow::Result<(usize, usize)> {
    let json: serde_json::Value =
        serde_json::from_str(&recorder_in(dir, &["diff", "--json", PROFILE, "--against", BASELINE])?)
            .context("recorder diff --json")?;
    let arch = json["architectures"][0].as_str().context("no architecture in the diff")?.to_owned();
    let count = |side: &str| json[side][&arch].as_array().map_or(0, Vec::len);
    Ok((count("profile"), count("base")))
}

/// `recorder merge` of the recordings into `dir/profile.json`, which `recorder check` must accept.
pub fn merge(recordings: &[Recording], dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut merge: Vec<String> = vec!["merge".into()];
    merge.extend(recordings.iter().map(|r| r.profile.display().to_string()));
    merge.extend(["-o".into(), PROFILE.into()]);
    recorder_in(dir, &merge.iter().map(String::as_str).collect::<Vec<_>>())?;
    recorder_in(dir, &["check", PROFILE]).map(drop)
}

/// Writes the rest of `examples/profiles/<name>/` next to the merged profile in `dir`: its
/// diff, provenance and proof.
pub fn write(workload: &Workload, recordings: &[Recording], proofs: &[Proof], dir: &Path) -> anyhow::Result<()> {
    std::fs::write(dir.join(DIFF), diff_text(dir)?)?;
    std::fs::write(dir.join(LIKELY), likely_text(workload, dir)?)?;
    let recorder_version = recorder_in(dir, &["--version"])?.trim().to_owned();
    let commit = git(&["describe", "--always", "--dirty", "--abbrev=12"])?;
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_owned();
    let provenance = json!({
        "example": workload.name,
        "generated_by": REGENERATE,
        "packages": package_versions(&provenance_packages(workload))?,
        "recorder": { "version": recorder_version, "commit": commit },
        "kernel": kernel,
        "image": "built from the host's Debian package by tests/src/cri (no registry)",
        "recordings": recordings.iter().map(|r| json!({
            "runtime": r.runtime.binary_name(),
            "command": std::iter::once("recorder".to_owned()).chain(r.command.iter().cloned()).collect::<Vec<_>>(),
            "container": r.container,
            "client": workload.client_command,
            "client_result": r.client,
            "stop": format!("StopContainer with a {GRACE_SECONDS} s grace period, then RemovePodSandbox"),
            "seconds": r.summary["elapsed_seconds"],
            "summary": r.summary,
        })).collect::<Vec<_>>(),
        "merge": format!("recorder merge {} -o {PROFILE}", recordings.iter().map(|r| format!("{}.json", r.runtime.binary_name())).collect::<Vec<_>>().join(" ")),
        "diff": format!("recorder diff {PROFILE} --against {BASELINE}"),
    });
    std::fs::write(dir.join(PROVENANCE), serde_json::to_string_pretty(&provenance)? + "\n")?;
    std::fs::write(dir.join(PROOF), proof_markdown(workload, proofs, sizes(dir)?))?;
    Ok(())
}

fn git(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git").args(args).current_dir(workspace_root()).output().context("running git")?;
    ensure!(out.status.success(), "git {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn proof_markdown(workload: &Workload, proofs: &[Proof], (names, base): (usize, usize)) -> String {
    let mut text = format!(
        "# {name}: proof\n\n\
         Written by `{REGENERATE}`; `{REGENERATE} --check` (tests/tests/examples.rs) runs the same proof again.\n\n\
         [`{PROFILE}`]({PROFILE}) allows **{names}** syscalls on x86_64; `{BASELINE}` allows {base} \
         ({percent:.0}%). What differs: [`{DIFF}`]({DIFF}). How it was recorded: [`{PROVENANCE}`]({PROVENANCE}). \
         What its executable can do that was never seen: [`{LIKELY}`]({LIKELY}).\n\n\
         A fresh pod runs {name} under the profile (`Localhost` seccomp, enforced by the runtime), \
         its own client runs against it (`{client}`), then StopContainer sends SIGTERM with a \
         {GRACE_SECONDS} s grace period: {name} must exit by itself, with status 0, in under 5 s.\n\n\
         | runtime | client | errors | StopContainer to exit | exit status |\n|---|---|---:|---:|---:|\n",
        name = workload.name,
        percent = names as f64 * 100.0 / base.max(1) as f64,
        client = workload.client_command,
    );
    for p in proofs {
        let _ = writeln!(
            text,
            "| {} | {} ok | 0 | {:.2} s | {} |",
            p.runtime.binary_name(),
            p.client_ok,
            p.stop_seconds,
            p.exit_code
        );
    }
    for p in proofs {
        let _ = write!(text, "\n## The client under {}\n\n```text\n{}\n```\n", p.runtime.binary_name(), p.client);
    }
    text
}

/// Why the shipped files of `workload` are stale (empty: they are not). Runs the recorder,
/// reads the installed package versions; does not run the workload.
pub fn staleness(workload: &Workload) -> anyhow::Result<Vec<String>> {
    let dir = examples_dir().join(workload.name);
    let mut problems = Vec::new();
    for file in FILES {
        if !dir.join(file).exists() {
            problems.push(format!("{}/{file} is missing", workload.name));
        }
    }
    if !problems.is_empty() {
        return Ok(problems);
    }
    let provenance: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join(PROVENANCE))?)
        .with_context(|| format!("{}/{PROVENANCE} is not JSON", workload.name))?;
    for (package, installed) in package_versions(&provenance_packages(workload))? {
        let recorded = provenance["packages"][&package].as_str().unwrap_or("(none)");
        if recorded != installed {
            problems.push(format!("{}: {package} was {recorded} when recorded, {installed} now", workload.name));
        }
    }
    if let Err(e) = recorder_in(&dir, &["check", PROFILE]) {
        problems.push(format!("{}: `recorder check {PROFILE}` refuses it: {e:#}", workload.name));
    }
    let shipped = std::fs::read_to_string(dir.join(DIFF))?;
    if diff_text(&dir)? != shipped {
        problems.push(format!("{}: `recorder diff {PROFILE} --against {BASELINE}` differs from {DIFF}", workload.name));
    }
    let shipped = std::fs::read_to_string(dir.join(LIKELY))?;
    if likely_text(workload, &dir)? != shipped {
        problems.push(format!(
            "{}: `recorder likely {PROFILE} --exe {}` differs from {LIKELY}",
            workload.name, workload.executable
        ));
    }
    Ok(problems)
}

/// Writes examples/profiles/README.md.
/// Writes examples/profiles/README.md from the files of every example.
pub fn write_index(workloads: &[Workload], took_seconds: f64) -> anyhow::Result<()> {
    let mut text = format!(
        "# Proven example profiles\n\n\
         Seccomp profiles for Debian 12's nginx, redis, postgres and caddy, each **recorded** by \
         `recorder record --pod` through a real CRI (a private containerd) under runc and under \
         crun, merged into one profile, and proven: a fresh pod runs the server under the profile \
         under both runtimes, its own client gets no error, and StopContainer stops it cleanly. \
         Nothing here is hand-written. `{REGENERATE}` writes it all again (it took {took_seconds:.0} s \
         last time); `{REGENERATE} --check` (and `cargo xtask test`, through tests/tests/examples.rs) \
         fails when it is stale: the packages changed, `recorder check` refuses a profile, or \
         `recorder diff` computes another diff.\n\n\
         Each directory holds `{PROFILE}` (one file for both runtimes: a Localhost profile is named \
         by the pod whatever runtime runs it), `{PROVENANCE}` (versions, commands, each \
         recording's duration and JSON summary), `{DIFF}` (against `{BASELINE}`, what \
         `RuntimeDefault` means on containerd), `{LIKELY}` (the paths not taken: calls the \
         server's executable can make that the recording never saw, `recorder likely`; nothing \
         is added for them) and `{PROOF}`.\n\n\
         | example | what | syscalls (x86_64) | `{BASELINE}` | recorded | proof |\n|---|---|---:|---:|---|---|\n"
    );
    for w in workloads {
        let dir = examples_dir().join(w.name);
        if !dir.join(PROVENANCE).exists() {
            let _ = writeln!(text, "| {} | {} | not generated yet | | | |", w.name, w.what);
            continue;
        }
        let (names, base) = sizes(&dir)?;
        let provenance: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join(PROVENANCE))?)?;
        let recorded = provenance["recordings"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| format!("{} {:.0} s", r["runtime"].as_str().unwrap_or("?"), r["seconds"].as_f64().unwrap_or(0.0)))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            text,
            "| [{name}]({name}/{PROFILE}) | {what} | {names} ({pct:.0}%) | {base} | {recorded} | [{PROOF}]({name}/{PROOF}), [{DIFF}]({name}/{DIFF}), [{LIKELY}]({name}/{LIKELY}) |",
            name = w.name,
            what = w.what,
            pct = names as f64 * 100.0 / base.max(1) as f64,
        );
    }
    text.push_str(
        "\nTo use one on a cluster, copy it under the kubelet's seccomp root and point the pod at it:\n\n\
         ```yaml\nsecurityContext:\n  seccompProfile:\n    type: Localhost\n    localhostProfile: recorder/redis.json\n```\n\n\
         A profile covers what the workload did while recorded. Each `likely.txt` names the calls \
         the server's executable can make that the recording never saw (see the \
         [README](../../README.md#paths-not-taken-likely)); review them before production. \
         redis's client ends with a `BGSAVE`, so the `clone` of its `fork()` (which its default \
         `save` rules make in production) is recorded and proven, not predicted.\n",
    );
    std::fs::write(examples_dir().join("README.md"), text).context("writing examples/profiles/README.md")
}
