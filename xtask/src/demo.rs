//! `cargo xtask demo`: record nginx serving a page, show the profile, then
//! prove it: nginx serves the page under the profile, and a syscall nginx
//! never made is denied.

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{Context as _, Result, bail};

use crate::{
    nginx::{self, Site},
    util,
};

pub fn run() -> Result<()> {
    let recorder = util::recorder_bin();
    let site = Site::new(18_081)?;
    let profile = site.dir.path().join("nginx.json");

    println!("\n== 1. Record nginx while a client fetches a page");
    let mut rec = Command::new(&recorder)
        .args(["record", "-o"])
        .arg(&profile)
        .arg("--")
        .args(site.argv())
        .stdout(Stdio::null())
        .spawn()?;
    site.wait_ready(Duration::from_secs(10))?;
    for _ in 0..20 {
        site.get()?;
    }
    println!("   fetched {} 20 times; stopping the recording (SIGINT)", site.url());
    // SAFETY: kill(2) on our own unreaped child.
    unsafe { libc::kill(rec.id() as i32, libc::SIGINT) };
    let status = rec.wait()?;
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
    let mut server =
        Command::new(&recorder).args(["run", "--profile"]).arg(&profile).arg("--").args(site.argv()).spawn()?;
    let ready = site.wait_ready(Duration::from_secs(10));
    let status = site.get();
    // SAFETY: kill(2) on our own unreaped child.
    unsafe { libc::kill(server.id() as i32, libc::SIGQUIT) };
    server.wait()?;
    ready?;
    let status = status?;
    println!("   GET {} -> HTTP {status} under the profile", site.url());
    if status != 200 {
        bail!("nginx did not serve the page under its own profile");
    }

    println!("\n== 4. Something nginx never does is denied: `unshare --user true` under the same profile");
    let out = Command::new(&recorder)
        .args(["run", "--profile"])
        .arg(&profile)
        .args(["--", "unshare", "--user", "true"])
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!(
        "   exit {:?}: {}",
        out.status.code(),
        stderr
            .lines()
            .last()
            .unwrap_or("denied (it could not even print an error: write(2) is not in nginx's profile)")
    );
    if out.status.success() {
        bail!("unshare succeeded under nginx's profile; the profile is too wide");
    }
    println!("\nDone: the profile is minimal for this workload and enforced for real.");
    Ok(())
}
