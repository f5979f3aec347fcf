//! The error catalogue (`docs/errors.md`) lists every code, and only those, each with a test
//! that exists and asserts that code.

use std::path::Path;

#[test]
fn docs_list_every_error_code_with_a_test_that_asserts_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let doc = std::fs::read_to_string(root.join("docs/errors.md")).unwrap_or_default();
    let rows: Vec<&str> = doc.lines().filter(|l| l.starts_with("| `AMBIT_")).collect();
    let listed: Vec<&str> = rows.iter().filter_map(|l| l.strip_prefix("| `")?.split('`').next()).collect();
    assert_eq!(listed, ambit::Error::CODES, "docs/errors.md must list every code, in order");
    for (row, code) in rows.iter().zip(&listed) {
        let cells: Vec<&str> = row.split(" | ").collect();
        let named = cells.last().map(|c| c.trim_end_matches(" |").trim_matches('`')).unwrap_or_default();
        let (file, test) = named.split_once("::").unwrap_or_else(|| panic!("{code}: no `file::test` in {row}"));
        let source = std::fs::read_to_string(root.join(file)).unwrap_or_else(|_| panic!("{code}: no file {file}"));
        let start = source.find(&format!("fn {test}(")).unwrap_or_else(|| panic!("{code}: no test {test} in {file}"));
        let body = &source[start..];
        let body = &body[..body.find("\n#[test]").unwrap_or(body.len())];
        assert!(body.contains(&format!("\"{code}\"")), "{file}::{test} does not assert {code}");
    }
}
