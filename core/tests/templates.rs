//! Templates and links (issue 15): links from a file and at run time decide as Cedar's linked
//! policies do, name the link as the reason, survive reloads, are audited, and every way a link
//! can be wrong is `AMBIT_LINK`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests fail loudly")]

use ambit::audit::{Audit, AuditEvent};
use ambit::{Authorizer, Link, Request};
use std::path::PathBuf;

const SCHEMA: &str = "
entity User; entity Folder; entity Doc in [Folder];
action read appliesTo { principal: User, resource: [Doc, Folder] };
";
const POLICIES: &str = r#"
@id("reader") permit (principal == ?principal, action == Action::"read", resource in ?resource);
@id("everyone-public") permit (principal, action, resource == Doc::"public");
"#;
const ENTITIES: &str = r#"[
  {"uid": {"type": "Folder", "id": "f"}, "attrs": {}, "parents": []},
  {"uid": {"type": "Doc", "id": "d"}, "attrs": {}, "parents": [{"type": "Folder", "id": "f"}]},
  {"uid": {"type": "Doc", "id": "public"}, "attrs": {}, "parents": []},
  {"uid": {"type": "User", "id": "alice"}, "attrs": {}, "parents": []},
  {"uid": {"type": "User", "id": "bob"}, "attrs": {}, "parents": []}
]"#;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ambit-templates-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("s.cedarschema"), SCHEMA).unwrap();
    std::fs::write(d.join("p.cedar"), POLICIES).unwrap();
    std::fs::write(d.join("entities.json"), ENTITIES).unwrap();
    d
}

fn reads(who: &str, doc: &str) -> Request {
    Request::new(format!("User::\"{who}\""), "read", format!("Doc::\"{doc}\""))
}

#[test]
fn a_links_file_in_the_directory_links_templates() {
    let d = dir("file");
    std::fs::write(
        d.join("links.json"),
        r#"[{"template_id": "reader", "link_id": "alice-reads-f", "args": {"?principal": "User::\"alice\"", "?resource": "Folder::\"f\""}}]"#,
    )
    .unwrap();
    let a = Authorizer::from_dir(&d).unwrap();
    let yes = a.authorize(&reads("alice", "d")).unwrap();
    assert!(yes.allowed());
    assert_eq!(yes.reasons(), ["alice-reads-f"], "reasons name the link, as Cedar does");
    assert!(!a.authorize(&reads("bob", "d")).unwrap().allowed());
    assert_eq!(a.links().len(), 1);
}

#[test]
fn run_time_links_are_audited_versioned_and_survive_reloads_until_unlinked() {
    let d = dir("runtime");
    let a = Authorizer::builder().dir(&d).audit(Audit::builder().build().unwrap()).build().unwrap();
    assert!(!a.authorize(&reads("bob", "d")).unwrap().allowed());
    let before = a.policy_version();
    let link = Link::new("reader", "bob-reads-d").principal(r#"User::"bob""#).resource(r#"Doc::"d""#);
    let outcome = a.link(&link).unwrap();
    assert_ne!(outcome.version, before, "a link is a new policy version");
    let d1 = a.authorize(&reads("bob", "d")).unwrap();
    assert!(d1.allowed());
    assert_eq!(d1.reasons(), ["bob-reads-d"]);
    assert_eq!(d1.policy_version(), outcome.version);
    // the policy files reload; the run-time link stays
    a.reload().unwrap();
    assert!(a.authorize(&reads("bob", "d")).unwrap().allowed());
    assert_eq!(a.links(), std::slice::from_ref(&link));
    a.unlink("bob-reads-d").unwrap();
    assert!(!a.authorize(&reads("bob", "d")).unwrap().allowed());
    assert_eq!(a.unlink("bob-reads-d").unwrap_err().code(), "AMBIT_LINK");
    a.audit().unwrap().flush();
    let kinds: Vec<&str> = a.audit().unwrap().recent(20).iter().map(|r| r.event.kind()).collect();
    assert!(kinds.contains(&"linked") && kinds.contains(&"unlinked"), "{kinds:?}");
    let linked =
        a.audit().unwrap().recent(20).into_iter().find(|r| matches!(r.event, AuditEvent::Linked { .. })).unwrap();
    let AuditEvent::Linked { link_id, template_id, .. } = linked.event else { unreachable!() };
    assert_eq!((link_id.as_str(), template_id.as_str()), ("bob-reads-d", "reader"));
}

#[test]
fn every_way_a_link_can_be_wrong_is_a_link_error_and_changes_nothing() {
    let d = dir("errors");
    let a = Authorizer::from_dir(&d).unwrap();
    let version = a.policy_version();
    let cases = [
        Link::new("nope", "x").principal(r#"User::"bob""#).resource(r#"Doc::"d""#),
        Link::new("reader", "x").principal(r#"User::"bob""#),
        Link::new("reader", "everyone-public").principal(r#"User::"bob""#).resource(r#"Doc::"d""#),
        Link::new("reader", "x").principal("bob").resource(r#"Doc::"d""#),
        // validates: the schema knows no such type
        Link::new("reader", "x").principal(r#"Nope::"f""#).resource(r#"Doc::"d""#),
    ];
    for link in &cases {
        let err = a.link(link).unwrap_err();
        assert_eq!(err.code(), "AMBIT_LINK", "{link:?}: {err}");
    }
    assert_eq!(a.policy_version(), version);
    assert!(a.links().is_empty());
}

#[test]
fn a_bad_links_file_names_the_file_and_line() {
    let d = dir("badfile");
    std::fs::write(d.join("links.json"), "[\n  {\"template_id\": \"reader\",\n   \"link_id\": \"l\", \"args\": {\"?principal\": \"User::\\\"alice\\\"\"}}\n]").unwrap();
    let err = Authorizer::from_dir(&d).unwrap_err();
    assert_eq!(err.code(), "AMBIT_LINK");
    let loc = err.location().expect("a location");
    assert!(loc.file().ends_with("links.json"));
    assert_eq!(loc.line(), 3);
    std::fs::write(d.join("links.json"), "[ {\"template_id\": \"reader\" ").unwrap();
    let err = Authorizer::from_dir(&d).unwrap_err();
    assert_eq!(err.code(), "AMBIT_LINK");
    assert!(err.location().is_some());
}
