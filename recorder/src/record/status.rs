//! The live status line on stderr (only when stderr is a terminal). It
//! never wraps: a line wider than the terminal (80 columns when the width
//! is unknown) is said shorter, then cut.

use std::{io::IsTerminal as _, time::Duration};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::text;

/// Columns assumed when the terminal does not say.
pub const DEFAULT_WIDTH: usize = 80;
/// The spinner and the space after it.
const SPINNER_COLUMNS: usize = 2;

/// What the status line shows.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    pub elapsed: Duration,
    pub remaining: Option<Duration>,
    pub syscalls: usize,
    pub processes: u64,
}

impl Progress {
    /// The message after the spinner, at most `columns` wide: the long
    /// form, else a short one, else the short one cut.
    pub fn line(&self, columns: usize) -> String {
        let remaining = self.remaining.map(|r| format!(", {} left", text::human(r))).unwrap_or_default();
        let elapsed = text::human(self.elapsed);
        let long = format!(
            "recording {elapsed}{remaining} · {} · {} seen · Ctrl-C stops",
            text::count(self.syscalls as u64, "distinct syscall", "distinct syscalls"),
            text::count(self.processes, "process", "processes"),
        );
        if long.chars().count() <= columns {
            return long;
        }
        let short = format!(
            "recording {elapsed}{remaining} · {} · {}",
            text::count(self.syscalls as u64, "syscall", "syscalls"),
            text::count(self.processes, "process", "processes"),
        );
        fit(&short, columns)
    }
}

/// `text` cut to `columns` characters, with `…` where it was cut.
pub fn fit(text: &str, columns: usize) -> String {
    if text.chars().count() <= columns {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(columns.saturating_sub(1)).collect();
    if columns > 0 {
        cut.push('…');
    }
    cut
}

/// Columns of the terminal on stderr, or [`DEFAULT_WIDTH`].
fn terminal_width() -> usize {
    // SAFETY: TIOCGWINSZ writes one `winsize` into the zeroed struct we own;
    // fd 2 may be anything, and a failure leaves it zeroed.
    let size = unsafe {
        let mut size: libc::winsize = std::mem::zeroed();
        libc::ioctl(2, libc::TIOCGWINSZ, &mut size);
        size
    };
    match usize::from(size.ws_col) {
        0 => DEFAULT_WIDTH,
        cols => cols,
    }
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

    fn columns() -> usize {
        terminal_width().saturating_sub(SPINNER_COLUMNS)
    }

    pub fn update(&self, p: Progress) {
        if let Some(bar) = &self.bar {
            bar.set_message(p.line(Self::columns()));
            bar.tick();
        }
    }

    pub fn message(&self, text: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(fit(text, Self::columns()));
            bar.tick();
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worst() -> Progress {
        Progress {
            elapsed: Duration::from_secs(3 * 3600 + 59 * 60),
            remaining: Some(Duration::from_secs(99 * 3600)),
            syscalls: 1_234,
            processes: 123_456_789,
        }
    }

    #[test]
    fn the_status_line_never_exceeds_the_terminal_width() {
        for columns in [DEFAULT_WIDTH - SPINNER_COLUMNS, 40, 20, 1, 0] {
            let line = worst().line(columns);
            assert!(line.chars().count() <= columns, "{columns} columns: {line:?}");
        }
        let stopping =
            "stopping: SIGTERM sent to the main process; recording its shutdown (up to 1m30s, Ctrl-C kills it now)";
        assert_eq!(fit(stopping, 78).chars().count(), 78);
        assert!(fit(stopping, 78).ends_with('…'));
    }

    #[test]
    fn the_status_line_is_whole_when_it_fits_and_counts_in_words() {
        let p = Progress { elapsed: Duration::from_secs(5), remaining: None, syscalls: 1, processes: 1 };
        assert_eq!(p.line(200), "recording 5.0s · 1 distinct syscall · 1 process seen · Ctrl-C stops");
        assert!(!worst().line(200).contains('…'));
    }
}
