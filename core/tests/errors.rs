//! Bad input gets a clear error with a stable code (and `file:line` for policies and schemas);
//! nothing panics. Tests assert codes and locations, never message text.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests fail loudly on a broken fixture")]

use ambit::{Authorizer, DenyCause, ErrorMode, Request, Validation};
use serde_json::json;
use std::path::{Path, PathBuf};

const SCHEMA: &str = r"
entity User = { level: Long };
entity Doc;
entity Agent in [User, Agent] = {
  owner: String, task: String, scopes: Set<String>, depth: Long, created_at: Long, expires_at: Long,
};
action read appliesTo { principal: [User, Agent], resource: Doc, context: { n: Long } };
";

fn tmp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ambit-errors-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn err_of(b: ambit::AuthorizerBuilder) -> ambit::Error {
    b.build().expect_err("build must fail")
}

#[test]
fn malformed_policy_text_names_file_and_line() {
    let dir = tmp_dir("parse");
    std::fs::write(dir.join("s.cedarschema"), SCHEMA).unwrap();
    std::fs::write(
        dir.join("p.cedar"),
        "permit(principal, action, resource);\n\npermit(principal, action resource);\n",
    )
    .unwrap();
    let e = err_of(Authorizer::builder().dir(&dir));
    assert_eq!(e.code(), "AMBIT_POLICY_PARSE");
    let loc = e.location().expect("a location");
    assert!(loc.file().ends_with("p.cedar"));
    assert_eq!(loc.line(), 3);
    assert!(loc.column() > 1);
    assert!(e.to_string().starts_with(&format!("{}:3:", loc.file())));
}

#[test]
fn schema_errors_name_file_and_line() {
    let dir = tmp_dir("schema");
    std::fs::write(dir.join("s.cedarschema"), "entity User;\nentity Doc = { x: Lon g };\n").unwrap();
    std::fs::write(dir.join("p.cedar"), "permit(principal, action, resource);").unwrap();
    let e = err_of(Authorizer::builder().dir(&dir));
    assert_eq!(e.code(), "AMBIT_SCHEMA");
    assert_eq!(e.location().expect("a location").line(), 2);
}

#[test]
fn schema_referencing_undeclared_type_is_a_schema_error() {
    let e = err_of(
        Authorizer::builder()
            .schema_str("entity Doc = { owner: Nobody };")
            .policies_str("permit(principal, action, resource);"),
    );
    assert_eq!(e.code(), "AMBIT_SCHEMA");
}

#[test]
fn validation_errors_name_policy_file_and_line() {
    let dir = tmp_dir("validation");
    std::fs::write(dir.join("s.cedarschema"), SCHEMA).unwrap();
    std::fs::write(
        dir.join("p.cedar"),
        "@id(\"ok\")\npermit(principal, action, resource);\n@id(\"typo\")\npermit(principal is User, action, resource)\nwhen { principal.levle > 1 };\n",
    )
    .unwrap();
    let e = err_of(Authorizer::builder().dir(&dir));
    assert_eq!(e.code(), "AMBIT_VALIDATION");
    let loc = e.location().expect("a location");
    assert!(loc.file().ends_with("p.cedar"));
    assert_eq!(loc.line(), 5);
    // the same set loads with validation off
    assert!(Authorizer::builder().dir(&dir).validation(Validation::Off).build().is_ok());
}

#[test]
fn duplicate_policy_ids_are_rejected() {
    let e = err_of(Authorizer::builder().schema_str(SCHEMA).policies_str(
        "@id(\"a\")\npermit(principal, action, resource);\n@id(\"a\")\nforbid(principal, action, resource);",
    ));
    assert_eq!(e.code(), "AMBIT_DUPLICATE_POLICY_ID");
    assert_eq!(e.location().expect("a location").line(), 3);
}

#[test]
fn duplicate_ids_across_files_are_rejected() {
    let dir = tmp_dir("dup-files");
    std::fs::write(dir.join("s.cedarschema"), SCHEMA).unwrap();
    std::fs::write(dir.join("a.cedar"), "@id(\"x\") permit(principal, action, resource);").unwrap();
    std::fs::write(dir.join("b.cedar"), "@id(\"x\") forbid(principal, action, resource);").unwrap();
    assert_eq!(err_of(Authorizer::builder().dir(&dir)).code(), "AMBIT_DUPLICATE_POLICY_ID");
}

#[test]
fn policy_ids_follow_annotation_then_file_position() {
    let dir = tmp_dir("ids");
    std::fs::write(dir.join("s.cedarschema"), SCHEMA).unwrap();
    std::fs::write(
        dir.join("rules.cedar"),
        "permit(principal, action, resource);\n@id(\"named\") permit(principal, action, resource);\npermit(principal, action, resource);",
    )
    .unwrap();
    let a = Authorizer::builder().dir(&dir).build().unwrap();
    assert_eq!(a.policy_ids(), vec!["named", "rules.cedar#0", "rules.cedar#2"]);
    let single = Authorizer::builder()
        .schema_str(SCHEMA)
        .policies_str("permit(principal, action, resource);\npermit(principal, action, resource);")
        .build()
        .unwrap();
    assert_eq!(single.policy_ids(), vec!["policy0", "policy1"]);
}

#[test]
fn malformed_entities_json_is_an_entities_error() {
    for bad in ["[ {", r#"[{"uid": {"type": "User", "id": "a"}, "attrs": {"level": "high"}, "parents": []}]"#, "{}"] {
        let e = err_of(
            Authorizer::builder()
                .schema_str(SCHEMA)
                .policies_str("permit(principal, action, resource);")
                .entities_json(bad),
        );
        assert_eq!(e.code(), "AMBIT_ENTITIES", "for {bad}");
    }
}

#[test]
fn missing_and_empty_directories_have_their_own_codes() {
    let missing = std::env::temp_dir().join("ambit-errors-does-not-exist");
    assert_eq!(Authorizer::from_dir(&missing).unwrap_err().code(), "AMBIT_IO");
    let empty = tmp_dir("empty");
    assert_eq!(Authorizer::from_dir(&empty).unwrap_err().code(), "AMBIT_EMPTY_SOURCE");
}

#[test]
fn validation_without_schema_is_a_schema_error() {
    let e = err_of(Authorizer::builder().policies_str("permit(principal, action, resource);"));
    assert_eq!(e.code(), "AMBIT_SCHEMA");
    assert!(Authorizer::builder()
        .policies_str("permit(principal, action, resource);")
        .validation(Validation::Off)
        .build()
        .is_ok());
}

fn simple() -> Authorizer {
    Authorizer::builder()
        .schema_str(SCHEMA)
        .policies_str("@id(\"p\") permit(principal, action, resource) when { context.n > 0 };")
        .entities_json(r#"[{"uid": {"type": "User", "id": "u"}, "attrs": {"level": 1}, "parents": []}]"#)
        .build()
        .unwrap()
}

#[test]
fn bad_requests_are_invalid_request_errors() {
    let a = simple();
    let cases = [
        Request::new("u", "read", "Doc::\"d\""),
        Request::new("User::\"u\"", "read", "Doc::d"),
        Request::new("User::\"u\"", "write", "Doc::\"d\""),
        Request::new("User::\"u\"", "Action::\"write\"", "Doc::\"d\""),
        Request::new("User::\"u\"", "read", "Doc::\"d\"").with_context(json!({"n": "one"})),
        Request::new("User::\"u\"", "read", "Doc::\"d\"").with_context(json!({})),
        Request::new("User::\"u\"", "read", "Doc::\"d\"").with_context(json!([1])),
        Request::new("User::\"u\"", "read", "User::\"u\"").with_context(json!({"n": 1})),
        Request::new("User::\"u\"", "read", "Doc::\"d\"").with_context(json!({"n": 1})).on_behalf_of(["nope"]),
        Request::new("", "", ""),
        Request::new("User::\"u\0\"\"", "read\0", "Doc::\"\u{202e}\""),
    ];
    for r in cases {
        let e = a.authorize(&r).expect_err("must be an error");
        assert_eq!(e.code(), "AMBIT_INVALID_REQUEST", "{r:?}");
        assert!(!a.check(&r), "check() turns errors into a denial");
    }
    let ok = Request::new("User::\"u\"", "read", "Doc::\"d\"").with_context(json!({"n": 1}));
    assert!(a.authorize(&ok).unwrap().allowed());
    assert!(a.check(&ok));
}

#[test]
fn malformed_request_entities_are_entities_errors() {
    let a = simple();
    let r = Request::new("User::\"u\"", "read", "Doc::\"d\"")
        .with_context(json!({"n": 1}))
        .with_entities(vec![json!({"uid": {"type": "Doc"}, "attrs": {}, "parents": []})]);
    assert_eq!(a.authorize(&r).unwrap_err().code(), "AMBIT_ENTITIES");
}

const ERRING: &str = r#"
@id("allow-all") permit(principal, action, resource);
@id("deny-overflow") forbid(principal, action, resource) when { context.n * 1000000000000 > 5 };
"#;

#[test]
fn an_erroring_forbid_denies_in_fail_closed_mode_only() {
    let build = |mode| Authorizer::builder().schema_str(SCHEMA).policies_str(ERRING).error_mode(mode).build().unwrap();
    let overflow = Request::new("User::\"u\"", "read", "Doc::\"d\"").with_context(json!({"n": 9_000_000_000_i64}));
    let fc = build(ErrorMode::FailClosed).authorize(&overflow).unwrap();
    assert!(!fc.allowed());
    assert_eq!(fc.deny_cause(), Some(DenyCause::EvaluationError));
    assert_eq!(fc.reasons(), ["deny-overflow"]);
    assert_eq!(fc.errors()[0].policy_id(), "deny-overflow");
    let cedar = build(ErrorMode::Cedar).authorize(&overflow).unwrap();
    assert!(cedar.allowed(), "Cedar skips the erroring forbid");
    assert_eq!(cedar.errors()[0].policy_id(), "deny-overflow");
    // without the error, both modes agree
    let small = Request::new("User::\"u\"", "read", "Doc::\"d\"").with_context(json!({"n": 0}));
    assert!(build(ErrorMode::FailClosed).authorize(&small).unwrap().allowed());
}

#[test]
fn an_erroring_permit_is_only_reported() {
    let a = Authorizer::builder()
        .schema_str(SCHEMA)
        .policies_str(r#"@id("p") permit(principal, action, resource) when { context.n * 1000000000000 > 5 };"#)
        .build()
        .unwrap();
    let d = a
        .authorize(&Request::new("User::\"u\"", "read", "Doc::\"d\"").with_context(json!({"n": 9_000_000_000_i64})))
        .unwrap();
    assert!(!d.allowed());
    assert_eq!(d.deny_cause(), Some(DenyCause::NoPermit));
    assert_eq!(d.errors().len(), 1);
}

#[test]
fn every_error_code_is_distinct_and_stable() {
    let mut codes = ambit::Error::CODES.to_vec();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), ambit::Error::CODES.len());
    assert!(codes.iter().all(|c| c.starts_with("AMBIT_")));
    for cause in DenyCause::ALL {
        assert_eq!(DenyCause::from_code(cause.code()), Some(*cause));
    }
}

#[test]
fn limits_turn_hostile_input_into_errors() {
    let a = simple();
    let huge = format!("User::\"{}\"", "x".repeat(10_000));
    let deep = (0..100).fold(json!(1), |v, _| json!({ "n": v }));
    let wide = json!({ "n": 1, "blob": "y".repeat(2 << 20) });
    let many: Vec<_> =
        (0..1001).map(|i| json!({"uid": {"type": "Doc", "id": format!("d{i}")}, "attrs": {}, "parents": []})).collect();
    let cases = [
        Request::new(huge.as_str(), "read", "Doc::\"d\"").with_context(json!({"n": 1})),
        Request::new("User::\"u\"", "read", "Doc::\"d\"").with_context(deep),
        Request::new("User::\"u\"", "read", "Doc::\"d\"").with_context(wide),
        Request::new("User::\"u\"", "read", "Doc::\"d\"").with_context(json!({"n": 1})).with_entities(many),
    ];
    for r in cases {
        assert_eq!(a.authorize(&r).unwrap_err().code(), "AMBIT_LIMIT");
    }
    let tight = ambit::Limits::default().with_max_source_bytes(10);
    let e = Authorizer::builder().schema_str(SCHEMA).policies_str(ERRING).limits(tight).build().unwrap_err();
    assert_eq!(e.code(), "AMBIT_LIMIT");
}

#[test]
fn hostile_strings_never_panic_and_never_allow() {
    let a = Authorizer::builder()
        .schema_str(SCHEMA)
        .policies_str(r#"@id("p") permit(principal == User::"u", action, resource) when { context.n > 0 };"#)
        .build()
        .unwrap();
    let hostile = [
        "",
        "User::\"\"",
        "User::\"u\\\"\"",
        "User::\"u\0\"",
        "User::\"u\"; permit(principal, action, resource);",
        "User::\"\u{0443}\"",  // Cyrillic u, a look-alike
        "User::\"u\u{200b}\"", // zero-width space
        "Usér::\"u\"",
        "User::\"u\"::\"v\"",
        "::\"u\"",
        "User::",
        "\"User\"::\"u\"",
    ];
    for h in hostile {
        for r in [
            Request::new(h, "read", "Doc::\"d\"").with_context(json!({"n": 1})),
            Request::new("User::\"u\"", "read", h).with_context(json!({"n": 1})),
            Request::new("User::\"u\"", h, "Doc::\"d\"").with_context(json!({"n": 1})),
            Request::new("User::\"u\"", "read", "Doc::\"d\"").with_context(json!({"n": 1})).on_behalf_of([h]),
        ] {
            // a decision (deny) or an error, never a panic and never an allow for a look-alike
            // every case has a hostile part: a deny or an error, never a panic, never an allow
            if let Ok(d) = a.authorize(&r) {
                assert!(!d.allowed(), "{h:?} allowed: {r:?}");
            }
        }
    }
}

/// Cedar's cause survives into ambit's error, pointing at file, line and column (issue 15).
#[test]
fn cedar_causes_are_kept_with_file_line_and_column() {
    let fixture = |edit: &dyn Fn(&std::path::Path)| {
        let dir = std::env::temp_dir().join(format!("ambit-causes-{}-{}", std::process::id(), rand_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        for f in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/helpdesk")).unwrap() {
            let f = f.unwrap().path();
            std::fs::copy(&f, dir.join(f.file_name().unwrap())).unwrap();
        }
        edit(&dir);
        dir
    };
    let replace = |dir: &Path, file: &str, from: &str, to: &str| {
        let p = dir.join(file);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains(from), "{file} has no `{from}`");
        std::fs::write(&p, text.replacen(from, to, 1)).unwrap();
    };
    let at = |err: &ambit::Error| {
        err.location().map(|l| (l.file().rsplit('/').next().unwrap().to_owned(), l.line(), l.column()))
    };
    // an attribute the schema does not declare, in entities.json: the entity's attribute
    let dir = fixture(&|d| replace(d, "entities.json", "\"role\": \"manager\"", "\"rol\": \"manager\""));
    let err = Authorizer::from_dir(&dir).unwrap_err();
    assert_eq!(err.code(), "AMBIT_ENTITIES");
    assert!(err.message().contains("`rol`"), "the attribute is named: {err}");
    assert_eq!(at(&err), Some(("entities.json".into(), 6, 88)));
    // a missing comma: serde_json's line and column
    let dir = fixture(&|d| {
        replace(
            d,
            "entities.json",
            "\"parents\": [] },\n  { \"uid\": { \"type\": \"Helpdesk::Tenant\", \"id\": \"globex\" }",
            "\"parents\": [] }\n  { \"uid\": { \"type\": \"Helpdesk::Tenant\", \"id\": \"globex\" }",
        );
    });
    let err = Authorizer::from_dir(&dir).unwrap_err();
    assert_eq!(err.code(), "AMBIT_ENTITIES");
    assert_eq!(at(&err), Some(("entities.json".into(), 3, 3)));
    // a schema type that does not resolve: the type's position in its schema file
    let dir = fixture(&|d| replace(d, "helpdesk.cedarschema", "tenant: Tenant,", "tenant: Tenat,"));
    let err = Authorizer::from_dir(&dir).unwrap_err();
    assert_eq!(err.code(), "AMBIT_SCHEMA");
    assert_eq!(at(&err), Some(("helpdesk.cedarschema".into(), 7, 13)));
    // the same on reload: AMBIT_RELOAD, located by its cause
    let dir = fixture(&|_| {});
    let a = Authorizer::from_dir(&dir).unwrap();
    replace(&dir, "helpdesk.cedarschema", "tenant: Tenant,", "tenant: Tenat,");
    let err = a.reload().unwrap_err();
    assert_eq!(err.code(), "AMBIT_RELOAD");
    assert_eq!(at(&err), Some(("helpdesk.cedarschema".into(), 7, 13)));
    // a missing `;`: located where the parser expected it
    let dir = fixture(&|d| replace(d, "tickets.cedar", ");", ")"));
    let err = Authorizer::from_dir(&dir).unwrap_err();
    assert_eq!(err.code(), "AMBIT_POLICY_PARSE");
    assert_eq!(at(&err).map(|(f, l, _)| (f, l)), Some(("tickets.cedar".into(), 20)));
    // every validation error, each with its own location
    let dir = fixture(&|d| {
        replace(d, "tickets.cedar", "resource.tenant == principal.tenant", "resource.tenat == principal.tenant");
        replace(d, "refunds.cedar", "context.amount <= 5000", "context.amout <= 5000");
    });
    let err = Authorizer::from_dir(&dir).unwrap_err();
    assert_eq!(err.code(), "AMBIT_VALIDATION");
    let ambit::Error::Validation(v) = &err else { panic!("{err}") };
    let located: Vec<(String, usize)> = v
        .errors()
        .map(|(_, l)| {
            let l = l.unwrap();
            (l.file().rsplit('/').next().unwrap().to_owned(), l.line())
        })
        .collect();
    assert_eq!(located, [("refunds.cedar".to_owned(), 9), ("tickets.cedar".to_owned(), 9)]);
}

/// A context or agent that does not fit names the attribute and the type expected.
#[test]
fn context_and_agent_mismatches_name_the_attribute() {
    let a = Authorizer::from_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/helpdesk")).unwrap();
    let refund = |context: serde_json::Value| {
        a.authorize(
            &Request::new(r#"Helpdesk::User::"alice""#, "issue_refund", r#"Helpdesk::Ticket::"4711""#)
                .with_context(context),
        )
    };
    for (context, named) in
        [(json!({"amount": "900"}), "amount"), (json!({}), "amount"), (json!({"amount": 1, "amout": 2}), "amout")]
    {
        let err = refund(context).unwrap_err();
        assert_eq!(err.code(), "AMBIT_INVALID_REQUEST");
        assert!(err.message().contains(&format!("`{named}")), "{err}");
    }
    let mut attrs = serde_json::Map::new();
    attrs.insert("tenant".into(), json!("acme"));
    let err = a
        .mint_agent(
            &ambit::AgentSpec::new(r#"Helpdesk::Service::"helpdesk""#, "t", 60)
                .scopes(["read_ticket"])
                .attributes(attrs),
        )
        .unwrap_err();
    assert_eq!(err.code(), "AMBIT_INVALID_DELEGATION");
    assert!(err.message().contains("`tenant`"), "{err}");
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

/// Cedar projects' file names are read, anything else is reported as skipped, and entities
/// that do not fit their schema load when entity validation is turned off (issue 15).
#[test]
fn cedar_project_files_are_recognised_and_entity_validation_has_its_own_switch() {
    let dir = std::env::temp_dir().join(format!("ambit-files-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let helpdesk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/helpdesk");
    for f in ["helpdesk.cedarschema", "refunds.cedar", "tickets.cedar"] {
        std::fs::copy(helpdesk.join(f), dir.join(f)).unwrap();
    }
    let entities = std::fs::read_to_string(helpdesk.join("entities.json")).unwrap();
    std::fs::write(dir.join("app.cedarentities.json"), entities.replacen("\"role\"", "\"rol\"", 1)).unwrap();
    std::fs::write(dir.join("NOTES.md"), "notes").unwrap();
    let err = Authorizer::from_dir(&dir).unwrap_err();
    assert_eq!(err.code(), "AMBIT_ENTITIES", "the *.cedarentities.json file is read");
    let a = Authorizer::builder().dir(&dir).validate_entities(false).build().unwrap();
    let (read, skipped) = a.source_files();
    assert!(read.iter().any(|p| p.ends_with("app.cedarentities.json")));
    assert_eq!(skipped, [dir.join("NOTES.md")]);
    // policies and requests are still validated; action groups still come from the schema
    let d =
        a.authorize(&Request::new(r#"Helpdesk::User::"bob""#, "read_ticket", r#"Helpdesk::Ticket::"4711""#)).unwrap();
    assert!(d.allowed());
    let bad = a.authorize(&Request::new(r#"Helpdesk::User::"bob""#, "read_ticket", r#"Helpdesk::User::"alice""#));
    assert_eq!(bad.unwrap_err().code(), "AMBIT_INVALID_REQUEST");
    std::fs::write(dir.join("entities.json"), "[]").unwrap();
    assert_eq!(Authorizer::from_dir(&dir).unwrap_err().code(), "AMBIT_ENTITIES", "two entities files");
}

/// The default context of a guarded tool call: only the arguments the action declares.
#[test]
fn context_for_keeps_only_declared_arguments() {
    let a = Authorizer::from_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/helpdesk")).unwrap();
    let args = json!({"ticket": "4711", "amount": 5, "note": "x"});
    assert_eq!(a.context_for("issue_refund", &args).unwrap(), json!({"amount": 5}));
    assert_eq!(a.context_for("read_ticket", &args).unwrap(), json!({}));
    assert_eq!(a.context_for("launch", &args).unwrap_err().code(), "AMBIT_INVALID_REQUEST");
}
