//! `recorder merge`: one profile that lets every input's workload run.

use std::path::PathBuf;

use crate::{
    algebra::merge::{COVERAGE_ANNOTATION, merge},
    cli::exit::{Code, Failure},
    output::Output,
    profile::write::{self, Format, WriteOptions},
};

const EXAMPLES: &str = "\
Examples:
  recorder merge a.json b.json c.json -o app.json --coverage app.coverage.json
  recorder merge run-*.json --format spo --name my-app -o my-app.yaml

Merging takes the union per architecture, so each input's workload still runs.
Argument-conditioned rules are kept (allowed when any input's conditions match);
a warning says when inputs disagree on them. defaultAction is never loosened:
the strictest input's wins, with a warning when they differ. How many inputs
needed each syscall goes to the spo.x-k8s.io/syscall-coverage annotation (SPO
output) or to the --coverage sidecar file (OCI has no place for comments).";

/// Merge profiles from replicas, nodes or test runs into one.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct MergeArgs {
    /// Profiles to merge (any supported dialect).
    #[arg(required = true)]
    pub profiles: Vec<PathBuf>,
    /// Where to write the merged profile (atomically). Default: stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Output dialect.
    #[arg(long, value_enum, default_value_t = Format::Oci)]
    pub format: Format,
    /// Kubernetes object name for --format spo. Default: the output file's name.
    #[arg(long)]
    pub name: Option<String>,
    /// Also write per-syscall coverage (how many inputs needed each) to FILE as JSON.
    #[arg(long, value_name = "FILE")]
    pub coverage: Option<PathBuf>,
    /// Do not add the clone3 -> ENOSYS rule when no input allows clone3.
    #[arg(long)]
    pub no_enosys_clone3: bool,
}

pub fn execute(args: MergeArgs) -> Result<u8, Failure> {
    let unwritable = |e| Failure::new(Code::OutputUnwritable, e);
    let out = Output::prepare(args.output.as_deref()).map_err(unwritable)?;
    let sidecar = match &args.coverage {
        Some(path) => Some(Output::prepare(Some(path)).map_err(unwritable)?),
        None => None,
    };
    if let Some(sidecar) = &sidecar {
        out.ensure_distinct(sidecar)?;
    }
    let mut inputs = Vec::new();
    for path in &args.profiles {
        inputs.push(super::convert::load(path)?.profile);
    }
    let merged = merge(&inputs).map_err(|e| Failure::new(Code::Usage, e))?;
    for w in &merged.warnings {
        eprintln!("recorder: warning: {w}");
    }
    let mut profile = merged.profile;
    if !args.no_enosys_clone3 {
        profile = profile.with_enosys_clone3();
    }
    let mut opts = WriteOptions {
        name: super::convert::object_name(
            args.name.as_deref(),
            None,
            &args.output.as_deref().into_iter().collect::<Vec<_>>(),
        ),
        annotations: Default::default(),
    };
    if args.format == Format::Spo {
        opts.annotations.insert(COVERAGE_ANNOTATION.to_owned(), merged.coverage.to_annotation());
    }
    let written = write::write(&profile, args.format, &opts).map_err(super::convert::write_failure)?;
    for w in &written.warnings {
        eprintln!("recorder: warning: {w}");
    }
    let sources: Vec<String> = args.profiles.iter().map(|p| p.display().to_string()).collect();
    out.commit(&written.text).map_err(unwritable)?;
    if let Some(sidecar) = sidecar {
        sidecar.commit(&merged.coverage.to_sidecar(&sources)).map_err(unwritable)?;
    }
    Ok(Code::Ok.as_u8())
}
