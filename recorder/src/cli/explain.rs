//! `recorder explain NAME...`: what a syscall does, where it exists, how
//! runtime/default treats it, and why it is risky.

use std::fmt::Write as _;

use recorder_common::X32_SYSCALL_BIT;

use crate::{
    algebra::{
        diff::describe,
        explain::{ExplainError, Explanation, explain},
    },
    cli::exit::{Code, Failure},
    profile::{EvalContext, catalog},
    syscalls::Arch,
    text::Paint,
};

const EXAMPLES: &str = "\
Examples:
  recorder explain ptrace
  recorder explain clone3 io_uring_setup personality

For each name: what it does (the NAME line of its page in man-pages section 2;
names without a page say so), the architectures that have it and its number on
each, how runtime/default (moby's default) and runtime/default:containerd treat
it on this host (its architecture, Docker's default capabilities, the running
kernel) and every rule of theirs that names it, and why it is risky when diff
lists it as risky. A name that is no syscall is one line on stderr with the
nearest known name, and exit code 33.";

/// Explain syscalls: what they do, where they exist, what runtime/default does with them.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct ExplainArgs {
    /// Syscall names, e.g. ptrace clone3.
    #[arg(value_name = "NAME", required = true)]
    pub names: Vec<String>,
}

pub fn execute(args: ExplainArgs, paint: Paint) -> Result<u8, Failure> {
    let ctx = EvalContext::host();
    let mut unknown = false;
    let mut out = String::new();
    for name in &args.names {
        match explain(name, &ctx) {
            Ok(e) => {
                if !out.is_empty() {
                    out.push('\n');
                }
                render(&mut out, &e, &ctx, paint);
            }
            Err(ExplainError::Unknown(e)) => {
                unknown = true;
                eprintln!("recorder: error: {e}");
            }
            Err(e) => return Err(e.into()),
        }
    }
    print!("{out}");
    Ok(if unknown { Code::UnknownSyscall } else { Code::Ok }.as_u8())
}

/// `SCMP_ARCH_X86_64` -> `x86_64`.
fn arch_word(scmp: &str) -> String {
    scmp.trim_start_matches("SCMP_ARCH_").to_ascii_lowercase()
}

fn render(out: &mut String, e: &Explanation, ctx: &EvalContext, paint: Paint) {
    let what = match e.description {
        Some((text, page)) => format!("{text} ({page})"),
        None => "no description: man-pages has no page for it".to_owned(),
    };
    let _ = writeln!(out, "{}: {what}", paint.bold(&e.name));
    let arches: Vec<String> = e
        .arches
        .iter()
        .map(|(a, nr)| match a {
            // x32 numbers carry the x32 bit (__X32_SYSCALL_BIT).
            Arch::X32 => format!("x32 {X32_SYSCALL_BIT:#x}+{nr}"),
            a => format!("{} {nr}", arch_word(a.scmp_name())),
        })
        .collect();
    let arches = if arches.is_empty() {
        "none of the syscall tables; only a runtime default names it".to_owned()
    } else {
        arches.join(", ")
    };
    let _ = writeln!(out, "  exists on: {arches}");
    let kernel = ctx.kernel.map(|(a, b)| format!(", kernel {a}.{b}")).unwrap_or_default();
    let _ = writeln!(out, "  here ({}, Docker's default capabilities{kernel}):", catalog::goarch(ctx.native));
    let mut previous: Option<(&crate::algebra::diff::Treatment, &Vec<String>)> = None;
    for d in &e.defaults {
        let verdict = describe(&d.here);
        let verdict = if d.here.permits() { paint.green(&verdict) } else { paint.red(&verdict) };
        if previous.is_some_and(|(here, rules)| *here == d.here && *rules == d.rules) {
            let _ = writeln!(out, "    {}: the same", d.label);
            continue;
        }
        let _ = writeln!(out, "    {}: {verdict}", d.label);
        if d.rules.is_empty() {
            let _ = writeln!(out, "      no rule names it: the default action (refused) applies");
        }
        for rule in &d.rules {
            let _ = writeln!(out, "      rule: {rule}");
        }
        previous = Some((&d.here, &d.rules));
    }
    match e.risky {
        Some(why) => {
            let _ = writeln!(out, "  {}: {why}", paint.yellow("risky"));
        }
        None => {
            let _ = writeln!(out, "  risky: not on diff's list of risky syscalls");
        }
    }
}
