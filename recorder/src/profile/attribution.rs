//! `--by-exe`: which executables made which calls, as `record --by-exe`
//! writes it and `diff --by-exe` reads it. Information only: a seccomp
//! filter applies to a whole process tree (a container), so a profile
//! cannot differ per executable; this says who needs what.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

use serde::{Deserialize, Serialize};

/// The schema version `record --by-exe` writes.
pub const SCHEMA: u32 = 1;

/// What the file says about itself, for whoever opens it.
pub const NOTE: &str = "Information only: a seccomp profile applies to every process in the container, so it cannot \
                        differ per executable. \"(exec not seen)\" holds processes that were running before the \
                        recording started.";

/// The whole `--by-exe` file: one entry per written profile.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributionFile {
    pub schema: u32,
    #[serde(default)]
    pub note: String,
    pub profiles: Vec<Attribution>,
}

/// Executable path -> architecture (`SCMP_ARCH_*`) -> calls it made.
pub type Executables = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

/// Adds `more` to `into`; true when anything was new.
pub fn union_executables(into: &mut Executables, more: &Executables) -> bool {
    let mut grew = false;
    for (exe, by_arch) in more {
        let mine = into.entry(exe.clone()).or_default();
        for (arch, names) in by_arch {
            let set = mine.entry(arch.clone()).or_default();
            for name in names {
                grew |= set.insert(name.clone());
            }
        }
    }
    grew
}

/// One profile's attribution.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribution {
    /// Where the profile went (as the summary says it).
    pub profile: String,
    /// `namespace/pod/container`, for pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Executable path -> architecture (`SCMP_ARCH_*`) -> calls it made.
    pub executables: Executables,
    /// Call -> the executables that made it (any architecture).
    pub syscalls: BTreeMap<String, BTreeSet<String>>,
}

impl Attribution {
    /// Builds both views from executable -> architecture -> calls.
    pub fn new(profile: String, container: Option<String>, executables: Executables) -> Attribution {
        let mut syscalls: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (exe, by_arch) in &executables {
            for name in by_arch.values().flatten() {
                syscalls.entry(name.clone()).or_default().insert(exe.clone());
            }
        }
        Attribution { profile, container, executables, syscalls }
    }
}

impl AttributionFile {
    pub fn new(profiles: Vec<Attribution>) -> AttributionFile {
        AttributionFile { schema: SCHEMA, note: NOTE.to_owned(), profiles }
    }

    /// Call -> executables, over every profile in the file.
    pub fn by_syscall(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for p in &self.profiles {
            for (name, exes) in &p.syscalls {
                out.entry(name.clone()).or_default().extend(exes.iter().cloned());
            }
        }
        out
    }

    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Reads a file `record --by-exe` wrote.
    pub fn read(path: &Path) -> Result<AttributionFile, AttributionError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| AttributionError::Read { path: path.display().to_string(), source })?;
        let file: AttributionFile = serde_json::from_str(&text)
            .map_err(|source| AttributionError::Parse { path: path.display().to_string(), source })?;
        if file.schema != SCHEMA {
            return Err(AttributionError::Schema { path: path.display().to_string(), schema: file.schema });
        }
        Ok(file)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AttributionError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a `record --by-exe` file: {source}")]
    Parse {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path} has schema {schema}; this recorder reads schema 1 (re-record with this version)")]
    Schema { path: String, schema: u32 },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_views_agree_and_round_trip() {
        let exes = BTreeMap::from([
            (
                "/usr/bin/healthcheck".to_owned(),
                BTreeMap::from([(
                    "SCMP_ARCH_X86_64".to_owned(),
                    BTreeSet::from(["ptrace".to_owned(), "read".to_owned()]),
                )]),
            ),
            (
                "/usr/sbin/server".to_owned(),
                BTreeMap::from([("SCMP_ARCH_X86_64".to_owned(), BTreeSet::from(["read".to_owned()]))]),
            ),
        ]);
        let file = AttributionFile::new(vec![Attribution::new("p.json".into(), None, exes)]);
        let by = file.by_syscall();
        assert_eq!(by["ptrace"], BTreeSet::from(["/usr/bin/healthcheck".to_owned()]));
        assert_eq!(by["read"].len(), 2);
        let back: AttributionFile = serde_json::from_str(&file.to_json()).expect("round trip");
        assert_eq!(back, file);
    }
}
