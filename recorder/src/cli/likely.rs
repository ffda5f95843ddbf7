//! `recorder likely`: the paths not taken. From the executables a recording
//! saw (`record --by-exe FILE`, or `--exe`), the calls they can make that
//! the profile does not allow, each with its reason. Also what `record
//! --likely` and `diff --likely` print.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use crate::{
    audit::{self, Likely, Reason, Root, RootError},
    cli::exit::{Code, Failure},
    output::Output,
    profile::{Action, Profile, SyscallRule, attribution::AttributionFile},
    syscalls::{Arch, Family},
};

const EXAMPLES: &str = "\
Examples:
  recorder record -o redis.json --by-exe redis.exe.json -- redis-server --save ''
  recorder likely redis.json --by-exe redis.exe.json
  # clone  /usr/bin/redis-server imports fork: not in the profile (never called while recording)
  recorder likely app.json --by-exe app.exe.json --pid 4242      # files as container 4242 sees them
  recorder likely app.json --exe /usr/sbin/nginx --root ./rootfs
  recorder likely app.json --by-exe app.exe.json --with-likely -o app-likely.json
  recorder record --likely -o app.json -- ./app                  # the same, in the record summary

A dynamically linked executable's imports, and those of every library it
needs (DT_NEEDED, found inside the root), are mapped to syscalls with a table
derived from glibc 2.36's and musl 1.2.5's sources (docs/libc-syscalls.md).
Go binaries: their syscall wrappers and process starts, by function name, and
raw syscall sites. Static binaries: raw syscall sites only. A call can be
likely and still never happen: this is a list to review, never added to a
profile unless --with-likely asks for it.";

/// Name the calls the recorded executables can make that a profile lacks.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct LikelyArgs {
    /// The profile to check (any dialect).
    pub profile: PathBuf,
    /// The executables a recording saw: a `record --by-exe` file.
    #[arg(long, value_name = "FILE")]
    pub by_exe: Option<PathBuf>,
    /// An executable to analyse (repeatable), as the workload sees its path.
    #[arg(long = "exe", value_name = "PATH")]
    pub exes: Vec<String>,
    /// Read the executables inside this root directory (a container's rootfs).
    #[arg(long, value_name = "DIR", conflicts_with = "pid")]
    pub root: Option<PathBuf>,
    /// Read the executables as this running process sees them (/proc/PID/root).
    #[arg(long, value_name = "PID")]
    pub pid: Option<i32>,
    /// Also name calls that only a library the executables load imports
    /// (weaker evidence: a library imports what any of its users needs).
    #[arg(long)]
    pub libraries: bool,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Write the profile with the likely calls allowed too (-o), on purpose.
    #[arg(long, requires = "output")]
    pub with_likely: bool,
    /// Where --with-likely writes the profile.
    #[arg(short, long, value_name = "FILE", requires = "with_likely")]
    pub output: Option<PathBuf>,
}

/// Every executable path in a `--by-exe` file (not the "(exec not seen)" kind).
pub fn executables(file: &AttributionFile) -> Vec<String> {
    let set: BTreeSet<String> =
        file.profiles.iter().flat_map(|p| p.executables.keys()).filter(|e| !e.starts_with('(')).cloned().collect();
    set.into_iter().collect()
}

/// Names a profile already has a rule for, on purpose: allowed, or answered
/// otherwise (the clone3 ENOSYS rule makes libc fall back to clone).
pub fn handled(profile: &Profile) -> BTreeSet<String> {
    profile.syscalls.iter().flat_map(|r| r.names.iter().cloned()).collect()
}

/// The likely calls for the native architecture of this host: with
/// `libraries`, also those only a loaded library imports; the second value
/// counts the calls left out without it.
pub fn analyze(paths: &[String], root: &Root, profile: &Profile, libraries: bool) -> (Likely, usize) {
    let all = audit::analyze(paths, root, &handled(profile), Family::host().native);
    if libraries { (all, 0) } else { all.direct() }
}

/// `profile` with the likely calls allowed (one more ALLOW rule).
pub fn with_likely(mut profile: Profile, likely: &Likely) -> Profile {
    if !likely.calls.is_empty() {
        profile.syscalls.push(SyscallRule::new(likely.calls.keys(), Action::Allow));
    }
    profile
}

/// One line per likely call: its reasons, grouped per file.
pub fn render(likely: &Likely, _profile_label: &str, indent: &str) -> String {
    let mut out = String::new();
    let width = likely.calls.keys().map(String::len).max().unwrap_or(0);
    for (name, reasons) in &likely.calls {
        out.push_str(&format!("{indent}{name:width$}  {}\n", summarize(reasons)));
    }
    out
}

/// "/usr/bin/redis-server imports fork, posix_spawn (and 3 libraries)":
/// an executable's own evidence first; libraries only when nothing else
/// says it; at most 3 files and 4 functions each.
fn summarize(reasons: &[Reason]) -> String {
    let mut by_object: BTreeMap<(bool, String, String), Vec<String>> = BTreeMap::new();
    for r in reasons {
        let how = match &r.via {
            audit::Via::Import { function } => format!("imports {function}"),
            audit::Via::GoFunction { function } => format!("has {function}"),
            audit::Via::RawSyscall { address } => format!("has a syscall site at {address}"),
        };
        let library = r.object != r.executable && !r.object.starts_with("/bin/") && !r.object.starts_with("/usr/bin/");
        by_object.entry((library, r.executable.clone(), r.object.clone())).or_default().push(how);
    }
    let direct = by_object.keys().filter(|(library, _, _)| !library).count();
    let libraries = by_object.len() - direct;
    let shown: Vec<_> = if direct > 0 {
        by_object.into_iter().filter(|((library, _, _), _)| !library).collect()
    } else {
        by_object.into_iter().collect()
    };
    let n = shown.len();
    let mut parts: Vec<String> = shown
        .into_iter()
        .take(3)
        .map(|((_, exe, object), mut hows)| {
            hows.dedup();
            let more = if hows.len() > 4 { format!(" and {} more", hows.len() - 4) } else { String::new() };
            let hows = hows.into_iter().take(4).collect::<Vec<_>>().join(", ");
            if exe == object { format!("{exe} {hows}{more}") } else { format!("{exe} {hows}{more} (in {object})") }
        })
        .collect();
    if n > 3 {
        parts.push(format!("and {} more files", n - 3));
    }
    let mut text = parts.join("; ");
    if direct > 0 && libraries > 0 {
        text.push_str(&format!(" (and {})", crate::text::count(libraries as u64, "library", "libraries")));
    }
    text
}

/// What each examined executable was, one line each.
pub fn render_examined(likely: &Likely, indent: &str) -> String {
    likely
        .examined
        .iter()
        .map(|e| {
            let libs =
                if e.libraries.is_empty() { String::new() } else { format!(", {} libraries", e.libraries.len()) };
            format!("{indent}{} ({}{libs}): {}\n", e.executable, e.kind, e.note)
        })
        .collect()
}

/// The `likely` part of a JSON summary or report: every call "predicted,
/// not observed", with its reasons, and whether it was merged.
pub fn json(likely: &Likely, merged: bool, library_only_left_out: usize) -> serde_json::Value {
    let calls: Vec<serde_json::Value> = likely
        .calls
        .iter()
        .map(|(name, reasons)| {
            serde_json::json!({
                "name": name,
                "status": "predicted, not observed",
                "merged": merged,
                "reasons": reasons,
            })
        })
        .collect();
    serde_json::json!({
        "architecture": likely.architecture,
        "table": audit::table::SOURCES,
        "merged": merged,
        "calls": calls,
        "library_only_left_out": library_only_left_out,
        "examined": likely.examined,
    })
}

pub fn open_root(root: Option<&Path>, pid: Option<i32>) -> Result<Root, Failure> {
    let opened = match (root, pid) {
        (Some(dir), _) => Root::open(dir),
        (None, Some(pid)) => Root::of_pid(pid),
        (None, None) => Root::open(Path::new("/")),
    };
    opened.map_err(|e: RootError| Failure::new(Code::TargetNotFound, e))
}

pub fn execute(args: LikelyArgs) -> Result<u8, Failure> {
    let loaded = super::convert::load(&args.profile)?;
    let profile = loaded.profile.evaluate(&crate::profile::EvalContext::host());
    let mut paths = args.exes.clone();
    if let Some(file) = &args.by_exe {
        paths.extend(executables(&AttributionFile::read(file)?));
    }
    if paths.is_empty() {
        return Err(Failure::new(
            Code::Usage,
            anyhow::anyhow!("no executables: pass --by-exe FILE (from `record --by-exe`) or --exe PATH"),
        ));
    }
    let output = args.output.as_deref().map(|p| Output::prepare(Some(p))).transpose()?;
    let root = open_root(args.root.as_deref(), args.pid)?;
    let (likely, left_out) = analyze(&paths, &root, &profile, args.libraries);
    let label = args.profile.display().to_string();
    if args.json {
        let mut text = serde_json::to_string_pretty(&json(&likely, args.with_likely, left_out))
            .map_err(|e| Failure::new(Code::Internal, e))?;
        text.push('\n');
        print!("{text}");
    } else {
        println!(
            "{} the executables can make that {label} does not allow, never called while recording ({}):",
            crate::text::count(likely.calls.len() as u64, "likely call", "likely calls"),
            Arch::scmp_name(Family::host().native)
        );
        print!("{}", render(&likely, &label, "  "));
        if left_out > 0 {
            println!("  (and {left_out} more that only a library they load imports; --libraries lists them)");
        }
        println!("examined:");
        print!("{}", render_examined(&likely, "  "));
    }
    if let Some(out) = output {
        out.commit(&with_likely(profile, &likely).to_oci_json())?;
        eprintln!(
            "recorder: wrote {} with {} predicted, not observed",
            args.output.as_deref().map(Path::display).map(|d| d.to_string()).unwrap_or_default(),
            crate::text::count(likely.calls.len() as u64, "call", "calls")
        );
    }
    Ok(0)
}
