//! The audit trail: every event recorded exactly once, a verifiable hash chain across
//! rotation and restarts, tampering detected, drops counted; and explanations.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests fail loudly on a broken fixture")]

use ambit::audit::{self, Audit, AuditEvent, Durability, FileOptions, Overflow};
use ambit::{AgentSpec, Authorizer, Request};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const SERVICE: &str = r#"Helpdesk::Service::"helpdesk""#;
const TICKET: &str = r#"Helpdesk::Ticket::"4711""#;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/helpdesk")
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ambit-audit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn with_audit(audit: Audit) -> Authorizer {
    Authorizer::builder().dir(fixture()).audit(audit).build().unwrap()
}

fn alice_reads() -> Request {
    Request::new(r#"Helpdesk::User::"alice""#, "read_ticket", TICKET)
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn every_decision_and_event_is_recorded_exactly_once_under_load() {
    let dir = tmp("load");
    let log = dir.join("audit.jsonl");
    let a = Arc::new(with_audit(Audit::builder().capacity(64).file(&log, FileOptions::default()).build().unwrap()));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let a = Arc::clone(&a);
            std::thread::spawn(move || {
                for _ in 0..500 {
                    a.authorize(&alice_reads()).unwrap();
                }
                let agent = a.mint_agent(&AgentSpec::new(SERVICE, "t", 60).scopes(["read_ticket"])).unwrap();
                a.revoke(agent.uid()).unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    a.replace_policies("permit(principal, action resource);").unwrap_err();
    a.audit().unwrap().flush();
    let records = lines(&log);
    let count = |kind: &str| records.iter().filter(|r| r["kind"] == kind).count();
    assert_eq!(count("decision"), 2000);
    assert_eq!(count("agent_minted"), 4);
    assert_eq!(count("revoked"), 4);
    assert_eq!(count("reload_failed"), 1);
    assert_eq!(records.len(), 2009);
    let report = audit::verify(&[log]).unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.records, 2009);
    assert_eq!(report.last_seq, 2009);
}

#[test]
fn decision_records_carry_the_chain_and_a_context_digest_not_the_context() {
    let dir = tmp("fields");
    let log = dir.join("audit.jsonl");
    let a = with_audit(Audit::builder().file(&log, FileOptions::default()).build().unwrap());
    let agent = a.mint_agent(&AgentSpec::new(SERVICE, "t", 60).scopes(["issue_refund"])).unwrap();
    let d =
        a.authorize(&Request::new(agent.uid(), "issue_refund", TICKET).with_context(json!({"amount": 900}))).unwrap();
    a.audit().unwrap().flush();
    let r = lines(&log).into_iter().find(|r| r["kind"] == "decision").unwrap();
    assert_eq!(r["decision_id"], d.decision_id());
    assert_eq!(r["chain"], json!([SERVICE, agent.uid()]));
    assert_eq!(r["principal"], agent.uid());
    assert_eq!(r["policy_version"], d.policy_version());
    assert!(r["context_digest"].as_str().unwrap().starts_with("sha256:"));
    assert!(r.get("context").is_none(), "contexts stay out unless the application opts in");
    let opted = with_audit(Audit::builder().include_context(true).build().unwrap());
    opted
        .authorize(
            &Request::new(r#"Helpdesk::User::"alice""#, "issue_refund", TICKET).with_context(json!({"amount": 5})),
        )
        .unwrap();
    opted.audit().unwrap().flush();
    let recent = opted.audit().unwrap().recent(1);
    match &recent[0].event {
        AuditEvent::Decision { context, .. } => assert_eq!(context.as_ref().unwrap()["amount"], 5),
        other => panic!("expected a decision, got {other:?}"),
    }
}

fn write_log(path: &Path, decisions: usize, options: FileOptions) {
    let a = with_audit(Audit::builder().file(path, options).build().unwrap());
    for _ in 0..decisions {
        a.authorize(&alice_reads()).unwrap();
    }
}

#[test]
fn verify_detects_edits_deletions_swaps_and_insertions() {
    let dir = tmp("tamper");
    let log = dir.join("audit.jsonl");
    write_log(&log, 6, FileOptions::default());
    assert!(audit::verify(std::slice::from_ref(&log)).unwrap().ok);
    let original: Vec<String> = std::fs::read_to_string(&log).unwrap().lines().map(str::to_owned).collect();
    let check = |name: &str, lines: Vec<String>, bad_seq: u64| {
        let p = dir.join(name);
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
        let report = audit::verify(&[p]).unwrap();
        assert!(!report.ok, "{name} must not verify");
        assert_eq!(report.first_bad_seq, Some(bad_seq), "{name}: {report:?}");
    };
    let mut edited = original.clone();
    edited[2] = edited[2].replace("\"allowed\":true", "\"allowed\":false");
    check("edited", edited, 3);
    let mut deleted = original.clone();
    deleted.remove(3);
    check("deleted", deleted, 4);
    let mut swapped = original.clone();
    swapped.swap(1, 2);
    check("swapped", swapped, 2);
    let mut inserted = original.clone();
    inserted.insert(4, original[4].clone());
    check("inserted", inserted, 6);
}

#[test]
fn the_chain_continues_across_rotation_and_restarts() {
    let dir = tmp("rotate");
    let log = dir.join("audit.jsonl");
    let options = FileOptions {
        durability: Durability::Interval(std::time::Duration::from_millis(10)),
        rotate_bytes: Some(4000),
    };
    write_log(&log, 20, options.clone());
    write_log(&log, 20, options);
    let segments = audit::segments(&log);
    assert!(segments.len() > 2, "expected rotation, got {segments:?}");
    let report = audit::verify(&segments).unwrap();
    assert!(report.ok, "{report:?}");
    // each writer closes its trail with a `closed` record
    assert_eq!(report.records, 42);
    assert!(report.closed);
    // dropping a middle segment breaks the chain
    let mut missing = segments.clone();
    missing.remove(1);
    assert!(!audit::verify(&missing).unwrap().ok);
    // dropping the oldest segment (the head of the chain) is caught too, unless an anchor
    // says where the archived part ended
    let headless = segments[1..].to_vec();
    let report = audit::verify(&headless).unwrap();
    assert!(!report.ok, "{report:?}");
    assert_eq!(report.first_bad_seq, Some(1));
    let first = audit::verify(&segments[..1]).unwrap();
    let anchor = audit::Anchor { seq: first.last_seq, hash: first.last_hash.clone() };
    assert!(audit::verify_opts(&headless, &audit::VerifyOptions::default().after(anchor)).unwrap().ok);
    // a checkpoint past the end catches a log cut short
    let full = audit::verify(&segments).unwrap();
    let checkpoint = audit::Anchor { seq: full.last_seq, hash: full.last_hash.clone() };
    let short = segments[..segments.len() - 1].to_vec();
    let report = audit::verify_opts(&short, &audit::VerifyOptions::default().checkpoint(checkpoint.clone())).unwrap();
    assert!(!report.ok && !report.closed, "{report:?}");
    assert!(audit::verify_opts(&segments, &audit::VerifyOptions::default().checkpoint(checkpoint)).unwrap().ok);
    let forged = audit::Anchor { seq: full.last_seq, hash: "0".repeat(64) };
    assert!(!audit::verify_opts(&segments, &audit::VerifyOptions::default().checkpoint(forged)).unwrap().ok);
}

#[test]
fn a_torn_last_line_is_reported_then_cut_off_and_recorded_on_restart() {
    let dir = tmp("torn");
    let log = dir.join("audit.jsonl");
    write_log(&log, 3, FileOptions::default());
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(&mut f, b"{\"seq\":4,\"ts\":1,\"kind\":\"deci").unwrap();
    drop(f);
    let report = audit::verify(std::slice::from_ref(&log)).unwrap();
    assert!(!report.ok);
    assert_eq!((report.records, report.first_bad_seq), (4, Some(5)));
    write_log(&log, 1, FileOptions::default());
    let records = lines(&log);
    assert_eq!(records[3]["kind"], "closed");
    assert_eq!(records[4]["kind"], "torn_tail_discarded");
    assert_eq!(records[4]["seq"], 5);
    assert!(audit::verify(&[log]).unwrap().ok);
}

#[test]
fn the_drop_policy_counts_and_audits_drops() {
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&seen);
    let audit = Audit::builder()
        .capacity(1)
        .overflow(Overflow::Drop)
        .memory(100_000)
        .callback(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_micros(200));
        })
        .build()
        .unwrap();
    let a = with_audit(audit);
    for _ in 0..2000 {
        a.authorize(&alice_reads()).unwrap();
    }
    let audit = a.audit().unwrap();
    audit.flush();
    let dropped = audit.dropped();
    assert!(dropped > 0, "a one-slot queue behind a slow sink must drop");
    let records = audit.recent(100_000);
    let decisions = records.iter().filter(|r| matches!(r.event, AuditEvent::Decision { .. })).count() as u64;
    assert_eq!(decisions + dropped, 2000);
    let last_report = records.iter().rev().find_map(|r| match r.event {
        AuditEvent::RecordsDropped { total } => Some(total),
        _ => None,
    });
    assert_eq!(last_report, Some(dropped), "the drop count is itself audited");
    assert_eq!(seen.load(Ordering::SeqCst), records.len());
}

#[test]
fn explain_says_which_rule_ended_it() {
    let a = Authorizer::from_dir(fixture()).unwrap();
    let mut tenant = serde_json::Map::new();
    tenant.insert("tenant".into(), json!({"__entity": {"type": "Helpdesk::Tenant", "id": "acme"}}));
    let agent = a
        .mint_agent(
            &AgentSpec::new(SERVICE, "t", 60).scopes(["read_ticket", "reply_ticket"]).attributes(tenant.clone()),
        )
        .unwrap();
    let e = a.explain(&Request::new(agent.uid(), "issue_refund", TICKET).with_context(json!({"amount": 5}))).unwrap();
    assert!(!e.decision.allowed());
    assert!(e.summary.contains("hop 1"), "{}", e.summary);
    assert_eq!(e.decision.deny_hop(), Some(1), "the summary counts hops as deny_hop does, root = 0");
    assert_eq!(e.hops.iter().map(|h| h.hop).collect::<Vec<_>>(), [0, 1]);
    assert!(e.summary.contains("not in scopes [read_ticket, reply_ticket]"), "{}", e.summary);
    assert!(e.hops.iter().all(|h| h.policies.is_empty()), "no hop reached Cedar");

    let refunder = a.mint_agent(&AgentSpec::new(SERVICE, "t", 60).scopes(["issue_refund"]).attributes(tenant)).unwrap();
    let e =
        a.explain(&Request::new(refunder.uid(), "issue_refund", TICKET).with_context(json!({"amount": 900}))).unwrap();
    assert_eq!(e.decision.reasons(), ["agent-refund-cap"]);
    let hop2 = &e.hops[1];
    let cap = hop2.policies.iter().find(|p| p.id == "agent-refund-cap").unwrap();
    assert_eq!((cap.effect.as_str(), cap.outcome.as_str()), ("forbid", "satisfied"));
    let permit = hop2.policies.iter().find(|p| p.id == "agent-refunds").unwrap();
    assert_eq!(permit.outcome, "satisfied");
    assert!(hop2.policies.iter().all(|p| p.id != "staff-tickets"), "only the action's policies");
    assert!(e.summary.contains("`agent-refund-cap`"));
}

#[test]
fn batch_decisions_share_one_version_and_isolate_bad_requests() {
    let a = Authorizer::from_dir(fixture()).unwrap();
    let results = a.authorize_batch(&[alice_reads(), Request::new("bad", "read_ticket", TICKET), alice_reads()]);
    assert!(results[0].as_ref().unwrap().allowed());
    assert_eq!(results[1].as_ref().unwrap_err().code(), "AMBIT_INVALID_REQUEST");
    assert_eq!(results[0].as_ref().unwrap().policy_version(), results[2].as_ref().unwrap().policy_version());
}

/// A batch large enough to be split across threads answers in the requests' order, each
/// answer the one `authorize` gives, and audits every decision once in a chain that verifies.
#[test]
fn a_large_batch_answers_in_order_as_single_calls_do_and_audits_each_once() {
    let dir = tmp("big-batch");
    let log = dir.join("audit.jsonl");
    let a = with_audit(Audit::builder().file(&log, FileOptions::default()).build().unwrap());
    let agent = a.mint_agent(&AgentSpec::new(SERVICE, "t", 60).scopes(["read_ticket"])).unwrap();
    // allowed, denied, malformed and agent requests, in an order no split lines up with
    let kinds = [
        alice_reads(),
        Request::new(r#"Helpdesk::User::"bob""#, "read_ticket", r#"Helpdesk::Ticket::"9001""#),
        Request::new("bad", "read_ticket", TICKET),
        Request::new(agent.uid(), "read_ticket", TICKET),
        Request::new(agent.uid(), "issue_refund", TICKET),
        Request::new(r#"Helpdesk::User::"alice""#, "no_such_action", TICKET),
        Request::new(r#"Helpdesk::User::"nobody""#, "read_ticket", TICKET),
    ];
    let batch: Vec<Request> = (0..1001).map(|i| kinds[(i * 5 + i / 11) % kinds.len()].clone()).collect();
    let answers = a.authorize_batch(&batch);
    assert_eq!(answers.len(), batch.len());
    let comparable = |r: ambit::Result<ambit::Decision>| match r {
        Ok(d) => {
            let mut v = d.to_json();
            v["decision_id"] = Value::Null;
            v["timestamp"] = Value::Null;
            Ok(v)
        }
        Err(e) => Err((e.code(), e.to_string())),
    };
    let (mut allowed, mut denied, mut failed) = (0, 0, 0);
    for (request, answer) in batch.iter().zip(answers) {
        let answer = comparable(answer);
        match &answer {
            Ok(v) if v["allowed"] == true => allowed += 1,
            Ok(_) => denied += 1,
            Err(_) => failed += 1,
        }
        assert_eq!(answer, comparable(a.authorize(request)), "{request:?}");
    }
    assert!(allowed > 0 && denied > 0 && failed > 0, "{allowed} {denied} {failed}");
    a.audit().unwrap().flush();
    let records = lines(&log);
    let decided = |kind: &str| records.iter().filter(|r| r["kind"] == kind).count();
    // the batch and the single calls that checked it: two of every answer
    assert_eq!(decided("decision"), 2 * (allowed + denied));
    assert_eq!(decided("request_failed"), 2 * failed);
    assert!(audit::verify(&[log]).unwrap().ok);
}

#[test]
fn a_record_over_the_size_limit_is_kept_in_short_form_and_still_chains() {
    let dir = tmp("oversize");
    let log = dir.join("audit.jsonl");
    let audit = Audit::builder().max_record_bytes(2048).include_context(true).file(&log, FileOptions::default());
    let a = Authorizer::builder()
        .policies_str("permit(principal, action, resource) when { context has note };")
        .validation(ambit::Validation::Off)
        .audit(audit.build().unwrap())
        .build()
        .unwrap();
    let big = "x".repeat(10_000);
    let allowed =
        a.authorize(&Request::new(r#"User::"u""#, "read", r#"Doc::"d""#).with_context(json!({ "note": big })));
    assert!(allowed.unwrap().allowed());
    a.authorize(&Request::new(r#"User::"u""#, "read", r#"Doc::"d""#).with_context(json!({ "note": "short" }))).unwrap();
    a.audit().unwrap().flush();
    drop(a);
    let records = lines(&log);
    assert_eq!(records.len(), 3);
    assert_eq!(records[2]["kind"], "closed");
    let short = &records[0];
    assert_eq!(short["kind"], "oversize");
    assert_eq!(short["original_kind"], "decision");
    assert_eq!(short["allowed"], true);
    assert_eq!(short["limit"], 2048);
    assert!(short["bytes"].as_u64().unwrap() > 10_000);
    assert!(short["decision_id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(short["digest"].as_str().unwrap().starts_with("sha256:"));
    assert!(std::fs::read_to_string(&log).unwrap().lines().all(|l| l.len() <= 2048));
    assert_eq!(records[1]["kind"], "decision");
    assert_eq!(records[1]["context"]["note"], "short");
    assert!(audit::verify(&[log]).unwrap().ok);
}

#[test]
fn verify_reads_no_more_than_the_record_limit_of_a_line() {
    let dir = tmp("longline");
    let log = dir.join("audit.jsonl");
    write_log(&log, 2, FileOptions::default());
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(&mut f, &vec![b'{'; 5000]).unwrap();
    std::io::Write::write_all(&mut f, b"\n").unwrap();
    drop(f);
    let report = audit::verify_with(std::slice::from_ref(&log), 4096).unwrap();
    assert!(!report.ok);
    assert_eq!((report.records, report.first_bad_seq), (3, Some(4)));
    assert!(report.problem.as_deref().unwrap().contains("longer than the limit of 4096 bytes"), "{report:?}");
    let report = audit::verify_with(std::slice::from_ref(&log), 8192).unwrap();
    assert!(report.problem.as_deref().unwrap().contains("not a json record"), "{report:?}");
    let err = Audit::builder().max_record_bytes(4096).file(&log, FileOptions::default()).build().unwrap_err();
    assert_eq!(err.code(), "AMBIT_AUDIT");
    assert!(err.to_string().contains("longer than the limit"), "{err}");
}

#[test]
fn restart_continues_after_blank_lines_and_from_the_last_rotated_segment() {
    let dir = tmp("blank");
    let log = dir.join("audit.jsonl");
    write_log(&log, 2, FileOptions::default());
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(&mut f, b"\n\n").unwrap();
    drop(f);
    write_log(&log, 1, FileOptions::default());
    let seqs: Vec<u64> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5], "two runs of write_log, each ending in a `closed` record");
    assert!(audit::verify(&[log]).unwrap().ok);
}

#[test]
fn requests_that_fail_are_audited_as_request_failed_records() {
    let a = with_audit(Audit::builder().build().unwrap());
    let bad = Request::new("not a uid", "read_ticket", TICKET);
    assert_eq!(a.authorize(&bad).unwrap_err().code(), "AMBIT_INVALID_REQUEST");
    let huge = Request::new(r#"Helpdesk::User::"alice""#, "read_ticket", TICKET)
        .with_context(json!({ "x": "y".repeat(2 << 20) }));
    assert_eq!(a.authorize(&huge).unwrap_err().code(), "AMBIT_LIMIT");
    let batch = a.authorize_batch(&[alice_reads(), bad]);
    assert!(batch[0].is_ok() && batch[1].is_err());
    a.audit().unwrap().flush();
    let kinds: Vec<(String, Option<String>)> = a
        .audit()
        .unwrap()
        .recent(10)
        .iter()
        .map(|r| match &r.event {
            AuditEvent::RequestFailed { code, principal, .. } => {
                assert!(principal.len() <= 256);
                ("request_failed".to_owned(), Some(code.clone()))
            }
            e => (e.kind().to_owned(), None),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("request_failed".to_owned(), Some("AMBIT_INVALID_REQUEST".to_owned())),
            ("request_failed".to_owned(), Some("AMBIT_LIMIT".to_owned())),
            ("decision".to_owned(), None),
            ("request_failed".to_owned(), Some("AMBIT_INVALID_REQUEST".to_owned())),
        ]
    );
}

#[test]
fn a_closed_trail_ends_with_a_closed_record_and_refuses_to_decide() {
    let dir = tmp("close");
    let log = dir.join("audit.jsonl");
    let a = with_audit(Audit::builder().file(&log, FileOptions::default()).build().unwrap());
    a.authorize(&alice_reads()).unwrap();
    let running = audit::verify(std::slice::from_ref(&log)).unwrap();
    assert!(running.ok && !running.closed, "not closed while running: {running:?}");
    a.close();
    a.close(); // idempotent
    assert_eq!(a.authorize(&alice_reads()).unwrap_err().code(), "AMBIT_AUDIT", "nothing decided unrecorded");
    // nothing granted unrecorded either: mints, reinstatements and links are refused, while
    // revocations (which only take authority away) go on
    let mint = AgentSpec::new(SERVICE, "t", 60).scopes(["read_ticket"]);
    assert_eq!(a.mint_agent(&mint).unwrap_err().code(), "AMBIT_AUDIT");
    assert_eq!(a.reinstate(r#"Helpdesk::User::"alice""#).unwrap_err().code(), "AMBIT_AUDIT");
    let link = ambit::Link::new("any-template", "l1");
    assert_eq!(a.link(&link).unwrap_err().code(), "AMBIT_AUDIT");
    assert_eq!(a.revoke(r#"Helpdesk::User::"alice""#).unwrap(), 1);
    // its record cannot follow the `closed` one: counted as dropped, and the log still ends closed
    assert_eq!(a.audit().unwrap().dropped(), 1);
    let report = audit::verify(std::slice::from_ref(&log)).unwrap();
    assert!(report.ok && report.closed, "{report:?}");
    assert_eq!(report.records, 2);
    drop(a);
    assert_eq!(lines(&log).len(), 2, "dropping a closed authorizer writes nothing more");
}

#[test]
fn audit_sizes_that_cannot_be_honoured_are_errors_not_allocations() {
    for builder in [
        Audit::builder().capacity(usize::MAX),
        Audit::builder().memory(usize::MAX),
        Audit::builder().max_record_bytes(usize::MAX),
    ] {
        assert_eq!(builder.build().unwrap_err().code(), "AMBIT_AUDIT");
    }
}

#[test]
fn verify_with_a_huge_limit_still_checks_every_record() {
    let dir = tmp("hugelimit");
    let log = dir.join("audit.jsonl");
    write_log(&log, 3, FileOptions::default());
    let text = std::fs::read_to_string(&log).unwrap().replace("\"allowed\":true", "\"allowed\":false");
    std::fs::write(&log, text).unwrap();
    let report = audit::verify_with(std::slice::from_ref(&log), usize::MAX).unwrap();
    assert!(!report.ok, "a tampered log must not verify whatever the limit: {report:?}");
    assert_eq!(report.first_bad_seq, Some(1));
}

#[test]
fn a_callback_that_decides_again_and_flushes_never_deadlocks() {
    use std::sync::{OnceLock, Weak};
    let cell: Arc<OnceLock<Weak<Authorizer>>> = Arc::new(OnceLock::new());
    let calls = Arc::new(AtomicUsize::new(0));
    let (c, n) = (Arc::clone(&cell), Arc::clone(&calls));
    let audit = Audit::builder()
        .capacity(2)
        .callback(move |_| {
            if n.fetch_add(1, Ordering::SeqCst) < 50 {
                if let Some(a) = c.get().and_then(Weak::upgrade) {
                    let _ = a.authorize(&alice_reads());
                    a.flush();
                }
            }
        })
        .build()
        .unwrap();
    let a = Arc::new(with_audit(audit));
    cell.set(Arc::downgrade(&a)).unwrap();
    for _ in 0..20 {
        a.authorize(&alice_reads()).unwrap();
    }
    a.flush();
    let dropped = a.audit().unwrap().dropped();
    assert!(calls.load(Ordering::SeqCst) >= 20, "every record reached the callback");
    drop(a); // the callback may hold the last reference for a moment: no self-join
    assert!(dropped <= 50);
}

#[test]
fn explain_traces_the_evaluation_that_decided_and_writes_no_record() {
    let a = Authorizer::builder()
        .policies_str(r#"@id("p") permit(principal, action, resource); @id("f") forbid(principal, action, resource) when { context.x > 1 };"#)
        .validation(ambit::Validation::Off)
        .audit(Audit::builder().build().unwrap())
        .build()
        .unwrap();
    let request = Request::new(r#"User::"u""#, "read", r#"Doc::"d""#);
    let e = a.explain(&request).unwrap();
    // fail-closed: the erring forbid denies, and the trace says it erred (Cedar alone would skip it)
    assert_eq!(e.decision.deny_cause().map(ambit::DenyCause::code), Some("evaluation_error"));
    assert_eq!(e.decision.reasons(), ["f"]);
    let outcomes: Vec<(&str, &str)> = e.hops[0].policies.iter().map(|t| (t.id.as_str(), t.outcome.as_str())).collect();
    assert_eq!(outcomes, [("f", "error"), ("p", "satisfied")]);
    let allowed = a.explain(&request.clone().with_context(json!({"x": 0}))).unwrap();
    assert!(allowed.decision.allowed());
    a.audit().unwrap().flush();
    assert!(a.audit().unwrap().recent(10).is_empty(), "explaining is not deciding: no audit record");
    a.authorize(&request).unwrap();
    a.audit().unwrap().flush();
    assert_eq!(a.audit().unwrap().recent(10).len(), 1);
}
