//! The bodies of the fuzz targets (`fuzz/`), kept here so `make test` runs every committed
//! seed through exactly the same code as an ordinary test. Each returns normally or panics on
//! a broken invariant; none may panic on any input otherwise.

use crate::{AgentSpec, Authorizer, DenyCause, ErrorMode, ManualClock, Request, Validation};
use std::sync::Arc;

const SCHEMA: &str = r"
entity User = { level: Long };
entity Doc = { owner: User };
entity Agent in [User, Agent] = {
  owner: String, task: String, scopes: Set<String>, depth: Long, created_at: Long, expires_at: Long,
};
action read, write, share appliesTo { principal: [User, Agent], resource: Doc, context: { n: Long } };
";
const POLICIES: &str = r#"
@id("read") permit(principal, action == Action::"read", resource);
@id("write") permit(principal, action == Action::"write", resource) when { resource.owner == principal || principal is Agent };
@id("share") permit(principal is User, action == Action::"share", resource) when { principal.level > context.n };
@id("cap") forbid(principal is Agent, action, resource) when { context.n * 1000000000000 > 10 };
"#;
const ENTITIES: &str = r#"[
  {"uid": {"type": "User", "id": "u"}, "attrs": {"level": 3}, "parents": []},
  {"uid": {"type": "Doc", "id": "d"}, "attrs": {"owner": {"__entity": {"type": "User", "id": "u"}}}, "parents": []}
]"#;
const ACTIONS: [&str; 3] = ["read", "write", "share"];

fn fixture(clock: &ManualClock) -> Authorizer {
    match Authorizer::builder()
        .schema_str(SCHEMA)
        .policies_str(POLICIES)
        .entities_json(ENTITIES)
        .clock(Arc::new(clock.clone()))
        .max_delegation_depth(4)
        .build()
    {
        Ok(a) => a,
        Err(e) => unreachable_fixture(&e),
    }
}

#[expect(clippy::panic, reason = "a fuzz harness reports a broken fixture by panicking")]
fn unreachable_fixture(e: &crate::Error) -> ! {
    panic!("the fuzz fixture must load: {e}")
}

/// Arbitrary bytes as schema / policy / entities text: an error code or an authorizer.
pub fn load_policies(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\u{1}');
    let a = parts.next().unwrap_or_default().to_owned();
    let b = parts.next().unwrap_or_default().to_owned();
    let c = parts.next().unwrap_or_default().to_owned();
    for validation in [Validation::Strict, Validation::Off] {
        let built =
            Authorizer::builder().schema_str(&a).policies_str(&b).entities_json(&c).validation(validation).build();
        if let Err(e) = built {
            assert!(e.code().starts_with("AMBIT_"));
        }
        let built = Authorizer::builder().policies_str(text.as_ref()).validation(Validation::Off).build();
        if let Err(e) = built {
            assert!(e.code().starts_with("AMBIT_"));
        }
    }
}

/// Arbitrary bytes as a JSON request: a decision or an error code, never a panic.
pub fn wire_request(data: &[u8]) {
    let clock = ManualClock::new(1_000);
    let authz = fixture(&clock);
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Request::from_json(text) {
        Ok(request) => match authz.authorize(&request) {
            Ok(d) => {
                // an allow always comes with every hop allowed
                assert!(!d.allowed() || d.hops().iter().all(crate::Hop::allowed));
            }
            Err(e) => assert!(e.code().starts_with("AMBIT_")),
        },
        Err(e) => assert_eq!(e.code(), "AMBIT_INVALID_REQUEST"),
    }
}

/// Arbitrary bytes as a sequence of mint / revoke / reinstate / authorize / advance / reload;
/// the delegation invariants hold after every step.
pub fn delegation_ops(data: &[u8]) {
    let clock = ManualClock::new(1_000);
    let authz = fixture(&clock);
    let mut agents: Vec<crate::Agent> = Vec::new();
    let root = r#"User::"u""#;
    for chunk in data.chunks(3) {
        let (op, x, y) = (chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0));
        let pick = |n: u8| -> String {
            if agents.is_empty() || n.is_multiple_of(5) {
                root.to_owned()
            } else {
                agents[n as usize % agents.len()].uid().to_owned()
            }
        };
        match op % 6 {
            0 => {
                let parent = pick(x);
                let scopes: Vec<&str> =
                    ACTIONS.iter().enumerate().filter(|(i, _)| y & (1 << i) != 0).map(|(_, a)| *a).collect();
                let spec = AgentSpec::new(&parent, "fuzz", u64::from(y % 64) + 1).scopes(scopes);
                if let Ok(child) = authz.mint_agent(&spec) {
                    if let Some(p) = agents.iter().find(|a| a.uid() == parent) {
                        assert!(child.scopes().iter().all(|s| p.scopes().contains(s)), "child wider than parent");
                        assert!(child.expires_at() <= p.expires_at(), "child outlives parent");
                        assert_eq!(child.depth(), p.depth() + 1);
                    }
                    agents.push(child);
                }
            }
            1 => {
                let _ = authz.revoke(&pick(x));
            }
            2 => {
                let _ = authz.reinstate(root);
            }
            3 => clock.advance(u64::from(x % 32)),
            4 => {
                let text = if x.is_multiple_of(4) { "permit(principal, action resource);" } else { POLICIES };
                let _ = authz.replace_policies(text);
            }
            _ => {
                let who = pick(x);
                let action = ACTIONS[y as usize % 3];
                let r =
                    Request::new(&who, action, r#"Doc::"d""#).with_context(serde_json::json!({"n": i64::from(y % 3)}));
                let Ok(d) = authz.authorize(&r) else { continue };
                if d.allowed() {
                    // nothing under a revoked or expired node is allowed
                    let now = crate::Clock::now(&clock);
                    for uid in d.chain() {
                        if let Some(a) = authz.agents().into_iter().find(|a| a.uid() == uid) {
                            assert!(!a.revoked(), "allowed through revoked {uid}");
                            assert!(a.expires_at() > now, "allowed through expired {uid}");
                            assert!(a.scopes().iter().any(|s| s == action), "allowed out of scope");
                        }
                    }
                } else {
                    assert!(d.deny_cause().is_some_and(|c| DenyCause::ALL.contains(&c)));
                }
            }
        }
    }
    let _ = ErrorMode::Cedar;
}

/// Arbitrary bytes as an audit log: no panic; and a valid log with one byte changed never
/// verifies.
pub fn audit_verify(data: &[u8]) {
    let dir =
        std::env::temp_dir().join(format!("ambit-fuzz-audit-{}-{:?}", std::process::id(), std::thread::current().id()));
    let _ = std::fs::create_dir_all(&dir);
    let raw = dir.join("raw.jsonl");
    if std::fs::write(&raw, data).is_ok() {
        let _ = crate::audit::verify(std::slice::from_ref(&raw));
    }
    let log = dir.join("valid.jsonl");
    let _ = std::fs::remove_file(&log);
    {
        let Ok(audit) = crate::Audit::builder().file(&log, crate::audit::FileOptions::default()).build() else {
            return;
        };
        let clock = ManualClock::new(1_000);
        let authz = match Authorizer::builder()
            .schema_str(SCHEMA)
            .policies_str(POLICIES)
            .entities_json(ENTITIES)
            .clock(Arc::new(clock))
            .audit(audit)
            .build()
        {
            Ok(a) => a,
            Err(e) => unreachable_fixture(&e),
        };
        for action in ACTIONS {
            let _ = authz.authorize(
                &Request::new(r#"User::"u""#, action, r#"Doc::"d""#).with_context(serde_json::json!({"n": 1})),
            );
        }
    }
    let Ok(mut bytes) = std::fs::read(&log) else { return };
    if bytes.is_empty() || data.len() < 3 {
        return;
    }
    let at = (usize::from(data[0]) << 8 | usize::from(data[1])) % bytes.len();
    let new = data[2];
    if bytes[at] == new {
        return;
    }
    bytes[at] = new;
    if std::fs::write(&log, &bytes).is_ok() {
        if let Ok(report) = crate::audit::verify(std::slice::from_ref(&log)) {
            assert!(!report.ok, "a log with byte {at} changed to {new} still verifies");
        }
    }
}
