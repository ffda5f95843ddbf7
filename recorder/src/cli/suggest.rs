//! `recorder suggest`: the patch that lets a workload do what its profile
//! denied, as a unified diff, with the risky additions named.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
};

use super::exit::{Code, Failure};
use crate::{
    algebra::suggest::{suggest, unified_diff},
    output::Output,
    profile,
};

const EXAMPLES: &str = "\
Examples:
  recorder run --profile app.json --learn -o denied.json -- ./app
  recorder suggest app.json denied.json                   # the patch, as a unified diff
  recorder suggest app.json denied.json -o app-fixed.json # and the patched profile

DENIED is what `recorder run --learn` writes (or a `record --learn
--json-summary`, whose profiles[].denied lists the same). Additions that are
risky (the same list as `recorder diff`) are named on stderr with why: read
them before applying the patch.";

/// Patch a profile with the calls it denied (from `run --learn`).
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct SuggestArgs {
    /// The profile the workload ran under (any dialect).
    pub profile: PathBuf,
    /// The denials: `recorder run --learn -o` output.
    pub denied: PathBuf,
    /// Write the patched profile (OCI) here.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn execute(args: SuggestArgs) -> Result<u8, Failure> {
    let output = args.output.as_deref().map(|p| Output::prepare(Some(p))).transpose()?;
    let loaded = profile::read_file(&args.profile)?;
    let text = std::fs::read_to_string(&args.denied)
        .map_err(|e| Failure::new(Code::BadProfile, anyhow::anyhow!("cannot read {}: {e}", args.denied.display())))?;
    let report: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        Failure::new(
            Code::BadProfile,
            anyhow::anyhow!(
                "{} is not a denials report ({e}); make one with `recorder run --learn -o FILE`",
                args.denied.display()
            ),
        )
    })?;
    // `run --learn` has "denied" at the top; a JSON summary per profile.
    let lists: Vec<&serde_json::Value> = match report.get("denied") {
        Some(list) => vec![list],
        None => report["profiles"].as_array().into_iter().flatten().filter_map(|p| p.get("denied")).collect(),
    };
    let mut denied: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for item in lists.into_iter().filter_map(serde_json::Value::as_array).flatten() {
        let (Some(name), arch) = (item["name"].as_str(), item["arch"].as_str()) else { continue };
        denied.entry(name.to_owned()).or_default().extend(arch.map(str::to_owned));
    }
    let s = suggest(&loaded.profile, &denied);
    let before = loaded.profile.to_oci_json();
    let after = s.patched.to_oci_json();
    let patch = unified_diff(&before, &after, &args.profile.display().to_string(), "patched");
    // With `-o -` the patched profile is what stdout carries (so it can be
    // piped); the patch then goes to stderr.
    if matches!(output, Some(Output::Stdout)) {
        eprint!("{patch}");
    } else {
        print!("{patch}");
    }
    for (name, why) in &s.risky {
        eprintln!("recorder: warning: the patch adds {name}, which is risky: {why}");
    }
    eprintln!(
        "recorder: {} added: {}",
        crate::text::count(s.added.len() as u64, "call", "calls"),
        if s.added.is_empty() {
            "none (the profile already allows every denied call)".to_owned()
        } else {
            s.added.keys().cloned().collect::<Vec<_>>().join(" ")
        }
    );
    if let Some(output) = output {
        output.commit(&after)?;
    }
    Ok(0)
}
