//! `record --json-summary` (schema 1, README "JSON summary") for a command
//! recording, `record --format`, and a profile on stdout that can be piped.

use std::collections::BTreeSet;

use recorder_tests::{allowed_names, assert_exit, recorder, skip_bpf_tests};
use serde_json::Value;

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array().into_iter().flatten().filter_map(|s| s.as_str().map(str::to_owned)).collect()
}

#[test]
fn a_command_recordings_summary_has_every_documented_field() {
    if skip_bpf_tests() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let profile = dir.path().join("p.json");
    let summary = dir.path().join("summary.json");
    let out = recorder(&[
        "record",
        "-q",
        "-o",
        profile.to_str().expect("utf8"),
        "--json-summary",
        summary.to_str().expect("utf8"),
        "--",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_exit(&out, 3, "the command's own exit status");
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&summary).expect("summary")).expect("JSON");

    assert_eq!(s["schema"], 1);
    assert_eq!(s["target"]["kind"], "command");
    assert_eq!(s["target"]["argv"], serde_json::json!(["sh", "-c", "exit 3"]));
    assert_eq!(s["containers"], serde_json::json!([]));
    assert!(s["processes"].as_u64().is_some_and(|n| n >= 1), "{s}");
    assert!(s["elapsed_seconds"].as_f64().is_some_and(|t| t > 0.0));
    assert!(s["recorder_cpu_seconds"].as_f64().is_some());
    assert_eq!(s["stop_reason"], "workload-exited");
    assert_eq!(s["exit_code"], 3);
    assert_eq!(s["exit_status"], 3 << 8, "the raw wait status");
    assert_eq!(s["ending"]["how"], "exited");

    let p = &s["provenance"];
    assert_eq!(p["startup_observed"], true);
    assert_eq!(p["shutdown_observed"], true);
    assert_eq!(p["base_set"], serde_json::json!({"added": false, "runtime": null}));
    assert_eq!(p["shutdown_set_added"], false);
    for counter in ["ringbuf_drops", "cgroups_without_slot", "abi_map_full", "out_of_range"] {
        assert_eq!(p[counter], 0, "{counter} on a quiet machine");
    }

    assert_eq!(s["outputs"], serde_json::json!([profile.to_str().expect("utf8")]));
    let profiles = s["profiles"].as_array().expect("profiles");
    assert_eq!(profiles.len(), 1);
    let one = &profiles[0];
    assert_eq!(one["output"], profile.to_str().expect("utf8"));
    assert_eq!(one["format"], "oci");
    assert_eq!(one["name"], Value::Null);
    let allowed = allowed_names(&profile);
    assert_eq!(one["syscalls"], allowed.len(), "the count is the profile's");
    assert_eq!(one["architectures"], serde_json::json!(["SCMP_ARCH_X86_64"]));
    let recorded = strings(&one["recorded_by_arch"]["SCMP_ARCH_X86_64"]);
    assert!(recorded.contains("execve") && recorded.contains("exit_group"), "{recorded:?}");
    assert!(recorded.is_subset(&allowed), "everything recorded is allowed");
    assert_eq!(one["widened_by_arch"], serde_json::json!({}));
    let added = &one["added"];
    assert_eq!(added["base_set"], 0);
    assert_eq!(added["shutdown_set_applied"], false);
    assert!(added["essentials"].is_array() && added["shutdown_set"].is_array());
}

#[test]
fn summary_on_stdout_and_profile_in_a_file() {
    if skip_bpf_tests() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let profile = dir.path().join("p.json");
    let out = recorder(&["record", "-o", profile.to_str().expect("utf8"), "--json-summary", "-", "--", "true"]);
    assert_exit(&out, 0, "record true");
    let s: Value = serde_json::from_slice(&out.stdout).expect("stdout is exactly the JSON summary");
    assert_eq!(s["schema"], 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("recorder: "), "the summary line stays on stderr");
}

#[test]
fn the_profile_on_stdout_pipes_cleanly() {
    if skip_bpf_tests() {
        return;
    }
    // Not quiet: the summary line must go to stderr, not into the profile.
    let out = recorder(&["record", "-o", "-", "--", "true"]);
    assert_exit(&out, 0, "record -o -");
    let profile: Value = serde_json::from_slice(&out.stdout).expect("stdout is exactly the profile");
    assert_eq!(profile["defaultAction"], "SCMP_ACT_ERRNO");
    assert!(String::from_utf8_lossy(&out.stderr).contains("-> stdout"));
}

#[test]
fn record_writes_spo_and_moby_directly() {
    if skip_bpf_tests() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let spo = dir.path().join("my-app.yaml");
    let summary = dir.path().join("s.json");
    let out = recorder(&[
        "record",
        "-q",
        "--format",
        "spo",
        "-o",
        spo.to_str().expect("utf8"),
        "--json-summary",
        summary.to_str().expect("utf8"),
        "--",
        "true",
    ]);
    assert_exit(&out, 0, "record --format spo");
    let text = std::fs::read_to_string(&spo).expect("spo");
    assert!(text.contains("kind: SeccompProfile"), "{text}");
    assert!(text.contains("name: my-app"), "the name comes from the output file: {text}");
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&summary).expect("summary")).expect("JSON");
    assert_eq!(s["profiles"][0]["format"], "spo");
    assert_eq!(s["profiles"][0]["name"], "my-app");
    // Read back, it is the same profile `convert` would give.
    let out = recorder(&["check", spo.to_str().expect("utf8")]);
    assert_exit(&out, 0, "check the SPO output");

    let out = recorder(&["record", "-q", "--format", "moby", "-o", "-", "--", "true"]);
    assert_exit(&out, 0, "record --format moby");
    let moby: Value = serde_json::from_slice(&out.stdout).expect("moby JSON");
    assert!(moby["syscalls"].is_array());

    let out = recorder(&["record", "-q", "--format", "k8s-snippet", "--name", "web", "-o", "-", "--", "true"]);
    assert_exit(&out, 0, "record --format k8s-snippet");
    assert!(String::from_utf8_lossy(&out.stdout).contains("localhostProfile: profiles/web.json"));
}
