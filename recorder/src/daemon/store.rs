//! Snapshots of what the daemon learned, in `--state-dir`: one JSON file
//! written atomically (temporary file, fsync, rename, fsync of the
//! directory), so a crash at any moment leaves either the previous snapshot
//! or the new one, never half of either. Written on an interval, when a
//! container is gone (before its slot is freed), and on SIGTERM.

use std::{
    collections::{BTreeMap, VecDeque},
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use super::{
    learned::{ContainerRecord, WorkloadRecord},
    state::{Counters, DaemonState, PodCalls},
};
use crate::output;

/// Bumped when the file's meaning changes; an unknown version is refused.
const VERSION: u32 = 1;
const FILE: &str = "state.json";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the state directory {path}: {source}; pass a writable --state-dir")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot write the snapshot {path}: {}; the previous snapshot is kept, recording goes on",
        crate::output::io_cause(.source)
    )]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the snapshot {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a snapshot this recorder understands: {reason}; move it aside to start afresh")]
    Format { path: PathBuf, reason: String },
}

/// The snapshot as written: borrowed from the live state, no copy.
#[derive(Serialize)]
struct SnapshotRef<'a> {
    version: u32,
    /// Unix seconds.
    saved_at: u64,
    containers: &'a BTreeMap<u64, ContainerRecord>,
    workloads: &'a BTreeMap<String, WorkloadRecord>,
    pod_history: &'a VecDeque<PodCalls>,
    counters: &'a Counters,
}

/// The snapshot as read back.
#[derive(Debug, Default, Deserialize)]
pub struct Snapshot {
    pub version: u32,
    pub saved_at: u64,
    pub containers: BTreeMap<u64, ContainerRecord>,
    pub workloads: BTreeMap<String, WorkloadRecord>,
    pub pod_history: VecDeque<PodCalls>,
    pub counters: Counters,
}

pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir { path: dir.to_path_buf(), source })?;
        Ok(Store { dir: dir.to_path_buf() })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// Writes `state` atomically.
    pub fn save(&self, state: &DaemonState, now: u64) -> Result<(), StoreError> {
        let snapshot = SnapshotRef {
            version: VERSION,
            saved_at: now,
            containers: &state.containers,
            workloads: &state.workloads,
            pod_history: &state.pod_history,
            counters: &state.counters,
        };
        let path = self.path();
        let text = serde_json::to_vec(&snapshot)
            .map_err(|e| StoreError::Write { path: path.clone(), source: std::io::Error::other(e) })?;
        output::write_atomically(&path, &text).map_err(|source| StoreError::Write { path, source })
    }

    /// The last snapshot, or `None` on a first start.
    pub fn load(&self) -> Result<Option<Snapshot>, StoreError> {
        let path = self.path();
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StoreError::Read { path, source }),
        };
        let snapshot: Snapshot = serde_json::from_slice(&text)
            .map_err(|e| StoreError::Format { path: path.clone(), reason: e.to_string() })?;
        if snapshot.version != VERSION {
            return Err(StoreError::Format {
                path,
                reason: format!("version {} (this recorder writes {VERSION})", snapshot.version),
            });
        }
        Ok(Some(snapshot))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_round_trips_and_a_corrupt_one_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path()).expect("open");
        assert!(store.load().expect("load").is_none(), "first start");
        let mut state = DaemonState::default();
        state.counters.snapshots = 3;
        store.save(&state, 42).expect("save");
        let loaded = store.load().expect("load").expect("a snapshot");
        assert_eq!(loaded.counters.snapshots, 3);
        std::fs::write(store.path(), b"{\"version\": 1, \"saved_at\": 1, \"containers\":").expect("write");
        assert!(matches!(store.load(), Err(StoreError::Format { .. })));
    }
}
