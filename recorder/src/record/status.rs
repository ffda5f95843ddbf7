//! The live status line on stderr (only when stderr is a terminal).

use std::{io::IsTerminal as _, time::Duration};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::text;

/// What the status line shows.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    pub elapsed: Duration,
    pub remaining: Option<Duration>,
    pub syscalls: usize,
    pub processes: u64,
}

pub struct StatusLine {
    bar: Option<ProgressBar>,
}

impl StatusLine {
    /// A status line, drawn only if `enabled` and stderr is a terminal.
    pub fn new(enabled: bool) -> StatusLine {
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar
        });
        StatusLine { bar }
    }

    pub fn update(&self, p: Progress) {
        if let Some(bar) = &self.bar {
            let remaining = p.remaining.map(|r| format!(", {} left", text::human(r))).unwrap_or_default();
            bar.set_message(format!(
                "recording {}{remaining} · {} distinct syscalls · {} processes seen · Ctrl-C stops",
                text::human(p.elapsed),
                p.syscalls,
                p.processes
            ));
            bar.tick();
        }
    }

    pub fn message(&self, text: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(text.to_owned());
            bar.tick();
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
