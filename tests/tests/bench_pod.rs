//! Not a test: the pod part of `cargo xtask bench` (it needs this crate's
//! pod harness, and xtask must build without the recorder crate). Ignored by
//! default; xtask runs it with --ignored and reads the BENCH_POD lines.

use std::{
    io::Read as _,
    process::{Command, Stdio},
    time::Duration,
};

use recorder_tests::{
    containers::Runtime,
    cri::{
        KUBEPODS, Node, Pods,
        images::{self, Image},
    },
    recorder_bin,
};

const PORT: u16 = 18_085;

#[test]
#[ignore = "benchmark, run by cargo xtask bench"]
fn bench_pod() {
    let seconds: u64 = std::env::var("BENCH_WRK_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let rounds: usize = std::env::var("BENCH_POD_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(2);
    let node = Node::start(&[Image::Nginx]).expect("node");
    let pods = Pods::new(&node.containerd).expect("CRI");
    let v2 = recorder_tests::containers::cgroup2_mount().expect("mountinfo").expect("cgroup v2");
    recorder_tests::cri::KubepodsUse::register();
    std::fs::create_dir_all(v2.join(KUBEPODS)).expect("kubepods");
    let out_dir = tempfile::tempdir().expect("tmp");
    for round in 0..rounds {
        for recorded in [false, true] {
            let name = format!("bench-{}-{round}", if recorded { "rec" } else { "plain" });
            let recorder = recorded.then(|| {
                let child = Command::new(recorder_bin())
                    .args(["record", "--pod", &name, "-n", "bench", "--wait-timeout", "60s", "-o"])
                    .arg(format!("{}/", out_dir.path().display()))
                    .arg("--runtime-endpoint")
                    .arg(node.containerd.address())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("recorder");
                std::thread::sleep(Duration::from_millis(700));
                child
            });
            let pod = pods.run_pod(&name, "bench", Runtime::Runc).expect("pod");
            let spec = images::nginx_container(pods.work_dir(), PORT).expect("spec");
            pods.run_container(&pod, &spec).expect("nginx");
            images::wait_for_http(PORT, Duration::from_secs(10)).expect("serves");
            let wrk = Command::new("wrk")
                .args(["-t1", "-c32", &format!("-d{seconds}s"), "--latency", &format!("http://127.0.0.1:{PORT}/")])
                .output()
                .expect("wrk");
            pods.remove_pod(&pod).expect("remove");
            let mut stderr = String::new();
            if let Some(mut child) = recorder {
                child.stderr.take().expect("stderr").read_to_string(&mut stderr).expect("read");
                child.wait().expect("wait");
            }
            let wrk = String::from_utf8_lossy(&wrk.stdout).into_owned();
            println!(
                "BENCH_POD {}",
                serde_json::json!({"round": round, "recorded": recorded, "wrk": wrk, "recorder_stderr": stderr})
            );
        }
    }
}
