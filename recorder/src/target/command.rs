//! What to record: a command we start, an existing cgroup, or a PID's cgroup.

use std::{
    ffi::OsString,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
};

/// A command that could not be started.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("{0}: command not found; check the spelling or give a path")]
    NotFound(String),
    #[error("{0}: permission denied; the file is not executable (chmod +x?)")]
    NotExecutable(String),
}

/// A resolved command: an absolute path, so exec happens exactly once (no
/// PATH walk that would show up as failed execve calls in the profile).
#[derive(Clone, Debug)]
pub struct Command {
    pub program: PathBuf,
    pub args: Vec<OsString>,
}

impl Command {
    /// Resolves `argv[0]` the way a shell does: names with a `/` are paths,
    /// other names are looked up in PATH.
    pub fn resolve(argv: &[OsString]) -> Result<Command, CommandError> {
        let Some((first, args)) = argv.split_first() else {
            return Err(CommandError::NotFound(String::new()));
        };
        let shown = first.to_string_lossy().into_owned();
        let program = if first.as_encoded_bytes().contains(&b'/') {
            let p = PathBuf::from(first);
            if !p.exists() {
                return Err(CommandError::NotFound(shown));
            }
            p
        } else {
            let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
            let mut found = None;
            let mut not_exec = false;
            for dir in std::env::split_paths(&path) {
                let candidate = dir.join(first);
                if candidate.is_file() {
                    if is_executable(&candidate) {
                        found = Some(candidate);
                        break;
                    }
                    not_exec = true;
                }
            }
            match found {
                Some(p) => p,
                None if not_exec => return Err(CommandError::NotExecutable(shown)),
                None => return Err(CommandError::NotFound(shown)),
            }
        };
        if !program.is_file() || !is_executable(&program) {
            return Err(CommandError::NotExecutable(shown));
        }
        let program = std::path::absolute(&program).unwrap_or(program);
        Ok(Command { program, args: args.to_vec() })
    }
}

fn is_executable(path: &Path) -> bool {
    path.metadata().map(|m| m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_from_path() {
        let c = Command::resolve(&["sh".into(), "-c".into(), "true".into()]).expect("sh exists");
        assert!(c.program.is_absolute());
        assert_eq!(c.args.len(), 2);
    }

    #[test]
    fn missing_command_is_not_found() {
        let e = Command::resolve(&["no-such-command-xyz".into()]).expect_err("missing");
        assert!(matches!(e, CommandError::NotFound(_)));
        let e = Command::resolve(&["./no/such/file".into()]).expect_err("missing");
        assert!(matches!(e, CommandError::NotFound(_)));
    }

    #[test]
    fn non_executable_file_is_reported() {
        let f = tempfile::NamedTempFile::new().expect("tmp");
        let e = Command::resolve(&[f.path().as_os_str().to_owned()]).expect_err("not exec");
        assert!(matches!(e, CommandError::NotExecutable(_)));
    }
}
