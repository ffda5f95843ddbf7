//! Words for numbers and durations in messages (`1m05s`, `3.2s`,
//! `1 process`, `2 processes`), and colour for a terminal (`Paint`).

use std::time::Duration;

/// `1m05s`, `3.2s`, `2h03m`.
pub fn human(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 3600 {
        format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60)
    } else if secs >= 60 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// `1 process`, `2 processes`: `count` with the noun in the right number.
pub fn count(n: impl Into<u64>, singular: &str, plural: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { singular } else { plural })
}

/// Colour for text on a terminal: ANSI SGR sequences when enabled, the
/// text unchanged otherwise. Whether to enable it (`--color`, `NO_COLOR`,
/// a terminal on stdout) is the command line's decision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Paint {
    pub enabled: bool,
}

impl Paint {
    pub const PLAIN: Paint = Paint { enabled: false };

    fn sgr(self, code: &str, text: &str) -> String {
        if self.enabled { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_owned() }
    }

    /// Something that breaks or fails: errors, calls the base would refuse.
    pub fn red(self, text: &str) -> String {
        self.sgr("31", text)
    }

    /// Something to look at twice: warnings, risky calls.
    pub fn yellow(self, text: &str) -> String {
        self.sgr("33", text)
    }

    /// Something that is fine: surface removed, a valid file.
    pub fn green(self, text: &str) -> String {
        self.sgr("32", text)
    }

    /// Headings.
    pub fn bold(self, text: &str) -> String {
        self.sgr("1", text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human(Duration::from_millis(3200)), "3.2s");
        assert_eq!(human(Duration::from_secs(65)), "1m05s");
        assert_eq!(human(Duration::from_secs(7380)), "2h03m");
    }

    #[test]
    fn counts_agree_in_number() {
        assert_eq!(count(1u32, "process", "processes"), "1 process");
        assert_eq!(count(2u32, "process", "processes"), "2 processes");
        assert_eq!(count(0u32, "syscall", "syscalls"), "0 syscalls");
    }

    #[test]
    fn paint_is_plain_unless_enabled() {
        assert_eq!(Paint::PLAIN.red("error"), "error");
        assert_eq!(Paint { enabled: true }.red("error"), "\x1b[31merror\x1b[0m");
    }
}
