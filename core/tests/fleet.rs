//! One registry across a fleet (issue 18), on a real Redis this test starts on a loopback
//! port in a temporary directory: mints reach other authorizers, revocations reach them within
//! the bound, a Redis killed mid-stream makes them deny `stale_state` and recover without
//! losing or repeating an event, a follower trimmed past resyncs from the checkpoint, and a feed
//! it cannot follow stops it, denying. (Multi-process runs are in the Python and Node suites.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests fail loudly")]
#![allow(clippy::many_single_char_names, reason = "members a, b, c, d of one fleet")]

use ambit::fleet::test_server::RedisServer as Redis;
use ambit::fleet::{Backend, FleetOptions, FleetSettings, Read, RedisBackend, StaleStatic};
use ambit::{AgentSpec, Authorizer, DenyCause, Request};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SERVICE: &str = r#"Helpdesk::Service::"helpdesk""#;
const TICKET: &str = r#"Helpdesk::Ticket::"4711""#;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/helpdesk")
}

fn options(redis: &Redis, stream: &str, staleness_ms: u64) -> FleetOptions {
    let mut o = FleetOptions::redis(redis.url());
    o.stream = Some(stream.to_owned());
    o.staleness_ms = Some(staleness_ms);
    o
}

fn member(o: &FleetOptions) -> Authorizer {
    Authorizer::builder().dir(fixture()).fleet(o).build().unwrap()
}

fn acme() -> serde_json::Map<String, serde_json::Value> {
    json!({"tenant": {"__entity": {"type": "Helpdesk::Tenant", "id": "acme"}}}).as_object().unwrap().clone()
}

fn spec() -> AgentSpec {
    AgentSpec::new(SERVICE, "ticket-4711", 900).scopes(["issue_refund"]).attributes(acme())
}

fn refund(a: &Authorizer, agent: &str) -> ambit::Decision {
    a.authorize(&Request::new(agent, "issue_refund", TICKET).with_context(json!({"amount": 100}))).unwrap()
}

/// Polls `f` until it holds, for up to `within`; how long it took.
fn eventually(within: Duration, what: &str, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < within, "not within {within:?}: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
    start.elapsed()
}

#[test]
fn a_mint_anywhere_is_decided_everywhere_and_a_revocation_reaches_every_member() {
    let redis = Redis::start();
    let o = options(&redis, "t1", 2_000);
    let (a, b, c) = (member(&o), member(&o), member(&o));
    let agent = a.mint_agent(&spec()).unwrap();
    // the writer observes its own write at once
    assert!(refund(&a, agent.uid()).allowed());
    eventually(Duration::from_secs(2), "b learns the mint", || refund(&b, agent.uid()).allowed());
    assert_eq!(b.agents(), a.agents(), "the same agent, with the same uid, times and scopes");
    let child =
        b.mint_agent(&AgentSpec::new(agent.uid(), "sub", 60).scopes(["issue_refund"]).attributes(acme())).unwrap();
    eventually(Duration::from_secs(2), "a and c learn the child", || {
        refund(&a, child.uid()).allowed() && refund(&c, child.uid()).allowed()
    });
    // revoking the root service from a third member cuts both off everywhere
    assert_eq!(c.revoke(SERVICE).unwrap(), 3, "the service and its two live agents");
    assert_eq!(refund(&c, child.uid()).deny_cause(), Some(DenyCause::Revoked));
    for m in [&a, &b] {
        eventually(Duration::from_millis(o.staleness_ms.unwrap()), "the revocation reaches every member", || {
            refund(m, child.uid()).deny_cause() == Some(DenyCause::Revoked)
                && refund(m, agent.uid()).deny_cause() == Some(DenyCause::Revoked)
        });
    }
    // and reinstating travels too
    assert!(a.reinstate(SERVICE).unwrap());
    eventually(Duration::from_secs(2), "the reinstatement reaches c", || refund(&c, agent.uid()).allowed());
    // a newcomer starts with the fleet's state
    let d = member(&o);
    assert_eq!(d.agents(), a.agents());
    assert!(refund(&d, child.uid()).allowed());
    let s = d.fleet_status().unwrap();
    assert_eq!((s.applied, s.stale, s.halted.as_deref()), (4, false, None), "{s:?}");
    // an agent revoked by uid stays revoked in every member, and a credential revoked by jti too
    b.revoke(agent.uid()).unwrap();
    eventually(Duration::from_secs(2), "the agent revocation reaches d", || {
        refund(&d, child.uid()).deny_cause() == Some(DenyCause::Revoked)
    });
    assert!(d.reinstate(agent.uid()).is_err(), "agent revocation is final, refused before it reaches the feed");
    assert_eq!(d.fleet_status().unwrap().applied, 5);
}

#[test]
fn purging_is_an_event_every_member_applies() {
    let redis = Redis::start();
    let o = options(&redis, "t8", 2_000);
    let clock = ambit::ManualClock::new(1_900_000_000);
    let member = || {
        Authorizer::builder().dir(fixture()).clock(Arc::new(clock.clone())).purge_grace(10).fleet(&o).build().unwrap()
    };
    let (a, b) = (member(), member());
    let short = a.mint_agent(&AgentSpec::new(SERVICE, "short", 5).scopes(["issue_refund"]).attributes(acme())).unwrap();
    let long = a.mint_agent(&AgentSpec::new(SERVICE, "long", 900).scopes(["issue_refund"]).attributes(acme())).unwrap();
    eventually(Duration::from_secs(2), "b has both", || b.agent_count() == 2);
    clock.advance(60);
    assert_eq!(b.purge_expired(), 1, "the short-lived agent, expired past the grace");
    eventually(Duration::from_secs(2), "a purges it too", || a.agent_count() == 1);
    assert_eq!(a.agents().iter().map(|x| x.uid().to_owned()).collect::<Vec<_>>(), [long.uid()]);
    assert_eq!(refund(&a, short.uid()).deny_cause(), Some(DenyCause::UnknownPrincipal));
    // the purge a mint runs on schedule travels too
    let brief = a.mint_agent(&AgentSpec::new(SERVICE, "brief", 5).scopes(["issue_refund"]).attributes(acme())).unwrap();
    eventually(Duration::from_secs(2), "b has the brief one", || b.agent_count() == 2);
    clock.advance(60);
    b.mint_agent(&spec()).unwrap();
    eventually(Duration::from_secs(2), "a purged the brief one on b's schedule", || {
        a.agent_count() == 2 && !a.agents().iter().any(|x| x.uid() == brief.uid())
    });
}

#[test]
fn a_write_redis_refuses_is_an_error_and_changes_nothing() {
    let mut redis = Redis::start();
    let o = options(&redis, "t2", 300);
    let a = member(&o);
    let agent = a.mint_agent(&spec()).unwrap();
    redis.kill();
    let before = a.agents();
    let e = a.mint_agent(&spec()).unwrap_err();
    assert_eq!(e.code(), "AMBIT_FLEET", "{e}");
    let e = a.revoke(agent.uid()).unwrap_err();
    assert_eq!(e.code(), "AMBIT_FLEET", "{e}");
    assert_eq!(a.revoke_credential("some-jti").unwrap_err().code(), "AMBIT_FLEET");
    assert_eq!(a.agents(), before, "nothing changed locally");
    // a bad spec is refused before anything is sent (the same error as without a fleet)
    assert_eq!(
        a.mint_agent(&AgentSpec::new(SERVICE, "t", 60).scopes(["no_such_action"])).unwrap_err().code(),
        "AMBIT_INVALID_DELEGATION"
    );
    // and a member cannot start without its feed
    let e = Authorizer::builder().dir(fixture()).fleet(&o).build().unwrap_err();
    assert_eq!(e.code(), "AMBIT_FLEET", "{e}");
}

#[test]
fn redis_killed_mid_stream_makes_members_deny_stale_state_and_they_recover_without_loss_or_repeat() {
    let mut redis = Redis::start();
    let mut o = options(&redis, "t3", 300);
    let a = member(&o);
    o.stale_static = Some(StaleStatic::Decide);
    let b = member(&o); // decides static principals while stale
    let agents: Vec<_> = (0..5).map(|_| a.mint_agent(&spec()).unwrap()).collect();
    eventually(Duration::from_secs(2), "b has all five", || b.agent_count() == 5);
    redis.kill();
    // past the bound, every decision about an agent denies stale_state (in both), static
    // principals deny in a (the default) and are decided in b
    let waited = eventually(Duration::from_secs(3), "a and b go stale", || {
        refund(&a, agents[0].uid()).deny_cause() == Some(DenyCause::StaleState)
            && refund(&b, agents[0].uid()).deny_cause() == Some(DenyCause::StaleState)
    });
    assert!(waited >= Duration::from_millis(150), "stale only past the bound, not at the first error: {waited:?}");
    assert!(a.fleet_status().unwrap().stale && a.fleet_status().unwrap().last_error.is_some());
    let static_decision = |m: &Authorizer| {
        m.authorize(&Request::new(SERVICE, "issue_refund", TICKET).with_context(json!({"amount": 100}))).unwrap()
    };
    assert_eq!(static_decision(&a).deny_cause(), Some(DenyCause::StaleState));
    assert_ne!(static_decision(&b).deny_cause(), Some(DenyCause::StaleState));
    assert_eq!(
        a.precheck(&Request::new(agents[0].uid(), "issue_refund", TICKET)).unwrap(),
        Some(DenyCause::StaleState)
    );
    let explained =
        a.explain(&Request::new(agents[0].uid(), "issue_refund", TICKET).with_context(json!({"amount": 1}))).unwrap();
    assert_eq!(explained.decision.deny_cause(), Some(DenyCause::StaleState));
    // Redis comes back with everything it acknowledged
    redis.spawn();
    eventually(Duration::from_secs(5), "a and b recover", || {
        refund(&a, agents[0].uid()).allowed() && refund(&b, agents[0].uid()).allowed()
    });
    a.revoke(agents[1].uid()).unwrap();
    let more = b.mint_agent(&spec()).unwrap();
    eventually(Duration::from_secs(2), "both see both writes", || {
        refund(&b, agents[1].uid()).deny_cause() == Some(DenyCause::Revoked) && refund(&a, more.uid()).allowed()
    });
    for m in [&a, &b] {
        let s = m.fleet_status().unwrap();
        // seven events, each applied exactly once
        assert_eq!((s.applied, s.events_applied, s.events_refused, s.resyncs), (7, 7, 0, 0), "{s:?}");
    }
    assert_eq!(a.agents(), b.agents());
}

/// A backend that can be cut off: a member that falls behind.
#[derive(Debug)]
struct Pausable {
    inner: RedisBackend,
    paused: Arc<AtomicBool>,
}

impl Backend for Pausable {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn append(&self, event: &str) -> ambit::Result<u64> {
        self.inner.append(event)
    }
    fn read(&self, after: u64, wait: Duration) -> ambit::Result<Read> {
        if self.paused.load(Ordering::SeqCst) {
            std::thread::sleep(wait);
            return Err(ambit::Error::fleet("paused by the test"));
        }
        self.inner.read(after, wait)
    }
    fn head(&self) -> ambit::Result<u64> {
        self.inner.head()
    }
    fn save_checkpoint(&self, seq: u64, state: &str) -> ambit::Result<bool> {
        self.inner.save_checkpoint(seq, state)
    }
    fn load_checkpoint(&self) -> ambit::Result<Option<(u64, String)>> {
        self.inner.load_checkpoint()
    }
    fn trim_through(&self, seq: u64) -> ambit::Result<()> {
        self.inner.trim_through(seq)
    }
    fn claim_once(&self, key: &str, ttl_seconds: u64) -> ambit::Result<bool> {
        self.inner.claim_once(key, ttl_seconds)
    }
}

#[test]
fn a_member_trimmed_past_resyncs_from_the_checkpoint_and_converges() {
    let redis = Redis::start();
    let mut o = options(&redis, "t4", 400);
    o.checkpoint_every = Some(4);
    let a = member(&o);
    let paused = Arc::new(AtomicBool::new(false));
    let settings = FleetSettings { staleness: Duration::from_millis(400), ..FleetSettings::default() };
    let backend = Pausable {
        inner: RedisBackend::new(&redis.url(), "t4", Duration::from_secs(1)).unwrap(),
        paused: Arc::clone(&paused),
    };
    let b = Authorizer::builder().dir(fixture()).fleet_backend(Arc::new(backend), settings).build().unwrap();
    let first = a.mint_agent(&spec()).unwrap();
    eventually(Duration::from_secs(2), "b has the first", || b.agent_count() == 1);
    paused.store(true, Ordering::SeqCst);
    // while b is cut off: mints, a sub-agent, a revocation, and a's checkpoint at event 4
    // trims the feed past b
    let second = a.mint_agent(&spec()).unwrap();
    let sub =
        a.mint_agent(&AgentSpec::new(second.uid(), "sub", 60).scopes(["issue_refund"]).attributes(acme())).unwrap();
    a.revoke(first.uid()).unwrap();
    let last = a.mint_agent(&spec()).unwrap();
    let len = redis.cmd(&["XLEN", "t4"]);
    assert_eq!(len, redis::Value::Int(1), "the checkpoint at event 4 trimmed the feed to event 5");
    eventually(Duration::from_secs(2), "b goes stale while cut off", || {
        refund(&b, first.uid()).deny_cause() == Some(DenyCause::StaleState)
    });
    paused.store(false, Ordering::SeqCst);
    eventually(Duration::from_secs(3), "b converges", || {
        refund(&b, sub.uid()).allowed() && refund(&b, last.uid()).allowed()
    });
    assert_eq!(refund(&b, first.uid()).deny_cause(), Some(DenyCause::Revoked));
    assert_eq!(b.agents(), a.agents());
    let s = b.fleet_status().unwrap();
    assert_eq!((s.applied, s.resyncs), (5, 1), "{s:?}");
    // a newcomer restores the checkpoint and replays what follows it
    let c = member(&o);
    assert_eq!(c.agents(), a.agents());
    assert_eq!(c.fleet_checkpoint().unwrap(), 5);
    assert_eq!(redis.cmd(&["XLEN", "t4"]), redis::Value::Int(0));
}

#[test]
fn a_feed_a_member_cannot_follow_stops_it_denying() {
    let redis = Redis::start();
    let o = options(&redis, "t5", 2_000);
    let a = member(&o);
    let agent = a.mint_agent(&spec()).unwrap();
    // an event of a newer version, then one that is not JSON: a stops following rather than
    // skip what might be a revocation
    redis.cmd(&[
        "EVAL",
        "local s = redis.call('INCR', KEYS[2]); redis.call('XADD', KEYS[1], s .. '-1', 'e', ARGV[1]); return s",
        "2",
        "t5",
        "t5:seq",
        r#"{"v":2,"origin":"x","op":"revoke_everything"}"#,
    ]);
    eventually(Duration::from_secs(2), "a halts", || a.fleet_status().unwrap().halted.is_some());
    assert_eq!(refund(&a, agent.uid()).deny_cause(), Some(DenyCause::StaleState));
    let s = a.fleet_status().unwrap();
    assert!(s.halted.as_deref().unwrap().contains("version 2"), "{s:?}");
    assert_eq!(a.mint_agent(&spec()).unwrap_err().code(), "AMBIT_FLEET");
    // a newcomer refuses to start on it
    assert_eq!(Authorizer::builder().dir(fixture()).fleet(&o).build().unwrap_err().code(), "AMBIT_FLEET");
    let o6 = options(&redis, "t6", 2_000);
    let b = member(&o6);
    redis.cmd(&[
        "EVAL",
        "local s = redis.call('INCR', KEYS[2]); redis.call('XADD', KEYS[1], s .. '-1', 'e', ARGV[1]); return s",
        "2",
        "t6",
        "t6:seq",
        "not json",
    ]);
    eventually(Duration::from_secs(2), "b halts on garbage", || b.fleet_status().unwrap().halted.is_some());
}

#[test]
fn a_redis_that_lost_acknowledged_events_is_not_followed() {
    let mut redis = Redis::start_with(false);
    let o = options(&redis, "t7", 300);
    let a = member(&o);
    let agent = a.mint_agent(&spec()).unwrap();
    a.revoke(agent.uid()).unwrap();
    redis.kill();
    redis.spawn(); // empty: no persistence
    let _ = a.mint_agent(&spec()); // event 1 again, for another agent
    eventually(Duration::from_secs(3), "a halts on a feed behind it", || {
        a.fleet_status().unwrap().halted.as_deref().is_some_and(|h| h.contains("lost"))
    });
    assert_eq!(refund(&a, agent.uid()).deny_cause(), Some(DenyCause::StaleState));
}

#[test]
fn fleet_options_are_checked_before_anything_connects() {
    for bad in [
        json!({"fleet": {"redis_url": "http://127.0.0.1:1"}}),
        json!({"fleet": {"redis_url": "redis://127.0.0.1:1", "staleness_ms": 0}}),
        json!({"fleet": {"redis_url": "redis://127.0.0.1:1", "stale_static": "allow"}}),
        json!({"fleet": {"redis_url": "redis://127.0.0.1:1", "checkpoint_every": 0}}),
        json!({"fleet": {"redis_url": "redis://127.0.0.1:1", "stream": ""}}),
        json!({"fleet": {"redis_url": "redis://127.0.0.1:1", "redisUrl": "x"}}),
        json!({"fleet": {}}),
    ] {
        let e = ambit::wire::AuthorizerOptions::from_json(&bad)
            .and_then(|o| o.apply(Authorizer::builder().dir(fixture()), None))
            .and_then(ambit::AuthorizerBuilder::build)
            .unwrap_err();
        assert_eq!(e.code(), "AMBIT_CONFIG", "{bad}: {e}");
    }
}

#[test]
fn a_dpop_proof_works_once_across_the_fleet_and_not_at_all_without_redis() {
    let mut redis = Redis::start();
    let o = options(&redis, "t9", 2_000);
    let idp = ambit::IssuerKey::generate_with("https://idp.example", "k1", ambit::Algorithm::ES256).unwrap();
    let holder = ambit::IssuerKey::generate("holder", "h").unwrap();
    let issuer: ambit::wire::OAuthIssuerOptions = serde_json::from_value(json!({
        "issuer": "https://idp.example", "audience": "https://helpdesk.example/api", "jwks": idp.public_jwks(),
        "principal_type": "Helpdesk::User", "actor_type": "Helpdesk::Service"
    }))
    .unwrap();
    let member = || Authorizer::builder().dir(fixture()).fleet(&o).oauth_issuer(issuer.clone()).build().unwrap();
    let (a, b) = (member(), member());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let token = idp
        .sign_jwt(&json!({"iss": "https://idp.example", "aud": "https://helpdesk.example/api", "sub": "alice",
                          "exp": now + 600, "act": {"sub": "helpdesk"}, "cnf": {"jkt": holder.thumbprint()}}))
        .unwrap();
    let url = "https://helpdesk.example/api/refunds";
    let refund = |m: &Authorizer, proof: &ambit::DpopProof| {
        m.authorize_token(&token, "issue_refund", TICKET, json!({"amount": 100}), Some(proof)).unwrap()
    };
    let proof = || ambit::DpopProof::new(holder.dpop_proof("POST", url, &token, None, None).unwrap(), "POST", url);
    let p = proof();
    assert!(refund(&a, &p).allowed());
    assert_eq!(refund(&b, &p).deny_cause(), Some(DenyCause::Replayed), "another member saw it used");
    assert_eq!(refund(&a, &p).deny_cause(), Some(DenyCause::Replayed));
    // the same fresh proof at two members at once: accepted once
    let q = proof();
    let (x, y) = std::thread::scope(|s| {
        let x = s.spawn(|| refund(&a, &q).allowed());
        let y = s.spawn(|| refund(&b, &q).allowed());
        (x.join().unwrap(), y.join().unwrap())
    });
    assert!(x ^ y, "exactly one member accepts a proof raced to both: {x} {y}");
    // without Redis the fleet cannot say whether a proof is new: refused, not let through
    redis.kill();
    let r = refund(&b, &proof());
    assert_eq!(r.deny_cause(), Some(DenyCause::DpopInvalid), "{r:?}");
}
