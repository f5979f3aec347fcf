//! A third workload, shaped unlike the other two (issue 19): document sharing across many
//! workspaces. Most policies are per-document grants naming one user and one document (the
//! shape template links produce), or team grants over projects; actions come in action
//! *groups* from the schema (`action in Share::Action::"write"`), not lists; a few policies
//! have no principal or resource scope at all and decide by attributes (a document's owner,
//! its labels), `unless`, `has`, set membership and the `ipaddr` extension on the context.

use crate::Rng;
use serde_json::{json, Value};
use std::fmt::Write as _;

/// Workspaces in this world.
pub const WORKSPACES: usize = 250;
const USERS: usize = 10;
const TEAMS: usize = 3;
const PROJECTS: usize = 4;
const DOCS: usize = 16;
/// The actions requests name (the schema groups them under `read` and `write`).
pub const ACTIONS: [&str; 5] = ["view", "download", "edit", "rename", "delete"];

/// The schema (Cedar syntax).
pub fn schema() -> String {
    let context = "context: { ip: ipaddr, mfa: Bool }";
    format!(
        "namespace Share {{\n  entity Workspace;\n  entity Team in [Team, Workspace];\n  entity User in [Team, Workspace] = {{ workspace: Workspace, verified?: Bool }};\n  entity Project in [Workspace];\n  entity Doc in [Project] = {{ owner: User, workspace: Workspace, public: Bool, labels: Set<String> }};\n  action read, write;\n  action view, download in [read] appliesTo {{ principal: [User], resource: [Doc], {context} }};\n  action edit, rename, delete in [write] appliesTo {{ principal: [User], resource: [Doc], {context} }};\n}}\n"
    )
}

fn user(w: usize, u: usize) -> String {
    format!(r#"Share::User::"w{w}-u{u}""#)
}
fn doc(w: usize, d: usize) -> String {
    format!(r#"Share::Doc::"w{w}-d{d}""#)
}

/// `p` policies: three unscoped ones, then generated ones of five shapes, per-document grants
/// the most common.
pub fn policies(p: usize) -> String {
    let mut rng = Rng::new(5);
    let mut out = String::new();
    let base = [
        r#"@id("owner") permit(principal, action, resource) when { resource.owner == principal };"#,
        r#"@id("unverified") forbid(principal, action in Share::Action::"write", resource) unless { principal has verified && principal.verified };"#,
        r#"@id("public") permit(principal, action == Share::Action::"view", resource) when { resource.public && resource.workspace == principal.workspace };"#,
    ];
    for b in base.iter().take(p) {
        out.push_str(b);
        out.push('\n');
    }
    for i in base.len()..p {
        let w = rng.below(WORKSPACES);
        let group = if rng.below(2) == 0 { "read" } else { "write" };
        let _ = match i % 8 {
            // per-document grants: half of all policies
            0..=3 => writeln!(
                out,
                r#"@id("grant-{i}") permit(principal == {}, action in Share::Action::"{group}", resource == {});"#,
                user(w, rng.below(USERS)),
                doc(w, rng.below(DOCS))
            ),
            4 | 5 => writeln!(
                out,
                r#"@id("team-{i}") permit(principal in Share::Team::"w{w}-t{}", action in Share::Action::"{group}", resource in Share::Project::"w{w}-p{}");"#,
                rng.below(TEAMS),
                rng.below(PROJECTS)
            ),
            6 => writeln!(
                out,
                r#"@id("offsite-{i}") forbid(principal in Share::Workspace::"w{w}", action == Share::Action::"download", resource) unless {{ context.ip.isInRange(ip("10.{}.0.0/16")) }};"#,
                w % 256
            ),
            _ => writeln!(
                out,
                r#"@id("label-{i}") forbid(principal is Share::User, action, resource in Share::Project::"w{w}-p{}") when {{ resource.labels.contains("secret") && !context.mfa }};"#,
                rng.below(PROJECTS)
            ),
        };
    }
    out
}

/// The entities (Cedar JSON).
pub fn entities() -> Value {
    let mut rng = Rng::new(13);
    let mut list = Vec::new();
    let ws = |w: usize| json!({"type": "Share::Workspace", "id": format!("w{w}")});
    for w in 0..WORKSPACES {
        list.push(json!({"uid": ws(w), "attrs": {}, "parents": []}));
        for t in 0..TEAMS {
            // teams nest: t1 in t0, t2 in t1
            let parent = if t == 0 { ws(w) } else { json!({"type": "Share::Team", "id": format!("w{w}-t{}", t - 1)}) };
            list.push(
                json!({"uid": {"type": "Share::Team", "id": format!("w{w}-t{t}")}, "attrs": {}, "parents": [parent]}),
            );
        }
        for p in 0..PROJECTS {
            list.push(
                json!({"uid": {"type": "Share::Project", "id": format!("w{w}-p{p}")}, "attrs": {}, "parents": [ws(w)]}),
            );
        }
        for u in 0..USERS {
            let mut attrs = json!({"workspace": {"__entity": ws(w)}});
            if rng.below(5) != 0 {
                attrs["verified"] = json!(rng.below(4) != 0);
            }
            let team = json!({"type": "Share::Team", "id": format!("w{w}-t{}", rng.below(TEAMS))});
            list.push(json!({"uid": {"type": "Share::User", "id": format!("w{w}-u{u}")}, "attrs": attrs, "parents": [team, ws(w)]}));
        }
        for d in 0..DOCS {
            let labels: Vec<&str> = ["secret", "draft", "legal"].into_iter().filter(|_| rng.below(3) == 0).collect();
            list.push(json!({
                "uid": {"type": "Share::Doc", "id": format!("w{w}-d{d}")},
                "attrs": {
                    "owner": {"__entity": {"type": "Share::User", "id": format!("w{w}-u{}", rng.below(USERS))}},
                    "workspace": {"__entity": ws(w)},
                    "public": rng.below(4) == 0,
                    "labels": labels,
                },
                "parents": [{"type": "Share::Project", "id": format!("w{w}-p{}", rng.below(PROJECTS))}],
            }));
        }
    }
    Value::Array(list)
}

/// `n` requests: mostly within a workspace, some across; the context's `ip` in the explicit
/// extension form.
pub fn requests(n: usize) -> Vec<crate::shapes::Req> {
    let mut rng = Rng::new(29);
    (0..n)
        .map(|_| {
            let w = rng.below(WORKSPACES);
            let rw = if rng.below(5) == 0 { rng.below(WORKSPACES) } else { w };
            let ip = format!(
                "10.{}.{}.{}",
                if rng.below(3) == 0 { (w + 1) % 256 } else { w % 256 },
                rng.below(256),
                1 + rng.below(254)
            );
            crate::shapes::Req {
                principal: user(w, rng.below(USERS)),
                action: ACTIONS[rng.below(ACTIONS.len())].to_owned(),
                resource: doc(rw, rng.below(DOCS)),
                context: json!({"ip": {"__extn": {"fn": "ip", "arg": ip}}, "mfa": rng.below(2) == 0}),
            }
        })
        .collect()
}
