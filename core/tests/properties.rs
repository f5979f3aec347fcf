//! Decision properties over random policy sets: a matching forbid always denies, and adding a
//! hop to a chain never turns a deny into an allow.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on a broken fixture")]

use ambit::{Authorizer, DenyCause, Request, Validation};
use proptest::prelude::*;

const ENTITIES: &str = r#"[
 {"uid":{"type":"Group","id":"g"},"attrs":{},"parents":[]},
 {"uid":{"type":"User","id":"u0"},"attrs":{"level":0},"parents":[{"type":"Group","id":"g"}]},
 {"uid":{"type":"User","id":"u1"},"attrs":{"level":1},"parents":[]},
 {"uid":{"type":"User","id":"u2"},"attrs":{"level":2},"parents":[{"type":"Group","id":"g"}]},
 {"uid":{"type":"Doc","id":"d"},"attrs":{},"parents":[]}
]"#;

fn permit() -> impl Strategy<Value = String> {
    (0..4usize, 0..3usize, 0..3i64).prop_map(|(p, a, n)| {
        let principal = ["principal", "principal in Group::\"g\"", "principal == User::\"u1\"", "principal is User"][p];
        let action = ["action", "action == Action::\"read\"", "action in [Action::\"read\", Action::\"write\"]"][a];
        format!("permit({principal}, {action}, resource) when {{ principal.level >= {n} || context.n > {n} }};")
    })
}

fn authz(permits: &[String], extra: &str) -> Authorizer {
    Authorizer::builder()
        .policies_str(format!("{}\n{extra}", permits.join("\n")))
        .entities_json(ENTITIES)
        .validation(Validation::Off)
        .build()
        .unwrap()
}

proptest! {
    #[test]
    fn a_matching_forbid_always_denies(permits in prop::collection::vec(permit(), 0..12), who in 0..3usize, n in 0..10i64) {
        let a = authz(&permits, "@id(\"stop\") forbid(principal, action, resource) when { context.n == 7 };");
        let r = Request::new(format!("User::\"u{who}\""), "read", "Doc::\"d\"").with_context(serde_json::json!({"n": n}));
        let d = a.authorize(&r).unwrap();
        if n == 7 {
            prop_assert!(!d.allowed());
            prop_assert_eq!(d.deny_cause(), Some(DenyCause::Forbidden));
            prop_assert!(d.reasons().contains(&"stop".to_owned()));
        }
    }

    #[test]
    fn adding_a_hop_never_turns_a_deny_into_an_allow(
        permits in prop::collection::vec(permit(), 0..12), who in 0..3usize, delegators in prop::collection::vec(0..3usize, 0..3), n in 0..4i64, write in any::<bool>(),
    ) {
        let a = authz(&permits, "");
        let action = if write { "write" } else { "read" };
        let base = Request::new(format!("User::\"u{who}\""), action, "Doc::\"d\"").with_context(serde_json::json!({"n": n}));
        let longer = base.clone().on_behalf_of(delegators.iter().map(|d| format!("User::\"u{d}\"")));
        let short = a.authorize(&base).unwrap();
        let long = a.authorize(&longer).unwrap();
        if long.allowed() {
            prop_assert!(short.allowed(), "a longer chain allowed what the shorter denied");
        }
    }
}
