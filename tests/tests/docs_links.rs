//! Every Markdown file's relative links and in-page anchors resolve, with
//! GitHub's anchor rules; and the README's first screen has what a newcomer
//! needs.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use recorder_tests::workspace_root;

fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let entry = entry.expect("entry");
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            // Build output and hidden directories are not documentation.
            if name != "target" && !name.starts_with('.') {
                markdown_files(&path, out);
            }
        } else if name.ends_with(".md") {
            out.push(path);
        }
    }
}

/// GitHub's heading anchor (github-slugger): lowercase, every character that
/// is not a letter, digit, '_', '-' or space dropped, spaces to '-'.
fn slug(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '_' || *c == '-' || *c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors a document defines: heading slugs (a repeated one gets
/// `-1`, `-2`, ... as on GitHub) and explicit `id="..."`/`name="..."`.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut heading: Option<String> = None;
    for event in Parser::new_ext(text, Options::all()) {
        match event {
            Event::Start(Tag::Heading { .. }) => heading = Some(String::new()),
            Event::End(TagEnd::Heading(_)) => {
                if let Some(h) = heading.take() {
                    let base = slug(h.trim());
                    let n = seen.entry(base.clone()).or_insert(0);
                    found.insert(if *n == 0 { base.clone() } else { format!("{base}-{n}") });
                    *n += 1;
                }
            }
            Event::Text(t) | Event::Code(t) => {
                if let Some(h) = heading.as_mut() {
                    h.push_str(&t);
                }
            }
            Event::Html(h) | Event::InlineHtml(h) => {
                for attr in ["id=\"", "name=\""] {
                    for (i, _) in h.match_indices(attr) {
                        let rest = &h[i + attr.len()..];
                        if let Some(end) = rest.find('"') {
                            found.insert(rest[..end].to_owned());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    found
}

/// (destination, line) of every link and image in a document.
fn links(text: &str) -> Vec<(String, usize)> {
    let line_of = |offset: usize| text[..offset].matches('\n').count() + 1;
    Parser::new_ext(text, Options::all())
        .into_offset_iter()
        .filter_map(|(event, range)| match event {
            Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                Some((dest_url.to_string(), line_of(range.start)))
            }
            _ => None,
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn slugs_follow_github() {
    assert_eq!(slug("Where output goes"), "where-output-goes");
    assert_eq!(slug("`diff --json` schema"), "diff---json-schema");
    assert_eq!(slug("clone3 and ENOSYS"), "clone3-and-enosys");
    assert_eq!(slug("Dependencies, and why each is there"), "dependencies-and-why-each-is-there");
    assert_eq!(slug("What a workload needs to end"), "what-a-workload-needs-to-end");
    let doc = "# A\n## B\n## B\n<a id=\"custom\"></a>\n";
    assert_eq!(anchors(doc), BTreeSet::from(["a".into(), "b".into(), "b-1".into(), "custom".into()]));
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let root = workspace_root();
    let mut files = Vec::new();
    markdown_files(&root, &mut files);
    assert!(files.iter().any(|f| f.ends_with("README.md")), "found the README");
    let mut anchor_cache: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
    let mut anchors_of = |path: &Path| -> BTreeSet<String> {
        anchor_cache
            .entry(path.to_path_buf())
            .or_insert_with(|| anchors(&std::fs::read_to_string(path).unwrap_or_default()))
            .clone()
    };
    let mut broken = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read");
        let shown = file.strip_prefix(&root).unwrap_or(file).display().to_string();
        for (dest, line) in links(&text) {
            if dest.contains("://") || dest.starts_with("mailto:") {
                continue;
            }
            let (path, fragment) = match dest.split_once('#') {
                Some((p, f)) => (p, Some(f)),
                None => (dest.as_str(), None),
            };
            let target = if path.is_empty() {
                file.clone()
            } else if let Some(from_root) = path.strip_prefix('/') {
                root.join(percent_decode(from_root))
            } else {
                file.parent().unwrap_or(&root).join(percent_decode(path))
            };
            if !target.exists() {
                broken.push(format!("{shown}:{line}: {dest}: no such file"));
                continue;
            }
            if let Some(fragment) = fragment.filter(|f| !f.is_empty())
                && target.extension().is_some_and(|e| e == "md")
                && !anchors_of(&target).contains(&percent_decode(fragment).to_lowercase())
            {
                broken.push(format!("{shown}:{line}: {dest}: no heading or anchor #{fragment}"));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_readme_first_screen_has_what_a_newcomer_needs() {
    let root = workspace_root();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let first: String = readme.lines().take(30).collect::<Vec<_>>().join("\n");
    for needed in ["cargo xtask demo", "cargo xtask test", "(docs/architecture.md)", "(BENCHMARKS.md)"] {
        assert!(first.contains(needed), "README's first 30 lines lack {needed:?}");
    }
    // Deeper documents that exist are linked from the first screen.
    for optional in ["RELIABILITY.md", "deploy/kubernetes/README.md"] {
        if root.join(optional).exists() {
            assert!(first.contains(&format!("({optional})")), "README's first 30 lines do not link {optional}");
        }
    }
    // A text block of the demo's output.
    assert!(first.contains("== 1. Record nginx"), "README's first screen shows the demo's output");
    // A heading level sanity check: one title.
    let titles = Parser::new(&readme)
        .filter(|e| matches!(e, Event::Start(Tag::Heading { level: HeadingLevel::H1, .. })))
        .count();
    assert_eq!(titles, 1, "one H1 in the README");
}
