//! `recorder convert`: any dialect in, the chosen dialect out.

use std::path::{Path, PathBuf};

use crate::{
    cli::exit::{Code, Failure},
    output::Output,
    profile::{
        self, Loaded,
        write::{self, Format, WriteOptions},
    },
};

const EXAMPLES: &str = "\
Examples:
  recorder convert app.json --format spo --name my-app -o my-app.yaml
  recorder convert moby.json -o plain.json       # evaluate a moby template for this host
  recorder convert my-app.yaml                    # SPO SeccompProfile back to OCI JSON
  recorder convert app.json --format k8s-snippet --name my-app

Input dialects are detected: OCI, moby (archMap, includes/excludes), containers/common
(errno names, SCMP_ARCH_NATIVE), SPO SeccompProfile v1 and v1beta1 (YAML or JSON).
`oci` output is pure OCI: containerd silently drops moby-only keys, so they are
evaluated (host architecture, Docker's default capabilities, running kernel) rather
than written. `spo` output is SeccompProfile v1, which has no defaultErrnoRet and
a closed list of architectures; recorder refuses what v1 cannot express instead of
changing the profile's meaning.";

/// Convert a seccomp profile between dialects.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct ConvertArgs {
    /// The profile to convert (any supported dialect; `-` reads stdin).
    pub profile: PathBuf,
    /// Output dialect.
    #[arg(long, value_enum, default_value_t = Format::Oci)]
    pub format: Format,
    /// Kubernetes object name, for --format spo and k8s-snippet. Default: the
    /// input's SPO metadata.name, else the input file's name, else the output's.
    #[arg(long)]
    pub name: Option<String>,
    /// Where to write (atomically). Default: stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Do not add the clone3 -> ENOSYS rule to profiles that do not allow clone3.
    #[arg(long)]
    pub no_enosys_clone3: bool,
}

/// Warnings a command other than `check` prints per input; `check` lists
/// them all.
const SHOWN_WARNINGS: usize = 10;

/// Reads a profile, printing its first warnings to stderr.
pub(crate) fn load(path: &Path) -> Result<Loaded, Failure> {
    let loaded = profile::read_file(path)?;
    print_warnings(&loaded, path);
    Ok(loaded)
}

/// The first [`SHOWN_WARNINGS`] warnings, then how many more there are.
pub(crate) fn print_warnings(loaded: &Loaded, path: &Path) {
    for w in loaded.warnings.iter().take(SHOWN_WARNINGS) {
        eprintln!("recorder: {w}");
    }
    if loaded.warnings.len() > SHOWN_WARNINGS {
        eprintln!("recorder: more warnings not shown; `recorder check {}` lists them", path.display());
    }
}

/// The object name: --name, else the input's SPO name, else the first of
/// `files` whose name (without extension) is a valid Kubernetes name.
pub(crate) fn object_name(explicit: Option<&str>, input: Option<&str>, files: &[&Path]) -> Option<String> {
    if let Some(n) = explicit.or(input) {
        return Some(n.to_owned());
    }
    files.iter().find_map(|f| {
        let stem = f.file_stem()?.to_str()?.to_ascii_lowercase();
        crate::k8s_name::is_subdomain(&stem).then_some(stem)
    })
}

pub(crate) fn write_failure(e: write::WriteError) -> Failure {
    Failure::new(Code::BadProfile, e)
}

pub fn execute(args: ConvertArgs) -> Result<u8, Failure> {
    let out = Output::prepare(args.output.as_deref()).map_err(|e| Failure::new(Code::OutputUnwritable, e))?;
    let loaded = load(&args.profile)?;
    let mut p = loaded.profile;
    if !args.no_enosys_clone3 {
        p = p.with_enosys_clone3();
    }
    let opts = WriteOptions {
        // The profile's own file names it; for SPO output the output file may.
        name: object_name(
            args.name.as_deref(),
            loaded.name.as_deref(),
            &[Some(args.profile.as_path()), args.output.as_deref()].into_iter().flatten().collect::<Vec<_>>(),
        ),
        // An SPO resource keeps its annotations (e.g. syscall coverage).
        annotations: loaded.annotations,
    };
    let written = write::write(&p, args.format, &opts).map_err(write_failure)?;
    for w in &written.warnings {
        eprintln!("recorder: warning: {w}");
    }
    out.commit(&written.text).map_err(|e| Failure::new(Code::OutputUnwritable, e))?;
    Ok(Code::Ok.as_u8())
}
