//! `recorder record`: record a workload and write its profile.
//!
//! `args` is the command line; `command` records a command, cgroup, process
//! or container by id into one profile; `pod` records a pod's containers
//! into one profile each; `summary` is the line printed at the end;
//! `by_exe` attributes calls to executables (`--by-exe`); `likely` names the
//! paths not taken (`--likely`, `--with-likely`).

mod args;
mod by_exe;
mod command;
mod likely;
mod pod;
mod summary;

pub use args::RecordArgs;

use std::path::Path;

use crate::{
    k8s_name,
    output::Output,
    profile::{
        Profile,
        write::{self, Format, WriteOptions},
    },
};

/// Where `--json-summary` (or `--by-exe`) goes: a file checked now, or
/// stdout for `-` (refused when the profile or the other goes there too).
struct SummarySink(Output);

impl SummarySink {
    fn prepare(path: Option<&Path>, profile_output: Option<&Output>) -> Result<Option<SummarySink>, Failure> {
        let Some(path) = path else { return Ok(None) };
        let out = Output::prepare(Some(path))?;
        if let Some(profile) = profile_output {
            out.ensure_distinct(profile)?;
        }
        Ok(Some(SummarySink(out)))
    }

    fn is_stdout(&self) -> bool {
        matches!(self.0, Output::Stdout)
    }

    /// Refuses `--json-summary` and `--by-exe` naming the same file.
    fn ensure_distinct(first: Option<&SummarySink>, second: Option<&SummarySink>) -> Result<(), Failure> {
        if let (Some(a), Some(b)) = (first, second) {
            a.0.ensure_distinct(&b.0)?;
        }
        Ok(())
    }

    fn write(self, summary: &serde_json::Value) -> Result<(), Failure> {
        let mut text = serde_json::to_string_pretty(summary).map_err(|e| Failure::new(Code::Internal, e))?;
        text.push('\n');
        self.write_text(&text)
    }

    fn write_text(self, text: &str) -> Result<(), Failure> {
        self.0.commit(text)?;
        Ok(())
    }
}

/// The Kubernetes object name `--format spo` and `k8s-snippet` need:
/// `--name`, else the output file's name, else `fallback` (a pod's
/// `<pod>-<container>`). Checked before recording starts, so a long
/// recording never ends in "needs a name".
fn object_name(
    format: Format,
    explicit: Option<&str>,
    file: Option<&Path>,
    fallback: Option<String>,
) -> Result<Option<String>, Failure> {
    if !matches!(format, Format::Spo | Format::K8sSnippet) {
        return Ok(None);
    }
    let files: Vec<&Path> = file.into_iter().collect();
    let name = super::convert::object_name(explicit, None, &files).or(fallback);
    match name {
        Some(n) if k8s_name::is_subdomain(&n) => Ok(Some(n)),
        Some(n) => Err(super::convert::write_failure(write::WriteError::BadName { name: n })),
        None => Err(Failure::new(
            Code::Usage,
            anyhow::anyhow!(
                "--format {} needs a Kubernetes object name and the output file gives none; pass --name NAME",
                format.as_str()
            ),
        )),
    }
}

/// The profile in the dialect `--format` asks for (the writers `convert`
/// uses); warnings go to stderr.
fn render(profile: &Profile, args: &RecordArgs, name: Option<String>) -> Result<String, Failure> {
    if args.format == Format::Oci {
        return Ok(profile.to_oci_json());
    }
    let written = write::write(profile, args.format, &WriteOptions { name, annotations: Default::default() })
        .map_err(super::convert::write_failure)?;
    for w in &written.warnings {
        eprintln!("recorder: warning: {w}");
    }
    Ok(written.text)
}

use super::{
    duration,
    exit::{Code, Failure},
};
use crate::record::stop::{Exercise, StopPolicy};

pub fn execute(args: RecordArgs) -> Result<u8, Failure> {
    crate::bpf::preflight::check_open_files(crate::bpf::preflight::MIN_OPEN_FILES)?;
    let duration = args.duration.as_deref().map(duration::parse).transpose()?;
    let stop = StopPolicy {
        signal: args.stop_signal.parse().map_err(|e| Failure::new(Code::Usage, e))?,
        grace: duration::parse_grace(&args.grace)?,
        exercises: match &args.exercise {
            Some(list) => Exercise::parse_list(list).map_err(|e| Failure::new(Code::Usage, e))?,
            None => Vec::new(),
        },
        exercise_wait: duration::parse(&args.exercise_wait)?,
        until_exit: args.until_exit,
    };
    check_added(&args.add)?;
    if args.pod.is_some() {
        return pod::execute(args, duration, stop);
    }
    command::execute(args, duration, stop)
}

/// `--add` names must be syscalls of this host's native ABI.
fn check_added(names: &[String]) -> Result<(), Failure> {
    let native = crate::syscalls::Family::host().native;
    for name in names {
        if native.number_of(name).is_none() {
            let hint = crate::profile::catalog::suggest(name, native.names())
                .map(|s| format!("; did you mean {s}?"))
                .unwrap_or_default();
            return Err(Failure::new(
                Code::Usage,
                anyhow::anyhow!("--add {name}: not a syscall on {}{hint}", native.scmp_name()),
            ));
        }
    }
    Ok(())
}

/// `--base-set FILE`: the calls its profile allows, read before recording
/// (a bad file fails at once, not after the recording).
fn given_base_set(args: &RecordArgs) -> Result<Option<std::collections::BTreeSet<String>>, Failure> {
    let Some(path) = &args.base_set else { return Ok(None) };
    let loaded = super::convert::load(path)?;
    let names: std::collections::BTreeSet<String> =
        loaded.profile.allowed_names().into_iter().map(str::to_owned).collect();
    if names.is_empty() {
        return Err(Failure::new(
            Code::BadProfile,
            anyhow::anyhow!(
                "--base-set {} allows no syscall; give the profile `recorder baseline -o FILE` wrote",
                path.display()
            ),
        ));
    }
    Ok(Some(names))
}

/// The recorded names with `--add`'s on the native ABI.
fn with_added(
    by_arch: &std::collections::BTreeMap<crate::syscalls::Arch, std::collections::BTreeSet<String>>,
    family: crate::syscalls::Family,
    added: &[String],
) -> std::collections::BTreeMap<crate::syscalls::Arch, std::collections::BTreeSet<String>> {
    let mut by_arch = by_arch.clone();
    by_arch.entry(family.native).or_default().extend(added.iter().cloned());
    by_arch
}
