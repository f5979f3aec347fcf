//! The Rust column of `docs/api.md` names what the crate defines: each type (or module, or
//! function) is declared public in `core/src`, and each member is a public function, constant,
//! field or variant of it (a trait method for traits). The bindings' tests check their columns
//! against what they export.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests fail loudly")]

use std::path::Path;

fn rust_names() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let doc = std::fs::read_to_string(root.join("docs/api.md")).unwrap();
    doc.lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.trim().trim_matches('|').split('|').map(str::trim).collect();
            let first = *cells.first()?;
            if cells.len() < 3 || first == "Rust" || first == "---" {
                return None;
            }
            first.strip_prefix('`')?.strip_suffix('`').map(str::to_owned)
        })
        .collect()
}

fn sources() -> String {
    fn read(dir: &Path, all: &mut String) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                read(&path, all);
            } else if path.extension().is_some_and(|e| e == "rs") {
                all.push_str(&std::fs::read_to_string(path).unwrap());
            }
        }
    }
    let mut all = String::new();
    read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut all);
    all
}

#[test]
fn every_rust_name_in_the_table_is_defined() {
    let names = rust_names();
    assert!(names.len() > 50, "{} Rust names in docs/api.md", names.len());
    let src = sources();
    let declared = |head: &str| {
        ["pub struct ", "pub enum ", "pub trait ", "pub mod ", "pub fn "]
            .iter()
            .any(|k| [" ", "(", "<", ";", ":", "{"].iter().any(|end| src.contains(&format!("{k}{head}{end}"))))
    };
    for name in names {
        let (head, member) = name.split_once("::").map_or((name.as_str(), None), |(h, m)| (h, Some(m)));
        assert!(declared(head), "docs/api.md names `{name}`: no public `{head}` in core/src");
        if let Some(m) = member {
            let defined = [
                format!("pub fn {m}("),
                format!("pub fn {m}<"),
                format!("pub const {m}:"),
                format!("pub {m}:"),
                format!("    {m}("),
                format!("    fn {m}("),
            ]
            .iter()
            .any(|p| src.contains(p.as_str()));
            assert!(defined, "docs/api.md names `{name}`: no public `{m}` in core/src");
        }
    }
}
