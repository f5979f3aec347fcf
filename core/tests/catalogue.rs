//! The error catalogue (`docs/errors.md`) lists every code, and only those.

use std::path::Path;

#[test]
fn docs_list_every_error_code() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/errors.md")).unwrap_or_default();
    let listed: Vec<&str> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .filter(|c| c.starts_with("AMBIT_"))
        .collect();
    assert_eq!(listed, ambit::Error::CODES, "docs/errors.md must list every code, in order");
}
