//! The per-action index and the per-request entity slice never change a decision: ambit
//! (validation off, Cedar error mode, one-hop chain) against raw `cedar_policy::Authorizer`
//! over the whole policy set and every entity, on random many-policy sets and requests; each
//! request is decided twice, the second time bringing an entity of its own, which sends ambit
//! through the per-request entity slice (it fails if the slice misses an entity a policy can
//! reach through attributes). Templates and their links are in the sets too: a link is
//! indexed by its filled scope, as a static policy is.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests fail loudly on a broken fixture")]

use ambit::{Authorizer, ErrorMode, Request, Validation};
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::str::FromStr;

const USERS: usize = 4;
const DOCS: usize = 4;
const ACTIONS: usize = 5;

/// Users in groups, docs in folders (nested), each with attributes pointing at other entities,
/// and actions in two action groups.
fn entities_json() -> String {
    let mut out = vec![
        r#"{"uid":{"type":"Group","id":"g0"},"attrs":{},"parents":[{"type":"Group","id":"g1"}]}"#.to_owned(),
        r#"{"uid":{"type":"Group","id":"g1"},"attrs":{},"parents":[]}"#.to_owned(),
        r#"{"uid":{"type":"Folder","id":"f0"},"attrs":{"level":3},"parents":[{"type":"Folder","id":"f1"}]}"#.to_owned(),
        r#"{"uid":{"type":"Folder","id":"f1"},"attrs":{"level":1},"parents":[]}"#.to_owned(),
    ];
    for u in 0..USERS {
        out.push(format!(
            r#"{{"uid":{{"type":"User","id":"u{u}"}},"attrs":{{"level":{u},"manager":{{"__entity":{{"type":"User","id":"u{}"}}}}}},"parents":[{{"type":"Group","id":"g{}"}}]}}"#,
            (u + 1) % USERS,
            u % 2
        ));
    }
    for d in 0..DOCS {
        out.push(format!(
            r#"{{"uid":{{"type":"Doc","id":"d{d}"}},"attrs":{{"owner":{{"__entity":{{"type":"User","id":"u{}"}}}},"folder":{{"__entity":{{"type":"Folder","id":"f{}"}}}}}},"parents":[{{"type":"Folder","id":"f{}"}}]}}"#,
            d % USERS,
            d % 2,
            d % 2
        ));
    }
    for a in 0..ACTIONS {
        let group = if a < 2 {
            r#"[{"type":"Action","id":"grp0"}]"#
        } else if a < 4 {
            r#"[{"type":"Action","id":"grp1"}]"#
        } else {
            "[]"
        };
        out.push(format!(r#"{{"uid":{{"type":"Action","id":"a{a}"}},"attrs":{{}},"parents":{group}}}"#));
    }
    out.push(r#"{"uid":{"type":"Action","id":"grp0"},"attrs":{},"parents":[]}"#.to_owned());
    out.push(r#"{"uid":{"type":"Action","id":"grp1"},"attrs":{},"parents":[]}"#.to_owned());
    format!("[{}]", out.join(","))
}

fn principal_scope() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("principal".to_owned()),
        (0..USERS).prop_map(|u| format!("principal == User::\"u{u}\"")),
        (0..2usize).prop_map(|g| format!("principal in Group::\"g{g}\"")),
        Just("principal is User".to_owned()),
        (0..2usize).prop_map(|g| format!("principal is User in Group::\"g{g}\"")),
    ]
}

fn action_scope() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("action".to_owned()),
        (0..ACTIONS).prop_map(|a| format!("action == Action::\"a{a}\"")),
        (0..2usize).prop_map(|g| format!("action in Action::\"grp{g}\"")),
        (0..ACTIONS, 0..ACTIONS).prop_map(|(a, b)| format!("action in [Action::\"a{a}\", Action::\"a{b}\"]")),
        (0..2usize, 0..ACTIONS).prop_map(|(g, a)| format!("action in [Action::\"grp{g}\", Action::\"a{a}\"]")),
    ]
}

fn resource_scope() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("resource".to_owned()),
        (0..DOCS).prop_map(|d| format!("resource == Doc::\"d{d}\"")),
        (0..2usize).prop_map(|f| format!("resource in Folder::\"f{f}\"")),
        Just("resource is Doc".to_owned()),
    ]
}

fn condition() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        (0..4i64).prop_map(|n| format!("when {{ principal.level > {n} }}")),
        Just("when { resource.owner == principal }".to_owned()),
        Just("when { resource.owner.manager == principal }".to_owned()),
        Just("unless { resource.folder.level > 2 }".to_owned()),
        (0..USERS).prop_map(|u| format!("when {{ User::\"u{u}\".level > 1 }}")),
        (0..USERS).prop_map(|u| format!("when {{ User::\"u{u}\" in Group::\"g1\" }}")),
        (0..3i64).prop_map(|n| format!("when {{ context.n > {n} }}")),
        Just("when { context.n * 4611686018427387904 > 1 }".to_owned()),
        Just("when { principal.manager.manager.level < 3 }".to_owned()),
        Just("when { resource in principal.manager }".to_owned()),
        // conditions that are not booleans, and several clauses: the same type errors and
        // the same results whether the scopes are evaluated or known to hold
        Just("when { context.n }".to_owned()),
        Just("when { true } unless { context.n }".to_owned()),
        Just("when { principal.level > 1 } when { context.n > 0 } unless { context.n > 2 }".to_owned()),
    ]
}

fn policy() -> impl Strategy<Value = String> {
    (any::<bool>(), principal_scope(), action_scope(), resource_scope(), condition())
        .prop_map(|(permit, p, a, r, c)| format!("{}({p}, {a}, {r}) {c};", if permit { "permit" } else { "forbid" }))
}

/// A template: at least one slot, the rest as for policies. `(text without @id, slots used)`.
fn template() -> impl Strategy<Value = (String, bool, bool)> {
    let pslot = prop_oneof![
        Just(None),
        Just(Some("principal == ?principal")),
        Just(Some("principal in ?principal")),
        Just(Some("principal is User in ?principal")),
    ];
    let rslot = prop_oneof![Just(None), Just(Some("resource == ?resource")), Just(Some("resource in ?resource"))];
    (any::<bool>(), pslot, action_scope(), rslot, condition())
        .prop_filter("a template has a slot", |(_, p, _, r, _)| p.is_some() || r.is_some())
        .prop_map(|(permit, p, a, r, c)| {
            let text = format!(
                "{}({}, {a}, {}) {c};",
                if permit { "permit" } else { "forbid" },
                p.unwrap_or("principal"),
                r.unwrap_or("resource")
            );
            (text, p.is_some(), r.is_some())
        })
}

/// Slot values: a user or a group for `?principal`, a doc or a folder for `?resource`.
fn slot_values() -> impl Strategy<Value = (String, String)> {
    (
        prop_oneof![
            (0..USERS).prop_map(|u| format!("User::\"u{u}\"")),
            (0..2usize).prop_map(|g| format!("Group::\"g{g}\""))
        ],
        prop_oneof![
            (0..DOCS).prop_map(|d| format!("Doc::\"d{d}\"")),
            (0..2usize).prop_map(|f| format!("Folder::\"f{f}\""))
        ],
    )
}

fn request() -> impl Strategy<Value = (String, String, String, i64)> {
    (
        prop_oneof![
            (0..USERS + 1).prop_map(|u| format!("User::\"u{u}\"")),
            (0..2usize).prop_map(|g| format!("Group::\"g{g}\""))
        ],
        (0..ACTIONS + 1).prop_map(|a| format!("Action::\"a{a}\"")),
        prop_oneof![
            (0..DOCS + 1).prop_map(|d| format!("Doc::\"d{d}\"")),
            (0..2usize).prop_map(|f| format!("Folder::\"f{f}\""))
        ],
        0..4i64,
    )
}

/// An entity no policy names, which a request can bring along.
fn extra_entity() -> serde_json::Value {
    serde_json::json!([{ "uid": { "type": "Extra", "id": "x" }, "attrs": {}, "parents": [] }])
}

/// Cedar's message as ambit words every message: one line, no final period, a lower-case first
/// letter unless the first word is an acronym.
fn message_as_ambit_words_it(m: &str) -> String {
    let m = m.replace('\n', " ");
    let m = m.trim_end_matches('.');
    let mut chars = m.chars();
    match (chars.next(), chars.next()) {
        (Some(c), next) if c.is_uppercase() && !next.is_some_and(char::is_uppercase) => {
            c.to_lowercase().chain(m.chars().skip(1)).collect()
        }
        _ => m.to_owned(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn index_and_slice_never_change_a_decision(
        policies in prop::collection::vec(policy(), 1..160),
        templates in prop::collection::vec(template(), 0..6),
        links in prop::collection::vec((0..6usize, slot_values()), 0..12),
        requests in prop::collection::vec(request(), 1..12),
    ) {
        // templates come last in the one text, so static policies keep their positional ids
        // (`policy0`, ...) in both engines; ambit names templates by `@id`, raw Cedar by position
        let mut text = policies.join("\n");
        for (i, (t, _, _)) in templates.iter().enumerate() {
            let _ = write!(text, "\n@id(\"t{i}\") {t}");
        }
        let mut pset = cedar_policy::PolicySet::from_str(&text).unwrap();
        let mut link_json = Vec::new();
        for (j, (t, (principal, resource))) in links.iter().enumerate() {
            let Some((_, has_p, has_r)) = templates.get(*t) else { continue };
            let mut values = std::collections::HashMap::new();
            let mut args = serde_json::Map::new();
            if *has_p {
                values.insert(cedar_policy::SlotId::principal(), principal.parse().unwrap());
                args.insert("?principal".into(), principal.clone().into());
            }
            if *has_r {
                values.insert(cedar_policy::SlotId::resource(), resource.parse().unwrap());
                args.insert("?resource".into(), resource.clone().into());
            }
            let raw_template = cedar_policy::PolicyId::new(format!("policy{}", policies.len() + t));
            pset.link(raw_template, cedar_policy::PolicyId::new(format!("l{j}")), values).unwrap();
            link_json.push(serde_json::json!({ "template_id": format!("t{t}"), "link_id": format!("l{j}"), "args": args }));
        }
        let entities = entities_json();
        let ambit = Authorizer::builder()
            .policies_str(&text)
            .links_json(serde_json::Value::from(link_json).to_string())
            .entities_json(&entities)
            .validation(Validation::Off)
            .error_mode(ErrorMode::Cedar)
            .build()
            .unwrap();
        let all = cedar_policy::Entities::from_json_str(&entities, None).unwrap();
        // a request that brings an entity of its own is decided over a per-request entity
        // slice: it must hold everything a policy can reach (attributes of attributes included)
        let all_plus = all.clone().add_entities(
            cedar_policy::Entities::from_json_value(extra_entity(), None).unwrap(), None,
        ).unwrap();
        let cedar = cedar_policy::Authorizer::new();
        for ((p, a, r, n), sliced) in requests.iter().flat_map(|q| [(q, false), (q, true)]) {
            let context = serde_json::json!({ "n": n });
            let raw_req = cedar_policy::Request::new(
                p.parse().unwrap(), a.parse().unwrap(), r.parse().unwrap(),
                cedar_policy::Context::from_json_value(context.clone(), None).unwrap(), None,
            ).unwrap();
            let raw = cedar.is_authorized(&raw_req, &pset, if sliced { &all_plus } else { &all });
            let mut request = Request::new(p, a, r).with_context(context);
            if sliced {
                request = request.with_entities(extra_entity().as_array().unwrap().clone());
            }
            let d = ambit.authorize(&request).unwrap();
            let raw_reasons: BTreeSet<String> = raw.diagnostics().reason().map(ToString::to_string).collect();
            let raw_errors: BTreeSet<(String, String)> = raw.diagnostics().errors().map(|e| {
                let cedar_policy::AuthorizationError::PolicyEvaluationError(e) = e;
                (e.policy_id().to_string(), message_as_ambit_words_it(&e.inner().to_string()))
            }).collect();
            let reasons: BTreeSet<String> = d.reasons().iter().cloned().collect();
            let errors: BTreeSet<(String, String)> =
                d.errors().iter().map(|e| (e.policy_id().to_owned(), e.message().to_owned())).collect();
            prop_assert_eq!(d.allowed(), raw.decision() == cedar_policy::Decision::Allow, "{} {} {}\n{}", p, a, r, text);
            prop_assert_eq!(reasons, raw_reasons, "{} {} {}\n{}", p, a, r, text);
            prop_assert_eq!(errors, raw_errors, "{} {} {}\n{}", p, a, r, text);
        }
    }
}
