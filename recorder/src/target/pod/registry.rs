//! Which cgroup id is which directory: ids are what the BPF side keys by,
//! directory names are what runtimes name after container ids. Scanned on
//! every tick and whenever a new cgroup shows up, so containers that live
//! only briefly are still known by name.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use crate::target::Cgroup;

#[derive(Debug, Default)]
pub struct Registry {
    paths: BTreeMap<u64, PathBuf>,
}

impl Registry {
    /// Records every cgroup below `root`.
    pub fn scan(&mut self, root: &Cgroup) {
        self.paths.extend(root.descendants());
    }

    /// The directory of every cgroup seen, by id.
    pub fn entries(&self) -> impl Iterator<Item = (u64, &Path)> {
        self.paths.iter().map(|(id, p)| (*id, p.as_path()))
    }
}
