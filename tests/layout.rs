//! The layout of the code: inside each crate, files import one way. A file (module) may use
//! another's items, but no two files reach each other, directly or around a circle: where
//! two parts need the same thing, it belongs in a file of its own that both import.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The `src` folders of the binary and of every crate of the workspace.
fn source_roots() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut roots = vec![root.join("src")];
    let mut crates: Vec<PathBuf> = fs::read_dir(root.join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path().join("src"))
        .filter(|p| p.is_dir())
        .collect();
    crates.sort();
    roots.extend(crates);
    roots
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file: `a/b.rs` and `a/b/mod.rs` are `a::b`; the crate root is ``.
fn module_of(root: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(root).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts.join("::")
}

/// The paths a file names after `prefix` (`crate::`, `super::`), up to the first
/// non-identifier character: `crate::a::b::{c, d}` gives `a::b`.
fn paths_after<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().next_back();
        let tail = &rest[i + prefix.len()..];
        rest = tail;
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let end = tail
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(tail.len());
        let path = tail[..end].trim_end_matches(':');
        if !path.is_empty() {
            out.push(path);
        }
    }
    out
}

/// The longest prefix of `path` (from `base`) that is a module of the crate.
fn resolve(modules: &BTreeSet<String>, base: &[&str], path: &str) -> Option<String> {
    let mut parts: Vec<&str> = base.to_vec();
    parts.extend(path.split("::"));
    (1..=parts.len())
        .rev()
        .map(|k| parts[..k].join("::"))
        .find(|m| modules.contains(m))
}

/// Each module of a crate and the modules it names (its own submodules and the crate root
/// left out: a parent declares its children).
fn import_graph(root: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(root, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(root, f)).collect();
    let mut graph = BTreeMap::new();
    for file in &files {
        let module = module_of(root, file);
        let text = fs::read_to_string(file).unwrap();
        // Unit tests may reach anywhere.
        let text = text.split("#[cfg(test)]").next().unwrap_or("");
        let own: Vec<&str> = if module.is_empty() {
            Vec::new()
        } else {
            module.split("::").collect()
        };
        let parent = &own[..own.len().saturating_sub(1)];
        let mut uses = BTreeSet::new();
        let named = paths_after(text, "crate::")
            .into_iter()
            .filter_map(|p| resolve(&modules, &[], p))
            .chain(
                paths_after(text, "super::")
                    .into_iter()
                    .filter_map(|p| resolve(&modules, parent, p)),
            );
        for target in named {
            let inside = target == module || target.starts_with(&format!("{module}::"));
            let ancestor = module.starts_with(&format!("{target}::"));
            if !target.is_empty() && !inside && !ancestor {
                uses.insert(target);
            }
        }
        graph.insert(module, uses);
    }
    graph
}

/// The circles of a graph: its strongly connected parts of two modules or more.
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Two modules are on one circle when each reaches the other.
    let reach = |from: &String| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(m) = todo.pop() {
            for next in graph.get(&m).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> =
        graph.keys().map(|m| (m, reach(m))).collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for m in graph.keys() {
        if done.contains(m) || !reaches[m].contains(m) {
            continue;
        }
        let circle: Vec<String> = graph
            .keys()
            .filter(|o| *o == m || (reaches[m].contains(*o) && reaches[*o].contains(m)))
            .cloned()
            .collect();
        done.extend(circle.iter().cloned());
        out.push(circle);
    }
    out
}

#[test]
fn files_import_one_way_in_every_crate() {
    let mut found = Vec::new();
    for root in source_roots() {
        let graph = import_graph(&root);
        for circle in circles(&graph) {
            let edges: Vec<String> = circle
                .iter()
                .map(|m| {
                    let to: Vec<&String> = graph[m].iter().filter(|t| circle.contains(t)).collect();
                    format!("{m} -> {to:?}")
                })
                .collect();
            found.push(format!("{}: {}", root.display(), edges.join("; ")));
        }
    }
    assert!(
        found.is_empty(),
        "files that import each other (move what both need into a file of its own):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_checker_sees_a_circle() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    fs::create_dir_all(src.join("file")).unwrap();
    fs::write(src.join("lib.rs"), "mod a;\nmod b;\nmod file;\n").unwrap();
    fs::write(src.join("a.rs"), "use crate::b::B;\npub struct A;\n").unwrap();
    fs::write(
        src.join("b.rs"),
        "pub struct B;\nfn f() { let _ = crate::file::tail::T; }\n",
    )
    .unwrap();
    fs::write(src.join("file/mod.rs"), "mod tail;\nmod stream;\n").unwrap();
    fs::write(
        src.join("file/tail.rs"),
        "use super::stream::S;\npub struct T;\n",
    )
    .unwrap();
    fs::write(
        src.join("file/stream.rs"),
        "pub struct S;\n#[cfg(test)]\nmod tests { use crate::a::A; }\nuse crate::a::A;\n",
    )
    .unwrap();
    let graph = import_graph(src);
    assert_eq!(graph["b"], BTreeSet::from(["file::tail".to_string()]));
    // a -> b -> file::tail -> file::stream; the unit tests' import of `a` does not count.
    assert!(circles(&graph).is_empty(), "{graph:?}");
    fs::write(
        src.join("file/stream.rs"),
        "use crate::a::A;\npub struct S;\n",
    )
    .unwrap();
    let graph = import_graph(src);
    assert_eq!(
        circles(&graph),
        vec![vec![
            "a".to_string(),
            "b".to_string(),
            "file::stream".to_string(),
            "file::tail".to_string()
        ]]
    );
}
