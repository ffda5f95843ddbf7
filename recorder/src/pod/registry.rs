//! Which cgroup id is which directory: ids are what the BPF side keys by,
//! directory names are what runtimes name after container ids. Scanned on
//! every tick and whenever a new cgroup shows up, so containers that live
//! only briefly are still known by name.

use std::{
    collections::BTreeMap,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

#[derive(Debug, Default)]
pub struct Registry {
    paths: BTreeMap<u64, PathBuf>,
}

impl Registry {
    /// Records every directory below `root` (a few levels).
    pub fn scan(&mut self, root: &Path) {
        self.walk(root, 0);
    }

    fn walk(&mut self, dir: &Path, depth: usize) {
        if depth > 6 {
            return;
        }
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                let path = entry.path();
                self.paths.insert(meta.ino(), path.clone());
                self.walk(&path, depth + 1);
            }
        }
    }

    /// The directory names of every cgroup seen, by id.
    pub fn entries(&self) -> impl Iterator<Item = (u64, &Path)> {
        self.paths.iter().map(|(id, p)| (*id, p.as_path()))
    }
}
