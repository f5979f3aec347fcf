//! External OAuth access tokens (issue 17): a token-exchange token's `sub` and nested `act`
//! claims are the chain, each hop decided by Cedar; `scope` narrows the actions; and every
//! forged, confused, expired, early, misdirected, tampered, too deep or oversized token is a
//! deny with its cause, never an error or a panic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests fail loudly")]
#![allow(clippy::many_single_char_names, reason = "a token is cut into h.p.s")]

use ambit::wire::OAuthIssuerOptions;
use ambit::{Algorithm, Authorizer, DenyCause, IssuerKey, ManualClock};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const NOW: u64 = 1_800_000_000;
const IDP: &str = "https://idp.example";
const API: &str = "https://helpdesk.example/api";
const TICKET: &str = r#"Helpdesk::Ticket::"4711""#;

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

fn world(key: &IssuerKey) -> Authorizer {
    Authorizer::builder()
        .dir(fixture())
        .clock(Arc::new(ManualClock::new(NOW)))
        .oauth_issuer(issuer_options(key))
        .build()
        .unwrap()
}

fn claims() -> Value {
    json!({"iss": IDP, "aud": API, "sub": "alice", "iat": NOW - 10, "exp": NOW + 300,
           "act": {"sub": "helpdesk"}})
}

fn refund(a: &Authorizer, token: &str, amount: i64) -> ambit::Decision {
    a.authorize_token(token, "issue_refund", TICKET, json!({"amount": amount}), None).unwrap()
}

#[test]
fn the_act_chain_is_decided_hop_by_hop_root_first() {
    let key = IssuerKey::generate_with(IDP, "k1", Algorithm::ES256).unwrap();
    let a = world(&key);
    let token = key.sign_jwt(&claims()).unwrap();
    let ok = refund(&a, &token, 100);
    assert!(ok.allowed(), "{ok:?}");
    assert_eq!(ok.chain(), [r#"Helpdesk::User::"alice""#, r#"Helpdesk::Service::"helpdesk""#]);
    // above the manager's limit: the person's hop denies
    let no = refund(&a, &token, 6000);
    assert_eq!((no.deny_cause(), no.deny_hop()), (Some(DenyCause::NoPermit), Some(0)));
    // nested act: the outermost is the current actor, the inner one acted before it
    let mut c = claims();
    c["act"] = json!({"sub": "helpdesk", "act": {"sub": "helpdesk-ingest"}});
    let d = refund(&a, &key.sign_jwt(&c).unwrap(), 100);
    assert_eq!(
        d.chain(),
        [r#"Helpdesk::User::"alice""#, r#"Helpdesk::Service::"helpdesk-ingest""#, r#"Helpdesk::Service::"helpdesk""#]
    );
    assert_eq!(
        (d.deny_cause(), d.deny_hop()),
        (Some(DenyCause::NoPermit), Some(1)),
        "the unknown inner actor has no permit"
    );
    // no act: the person alone; bob (support) may not refund
    let mut c = claims();
    c.as_object_mut().unwrap().remove("act");
    c["sub"] = json!("bob");
    assert_eq!(refund(&a, &key.sign_jwt(&c).unwrap(), 100).deny_cause(), Some(DenyCause::NoPermit));
    c["sub"] = json!("alice");
    assert!(refund(&a, &key.sign_jwt(&c).unwrap(), 100).allowed());
}

#[test]
fn scopes_and_may_act_narrow() {
    let key = IssuerKey::generate(IDP, "k1").unwrap();
    let a = world(&key);
    let mut c = claims();
    c["scope"] = json!("openid read_ticket");
    let t = key.sign_jwt(&c).unwrap();
    assert_eq!(refund(&a, &t, 100).deny_cause(), Some(DenyCause::OutOfScope));
    assert!(a.authorize_token(&t, "read_ticket", TICKET, json!({}), None).unwrap().allowed());
    c["scope"] = json!("Helpdesk::Action::\"issue_refund\"");
    assert!(refund(&a, &key.sign_jwt(&c).unwrap(), 100).allowed(), "a full action uid is a scope too");
    c.as_object_mut().unwrap().remove("scope");
    c["scp"] = json!(["issue_refund"]);
    assert!(refund(&a, &key.sign_jwt(&c).unwrap(), 100).allowed());
    c["scp"] = json!([1]);
    assert_eq!(refund(&a, &key.sign_jwt(&c).unwrap(), 100).deny_cause(), Some(DenyCause::InvalidToken));
    let mut c = claims();
    c["may_act"] = json!({"sub": "someone-else"});
    assert_eq!(refund(&a, &key.sign_jwt(&c).unwrap(), 100).deny_cause(), Some(DenyCause::InvalidToken));
    c["may_act"] = json!({"sub": "helpdesk"});
    assert!(refund(&a, &key.sign_jwt(&c).unwrap(), 100).allowed());
}

fn forge(header: &Value, claims: &Value, signer: &IssuerKey) -> String {
    signer.sign_jws(header, claims).unwrap()
}

#[test]
fn every_bad_token_is_a_deny_with_its_cause() {
    let key = IssuerKey::generate_with(IDP, "k1", Algorithm::ES256).unwrap();
    let a = world(&key);
    let header = json!({"alg": "ES256", "typ": "JWT", "kid": "k1"});
    let cause = |t: &str| refund(&a, t, 100).deny_cause();
    let good = forge(&header, &claims(), &key);
    assert_eq!(cause(&good), None);
    // signed by another key under the same kid
    let other = IssuerKey::generate_with(IDP, "k1", Algorithm::ES256).unwrap();
    assert_eq!(cause(&forge(&header, &claims(), &other)), Some(DenyCause::InvalidToken));
    // alg none, HS256 with the public key as the secret, EdDSA under an ES256 key
    let (h, p, _) = {
        let mut it = good.split('.');
        (it.next().unwrap().to_owned(), it.next().unwrap().to_owned(), it.next().unwrap().to_owned())
    };
    let none = format!("{}.{p}.", B64.encode(json!({"alg": "none", "typ": "JWT", "kid": "k1"}).to_string()));
    assert_eq!(cause(&none), Some(DenyCause::InvalidToken));
    let hs = format!("{}.{p}.{}", B64.encode(json!({"alg": "HS256", "kid": "k1"}).to_string()), B64.encode([7u8; 32]));
    assert_eq!(cause(&hs), Some(DenyCause::InvalidToken));
    let ed = IssuerKey::generate(IDP, "k1").unwrap();
    assert_eq!(cause(&forge(&json!({"alg": "EdDSA", "kid": "k1"}), &claims(), &ed)), Some(DenyCause::InvalidToken));
    // tampered payload: alice becomes the actor chain of someone else
    let mut tampered = claims();
    tampered["sub"] = json!("carol");
    let t = format!("{h}.{}.{}", B64.encode(tampered.to_string()), good.rsplit('.').next().unwrap());
    assert_eq!(cause(&t), Some(DenyCause::InvalidToken));
    // times, audience, issuer, key id
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = claims();
        f(&mut c);
        forge(&header, &c, &key)
    };
    assert_eq!(cause(&with(&|c| c["exp"] = json!(NOW - 61))), Some(DenyCause::TokenExpired));
    assert_eq!(cause(&with(&|c| c["exp"] = json!(NOW - 30))), None, "within the skew");
    assert_eq!(cause(&with(&|c| c["nbf"] = json!(NOW + 120))), Some(DenyCause::InvalidToken));
    assert_eq!(cause(&with(&|c| c["iat"] = json!(NOW + 120))), Some(DenyCause::InvalidToken));
    assert_eq!(cause(&with(&|c| c["exp"] = json!("soon"))), Some(DenyCause::InvalidToken));
    assert_eq!(
        cause(&with(&|c| {
            c.as_object_mut().unwrap().remove("exp");
        })),
        Some(DenyCause::InvalidToken)
    );
    assert_eq!(cause(&with(&|c| c["aud"] = json!("https://other.example"))), Some(DenyCause::InvalidToken));
    assert_eq!(cause(&with(&|c| c["aud"] = json!(["x", API]))), None);
    assert_eq!(cause(&with(&|c| c["iss"] = json!("https://evil.example"))), Some(DenyCause::UntrustedIssuer));
    assert_eq!(cause(&forge(&json!({"alg": "ES256", "kid": "k9"}), &claims(), &key)), Some(DenyCause::UntrustedIssuer));
    assert_eq!(
        cause(&forge(&json!({"alg": "ES256", "typ": "ambit+jwt", "kid": "k1"}), &claims(), &key)),
        Some(DenyCause::InvalidToken)
    );
    assert_eq!(
        cause(&forge(&json!({"alg": "ES256", "kid": "k1", "crit": ["x"]}), &claims(), &key)),
        Some(DenyCause::InvalidToken)
    );
    // a chain deeper than the limit, a malformed act, an oversized token, garbage
    let mut deep = json!({"sub": "s0"});
    for i in 1..20 {
        deep = json!({"sub": format!("s{i}"), "act": deep});
    }
    assert_eq!(cause(&with(&|c| c["act"] = deep.clone())), Some(DenyCause::DepthExceeded));
    assert_eq!(cause(&with(&|c| c["act"] = json!("helpdesk"))), Some(DenyCause::InvalidToken));
    assert_eq!(cause(&with(&|c| c["act"] = json!({"client": "x"}))), Some(DenyCause::InvalidToken));
    assert_eq!(cause(&with(&|c| c["sub"] = json!(7))), Some(DenyCause::InvalidToken));
    assert_eq!(cause(&"a.".repeat(40_000)), Some(DenyCause::InvalidToken));
    for junk in ["", "a", "a.b", "a.b.c.d", "....", "\u{0}.\u{0}.\u{0}", "eyJ9.eyJ9.AA"] {
        assert_eq!(cause(junk), Some(DenyCause::InvalidToken), "{junk:?}");
    }
    // a bad action or context is still an error, as for any request
    assert_eq!(
        a.authorize_token(&good, "no_such_action", TICKET, json!({}), None).unwrap_err().code(),
        "AMBIT_INVALID_REQUEST"
    );
    // an authorizer with no OAuth issuer trusts no token
    let plain = Authorizer::from_dir(fixture()).unwrap();
    assert_eq!(
        plain.authorize_token(&good, "issue_refund", TICKET, json!({"amount": 1}), None).unwrap().deny_cause(),
        Some(DenyCause::UntrustedIssuer)
    );
}

#[test]
fn mapped_claims_are_the_tokens_own_context() {
    let key = IssuerKey::generate(IDP, "k1").unwrap();
    let mut o = issuer_options(&key);
    o.context_claims = Some(vec!["tenant".into()]);
    o.principal_type = "App::User".into();
    o.actor_type = "App::Bot".into();
    let a = Authorizer::builder()
        .schema_str("namespace App { entity User; entity Bot; entity Doc; action read appliesTo { principal: [User, Bot], resource: Doc, context: { token: { tenant: String } } }; }")
        .policies_str(r#"permit (principal, action, resource) when { context.token.tenant == "acme" };"#)
        .clock(Arc::new(ManualClock::new(NOW)))
        .oauth_issuer(o)
        .build()
        .unwrap();
    let mut c = claims();
    c["tenant"] = json!("acme");
    let t = key.sign_jwt(&c).unwrap();
    assert!(a.authorize_token(&t, "read", r#"App::Doc::"d""#, json!({}), None).unwrap().allowed());
    // the caller cannot pass a `token` of its own: the token's claims replace it
    c["tenant"] = json!("globex");
    let t = key.sign_jwt(&c).unwrap();
    let d = a.authorize_token(&t, "read", r#"App::Doc::"d""#, json!({"token": {"tenant": "acme"}}), None).unwrap();
    assert_eq!(d.deny_cause(), Some(DenyCause::NoPermit));
}

#[test]
fn issuer_options_are_checked_at_build() {
    let key = IssuerKey::generate(IDP, "k1").unwrap();
    let bad = |f: &dyn Fn(&mut Value)| {
        let mut v = serde_json::to_value(issuer_options(&key)).unwrap();
        f(&mut v);
        let opts = ambit::wire::AuthorizerOptions::from_json(&json!({"oauth_issuers": [v]}));
        opts.and_then(|o| o.apply(Authorizer::builder().dir(fixture()), None))
            .and_then(ambit::AuthorizerBuilder::build)
            .map(|_| ())
            .unwrap_err()
            .code()
    };
    assert_eq!(bad(&|v| v["algorithms"] = json!(["HS256"])), "AMBIT_CONFIG");
    assert_eq!(bad(&|v| v["algorithms"] = json!([])), "AMBIT_CONFIG");
    assert_eq!(bad(&|v| v["principal_type"] = json!("not a type")), "AMBIT_CONFIG");
    assert_eq!(bad(&|v| v["jwks"] = json!({"keys": [key.private_jwk()]})), "AMBIT_CONFIG");
    assert_eq!(
        bad(&|v| {
            v["file"] = json!("/nonexistent/jwks.json");
            v.as_object_mut().unwrap().remove("jwks");
        }),
        "AMBIT_IO"
    );
    assert_eq!(bad(&|v| v["file"] = json!("/x")), "AMBIT_CONFIG", "both file and jwks");
    assert_eq!(bad(&|v| v["audiance"] = json!("x")), "AMBIT_CONFIG");
    // an issuer trusted for EdDSA only refuses its ES256 tokens
    let es = IssuerKey::generate_with(IDP, "k2", Algorithm::ES256).unwrap();
    let mut o = issuer_options(&es);
    o.algorithms = Some(vec!["EdDSA".into()]);
    let a =
        Authorizer::builder().dir(fixture()).clock(Arc::new(ManualClock::new(NOW))).oauth_issuer(o).build().unwrap();
    assert_eq!(refund(&a, &es.sign_jwt(&claims()).unwrap(), 100).deny_cause(), Some(DenyCause::InvalidToken));
}

#[test]
fn claims_describe_principals_the_store_does_not_know() {
    let key = IssuerKey::generate(IDP, "k1").unwrap();
    let mut o = issuer_options(&key);
    o.principal_type = "App::User".into();
    o.actor_type = "App::Bot".into();
    o.principal_claims = Some(vec!["role".into(), "tenant".into()]);
    o.actor_claims = Some(vec!["tenant".into()]);
    let schema =
        "namespace App { entity User { role: String, tenant: String, admin?: Bool }; entity Bot { tenant?: String }; \
                  entity Doc { tenant: String }; action read appliesTo { principal: [User, Bot], resource: Doc }; }";
    let policies = r#"
        permit (principal is App::User, action, resource) when { principal.role == "editor" && principal.tenant == resource.tenant };
        permit (principal is App::Bot, action, resource) when { principal has tenant && principal.tenant == resource.tenant };
        forbid (principal is App::User, action, resource) when { principal has admin && principal.admin };
    "#;
    let entities = r#"[
        {"uid": {"type": "App::Doc", "id": "d"}, "attrs": {"tenant": "acme"}, "parents": []},
        {"uid": {"type": "App::User", "id": "known"}, "attrs": {"role": "viewer", "tenant": "acme"}, "parents": []}
    ]"#;
    let a = Authorizer::builder()
        .schema_str(schema)
        .policies_str(policies)
        .entities_json(entities)
        .clock(Arc::new(ManualClock::new(NOW)))
        .oauth_issuer(o)
        .build()
        .unwrap();
    let read = |c: Value| {
        let t = key.sign_jwt(&c).unwrap();
        a.authorize_token(&t, "read", r#"App::Doc::"d""#, json!({}), None).unwrap()
    };
    let base =
        |sub: &str| json!({"iss": IDP, "aud": API, "sub": sub, "exp": NOW + 60, "role": "editor", "tenant": "acme"});
    // the subject, unknown to the store, is as its claims say; the bot acts for it
    let mut c = base("newhire");
    c["act"] = json!({"sub": "copilot", "tenant": "acme"});
    let ok = read(c.clone());
    assert!(ok.allowed(), "{ok:?}");
    // the actor's own claims: another tenant's bot is denied at its hop
    c["act"] = json!({"sub": "copilot", "tenant": "globex"});
    let d = read(c);
    assert_eq!((d.deny_cause(), d.deny_hop()), (Some(DenyCause::NoPermit), Some(1)));
    // another role, another tenant
    let mut c = base("newhire");
    c["role"] = json!("viewer");
    assert_eq!(read(c).deny_cause(), Some(DenyCause::NoPermit));
    // a subject the store knows is decided as the store says, whatever the token claims
    assert_eq!(read(base("known")).deny_cause(), Some(DenyCause::NoPermit));
    // claims that do not fit the schema: the token's fault, a deny with its cause
    let mut c = base("newhire");
    c["role"] = json!(7);
    let d = read(c);
    assert_eq!(d.deny_cause(), Some(DenyCause::InvalidToken), "{d:?}");
    let mut c = base("newhire");
    c.as_object_mut().unwrap().remove("tenant");
    assert_eq!(read(c).deny_cause(), Some(DenyCause::InvalidToken), "a required attribute missing");
    // a claim that is not mapped never becomes an attribute (else the forbid would match)
    let mut c = base("newhire");
    c["admin"] = json!(true);
    assert!(read(c).allowed());
}

#[test]
fn a_token_verified_before_is_still_checked_for_time_and_audience_each_call() {
    let key = IssuerKey::generate_with(IDP, "k1", Algorithm::ES256).unwrap();
    let clock = ManualClock::new(NOW);
    let a = Authorizer::builder()
        .dir(fixture())
        .clock(Arc::new(clock.clone()))
        .oauth_issuer(issuer_options(&key))
        .build()
        .unwrap();
    let token = key.sign_jwt(&claims()).unwrap();
    assert!(refund(&a, &token, 100).allowed());
    assert!(refund(&a, &token, 100).allowed(), "the remembered signature");
    clock.advance(300 + 60);
    assert_eq!(refund(&a, &token, 100).deny_cause(), Some(DenyCause::TokenExpired), "remembered, still expires");
    // a different token text (one byte of the signature changed) is verified afresh
    let mut forged = token.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(refund(&a, &forged, 100).deny_cause(), Some(DenyCause::InvalidToken));
}
