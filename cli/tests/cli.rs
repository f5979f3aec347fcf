//! The `ambit` binary on the policy scenarios and on broken input: exit codes and output.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on a broken fixture")]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn ambit(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ambit"))
        .args(args)
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ambit-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const ALICE_READS: &str =
    r#"{"principal": "Helpdesk::User::\"alice\"", "action": "read_ticket", "resource": "Helpdesk::Ticket::\"4711\""}"#;
const BOB_READS_GLOBEX: &str =
    r#"{"principal": "Helpdesk::User::\"bob\"", "action": "read_ticket", "resource": "Helpdesk::Ticket::\"9001\""}"#;

#[test]
fn validate_accepts_the_scenarios_and_points_at_broken_lines() {
    for dir in ["policies/helpdesk", "policies/marketing"] {
        let o = ambit(&["validate", dir], None);
        assert!(o.status.success(), "{}", text(&o));
    }
    let bad = tmp("bad");
    for f in ["helpdesk.cedarschema", "entities.json"] {
        std::fs::copy(root().join("policies/helpdesk").join(f), bad.join(f)).unwrap();
    }
    std::fs::write(bad.join("p.cedar"), "@id(\"x\")\npermit(principal, action resource);\n").unwrap();
    let o = ambit(&["validate", bad.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("error[AMBIT_POLICY_PARSE]"), "{err}");
    assert!(err.contains("p.cedar:2:"), "{err}");
    assert!(err.contains("permit(principal, action resource);\n"), "caret excerpt: {err}");
    assert!(err.lines().any(|l| l.trim() == "^"), "caret line: {err}");
    let o = ambit(&["validate", "does/not/exist"], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("AMBIT_IO"));
}

#[test]
fn authorize_prints_the_decision_and_sets_the_exit_code() {
    let o = ambit(&["authorize", "policies/helpdesk", "--request", "-"], Some(ALICE_READS));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let d: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(d["allowed"], true);
    assert_eq!(d["reasons"], serde_json::json!(["staff-tickets"]));
    let o = ambit(&["authorize", "policies/helpdesk", "--request", "-"], Some(BOB_READS_GLOBEX));
    assert_eq!(o.status.code(), Some(2));
    let d: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(d["deny_cause"], "no_permit");
    let o = ambit(&["authorize", "policies/helpdesk", "--request", "-"], Some("{\"principal\": 1}"));
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("AMBIT_INVALID_REQUEST"));
}

#[test]
fn explain_is_readable_and_machine_readable() {
    let o = ambit(&["explain", "policies/helpdesk", "--request", "-"], Some(BOB_READS_GLOBEX));
    assert_eq!(o.status.code(), Some(2));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("DENY denied (no_permit): hop 0"), "{out}");
    assert!(out.contains("not_satisfied"), "{out}");
    assert!(!out.contains('\x1b'), "no colours when not on a terminal");
    let o = ambit(&["explain", "policies/helpdesk", "--request", "-", "--json"], Some(ALICE_READS));
    let e: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(e["decision"]["allowed"], true);
    assert!(e["hops"][0]["policies"].as_array().unwrap().iter().any(|p| p["id"] == "staff-tickets"));
}

#[test]
fn test_runs_vectors_and_fails_on_a_wrong_expectation() {
    let o = ambit(&["test", "tests/vectors"], None);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let summary = out.lines().last().unwrap();
    assert!(summary.ends_with("passed, 0 failed"), "{summary}");
    let dir = tmp("vectors");
    std::fs::write(
        dir.join("wrong.json"),
        format!(r#"{{"name": "wrong", "policies": "policies/helpdesk", "cases": [{{"description": "claims bob may", "request": {BOB_READS_GLOBEX}, "expect": {{"allowed": true}}}}]}}"#),
    )
    .unwrap();
    let o = ambit(&["test", dir.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("0 passed, 1 failed"));
    let empty = tmp("no-vectors");
    assert_eq!(ambit(&["test", empty.to_str().unwrap()], None).status.code(), Some(1), "no cases is a failure");
}

#[test]
fn audit_verify_and_tail() {
    let dir = tmp("audit");
    let log = dir.join("audit.jsonl");
    {
        let audit = ambit::Audit::builder().file(&log, ambit::audit::FileOptions::default()).build().unwrap();
        let a = ambit::Authorizer::builder().dir(root().join("policies/helpdesk")).audit(audit).build().unwrap();
        for _ in 0..3 {
            a.authorize(&ambit::Request::from_json(ALICE_READS).unwrap()).unwrap();
        }
    }
    let o = ambit(&["audit", "verify", log.to_str().unwrap()], None);
    assert!(o.status.success(), "{}", text(&o));
    // three decisions, then the `closed` record written when the authorizer was dropped
    assert!(String::from_utf8_lossy(&o.stdout).contains("last sequence 4 hash "));
    assert!(String::from_utf8_lossy(&o.stdout).contains("closed cleanly"));
    // without its first record the chain has no head: refused unless anchored
    let lines: Vec<String> = std::fs::read_to_string(&log).unwrap().lines().map(str::to_owned).collect();
    let first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    let headless = dir.join("headless.jsonl");
    std::fs::write(&headless, lines[1..].join("\n") + "\n").unwrap();
    assert_eq!(ambit(&["audit", "verify", headless.to_str().unwrap()], None).status.code(), Some(1));
    let anchor = format!("1:{}", first["hash"].as_str().unwrap());
    let o = ambit(&["audit", "verify", "--after", &anchor, headless.to_str().unwrap()], None);
    assert!(o.status.success(), "{}", text(&o));
    let o = ambit(&["audit", "tail", log.to_str().unwrap(), "-n", "2"], None);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.lines().count(), 2);
    assert!(out.contains("ALLOW Helpdesk::User::\"alice\" Helpdesk::Action::\"read_ticket\""), "{out}");
    let tampered = std::fs::read_to_string(&log).unwrap().replacen("\"allowed\":true", "\"allowed\":false", 1);
    std::fs::write(&log, tampered).unwrap();
    let o = ambit(&["audit", "verify", log.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("FAILED at sequence 1"));
}

#[test]
fn every_command_has_help_with_examples() {
    for args in [
        &["validate", "--help"][..],
        &["authorize", "--help"],
        &["explain", "--help"],
        &["test", "--help"],
        &["audit", "verify", "--help"],
    ] {
        let o = ambit(args, None);
        assert!(o.status.success());
        assert!(String::from_utf8_lossy(&o.stdout).contains("Example"), "{args:?}");
    }
}

#[test]
fn test_runs_cedars_own_test_formats() {
    let dir = tmp("cedar-formats");
    std::fs::create_dir_all(dir.join("ALLOW")).unwrap();
    std::fs::create_dir_all(dir.join("DENY")).unwrap();
    let req = |who: &str| {
        format!(
            r#"{{"principal":"Helpdesk::User::\"{who}\"","action":"read_ticket","resource":"Helpdesk::Ticket::\"4711\"","context":{{}}}}"#
        )
    };
    std::fs::write(dir.join("ALLOW/alice.json"), req("alice")).unwrap();
    std::fs::write(dir.join("DENY/carol.json"), req("carol")).unwrap();
    let run_tests = format!(
        r#"[{{"name":"alice","request":{},"decision":"allow","reason":["staff-tickets"],"num_errors":0}},
            {{"name":"carol","request":{},"decision":"deny","reason":[],"num_errors":0}}]"#,
        req("alice"),
        req("carol")
    );
    std::fs::write(dir.join("tests.json"), &run_tests).unwrap();
    let policies = root().join("policies/helpdesk");
    let o = ambit(
        &[
            "test",
            "--policies",
            policies.to_str().unwrap(),
            dir.to_str().unwrap(),
            dir.join("tests.json").to_str().unwrap(),
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("4 passed, 0 failed"), "{}", text(&o));
    // a wrong expectation fails the run
    std::fs::write(dir.join("tests.json"), run_tests.replace(r#""decision":"deny""#, r#""decision":"allow""#)).unwrap();
    let o = ambit(&["test", "--policies", policies.to_str().unwrap(), dir.join("tests.json").to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
}

#[test]
fn the_cli_meets_a_policy_author_kindly() {
    // a reader that stops early (`| head -1`) ends the run quietly, not with a panic
    let mut child = Command::new(env!("CARGO_BIN_EXE_ambit"))
        .args(["test", "tests/vectors"])
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_ne!(o.status.code(), Some(101), "no panic: {}", String::from_utf8_lossy(&o.stderr));
    assert!(!String::from_utf8_lossy(&o.stderr).contains("panicked"), "{}", String::from_utf8_lossy(&o.stderr));
    // vectors run from another directory find their fixtures from the vector files' location
    let vectors = root().join("tests/vectors");
    let o = Command::new(env!("CARGO_BIN_EXE_ambit"))
        .args(["test", vectors.to_str().unwrap()])
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    // an empty log is not a verified chain; a file that is no log is an error
    let dir = tmp("kind");
    std::fs::write(dir.join("empty.jsonl"), "").unwrap();
    assert_eq!(ambit(&["audit", "verify", dir.join("empty.jsonl").to_str().unwrap()], None).status.code(), Some(1));
    let o = ambit(&["audit", "tail", root().join("README.md").to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // no Rust Option text in what a failing vector says
    let v = dir.join("typo.json");
    std::fs::write(&v, r#"{"name": "t", "policies": "policies/helpdesk", "cases": [
        {"description": "allowed, expected a deny", "request": {"principal": "Helpdesk::User::\"alice\"", "action": "read_ticket", "resource": "Helpdesk::Ticket::\"4711\""},
         "expect": {"deny_cause": "no_permit", "deny_hop": 0}},
        {"description": "a typo in the cause", "request": {"principal": "Helpdesk::User::\"alice\"", "action": "read_ticket", "resource": "Helpdesk::Ticket::\"4711\""},
         "expect": {"deny_cause": "no_permitt"}}]}"#).unwrap();
    let o = ambit(&["test", v.to_str().unwrap(), "--root", root().to_str().unwrap()], None);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(!out.contains("Some(") && !out.contains("None"), "{out}");
    assert!(out.contains("no_permitt"), "the unknown cause is named: {out}");
}

#[test]
fn authorize_and_explain_decide_for_agents_minted_on_the_command_line() {
    let dir = tmp("agents");
    std::fs::write(
        dir.join("spec.json"),
        r#"{"parent": "Helpdesk::Service::\"helpdesk\"", "task": "t", "scopes": ["read_ticket", "issue_refund"], "ttl_seconds": 600,
            "attributes": {"tenant": {"__entity": {"type": "Helpdesk::Tenant", "id": "acme"}}}}"#,
    )
    .unwrap();
    let request = dir.join("r.json");
    std::fs::write(
        &request,
        r#"{"principal": "$agent", "action": "read_ticket", "resource": "Helpdesk::Ticket::\"4711\""}"#,
    )
    .unwrap();
    let policies = root().join("policies/helpdesk");
    let (pol, req, spec) = (policies.to_str().unwrap(), request.to_str().unwrap(), dir.join("spec.json"));
    let run = ambit(&["authorize", pol, "--request", req, "--agent", spec.to_str().unwrap()], None);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    let decision: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(decision["chain"].as_array().unwrap().len(), 2, "the minted chain was decided");
    // the shorthand, then a sub-agent under it: scopes narrow, so the refund is out of scope
    std::fs::write(&request, r#"{"principal": "$agent", "action": "issue_refund", "resource": "Helpdesk::Ticket::\"4711\"", "context": {"amount": 5}}"#).unwrap();
    let run = ambit(
        &[
            "explain",
            pol,
            "--request",
            req,
            "--agent",
            spec.to_str().unwrap(),
            "--agent",
            ",sub,read_ticket,60",
            "--json",
        ],
        None,
    );
    assert_eq!(run.status.code(), Some(2), "{}", text(&run));
    let explained: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(explained["decision"]["deny_cause"], "out_of_scope");
    assert_eq!(explained["decision"]["chain"].as_array().unwrap().len(), 3);
    let run = ambit(&["authorize", pol, "--request", req, "--agent", "only,three,parts"], None);
    assert_eq!(run.status.code(), Some(1));
}
