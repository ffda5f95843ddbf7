//! Round trip through `recorder run`: the recorded program runs under its
//! own profile and behaves the same; without one of its syscalls it gets EPERM.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use recorder_tests::{
    allowed_names, assert_exit, ground_truth_program, recorder, scratch_dir, skip_bpf_tests, write_profile,
};

fn wait_for(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.ends_with('\n')
        {
            return text;
        }
        assert!(Instant::now() < deadline, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn record_ground_truth(name: &str) -> std::path::PathBuf {
    let profile = scratch_dir().join(format!("{name}.json"));
    let marker = scratch_dir().join(format!("{name}.marker"));
    let program = ground_truth_program();
    let out = recorder(&[
        "record",
        "-q",
        "-o",
        profile.to_str().expect("utf8"),
        "--",
        program.to_str().expect("utf8"),
        marker.to_str().expect("utf8"),
    ]);
    assert_exit(&out, 0, "recording");
    profile
}

fn run_under(profile: &Path, marker: &Path) -> std::process::Output {
    let program = ground_truth_program();
    let _ = std::fs::remove_file(marker);
    recorder(&[
        "run",
        "--profile",
        profile.to_str().expect("utf8"),
        "--",
        program.to_str().expect("utf8"),
        marker.to_str().expect("utf8"),
    ])
}

#[test]
fn recorded_program_runs_under_its_profile() {
    if skip_bpf_tests() {
        return;
    }
    let profile = record_ground_truth("rt");
    let marker = scratch_dir().join("rt-run.marker");
    let out = run_under(&profile, &marker);
    assert_exit(&out, 0, "ground truth under its own profile");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ground truth ok\n");
    assert_eq!(wait_for(&marker), "daemon ok\n", "the daemon ran under the profile too");
}

#[test]
fn a_missing_syscall_gets_eperm() {
    if skip_bpf_tests() {
        return;
    }
    let profile = record_ground_truth("rt-missing");
    let mut names = allowed_names(&profile);
    assert!(names.remove("getcpu"), "getcpu was recorded");
    assert!(names.remove("syncfs"), "syncfs was recorded");
    let reduced = scratch_dir().join("rt-reduced.json");
    write_profile(&reduced, &names);
    let marker = scratch_dir().join("rt-reduced.marker");
    let out = run_under(&reduced, &marker);
    assert_exit(&out, 1, "ground truth without getcpu");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("getcpu: EPERM"), "stderr: {stderr}");
    assert_eq!(wait_for(&marker), "daemon eperm\n", "the daemon's syncfs was denied");
}
