//! Cedar's own integration corpus (`../shared/cedar-conformance`, Apache-2.0), run through
//! ambit's decision path: validation off, a plain principal as a one-hop chain.
//!
//! - `ErrorMode::Cedar` must agree with Cedar on every request: decision, reasons, and the ids
//!   of erroring policies.
//! - `ErrorMode::FailClosed` must agree wherever no `forbid` erred, and deny with
//!   `evaluation_error` wherever one did.
//! - Strict validation must accept every policy set the corpus says validates.
//!
//! The corpus is read in place (never copied into this repository). Set
//! `AMBIT_CEDAR_CONFORMANCE` to point elsewhere. A missing corpus fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests fail loudly on a broken fixture")]

use ambit::{Authorizer, ErrorMode, Request, Validation};
use serde_json::Value;
use std::collections::BTreeSet;
mod shared;

use std::path::{Path, PathBuf};

/// `AMBIT_CEDAR_CONFORMANCE`, else `../shared/cedar-conformance` next to this checkout, else
/// next to the checkout it was cloned from (a fresh clone in a temporary folder).
fn corpus_root() -> PathBuf {
    shared::shared_dir("cedar-conformance", "AMBIT_CEDAR_CONFORMANCE", "tests")
}

/// The handwritten tests in place, plus the generated corpus unpacked under `target/`.
fn test_files(root: &Path) -> (Vec<(PathBuf, PathBuf)>, PathBuf) {
    assert!(root.join("tests").is_dir(), "Cedar conformance corpus not found at {}", root.display());
    let unpacked = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/cedar-corpus");
    if !unpacked.join("corpus-tests").is_dir() {
        std::fs::create_dir_all(&unpacked).unwrap();
        let status = std::process::Command::new("tar")
            .arg("xzf")
            .arg(root.join("corpus-tests.tar.gz"))
            .arg("-C")
            .arg(&unpacked)
            .status()
            .expect("tar runs");
        assert!(status.success(), "cannot unpack corpus-tests.tar.gz");
    }
    let mut files = Vec::new();
    for dir in std::fs::read_dir(root.join("tests")).unwrap() {
        for f in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            if p.extension().is_some_and(|e| e == "json") {
                files.push((p, root.to_path_buf()));
            }
        }
    }
    for f in std::fs::read_dir(unpacked.join("corpus-tests")).unwrap() {
        let p = f.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let is_test = p.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"))
            && !name.to_ascii_lowercase().ends_with(".entities.json");
        if is_test {
            files.push((p, unpacked.clone()));
        }
    }
    files.sort();
    (files, unpacked)
}

fn uid(v: &Value) -> String {
    cedar_policy::EntityUid::from_json(v.clone()).unwrap().to_string()
}

fn sorted(v: &Value) -> BTreeSet<String> {
    v.as_array().into_iter().flatten().filter_map(|x| x.as_str().map(str::to_owned)).collect()
}

#[derive(Default)]
struct Tally {
    requests: usize,
    cedar_mismatches: Vec<String>,
    fail_closed_mismatches: Vec<String>,
    erring_forbids: usize,
    /// Sets the corpus says validate but ambit's strict validation rejects.
    validation_mismatches: Vec<String>,
    /// Sets the corpus says do not validate but Cedar 4.14 accepts: the corpus was made with an
    /// older validator that rejected "impossible" policies, which are now only warnings.
    accepted_now: usize,
}

fn build(base: &Path, test: &Value, validation: Validation, mode: ErrorMode) -> ambit::Result<Authorizer> {
    let read = |key: &str| std::fs::read_to_string(base.join(test[key].as_str().unwrap())).unwrap();
    Authorizer::builder()
        .policies_str(read("policies"))
        .schema_str(read("schema"))
        .entities_json(read("entities"))
        .validation(validation)
        .error_mode(mode)
        // the corpus has no ambit agents; keep any type it names `Agent` an ordinary entity
        .agent_type("AmbitConformance::NoAgent")
        .build()
}

fn run_file(path: &Path, base: &Path, tally: &mut Tally) {
    let test: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let cedar = build(base, &test, Validation::Off, ErrorMode::Cedar)
        .unwrap_or_else(|e| panic!("{name}: does not load with validation off: {} {e}", e.code()));
    let fail_closed = build(base, &test, Validation::Off, ErrorMode::FailClosed).unwrap();
    let should_validate = test["shouldValidate"].as_bool().unwrap_or(true);
    let validated = build(base, &test, Validation::Strict, ErrorMode::Cedar);
    match (should_validate, validated) {
        (true, Err(e)) => tally.validation_mismatches.push(format!("{name}: rejected: {}: {e}", e.code())),
        (false, Ok(_)) => tally.accepted_now += 1,
        _ => {}
    }
    for (i, r) in test["requests"].as_array().unwrap().iter().enumerate() {
        tally.requests += 1;
        let request = Request::new(uid(&r["principal"]), uid(&r["action"]), uid(&r["resource"]))
            .with_context(r["context"].clone());
        let want_allow = r["decision"].as_str().unwrap().eq_ignore_ascii_case("allow");
        let want_reasons = sorted(&r["reason"]);
        let want_errors = sorted(&r["errors"]);
        let d = match cedar.authorize(&request) {
            Ok(d) => d,
            Err(e) => {
                tally.cedar_mismatches.push(format!("{name}#{i}: error {}: {e}", e.code()));
                continue;
            }
        };
        let reasons: BTreeSet<String> = d.reasons().iter().cloned().collect();
        let errors: BTreeSet<String> = d.errors().iter().map(|e| e.policy_id().to_owned()).collect();
        if d.allowed() != want_allow || reasons != want_reasons || errors != want_errors {
            tally.cedar_mismatches.push(format!(
                "{name}#{i}: want {want_allow} {want_reasons:?} {want_errors:?}, got {} {reasons:?} {errors:?}",
                d.allowed()
            ));
        }
        let fc = fail_closed.authorize(&request).unwrap();
        let forbid_erred = fc.deny_cause() == Some(ambit::DenyCause::EvaluationError);
        if forbid_erred {
            tally.erring_forbids += 1;
            // an erroring forbid must be among the reported errors, and the request denied
            let fc_reasons: BTreeSet<String> = fc.reasons().iter().cloned().collect();
            if fc.allowed() || fc_reasons.is_empty() || !fc_reasons.is_subset(&want_errors) {
                tally.fail_closed_mismatches.push(format!("{name}#{i}: erroring forbid not denied"));
            }
        } else {
            let fc_reasons: BTreeSet<String> = fc.reasons().iter().cloned().collect();
            if fc.allowed() != want_allow || fc_reasons != want_reasons {
                tally
                    .fail_closed_mismatches
                    .push(format!("{name}#{i}: fail-closed disagrees without an erroring forbid"));
            }
        }
    }
}

#[test]
fn cedar_conformance_corpus_agrees() {
    let root = corpus_root();
    let (files, _) = test_files(&root);
    assert!(files.len() > 7000, "expected the full corpus, found {} test files", files.len());
    let mut tally = Tally::default();
    for (path, base) in &files {
        run_file(path, base, &mut tally);
    }
    println!(
        "cedar conformance: {} files, {} requests, {} with an erroring forbid; {} sets marked invalid now validate",
        files.len(),
        tally.requests,
        tally.erring_forbids,
        tally.accepted_now
    );
    assert!(tally.requests > 60_000, "expected 60,000+ requests, ran {}", tally.requests);
    let show = |v: &[String]| v.iter().take(20).cloned().collect::<Vec<_>>().join("\n");
    assert!(
        tally.cedar_mismatches.is_empty(),
        "{} requests disagree with Cedar:\n{}",
        tally.cedar_mismatches.len(),
        show(&tally.cedar_mismatches)
    );
    assert!(
        tally.fail_closed_mismatches.is_empty(),
        "{} fail-closed mismatches:\n{}",
        tally.fail_closed_mismatches.len(),
        show(&tally.fail_closed_mismatches)
    );
    assert!(
        tally.validation_mismatches.is_empty(),
        "{} validation mismatches:\n{}",
        tally.validation_mismatches.len(),
        show(&tally.validation_mismatches)
    );
}
