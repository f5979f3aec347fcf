//! What a fork leaves behind, simulated with `ambit::after_fork` in a test binary of its own
//! (the epoch is process-wide). Python's tests fork for real (`test_api.py`).

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

use ambit::audit::{Audit, FileOptions};
use ambit::{Authorizer, Request};
use std::path::Path;

#[test]
fn an_audited_authorizer_from_before_a_fork_refuses_to_decide_and_drops_without_waiting() {
    let dir = std::env::temp_dir().join(format!("ambit-fork-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("audit.jsonl");
    let helpdesk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/helpdesk");
    let audited = Authorizer::builder()
        .dir(&helpdesk)
        .audit(Audit::builder().file(&log, FileOptions::default()).build().unwrap())
        .build()
        .unwrap();
    let plain = Authorizer::from_dir(&helpdesk).unwrap();
    let read = Request::new(r#"Helpdesk::User::"alice""#, "read_ticket", r#"Helpdesk::Ticket::"4711""#);
    assert!(audited.authorize(&read).unwrap().allowed());
    ambit::after_fork();
    // the "child": no writer thread to record with, so no decision; an unaudited one decides
    let refused = audited.authorize(&read).unwrap_err();
    assert_eq!(refused.code(), "AMBIT_AUDIT");
    assert!(refused.to_string().contains("fork"), "{refused}");
    assert!(audited.authorize_batch(std::slice::from_ref(&read))[0].is_err());
    assert!(audited.audit().unwrap().is_closed());
    assert!(plain.authorize(&read).unwrap().allowed());
    // flushing and dropping return (in a real child, waiting on the writer would never end)
    audited.audit().unwrap().flush();
    drop(audited);
    // built after the fork: audited as usual
    let fresh = Authorizer::builder()
        .dir(&helpdesk)
        .audit(Audit::builder().file(dir.join("child.jsonl"), FileOptions::default()).build().unwrap())
        .build()
        .unwrap();
    assert!(fresh.authorize(&read).unwrap().allowed());
    fresh.audit().unwrap().flush();
    assert!(ambit::audit::verify(&[dir.join("child.jsonl")]).unwrap().ok);
}
