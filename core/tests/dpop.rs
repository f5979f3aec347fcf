//! DPoP (RFC 9449, issue 17): a token or credential bound to a key (`cnf.jkt`) is good only
//! with a proof by that key for this call, once. Every proof that is missing, forged,
//! confused, stale, for another call or token, without the server's nonce, or replayed is a
//! deny with its cause (`dpop_required`, `dpop_invalid`, `replayed`), never an error.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests fail loudly")]

use ambit::wire::OAuthIssuerOptions;
use ambit::{AgentSpec, Algorithm, Authorizer, DenyCause, DpopOptions, DpopProof, IssuerKey, ManualClock};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const NOW: u64 = 1_800_000_000;
const IDP: &str = "https://idp.example";
const API: &str = "https://helpdesk.example/api";
const TICKET: &str = r#"Helpdesk::Ticket::"4711""#;
const URL: &str = "https://helpdesk.example/api/refunds";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/helpdesk")
}

fn issuer_options(key: &IssuerKey) -> OAuthIssuerOptions {
    serde_json::from_value(json!({
        "issuer": IDP, "audience": API, "jwks": key.public_jwks(),
        "principal_type": "Helpdesk::User", "actor_type": "Helpdesk::Service"
    }))
    .unwrap()
}

struct World {
    authz: Authorizer,
    clock: ManualClock,
    idp: IssuerKey,
    holder: IssuerKey,
}

fn world_with(dpop: DpopOptions) -> World {
    let idp = IssuerKey::generate_with(IDP, "k1", Algorithm::ES256).unwrap();
    let holder = IssuerKey::generate_with("holder", "h", Algorithm::ES256).unwrap();
    let clock = ManualClock::new(NOW);
    let authz = Authorizer::builder()
        .dir(fixture())
        .clock(Arc::new(clock.clone()))
        .oauth_issuer(issuer_options(&idp))
        .dpop(dpop)
        .build()
        .unwrap();
    World { authz, clock, idp, holder }
}

fn world() -> World {
    world_with(DpopOptions::default())
}

impl World {
    /// A token bound to the holder's key.
    fn bound_token(&self) -> String {
        self.idp
            .sign_jwt(&json!({"iss": IDP, "aud": API, "sub": "alice", "iat": NOW - 10, "exp": NOW + 3600,
                              "act": {"sub": "helpdesk"}, "cnf": {"jkt": self.holder.thumbprint()}}))
            .unwrap()
    }

    fn proof(&self, token: &str) -> DpopProof {
        DpopProof::new(
            self.holder.dpop_proof("POST", URL, token, None, Some(self.clock.now_secs())).unwrap(),
            "POST",
            URL,
        )
    }

    fn refund(&self, token: &str, dpop: Option<&DpopProof>) -> ambit::Decision {
        self.authz.authorize_token(token, "issue_refund", TICKET, json!({"amount": 100}), dpop).unwrap()
    }
}

trait Now {
    fn now_secs(&self) -> u64;
}
impl Now for ManualClock {
    fn now_secs(&self) -> u64 {
        ambit::Clock::now(self)
    }
}

fn parts(proof: &str) -> (Value, Value) {
    let mut it = proof.split('.');
    let h = serde_json::from_slice(&B64.decode(it.next().unwrap()).unwrap()).unwrap();
    let c = serde_json::from_slice(&B64.decode(it.next().unwrap()).unwrap()).unwrap();
    (h, c)
}

/// The holder's proof for `token`, re-signed after `edit` changes its header and claims.
fn edited(w: &World, token: &str, edit: impl Fn(&mut Value, &mut Value)) -> DpopProof {
    let (mut h, mut c) = parts(&w.proof(token).proof);
    edit(&mut h, &mut c);
    DpopProof::new(w.holder.sign_jws(&h, &c).unwrap(), "POST", URL)
}

fn acme() -> serde_json::Map<String, Value> {
    json!({"tenant": {"__entity": {"type": "Helpdesk::Tenant", "id": "acme"}}}).as_object().unwrap().clone()
}

fn cause(d: &ambit::Decision) -> Option<&'static str> {
    d.deny_cause().map(DenyCause::code)
}

#[test]
fn a_bound_token_needs_a_proof_by_its_key_once() {
    let w = world();
    let token = w.bound_token();
    assert_eq!(cause(&w.refund(&token, None)), Some("dpop_required"));
    let proof = w.proof(&token);
    let ok = w.refund(&token, Some(&proof));
    assert!(ok.allowed(), "{ok:?}");
    assert_eq!(cause(&w.refund(&token, Some(&proof))), Some("replayed"), "the same proof twice");
    assert!(w.refund(&token, Some(&w.proof(&token))).allowed(), "a fresh proof works");
    // another key's proof: its thumbprint is not cnf.jkt
    let thief = IssuerKey::generate_with("thief", "t", Algorithm::ES256).unwrap();
    let stolen = DpopProof::new(thief.dpop_proof("POST", URL, &token, None, Some(NOW)).unwrap(), "POST", URL);
    assert_eq!(cause(&w.refund(&token, Some(&stolen))), Some("dpop_invalid"));
}

#[test]
fn a_proof_is_for_one_call_one_token_and_one_moment() {
    let w = world();
    let token = w.bound_token();
    let p = w.proof(&token).proof;
    let call = |method: &str, url: &str| DpopProof::new(p.clone(), method, url);
    // another method, another URL
    assert_eq!(cause(&w.refund(&token, Some(&call("GET", URL)))), Some("dpop_invalid"));
    assert_eq!(cause(&w.refund(&token, Some(&call("post", URL)))), Some("dpop_invalid"), "methods are exact");
    for other in [
        "https://helpdesk.example/api/refunds/1",
        "https://evil.example/api/refunds",
        "http://helpdesk.example/api/refunds",
        "https://helpdesk.example:8443/api/refunds",
        "not a url",
    ] {
        assert_eq!(cause(&w.refund(&token, Some(&call("POST", other)))), Some("dpop_invalid"), "{other}");
    }
    // the same URL written otherwise (case, default port, query, fragment) is the same call
    assert!(w.refund(&token, Some(&call("POST", "https://HELPDESK.example:443/api/refunds?id=1#x"))).allowed());
    // the proof of another token
    let other = w
        .idp
        .sign_jwt(&json!({"iss": IDP, "aud": API, "sub": "alice", "iat": NOW, "exp": NOW + 60,
                          "act": {"sub": "helpdesk"}, "cnf": {"jkt": w.holder.thumbprint()}}))
        .unwrap();
    assert!(w.refund(&other, Some(&w.proof(&other))).allowed(), "its own proof");
    assert_eq!(cause(&w.refund(&token, Some(&w.proof(&other)))), Some("dpop_invalid"), "another token's proof");
    // without ath, with a wrong ath
    let no_ath = edited(&w, &token, |_, c| {
        c.as_object_mut().unwrap().remove("ath");
    });
    assert_eq!(cause(&w.refund(&token, Some(&no_ath))), Some("dpop_invalid"));
    let wrong_ath = edited(&w, &token, |_, c| c["ath"] = json!(B64.encode([0u8; 32])));
    assert_eq!(cause(&w.refund(&token, Some(&wrong_ath))), Some("dpop_invalid"));
    // too old, from the future; at the edges of the window it still holds
    let at = |iat: u64| edited(&w, &token, move |_, c| c["iat"] = json!(iat));
    assert_eq!(cause(&w.refund(&token, Some(&at(NOW - 61)))), Some("dpop_invalid"));
    assert_eq!(cause(&w.refund(&token, Some(&at(NOW + 6)))), Some("dpop_invalid"));
    assert!(w.refund(&token, Some(&at(NOW - 60))).allowed());
    assert!(w.refund(&token, Some(&at(NOW + 5))).allowed());
    let no_iat = edited(&w, &token, |_, c| c["iat"] = json!("now"));
    assert_eq!(cause(&w.refund(&token, Some(&no_iat))), Some("dpop_invalid"));
}

#[test]
fn forged_and_confused_proofs_are_dpop_invalid() {
    let w = world();
    let token = w.bound_token();
    let invalid = |p: &DpopProof| assert_eq!(cause(&w.refund(&token, Some(p))), Some("dpop_invalid"), "{p:?}");
    // the private key in the header
    invalid(&edited(&w, &token, |h, _| h["jwk"] = w.holder.private_jwk()));
    // another type, none, HMAC, an algorithm that is not the key's
    invalid(&edited(&w, &token, |h, _| h["typ"] = json!("JWT")));
    invalid(&edited(&w, &token, |h, _| {
        h.as_object_mut().unwrap().remove("typ");
    }));
    invalid(&edited(&w, &token, |h, _| h["alg"] = json!("EdDSA")));
    invalid(&edited(&w, &token, |h, _| {
        h.as_object_mut().unwrap().remove("jwk");
    }));
    invalid(&edited(&w, &token, |h, _| h["crit"] = json!(["exp"])));
    let (h, c) = parts(&w.proof(&token).proof);
    let mut none = h.clone();
    none["alg"] = json!("none");
    let unsigned = format!("{}.{}.", B64.encode(none.to_string()), B64.encode(c.to_string()));
    invalid(&DpopProof::new(unsigned, "POST", URL));
    let mut hs = h.clone();
    hs["alg"] = json!("HS256");
    invalid(&DpopProof::new(format!("{}.{}.c2ln", B64.encode(hs.to_string()), B64.encode(c.to_string())), "POST", URL));
    // a tampered claim under the old signature
    let good = w.proof(&token).proof;
    let mut tampered = c.clone();
    tampered["htu"] = json!("https://helpdesk.example/api/other");
    let sig = good.rsplit('.').next().unwrap();
    invalid(&DpopProof::new(
        format!("{}.{}.{sig}", B64.encode(h.to_string()), B64.encode(tampered.to_string())),
        "POST",
        URL,
    ));
    // garbage, oversized, empty jti, huge jti
    invalid(&DpopProof::new("garbage", "POST", URL));
    invalid(&DpopProof::new("a".repeat(9 * 1024), "POST", URL));
    invalid(&edited(&w, &token, |_, c| c["jti"] = json!("")));
    invalid(&edited(&w, &token, |_, c| c["jti"] = json!("j".repeat(300))));
    // none of these used up the real proof's jti: the genuine one still works
    assert!(w.refund(&token, Some(&DpopProof::new(good, "POST", URL))).allowed());
}

#[test]
fn nonces_requirements_and_unbound_tokens() {
    let w = world();
    let token = w.bound_token();
    let with_nonce =
        |n: Option<&str>| DpopProof::new(w.holder.dpop_proof("POST", URL, &token, n, Some(NOW)).unwrap(), "POST", URL);
    // the server's nonce: required once the call names one
    assert_eq!(cause(&w.refund(&token, Some(&with_nonce(None).with_nonce("n-1")))), Some("dpop_invalid"));
    assert_eq!(cause(&w.refund(&token, Some(&with_nonce(Some("n-0")).with_nonce("n-1")))), Some("dpop_invalid"));
    assert!(w.refund(&token, Some(&with_nonce(Some("n-1")).with_nonce("n-1"))).allowed());
    // a bearer token: no proof needed by default, but a proof for it is refused
    let bearer = w
        .idp
        .sign_jwt(
            &json!({"iss": IDP, "aud": API, "sub": "alice", "iat": NOW, "exp": NOW + 60, "act": {"sub": "helpdesk"}}),
        )
        .unwrap();
    assert!(w.refund(&bearer, None).allowed());
    assert_eq!(cause(&w.refund(&bearer, Some(&w.proof(&bearer)))), Some("dpop_invalid"));
    // a token bound some other way (mTLS) cannot be proven here
    let mtls = w
        .idp
        .sign_jwt(&json!({"iss": IDP, "aud": API, "sub": "alice", "iat": NOW, "exp": NOW + 60,
                          "act": {"sub": "helpdesk"}, "cnf": {"x5t#S256": "abc"}}))
        .unwrap();
    assert_eq!(cause(&w.refund(&mtls, None)), Some("invalid_token"));
    // required: every token needs a proof
    let strict = world_with(serde_json::from_value(json!({"required": true})).unwrap());
    let bearer = strict
        .idp
        .sign_jwt(
            &json!({"iss": IDP, "aud": API, "sub": "alice", "iat": NOW, "exp": NOW + 60, "act": {"sub": "helpdesk"}}),
        )
        .unwrap();
    assert_eq!(cause(&strict.refund(&bearer, None)), Some("dpop_required"));
    let token = strict.bound_token();
    assert!(strict.refund(&token, Some(&strict.proof(&token))).allowed());
}

#[test]
fn the_replay_memory_is_bounded_and_fails_closed() {
    let w = world_with(serde_json::from_value(json!({"replay_capacity": 2})).unwrap());
    let token = w.bound_token();
    assert!(w.refund(&token, Some(&w.proof(&token))).allowed());
    assert!(w.refund(&token, Some(&w.proof(&token))).allowed());
    // full of proofs still within their window: refused, not let through unremembered
    assert_eq!(cause(&w.refund(&token, Some(&w.proof(&token)))), Some("dpop_invalid"));
    // once they have aged out, room again
    w.clock.advance(61);
    assert!(w.refund(&token, Some(&w.proof(&token))).allowed());
    // a replayed proof is refused for as long as it could be accepted, then as too old
    let p = w.proof(&token);
    assert!(w.refund(&token, Some(&p)).allowed());
    assert_eq!(cause(&w.refund(&token, Some(&p))), Some("replayed"));
    w.clock.advance(61);
    assert_eq!(cause(&w.refund(&token, Some(&p))), Some("dpop_invalid"));
}

#[test]
fn dpop_bound_is_visible_to_policies() {
    let idp = IssuerKey::generate(IDP, "k1").unwrap();
    let holder = IssuerKey::generate("holder", "h").unwrap();
    let mut o = issuer_options(&idp);
    o.context_claims = Some(vec!["dpop_bound".into()]);
    o.principal_type = "App::User".into();
    o.actor_type = "App::Bot".into();
    let a = Authorizer::builder()
        .schema_str("namespace App { entity User; entity Bot; entity Doc; action read appliesTo { principal: [User, Bot], resource: Doc, context: { token: { dpop_bound: Bool } } }; }")
        .policies_str("permit (principal, action, resource) when { context.token.dpop_bound };")
        .clock(Arc::new(ManualClock::new(NOW)))
        .oauth_issuer(o)
        .build()
        .unwrap();
    // a bearer token that claims to be bound is not: the claim is ambit's, never the token's
    let bearer =
        idp.sign_jwt(&json!({"iss": IDP, "aud": API, "sub": "alice", "exp": NOW + 60, "dpop_bound": true})).unwrap();
    let d = a.authorize_token(&bearer, "read", r#"App::Doc::"d""#, json!({}), None).unwrap();
    assert_eq!(d.deny_cause(), Some(DenyCause::NoPermit), "{d:?}");
    let bound = idp
        .sign_jwt(
            &json!({"iss": IDP, "aud": API, "sub": "alice", "exp": NOW + 60, "cnf": {"jkt": holder.thumbprint()}}),
        )
        .unwrap();
    let proof = DpopProof::new(holder.dpop_proof("GET", URL, &bound, None, Some(NOW)).unwrap(), "GET", URL);
    assert!(a.authorize_token(&bound, "read", r#"App::Doc::"d""#, json!({}), Some(&proof)).unwrap().allowed());
}

#[test]
fn a_bound_credential_is_useless_without_its_holders_key() {
    let issuer = IssuerKey::generate("https://helpdesk.example", "i1").unwrap();
    let holder = IssuerKey::generate("holder", "h").unwrap();
    let clock = ManualClock::new(NOW);
    let build = || {
        Authorizer::builder()
            .dir(fixture())
            .clock(Arc::new(clock.clone()))
            .trust_issuer("https://helpdesk.example", &issuer.public_jwks().to_string())
            .build()
            .unwrap()
    };
    let (minter, verifier) = (build(), build());
    let agent = minter
        .mint_agent(
            &AgentSpec::new(r#"Helpdesk::User::"alice""#, "refunds", 600).scopes(["issue_refund"]).attributes(acme()),
        )
        .unwrap();
    assert_eq!(
        minter.issue_credential(agent.uid(), &issuer, Some("not a thumbprint")).unwrap_err().code(),
        "AMBIT_INVALID_REQUEST"
    );
    let cred = minter.issue_credential(agent.uid(), &issuer, Some(&holder.thumbprint())).unwrap();
    let refund = |cred: &str, proof: Option<&DpopProof>| {
        verifier.authorize_credential(cred, "issue_refund", TICKET, json!({"amount": 100}), proof).unwrap()
    };
    let proof = |cred: &str, key: &IssuerKey| {
        DpopProof::new(key.dpop_proof("POST", URL, cred, None, Some(NOW)).unwrap(), "POST", URL)
    };
    assert_eq!(cause(&refund(&cred, None)), Some("dpop_required"));
    let p = proof(&cred, &holder);
    let d = refund(&cred, Some(&p));
    assert!(d.allowed(), "{d:?}");
    // verified once and remembered by its hash: the binding still holds on the fast path
    assert_eq!(cause(&refund(&cred, None)), Some("dpop_required"));
    assert_eq!(cause(&refund(&cred, Some(&p))), Some("replayed"));
    let thief = IssuerKey::generate("thief", "t").unwrap();
    assert_eq!(cause(&refund(&cred, Some(&proof(&cred, &thief)))), Some("dpop_invalid"));
    // a narrower credential derived from it stays bound to the same key
    let child = verifier
        .attenuate(&cred, &AgentSpec::new("", "one refund", 60).scopes(["issue_refund"]).attributes(acme()), &issuer)
        .unwrap();
    assert_eq!(cause(&refund(&child, None)), Some("dpop_required"));
    assert!(refund(&child, Some(&proof(&child, &holder))).allowed());
    // an unbound credential needs no proof, and a proof with it is refused
    let plain = minter.issue_credential(agent.uid(), &issuer, None).unwrap();
    assert!(refund(&plain, None).allowed());
    assert_eq!(cause(&refund(&plain, Some(&proof(&plain, &holder)))), Some("dpop_invalid"));
    // an unknown claim is refused, not ignored (it might be one that restricts)
    let (h, mut c) = parts(&plain);
    c["cnf2"] = json!({"jkt": holder.thumbprint()});
    let odd = issuer.sign_jws(&h, &c).unwrap();
    assert_eq!(cause(&refund(&odd, None)), Some("invalid_token"));
}

#[test]
fn thumbprints_are_rfc_7638() {
    // only the key types ambit verifies
    let jwk = json!({"kty": "RSA", "e": "AQAB", "n": "x"});
    assert_eq!(ambit::dpop::jwk_thumbprint(&jwk).unwrap_err().code(), "AMBIT_CONFIG");
    // RFC 8037 appendix A.3: the Ed25519 example key's thumbprint
    let ed = json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
    assert_eq!(ambit::dpop::jwk_thumbprint(&ed).unwrap(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    let key = IssuerKey::generate_with("x", "k", Algorithm::ES256).unwrap();
    let public = key.public_jwks()["keys"][0].to_string();
    assert_eq!(ambit::dpop::jwk_thumbprint(&Value::String(public.clone())).unwrap(), key.thumbprint());
    assert_eq!(ambit::dpop::jwk_thumbprint(&key.private_jwk()).unwrap_err().code(), "AMBIT_CONFIG");
}

#[test]
fn dpop_options_are_checked_at_build() {
    let bad = |v: Value| {
        ambit::wire::AuthorizerOptions::from_json(&json!({"dpop": v}))
            .and_then(|o| o.apply(Authorizer::builder().dir(fixture()), None))
            .and_then(ambit::AuthorizerBuilder::build)
            .map(|_| ())
            .unwrap_err()
            .code()
    };
    assert_eq!(bad(json!({"algorithms": ["HS256"]})), "AMBIT_CONFIG");
    assert_eq!(bad(json!({"algorithms": []})), "AMBIT_CONFIG");
    assert_eq!(bad(json!({"replay_capacity": 0})), "AMBIT_CONFIG");
    assert_eq!(bad(json!({"max_age": 5})), "AMBIT_CONFIG");
}

#[test]
fn oauth_jwks_files_reload_and_a_bad_one_keeps_the_last_good_keys() {
    let dir = std::env::temp_dir().join(format!("ambit-oauth-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("idp.jwks.json");
    let old = IssuerKey::generate(IDP, "old").unwrap();
    let new = IssuerKey::generate(IDP, "new").unwrap();
    std::fs::write(&file, old.public_jwks().to_string()).unwrap();
    let mut o = issuer_options(&old);
    o.jwks = None;
    o.file = Some(file.clone());
    let a =
        Authorizer::builder().dir(fixture()).clock(Arc::new(ManualClock::new(NOW))).oauth_issuer(o).build().unwrap();
    assert!(a.source_paths().contains(&file), "the JWKS file is watched");
    let claims = json!({"iss": IDP, "aud": API, "sub": "alice", "exp": NOW + 60, "act": {"sub": "helpdesk"}});
    let refund = |t: &str| a.authorize_token(t, "issue_refund", TICKET, json!({"amount": 100}), None).unwrap();
    let (t_old, t_new) = (old.sign_jwt(&claims).unwrap(), new.sign_jwt(&claims).unwrap());
    assert!(refund(&t_old).allowed());
    assert_eq!(cause(&refund(&t_new)), Some("untrusted_issuer"));
    std::fs::write(&file, new.public_jwks().to_string()).unwrap();
    a.reload().unwrap();
    assert_eq!(cause(&refund(&t_old)), Some("untrusted_issuer"), "rotated out");
    assert!(refund(&t_new).allowed());
    std::fs::write(&file, "{not json").unwrap();
    assert_eq!(a.reload().unwrap_err().code(), "AMBIT_RELOAD");
    assert!(refund(&t_new).allowed(), "a failed reload keeps the last good keys");
    std::fs::remove_dir_all(&dir).unwrap();
}
