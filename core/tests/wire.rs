//! `ambit::wire` JSON round-trips: requests, decisions and audit records read back equal.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on a broken fixture")]

use ambit::{AgentSpec, Authorizer, Request};
use proptest::prelude::*;
use std::path::Path;

fn uid() -> impl Strategy<Value = String> {
    ("[A-Z][a-z]{0,5}", "\\PC{0,8}").prop_map(|(t, id)| ambit::format_uid(&t, &id).unwrap())
}

fn context() -> impl Strategy<Value = serde_json::Value> {
    prop::collection::btree_map(
        "[a-z]{1,5}",
        prop_oneof![
            any::<i64>().prop_map(Into::into),
            "\\PC{0,6}".prop_map(Into::into),
            any::<bool>().prop_map(Into::into)
        ],
        0..4,
    )
    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect()))
}

proptest! {
    #[test]
    fn requests_round_trip(p in uid(), a in "[a-z_]{1,8}", r in uid(), c in context(), chain in prop::collection::vec(uid(), 0..3)) {
        let req = Request::new(p, a, r).with_context(c).on_behalf_of(chain);
        let back: Request = serde_json::from_str(&serde_json::to_string(&req).unwrap()).unwrap();
        prop_assert_eq!(back, req);
    }

    #[test]
    fn decisions_round_trip(amount in 0i64..2000, scopes in prop::sample::subsequence(vec!["read_ticket", "issue_refund", "reply_ticket"], 0..3)) {
        let a = Authorizer::from_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/helpdesk")).unwrap();
        let agent = a.mint_agent(&AgentSpec::new(r#"Helpdesk::Service::"helpdesk""#, "t", 60).scopes(scopes)).unwrap();
        let back: ambit::Agent = serde_json::from_value(serde_json::to_value(&agent).unwrap()).unwrap();
        prop_assert_eq!(&back, &agent);
        let d = a.authorize(&Request::new(agent.uid(), "issue_refund", r#"Helpdesk::Ticket::"4711""#).with_context(serde_json::json!({"amount": amount}))).unwrap();
        let back: ambit::Decision = serde_json::from_value(d.to_json()).unwrap();
        prop_assert_eq!(back, d);
    }
}

#[test]
fn audit_records_round_trip() {
    let audit = ambit::Audit::builder().include_context(true).build().unwrap();
    let a = Authorizer::builder()
        .dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/helpdesk"))
        .audit(audit)
        .build()
        .unwrap();
    let agent =
        a.mint_agent(&AgentSpec::new(r#"Helpdesk::Service::"helpdesk""#, "t", 60).scopes(["issue_refund"])).unwrap();
    a.authorize(
        &Request::new(agent.uid(), "issue_refund", r#"Helpdesk::Ticket::"4711""#)
            .with_context(serde_json::json!({"amount": 5})),
    )
    .unwrap();
    a.revoke(agent.uid()).unwrap();
    let log = a.audit().unwrap();
    log.flush();
    let records = log.recent(10);
    assert_eq!(records.len(), 3);
    for r in records {
        let back: ambit::AuditRecord = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }
}

#[test]
fn a_uid_goes_wherever_uid_text_does() {
    use ambit::Uid;
    let a = Authorizer::from_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/helpdesk")).unwrap();
    let ticket = Uid::new("Helpdesk::Ticket", "4711").unwrap();
    let alice = Uid::new("Helpdesk::User", "alice").unwrap();
    let by_uid = a.authorize(&Request::new(&alice, "read_ticket", &ticket)).unwrap();
    let by_text = a.authorize(&Request::new(r#"Helpdesk::User::"alice""#, "read_ticket", ticket.as_str())).unwrap();
    assert!(by_uid.allowed());
    assert_eq!((by_uid.chain(), by_uid.reasons()), (by_text.chain(), by_text.reasons()));
    let service = Uid::parse(r#"Helpdesk::Service::"helpdesk""#).unwrap();
    let acme = serde_json::json!({"tenant": {"__entity": {"type": "Helpdesk::Tenant", "id": "acme"}}});
    let agent = a
        .mint_agent(
            &AgentSpec::new(&service, "t", 60).scopes(["read_ticket"]).attributes(acme.as_object().unwrap().clone()),
        )
        .unwrap();
    let agent_uid: Uid = agent.uid().parse().unwrap();
    assert!(a.authorize(&Request::new(agent_uid, "read_ticket", ticket)).unwrap().allowed());
}
