//! The core's module graph: dependencies one way, no cycles, and the module map at the top of
//! `src/lib.rs` naming every module there is (and none that is gone).
//!
//! A module is a top-level file `src/<name>.rs` or directory `src/<name>/`; it depends on
//! another when its text names `crate::<other>` (in a `use` or a path). Submodules belong to
//! their top-level module, so `authorizer/explain.rs` using `super::` is the module itself.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests fail loudly")]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, recursively.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`None` for `lib.rs`).
fn module_of(path: &Path) -> Option<String> {
    let rel = path.strip_prefix(src()).expect("under src");
    let first = rel.components().next()?.as_os_str().to_string_lossy().into_owned();
    let name = first.strip_suffix(".rs").unwrap_or(&first).to_owned();
    (name != "lib").then_some(name)
}

/// The text without comments (a `crate::x` in prose is not a dependency).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The modules `text` names as `crate::<name>`, including `use crate::{a, b::c}` lists.
fn references(text: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let text = code(text);
    let mut rest = text.as_str();
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(list) = rest.strip_prefix('{') {
            let end = list.find('}').unwrap_or(list.len());
            for item in list[..end].split(',') {
                let name: String = item.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                out.insert(name);
            }
        } else {
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            out.insert(name);
        }
    }
    out.retain(|m| modules.contains(m));
    out
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut all = Vec::new();
    files(&src(), &mut all);
    let modules: BTreeSet<String> = all.iter().filter_map(|p| module_of(p)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = modules.iter().map(|m| (m.clone(), BTreeSet::new())).collect();
    for path in &all {
        let Some(module) = module_of(path) else { continue };
        let text = std::fs::read_to_string(path).expect("read a source file");
        let mut refs = references(&text, &modules);
        refs.remove(&module);
        graph.get_mut(&module).expect("known module").extend(refs);
    }
    graph
}

/// A cycle in `graph`, as the path that closes it, if there is one.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        marks.insert(node.to_owned(), Mark::Open);
        path.push(node.to_owned());
        for next in &graph[node] {
            match marks[next.as_str()] {
                Mark::Open => {
                    let start = path.iter().position(|p| p == next).unwrap_or(0);
                    let mut c = path[start..].to_vec();
                    c.push(next.clone());
                    return Some(c);
                }
                Mark::New => {
                    if let Some(c) = visit(next, graph, marks, path) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        path.pop();
        marks.insert(node.to_owned(), Mark::Done);
        None
    }
    let mut marks: BTreeMap<String, Mark> = graph.keys().map(|k| (k.clone(), Mark::New)).collect();
    for node in graph.keys() {
        if marks[node.as_str()] == Mark::New {
            if let Some(c) = visit(node, graph, &mut marks, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

#[test]
fn the_module_graph_has_no_cycle() {
    let graph = graph();
    assert!(graph.len() > 10, "found only {} modules: is src() right?", graph.len());
    if let Some(c) = cycle(&graph) {
        panic!("import cycle among the core's modules: {}", c.join(" -> "));
    }
}

#[test]
fn the_cycle_check_sees_a_cycle() {
    // the checker itself, on a graph that has one: it must not pass everything
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.insert("a".into(), ["b".to_owned()].into());
    g.insert("b".into(), ["c".to_owned()].into());
    g.insert("c".into(), ["a".to_owned()].into());
    g.insert("d".into(), BTreeSet::new());
    assert_eq!(cycle(&g), Some(vec!["a".to_owned(), "b".to_owned(), "c".to_owned(), "a".to_owned()]));
    g.get_mut("c").expect("c").clear();
    assert_eq!(cycle(&g), None);
    let modules: BTreeSet<String> = ["audit", "registry"].iter().map(|s| (*s).to_owned()).collect();
    let text = "use crate::{audit::Audit, registry};\n// crate::nothing in prose\nlet x = crate::registry::parse(1);";
    assert_eq!(references(text, &modules), modules);
}

/// Where the module map first names `module` (as `module` or `module/`), if it does.
fn position(map: &str, module: &str) -> Option<usize> {
    [format!("`{module}`"), format!("`{module}/`")].iter().filter_map(|n| map.find(n.as_str())).min()
}

fn module_map() -> String {
    let lib = std::fs::read_to_string(src().join("lib.rs")).expect("read lib.rs");
    let start = lib.find("# Module map").expect("lib.rs has a `# Module map` section");
    lib[start..].lines().take_while(|l| l.starts_with("//!") || l.starts_with('#')).collect::<Vec<_>>().join("\n")
}

#[test]
fn the_module_map_names_every_module_in_dependency_order() {
    let map = module_map();
    let graph = graph();
    let missing: Vec<&String> = graph.keys().filter(|m| position(&map, m).is_none()).collect();
    assert!(missing.is_empty(), "modules the map at the top of src/lib.rs does not describe: {missing:?}");
    // the map says each module uses only modules above it: hold it to that
    for (module, deps) in &graph {
        for dep in deps {
            assert!(
                position(&map, dep) < position(&map, module),
                "`{module}` uses `{dep}`, which the module map lists after it"
            );
        }
    }
    // and every module its list names exists
    for line in map.lines() {
        let Some(rest) = line.strip_prefix("//! - `") else { continue };
        let name: String = rest.chars().take_while(|c| *c != '`').collect();
        let name = name.trim_end_matches('/');
        assert!(graph.contains_key(name), "the module map names `{name}`, which is not a module");
    }
}
