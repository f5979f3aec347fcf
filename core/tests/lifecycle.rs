//! Agent lifecycle: attenuation at mint, revocation (cascading, racing), expiry and purging,
//! hot reload under load, and watching the policy files.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests fail loudly on a broken fixture")]

use ambit::{AgentSpec, Authorizer, DenyCause, ManualClock, Request};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const NOW: u64 = 1_800_000_000;
const SERVICE: &str = r#"Helpdesk::Service::"helpdesk""#;
const TICKET: &str = r#"Helpdesk::Ticket::"4711""#;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/helpdesk")
}

fn authz(clock: &ManualClock) -> Authorizer {
    Authorizer::builder().dir(fixture()).clock(Arc::new(clock.clone())).max_delegation_depth(3).build().unwrap()
}

fn acme() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("tenant".into(), json!({"__entity": {"type": "Helpdesk::Tenant", "id": "acme"}}));
    m
}

fn ticket_agent(a: &Authorizer, parent: &str, scopes: &[&str], ttl: u64) -> ambit::Agent {
    a.mint_agent(&AgentSpec::new(parent, "t", ttl).scopes(scopes.iter().copied()).attributes(acme())).unwrap()
}

fn read(principal: &str) -> Request {
    Request::new(principal, "read_ticket", TICKET)
}

#[test]
fn mint_errors_name_the_broken_rule() {
    let clock = ManualClock::new(NOW);
    let a = authz(&clock);
    let parent = ticket_agent(&a, SERVICE, &["read_ticket", "reply_ticket"], 100);
    let confined =
        a.mint_agent(&AgentSpec::new(SERVICE, "c", 100).scopes(["read_ticket"]).resources([TICKET])).unwrap();
    let cases: Vec<(AgentSpec, &str)> = vec![
        (AgentSpec::new(r#"Helpdesk::User::"mallory""#, "t", 10), "AMBIT_INVALID_DELEGATION"),
        (AgentSpec::new(r#"Helpdesk::Agent::"forged""#, "t", 10), "AMBIT_INVALID_DELEGATION"),
        (AgentSpec::new(parent.uid(), "t", 10).scopes(["issue_refund"]), "AMBIT_INVALID_DELEGATION"),
        (AgentSpec::new(SERVICE, "t", 10).scopes(["fly_to_the_moon"]), "AMBIT_INVALID_DELEGATION"),
        (AgentSpec::new(SERVICE, "t", 0), "AMBIT_INVALID_DELEGATION"),
        (
            AgentSpec::new(confined.uid(), "t", 10).scopes(["read_ticket"]).resources([r#"Helpdesk::Ticket::"9001""#]),
            "AMBIT_INVALID_DELEGATION",
        ),
        (
            AgentSpec::new(SERVICE, "t", 10).attributes(json!({"depth": 0}).as_object().unwrap().clone()),
            "AMBIT_INVALID_DELEGATION",
        ),
        (
            AgentSpec::new(SERVICE, "t", 10).attributes(json!({"tenant": 7}).as_object().unwrap().clone()),
            "AMBIT_INVALID_DELEGATION",
        ),
        (
            AgentSpec::new(SERVICE, "t", 10).attributes(json!({"nickname": "x"}).as_object().unwrap().clone()),
            "AMBIT_INVALID_DELEGATION",
        ),
        (AgentSpec::new("helpdesk", "t", 10), "AMBIT_INVALID_REQUEST"),
    ];
    for (spec, code) in cases {
        let e = a.mint_agent(&spec).expect_err("mint must fail");
        assert_eq!(e.code(), code, "{spec:?}: {e}");
    }
    // depth: service -> a1 -> a2 -> a3 is depth 3 (the limit here); a4 is one too many
    let a1 = ticket_agent(&a, SERVICE, &["read_ticket"], 100);
    let a2 = ticket_agent(&a, a1.uid(), &["read_ticket"], 100);
    let a3 = ticket_agent(&a, a2.uid(), &["read_ticket"], 100);
    assert_eq!(a3.depth(), 3);
    let e = a.mint_agent(&AgentSpec::new(a3.uid(), "t", 10).scopes(["read_ticket"])).unwrap_err();
    assert_eq!(e.code(), "AMBIT_INVALID_DELEGATION");
    // revoked and expired parents
    a.revoke(a2.uid()).unwrap();
    assert_eq!(a.mint_agent(&AgentSpec::new(a2.uid(), "t", 10)).unwrap_err().code(), "AMBIT_INVALID_DELEGATION");
    clock.advance(101);
    assert_eq!(a.mint_agent(&AgentSpec::new(parent.uid(), "t", 10)).unwrap_err().code(), "AMBIT_INVALID_DELEGATION");
    // a revoked static root cannot mint until reinstated
    a.revoke(SERVICE).unwrap();
    assert_eq!(a.mint_agent(&AgentSpec::new(SERVICE, "t", 10)).unwrap_err().code(), "AMBIT_INVALID_DELEGATION");
    assert!(a.reinstate(SERVICE).unwrap());
    assert!(a.mint_agent(&AgentSpec::new(SERVICE, "t", 10)).is_ok());
}

#[test]
fn minted_agents_carry_their_chain_and_narrowed_authority() {
    let clock = ManualClock::new(NOW);
    let a = authz(&clock);
    let a1 = a
        .mint_agent(&AgentSpec::new(SERVICE, "ticket", 900).scopes(["read_ticket", "reply_ticket"]).resources([TICKET]))
        .unwrap();
    assert!(a1.uid().starts_with("Helpdesk::Agent::\""));
    assert_eq!(a1.chain(), [SERVICE, a1.uid()]);
    assert_eq!(a1.owner(), SERVICE);
    assert_eq!((a1.depth(), a1.created_at(), a1.expires_at()), (1, NOW, NOW + 900));
    let a2 = a.mint_agent(&AgentSpec::new(a1.uid(), "sub", 5000).scopes(["reply_ticket"])).unwrap();
    assert_eq!(a2.expires_at(), NOW + 900, "clamped to the parent's expiry");
    assert_eq!(a2.resources(), [TICKET], "confinement is inherited");
    assert_eq!(a2.chain(), [SERVICE, a1.uid(), a2.uid()]);
    assert_eq!(a2.depth(), 2);
    let ids: std::collections::HashSet<String> =
        (0..500).map(|_| a.mint_agent(&AgentSpec::new(SERVICE, "n", 10)).unwrap().uid().to_owned()).collect();
    assert_eq!(ids.len(), 500, "agent ids are unique");
    let tree = a.delegation_tree(SERVICE).unwrap();
    let node = tree.children().iter().find(|c| c.uid() == a1.uid()).expect("a1 under the service");
    assert_eq!(node.children()[0].uid(), a2.uid());
    assert_eq!(node.agent().unwrap().task(), "ticket");
    assert_eq!(a.agents().len(), 502);
}

#[test]
fn revoke_cascades_counts_and_survives_reload() {
    let clock = ManualClock::new(NOW);
    let a = authz(&clock);
    let a1 = ticket_agent(&a, SERVICE, &["read_ticket"], 100);
    let a2 = ticket_agent(&a, a1.uid(), &["read_ticket"], 100);
    let a3 = ticket_agent(&a, a2.uid(), &["read_ticket"], 100);
    let other = ticket_agent(&a, SERVICE, &["read_ticket"], 100);
    assert_eq!(a.revoke(a2.uid()).unwrap(), 2, "a2 and a3");
    assert_eq!(a.revoke(a2.uid()).unwrap(), 0, "already revoked");
    assert!(a.authorize(&read(a1.uid())).unwrap().allowed());
    for uid in [a2.uid(), a3.uid()] {
        assert_eq!(a.authorize(&read(uid)).unwrap().deny_cause(), Some(DenyCause::Revoked));
    }
    a.reload().unwrap();
    assert_eq!(a.authorize(&read(a3.uid())).unwrap().deny_cause(), Some(DenyCause::Revoked), "survives reload");
    assert_eq!(a.reinstate(a2.uid()).unwrap_err().code(), "AMBIT_INVALID_DELEGATION", "agent revocation is final");
    // a static root: its live agents are counted and cut off until it is reinstated
    assert_eq!(a.revoke(SERVICE).unwrap(), 3, "the service, a1 and other");
    assert_eq!(a.authorize(&read(other.uid())).unwrap().deny_cause(), Some(DenyCause::Revoked));
    assert!(a.reinstate(SERVICE).unwrap());
    assert!(!a.reinstate(SERVICE).unwrap());
    assert!(a.authorize(&read(other.uid())).unwrap().allowed());
    assert_eq!(a.authorize(&read(a3.uid())).unwrap().deny_cause(), Some(DenyCause::Revoked));
}

#[test]
fn expired_agents_deny_then_are_purged_and_memory_stays_bounded() {
    let clock = ManualClock::new(NOW);
    let a = Authorizer::builder().dir(fixture()).clock(Arc::new(clock.clone())).purge_grace(60).build().unwrap();
    let agent = ticket_agent(&a, SERVICE, &["read_ticket"], 30);
    clock.advance(30);
    assert_eq!(a.authorize(&read(agent.uid())).unwrap().deny_cause(), Some(DenyCause::Expired));
    assert_eq!(a.purge_expired(), 0, "still within the grace period");
    clock.advance(60);
    assert_eq!(a.purge_expired(), 1);
    assert_eq!(a.authorize(&read(agent.uid())).unwrap().deny_cause(), Some(DenyCause::UnknownPrincipal));
    // many short-lived agents come and go: minting purges on its own schedule
    let mut peak = 0;
    for i in 0..60_000u64 {
        a.mint_agent(&AgentSpec::new(SERVICE, "burst", 5)).unwrap();
        if i % 100 == 0 {
            clock.advance(1);
        }
        peak = peak.max(a.agent_count());
    }
    assert!(peak < 20_000, "registry grew to {peak} agents");
}

#[test]
fn no_allow_on_a_revoked_subtree_once_revoke_returns() {
    let a = Arc::new(Authorizer::from_dir(fixture()).unwrap());
    let root = ticket_agent(&a, SERVICE, &["read_ticket"], 3600);
    let leaves: Vec<String> = (0..4)
        .map(|_| {
            let mid = ticket_agent(&a, root.uid(), &["read_ticket"], 3600);
            ticket_agent(&a, mid.uid(), &["read_ticket"], 3600).uid().to_owned()
        })
        .collect();
    let revoked = Arc::new(AtomicBool::new(false));
    let late_allows = Arc::new(AtomicUsize::new(0));
    let late_decisions = Arc::new(AtomicUsize::new(0));
    let early_allows = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = leaves
        .into_iter()
        .map(|leaf| {
            let (a, revoked, late_allows, late_decisions, early_allows) = (
                Arc::clone(&a),
                Arc::clone(&revoked),
                Arc::clone(&late_allows),
                Arc::clone(&late_decisions),
                Arc::clone(&early_allows),
            );
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(10);
                while Instant::now() < deadline {
                    let started_after = revoked.load(Ordering::SeqCst);
                    let d = a.authorize(&read(&leaf)).unwrap();
                    if started_after {
                        late_decisions.fetch_add(1, Ordering::SeqCst);
                        if d.allowed() {
                            late_allows.fetch_add(1, Ordering::SeqCst);
                        }
                        if late_decisions.load(Ordering::SeqCst) > 2000 {
                            break;
                        }
                    } else if d.allowed() {
                        early_allows.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    while early_allows.load(Ordering::SeqCst) < 200 {
        std::thread::yield_now();
    }
    assert_eq!(a.revoke(root.uid()).unwrap(), 9);
    revoked.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    assert!(late_decisions.load(Ordering::SeqCst) > 0);
    assert_eq!(late_allows.load(Ordering::SeqCst), 0, "a decision started after revoke returned allowed");
}

#[test]
fn reload_under_load_never_fails_a_decision_and_keeps_the_last_good() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/helpdesk");
    let base = std::fs::read_to_string(dir.join("tickets.cedar")).unwrap();
    let a = Arc::new(Authorizer::from_dir(&dir).unwrap());
    let valid = Arc::new(std::sync::Mutex::new(vec![a.policy_version()]));
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (a, stop) = (Arc::clone(&a), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut versions = std::collections::HashSet::new();
                let mut n = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let d = a.authorize(&Request::new(r#"Helpdesk::User::"alice""#, "read_ticket", TICKET)).unwrap();
                    versions.insert(d.policy_version().to_owned());
                    n += 1;
                }
                (n, versions)
            })
        })
        .collect();
    let mut generation = a.generation();
    for i in 0..300 {
        let before = a.policy_version();
        if i % 3 == 2 {
            let e = a.replace_policies("permit(principal, action resource);").unwrap_err();
            assert_eq!(e.code(), "AMBIT_RELOAD");
            assert_eq!(a.policy_version(), before, "a failed reload keeps the last good policies");
        } else {
            let text = format!("{base}\n@id(\"extra-{i}\") permit(principal is Helpdesk::User, action == Helpdesk::Action::\"read_ticket\", resource) when {{ resource.status == \"open\" && {i} >= 0 }};");
            let outcome = a.replace_policies(&text).unwrap();
            assert!(outcome.generation > generation, "generation only grows");
            generation = outcome.generation;
            valid.lock().unwrap().push(outcome.version);
        }
    }
    stop.store(true, Ordering::SeqCst);
    let valid = valid.lock().unwrap();
    for r in readers {
        let (n, versions) = r.join().unwrap();
        assert!(n > 0);
        for v in versions {
            assert!(valid.contains(&v), "decided with a version that never loaded: {v}");
        }
    }
}

#[test]
fn a_failed_reload_reports_file_and_line() {
    let dir = std::env::temp_dir().join(format!("ambit-reload-{}", std::process::id()));
    copy_dir(&fixture(), &dir);
    let a = Authorizer::from_dir(&dir).unwrap();
    let version = a.policy_version();
    std::fs::write(dir.join("zz.cedar"), "\n\npermit(principal, action resource);").unwrap();
    let e = a.reload().unwrap_err();
    assert_eq!(e.code(), "AMBIT_RELOAD");
    assert_eq!(e.location().unwrap().line(), 3);
    assert!(e.location().unwrap().file().ends_with("zz.cedar"));
    assert_eq!(a.policy_version(), version);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn watch_picks_up_edits_and_survives_broken_ones() {
    let dir = std::env::temp_dir().join(format!("ambit-watch-{}", std::process::id()));
    copy_dir(&fixture(), &dir);
    let a = Arc::new(Authorizer::from_dir(&dir).unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let watcher = a
        .watch_with(
            Duration::from_millis(50),
            Some(Box::new(move |_| {
                seen.fetch_add(1, Ordering::SeqCst);
            })),
        )
        .unwrap();
    let agent = ticket_agent(&a, SERVICE, &["issue_refund"], 3600);
    let refund = Request::new(agent.uid(), "issue_refund", TICKET).with_context(json!({"amount": 120}));
    assert!(a.authorize(&refund).unwrap().allowed());
    let text = std::fs::read_to_string(dir.join("refunds.cedar")).unwrap().replace("> 500", "> 100");
    std::fs::write(dir.join("refunds.cedar"), text).unwrap();
    wait_for(|| !a.authorize(&refund).unwrap().allowed());
    assert_eq!(a.authorize(&refund).unwrap().deny_cause(), Some(DenyCause::Forbidden));
    let good = a.policy_version();
    std::fs::write(dir.join("broken.cedar"), "permit(principal, action resource);").unwrap();
    wait_for(|| watcher.status().failures > 0);
    let status = watcher.status();
    assert_eq!(status.last_error.as_ref().unwrap().0, "AMBIT_RELOAD");
    assert_eq!(a.policy_version(), good, "the broken edit did not replace the last good policies");
    assert!(!a.authorize(&refund).unwrap().allowed());
    assert!(calls.load(Ordering::SeqCst) >= 2);
    drop(watcher);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn wait_for(mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "condition not met in time");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
    }
}

const ACTIONS: [&str; 4] = ["read_ticket", "reply_ticket", "issue_refund", "close_ticket"];
const RESOURCES: [&str; 4] = [
    r#"Helpdesk::Tenant::"acme""#,
    r#"Helpdesk::Ticket::"4711""#,
    r#"Helpdesk::Ticket::"4712""#,
    r#"Helpdesk::Ticket::"9001""#,
];

/// Whether `uid` is `container` or under it in the fixture's entity hierarchy (read from the
/// fixture itself, so the test follows the data).
fn within(uid: &str, container: &str) -> bool {
    let text = std::fs::read_to_string(fixture().join("entities.json")).unwrap();
    let entities: Vec<Value> = serde_json::from_str(&text).unwrap();
    let name = |v: &Value| format!("{}::{}", v["type"].as_str().unwrap(), Value::from(v["id"].as_str().unwrap()));
    let mut todo = vec![uid.to_owned()];
    while let Some(u) = todo.pop() {
        if u == container {
            return true;
        }
        for e in entities.iter().filter(|e| name(&e["uid"]) == u) {
            todo.extend(e["parents"].as_array().unwrap().iter().map(name));
        }
    }
    false
}

const ROOTS: [&str; 3] = [SERVICE, r#"Helpdesk::User::"alice""#, r#"Helpdesk::User::"bob""#];

/// Every request the property checks: each identity × action × two tickets (one per tenant).
fn requests(identities: &[String]) -> Vec<Request> {
    let mut out = Vec::new();
    for who in identities {
        for act in ACTIONS {
            for res in [r#"Helpdesk::Ticket::"4711""#, r#"Helpdesk::Ticket::"9001""#] {
                let r = Request::new(who, act, res);
                out.push(if act == "issue_refund" { r.with_context(json!({"amount": 100})) } else { r });
            }
        }
    }
    out
}

type Outcome = (bool, Option<DenyCause>, Vec<String>);

fn outcomes(a: &Authorizer, requests: &[Request]) -> Vec<Outcome> {
    requests
        .iter()
        .map(|r| {
            let d = a.authorize(r).unwrap();
            (d.allowed(), d.deny_cause(), d.reasons().to_vec())
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Revoking or expiring an identity denies exactly the requests whose chain passes through
    /// it and leaves every other decision as it was; reinstating a person or service restores
    /// exactly the previous decisions, reasons included.
    #[test]
    fn revocation_and_expiry_cut_off_exactly_the_subtree_and_reinstating_restores_it(
        tree in prop::collection::vec((0usize..16, prop::collection::vec(0usize..4, 1..4), 1u64..2000), 1..10),
        root_pick in 0usize..3,
        agent_pick in 0usize..16,
        advance in 0u64..2500,
    ) {
        let clock = ManualClock::new(NOW);
        let a = Authorizer::builder().dir(fixture()).clock(Arc::new(clock.clone())).build().unwrap();
        let mut agents: Vec<ambit::Agent> = Vec::new();
        for (parent_pick, scopes, ttl) in tree {
            let parent = match parent_pick % (ROOTS.len() + agents.len()) {
                i if i < ROOTS.len() => ROOTS[i].to_owned(),
                i => agents[i - ROOTS.len()].uid().to_owned(),
            };
            let spec = AgentSpec::new(&parent, "p", ttl).scopes(scopes.iter().map(|i| ACTIONS[*i])).attributes(acme());
            if let Ok(agent) = a.mint_agent(&spec) {
                agents.push(agent);
            }
        }
        let identities: Vec<String> = ROOTS.iter().map(|r| (*r).to_owned()).chain(agents.iter().map(|g| g.uid().to_owned())).collect();
        let chain_of = |who: &str| agents.iter().find(|g| g.uid() == who).map_or_else(|| vec![who.to_owned()], |g| g.chain().to_vec());
        let reqs = requests(&identities);
        let baseline = outcomes(&a, &reqs);
        let check_cut = |now: &[Outcome], cut: &dyn Fn(&[String]) -> bool, causes: &[DenyCause]| -> Result<(), TestCaseError> {
            for ((r, before), after) in reqs.iter().zip(&baseline).zip(now) {
                if cut(&chain_of(r.principal())) {
                    prop_assert!(!after.0, "{} still allowed", r.principal());
                    prop_assert!(causes.contains(&after.1.unwrap()), "cause {:?}", after.1);
                } else {
                    prop_assert_eq!(before, after, "{} changed", r.principal());
                }
            }
            Ok(())
        };

        // a person or service: revoke, then reinstate
        let root = ROOTS[root_pick];
        a.revoke(root).unwrap();
        check_cut(&outcomes(&a, &reqs), &|chain| chain.iter().any(|c| c == root), &[DenyCause::Revoked])?;
        prop_assert!(a.reinstate(root).unwrap());
        prop_assert_eq!(&outcomes(&a, &reqs), &baseline, "reinstating did not restore the previous decisions");

        // an agent: revoke (final)
        if !agents.is_empty() {
            let gone = agents[agent_pick % agents.len()].uid().to_owned();
            a.revoke(&gone).unwrap();
            check_cut(&outcomes(&a, &reqs), &|chain| chain.contains(&gone), &[DenyCause::Revoked])?;

            // time passes: anything on an expired chain is cut off too
            clock.advance(advance);
            let now = NOW + advance;
            let expired = |chain: &[String]| chain.iter().any(|c| agents.iter().any(|g| g.uid() == c && g.expires_at() <= now));
            check_cut(&outcomes(&a, &reqs), &|chain| chain.contains(&gone) || expired(chain), &[DenyCause::Revoked, DenyCause::Expired])?;
        }
    }

    /// Whatever is asked for, a minted child is never wider than its parent.
    #[test]
    fn children_are_never_wider_than_parents(
        steps in prop::collection::vec((0usize..16, prop::collection::vec(0usize..4, 0..4), prop::collection::vec(0usize..4, 0..3), 1u64..2000), 1..24),
    ) {
        let clock = ManualClock::new(NOW);
        let a = Authorizer::builder().dir(fixture()).clock(Arc::new(clock)).build().unwrap();
        let mut minted: Vec<ambit::Agent> = Vec::new();
        for (parent_pick, scopes, resources, ttl) in steps {
            let parent = if minted.is_empty() || parent_pick % 4 == 0 { SERVICE.to_owned() } else { minted[parent_pick % minted.len()].uid().to_owned() };
            let spec = AgentSpec::new(&parent, "p", ttl)
                .scopes(scopes.iter().map(|i| ACTIONS[*i]))
                .resources(resources.iter().map(|i| RESOURCES[*i]));
            let Ok(child) = a.mint_agent(&spec) else { continue };
            if let Some(p) = minted.iter().find(|m| m.uid() == parent) {
                prop_assert!(child.scopes().iter().all(|s| p.scopes().contains(s)));
                prop_assert!(child.expires_at() <= p.expires_at());
                prop_assert_eq!(child.depth(), p.depth() + 1);
                if !p.resources().is_empty() {
                    prop_assert!(!child.resources().is_empty());
                    for r in child.resources() {
                        let inside = p.resources().iter().any(|x| within(r, x));
                        prop_assert!(inside, "{} outside {:?}", r, p.resources());
                    }
                }
                // and the chain can never do more than the parent: every action the child may
                // use on any resource, the parent may too
                for act in ACTIONS {
                    for res in &RESOURCES[1..] {
                        let ctx = json!({"amount": 1});
                        let req = |who: &str| { let r = Request::new(who, act, *res); if act == "issue_refund" { r.with_context(ctx.clone()) } else { r } };
                        if a.authorize(&req(child.uid())).unwrap().allowed() {
                            prop_assert!(a.authorize(&req(p.uid())).unwrap().allowed());
                        }
                    }
                }
            } else {
                prop_assert_eq!(child.depth(), 1);
            }
            minted.push(child);
        }
    }
}

/// `precheck` is the identity half of a decision: it agrees with `authorize` on every chain
/// cause, never needs the context, decides nothing about the policies and audits nothing.
#[test]
fn precheck_gives_the_chain_causes_without_the_context() {
    let clock = ManualClock::new(NOW);
    let a = authz(&clock);
    let agent = ticket_agent(&a, SERVICE, &["issue_refund"], 100);
    let refund = Request::new(agent.uid(), "issue_refund", TICKET); // no context: `amount` is required
    assert_eq!(a.precheck(&refund).unwrap(), None, "in scope and live: the policies decide");
    assert_eq!(a.authorize(&refund).unwrap_err().code(), "AMBIT_INVALID_REQUEST", "a decision needs the context");
    let close = Request::new(agent.uid(), "close_ticket", TICKET);
    assert_eq!(a.precheck(&close).unwrap(), Some(DenyCause::OutOfScope));
    assert_eq!(a.authorize(&close).unwrap().deny_cause(), Some(DenyCause::OutOfScope));
    // a static principal is never ruled out by the identity checks: only the policies decide
    assert_eq!(a.precheck(&Request::new(r#"Helpdesk::User::"mallory""#, "close_ticket", TICKET)).unwrap(), None);
    let ghost = Request::new(r#"Helpdesk::Agent::"ghost""#, "issue_refund", TICKET);
    assert_eq!(a.precheck(&ghost).unwrap(), Some(DenyCause::UnknownPrincipal));
    let child = ticket_agent(&a, agent.uid(), &["issue_refund"], 100);
    clock.advance(101);
    assert_eq!(a.precheck(&Request::new(child.uid(), "issue_refund", TICKET)).unwrap(), Some(DenyCause::Expired));
    let fresh = ticket_agent(&a, SERVICE, &["issue_refund"], 100);
    a.revoke(SERVICE).unwrap();
    assert_eq!(a.precheck(&Request::new(fresh.uid(), "issue_refund", TICKET)).unwrap(), Some(DenyCause::Revoked));
    // malformed input is an error, as for authorize
    assert_eq!(
        a.precheck(&Request::new("not a uid", "issue_refund", TICKET)).unwrap_err().code(),
        "AMBIT_INVALID_REQUEST"
    );
    assert_eq!(a.precheck(&Request::new(fresh.uid(), "fly", TICKET)).unwrap_err().code(), "AMBIT_INVALID_REQUEST");
}

/// The reserved agent attribute names (`owner`, `task`, `scopes`, `depth`, ...) are the agent
/// type's only: other entity types may have attributes of the same names, with their own
/// values and types, and policies read them as the application wrote them.
#[test]
fn reserved_agent_attribute_names_do_not_collide_with_other_types() {
    let a = Authorizer::builder()
        .schema_str(
            "
            entity Team = { owner: String, scopes: Set<Long> };
            entity User in [Team] = { owner: String, task: String, depth: Long };
            entity Agent in [User, Agent] = {
              owner: String, task: String, scopes: Set<String>,
              depth: Long, created_at: Long, expires_at: Long,
            };
            entity Doc = { owner: String };
            action read appliesTo { principal: [User, Agent], resource: Doc, context: {} };
            ",
        )
        .policies_str(
            r#"
            @id("owners") permit(principal is User, action == Action::"read", resource)
              when { resource.owner == principal.owner && principal.depth == 7 && principal in Team::"t" };
            @id("agents-of-owners") permit(principal is Agent, action == Action::"read", resource)
              when { principal.owner == "User::\"alice\"" && principal.depth == 1 };
            "#,
        )
        .entities_json(
            json!([
                {"uid": {"type": "Team", "id": "t"}, "attrs": {"owner": "ops", "scopes": [1, 2]}, "parents": []},
                {"uid": {"type": "User", "id": "alice"}, "attrs": {"owner": "alice", "task": "audit", "depth": 7},
                 "parents": [{"type": "Team", "id": "t"}]},
                {"uid": {"type": "Doc", "id": "d"}, "attrs": {"owner": "alice"}, "parents": []},
            ])
            .to_string(),
        )
        .build()
        .unwrap();
    let alice = Request::new(r#"User::"alice""#, "read", r#"Doc::"d""#);
    let d = a.authorize(&alice).unwrap();
    assert!(d.allowed(), "{d:?}");
    assert_eq!(d.reasons(), ["owners"]);
    let agent = a.mint_agent(&AgentSpec::new(r#"User::"alice""#, "summarise", 60).scopes(["read"])).unwrap();
    let d = a.authorize(&Request::new(agent.uid(), "read", r#"Doc::"d""#)).unwrap();
    assert!(d.allowed(), "{d:?}");
    assert_eq!(
        d.reasons(),
        ["owners", "agents-of-owners"],
        "alice's own owner/depth for her hop, the agent's for its hop"
    );
    // an application attribute of the agent type may still not take a reserved name
    let err = a
        .mint_agent(
            &AgentSpec::new(r#"User::"alice""#, "t", 60).attributes(json!({"owner": "x"}).as_object().unwrap().clone()),
        )
        .unwrap_err();
    assert_eq!(err.code(), "AMBIT_INVALID_DELEGATION");
}

/// An agent's entity, its ancestors closed, is built once per snapshot and shared by the
/// decisions under it: a reload that changes its root's groups changes what every agent under
/// that root is a member of, at the next decision, both ways.
#[test]
fn a_reload_that_changes_the_roots_groups_reaches_every_agent_under_it() {
    const SCHEMA: &str = r"
        entity Group; entity User in [Group]; entity Doc;
        entity Agent in [User, Agent] {
            owner: String, task: String, scopes: Set<String>, depth: Long, created_at: Long, expires_at: Long,
        };
        action read appliesTo { principal: [User, Agent], resource: Doc };
    ";
    let entities = |member: bool| {
        let parents = if member { json!([{"type": "Group", "id": "staff"}]) } else { json!([]) };
        json!([
            {"uid": {"type": "Group", "id": "staff"}, "attrs": {}, "parents": []},
            {"uid": {"type": "User", "id": "u"}, "attrs": {}, "parents": parents},
            {"uid": {"type": "Doc", "id": "d"}, "attrs": {}, "parents": []},
        ])
        .to_string()
    };
    let clock = ManualClock::new(NOW);
    let a = Authorizer::builder()
        .schema_str(SCHEMA)
        .policies_str(r#"permit(principal in Group::"staff", action == Action::"read", resource);"#)
        .entities_json(entities(false))
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let first = a.mint_agent(&AgentSpec::new(r#"User::"u""#, "t", 600).scopes(["read"])).unwrap();
    let second = a.mint_agent(&AgentSpec::new(first.uid(), "t", 600).scopes(["read"])).unwrap();
    let allowed = |who: &str| a.authorize(&Request::new(who, "read", r#"Doc::"d""#)).unwrap().allowed();
    for round in 0..3 {
        let member = round % 2 == 1;
        // twice under each snapshot: the second decision reads the entity the first built
        for _ in 0..2 {
            assert_eq!(allowed(first.uid()), member, "1 agent, round {round}");
            assert_eq!(allowed(second.uid()), member, "2 agents, round {round}");
        }
        a.replace_entities(&entities(!member)).unwrap();
    }
}

/// A reload validates only the policies it changes when the schema is the same, and every
/// policy when the schema changes: an unchanged policy the new schema makes invalid is refused
/// (and the last good policies keep deciding), as is a changed one under the same schema.
#[test]
fn a_reload_validates_what_changed_and_everything_when_the_schema_changes() {
    let dir = std::env::temp_dir().join(format!("ambit-revalidate-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let schema = |level: &str| {
        format!("entity User = {{ level: {level} }}; entity Doc; action read appliesTo {{ principal: User, resource: Doc }};")
    };
    // the second policy has no @id: its id comes from its file and position, reused or not
    let keep = r#"@id("keep") permit(principal, action == Action::"read", resource) when { principal.level > 1 };
        forbid(principal, action, resource) when { principal.level > 9 };"#;
    let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
    write("s.cedarschema", &schema("Long"));
    write("a.cedar", keep);
    write("entities.json", r#"[{"uid": {"type": "User", "id": "u"}, "attrs": {"level": 2}, "parents": []}]"#);
    let a = Authorizer::builder().dir(&dir).build().unwrap();
    let read = || a.authorize(&Request::new(r#"User::"u""#, "read", r#"Doc::"d""#)).unwrap().allowed();
    assert!(read());
    // a new policy that does not validate, beside the unchanged one: refused, naming it
    write("b.cedar", r#"@id("bad") permit(principal, action, resource) when { principal.nope };"#);
    let e = a.reload().unwrap_err();
    assert_eq!(e.code(), "AMBIT_RELOAD", "{e}");
    assert!(e.to_string().contains("attribute"), "{e}");
    assert!(e.to_string().contains("`bad`") && !e.to_string().contains("`keep`"), "{e}");
    assert!(read(), "the last good policies still decide");
    // fixed: accepted
    write("b.cedar", r#"@id("fine") forbid(principal, action, resource) when { principal.level > 5 };"#);
    a.reload().unwrap();
    assert!(read());
    // what a reload reused (a.cedar's parse and validation, the schema, the entities) is what
    // a fresh build makes
    let fresh = Authorizer::builder().dir(&dir).build().unwrap();
    assert_eq!(a.policy_ids(), fresh.policy_ids());
    assert_eq!(a.policy_version(), fresh.policy_version());
    for who in [r#"User::"u""#, r#"User::"v""#] {
        let q = Request::new(who, "read", r#"Doc::"d""#);
        assert_eq!(a.authorize(&q).unwrap().allowed(), fresh.authorize(&q).unwrap().allowed());
    }
    // the schema changes under the unchanged policies: every one is validated again
    write("s.cedarschema", &schema("String"));
    write("entities.json", r#"[{"uid": {"type": "User", "id": "u"}, "attrs": {"level": "2"}, "parents": []}]"#);
    let e = a.reload().unwrap_err();
    assert_eq!(e.code(), "AMBIT_RELOAD", "{e}");
    assert!(e.to_string().contains("unexpected type"), "{e}");
    assert!(e.to_string().contains("`keep`") && e.to_string().contains("`fine`"), "{e}");
    assert!(read(), "the last good schema, policies and entities still decide");
    let _ = std::fs::remove_dir_all(&dir);
}
