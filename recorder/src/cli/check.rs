//! `recorder check`: validate profiles and list every problem.

use std::path::PathBuf;

use crate::{
    cli::exit::{Code, Failure},
    profile::{self, Diagnostic, ProfileError, Severity},
    text::Paint,
};

const EXAMPLES: &str = "\
Examples:
  recorder check app.json
  recorder check profiles/*.json --strict     # warnings fail too (CI)

Each problem is printed as FILE:LINE:COLUMN: error|warning: MESSAGE. Errors are
what a runtime would refuse or misread: malformed JSON/YAML, an unknown action,
architecture, op or flag, an empty names list, errnoRet on an action that takes
none, more than 6 argument conditions. Warnings are what it would accept but
you probably did not mean: an unknown syscall name (with the nearest known one),
an unknown key, a name listed twice.";

/// Validate seccomp profiles, listing every problem with file, line and column.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct CheckArgs {
    /// Profiles to check (any supported dialect; `-` reads stdin).
    #[arg(required = true)]
    pub profiles: Vec<PathBuf>,
    /// Fail on warnings as well as errors.
    #[arg(long)]
    pub strict: bool,
    /// Print only problems, not the per-file summary.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `FILE:LINE:COLUMN: error|warning: MESSAGE`, the level coloured.
fn render(d: &Diagnostic, paint: Paint) -> String {
    let level = match d.severity {
        Severity::Error => paint.red("error"),
        Severity::Warning => paint.yellow("warning"),
    };
    format!("{}:{}:{}: {level}: {}", d.path, d.pos.line, d.pos.column, d.message)
}

pub fn execute(args: CheckArgs, paint: Paint) -> Result<u8, Failure> {
    let mut failed = false;
    let mut too_large = false;
    for path in &args.profiles {
        let shown = if path.as_os_str() == "-" { "<stdin>".to_owned() } else { path.display().to_string() };
        let report = profile::read_text(path).and_then(|text| profile::check_str(&text, &shown));
        let report = match report {
            Ok(r) => r,
            Err(e) => {
                too_large |= matches!(e, ProfileError::TooLarge { .. } | ProfileError::TooDeep { .. });
                for d in e.diagnostics() {
                    println!("{}", render(&d, paint));
                }
                failed = true;
                continue;
            }
        };
        for d in &report.problems {
            println!("{}", render(d, paint));
        }
        let errors = report.errors();
        let warnings = report.problems.iter().filter(|d| d.severity == Severity::Warning).count();
        if errors > 0 || (args.strict && warnings > 0) {
            failed = true;
        }
        if !args.quiet {
            let dialect = report.dialect.map_or("unrecognised", |d| d.describe());
            let verdict = if errors > 0 { "INVALID" } else { "ok" };
            eprintln!("{shown}: {verdict} ({dialect}; {errors} errors, {warnings} warnings)");
            if let Some(l) = &report.loaded
                && l.profile.is_template()
            {
                eprintln!(
                    "{shown}: note: containerd ignores moby's archMap/includes/excludes; `recorder convert` writes plain OCI"
                );
            }
        }
    }
    Ok(match (too_large, failed) {
        (true, _) => Code::InputTooLarge,
        (false, true) => Code::CheckFailed,
        (false, false) => Code::Ok,
    }
    .as_u8())
}
