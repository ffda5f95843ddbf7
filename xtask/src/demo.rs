//! `cargo xtask demo`: record nginx serving a page (Ctrl-C ends the
//! recording, and the recorder stops nginx the way a runtime would), show
//! the profile, then prove it for nginx's whole life: under the profile
//! nginx serves, reloads on SIGHUP, and stops on SIGTERM to its master;
//! and a syscall nginx never made is denied.
//!
//! Every wait has a deadline, and a failure says what it waited for; every
//! process started here is killed (with its children) when a step fails.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::{
    nginx::{self, Proc, Site},
    util,
};

/// How long nginx may take to answer its first request.
const READY: Duration = Duration::from_secs(15);
/// How long the recorder may take to stop nginx (its grace is 5 s) and
/// write the profile after SIGINT.
const RECORDER_END: Duration = Duration::from_secs(30);
/// How long a reload or a stop may take before the demo calls it hung.
const LIFECYCLE: Duration = Duration::from_secs(10);

pub fn run() -> Result<()> {
    let recorder = util::recorder_bin();
    let site = Site::new(18_081)?;
    let profile = site.dir.path().join("nginx.json");

    println!("\n== 1. Record nginx while a client fetches a page");
    let child = Command::new(&recorder)
        .args(["record", "-o"])
        .arg(&profile)
        .arg("--")
        .args(site.argv())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .context("starting recorder record")?;
    let mut rec = Proc { child, what: "recorder record" };
    site.wait_ready(&mut rec, READY)?;
    for _ in 0..20 {
        site.get()?;
    }
    println!("   fetched {} 20 times; Ctrl-C to the recorder (SIGINT)", site.url());
    println!("   (the recorder sends SIGTERM to nginx's master only and records its shutdown; its summary:)");
    rec.signal(libc::SIGINT)?;
    let (status, _) = rec.wait(RECORDER_END, "the recorder to stop nginx and write the profile after SIGINT")?;
    if !status.success() {
        bail!("recorder record failed ({status}); nginx log:\n{}", nginx::error_log(&site));
    }

    println!("\n== 2. The profile ({})", profile.display());
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&profile)?)?;
    let names: Vec<&str> = json["syscalls"][0]["names"]
        .as_array()
        .context("profile has no allow rule")?
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    println!(
        "   defaultAction {} (errno {}), architectures {}",
        json["defaultAction"], json["defaultErrnoRet"], json["architectures"]
    );
    println!("   {} syscalls allowed:", names.len());
    for chunk in names.chunks(8) {
        println!("     {}", chunk.join(" "));
    }

    println!("\n== 3. Run nginx under the profile (enforced by libseccomp) and fetch the page");
    let log_before = nginx::error_log(&site).len();
    let child = Command::new(&recorder)
        .args(["run", "--profile"])
        .arg(&profile)
        .arg("--")
        .args(site.argv())
        .stdin(Stdio::null())
        .spawn()
        .context("starting recorder run")?;
    // `recorder run` execs nginx: this PID is nginx's master.
    let mut server = Proc { child, what: "nginx under the profile" };
    site.wait_ready(&mut server, READY)?;
    let status = site.get()?;
    println!("   GET {} -> HTTP {status} under the profile", site.url());
    if status != 200 {
        bail!("nginx did not serve the page under its own profile");
    }

    println!("\n== 4. Reload it (SIGHUP to the master): new workers, still serving");
    let old = server.children();
    server.signal(libc::SIGHUP)?;
    let deadline = Instant::now() + LIFECYCLE;
    let new = loop {
        let now = server.children();
        if !now.is_empty() && now.iter().all(|p| !old.contains(p)) {
            break now;
        }
        if Instant::now() > deadline {
            bail!(
                "waited {LIFECYCLE:?} for new workers after SIGHUP (before {old:?}, now {now:?}); error.log:\n{}",
                nginx::error_log(&site)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let status = site.get()?;
    println!("   workers {old:?} -> {new:?}; GET -> HTTP {status}");
    if status != 200 {
        bail!("nginx stopped serving after the reload");
    }

    println!("\n== 5. Stop it as `systemctl stop` would (KillMode=mixed: SIGTERM to the master only)");
    server.signal(libc::SIGTERM)?;
    let (status, took) = server.wait(LIFECYCLE, "nginx to exit after SIGTERM to its master")?;
    println!("   stopped in {:.2} s ({status})", took.as_secs_f64());
    let log = nginx::error_log(&site);
    let failed = nginx::failures(log.get(log_before..).unwrap_or(&log));
    if !status.success() || !failed.is_empty() {
        bail!("nginx did not stop cleanly under its profile ({status}):\n{}", failed.join("\n"));
    }

    println!("\n== 6. Something nginx never does is denied: `unshare --user true` under the same profile");
    let child = Command::new(&recorder)
        .args(["run", "--profile"])
        .arg(&profile)
        .args(["--", "unshare", "--user", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut denied = Proc { child, what: "unshare under nginx's profile" };
    let (status, _) = denied.wait(LIFECYCLE, "unshare under nginx's profile to fail")?;
    let mut stderr = String::new();
    if let Some(mut e) = denied.child.stderr.take() {
        use std::io::Read as _;
        let _ = e.read_to_string(&mut stderr);
    }
    println!(
        "   exit {:?}: {}",
        status.code(),
        stderr
            .lines()
            .last()
            .unwrap_or("denied (it could not even print an error: write(2) is not in nginx's profile)")
    );
    if status.success() {
        bail!("unshare succeeded under nginx's profile; the profile is too wide");
    }
    println!(
        "\nDone: the profile is minimal for this workload, and it holds for nginx's whole life: start, serve, reload, stop."
    );
    Ok(())
}
