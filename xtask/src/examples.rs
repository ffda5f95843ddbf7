//! `cargo xtask examples [--check] [--only NAMES]`: the proven example profiles in
//! examples/profiles. Recording them needs the tests crate's private containerd, images, pod
//! harness and clients (tests/src/cri, tests/src/servers, tests/src/examples), and xtask does
//! not depend on that crate, so this runs tests/tests/examples.rs, as `self-profile` runs its
//! test: the ignored `regenerate` test writes the files; `--check` runs the others, which
//! prove every shipped profile again and fail when the files are stale.

use std::time::Instant;

use anyhow::{Context as _, Result};

use crate::util;

pub fn run(check: bool, only: Option<&str>) -> Result<()> {
    let started = Instant::now();
    let mut cmd = util::cargo();
    cmd.args(["test", "-p", "recorder-tests", "--test", "examples", "--"]);
    if check {
        cmd.args(["--nocapture", "--test-threads=1"]);
    } else {
        cmd.args(["--ignored", "--exact", "regenerate", "--nocapture", "--test-threads=1"]);
    }
    cmd.env("RECORDER_BIN", util::static_recorder_bin());
    if let Some(only) = only {
        cmd.env("RECORDER_EXAMPLES", only);
    }
    let what = if check { "checking" } else { "recording" };
    util::run(&mut cmd).with_context(|| format!("{what} the example profiles (examples/profiles)"))?;
    eprintln!(
        "xtask examples: {} in {:.0} s",
        if check { "every shipped example is fresh and holds under runc and crun" } else { "wrote examples/profiles" },
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
