//! The module layers of `recorder/src` (docs/architecture.md), checked on
//! every run: no module imports from a layer above its own, modules of one
//! layer form no cycle, no file grows past the size a reader can hold, and
//! the document names every module that exists.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use recorder_tests::workspace_root;

/// Top-level modules by layer, highest first (docs/architecture.md).
const LAYERS: [&[&str]; 4] = [
    &["cli"],
    &["record", "daemon", "runtime", "algebra", "enforce"],
    &["target", "bpf", "profile", "output", "audit", "inspect"],
    &["cri", "syscalls", "k8s_name", "text"],
];

/// Files a newcomer can read in one sitting (STYLE.md says "about 600").
const MAX_LINES: usize = 650;

fn src() -> PathBuf {
    workspace_root().join("recorder/src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`cli/record/pod.rs` -> `cli`).
fn top_module(file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src()).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    Some(first.trim_end_matches(".rs").to_owned())
}

/// Every top-level module named after `crate::` in `text`, including the
/// heads of `use crate::{a::.., b, c::{..}}` groups.
fn crate_references(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let ident = |s: &str| -> Option<String> {
        let name: String = s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        (!name.is_empty() && name != "self").then_some(name)
    };
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0usize;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.extend(ident(item.trim()));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            found.extend(ident(item.trim()));
        } else {
            found.extend(ident(rest));
        }
    }
    found
}

fn layer_of(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|layer| layer.contains(&module))
        .unwrap_or_else(|| panic!("module {module} is in no layer; add it to docs/architecture.md and this test"))
}

fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let Some(module) = top_module(&file) else { continue };
        if module == "main" || module == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read");
        let refs = crate_references(&text);
        let entry = graph.entry(module.clone()).or_default();
        entry.extend(refs.into_iter().filter(|r| *r != module));
    }
    graph
}

#[test]
fn dependencies_point_down_and_never_in_a_cycle() {
    let graph = module_graph();
    let mut wrong = Vec::new();
    for (module, uses) in &graph {
        for used in uses {
            if layer_of(used) < layer_of(module) {
                wrong.push(format!(
                    "{module} (layer {}) imports {used} (layer {})",
                    layer_of(module) + 1,
                    layer_of(used) + 1
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "imports from a higher layer:\n{}", wrong.join("\n"));
    // Depth-first search for a cycle among same-layer edges.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == node) {
            return Some(path[i..].to_vec());
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        if let Some(cycle) = visit(module, &graph, &mut Vec::new(), &mut done) {
            panic!("module cycle: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn no_file_is_too_long_to_read() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    rust_files(&workspace_root().join("recorder-ebpf/src"), &mut files);
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let lines = std::fs::read_to_string(f).expect("read").lines().count();
            (lines > MAX_LINES).then(|| format!("{} has {lines} lines", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "split these files (at most {MAX_LINES} lines):\n{}", long.join("\n"));
}

#[test]
fn the_architecture_document_names_every_module() {
    let doc = std::fs::read_to_string(workspace_root().join("docs/architecture.md")).expect("docs/architecture.md");
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut missing = BTreeSet::new();
    for file in files {
        let rel = file.strip_prefix(src()).expect("under src").to_string_lossy().into_owned();
        if rel.ends_with("tests.rs") || rel.contains("/tests/") {
            continue;
        }
        // A file is named by its path or by a directory it is in
        // (`cli/record/`); a `mod.rs` also by any file beside it.
        let mut dirs = Vec::new();
        let mut rest = rel.as_str();
        while let Some((dir, _)) = rest.rsplit_once('/') {
            dirs.push(format!("`{dir}/"));
            rest = dir;
        }
        let named = doc.contains(&format!("`{rel}`"))
            || dirs.iter().any(|d| doc.contains(d.as_str()))
            || (rel.ends_with("mod.rs") && dirs.first().is_some_and(|d| doc.contains(d.as_str())));
        if !named {
            missing.insert(rel);
        }
    }
    assert!(missing.is_empty(), "docs/architecture.md does not name: {missing:?}");
    for layer in LAYERS {
        for module in layer {
            assert!(doc.contains(module), "docs/architecture.md does not place {module} in a layer");
        }
    }
}

#[test]
fn the_reference_parser_sees_grouped_imports() {
    let refs = crate_references(
        "use crate::{\n    bpf::{Select, preflight},\n    cli::exit::Failure,\n    text,\n};\nlet x = crate::syscalls::Family::host();",
    );
    assert_eq!(refs, BTreeSet::from(["bpf".into(), "cli".into(), "text".into(), "syscalls".into()]));
}
