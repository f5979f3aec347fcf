//! Runs every shared decision vector in `tests/vectors/` through the Rust API.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests fail loudly on a broken fixture")]

use std::path::Path;

#[test]
fn shared_vectors_pass() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let files = ambit::vector::find_files(&root.join("tests/vectors")).unwrap();
    assert!(!files.is_empty(), "no decision vectors found in tests/vectors");
    let mut failures = Vec::new();
    let mut cases = 0;
    for file in &files {
        for result in ambit::vector::run_file(file, &root).unwrap() {
            cases += 1;
            if let Some(f) = result.failure {
                failures.push(format!("{}: {f}", result.name));
            }
        }
    }
    assert!(cases > 0, "vector files hold no cases");
    assert!(failures.is_empty(), "{} of {cases} vector cases failed:\n{}", failures.len(), failures.join("\n"));
}
