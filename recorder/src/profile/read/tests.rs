use super::*;
use crate::{
    profile::runtime_default::MOBY_DEFAULT_JSON,
    profile::{
        ArgCondition, ENOSYS, Op,
        write::{Format, WriteOptions, write},
    },
};

fn problems(text: &str) -> Vec<String> {
    check_str(text, "p").expect("well-formed").problems.iter().map(ToString::to_string).collect()
}

fn has(problems: &[String], needle: &str) -> bool {
    problems.iter().any(|p| p.contains(needle))
}

#[test]
fn moby_fixture_reads_as_moby() {
    let loaded = parse_str(MOBY_DEFAULT_JSON, "moby.json").expect("parses");
    assert_eq!(loaded.dialect, Dialect::Moby);
    let p = &loaded.profile;
    assert_eq!(p.default_errno_ret, Some(1));
    assert_eq!(p.arch_map.len(), 9);
    assert_eq!(p.arch_map[0].architecture, "SCMP_ARCH_X86_64");
    assert_eq!(p.arch_map[0].sub_architectures, ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
    // "subArchitectures": null is an empty list.
    assert!(p.arch_map.iter().any(|e| e.architecture == "SCMP_ARCH_RISCV64" && e.sub_architectures.is_empty()));
    let clone3 = p.syscalls.iter().find(|r| r.names == ["clone3"]).expect("clone3 rule");
    assert_eq!((clone3.action, clone3.errno_ret), (Action::Errno, Some(ENOSYS)));
    assert_eq!(clone3.excludes.caps, ["CAP_SYS_ADMIN"]);
    let s390 = p.syscalls.iter().find(|r| r.comment.is_some()).expect("commented rule");
    assert_eq!(s390.includes.arches, ["s390", "s390x"]);
    assert!(p.syscalls.iter().any(|r| r.includes.min_kernel.as_deref() == Some("4.8")));
}

#[test]
fn moby_round_trips_through_every_format_that_keeps_it() {
    let p = parse_str(MOBY_DEFAULT_JSON, "moby.json").expect("parses").profile;
    let moby = write(&p, Format::Moby, &WriteOptions::default()).expect("writes");
    assert_eq!(parse_str(&moby.text, "out").expect("reparses").profile, p);
    // OCI output is the evaluated profile, with no moby keys left.
    let oci = write(&p, Format::Oci, &WriteOptions::default()).expect("writes");
    assert!(!oci.text.contains("archMap") && !oci.text.contains("includes"));
    assert_eq!(parse_str(&oci.text, "out").expect("reparses").dialect, Dialect::Oci);
    assert!(!oci.warnings.is_empty());
}

#[test]
fn containers_common_errno_names_and_native_arch() {
    let text = r#"{
      "defaultAction": "SCMP_ACT_ERRNO",
      "defaultErrno": "ENOSYS",
      "architectures": ["SCMP_ARCH_NATIVE"],
      "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [], "comment": "", "includes": {}, "excludes": {}},
        {"names": ["bdflush"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "errno": "EPERM"},
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errno": "ENOSYS"}
      ]
    }"#;
    let loaded = parse_str(text, "common.json").expect("parses");
    assert_eq!(loaded.dialect, Dialect::ContainersCommon);
    assert_eq!(loaded.profile.default_errno_ret, Some(38));
    assert_eq!(loaded.profile.architectures, ["SCMP_ARCH_NATIVE"]);
    assert_eq!(loaded.profile.syscalls[1].errno_ret, Some(1));
    assert_eq!(loaded.profile.syscalls[2].errno_ret, Some(38));
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert!(loaded.warnings[0].to_string().contains("runc refuses it"), "{:?}", loaded.warnings);
}

#[test]
fn errno_name_and_number_must_agree() {
    let p = problems(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
          {"names": ["x"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "errno": "ENOSYS"},
          {"names": ["read"], "action": "SCMP_ACT_ERRNO", "errno": "ENOSIS"}]}"#,
    );
    assert!(has(&p, "disagrees with errnoRet"), "{p:?}");
    assert!(has(&p, "did you mean ENOSYS"), "{p:?}");
}

const SPO_V1: &str = "\
apiVersion: security-profiles-operator.x-k8s.io/v1
kind: SeccompProfile
metadata:
  name: my-app
  annotations:
    spo.x-k8s.io/syscall-coverage: '{\"inputs\":2}'
spec:
  defaultAction: SCMP_ACT_ERRNO
  architectures:
  - SCMP_ARCH_X86_64
  syscalls:
  - action: SCMP_ACT_ALLOW
    names:
    - read
    - write
  - action: SCMP_ACT_ALLOW
    names: [socket]
    args:
    - index: 0
      value: 1
      op: SCMP_CMP_EQ
";

#[test]
fn spo_v1_yaml() {
    let loaded = parse_str(SPO_V1, "sp.yaml").expect("parses");
    assert_eq!(loaded.dialect, Dialect::SpoV1);
    assert_eq!(loaded.name.as_deref(), Some("my-app"));
    assert_eq!(loaded.annotations.get("spo.x-k8s.io/syscall-coverage").map(String::as_str), Some("{\"inputs\":2}"));
    let p = &loaded.profile;
    assert_eq!(p.architectures, ["SCMP_ARCH_X86_64"]);
    assert_eq!(p.syscalls[0].names, ["read", "write"]);
    assert_eq!(p.syscalls[1].args, [ArgCondition { index: 0, value: 1, value_two: 0, op: Op::Equal }]);
}

#[test]
fn spo_v1beta1_with_string_errno_ret() {
    let text = SPO_V1.replace("/v1\n", "/v1beta1\n").replace(
        "  - action: SCMP_ACT_ALLOW\n    names:\n    - read",
        "  - action: SCMP_ACT_ERRNO\n    errnoRet: \"38\"\n    names:\n    - clone3\n  - action: SCMP_ACT_ALLOW\n    names:\n    - read",
    );
    let loaded = parse_str(&text, "sp.yaml").expect("parses");
    assert_eq!(loaded.dialect, Dialect::SpoV1beta1);
    assert_eq!(loaded.profile.syscalls[0].errno_ret, Some(38));
}

#[test]
fn spo_as_json_is_detected_too() {
    let text = r#"{"apiVersion": "security-profiles-operator.x-k8s.io/v1", "kind": "SeccompProfile",
      "metadata": {"name": "x"}, "spec": {"defaultAction": "SCMP_ACT_LOG"}}"#;
    assert_eq!(parse_str(text, "x.json").expect("parses").dialect, Dialect::SpoV1);
}

#[test]
fn spo_problems() {
    let p = problems(&SPO_V1.replace("kind: SeccompProfile", "kind: AppArmorProfile"));
    assert!(has(&p, "only SeccompProfile"), "{p:?}");
    let p = problems(&SPO_V1.replace("/v1\n", "/v2\n"));
    assert!(has(&p, "not a SeccompProfile version"), "{p:?}");
    let p = problems(
        &SPO_V1
            .replace("  defaultAction: SCMP_ACT_ERRNO\n", "  defaultAction: SCMP_ACT_ERRNO\n  defaultErrnoRet: 38\n"),
    );
    assert!(has(&p, "has no defaultErrnoRet"), "{p:?}");
}

#[test]
fn yaml_errors_have_positions() {
    let text = SPO_V1.replace("    - write\n", "    - write\n   bad: [\n");
    let e = parse_str(&text, "sp.yaml").expect_err("fails");
    let msg = e.to_string();
    assert!(msg.starts_with("sp.yaml:"), "{msg}");
    let ProfileError::Syntax { line, .. } = e else { panic!("{e:?}") };
    assert!(line >= 15, "{msg}");
}

#[test]
fn semantic_problems_point_at_their_value() {
    let text = "{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"syscalls\": [\n    {\"names\": [\"read\"], \"action\": \"SCMP_ACT_NOPE\"}\n  ]\n}";
    let p = problems(text);
    assert_eq!(
        p,
        [
            "p:4:35: error: unknown action \"SCMP_ACT_NOPE\"; use SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL_PROCESS, ..."
        ]
    );
}

#[test]
fn every_listed_problem_is_found() {
    let text = r#"{
      "defaultAction": "SCMP_ACT_ALLOW",
      "defaultErrnoRet": 1,
      "architectures": ["SCMP_ARCH_AMD64"],
      "flags": ["SECCOMP_FILTER_FLAG_NOPE"],
      "syscalls": [
        {"names": [], "action": "SCMP_ACT_ERRNO"},
        {"names": ["opnat", "read", "read"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["write"], "action": "SCMP_ACT_KILL", "errnoRet": 1},
        {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "args": [
          {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 1, "op": "SCMP_CMP_EQ"},
          {"index": 2, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 3, "value": 1, "op": "SCMP_CMP_EQ"},
          {"index": 4, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 5, "value": 1, "op": "SCMP_CMP_EQ"},
          {"index": 6, "value": -1, "op": "SCMP_CMP_EQUAL"}]},
        {"names": ["x"], "action": "SCMP_ACT_NOTIFY"},
        {"name": "read", "names": ["read"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["read"]},
        "read"
      ]
    }"#;
    let p = problems(text);
    for needle in [
        "defaultErrnoRet has no effect with SCMP_ACT_ALLOW",
        "unknown architecture \"SCMP_ARCH_AMD64\"; did you mean SCMP_ARCH_X86_64?",
        "unknown flag",
        "names is empty",
        "warning: unknown syscall \"opnat\"; did you mean \"openat\"?",
        "listed twice",
        "errnoRet has no effect with SCMP_ACT_KILL",
        "7 argument conditions",
        "index is 6, outside 0..=5",
        "value is -1",
        "unknown op \"SCMP_CMP_EQUAL\"; did you mean SCMP_CMP_EQ?",
        "need a listenerPath",
        "both name and names",
        "rule has no action",
        "each syscalls entry must be an object",
    ] {
        assert!(has(&p, needle), "missing {needle:?} in {p:#?}");
    }
    // Sorted by position.
    let lines: Vec<usize> = check_str(text, "p").expect("ok").problems.iter().map(|d| d.pos.line).collect();
    assert!(lines.windows(2).all(|w| w[0] <= w[1]), "{lines:?}");
}

#[test]
fn both_architectures_and_arch_map_is_an_error() {
    let p = problems(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": null}]}"#,
    );
    assert!(has(&p, "not both"), "{p:?}");
}

#[test]
fn not_a_profile() {
    assert!(has(&problems("[1, 2]"), "expected a seccomp profile object"));
    assert!(has(&problems("securityContext:\n  seccompProfile:\n    type: Localhost\n"), "securityContext snippet"));
    assert!(has(&problems("{}"), "missing defaultAction"));
}

#[test]
fn huge_file_is_refused_before_reading() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("huge.json");
    let f = std::fs::File::create(&path).expect("create");
    // Sparse: 1 GiB on paper, nothing on disk.
    f.set_len(1 << 30).expect("set_len");
    let e = read_file(&path).expect_err("refused");
    assert!(matches!(e, ProfileError::TooLarge { size, .. } if size == 1 << 30), "{e:?}");
    assert!(e.is_too_large(), "{e}");
    assert!(e.to_string().contains("limit"), "{e}");
}

#[test]
fn deep_nesting_is_refused_with_its_own_code() {
    let text = format!("{{\"defaultAction\": {}", "[".repeat(1_000_000));
    let e = parse_str(&text, "deep.json").expect_err("refused");
    assert!(e.is_too_large(), "{e}");
    let yaml = format!("a: {}", "[".repeat(1_000_000));
    let e = parse_str(&yaml, "deep.yaml").expect_err("refused");
    assert!(matches!(e, ProfileError::TooDeep { .. } | ProfileError::Syntax { .. }), "{e:?}");
}

#[test]
fn binary_input_names_the_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bin.json");
    std::fs::write(&path, b"{\n  \"a\": \"\xff\"}").expect("write");
    let e = read_file(&path).expect_err("refused");
    assert!(e.to_string().contains(":2:9: invalid seccomp profile: not UTF-8"), "{e}");
}

#[test]
fn a_flood_of_problems_is_capped() {
    let names = vec!["\"read\""; 50_000].join(",");
    let text = format!(
        r#"{{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{{"names": [{names}], "action": "SCMP_ACT_NOPE"}}]}}"#
    );
    let report = check_str(&text, "flood").expect("well-formed");
    assert!(report.problems.len() <= 1_001, "{}", report.problems.len());
    let last = report.problems.last().expect("summary");
    assert!(last.message.contains("more warnings not listed"), "{last}");
    assert!(report.errors() >= 1);
}

#[test]
fn many_unknown_names_stay_fast() {
    let names: Vec<String> = (0..150_000).map(|i| format!("\"nosuch{i}\"")).collect();
    let text = format!(
        r#"{{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{{"names": [{}], "action": "SCMP_ACT_ALLOW"}}]}}"#,
        names.join(",")
    );
    let report = check_str(&text, "many").expect("well-formed");
    assert!(report.problems.last().expect("summary").message.contains("149000 more warnings"));
}

#[test]
fn errno_out_of_range_names_the_real_range() {
    for (value, shown) in
        [("-1", "-1"), ("4096", "4096"), ("18446744073709551616", "18446744073709551616"), ("\"-1\"", "-1")]
    {
        let text = format!(
            r#"{{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{{"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": {value}}}]}}"#
        );
        let p = problems(&text);
        assert!(has(&p, &format!("errnoRet is {shown}; errno values run from 0 to 4095")), "{value}: {p:?}");
    }
    let p = problems(r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1.5}"#);
    assert!(has(&p, "defaultErrnoRet must be an errno number (0 to 4095), found a number with a fraction"), "{p:?}");
}
