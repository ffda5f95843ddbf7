//! Property tests for the profile algebra and the dialect writers, and a
//! proptest-driven fuzz test for the parsers.
//!
//! `RECORDER_FUZZ_CASES` sets how many inputs the parser fuzz tries (default
//! 1,000; `cargo xtask test` runs 20,000).

use std::collections::BTreeSet;

use proptest::{collection::vec, prelude::*, sample::subsequence};

use crate::{
    algebra::{
        diff::{Side, diff},
        merge::merge,
    },
    profile::{
        Action, ArgCondition, DEFAULT_ERRNO, EvalContext, Filter, Op, Profile, ProfileError, SyscallRule, catalog,
        parse_str,
        write::{Format, WriteOptions, write},
    },
};

const NAMES: [&str; 12] =
    ["read", "write", "openat", "close", "socket", "clone", "clone3", "mmap", "ptrace", "bpf", "futex", "exit_group"];
const ARCHES: [&str; 5] = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"];

fn op() -> impl Strategy<Value = Op> {
    proptest::sample::select(Op::ALL.to_vec())
}

fn condition(max_value: u64) -> impl Strategy<Value = ArgCondition> {
    (0u32..6, prop_oneof![0..64u64, 0..=max_value], op(), 0..=max_value).prop_map(|(index, value, op, two)| {
        ArgCondition { index, value, value_two: if op == Op::MaskedEqual { two } else { 0 }, op }
    })
}

/// A rule's action and errnoRet, always a valid pair.
fn action() -> impl Strategy<Value = (Action, Option<u32>)> {
    prop_oneof![
        4 => Just((Action::Allow, None)),
        1 => Just((Action::Log, None)),
        1 => Just((Action::KillProcess, None)),
        1 => Just((Action::Trap, None)),
        2 => prop::option::of(prop_oneof![Just(1u32), Just(13), Just(38), 0..4096u32]).prop_map(|e| (Action::Errno, e)),
    ]
}

fn filter() -> impl Strategy<Value = Filter> {
    (
        subsequence(vec!["CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_BPF"], 0..=2),
        subsequence(vec!["amd64", "arm64", "s390x"], 0..=2),
        prop::option::of(Just("4.8")),
    )
        .prop_map(|(caps, arches, k)| Filter {
            caps: caps.into_iter().map(String::from).collect(),
            arches: arches.into_iter().map(String::from).collect(),
            min_kernel: k.map(String::from),
        })
}

fn rule(max_value: u64, templates: bool) -> impl Strategy<Value = SyscallRule> {
    let filters = if templates { filter().boxed() } else { Just(Filter::default()).boxed() };
    let excludes = if templates { filter().boxed() } else { Just(Filter::default()).boxed() };
    let comment = if templates { prop::option::of(Just("a note".to_owned())).boxed() } else { Just(None).boxed() };
    (subsequence(NAMES.to_vec(), 1..=4), action(), vec(condition(max_value), 0..=2), filters, excludes, comment)
        .prop_map(|(names, (action, errno_ret), args, includes, excludes, comment)| SyscallRule {
            names: names.into_iter().map(String::from).collect(),
            action,
            errno_ret,
            args,
            comment,
            includes,
            excludes,
        })
}

/// Profiles that deny by default (allow-lists, what recorder writes).
fn deny_profile(max_value: u64, templates: bool) -> impl Strategy<Value = Profile> {
    let default = prop_oneof![
        3 => prop::option::of(prop_oneof![Just(DEFAULT_ERRNO), Just(38u32)]).prop_map(|e| (Action::Errno, e)),
        1 => Just((Action::KillProcess, None)),
        1 => Just((Action::Kill, None)),
        1 => Just((Action::Trap, None)),
    ];
    (
        default,
        subsequence(ARCHES.to_vec(), 1..=3),
        subsequence(catalog::FLAGS.to_vec(), 0..=2),
        vec(rule(max_value, templates), 0..6),
    )
        .prop_map(|((default_action, default_errno_ret), arches, flags, syscalls)| Profile {
            default_action,
            default_errno_ret,
            architectures: arches.into_iter().map(String::from).collect(),
            arch_map: Vec::new(),
            flags: flags.into_iter().map(String::from).collect(),
            listener_path: None,
            listener_metadata: None,
            syscalls,
        })
}

/// Any valid profile, deny-lists and allow-by-default ones.
fn any_profile(max_value: u64, templates: bool) -> impl Strategy<Value = Profile> {
    (
        deny_profile(max_value, templates),
        prop_oneof![4 => Just(None), 1 => Just(Some(Action::Log)), 1 => Just(Some(Action::Allow))],
    )
        .prop_map(|(mut p, permissive)| {
            if let Some(a) = permissive {
                p.default_action = a;
                p.default_errno_ret = None;
            }
            p
        })
}

fn m(ps: &[Profile]) -> Profile {
    merge(ps).expect("non-empty").profile
}

fn permitted(d: &crate::algebra::diff::Diff) -> BTreeSet<(String, String)> {
    d.iter().flat_map(|(a, x)| x.only_in_profile.iter().map(move |n| (a.clone(), n.clone()))).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn merge_is_commutative(a in deny_profile(u64::MAX, false), b in deny_profile(u64::MAX, false)) {
        prop_assert_eq!(m(&[a.clone(), b.clone()]), m(&[b, a]));
    }

    #[test]
    fn merge_is_associative(
        a in deny_profile(u64::MAX, false),
        b in deny_profile(u64::MAX, false),
        c in deny_profile(u64::MAX, false),
    ) {
        let left = m(&[m(&[a.clone(), b.clone()]), c.clone()]);
        let right = m(&[a.clone(), m(&[b.clone(), c.clone()])]);
        prop_assert_eq!(&left, &right);
        prop_assert_eq!(left, m(&[a, b, c]));
    }

    #[test]
    fn merge_is_idempotent(a in deny_profile(u64::MAX, false)) {
        let once = m(std::slice::from_ref(&a));
        prop_assert_eq!(m(&[a.clone(), a]), once.clone());
        prop_assert_eq!(m(std::slice::from_ref(&once)), once);
    }

    #[test]
    fn merge_keeps_everything_each_input_permits(a in deny_profile(u64::MAX, false), b in deny_profile(u64::MAX, false)) {
        let merged = m(&[a.clone(), b]);
        let d = diff(
            &Side { label: "merged".into(), profile: merged.clone() },
            &Side { label: "a".into(), profile: a },
        );
        prop_assert!(permitted(&d).is_empty(), "only in a: {:?}", permitted(&d));
        // And the merged profile is valid, so runtimes take it.
        let text = write(&merged, Format::Oci, &WriteOptions::default()).expect("writes").text;
        prop_assert!(parse_str(&text, "merged").is_ok());
    }

    #[test]
    fn oci_round_trips(p in any_profile(u64::MAX, true)) {
        let text = write(&p, Format::Oci, &WriteOptions::default()).expect("writes").text;
        let mut expected = if p.is_template() { p.evaluate(&EvalContext::host()) } else { p };
        // OCI has no comments.
        expected.syscalls.iter_mut().for_each(|r| r.comment = None);
        let back = parse_str(&text, "oci").map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back.profile, expected);
        prop_assert_eq!(write(&back_profile(&text), Format::Oci, &WriteOptions::default()).expect("w").text, text);
    }

    #[test]
    fn moby_round_trips(p in any_profile(u64::MAX, true)) {
        let text = write(&p, Format::Moby, &WriteOptions::default()).expect("writes").text;
        let back = parse_str(&text, "moby").map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back.profile, p);
    }

    #[test]
    fn spo_round_trips(p in any_profile(u64::MAX, false)) {
        let opts = WriteOptions { name: Some("my-app".into()), ..WriteOptions::default() };
        match write(&p, Format::Spo, &opts) {
            Ok(w) => {
                let back = parse_str(&w.text, "spo").map_err(|e| TestCaseError::fail(format!("{e}\n{}", w.text)))?;
                // SPO has no defaultErrnoRet; EPERM (1) is what runtimes use without it.
                let mut expected = p;
                if expected.default_errno_ret == Some(DEFAULT_ERRNO) {
                    expected.default_errno_ret = None;
                }
                prop_assert_eq!(back.profile, expected);
                prop_assert_eq!(back.name.as_deref(), Some("my-app"));
            }
            Err(_) => {
                // Refused only for what v1 cannot express.
                let big = p.syscalls.iter().flat_map(|r| &r.args).any(|c| c.value > i64::MAX as u64 || c.value_two > i64::MAX as u64);
                let zero = p.syscalls.iter().any(|r| r.errno_ret == Some(0));
                let errno = !matches!(p.default_errno_ret, None | Some(DEFAULT_ERRNO));
                prop_assert!(big || zero || errno);
            }
        }
    }

    #[test]
    fn output_is_deterministic(p in any_profile(u64::MAX, true)) {
        for format in [Format::Oci, Format::Moby] {
            let a = write(&p, format, &WriteOptions::default()).expect("writes").text;
            let b = write(&p.clone(), format, &WriteOptions::default()).expect("writes").text;
            prop_assert_eq!(a, b);
        }
    }
}

fn back_profile(text: &str) -> Profile {
    parse_str(text, "again").expect("parses").profile
}

// --- parser fuzzing -------------------------------------------------------

fn fuzz_cases() -> u32 {
    std::env::var("RECORDER_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000)
}

/// Byte-level damage to a valid document: what a truncated download, a bad
/// merge or an attacker produces.
#[derive(Clone, Debug)]
enum Damage {
    Truncate(usize),
    Insert(usize, &'static str),
    Delete(usize, usize),
    Replace(usize, char),
}

fn damage() -> impl Strategy<Value = Damage> {
    let tokens = proptest::sample::select(vec![
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"",
        "\\",
        "\\u",
        "\\ud800",
        "-",
        "1e999",
        "null",
        "\n",
        "\t",
        " ",
        "&a ",
        "*a",
        "!!binary ",
        "- ",
        "? ",
        "---\n",
        "18446744073709551616",
        "-1",
        "SCMP_ACT_",
        "\u{feff}",
        "\u{0}",
        "é",
    ]);
    prop_oneof![
        any::<usize>().prop_map(Damage::Truncate),
        (any::<usize>(), tokens).prop_map(|(at, t)| Damage::Insert(at, t)),
        (any::<usize>(), 1..16usize).prop_map(|(at, n)| Damage::Delete(at, n)),
        (any::<usize>(), any::<char>()).prop_map(|(at, c)| Damage::Replace(at, c)),
    ]
}

fn apply(text: &str, damages: &[Damage]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for d in damages {
        let len = chars.len().max(1);
        match d {
            Damage::Truncate(at) => chars.truncate(at % len),
            Damage::Insert(at, t) => {
                let at = at % len;
                chars.splice(at.min(chars.len())..at.min(chars.len()), t.chars());
            }
            Damage::Delete(at, n) => {
                let at = (at % len).min(chars.len());
                let end = (at + n).min(chars.len());
                chars.drain(at..end);
            }
            Damage::Replace(at, c) => {
                if let Some(slot) = chars.get_mut(at % len) {
                    *slot = *c;
                }
            }
        }
    }
    chars.into_iter().collect()
}

/// The parser must return (Ok or a positioned error), never panic, and be fast.
fn survives(text: &str) -> Result<(), TestCaseError> {
    let start = std::time::Instant::now();
    match parse_str(text, "fuzz") {
        Ok(_) => {}
        Err(ProfileError::Syntax { line, column, .. } | ProfileError::TooDeep { line, column, .. }) => {
            prop_assert!(line >= 1 && column >= 1, "position {line}:{column}");
        }
        Err(ProfileError::Invalid { problems, .. }) => {
            prop_assert!(problems.iter().all(|d| d.pos.line >= 1), "{problems:?}");
        }
        Err(e) => prop_assert!(false, "unexpected error kind {e:?}"),
    }
    prop_assert!(start.elapsed().as_secs() < 2, "slow input: {:?}", start.elapsed());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: fuzz_cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn fuzz_damaged_json(p in any_profile(u64::MAX, true), damages in vec(damage(), 1..6)) {
        let text = write(&p, Format::Moby, &WriteOptions::default()).expect("writes").text;
        survives(&apply(&text, &damages))?;
    }

    #[test]
    fn fuzz_damaged_yaml(p in any_profile(i64::MAX as u64, false), damages in vec(damage(), 1..6)) {
        let mut p = p;
        p.default_errno_ret = None;
        p.syscalls.iter_mut().for_each(|r| if r.errno_ret == Some(0) { r.errno_ret = None });
        let opts = WriteOptions { name: Some("x".into()), ..WriteOptions::default() };
        let text = write(&p, Format::Spo, &opts).expect("writes").text;
        survives(&apply(&text, &damages))?;
    }

    #[test]
    fn fuzz_arbitrary_text(text in any::<String>()) {
        survives(&text)?;
    }

    #[test]
    fn fuzz_structured_noise(text in "[\\[\\]{}\":,a-z0-9 \\n-]{0,200}") {
        survives(&text)?;
    }
}
