//! Problems found in a profile, each with file, line and column.

use std::fmt;

use super::node::Pos;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem: where, how bad, and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub path: String,
    pub pos: Pos,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}:{}:{}: {level}: {}", self.path, self.pos.line, self.pos.column, self.message)
    }
}

/// A profile that could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read profile {path}: {}; check the path", crate::text::io_reason(.source))]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A directory, FIFO, device or socket: reading it could block forever
    /// or mean nothing.
    #[error("cannot read profile {path}: it is a {kind}; pass a regular file, or `-` with the profile on stdin")]
    NotRegular { path: String, kind: &'static str },
    #[error(
        "{path}: profile is {size} bytes, more than the {limit}-byte limit; is this really a seccomp profile?",
        limit = super::MAX_PROFILE_BYTES
    )]
    TooLarge { path: String, size: u64 },
    #[error("{path}:{line}:{column}: profile too deeply nested or too large: {message}")]
    TooDeep { path: String, line: usize, column: usize, message: String },
    #[error("{path}:{line}:{column}: invalid seccomp profile: {message}")]
    Syntax { path: String, line: usize, column: usize, message: String },
    /// Well-formed, but with errors; `problems` lists all of them, warnings too.
    #[error("{}", invalid_summary(.path, .problems))]
    Invalid { path: String, problems: Vec<Diagnostic> },
}

fn invalid_summary(path: &str, problems: &[Diagnostic]) -> String {
    let mut errors = problems.iter().filter(|d| d.severity == Severity::Error);
    let Some(first) = errors.next() else {
        return format!("{path}: invalid seccomp profile");
    };
    let more = errors.count();
    // No "error:" inside: main prints "recorder: error: " before this.
    let head = format!("{}:{}:{}: {}", first.path, first.pos.line, first.pos.column, first.message);
    if more == 0 { head } else { format!("{head} (and {more} more; `recorder check {path}` lists them all)") }
}

impl ProfileError {
    /// Input refused for its size or depth (hostile or runaway input), as
    /// opposed to a profile that is wrong.
    pub fn is_too_large(&self) -> bool {
        matches!(self, ProfileError::TooLarge { .. } | ProfileError::TooDeep { .. })
    }

    /// The input could not be read at all (missing, unreadable, not a file).
    pub fn is_unreadable(&self) -> bool {
        matches!(self, ProfileError::Read { .. } | ProfileError::NotRegular { .. })
    }

    /// Every problem as a diagnostic, for `check`.
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        match self {
            ProfileError::Invalid { problems, .. } => problems.clone(),
            ProfileError::Syntax { path, line, column, message }
            | ProfileError::TooDeep { path, line, column, message } => vec![Diagnostic {
                severity: Severity::Error,
                path: path.clone(),
                pos: Pos { line: *line, column: *column },
                message: message.clone(),
            }],
            ProfileError::Read { path, .. }
            | ProfileError::NotRegular { path, .. }
            | ProfileError::TooLarge { path, .. } => {
                vec![Diagnostic {
                    severity: Severity::Error,
                    path: path.clone(),
                    pos: Pos { line: 1, column: 1 },
                    message: self.to_string(),
                }]
            }
        }
    }
}
