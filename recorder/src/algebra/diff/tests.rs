use super::*;
use crate::{
    profile::runtime_default::RuntimeDefault,
    profile::{Action, EvalContext, Op, SyscallRule},
    syscalls::Family,
};

fn runtime_default() -> Side {
    let ctx = EvalContext { kernel: Some((6, 1)), ..EvalContext::host() };
    Side { label: "runtime/default".into(), profile: RuntimeDefault::Moby.template().expect("parses").evaluate(&ctx) }
}

/// A profile listing the same architectures as runtime/default, so the
/// comparison is uniform.
fn app(names: &[&str]) -> Side {
    let mut profile = Profile::allow_list(Family::host(), names.iter().copied());
    profile.architectures = Family::host().scmp_names().into_iter().map(str::to_owned).collect();
    Side { label: "app.json".into(), profile }
}

#[test]
fn a_profile_without_the_32_bit_abi_differs_per_architecture() {
    let native_only = Profile::allow_list(Family::host(), ["read"]);
    let d = diff(&runtime_default(), &Side { label: "p".into(), profile: native_only });
    assert!(!d.uniform(), "the profile closes the 32-bit ABIs the base opens");
    let v: serde_json::Value = serde_json::from_str(&json(&d)).expect("json");
    assert!(v["only_in_base"].get("all").is_none());
    assert!(v["only_in_base"][Family::host().native.scmp_name()].is_array());
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

#[test]
fn answers_the_three_questions() {
    let d = diff(&runtime_default(), &app(&["read", "write", "ptrace", "userfaultfd", "socket"]));
    assert!(d.uniform());
    let (_, a) = d.iter().next().expect("one arch");
    assert_eq!(a.only_in_profile, set(&["userfaultfd"]));
    assert_eq!(a.risky, set(&["ptrace", "userfaultfd"]));
    assert!(!a.only_in_base.contains("bpf"), "bpf needs CAP_SYS_ADMIN or CAP_BPF");
    assert!(a.only_in_base.contains("openat"));
    assert_eq!(a.in_both, set(&["ptrace", "read", "socket", "write"]));
    let (b, p) = a.conditional.get("socket").expect("socket is conditional in the base");
    assert!(matches!(b, Treatment::AllowedWhen(w) if w.len() == 3));
    assert_eq!(p, &Treatment::Allowed);
    assert_eq!(a.base.len(), 370);
}

#[test]
fn extra_caps_change_the_baseline() {
    let mut ctx = EvalContext { kernel: Some((6, 1)), ..EvalContext::host() };
    ctx.caps.insert("CAP_SYS_ADMIN".into());
    let base = Side { label: "b".into(), profile: RuntimeDefault::Moby.template().expect("ok").evaluate(&ctx) };
    let d = diff(&base, &app(&["mount"]));
    let (_, a) = d.iter().next().expect("arch");
    assert!(a.in_both.contains("mount"));
    // clone becomes unconditional with CAP_SYS_ADMIN.
    assert!(!a.conditional.contains_key("clone"));
}

#[test]
fn argument_conditions_are_reported_as_such() {
    let mut p = app(&["read"]).profile;
    let mut rule = SyscallRule::new(["personality"], Action::Allow);
    rule.args = vec![ArgCondition { index: 0, value: 8, value_two: 0, op: Op::Equal }];
    p.syscalls.push(rule);
    let d = diff(&runtime_default(), &Side { label: "p".into(), profile: p });
    let (_, a) = d.iter().next().expect("arch");
    assert!(a.in_both.contains("personality"));
    let (b, t) = a.conditional.get("personality").expect("conditional");
    assert!(matches!(b, Treatment::AllowedWhen(w) if w.len() == 5));
    assert!(matches!(t, Treatment::AllowedWhen(w) if w.len() == 1));
    let text = human(&d, crate::text::Paint::PLAIN);
    assert!(text.contains("allowed only with these arguments: arg0 == 8"), "{text}");
}

#[test]
fn json_has_the_stable_keys() {
    let d = diff(&runtime_default(), &app(&["read", "ptrace"]));
    let v: serde_json::Value = serde_json::from_str(&json(&d)).expect("json");
    for key in ["base", "profile", "only_in_profile", "only_in_base", "in_both", "conditional", "risky"] {
        assert!(v[key]["all"].is_array(), "{key}: {}", v[key]);
    }
    assert_eq!(v["risky"]["all"], serde_json::json!(["ptrace"]));
    assert!(v["risky_reasons"]["ptrace"].is_string());
    let names: Vec<&str> =
        v["only_in_base"]["all"].as_array().expect("list").iter().filter_map(|n| n.as_str()).collect();
    assert!(names.windows(2).all(|w| w[0] < w[1]), "sorted");
    assert_eq!(json(&d), json(&d.clone()), "deterministic");
}

#[test]
fn architectures_that_differ_are_listed_separately() {
    let mut arm = Profile::allow_list(Family::host(), ["read"]);
    arm.architectures = vec!["SCMP_ARCH_AARCH64".into()];
    let d = diff(&Side { label: "arm".into(), profile: arm }, &app(&["read"]));
    assert!(!d.uniform());
    let v: serde_json::Value = serde_json::from_str(&json(&d)).expect("json");
    assert!(v["only_in_profile"].get("all").is_none(), "{}", v["only_in_profile"]);
    assert_eq!(v["only_in_profile"]["SCMP_ARCH_X86_64"], serde_json::json!(["read"]));
    assert_eq!(v["only_in_profile"]["SCMP_ARCH_AARCH64"], serde_json::json!([]));
    assert_eq!(v["only_in_base"]["SCMP_ARCH_AARCH64"], serde_json::json!(["read"]));
    // Nothing is allowed by both on any architecture, so that key is uniform.
    assert_eq!(v["in_both"], serde_json::json!({"all": []}));
}

#[test]
fn containerd_differs_from_moby_by_the_documented_names() {
    let ctx = EvalContext { kernel: Some((6, 1)), native: crate::syscalls::Arch::X86_64, ..EvalContext::host() };
    let moby = Side { label: "m".into(), profile: RuntimeDefault::Moby.template().expect("ok").evaluate(&ctx) };
    let ctrd = Side { label: "c".into(), profile: RuntimeDefault::Containerd.template().expect("ok").evaluate(&ctx) };
    let d = diff(&moby, &ctrd);
    let (_, a) = d.iter().next().expect("arch");
    assert_eq!(a.only_in_base, set(&["riscv_hwprobe"]));
    assert_eq!(a.only_in_profile, set(&["lsm_get_self_attr", "lsm_list_modules", "lsm_set_self_attr"]));
    assert_eq!(ctrd.profile.default_errno_ret, None);
}
