//! Running the runtime for `recorder baseline` so that nothing it does can
//! hang or litter: every command has a deadline and runs in its own process
//! group, killed whole when the deadline passes or SIGINT/SIGTERM arrives;
//! the bundles live in one scratch directory named after this process,
//! removed when baseline ends, and by the next baseline if this one was
//! killed with SIGKILL.

use std::{
    fs, io,
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::atomic::{AtomicI32, Ordering},
    time::{Duration, Instant},
};

use crate::target::owned::Owner;

/// How often a running command is looked at.
const POLL: Duration = Duration::from_millis(10);
/// Scratch directories are `<tmp>/recorder-baseline-<pid>-<start time>`.
const PREFIX: &str = "recorder-baseline-";

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot run {command}: {source}")]
    Io {
        command: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "`{command}` did not finish within {}; the runtime hangs, so it was killed with everything it started (raise --timeout if it is only slow)",
        crate::text::human(*.timeout)
    )]
    TimedOut { command: String, timeout: Duration },
    #[error("stopped by signal {signal}; the runtime was killed with everything it started, nothing was written")]
    Interrupted { signal: i32 },
}

/// The signal that asked baseline to stop, 0 for none.
static STOP: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_stop_signal(signal: libc::c_int) {
    STOP.store(signal, Ordering::Relaxed);
}

/// From now on SIGINT and SIGTERM only ask to stop ([`stop_requested`]):
/// the command running then is killed and the scratch directory removed.
pub fn catch_stop_signals() {
    let handler = on_stop_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores into an atomic, which is
    // async-signal-safe; `signal` has no other precondition.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// SIGINT or SIGTERM, once either arrived.
pub fn stop_requested() -> Option<i32> {
    match STOP.load(Ordering::Relaxed) {
        0 => None,
        signal => Some(signal),
    }
}

/// Runs `cmd` in its own process group with stdout and stderr into `log`
/// (a runtime's init keeps create's stdio open, so a pipe would never end),
/// and returns its status with the log as stderr. Past `timeout`, or on a
/// stop signal, the whole group is killed.
pub fn run(cmd: &mut Command, log: &Path, timeout: Duration) -> Result<Output, RunError> {
    let shown = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let io_err = |source| RunError::Io { command: shown.clone(), source };
    let file = fs::File::create(log).map_err(io_err)?;
    let stderr = file.try_clone().map_err(io_err)?;
    cmd.stdin(Stdio::null()).stdout(file).stderr(stderr).process_group(0);
    let mut child = cmd.spawn().map_err(io_err)?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().map_err(io_err)? {
            let text = fs::read(log).unwrap_or_default();
            return Ok(Output { status, stdout: Vec::new(), stderr: text });
        }
        let stop = stop_requested();
        if stop.is_some() || Instant::now() >= deadline {
            if let Ok(group) = libc::pid_t::try_from(child.id()) {
                // SAFETY: kill(2) on the process group we made for this
                // child (its pid is the group id); plain integers.
                unsafe { libc::kill(-group, libc::SIGKILL) };
            }
            let _ = child.wait();
            return Err(match stop {
                Some(signal) => RunError::Interrupted { signal },
                None => RunError::TimedOut { command: shown, timeout },
            });
        }
        std::thread::sleep(POLL);
    }
}

/// This process's scratch directory, removed on drop.
#[derive(Debug)]
pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    /// Creates `<tmp>/recorder-baseline-<pid>-<start time>`, first removing
    /// those of baselines that are gone.
    pub fn create() -> io::Result<Scratch> {
        let tmp = std::env::temp_dir();
        remove_stale(&tmp);
        let path = tmp.join(format!("{PREFIX}{}", Owner::myself().stamp()));
        fs::create_dir(&path)?;
        Ok(Scratch { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.path) {
            tracing::warn!("cannot remove {}: {e}", self.path.display());
        }
    }
}

fn remove_stale(tmp: &Path) {
    let Ok(entries) = fs::read_dir(tmp) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if Owner::from_name_after(&name, PREFIX).is_some_and(|owner| !owner.is_alive()) {
            match fs::remove_dir_all(entry.path()) {
                Ok(()) => tracing::info!("removed the scratch directory of a baseline that is gone: {name}"),
                Err(e) => tracing::warn!("cannot remove {}: {e}", entry.path().display()),
            }
        }
    }
}
