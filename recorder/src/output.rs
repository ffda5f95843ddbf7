//! Writing results atomically: a temporary file in the destination directory,
//! renamed over the target only when complete. Nothing half-written is ever
//! left behind, and an unwritable destination is found before any work starts.

use std::{
    io::{self, Write as _},
    path::{Path, PathBuf},
};

use tempfile::NamedTempFile;

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot write {path}: {source}; choose a writable path with -o")]
    Unwritable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0} is a directory; name a file with -o, e.g. -o {0}/profile.json")]
    IsDirectory(PathBuf),
    #[error("directory {0} does not exist; create it first or choose another -o")]
    NoParent(PathBuf),
}

/// Where a result goes: stdout, or a file written atomically.
#[derive(Debug)]
pub enum Output {
    Stdout,
    File { path: PathBuf, tmp: NamedTempFile },
}

impl Output {
    /// `None` or `-` means stdout. Otherwise the file's directory must exist
    /// and be writable; the temporary file is created now to prove it.
    pub fn prepare(path: Option<&Path>) -> Result<Output, OutputError> {
        let Some(path) = path.filter(|p| *p != Path::new("-")) else {
            return Ok(Output::Stdout);
        };
        if path.is_dir() {
            return Err(OutputError::IsDirectory(path.to_path_buf()));
        }
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(OutputError::NoParent(dir));
        }
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .tempfile_in(&dir)
            .map_err(|source| OutputError::Unwritable { path: path.to_path_buf(), source })?;
        Ok(Output::File { path: path.to_path_buf(), tmp })
    }

    /// Writes `contents` and, for a file, syncs and renames it into place.
    pub fn commit(self, contents: &str) -> Result<(), OutputError> {
        match self {
            Output::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(contents.as_bytes())
                    .and_then(|()| out.flush())
                    .map_err(|source| OutputError::Unwritable { path: PathBuf::from("<stdout>"), source })
            }
            Output::File { path, mut tmp } => {
                let unwritable = |source| OutputError::Unwritable { path: path.clone(), source };
                tmp.write_all(contents.as_bytes()).map_err(unwritable)?;
                tmp.as_file().sync_all().map_err(unwritable)?;
                // Profiles are not secrets; runtimes and the kubelet must read them.
                set_mode(tmp.path(), 0o644).map_err(unwritable)?;
                tmp.persist(&path).map_err(|e| unwritable(e.error))?;
                Ok(())
            }
        }
    }

    /// The destination, for messages.
    pub fn describe(&self) -> String {
        match self {
            Output::Stdout => "stdout".to_owned(),
            Output::File { path, .. } => path.display().to_string(),
        }
    }
}

fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_replaces_atomically_and_leaves_no_temp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.json");
        let out = Output::prepare(Some(&path)).expect("prepare");
        out.commit("{}\n").expect("commit");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "{}\n");
        let names: Vec<_> = std::fs::read_dir(dir.path()).expect("ls").collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn dropped_output_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.json");
        drop(Output::prepare(Some(&path)).expect("prepare"));
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 0);
    }

    #[test]
    fn missing_directory_is_reported_before_work() {
        let err = Output::prepare(Some(Path::new("/nonexistent-dir/p.json"))).expect_err("fails");
        assert!(matches!(err, OutputError::NoParent(_)));
    }
}
