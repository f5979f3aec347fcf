//! The one workload every benchmark uses (Rust, Python and Node alike): a help-desk-like
//! schema, a few hand-written policies plus generated per-tenant / per-team / per-agent
//! policies up to `P`, a few thousand entities, and a deterministic mix of allowed and denied
//! requests. `export` writes it to files for the Python and Node bench scripts.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::missing_panics_doc,
    reason = "benchmark fixtures fail loudly"
)]

use serde_json::{json, Value};

pub mod shapes;
pub mod sharing;
use std::fmt::Write as _;
use std::path::Path;

/// The policy-set sizes the benchmarks sweep.
pub const SIZES: [usize; 5] = [1, 10, 100, 1_000, 10_000];
/// Tenants in the generated world.
pub const TENANTS: usize = 200;
/// Users per tenant.
pub const USERS_PER_TENANT: usize = 5;
/// Tickets per tenant.
pub const TICKETS_PER_TENANT: usize = 10;
/// The actions.
pub const ACTIONS: [&str; 10] = [
    "read_ticket",
    "reply_ticket",
    "assign_ticket",
    "close_ticket",
    "reopen_ticket",
    "issue_refund",
    "escalate",
    "add_note",
    "read_customer",
    "export_report",
];

/// A deterministic generator (64-bit LCG): same seed, same workload, in every language's run.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1))
    }
    /// The next number below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        usize::try_from((self.0 >> 33) % (n as u64)).unwrap_or(0)
    }
}

/// The schema (Cedar syntax).
pub fn schema() -> String {
    let mut s = String::from(
        "namespace Desk {\n  entity Tenant;\n  entity Team in [Tenant];\n  entity User in [Team, Tenant] = { tenant: Tenant, level: Long };\n  entity Service;\n  entity Ticket in [Tenant] = { tenant: Tenant, priority: Long, status: String };\n  entity Agent in [User, Service, Agent] = { owner: String, task: String, scopes: Set<String>, depth: Long, created_at: Long, expires_at: Long };\n",
    );
    for a in ACTIONS {
        let _ = writeln!(
            s,
            "  action {a} appliesTo {{ principal: [User, Service, Agent], resource: Ticket, context: {{ amount: Long }} }};"
        );
    }
    s.push_str("}\n");
    s
}

/// A few realistic policies plus generated ones, `p` in all (at least the hand-written ones
/// when `p` is small: `p = 1` is one policy).
pub fn policies(p: usize) -> String {
    let hand = [
        r#"@id("staff-read") permit(principal is Desk::User, action in [Desk::Action::"read_ticket", Desk::Action::"reply_ticket", Desk::Action::"add_note"], resource) when { resource.tenant == principal.tenant };"#,
        r#"@id("platform") permit(principal == Desk::Service::"platform", action, resource);"#,
        r#"@id("agent-read") permit(principal is Desk::Agent, action in [Desk::Action::"read_ticket", Desk::Action::"reply_ticket"], resource);"#,
        r#"@id("refund-cap") forbid(principal is Desk::Agent, action == Desk::Action::"issue_refund", resource) when { context.amount > 500 };"#,
        r#"@id("closed") forbid(principal, action == Desk::Action::"reply_ticket", resource) when { resource.status == "closed" };"#,
        r#"@id("managers") permit(principal is Desk::User, action, resource) when { principal.level >= 3 && resource.tenant == principal.tenant };"#,
    ];
    let mut out: Vec<String> = hand.iter().take(p).map(|s| (*s).to_owned()).collect();
    let mut rng = Rng::new(7);
    let mut i = 0;
    while out.len() < p {
        let t = rng.below(TENANTS);
        let a = ACTIONS[rng.below(ACTIONS.len())];
        let policy = match i % 3 {
            0 => format!(
                r#"@id("tenant-{i}") permit(principal in Desk::Tenant::"t{t}", action == Desk::Action::"{a}", resource in Desk::Tenant::"t{t}") when {{ resource.priority <= {} }};"#,
                rng.below(5)
            ),
            1 => format!(
                r#"@id("team-{i}") permit(principal in Desk::Team::"t{t}-team{}", action == Desk::Action::"{a}", resource in Desk::Tenant::"t{t}");"#,
                rng.below(2)
            ),
            _ => format!(
                r#"@id("user-{i}") forbid(principal == Desk::User::"t{t}-u{}", action == Desk::Action::"{a}", resource) when {{ context.amount > {} }};"#,
                rng.below(USERS_PER_TENANT),
                rng.below(1000)
            ),
        };
        out.push(policy);
        i += 1;
    }
    out.join("\n")
}

/// Static entities: tenants, teams, users, the platform service and tickets.
pub fn entities() -> Value {
    let mut out = vec![json!({"uid": {"type": "Desk::Service", "id": "platform"}, "attrs": {}, "parents": []})];
    let mut rng = Rng::new(11);
    for t in 0..TENANTS {
        let tenant = json!({"type": "Desk::Tenant", "id": format!("t{t}")});
        out.push(json!({"uid": tenant, "attrs": {}, "parents": []}));
        for team in 0..2 {
            out.push(json!({"uid": {"type": "Desk::Team", "id": format!("t{t}-team{team}")}, "attrs": {}, "parents": [tenant]}));
        }
        for u in 0..USERS_PER_TENANT {
            out.push(json!({
                "uid": {"type": "Desk::User", "id": format!("t{t}-u{u}")},
                "attrs": {"tenant": {"__entity": tenant}, "level": rng.below(4)},
                "parents": [{"type": "Desk::Team", "id": format!("t{t}-team{}", u % 2)}, tenant],
            }));
        }
        for k in 0..TICKETS_PER_TENANT {
            out.push(json!({
                "uid": {"type": "Desk::Ticket", "id": format!("t{t}-k{k}")},
                "attrs": {"tenant": {"__entity": tenant}, "priority": rng.below(5), "status": if k % 4 == 0 { "closed" } else { "open" }},
                "parents": [tenant],
            }));
        }
    }
    Value::Array(out)
}

/// One request of the mix: (principal, action, resource, amount).
#[derive(Debug, Clone)]
pub struct Req {
    /// Cedar uid text.
    pub principal: String,
    /// Bare action name.
    pub action: String,
    /// Cedar uid text.
    pub resource: String,
    /// The context's amount.
    pub amount: i64,
}

/// An authorizer over the workload with `p` policies.
pub fn authorizer(p: usize) -> ambit::Authorizer {
    ambit::Authorizer::builder()
        .schema_str(schema())
        .policies_str(policies(p))
        .entities_json(entities().to_string())
        .build()
        .unwrap()
}

/// The requests as ambit takes them (uid text, action name, context JSON).
pub fn ambit_requests(reqs: &[Req]) -> Vec<ambit::Request> {
    reqs.iter()
        .map(|r| ambit::Request::new(&r.principal, &r.action, &r.resource).with_context(json!({"amount": r.amount})))
        .collect()
}

/// The requests prepared once for raw Cedar: uids parsed, context typed by the schema.
pub fn cedar_requests(reqs: &[Req], schema: &cedar_policy::Schema) -> Vec<cedar_policy::Request> {
    reqs.iter()
        .map(|r| {
            let action: cedar_policy::EntityUid = format!(r#"Desk::Action::"{}""#, r.action).parse().unwrap();
            let ctx =
                cedar_policy::Context::from_json_value(json!({"amount": r.amount}), Some((schema, &action))).unwrap();
            cedar_policy::Request::new(r.principal.parse().unwrap(), action, r.resource.parse().unwrap(), ctx, None)
                .unwrap()
        })
        .collect()
}

/// `n` user requests, a mix of same-tenant (often allowed) and cross-tenant (denied).
pub fn requests(n: usize) -> Vec<Req> {
    let mut rng = Rng::new(23);
    (0..n)
        .map(|_| {
            let t = rng.below(TENANTS);
            let rt = if rng.below(3) == 0 { rng.below(TENANTS) } else { t };
            Req {
                principal: format!(r#"Desk::User::"t{t}-u{}""#, rng.below(USERS_PER_TENANT)),
                action: ACTIONS[rng.below(ACTIONS.len())].to_owned(),
                resource: format!(r#"Desk::Ticket::"t{rt}-k{}""#, rng.below(TICKETS_PER_TENANT)),
                amount: i64::try_from(rng.below(1000)).unwrap_or(0),
            }
        })
        .collect()
}

/// Writes the workload for `p` policies to `dir`: `schema.cedarschema`, `policies.cedar`,
/// `entities.json` and `requests.json`, for the Python and Node bench scripts.
///
/// # Errors
/// When the files cannot be written.
pub fn export(dir: &Path, p: usize, n_requests: usize) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("schema.cedarschema"), schema())?;
    std::fs::write(dir.join("policies.cedar"), policies(p))?;
    std::fs::write(dir.join("entities.json"), entities().to_string())?;
    let reqs: Vec<Value> = requests(n_requests)
        .into_iter()
        .map(|r| json!({"principal": r.principal, "action": r.action, "resource": r.resource, "context": {"amount": r.amount}}))
        .collect();
    std::fs::write(dir.join("requests.json"), Value::Array(reqs).to_string())
}

/// Work per second on `threads` threads for `budget`: each thread makes its worker with
/// `worker()` (inside the thread, so per-thread state stays there) and calls it until the
/// budget is spent; a call returns how much work it did.
#[allow(clippy::cast_precision_loss, reason = "a count as a rate")]
pub fn per_second<W: FnMut() -> u64>(
    threads: usize,
    budget: std::time::Duration,
    worker: impl Fn() -> W + Sync,
) -> f64 {
    let start = std::time::Instant::now();
    let total: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut work = worker();
                    let end = std::time::Instant::now() + budget;
                    let mut n = 0u64;
                    while std::time::Instant::now() < end {
                        n += work();
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    total as f64 / start.elapsed().as_secs_f64()
}

/// One pass over `reqs` with `a`: the number of decisions made.
pub fn decide_all(a: &ambit::Authorizer, reqs: &[ambit::Request]) -> u64 {
    for q in reqs {
        std::hint::black_box(a.authorize(q).unwrap());
    }
    reqs.len() as u64
}
