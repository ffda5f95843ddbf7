//! Paths not taken: from the executables a recording saw, the calls the
//! workload *can* make that its profile does not allow, each with the reason
//! (an imported libc function, a Go syscall wrapper, a raw `syscall`
//! instruction). Information: nothing is added to a profile unless asked
//! (`--with-likely`).
//!
//! `elf` reads a file's imports, `DT_NEEDED` libraries, Go function names
//! and raw syscall sites; `table` is the shipped libc function table; `go`
//! maps Go function names; `root` reads files inside a workload's root.

pub mod elf;
pub mod go;
pub mod root;
pub mod table;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

pub use self::root::{Root, RootError};
use crate::syscalls::Arch;

/// Libraries that are libc itself: their imports are libc's internals,
/// which the table already accounts for.
const LIBC_PARTS: &[&str] =
    &["libc.so", "ld-linux", "libpthread.so", "libdl.so", "librt.so", "libm.so", "libutil.so", "libc.musl", "ld-musl"];

/// Where the dynamic loader looks when a library has no path.
fn default_lib_dirs(arch: Arch) -> Vec<String> {
    let triple = match arch {
        Arch::Aarch64 => "aarch64-linux-gnu",
        Arch::X86 => "i386-linux-gnu",
        _ => "x86_64-linux-gnu",
    };
    vec![
        format!("/lib/{triple}"),
        format!("/usr/lib/{triple}"),
        "/lib64".into(),
        "/usr/lib64".into(),
        "/lib".into(),
        "/usr/lib".into(),
        "/usr/local/lib".into(),
    ]
}

/// Why a call is likely.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Via {
    /// The object imports this libc function.
    Import { function: String },
    /// A Go function of this name is in the binary.
    GoFunction { function: String },
    /// A `syscall` instruction with this number loaded before it.
    RawSyscall { address: String },
}

/// One reason: which executable, through which file (itself or a library it
/// loads), and how.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Reason {
    pub executable: String,
    /// The file the evidence is in (the executable or a `DT_NEEDED` library).
    pub object: String,
    #[serde(flatten)]
    pub via: Via,
}

impl Reason {
    /// "imports fork", "imports getaddrinfo (via libssl.so.3)", ...
    pub fn describe(&self) -> String {
        let how = match &self.via {
            Via::Import { function } => format!("imports {function}"),
            Via::GoFunction { function } => format!("has Go function {function}"),
            Via::RawSyscall { address } => format!("has a syscall instruction for it at {address}"),
        };
        if self.object == self.executable {
            format!("{} {how}", self.executable)
        } else {
            format!("{} {how} (in {})", self.executable, self.object)
        }
    }
}

/// What kind of file an executable was, and what could be said about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Examined {
    pub executable: String,
    /// `dynamic`, `static`, `go`, `script`, `unreadable`, `not-elf`.
    pub kind: &'static str,
    /// The file analysed: the executable, or a script's interpreter.
    pub file: String,
    /// Libraries read besides the executable (`DT_NEEDED`, transitively).
    pub libraries: Vec<String>,
    /// What the analysis can and cannot say for this file.
    pub note: String,
}

/// The result: likely-missing calls with their reasons, and what was read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Likely {
    pub architecture: String,
    /// Call -> reasons (every one found, sorted).
    pub calls: BTreeMap<String, Vec<Reason>>,
    pub examined: Vec<Examined>,
}

impl Likely {
    pub fn names(&self) -> BTreeSet<String> {
        self.calls.keys().cloned().collect()
    }

    /// Only the calls with evidence in an executable itself (its own
    /// imports, Go functions or syscall sites), and how many were left out
    /// because only a library it loads imports them. A library imports what
    /// any of its users may need, so that evidence is much weaker.
    pub fn direct(&self) -> (Likely, usize) {
        let mut direct =
            Likely { architecture: self.architecture.clone(), examined: self.examined.clone(), ..Likely::default() };
        let mut left_out = 0;
        for (name, reasons) in &self.calls {
            if reasons
                .iter()
                .any(|r| r.object == r.executable || r.object == interpreter_of(&self.examined, &r.executable))
            {
                direct.calls.insert(name.clone(), reasons.clone());
            } else {
                left_out += 1;
            }
        }
        (direct, left_out)
    }
}

/// The file a script's evidence is in (its interpreter), or "".
fn interpreter_of<'a>(examined: &'a [Examined], executable: &str) -> &'a str {
    examined.iter().find(|e| e.executable == executable).map_or("", |e| e.file.as_str())
}

/// The calls the executables at `paths` (inside `root`) can make on `arch`
/// and `allowed` does not hold.
pub fn analyze(paths: &[String], root: &Root, allowed: &BTreeSet<String>, arch: Arch) -> Likely {
    let mut out = Likely { architecture: arch.scmp_name().to_owned(), ..Likely::default() };
    let mut found: BTreeMap<String, BTreeSet<Reason>> = BTreeMap::new();
    for path in paths {
        let examined = examine(path, root, arch, &mut |name: &str, object: &str, via: Via| {
            if allowed.contains(name) || arch.number_of(name).is_none() {
                return;
            }
            found.entry(name.to_owned()).or_default().insert(Reason {
                executable: path.clone(),
                object: object.to_owned(),
                via,
            });
        });
        out.examined.push(examined);
    }
    out.calls = found.into_iter().map(|(k, v)| (k, v.into_iter().collect())).collect();
    out
}

/// Reads one executable (following a `#!` line to its interpreter) and
/// reports every call it can make through `note(call, object, via)`.
fn examine(path: &str, root: &Root, arch: Arch, note: &mut dyn FnMut(&str, &str, Via)) -> Examined {
    let mut ex = Examined {
        executable: path.to_owned(),
        kind: "unreadable",
        file: path.to_owned(),
        libraries: Vec::new(),
        note: String::new(),
    };
    if !path.starts_with('/') {
        ex.note = "a relative path (as the exec'ing process wrote it); its directory is not known".to_owned();
        return ex;
    }
    let mut file = path.to_owned();
    let mut data = match root.read(&file) {
        Ok(d) => d,
        Err(e) => {
            ex.note = format!("cannot read it in {}: {e}", root.path().display());
            return ex;
        }
    };
    if let Some(interp) = shebang(&data) {
        ex.kind = "script";
        file = interp.clone();
        ex.file = interp.clone();
        data = match root.read(&file) {
            Ok(d) => d,
            Err(e) => {
                ex.note = format!("a script; its interpreter {interp} cannot be read: {e}");
                return ex;
            }
        };
    }
    let facts = match elf::facts(&data) {
        Ok(f) => f,
        Err(e) => {
            ex.kind = "not-elf";
            ex.note = format!("{e}: nothing to analyse");
            return ex;
        }
    };
    let script = ex.kind == "script";
    if facts.arch.is_some_and(|a| a != arch) {
        ex.kind = if script { "script" } else { "dynamic" };
        ex.note = format!(
            "built for {}, not {}: not analysed (record it on its own architecture)",
            facts.arch.map_or("?", Arch::scmp_name),
            arch.scmp_name()
        );
        return ex;
    }
    let object = file.clone();
    if facts.go {
        for function in &facts.go_functions {
            for call in go::calls_of(function, arch) {
                note(call, &object, Via::GoFunction { function: function.clone() });
            }
        }
    }
    for (nr, address) in &facts.raw_syscalls {
        if let Some(call) = arch.name_of(*nr) {
            note(call, &object, Via::RawSyscall { address: format!("{address:#x}") });
        }
    }
    let imports_note = imports(&facts, &file, root, arch, note, &mut ex.libraries);
    if !script {
        ex.kind = match (facts.go, facts.dynamic) {
            (true, _) => "go",
            (false, true) => "dynamic",
            (false, false) => "static",
        };
    }
    ex.note = match ex.kind {
        "go" => format!(
            "Go: {} function names read; syscall/x/sys/unix wrappers and process starts mapped, raw syscall sites read{imports_note}",
            facts.go_functions.len()
        ),
        "static" => format!(
            "static: no imports to read; {} raw syscall sites read (mov $N,%eax before syscall), libc calls through shared code are not seen",
            facts.raw_syscalls.len()
        ),
        "script" => format!("a script run by {file}{imports_note}"),
        _ => format!("dynamic: imports mapped with {}{imports_note}", table::SOURCES),
    };
    ex
}

/// The imports of `file` and of every library it needs (libc's own parts
/// left out); returns a note on libraries that could not be found.
fn imports(
    facts: &elf::ElfFacts,
    file: &str,
    root: &Root,
    arch: Arch,
    note: &mut dyn FnMut(&str, &str, Via),
    libraries: &mut Vec<String>,
) -> String {
    let mut missing = Vec::new();
    let mut queue: Vec<(String, elf::ElfFacts)> = vec![(file.to_owned(), facts.clone())];
    let mut seen: BTreeSet<String> = BTreeSet::new();
    while let Some((object, f)) = queue.pop() {
        for function in &f.imports {
            for call in table::calls_of(function, arch) {
                note(call, &object, Via::Import { function: function.clone() });
            }
        }
        for needed in &f.needed {
            if LIBC_PARTS.iter().any(|p| needed.starts_with(p)) || !seen.insert(needed.clone()) {
                continue;
            }
            match find_library(needed, &object, &f.runpath, root, arch) {
                Some(path) => match root.read(&path).ok().and_then(|d| elf::facts(&d).ok()) {
                    Some(lib) => {
                        libraries.push(path.clone());
                        queue.push((path, lib));
                    }
                    None => missing.push(needed.clone()),
                },
                None => missing.push(needed.clone()),
            }
        }
    }
    libraries.sort();
    if missing.is_empty() { String::new() } else { format!("; libraries not found: {}", missing.join(", ")) }
}

fn find_library(needed: &str, object: &str, runpath: &[String], root: &Root, arch: Arch) -> Option<String> {
    if needed.contains('/') {
        return root.has_file(needed).then(|| needed.to_owned());
    }
    let origin = object.rsplit_once('/').map_or("/", |(d, _)| d);
    runpath
        .iter()
        .map(|d| d.replace("$ORIGIN", origin).replace("${ORIGIN}", origin))
        .chain(default_lib_dirs(arch))
        .map(|dir| format!("{}/{needed}", dir.trim_end_matches('/')))
        .find(|candidate| root.has_file(candidate))
}

/// The interpreter of a `#!` script.
fn shebang(data: &[u8]) -> Option<String> {
    let rest = data.strip_prefix(b"#!")?;
    let line = rest.split(|b| *b == b'\n').next()?;
    let line = String::from_utf8_lossy(line);
    line.split_whitespace().next().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_binary_can_fork_a_recorder_test_never_does() {
        // The unit-test binary imports libc functions; std uses fork-free
        // process spawning (posix_spawn or clone3), and those calls come
        // from imports, with reasons naming them.
        let root = Root::open(std::path::Path::new("/")).expect("root");
        let me = std::fs::read_link("/proc/self/exe").expect("exe").display().to_string();
        let likely = analyze(std::slice::from_ref(&me), &root, &BTreeSet::new(), Arch::X86_64);
        assert_eq!(likely.examined[0].kind, "dynamic", "{:?}", likely.examined);
        assert!(likely.calls.contains_key("write"), "{:?}", likely.calls.keys().collect::<Vec<_>>());
        let allowed: BTreeSet<String> = likely.names();
        let again = analyze(&[me], &root, &allowed, Arch::X86_64);
        assert!(again.calls.is_empty(), "what is allowed is never likely");
    }

    #[test]
    fn scripts_lead_to_their_interpreter_and_relative_paths_are_said() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("run.sh"), "#!/bin/sh\necho hi\n").expect("write");
        let root = Root::open(std::path::Path::new("/")).expect("root");
        let path = dir.path().join("run.sh").display().to_string();
        let likely = analyze(&[path, "./x".to_owned()], &root, &BTreeSet::new(), Arch::X86_64);
        assert_eq!(likely.examined[0].kind, "script");
        assert!(likely.examined[1].note.contains("relative"));
    }
}
