//! Hostile input (issue 13): nesting at and beyond the cap on a small thread stack, limits that
//! cannot be honoured, and per-request costs bounded before the work.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests fail loudly")]

use ambit::{Authorizer, Limits, Request};
use serde_json::{json, Value};

const SCHEMA: &str = "entity User; action read appliesTo { principal: User, resource: User };";

fn authorizer(limits: Limits) -> Authorizer {
    Authorizer::builder()
        .policies_str("permit(principal, action, resource) when { context has x };")
        .validation(ambit::Validation::Off)
        .limits(limits)
        .build()
        .unwrap()
}

fn nested(levels: usize) -> Value {
    // built by moving (`json!` would serialise the inner value again, recursively)
    let mut v = Value::from(1);
    for _ in 0..levels {
        let mut map = serde_json::Map::new();
        map.insert("x".into(), v);
        v = Value::Object(map);
    }
    v
}

fn request(context: Value) -> Request {
    Request::new(r#"User::"a""#, "read", r#"User::"b""#).with_context(context)
}

#[test]
fn nesting_at_the_cap_is_decided_on_a_two_mib_stack_and_deeper_is_a_limit() {
    let handle = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(|| {
            let a = authorizer(Limits::default().with_max_json_depth(ambit::wire::MAX_JSON_DEPTH));
            let at_cap = a.authorize(&request(nested(ambit::wire::MAX_JSON_DEPTH - 1))).unwrap();
            assert!(at_cap.allowed());
            // serde_json clones and drops a Value recursively, so the test builds the deep value
            // once and never drops it: only what ambit does with it is under test
            let deeper = request(nested(5000));
            let err = a.authorize(&deeper).unwrap_err();
            assert_eq!(err.code(), "AMBIT_LIMIT");
            std::mem::forget(deeper);
        })
        .unwrap();
    handle.join().expect("no stack overflow on a 2 MiB thread");
}

#[test]
fn a_nesting_limit_beyond_the_cap_is_refused_at_build() {
    let err = Authorizer::builder()
        .schema_str(SCHEMA)
        .policies_str("permit(principal, action, resource);")
        .limits(Limits::default().with_max_json_depth(100_000))
        .build()
        .unwrap_err();
    assert_eq!(err.code(), "AMBIT_LIMIT");
}

#[test]
fn a_hundred_thousand_delegators_are_denied_at_once() {
    let a = authorizer(Limits::default());
    let delegators: Vec<String> = (0..100_000).map(|i| format!("User::\"d{i}\"")).collect();
    let d = a.authorize(&request(json!({"x": 1})).on_behalf_of(delegators)).unwrap();
    assert_eq!(d.deny_cause().map(ambit::DenyCause::code), Some("depth_exceeded"));
    assert!(d.chain().len() <= 1, "the delegators were not resolved one by one");
}

#[test]
fn too_many_request_entities_fail_before_they_are_parsed() {
    let a = authorizer(Limits::default().with_max_request_entities(10));
    let entities: Vec<Value> = (0..100_000)
        .map(|i| json!({"uid": {"type": "User", "id": format!("e{i}")}, "attrs": {}, "parents": []}))
        .collect();
    let err = a.authorize(&request(json!({"x": 1})).with_entities(entities)).unwrap_err();
    assert_eq!(err.code(), "AMBIT_LIMIT");
}
