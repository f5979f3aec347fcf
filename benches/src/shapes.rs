//! A second workload, shaped unlike the first (issue 19) so that no single workload is what the
//! index is tuned to: documents in nested folders, users in nested groups, and policies that
//! constrain the principal *and* the resource scope on most policies (`in` over four levels of
//! groups and three of folders, `==`, `is`, `is ... in`), action lists, and conditions on
//! attributes and context, over many tenants.

use crate::Rng;
use serde_json::{json, Value};
use std::fmt::Write as _;

/// Tenants in this world.
pub const TENANTS: usize = 300;
const USERS: usize = 8;
const DOCS: usize = 12;
/// Group chains per tenant, each four deep (`g{c}-0` in the tenant, `g{c}-1` in `g{c}-0`, ...).
const GROUP_CHAINS: usize = 2;
const GROUP_DEPTH: usize = 4;
/// Folder chains per tenant, each three deep.
const FOLDER_CHAINS: usize = 2;
const FOLDER_DEPTH: usize = 3;
/// The actions.
pub const ACTIONS: [&str; 6] = ["view", "comment", "edit", "share", "delete", "export"];

/// The schema (Cedar syntax).
pub fn schema() -> String {
    let mut s = String::from(
        "namespace Org {\n  entity Tenant;\n  entity Group in [Group, Tenant];\n  entity User in [Group, Tenant] = { tenant: Tenant, clearance: Long };\n  entity Folder in [Folder, Tenant] = { tenant: Tenant };\n  entity Doc in [Folder, Tenant] = { tenant: Tenant, sensitivity: Long };\n",
    );
    for a in ACTIONS {
        let _ = writeln!(
            s,
            "  action {a} appliesTo {{ principal: [User], resource: [Doc], context: {{ hour: Long, risk: Long }} }};"
        );
    }
    s.push_str("}\n");
    s
}

fn group(t: usize, c: usize, d: usize) -> String {
    format!(r#"Org::Group::"t{t}-g{c}-{d}""#)
}
fn folder(t: usize, c: usize, d: usize) -> String {
    format!(r#"Org::Folder::"t{t}-f{c}-{d}""#)
}

/// `p` policies: a few tenant-wide ones, then generated ones of five shapes.
pub fn policies(p: usize) -> String {
    let mut rng = Rng::new(7);
    let mut out = String::new();
    let base = [
        r#"@id("same-tenant-view") permit(principal is Org::User, action == Org::Action::"view", resource is Org::Doc) when { resource.tenant == principal.tenant && resource.sensitivity <= principal.clearance };"#,
        r#"@id("risky") forbid(principal, action in [Org::Action::"delete", Org::Action::"export"], resource) when { context.risk > 8 };"#,
    ];
    for b in base.iter().take(p) {
        out.push_str(b);
        out.push('\n');
    }
    for i in base.len()..p {
        let t = rng.below(TENANTS);
        let (gc, gd) = (rng.below(GROUP_CHAINS), rng.below(GROUP_DEPTH));
        let (fc, fd) = (rng.below(FOLDER_CHAINS), rng.below(FOLDER_DEPTH));
        let a = ACTIONS[rng.below(ACTIONS.len())];
        let b = ACTIONS[rng.below(ACTIONS.len())];
        let _ = match i % 5 {
            0 => writeln!(
                out,
                r#"@id("p{i}") permit(principal in {}, action in [Org::Action::"{a}", Org::Action::"{b}"], resource in {}) when {{ resource.sensitivity <= principal.clearance }};"#,
                group(t, gc, gd),
                folder(t, fc, fd)
            ),
            1 => writeln!(
                out,
                r#"@id("p{i}") forbid(principal is Org::User in {}, action == Org::Action::"{a}", resource is Org::Doc in {}) when {{ context.risk > {} }};"#,
                group(t, gc, gd),
                folder(t, fc, fd),
                rng.below(10)
            ),
            2 => writeln!(
                out,
                r#"@id("p{i}") permit(principal == Org::User::"t{t}-u{}", action, resource in Org::Tenant::"t{t}") when {{ context.hour >= 8 && context.hour < 18 }};"#,
                rng.below(USERS)
            ),
            3 => writeln!(
                out,
                r#"@id("p{i}") permit(principal in Org::Tenant::"t{t}", action == Org::Action::"{a}", resource == Org::Doc::"t{t}-d{}");"#,
                rng.below(DOCS)
            ),
            _ => writeln!(
                out,
                r#"@id("p{i}") permit(principal in {}, action in [Org::Action::"{a}", Org::Action::"{b}"], resource is Org::Doc) when {{ resource.tenant == principal.tenant }};"#,
                group(t, gc, gd)
            ),
        };
    }
    out
}

/// The entities (Cedar JSON).
pub fn entities() -> Value {
    let mut rng = Rng::new(11);
    let mut list = Vec::new();
    let tenant = |t: usize| json!({"type": "Org::Tenant", "id": format!("t{t}")});
    for t in 0..TENANTS {
        list.push(json!({"uid": tenant(t), "attrs": {}, "parents": []}));
        for c in 0..GROUP_CHAINS {
            for d in 0..GROUP_DEPTH {
                let parent = if d == 0 {
                    tenant(t)
                } else {
                    json!({"type": "Org::Group", "id": format!("t{t}-g{c}-{}", d - 1)})
                };
                list.push(json!({"uid": {"type": "Org::Group", "id": format!("t{t}-g{c}-{d}")}, "attrs": {}, "parents": [parent]}));
            }
        }
        for c in 0..FOLDER_CHAINS {
            for d in 0..FOLDER_DEPTH {
                let parent = if d == 0 {
                    tenant(t)
                } else {
                    json!({"type": "Org::Folder", "id": format!("t{t}-f{c}-{}", d - 1)})
                };
                list.push(json!({"uid": {"type": "Org::Folder", "id": format!("t{t}-f{c}-{d}")},
                                 "attrs": {"tenant": {"__entity": tenant(t)}}, "parents": [parent]}));
            }
        }
        for u in 0..USERS {
            let leaf =
                json!({"type": "Org::Group", "id": format!("t{t}-g{}-{}", rng.below(GROUP_CHAINS), GROUP_DEPTH - 1)});
            list.push(json!({"uid": {"type": "Org::User", "id": format!("t{t}-u{u}")},
                             "attrs": {"tenant": {"__entity": tenant(t)}, "clearance": rng.below(5)},
                             "parents": [leaf, tenant(t)]}));
        }
        for d in 0..DOCS {
            let leaf = json!({"type": "Org::Folder", "id": format!("t{t}-f{}-{}", rng.below(FOLDER_CHAINS), FOLDER_DEPTH - 1)});
            list.push(json!({"uid": {"type": "Org::Doc", "id": format!("t{t}-d{d}")},
                             "attrs": {"tenant": {"__entity": tenant(t)}, "sensitivity": rng.below(5)},
                             "parents": [leaf, tenant(t)]}));
        }
    }
    Value::Array(list)
}

/// One request of this workload.
#[derive(Debug, Clone)]
pub struct Req {
    /// The user's uid text.
    pub principal: String,
    /// The action name.
    pub action: String,
    /// The document's uid text.
    pub resource: String,
    /// `{hour, risk}`.
    pub context: Value,
}

/// `n` requests: mostly within a tenant, some across.
pub fn requests(n: usize) -> Vec<Req> {
    let mut rng = Rng::new(23);
    (0..n)
        .map(|_| {
            let t = rng.below(TENANTS);
            let rt = if rng.below(4) == 0 { rng.below(TENANTS) } else { t };
            Req {
                principal: format!(r#"Org::User::"t{t}-u{}""#, rng.below(USERS)),
                action: ACTIONS[rng.below(ACTIONS.len())].to_owned(),
                resource: format!(r#"Org::Doc::"t{rt}-d{}""#, rng.below(DOCS)),
                context: json!({"hour": rng.below(24), "risk": rng.below(10)}),
            }
        })
        .collect()
}
