//! Stress: decisions, batches, mints, revokes, reinstates and reloads on several threads at
//! once for a few seconds (`AMBIT_STRESS_SECS`, default 3). No deadlock, no panic, the
//! invariants hold throughout, and the audit log holds exactly one record per event, in a
//! chain that verifies.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests fail loudly on a broken fixture")]

use ambit::audit::{self, Audit, FileOptions};
use ambit::{AgentSpec, Authorizer, Request};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SERVICE: &str = r#"Helpdesk::Service::"helpdesk""#;
const BOB: &str = r#"Helpdesk::User::"bob""#;
const TICKET: &str = r#"Helpdesk::Ticket::"4711""#;
const ACTIONS: [&str; 3] = ["read_ticket", "reply_ticket", "close_ticket"];

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/helpdesk")
}

/// A tiny deterministic generator per thread (xorshift).
struct Rng(u64);
impl Rng {
    fn pick(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        usize::try_from(self.0 % n.max(1) as u64).unwrap()
    }
}

#[derive(Default)]
struct Counts {
    decisions: AtomicU64,
    allowed_through_agents: AtomicU64,
    minted: AtomicU64,
    revoked: AtomicU64,
    reinstated: AtomicU64,
    reload_ok: AtomicU64,
    reload_failed: AtomicU64,
}

struct World {
    a: Authorizer,
    /// Agents minted so far, with their scopes.
    agents: Mutex<Vec<(String, Vec<String>)>>,
    /// Agents whose revoke has returned: nothing through them may be allowed afterwards.
    revoked: Mutex<HashSet<String>>,
    /// Every policy id any valid policy set has.
    known_ids: HashSet<String>,
    counts: Counts,
    stop: AtomicBool,
}

fn tenant() -> Map<String, Value> {
    json!({"tenant": {"__entity": {"type": "Helpdesk::Tenant", "id": "acme"}}}).as_object().unwrap().clone()
}

fn decide(w: &World, rng: &mut Rng) {
    let who = {
        let agents = w.agents.lock().unwrap();
        match rng.pick(agents.len() + 2) {
            0 => SERVICE.to_owned(),
            1 => BOB.to_owned(),
            i => agents[i - 2].0.clone(),
        }
    };
    let revoked_before: HashSet<String> = w.revoked.lock().unwrap().clone();
    let request = Request::new(&who, ACTIONS[rng.pick(3)], TICKET);
    let decisions = if rng.pick(8) == 0 {
        w.a.authorize_batch(&[request.clone(), request]).into_iter().map(Result::unwrap).collect()
    } else {
        vec![w.a.authorize(&request).unwrap()]
    };
    for d in decisions {
        w.counts.decisions.fetch_add(1, Ordering::SeqCst);
        if d.allowed() {
            assert!(
                d.chain().iter().all(|hop| !revoked_before.contains(hop)),
                "allowed through an agent revoked before the decision: {:?}",
                d.chain()
            );
            assert!(!d.reasons().is_empty() && d.reasons().iter().all(|r| w.known_ids.contains(r)), "{d:?}");
            if d.chain().len() > 1 {
                w.counts.allowed_through_agents.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

fn mint(w: &World, rng: &mut Rng) {
    let parent = {
        let agents = w.agents.lock().unwrap();
        match rng.pick(agents.len() + 1) {
            0 => (SERVICE.to_owned(), None),
            i => (agents[i - 1].0.clone(), Some(agents[i - 1].1.clone())),
        }
    };
    let scopes: Vec<&str> = ACTIONS.iter().copied().filter(|_| rng.pick(2) == 0).collect();
    let spec = AgentSpec::new(&parent.0, "stress", 3600).scopes(scopes).attributes(tenant());
    if let Ok(agent) = w.a.mint_agent(&spec) {
        w.counts.minted.fetch_add(1, Ordering::SeqCst);
        if let Some(parent_scopes) = parent.1 {
            assert!(agent.scopes().iter().all(|s| parent_scopes.contains(s)), "a child wider than its parent");
        }
        w.agents.lock().unwrap().push((agent.uid().to_owned(), agent.scopes().to_vec()));
    }
}

fn revoke(w: &World, rng: &mut Rng) {
    if rng.pick(10) == 0 {
        w.a.revoke(BOB).unwrap();
        w.counts.revoked.fetch_add(1, Ordering::SeqCst);
        if w.a.reinstate(BOB).unwrap() {
            w.counts.reinstated.fetch_add(1, Ordering::SeqCst);
        }
        return;
    }
    let target = {
        let agents = w.agents.lock().unwrap();
        if agents.is_empty() {
            return;
        }
        agents[rng.pick(agents.len())].0.clone()
    };
    w.a.revoke(&target).unwrap();
    w.counts.revoked.fetch_add(1, Ordering::SeqCst);
    w.revoked.lock().unwrap().insert(target);
}

fn reload(w: &World, rng: &mut Rng, policy_sets: &[String]) {
    let before = w.a.policy_version();
    match rng.pick(3) {
        2 => {
            let err = w.a.replace_policies("permit(principal, action resource);").unwrap_err();
            assert_eq!(err.code(), "AMBIT_RELOAD");
            assert_eq!(w.a.policy_version(), before, "a failed reload changed the serving policies");
            w.counts.reload_failed.fetch_add(1, Ordering::SeqCst);
        }
        i => {
            w.a.replace_policies(&policy_sets[i]).unwrap();
            w.counts.reload_ok.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[test]
fn every_operation_at_once_keeps_the_invariants_and_audits_each_event_once() {
    let run_secs: u64 = std::env::var("AMBIT_STRESS_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let dir = std::env::temp_dir().join(format!("ambit-stress-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("audit.jsonl");
    let base: String = ["tickets.cedar", "refunds.cedar"]
        .iter()
        .map(|f| std::fs::read_to_string(fixture().join(f)).unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    let extra = "@id(\"stress-extra\")\npermit(principal == Helpdesk::User::\"bob\", action == Helpdesk::Action::\"close_ticket\", resource);";
    let policy_sets = vec![base.clone(), format!("{base}\n{extra}")];
    let audit = Audit::builder().capacity(256).file(&log, FileOptions::default()).build().unwrap();
    let a = Authorizer::builder().dir(fixture()).audit(audit).build().unwrap();
    let mut known_ids: HashSet<String> = a.policy_ids().into_iter().collect();
    known_ids.insert("stress-extra".into());
    let world = Arc::new(World {
        a,
        agents: Mutex::new(Vec::new()),
        revoked: Mutex::new(HashSet::new()),
        known_ids,
        counts: Counts::default(),
        stop: AtomicBool::new(false),
    });
    let policy_sets = Arc::new(policy_sets);
    let roles: [(&str, u64); 5] = [("decide", 1), ("decide", 2), ("mint", 3), ("revoke", 4), ("reload", 5)];
    let threads: Vec<_> = roles
        .into_iter()
        .map(|(role, seed)| {
            let (w, policy_sets) = (Arc::clone(&world), Arc::clone(&policy_sets));
            std::thread::spawn(move || {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ seed);
                let mut ops = 0u64;
                while !w.stop.load(Ordering::SeqCst) {
                    match role {
                        "decide" => decide(&w, &mut rng),
                        "mint" => mint(&w, &mut rng),
                        "revoke" => revoke(&w, &mut rng),
                        _ => reload(&w, &mut rng, &policy_sets),
                    }
                    ops += 1;
                    if role == "reload" || role == "revoke" {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                ops
            })
        })
        .collect();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(run_secs) {
        std::thread::sleep(Duration::from_millis(50));
    }
    world.stop.store(true, Ordering::SeqCst);
    let ops: Vec<u64> = threads.into_iter().map(|t| t.join().expect("a worker panicked")).collect();
    assert!(ops.iter().all(|n| *n > 0), "every role ran: {ops:?}");

    let world = Arc::into_inner(world).expect("workers are done");
    let c = &world.counts;
    assert!(c.allowed_through_agents.load(Ordering::SeqCst) > 0, "the revocation invariant was never exercised");
    let expected: BTreeMap<&str, u64> = [
        ("decision", c.decisions.load(Ordering::SeqCst)),
        ("agent_minted", c.minted.load(Ordering::SeqCst)),
        ("revoked", c.revoked.load(Ordering::SeqCst)),
        ("reinstated", c.reinstated.load(Ordering::SeqCst)),
        ("reload_succeeded", c.reload_ok.load(Ordering::SeqCst)),
        ("reload_failed", c.reload_failed.load(Ordering::SeqCst)),
        ("closed", 1), // the trail's last record, written when the authorizer is dropped
    ]
    .into_iter()
    .collect();
    eprintln!("stress: {run_secs} s, operations per role {ops:?}, events {expected:?}");
    drop(world); // flushes and stops the audit writer
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    for line in std::fs::read_to_string(&log).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        *seen.entry(v["kind"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    let seen: BTreeMap<&str, u64> = seen.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(seen, expected, "audit records by kind vs events");
    let report = audit::verify(&[log]).unwrap();
    assert!(report.ok && report.closed, "{report:?}");
    assert_eq!(report.records, expected.values().sum::<u64>());
}
