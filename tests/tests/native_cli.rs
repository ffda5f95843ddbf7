//! A CLI that feels native: completions and man pages that cover every
//! subcommand and flag, `explain`, colour only where it belongs, and nothing
//! on stdout but the requested output.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
};

use clap::CommandFactory as _;
use recorder_tests::{assert_exit, recorder, recorder_bin, workspace_root};

/// Every visible (sub)command path and its visible long flags, from the
/// clap definitions: `[] -> [--verbose, --color, ...]`, `[record] -> [...]`.
fn visible_commands() -> BTreeMap<Vec<String>, Vec<String>> {
    fn walk(cmd: &clap::Command, path: Vec<String>, out: &mut BTreeMap<Vec<String>, Vec<String>>) {
        let longs =
            cmd.get_arguments().filter(|a| !a.is_hide_set()).filter_map(|a| a.get_long().map(str::to_owned)).collect();
        out.insert(path.clone(), longs);
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
            let mut p = path.clone();
            p.push(sub.get_name().to_owned());
            walk(sub, p, out);
        }
    }
    let mut cmd = recorder::cli::Cli::command();
    cmd.build();
    let mut out = BTreeMap::new();
    walk(&cmd, Vec::new(), &mut out);
    out
}

fn completion(shell: &str) -> String {
    let out = recorder(&["completions", shell]);
    assert_exit(&out, 0, &format!("completions {shell}"));
    String::from_utf8(out.stdout).expect("utf8")
}

#[test]
fn completions_and_man_pages_cover_every_subcommand_and_flag() {
    let commands = visible_commands();
    assert!(commands.len() >= 12, "the walk found the subcommands: {:?}", commands.keys());
    let man_dir = tempfile::tempdir().expect("tmp");
    let out = recorder(&["man", "--dir", man_dir.path().to_str().expect("utf8")]);
    assert_exit(&out, 0, "man --dir");
    let mut missing = Vec::new();
    for shell in ["bash", "zsh", "fish"] {
        let script = completion(shell);
        for (path, longs) in &commands {
            if let Some(name) = path.last()
                && !script.contains(name.as_str())
            {
                missing.push(format!("{shell}: subcommand {}", path.join(" ")));
            }
            for long in longs {
                // fish spells a long flag `-l NAME`; bash and zsh `--NAME`.
                let found = script.contains(&format!("--{long}")) || script.contains(&format!("-l {long}"));
                if !found {
                    missing.push(format!("{shell}: recorder {} --{long}", path.join(" ")));
                }
            }
        }
    }
    for (path, longs) in &commands {
        let page_name =
            std::iter::once("recorder").chain(path.iter().map(String::as_str)).collect::<Vec<_>>().join("-");
        let page = man_dir.path().join(format!("{page_name}.1"));
        let Ok(text) = std::fs::read_to_string(&page) else {
            missing.push(format!("man page {}", page.display()));
            continue;
        };
        for long in longs {
            // roff escapes every '-' as "\-", inside names too.
            if !text.contains(&format!("--{long}").replace('-', "\\-")) {
                missing.push(format!("{page_name}.1: --{long}"));
            }
        }
    }
    assert!(missing.is_empty(), "not covered:\n{}", missing.join("\n"));
    // The hidden generator itself is not documented as a user command.
    assert!(!man_dir.path().join("recorder-man.1").exists());
}

#[test]
fn completions_for_an_unknown_shell_are_a_usage_error() {
    let out = recorder(&["completions", "tcsh"]);
    assert_exit(&out, 2, "completions tcsh");
}

#[test]
fn explain_says_what_where_how_and_why() {
    let out = recorder(&["explain", "ptrace", "read"]);
    assert_exit(&out, 0, "explain ptrace read");
    let text = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "ptrace: process trace (ptrace(2))",
        "x86_64 101",
        "aarch64 117",
        "runtime/default:",
        "on kernel 4.8 and later",
        "with CAP_SYS_PTRACE",
        "risky: reads and writes other processes' memory",
        "read: read from a file descriptor (read(2))",
        "risky: not on diff's list",
    ] {
        assert!(text.contains(expected), "{expected:?} missing from:\n{text}");
    }
    assert!(!text.contains('\x1b'), "no colour when stdout is not a terminal");
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn explain_refuses_an_unknown_name_with_a_suggestion_and_exit_34() {
    let out = recorder(&["explain", "opnat"]);
    assert_exit(&out, 34, "explain opnat");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("unknown syscall \"opnat\"; did you mean \"openat\"?"), "{stderr}");
    assert!(out.stdout.is_empty());
    // A known name next to an unknown one is still explained.
    let out = recorder(&["explain", "read", "opnat"]);
    assert_exit(&out, 34, "explain read opnat");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("read: "));
}

fn risky_profile() -> PathBuf {
    let dir = recorder_tests::scratch_dir();
    let path = dir.join("colour-ptrace.json");
    recorder_tests::write_profile(&path, &["read", "ptrace", "mount"].iter().map(|s| (*s).to_owned()).collect());
    path
}

/// Runs `recorder ARGS` under a pseudo-terminal (util-linux `script`), so
/// stdout is a terminal; returns what it printed.
fn on_a_terminal(args: &[&str], env: &[(&str, &str)]) -> String {
    let line = std::iter::once(recorder_bin().display().to_string())
        .chain(args.iter().map(|a| format!("'{a}'")))
        .collect::<Vec<_>>()
        .join(" ");
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"]).env_remove("NO_COLOR").env("TERM", "xterm");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("script(1) from util-linux runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn diff_and_check_colour_only_a_terminal_unless_told() {
    let profile = risky_profile();
    let p = profile.to_str().expect("utf8");
    // Piped: plain, whatever the terminal would get.
    let piped = recorder(&["diff", p]);
    assert!(!String::from_utf8_lossy(&piped.stdout).contains('\x1b'));
    let forced = recorder(&["--color", "always", "diff", p]);
    assert!(String::from_utf8_lossy(&forced.stdout).contains("\x1b[33m"), "risky names in yellow");
    // The global flag works after the subcommand too.
    let forced = recorder(&["diff", p, "--color=always"]);
    assert!(String::from_utf8_lossy(&forced.stdout).contains('\x1b'));
    // A terminal: colour, unless NO_COLOR or --color never.
    assert!(on_a_terminal(&["diff", p], &[]).contains('\x1b'), "auto colours a terminal");
    assert!(!on_a_terminal(&["diff", p], &[("NO_COLOR", "1")]).contains('\x1b'), "NO_COLOR");
    assert!(!on_a_terminal(&["--color", "never", "diff", p], &[]).contains('\x1b'), "--color never");

    let bad = recorder_tests::scratch_dir().join("colour-bad.json");
    std::fs::write(&bad, r#"{"defaultAction": "SCMP_ACT_NOPE", "syscalls": []}"#).expect("write");
    let b = bad.to_str().expect("utf8");
    assert!(on_a_terminal(&["check", b], &[]).contains("\x1b[31merror\x1b[0m"), "errors in red");
    let plain = recorder(&["check", b]);
    assert_exit(&plain, 31, "check of a bad profile");
    assert!(String::from_utf8_lossy(&plain.stdout).contains(": error: "));
    assert!(!String::from_utf8_lossy(&plain.stdout).contains('\x1b'));
}

#[test]
fn record_format_needs_a_name_before_it_records() {
    // Refused before anything is loaded: no root or BPF involved.
    let out = recorder(&["record", "--format", "spo", "-o", "-", "--", "true"]);
    assert_exit(&out, 2, "--format spo to stdout without --name");
    assert!(String::from_utf8_lossy(&out.stderr).contains("pass --name"));
    let out = recorder(&["record", "--format", "spo", "--name", "Not_Valid", "-o", "-", "--", "true"]);
    assert_exit(&out, 12, "an invalid object name");
    // Two outputs on stdout.
    let out = recorder(&["record", "--json-summary", "-", "--", "true"]);
    assert_exit(&out, 11, "profile and JSON summary both on stdout");
}

/// Files in recorder/src that may write to stdout, and what they write there.
const STDOUT_WRITERS: [(&str, &str); 7] = [
    ("cli/diff.rs", "the comparison, as asked"),
    ("cli/suggest.rs", "the patch, as asked (stderr when -o - puts the patched profile there)"),
    ("cli/check.rs", "the problems found, as asked"),
    ("cli/explain.rs", "the explanations, as asked"),
    ("cli/likely.rs", "the paths not taken, as asked"),
    ("cli/inspect.rs", "the filter a process runs under, as asked"),
    ("cli/record/pod.rs", "--install's securityContext snippet, its output"),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Does this line write to stdout? `print!`/`println!` (not `eprint!`), or
/// stdout's handle.
fn prints_to_stdout(code: &str) -> bool {
    let macro_call = ["print!(", "println!("]
        .iter()
        .any(|m| code.match_indices(m).any(|(i, _)| !code[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_')));
    macro_call || ["stdout().write", "stdout().lock"].iter().any(|p| code.contains(p))
}

#[test]
fn nothing_but_the_requested_output_goes_to_stdout() {
    assert!(prints_to_stdout("print!(\"{x}\");") && prints_to_stdout("    println!(\"a\")"));
    assert!(!prints_to_stdout("eprintln!(\"a\")") && !prints_to_stdout("eprint!(\"{text}\")"));
    let src = workspace_root().join("recorder/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).expect("under src").to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&file).expect("read");
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            let prints = prints_to_stdout(code);
            if prints && !STDOUT_WRITERS.iter().any(|(f, _)| *f == rel) {
                wrong.push(format!("{rel}:{}: {code}", n + 1));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "summaries, warnings and progress go to stderr (eprintln!); stdout is for the requested output only \
         (a profile through output::Output, or a file listed in STDOUT_WRITERS):\n{}",
        wrong.join("\n")
    );
}
