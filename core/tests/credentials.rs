//! Signed agent credentials (issue 17): one authorizer mints and issues, another decides with
//! the credential alone, as if the agent were its own; every forged, tampered, widened,
//! expired, oversized or untrusted credential is a deny with its cause, never a panic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests fail loudly")]

use ambit::{AgentSpec, Authorizer, DenyCause, IssuerKey, ManualClock};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const NOW: u64 = 1_800_000_000;
const SERVICE: &str = r#"Helpdesk::Service::"helpdesk""#;
const TICKET: &str = r#"Helpdesk::Ticket::"4711""#;
const ISSUER: &str = "https://helpdesk.example";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/helpdesk")
}

fn acme() -> serde_json::Map<String, Value> {
    json!({"tenant": {"__entity": {"type": "Helpdesk::Tenant", "id": "acme"}}}).as_object().unwrap().clone()
}

struct World {
    clock: ManualClock,
    key: IssuerKey,
    issuer: Authorizer,
    verifier: Authorizer,
}

fn world_with(depth: u32) -> World {
    let clock = ManualClock::new(NOW);
    let key = IssuerKey::generate(ISSUER, "k1").unwrap();
    let issuer = Authorizer::builder().dir(fixture()).clock(Arc::new(clock.clone())).build().unwrap();
    let verifier = Authorizer::builder()
        .dir(fixture())
        .clock(Arc::new(clock.clone()))
        .max_delegation_depth(depth)
        .trust_issuer(ISSUER, &key.public_jwks().to_string())
        .build()
        .unwrap();
    World { clock, key, issuer, verifier }
}

fn world() -> World {
    world_with(8)
}

fn refund(w: &World, credential: &str, amount: i64) -> ambit::Decision {
    w.verifier.authorize_credential(credential, "issue_refund", TICKET, json!({"amount": amount}), None).unwrap()
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&B64.decode(payload).unwrap()).unwrap()
}

fn header() -> Value {
    json!({"alg": "EdDSA", "typ": "ambit+jwt", "kid": "k1"})
}

#[test]
fn a_credential_decides_elsewhere_as_a_local_agent_would() {
    let w = world();
    let agent = w
        .issuer
        .mint_agent(&AgentSpec::new(SERVICE, "ticket-4711", 900).scopes(["issue_refund"]).attributes(acme()))
        .unwrap();
    let token = w.issuer.issue_credential(agent.uid(), &w.key, None).unwrap();
    let here = w
        .issuer
        .authorize(&ambit::Request::new(agent.uid(), "issue_refund", TICKET).with_context(json!({"amount": 900})))
        .unwrap();
    let there = refund(&w, &token, 900);
    assert_eq!(there.deny_cause(), Some(DenyCause::Forbidden));
    assert_eq!((there.deny_cause(), there.reasons(), there.chain()), (here.deny_cause(), here.reasons(), here.chain()));
    let ok = refund(&w, &token, 120);
    assert!(ok.allowed(), "{ok:?}");
    assert_eq!(ok.chain(), [SERVICE, agent.uid()]);
    let close = w.verifier.authorize_credential(&token, "close_ticket", TICKET, json!({}), None).unwrap();
    assert_eq!(close.deny_cause(), Some(DenyCause::OutOfScope));
    // the verifier now knows the agent, as its own registry shows
    assert!(w.verifier.agents().iter().any(|a| a.uid() == agent.uid() && a.scopes() == ["issue_refund"]));
    // a second use is the same decision (verified once, remembered by its hash)
    assert!(refund(&w, &token, 120).allowed());
    let c = claims(&token);
    assert_eq!(
        (c["iss"].as_str(), c["sub"].as_str(), c["exp"].as_u64()),
        (Some(ISSUER), Some(agent.uid()), Some(agent.expires_at()))
    );
}

#[test]
fn a_sub_agent_credential_carries_the_whole_chain_and_each_link_narrows() {
    let w = world();
    let parent = w
        .issuer
        .mint_agent(&AgentSpec::new(SERVICE, "t", 900).scopes(["issue_refund", "read_ticket"]).attributes(acme()))
        .unwrap();
    let child = w
        .issuer
        .mint_agent(&AgentSpec::new(parent.uid(), "c", 300).scopes(["issue_refund"]).attributes(acme()))
        .unwrap();
    let token = w.issuer.issue_credential(child.uid(), &w.key, None).unwrap();
    let d = refund(&w, &token, 120);
    assert!(d.allowed(), "{d:?}");
    assert_eq!(d.chain(), [SERVICE, parent.uid(), child.uid()]);
    assert_eq!(claims(&token)["chain"].as_array().unwrap().len(), 3);
    // deeper than the verifier's cap
    let shallow = world_with(1);
    let p = shallow
        .issuer
        .mint_agent(&AgentSpec::new(SERVICE, "t", 900).scopes(["issue_refund"]).attributes(acme()))
        .unwrap();
    let c = shallow
        .issuer
        .mint_agent(&AgentSpec::new(p.uid(), "c", 300).scopes(["issue_refund"]).attributes(acme()))
        .unwrap();
    let deep = shallow.issuer.issue_credential(c.uid(), &shallow.key, None).unwrap();
    assert_eq!(refund(&shallow, &deep, 120).deny_cause(), Some(DenyCause::DepthExceeded));
}

#[test]
fn revocation_by_root_agent_or_jti_is_honoured() {
    let w = world();
    let agent =
        w.issuer.mint_agent(&AgentSpec::new(SERVICE, "t", 900).scopes(["issue_refund"]).attributes(acme())).unwrap();
    let token = w.issuer.issue_credential(agent.uid(), &w.key, None).unwrap();
    assert!(refund(&w, &token, 120).allowed());
    w.verifier.revoke_credential(claims(&token)["jti"].as_str().unwrap()).unwrap();
    assert_eq!(refund(&w, &token, 120).deny_cause(), Some(DenyCause::Revoked));

    let w = world();
    let agent =
        w.issuer.mint_agent(&AgentSpec::new(SERVICE, "t", 900).scopes(["issue_refund"]).attributes(acme())).unwrap();
    let token = w.issuer.issue_credential(agent.uid(), &w.key, None).unwrap();
    assert!(refund(&w, &token, 120).allowed());
    w.verifier.revoke(SERVICE).unwrap(); // the root, revoked where the credential is used
    assert_eq!(refund(&w, &token, 120).deny_cause(), Some(DenyCause::Revoked));

    let w = world();
    let agent =
        w.issuer.mint_agent(&AgentSpec::new(SERVICE, "t", 900).scopes(["issue_refund"]).attributes(acme())).unwrap();
    let token = w.issuer.issue_credential(agent.uid(), &w.key, None).unwrap();
    w.verifier.revoke(SERVICE).unwrap(); // before the credential was ever seen
    assert_eq!(refund(&w, &token, 120).deny_cause(), Some(DenyCause::Revoked));

    let w = world();
    let agent =
        w.issuer.mint_agent(&AgentSpec::new(SERVICE, "t", 900).scopes(["issue_refund"]).attributes(acme())).unwrap();
    let token = w.issuer.issue_credential(agent.uid(), &w.key, None).unwrap();
    assert!(refund(&w, &token, 120).allowed());
    w.verifier.revoke(agent.uid()).unwrap();
    assert_eq!(refund(&w, &token, 120).deny_cause(), Some(DenyCause::Revoked));
    // the issuer refuses to issue for a revoked agent
    w.issuer.revoke(agent.uid()).unwrap();
    assert_eq!(w.issuer.issue_credential(agent.uid(), &w.key, None).unwrap_err().code(), "AMBIT_INVALID_DELEGATION");
}

#[test]
fn expired_and_not_yet_valid_credentials_are_denied() {
    let w = world();
    let agent =
        w.issuer.mint_agent(&AgentSpec::new(SERVICE, "t", 100).scopes(["issue_refund"]).attributes(acme())).unwrap();
    let token = w.issuer.issue_credential(agent.uid(), &w.key, None).unwrap();
    assert!(refund(&w, &token, 120).allowed());
    w.clock.advance(100 + ambit::credential::CLOCK_SKEW_SECONDS);
    assert_eq!(refund(&w, &token, 120).deny_cause(), Some(DenyCause::TokenExpired));
    // signed by the trusted key but issued in the future
    let mut c = claims(&token);
    c["iat"] = json!(NOW + 3600);
    c["exp"] = json!(NOW + 7200);
    let future = w.key.sign_jws(&header(), &c).unwrap();
    assert_eq!(refund(&w, &future, 120).deny_cause(), Some(DenyCause::InvalidToken));
}

#[test]
fn forged_tampered_and_confused_credentials_are_denied_with_their_cause() {
    let w = world();
    let agent =
        w.issuer.mint_agent(&AgentSpec::new(SERVICE, "t", 900).scopes(["issue_refund"]).attributes(acme())).unwrap();
    let token = w.issuer.issue_credential(agent.uid(), &w.key, None).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let c = claims(&token);

    // another key under the same issuer and kid
    let impostor = IssuerKey::generate(ISSUER, "k1").unwrap();
    let forged = impostor.sign_jws(&header(), &c).unwrap();
    assert_eq!(refund(&w, &forged, 120).deny_cause(), Some(DenyCause::InvalidToken));
    // an unknown kid, an unknown issuer
    let other_kid = impostor.sign_jws(&json!({"alg": "EdDSA", "typ": "ambit+jwt", "kid": "k2"}), &c).unwrap();
    assert_eq!(refund(&w, &other_kid, 120).deny_cause(), Some(DenyCause::UntrustedIssuer));
    let mut other_iss = c.clone();
    other_iss["iss"] = json!("https://evil.example");
    assert_eq!(
        refund(&w, &impostor.sign_jws(&header(), &other_iss).unwrap(), 120).deny_cause(),
        Some(DenyCause::UntrustedIssuer)
    );

    // alg none, and HS256 "signed" with the public key (algorithm confusion)
    let none =
        format!("{}.{}.", B64.encode(json!({"alg": "none", "typ": "ambit+jwt", "kid": "k1"}).to_string()), parts[1]);
    assert_eq!(refund(&w, &none, 120).deny_cause(), Some(DenyCause::InvalidToken));
    let hs = format!(
        "{}.{}.{}",
        B64.encode(json!({"alg": "HS256", "typ": "ambit+jwt", "kid": "k1"}).to_string()),
        parts[1],
        parts[2]
    );
    assert_eq!(refund(&w, &hs, 120).deny_cause(), Some(DenyCause::InvalidToken));

    // the payload changed under the signature: a wider scope
    let mut widened = c.clone();
    widened["chain"][1]["agent"]["scopes"] = json!(["issue_refund", "close_ticket"]);
    let tampered = format!("{}.{}.{}", parts[0], B64.encode(widened.to_string()), parts[2]);
    assert_eq!(refund(&w, &tampered, 120).deny_cause(), Some(DenyCause::InvalidToken));

    // garbage of every shape, and an oversized credential
    let huge = format!("{}.{}.{}", parts[0], "A".repeat(70_000), parts[2]);
    for bad in ["", ".", "..", "a.b", "a.b.c.d", "!!.!!.!!", "eyJ9.eyJ9.AA", &huge] {
        assert_eq!(refund(&w, bad, 120).deny_cause(), Some(DenyCause::InvalidToken), "{bad:.40}");
    }
    // a verifier that trusts nobody
    let lonely = Authorizer::from_dir(fixture()).unwrap();
    let d = lonely.authorize_credential(&token, "issue_refund", TICKET, json!({"amount": 1}), None).unwrap();
    assert_eq!(d.deny_cause(), Some(DenyCause::UntrustedIssuer));
}

#[test]
fn a_trusted_signer_still_cannot_widen_a_chain() {
    let w = world();
    let parent =
        w.issuer.mint_agent(&AgentSpec::new(SERVICE, "t", 900).scopes(["issue_refund"]).attributes(acme())).unwrap();
    let child = w
        .issuer
        .mint_agent(&AgentSpec::new(parent.uid(), "c", 300).scopes(["issue_refund"]).attributes(acme()))
        .unwrap();
    let c = claims(&w.issuer.issue_credential(child.uid(), &w.key, None).unwrap());
    let sign = |c: &Value| w.key.sign_jws(&header(), c).unwrap();
    // a child scope its parent does not hold
    let mut wider = c.clone();
    wider["chain"][2]["agent"]["scopes"] = json!(["issue_refund", "read_ticket"]);
    assert_eq!(refund(&w, &sign(&wider), 120).deny_cause(), Some(DenyCause::InvalidToken));
    // a child outliving its parent
    let mut longer = c.clone();
    longer["chain"][2]["agent"]["expires_at"] = json!(NOW + 10_000);
    assert_eq!(refund(&w, &sign(&longer), 120).deny_cause(), Some(DenyCause::InvalidToken));
    // a chain whose root is an agent, or unknown here, or that does not end with the subject
    let mut agent_root = c.clone();
    agent_root["chain"][0] = c["chain"][1].clone();
    assert_eq!(refund(&w, &sign(&agent_root), 120).deny_cause(), Some(DenyCause::InvalidToken));
    let mut stranger = c.clone();
    stranger["chain"][0]["uid"] = json!(r#"Helpdesk::Service::"elsewhere""#);
    assert_eq!(refund(&w, &sign(&stranger), 120).deny_cause(), Some(DenyCause::InvalidToken));
    let mut other_sub = c.clone();
    other_sub["sub"] = json!(parent.uid());
    assert_eq!(refund(&w, &sign(&other_sub), 120).deny_cause(), Some(DenyCause::InvalidToken));
    // the untouched credential still works: nothing above was half-entered
    assert!(refund(&w, &sign(&c), 120).allowed());
    // a different agent under a uid the verifier already knows
    let mut conflicting = c.clone();
    conflicting["chain"][2]["agent"]["task"] = json!("other");
    conflicting["chain"][2]["agent"]["created_at"] = json!(NOW - 1);
    conflicting["jti"] = json!("another");
    assert_eq!(refund(&w, &sign(&conflicting), 120).deny_cause(), Some(DenyCause::InvalidToken));
}

#[test]
fn keys_and_key_sets_are_checked_when_loaded() {
    let key = IssuerKey::generate(ISSUER, "k1").unwrap();
    let again = IssuerKey::from_jwk(ISSUER, &key.private_jwk().to_string()).unwrap();
    assert_eq!(again.public_jwks(), key.public_jwks());
    assert!(
        !format!("{key:?}").contains(key.private_jwk()["d"].as_str().unwrap()),
        "Debug never shows the private key"
    );
    let build = |jwks: &str| {
        Authorizer::builder().dir(fixture()).trust_issuer(ISSUER, jwks).build().map(|_| ()).unwrap_err().code()
    };
    assert_eq!(build(&json!({"keys": [key.private_jwk()]}).to_string()), "AMBIT_CONFIG", "a private key in a JWKS");
    assert_eq!(build(r#"{"keys": [{"kty": "RSA", "kid": "r", "n": "AQAB", "e": "AQAB"}]}"#), "AMBIT_CONFIG");
    assert_eq!(
        build(r#"{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}]}"#),
        "AMBIT_CONFIG",
        "no kid, short x"
    );
    assert_eq!(build("not json"), "AMBIT_CONFIG");
    let missing = Authorizer::builder().dir(fixture()).trust_issuer_file(ISSUER, "/nonexistent/jwks.json").build();
    assert_eq!(missing.map(|_| ()).unwrap_err().code(), "AMBIT_IO");
    let mut bad = key.private_jwk();
    bad["x"] = IssuerKey::generate(ISSUER, "k9").unwrap().private_jwk()["x"].clone();
    assert_eq!(IssuerKey::from_jwk(ISSUER, &bad.to_string()).unwrap_err().code(), "AMBIT_CONFIG");
}

#[test]
fn refused_credentials_are_audited_like_any_deny() {
    let clock = ManualClock::new(NOW);
    let key = IssuerKey::generate(ISSUER, "k1").unwrap();
    let audit = ambit::Audit::builder().memory(16).build().unwrap();
    let verifier = Authorizer::builder()
        .dir(fixture())
        .clock(Arc::new(clock))
        .trust_issuer(ISSUER, &key.public_jwks().to_string())
        .audit(audit)
        .build()
        .unwrap();
    let d = verifier.authorize_credential("x.y.z", "issue_refund", TICKET, json!({"amount": 1}), None).unwrap();
    assert_eq!(d.deny_cause(), Some(DenyCause::InvalidToken));
    let audit = verifier.audit().unwrap();
    audit.flush();
    let recent = audit.recent(4);
    let last = serde_json::to_value(recent.last().unwrap()).unwrap();
    assert_eq!(last["kind"], "decision");
    assert_eq!(last["deny_cause"], "invalid_token");
    assert_eq!(last["decision_id"].as_str(), Some(d.decision_id()));
}

#[test]
fn trusted_issuers_come_from_options_as_in_every_binding() {
    let key = IssuerKey::generate(ISSUER, "k1").unwrap();
    let dir = std::env::temp_dir().join(format!("ambit-jwks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("jwks.json");
    std::fs::write(&file, key.public_jwks().to_string()).unwrap();
    let issuer = Authorizer::from_dir(fixture()).unwrap();
    let agent =
        issuer.mint_agent(&AgentSpec::new(SERVICE, "t", 900).scopes(["issue_refund"]).attributes(acme())).unwrap();
    let token = issuer.issue_credential(agent.uid(), &key, None).unwrap();
    for trusted in [json!([{"issuer": ISSUER, "file": file}]), json!([{"issuer": ISSUER, "jwks": key.public_jwks()}])] {
        let options = ambit::wire::AuthorizerOptions::from_json(&json!({"trusted_issuers": trusted})).unwrap();
        let verifier = options.apply(Authorizer::builder().dir(fixture()), None).unwrap().build().unwrap();
        let d = verifier.authorize_credential(&token, "issue_refund", TICKET, json!({"amount": 5}), None).unwrap();
        assert!(d.allowed(), "{d:?}");
    }
    for bad in [json!([{"issuer": ISSUER}]), json!([{"issuer": ISSUER, "file": file, "jwks": {}}])] {
        let options = ambit::wire::AuthorizerOptions::from_json(&json!({"trusted_issuers": bad})).unwrap();
        assert_eq!(options.apply(Authorizer::builder(), None).map(|_| ()).unwrap_err().code(), "AMBIT_CONFIG");
    }
    assert_eq!(
        ambit::wire::AuthorizerOptions::from_json(&json!({"trusted_issuers": [{"issuer": ISSUER, "path": "x"}]}))
            .unwrap_err()
            .code(),
        "AMBIT_CONFIG"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn es256_keys_work_and_an_algorithm_never_crosses_to_another_key_type() {
    use ambit::Algorithm;
    let clock = ManualClock::new(NOW);
    let ec = IssuerKey::generate_with(ISSUER, "ec1", Algorithm::ES256).unwrap();
    let ed = IssuerKey::generate(ISSUER, "ed1").unwrap();
    assert_eq!((ec.algorithm(), ed.algorithm()), (Algorithm::ES256, Algorithm::EdDSA));
    let again = IssuerKey::from_jwk(ISSUER, &ec.private_jwk().to_string()).unwrap();
    assert_eq!(again.public_jwks(), ec.public_jwks());
    let both = json!({"keys": [ec.public_jwks()["keys"][0], ed.public_jwks()["keys"][0]]});
    let issuer = Authorizer::builder().dir(fixture()).clock(Arc::new(clock.clone())).build().unwrap();
    let verifier = Authorizer::builder()
        .dir(fixture())
        .clock(Arc::new(clock))
        .trust_issuer(ISSUER, &both.to_string())
        .build()
        .unwrap();
    let agent =
        issuer.mint_agent(&AgentSpec::new(SERVICE, "t", 900).scopes(["issue_refund"]).attributes(acme())).unwrap();
    let decide =
        |t: &str| verifier.authorize_credential(t, "issue_refund", TICKET, json!({"amount": 5}), None).unwrap();
    let token = issuer.issue_credential(agent.uid(), &ec, None).unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&B64.decode(token.split('.').next().unwrap()).unwrap()).unwrap()["alg"],
        "ES256"
    );
    assert!(decide(&token).allowed());
    assert!(decide(&issuer.issue_credential(agent.uid(), &ed, None).unwrap()).allowed());
    let c = claims(&token);
    // an ES256 signature presented as EdDSA, or under the Ed25519 key's kid: refused
    let as_eddsa = ec.sign_jws(&json!({"alg": "EdDSA", "typ": "ambit+jwt", "kid": "ec1"}), &c).unwrap();
    assert_eq!(decide(&as_eddsa).deny_cause(), Some(DenyCause::InvalidToken));
    let under_ed_kid = ec.sign_jws(&json!({"alg": "ES256", "typ": "ambit+jwt", "kid": "ed1"}), &c).unwrap();
    assert_eq!(decide(&under_ed_kid).deny_cause(), Some(DenyCause::InvalidToken));
    let ed_as_es = ed.sign_jws(&json!({"alg": "ES256", "typ": "ambit+jwt", "kid": "ed1"}), &c).unwrap();
    assert_eq!(decide(&ed_as_es).deny_cause(), Some(DenyCause::InvalidToken));
    // a signature of the wrong length (a DER encoding, say) is not an ES256 signature
    let parts: Vec<&str> = token.split('.').collect();
    let mut der = vec![0x30, 0x44, 0x02, 0x20];
    der.extend(B64.decode(parts[2]).unwrap());
    assert_eq!(
        decide(&format!("{}.{}.{}", parts[0], parts[1], B64.encode(der))).deny_cause(),
        Some(DenyCause::InvalidToken)
    );
    // a P-256 JWK with a point off the curve, or a mismatched public part
    let mut off = ec.public_jwks();
    off["keys"][0]["y"] = off["keys"][0]["x"].clone();
    let built = Authorizer::builder().dir(fixture()).trust_issuer(ISSUER, &off.to_string()).build();
    assert_eq!(built.map(|_| ()).unwrap_err().code(), "AMBIT_CONFIG");
    let mut wrong = ec.private_jwk();
    wrong["y"] = IssuerKey::generate_with(ISSUER, "x", Algorithm::ES256).unwrap().private_jwk()["y"].clone();
    assert_eq!(IssuerKey::from_jwk(ISSUER, &wrong.to_string()).unwrap_err().code(), "AMBIT_CONFIG");
}

#[test]
fn a_holder_attenuates_a_credential_for_its_sub_agent_and_verifiers_check_every_link() {
    let w = world();
    // the holder: trusts the issuer, signs its own narrower credentials with its own key
    let holder_key = IssuerKey::generate("https://worker.example", "w1").unwrap();
    let holder = Authorizer::builder()
        .dir(fixture())
        .clock(Arc::new(w.clock.clone()))
        .trust_issuer(ISSUER, &w.key.public_jwks().to_string())
        .build()
        .unwrap();
    let verifier = Authorizer::builder()
        .dir(fixture())
        .clock(Arc::new(w.clock.clone()))
        .trust_issuer(ISSUER, &w.key.public_jwks().to_string())
        .trust_issuer("https://worker.example", &holder_key.public_jwks().to_string())
        .build()
        .unwrap();
    let agent = w
        .issuer
        .mint_agent(&AgentSpec::new(SERVICE, "t", 900).scopes(["issue_refund", "read_ticket"]).attributes(acme()))
        .unwrap();
    let token = w.issuer.issue_credential(agent.uid(), &w.key, None).unwrap();
    let narrow = holder
        .attenuate(
            &token,
            &AgentSpec::new("", "refund-only", 300).scopes(["issue_refund"]).attributes(acme()),
            &holder_key,
        )
        .unwrap();
    let c = claims(&narrow);
    assert_eq!(c["chain"].as_array().unwrap().len(), 3);
    assert_eq!(c["iss"], "https://worker.example");
    let decide = |t: &str, action: &str| {
        verifier
            .authorize_credential(
                t,
                action,
                TICKET,
                if action == "issue_refund" { json!({"amount": 5}) } else { json!({}) },
                None,
            )
            .unwrap()
    };
    assert!(decide(&narrow, "issue_refund").allowed());
    assert_eq!(decide(&narrow, "read_ticket").deny_cause(), Some(DenyCause::OutOfScope), "the child was narrowed");
    assert!(decide(&token, "read_ticket").allowed(), "the parent still may");
    // never wider than the parent, never another agent's child
    let wider = holder.attenuate(&token, &AgentSpec::new("", "x", 300).scopes(["close_ticket"]), &holder_key);
    assert_eq!(wider.unwrap_err().code(), "AMBIT_INVALID_DELEGATION");
    let elsewhere = holder.attenuate(&token, &AgentSpec::new(SERVICE, "x", 300).scopes(["issue_refund"]), &holder_key);
    assert_eq!(elsewhere.unwrap_err().code(), "AMBIT_INVALID_DELEGATION");
    // a refused credential cannot be attenuated
    let forged = holder.attenuate("a.b.c", &AgentSpec::new("", "x", 300).scopes(["issue_refund"]), &holder_key);
    assert!(forged.unwrap_err().to_string().contains("invalid_token"));
    // the lifetime is clamped to the parent's
    let long = holder
        .attenuate(&token, &AgentSpec::new("", "long", 99_999).scopes(["issue_refund"]).attributes(acme()), &holder_key)
        .unwrap();
    assert!(claims(&long)["exp"].as_u64().unwrap() <= agent.expires_at());
    // revoking the first agent where the narrowed credential is used cuts off its child
    verifier.revoke(agent.uid()).unwrap();
    assert_eq!(decide(&narrow, "issue_refund").deny_cause(), Some(DenyCause::Revoked));
}

#[test]
fn a_credential_cannot_speak_for_a_static_agent_of_the_verifier() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/service-agents");
    let key = IssuerKey::generate(ISSUER, "k1").unwrap();
    let verifier =
        Authorizer::builder().dir(&dir).trust_issuer(ISSUER, &key.public_jwks().to_string()).build().unwrap();
    let now = ambit::Clock::now(&ambit::SystemClock);
    let claims = json!({
        "iss": ISSUER, "sub": r#"Ops::Agent::"deploy-bot""#, "iat": now, "exp": now + 600, "jti": "j1",
        "chain": [
            {"uid": r#"Ops::User::"dana""#},
            {"uid": r#"Ops::Agent::"deploy-bot""#, "agent": {"task": "t", "scopes": ["deploy"], "created_at": now, "expires_at": now + 600}},
        ],
    });
    let token = key.sign_jws(&header(), &claims).unwrap();
    let d = verifier.authorize_credential(&token, "deploy", r#"Ops::Host::"prod-1""#, json!({}), None).unwrap();
    assert_eq!(d.deny_cause(), Some(DenyCause::InvalidToken), "{d:?}");
    assert!(d.errors()[0].message().contains("static entity"), "{d:?}");
}

#[test]
fn issuer_keys_from_a_file_rotate_with_a_reload_and_a_bad_file_keeps_the_last_good_keys() {
    let w = world();
    let dir = std::env::temp_dir().join(format!("ambit-jwks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("jwks.json");
    std::fs::write(&file, w.key.public_jwks().to_string()).unwrap();
    let verifier = Authorizer::builder()
        .dir(fixture())
        .clock(Arc::new(w.clock.clone()))
        .trust_issuer_file(ISSUER, &file)
        .build()
        .unwrap();
    assert!(verifier.source_paths().contains(&file), "a watcher reloads when the JWKS file changes");
    let agent =
        w.issuer.mint_agent(&AgentSpec::new(SERVICE, "t", 900).scopes(["issue_refund"]).attributes(acme())).unwrap();
    let old = w.issuer.issue_credential(agent.uid(), &w.key, None).unwrap();
    let decide =
        |c: &str| verifier.authorize_credential(c, "issue_refund", TICKET, json!({"amount": 10}), None).unwrap();
    assert!(decide(&old).allowed());
    // rotation: the file now holds only the new key
    let rotated = IssuerKey::generate(ISSUER, "k2").unwrap();
    std::fs::write(&file, rotated.public_jwks().to_string()).unwrap();
    let fresh = w.issuer.issue_credential(agent.uid(), &rotated, None).unwrap();
    assert_eq!(decide(&fresh).deny_cause(), Some(DenyCause::UntrustedIssuer), "not before the reload");
    verifier.reload().unwrap();
    assert!(decide(&fresh).allowed());
    assert_eq!(
        decide(&old).deny_cause(),
        Some(DenyCause::UntrustedIssuer),
        "a key rotated out admits nothing, cached or not"
    );
    // a broken file fails the reload, and the last good keys keep serving
    std::fs::write(&file, "{\"keys\": [").unwrap();
    let version = verifier.policy_version();
    let e = verifier.reload().unwrap_err();
    assert_eq!(e.code(), "AMBIT_RELOAD", "{e}");
    assert!(decide(&fresh).allowed());
    assert_eq!(verifier.policy_version(), version);
    std::fs::remove_file(&file).unwrap();
    assert_eq!(verifier.reload().unwrap_err().code(), "AMBIT_RELOAD");
    assert!(decide(&fresh).allowed());
    let _ = std::fs::remove_dir_all(&dir);
}
