//! The Cedar team's example applications (`../shared/cedar-examples`, read in place): every
//! scenario loads, and every request with an expected answer gets it. Scenarios whose upstream
//! script authorizes without the schema (`upstream_authorize_with_schema: false` in
//! `scenario.json`: their entities do not fit their own schema) are run that way here too.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests fail loudly")]

use ambit::{Authorizer, Request, Validation};
use serde_json::Value;
use std::path::{Path, PathBuf};

mod shared;

/// `AMBIT_CEDAR_EXAMPLES`, else `../shared/cedar-examples` next to this checkout (or the one it
/// was cloned from).
fn examples() -> PathBuf {
    shared::shared_dir("cedar-examples", "AMBIT_CEDAR_EXAMPLES", "README.md")
}

fn scenario(dir: &Path) -> Result<(usize, Vec<String>), String> {
    let meta: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("scenario.json")).unwrap()).unwrap();
    let with_schema = meta["upstream_authorize_with_schema"].as_bool().unwrap_or(true);
    let find = |prefix: &str, suffixes: &[&str]| {
        suffixes.iter().map(|s| dir.join(format!("{prefix}{s}"))).find(|p| p.exists())
    };
    let mut b = Authorizer::builder();
    if with_schema {
        let schema = find("schema", &[".cedarschema", ".cedarschema.json"]).ok_or("no schema")?;
        b = b.schema_file(schema);
    } else {
        b = b.validation(Validation::Off);
    }
    b = b.policies_file(dir.join("policies.cedar")).entities_file(dir.join("entities.json"));
    if dir.join("links.json").exists() {
        b = b.links_file(dir.join("links.json"));
    }
    let authz = b.build().map_err(|e| format!("does not load: {} {e}", e.code()))?;
    let requests: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("requests.json")).unwrap()).unwrap();
    let mut wrong = Vec::new();
    for r in &requests {
        let request = Request::new(
            r["principal"].as_str().unwrap(),
            r["action"].as_str().unwrap(),
            r["resource"].as_str().unwrap(),
        )
        .with_context(r["context"].clone());
        let want = r["expect"].as_str().unwrap() == "ALLOW";
        match authz.authorize(&request) {
            Ok(d) if d.allowed() == want => {}
            Ok(d) => wrong.push(format!("{}: expected {}, got {:?}", r["name"], r["expect"], d.deny_cause())),
            Err(e) => wrong.push(format!("{}: {} {e}", r["name"], e.code())),
        }
    }
    Ok((requests.len(), wrong))
}

#[test]
fn every_cedar_example_loads_and_decides_as_expected() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(examples())
        .expect("../shared/cedar-examples is where the Cedar examples live")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("scenario.json").exists())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 18, "expected the 18 scenarios, found {}", dirs.len());
    let mut failures = Vec::new();
    let mut decided = 0;
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        match scenario(dir) {
            Ok((n, wrong)) => {
                decided += n - wrong.len();
                failures.extend(wrong.into_iter().map(|w| format!("{name}: {w}")));
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    eprintln!("cedar examples: {} scenarios, {decided} requests decided as expected", dirs.len());
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    assert!(decided >= 100, "too few requests decided: {decided}");
}
