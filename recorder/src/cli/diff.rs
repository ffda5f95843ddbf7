//! `recorder diff`: a profile against runtime/default or another profile.

use std::{collections::BTreeSet, path::PathBuf};

use crate::{
    algebra::diff::{self, Side, Treatment},
    cli::exit::{Code, Failure},
    profile::{
        EvalContext, attribution::AttributionFile, catalog, evaluate::parse_kernel, runtime_default::RuntimeDefault,
    },
    text::Paint,
};

const EXAMPLES: &str = "\
Examples:
  recorder diff app.json                            # against runtime/default (moby)
  recorder diff app.json --against runtime/default:containerd
  recorder diff app.json --against old-app.json     # drift between two versions
  recorder diff app.json --json | jq '.only_in_profile'
  recorder diff new.json --against approved.json --fail-on-added   # CI gate: exit 30 on drift
  recorder diff app.json --cap SYS_ADMIN            # baseline for a container with CAP_SYS_ADMIN
  recorder diff app.json --by-exe app.by-exe.json   # who makes each risky call (record --by-exe)

The table answers: 1. what the profile needs that the base blocks (it would break
under RuntimeDefault); 2. what the base allows that the profile does not (attack
surface removed); 3. which risky syscalls the profile still allows, and why they
are risky. Syscalls allowed only with certain arguments (socket families,
personality, clone flags) are listed with those arguments.

runtime/default is moby's default profile evaluated as a runtime does: for this
host's architecture, Docker's default capabilities plus --cap, and the running
kernel (or --kernel) for minKernel rules. --json prints one object with the keys
base, profile, only_in_profile, only_in_base, in_both, conditional, risky (and
risky_reasons, sources, architectures, counts); each holds {\"all\": ...} when every
architecture agrees, else one entry per architecture.";

/// Compare a profile with runtime/default or another profile.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct DiffArgs {
    /// The profile to examine (any supported dialect; `-` reads stdin).
    pub profile: PathBuf,
    /// The base: runtime/default (moby), runtime/default:containerd, or a profile file.
    #[arg(long, value_name = "BASE", default_value = "runtime/default")]
    pub against: String,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// A capability the container has beyond Docker's defaults (repeatable), e.g. --cap SYS_ADMIN.
    #[arg(long = "cap", value_name = "CAP")]
    pub caps: Vec<String>,
    /// Kernel version for minKernel rules, e.g. 5.10. Default: the running kernel.
    #[arg(long, value_name = "X.Y")]
    pub kernel: Option<String>,
    /// Architecture to evaluate templates for, e.g. arm64. Default: this host.
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<String>,
    /// Show which executables made each risky call, from `record --by-exe
    /// FILE` (information only: a profile cannot differ per executable).
    #[arg(long, value_name = "FILE")]
    pub by_exe: Option<PathBuf>,
    /// Exit 30 when the profile permits something the base does not.
    #[arg(long)]
    pub fail_on_added: bool,
    /// Exit 30 when the base permits something the profile does not.
    #[arg(long)]
    pub fail_on_removed: bool,
}

fn usage(message: String) -> Failure {
    Failure::new(Code::Usage, anyhow::anyhow!(message))
}

fn context(args: &DiffArgs) -> Result<EvalContext, Failure> {
    let mut ctx = EvalContext::host();
    for cap in &args.caps {
        let c = catalog::normalise_cap(cap).ok_or_else(|| {
            let hint = catalog::suggest(&cap.to_ascii_uppercase(), catalog::CAPS)
                .map(|s| format!("; did you mean {s}?"))
                .unwrap_or_else(|| "; use names like SYS_ADMIN or CAP_NET_ADMIN".to_owned());
            usage(format!("unknown capability {cap:?}{hint}"))
        })?;
        ctx.caps.insert(c.to_owned());
    }
    if let Some(k) = &args.kernel {
        ctx.kernel = Some(parse_kernel(k).ok_or_else(|| usage(format!("--kernel {k:?} is not a version like 5.10")))?);
    }
    if let Some(a) = &args.arch {
        ctx.native = catalog::arch_from_user(a)
            .ok_or_else(|| usage(format!("unknown --arch {a:?}; use amd64, arm64, riscv64 or an SCMP_ARCH_* name")))?;
    }
    Ok(ctx)
}

fn side(spec: &str, ctx: &EvalContext) -> Result<Side, Failure> {
    if let Some(b) = RuntimeDefault::from_spec(spec) {
        let template = b.template()?;
        return Ok(Side { label: b.label().to_owned(), profile: template.evaluate(ctx) });
    }
    if spec.starts_with("runtime/default") {
        return Err(usage(format!("unknown baseline {spec:?}; use runtime/default or runtime/default:containerd")));
    }
    let loaded = super::convert::load(std::path::Path::new(spec))?;
    Ok(Side { label: spec.to_owned(), profile: loaded.profile.evaluate(ctx) })
}

pub fn execute(args: DiffArgs, paint: Paint) -> Result<u8, Failure> {
    let ctx = context(&args)?;
    let base = side(&args.against, &ctx)?;
    let profile = side(&args.profile.display().to_string(), &ctx)?;
    let mut d = diff::diff(&base, &profile);
    if let Some(path) = &args.by_exe {
        d.made_by = AttributionFile::read(path)?.by_syscall();
    }
    if args.json {
        print!("{}", diff::json(&d));
    } else {
        print!("{}", diff::human(&d, paint));
    }
    let mut added = BTreeSet::new();
    let mut removed = BTreeSet::new();
    for (_, a) in d.iter() {
        added.extend(a.only_in_profile.iter().cloned());
        removed.extend(a.only_in_base.iter().cloned());
        for (name, (b, p)) in &a.conditional {
            if !(b.permits() && p.permits()) || b == p {
                continue;
            }
            // Both permit it, under different arguments: which way it moved
            // cannot always be told, so a gate treats any change as drift,
            // except the clear cases of gaining or losing all conditions.
            let (loosened, tightened) = match (b, p) {
                (Treatment::AllowedWhen(_), Treatment::Allowed) => (true, false),
                (Treatment::Allowed, Treatment::AllowedWhen(_)) => (false, true),
                _ => (true, true),
            };
            if loosened {
                added.insert(format!("{name} (argument conditions)"));
            }
            if tightened {
                removed.insert(format!("{name} (argument conditions)"));
            }
        }
    }
    let mut drift = false;
    if args.fail_on_added && !added.is_empty() {
        eprintln!(
            "recorder: drift: {} permits what {} does not: {}",
            d.profile_label,
            d.base_label,
            added.into_iter().collect::<Vec<_>>().join(", ")
        );
        drift = true;
    }
    if args.fail_on_removed && !removed.is_empty() {
        eprintln!(
            "recorder: drift: {} permits what {} does not: {}",
            d.base_label,
            d.profile_label,
            removed.into_iter().collect::<Vec<_>>().join(", ")
        );
        drift = true;
    }
    Ok(if drift { Code::Drift } else { Code::Ok }.as_u8())
}
