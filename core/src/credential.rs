//! Signed agent credentials: an agent's authority as a compact JWS (RFC 7515) that another
//! process verifies with the issuer's public key alone (a JWKS, no network).
//!
//! A credential carries the agent's whole chain, root first: the root (a person or service,
//! a static entity the verifier knows) and each agent with its task, scopes, confinement,
//! attributes and lifetime. The verifier checks the signature (Ed25519 `EdDSA` or P-256
//! `ES256`, the algorithm fixed by the trusted key: no `none`, no HMAC, no confusion), the issuer and key id, the times, the size and
//! the depth, then enters each agent into its registry with the same attenuation rules as a
//! local mint (every link narrows and never outlives its parent); the decision is then the
//! same decision, with the same causes and audit record, as for a locally minted agent.
//! Revocation by agent uid or by the credential's `jti` is honoured.

use crate::decision::DenyCause;
use crate::error::{Error, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// The media type in a credential's `typ` header.
pub const CREDENTIAL_TYPE: &str = "ambit+jwt";
/// The largest credential accepted, in bytes: larger ones are `invalid_token` before any
/// decoding.
pub const MAX_CREDENTIAL_BYTES: usize = 64 * 1024;
/// Clock skew allowed on `iat` / `nbf` / `exp`, in seconds.
pub const CLOCK_SKEW_SECONDS: u64 = 60;

/// A signing algorithm ambit credentials use: Ed25519 (`EdDSA`, the default) or ECDSA P-256
/// with SHA-256 (`ES256`). A key has one algorithm and a credential's `alg` must be its key's:
/// no `none`, no HMAC, no algorithm chosen by the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Algorithm {
    /// Ed25519 (RFC 8032), verified with `verify_strict`.
    EdDSA,
    /// ECDSA over P-256 with SHA-256 (RFC 7518 §3.4), signatures as `r || s`.
    ES256,
}

impl Algorithm {
    /// The JOSE name: `EdDSA` or `ES256`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDSA => "EdDSA",
            Self::ES256 => "ES256",
        }
    }

    /// The algorithms an option names (`what`, for the error), or both (`ES256`, `EdDSA`)
    /// when it names none.
    ///
    /// # Errors
    /// `AMBIT_CONFIG` for an empty list or an unknown name.
    pub(crate) fn list(names: Option<&[String]>, what: &str) -> Result<Vec<Self>> {
        match names {
            None => Ok(vec![Self::ES256, Self::EdDSA]),
            Some([]) => Err(Error::config(format!("`{what}` must name at least one"))),
            Some(names) => names.iter().map(|n| Self::from_name(n)).collect(),
        }
    }

    /// The algorithm of a JOSE name (`EdDSA`, `ES256`), or an `AMBIT_CONFIG` error.
    ///
    /// # Errors
    /// `AMBIT_CONFIG` for any other name.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "EdDSA" => Ok(Self::EdDSA),
            "ES256" => Ok(Self::ES256),
            other => Err(Error::config(format!(
                "unsupported algorithm `{}`: expected `EdDSA` or `ES256`",
                crate::error::user_text(other)
            ))),
        }
    }
}

#[derive(Clone)]
enum Secret {
    Ed(SigningKey),
    P256(p256::ecdsa::SigningKey),
}

#[derive(Debug, Clone)]
pub(crate) enum Public {
    Ed(VerifyingKey),
    P256(p256::ecdsa::VerifyingKey),
}

impl Public {
    fn algorithm(&self) -> Algorithm {
        match self {
            Self::Ed(_) => Algorithm::EdDSA,
            Self::P256(_) => Algorithm::ES256,
        }
    }

    fn jwk(&self, kid: &str) -> Value {
        match self {
            Self::Ed(k) => serde_json::json!({
                "kty": "OKP", "crv": "Ed25519", "kid": kid, "alg": "EdDSA", "use": "sig",
                "x": B64.encode(k.to_bytes()),
            }),
            Self::P256(k) => {
                let point = k.to_encoded_point(false);
                serde_json::json!({
                    "kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
                    "x": point.x().map(|x| B64.encode(x)).unwrap_or_default(),
                    "y": point.y().map(|y| B64.encode(y)).unwrap_or_default(),
                })
            }
        }
    }

    /// The RFC 7638 thumbprint: the base64url SHA-256 of the key's required members in
    /// lexicographic order, no whitespace.
    pub(crate) fn thumbprint(&self) -> String {
        let jwk = self.jwk("");
        let member = |name: &str| jwk.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
        // serde_json's compact form of plain base64url strings is exactly RFC 7638's
        let canonical = match self {
            Self::Ed(_) => serde_json::json!({"crv": "Ed25519", "kty": "OKP", "x": member("x")}),
            Self::P256(_) => serde_json::json!({"crv": "P-256", "kty": "EC", "x": member("x"), "y": member("y")}),
        };
        // serde_json::Map keeps keys sorted (no preserve_order feature): the order RFC 7638 asks
        crate::dpop::sha256_b64(canonical.to_string().as_bytes())
    }

    /// Whether `signature` over `input` verifies as `alg`, which must be this key's own.
    pub(crate) fn verifies_as(&self, alg: Algorithm, input: &[u8], signature: &[u8]) -> bool {
        self.algorithm() == alg && self.verifies(input, signature)
    }

    fn verifies(&self, input: &[u8], signature: &[u8]) -> bool {
        match self {
            Self::Ed(k) => {
                ed25519_dalek::Signature::from_slice(signature).is_ok_and(|s| k.verify_strict(input, &s).is_ok())
            }
            Self::P256(k) => {
                use p256::ecdsa::signature::Verifier as _;
                // JWS ES256 signatures are exactly r || s, 64 bytes (RFC 7518 §3.4), never DER
                signature.len() == 64
                    && p256::ecdsa::Signature::from_slice(signature).is_ok_and(|s| k.verify(input, &s).is_ok())
            }
        }
    }
}

/// An issuer's signing key, with the issuer name and key id it signs as.
#[derive(Clone)]
pub struct IssuerKey {
    issuer: String,
    kid: String,
    key: Secret,
}

impl std::fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // never the private key
        f.debug_struct("IssuerKey")
            .field("issuer", &self.issuer)
            .field("kid", &self.kid)
            .field("alg", &self.algorithm())
            .finish_non_exhaustive()
    }
}

fn random32() -> Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| Error::internal(format!("no randomness for a key: {e}")))?;
    Ok(seed)
}

impl IssuerKey {
    /// A new random Ed25519 key for `issuer`, named `kid`.
    ///
    /// # Errors
    /// `AMBIT_INTERNAL` when the operating system has no randomness to give.
    pub fn generate(issuer: impl Into<String>, kid: impl Into<String>) -> Result<Self> {
        Self::generate_with(issuer, kid, Algorithm::EdDSA)
    }

    /// A new random key of `alg` for `issuer`, named `kid`.
    ///
    /// # Errors
    /// `AMBIT_INTERNAL` when the operating system has no randomness to give.
    pub fn generate_with(issuer: impl Into<String>, kid: impl Into<String>, alg: Algorithm) -> Result<Self> {
        let key = match alg {
            Algorithm::EdDSA => Secret::Ed(SigningKey::from_bytes(&random32()?)),
            Algorithm::ES256 => loop {
                // a scalar at or above the group order (odds ~2^-32) is drawn again
                if let Ok(k) = p256::ecdsa::SigningKey::from_slice(&random32()?) {
                    break Secret::P256(k);
                }
            },
        };
        Ok(Self { issuer: issuer.into(), kid: kid.into(), key })
    }

    /// The key from its private JWK (Ed25519: `{"kty": "OKP", "crv": "Ed25519", "d", "x"}`;
    /// P-256: `{"kty": "EC", "crv": "P-256", "d", "x", "y"}`; with its `kid`), signing as
    /// `issuer`.
    ///
    /// # Errors
    /// `AMBIT_CONFIG` when the JWK is not such a private key, or its public part does not
    /// match `d`.
    pub fn from_jwk(issuer: impl Into<String>, jwk: &str) -> Result<Self> {
        let jwk: Jwk = serde_json::from_str(jwk).map_err(|e| Error::config(format!("invalid private JWK: {e}")))?;
        let alg = jwk.algorithm()?;
        let d = jwk.d.as_deref().ok_or_else(|| Error::config("a private JWK needs `d`"))?;
        let d: [u8; 32] = decode(d)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| Error::config("JWK `d` must be 32 base64url bytes"))?;
        let key = match alg {
            Algorithm::EdDSA => Secret::Ed(SigningKey::from_bytes(&d)),
            Algorithm::ES256 => Secret::P256(
                p256::ecdsa::SigningKey::from_slice(&d).map_err(|_| Error::config("JWK `d` is not a P-256 scalar"))?,
            ),
        };
        let kid = jwk.kid.clone().unwrap_or_default();
        let out = Self { issuer: issuer.into(), kid, key };
        if out.public().jwk("")["x"] != jwk.x.as_str()
            || (alg == Algorithm::ES256 && out.public().jwk("")["y"] != jwk.y.as_deref().unwrap_or_default())
        {
            return Err(Error::config("the JWK's public part is not the public key of `d`"));
        }
        Ok(out)
    }

    fn public(&self) -> Public {
        match &self.key {
            Secret::Ed(k) => Public::Ed(k.verifying_key()),
            Secret::P256(k) => Public::P256(*k.verifying_key()),
        }
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.public().algorithm()
    }

    /// The issuer name this key signs as.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The key id (`kid`).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The private JWK, to keep in a file only the issuer reads.
    pub fn private_jwk(&self) -> Value {
        let mut jwk = self.public().jwk(&self.kid);
        if let Some(o) = jwk.as_object_mut() {
            o.remove("use");
            let d = match &self.key {
                Secret::Ed(k) => B64.encode(k.to_bytes()),
                Secret::P256(k) => B64.encode(k.to_bytes()),
            };
            o.insert("d".into(), Value::String(d));
        }
        jwk
    }

    /// The public JWKS (`{"keys": [...]}`) verifiers are given.
    pub fn public_jwks(&self) -> Value {
        serde_json::json!({"keys": [self.public().jwk(&self.kid)]})
    }

    fn signature(&self, input: &[u8]) -> Vec<u8> {
        match &self.key {
            Secret::Ed(k) => k.sign(input).to_bytes().to_vec(),
            Secret::P256(k) => {
                let s: p256::ecdsa::Signature = p256::ecdsa::signature::Signer::sign(k, input);
                s.to_bytes().to_vec()
            }
        }
    }

    /// Signs `claims` (a JSON object) as a compact JWS of type `JWT` with this key's algorithm
    /// and `kid`: an access token for [`crate::Authorizer::authorize_token`] when no identity
    /// provider issues them (and for tests). The claims are signed as given.
    ///
    /// # Errors
    /// `AMBIT_CONFIG` when `claims` is not a JSON object.
    pub fn sign_jwt(&self, claims: &Value) -> Result<String> {
        if !claims.is_object() {
            return Err(Error::config("the claims to sign must be a JSON object"));
        }
        let header = serde_json::json!({"alg": self.algorithm().as_str(), "typ": "JWT", "kid": self.kid});
        let input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
        Ok(format!("{input}.{}", B64.encode(self.signature(input.as_bytes()))))
    }

    /// Signs `header` and `claims` exactly as given (no field added or checked) as a compact
    /// JWS with this key: for JWTs of other shapes, and for tests that forge what a correct
    /// issuer never signs to show verifiers refuse it. The header's `alg` should be this
    /// key's ([`Self::algorithm`]); verifiers refuse any other.
    ///
    /// # Errors
    /// `AMBIT_CONFIG` when `header` or `claims` is not a JSON object.
    pub fn sign_jws(&self, header: &Value, claims: &Value) -> Result<String> {
        if !header.is_object() || !claims.is_object() {
            return Err(Error::config("the header and the claims to sign must be JSON objects"));
        }
        let header = B64.encode(header.to_string());
        let payload = B64.encode(claims.to_string());
        let input = format!("{header}.{payload}");
        Ok(format!("{input}.{}", B64.encode(self.signature(input.as_bytes()))))
    }

    /// The RFC 7638 thumbprint of this key's public part: the `cnf.jkt` of tokens and
    /// credentials bound to it.
    pub fn thumbprint(&self) -> String {
        self.public().thumbprint()
    }

    /// A DPoP proof (RFC 9449) made with this key for one call: `method` and `url` (query and
    /// fragment dropped), `ath` for `access_token`, the server's `nonce` if it gave one, `iat`
    /// (default: the system clock) and a fresh random `jti`. The public key travels in the
    /// `jwk` header.
    ///
    /// # Errors
    /// `AMBIT_CONFIG` for an empty method, or a URL that is not absolute http(s).
    pub fn dpop_proof(
        &self,
        method: &str,
        url: &str,
        access_token: &str,
        nonce: Option<&str>,
        iat: Option<u64>,
    ) -> Result<String> {
        if method.is_empty() {
            return Err(Error::config("a DPoP proof needs the call's HTTP method"));
        }
        let mut htu = url::Url::parse(url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| Error::config("a DPoP proof needs the call's absolute http(s) URL"))?;
        htu.set_query(None);
        htu.set_fragment(None);
        let mut jwk = self.public().jwk("");
        if let Some(o) = jwk.as_object_mut() {
            o.remove("kid");
            o.remove("use");
        }
        let header = serde_json::json!({"typ": crate::dpop::PROOF_TYPE, "alg": self.algorithm().as_str(), "jwk": jwk});
        let iat = iat.unwrap_or_else(|| crate::clock::Clock::now(&crate::clock::SystemClock));
        let mut claims = serde_json::json!({
            "jti": uuid::Uuid::new_v4().to_string(),
            "htm": method,
            "htu": htu.as_str(),
            "iat": iat,
            "ath": crate::dpop::sha256_b64(access_token.as_bytes()),
        });
        if let Some(n) = nonce {
            claims["nonce"] = Value::String(n.to_owned());
        }
        self.sign_jws(&header, &claims)
    }

    pub(crate) fn sign(&self, claims: &Claims) -> Result<String> {
        let header = serde_json::json!({"alg": self.algorithm().as_str(), "typ": CREDENTIAL_TYPE, "kid": self.kid});
        let header = B64.encode(serde_json::to_vec(&header).map_err(|e| Error::internal(e.to_string()))?);
        let payload = B64.encode(serde_json::to_vec(claims).map_err(|e| Error::internal(e.to_string()))?);
        let input = format!("{header}.{payload}");
        let signature = self.signature(input.as_bytes());
        Ok(format!("{input}.{}", B64.encode(signature)))
    }
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default)]
    x: String,
    #[serde(default)]
    y: Option<String>,
    #[serde(default)]
    d: Option<String>,
}

impl Jwk {
    /// The algorithm the key is for: its type and curve decide, and a stated `alg` must agree.
    fn algorithm(&self) -> Result<Algorithm> {
        let alg = match (self.kty.as_str(), self.crv.as_deref()) {
            ("OKP", Some("Ed25519")) => Algorithm::EdDSA,
            ("EC", Some("P-256")) => Algorithm::ES256,
            (kty, crv) => {
                return Err(Error::config(format!(
                    "unsupported key `{}` / `{}`: ambit credentials use Ed25519 (`OKP` / `Ed25519`) or P-256 (`EC` / `P-256`)",
                    crate::error::user_text(kty),
                    crate::error::user_text(crv.unwrap_or(""))
                )))
            }
        };
        if self.alg.as_deref().is_some_and(|a| a != alg.as_str()) {
            return Err(Error::config(format!("this key's `alg` must be `{}`", alg.as_str())));
        }
        Ok(alg)
    }

    fn public(&self) -> Result<Public> {
        let coordinate = |c: &str, what: &str| -> Result<[u8; 32]> {
            decode(c)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| Error::config(format!("JWK `{what}` must be 32 base64url bytes")))
        };
        match self.algorithm()? {
            Algorithm::EdDSA => {
                let key = VerifyingKey::from_bytes(&coordinate(&self.x, "x")?)
                    .map_err(|_| Error::config("JWK `x` is not an Ed25519 point"))?;
                if key.is_weak() {
                    return Err(Error::config("JWK `x` is a weak (small-order) Ed25519 key"));
                }
                Ok(Public::Ed(key))
            }
            Algorithm::ES256 => {
                let x = coordinate(&self.x, "x")?;
                let y = coordinate(self.y.as_deref().unwrap_or_default(), "y")?;
                let point = p256::EncodedPoint::from_affine_coordinates(&x.into(), &y.into(), false);
                let key = p256::ecdsa::VerifyingKey::from_encoded_point(&point)
                    .map_err(|_| Error::config("JWK `x`, `y` is not a P-256 point"))?;
                Ok(Public::P256(key))
            }
        }
    }
}

/// A public key from its JWK object (Ed25519 or P-256); never a private one.
pub(crate) fn public_from_jwk(jwk: &Value) -> Result<Public> {
    let jwk: Jwk = serde_json::from_value(jwk.clone()).map_err(|e| Error::config(format!("invalid JWK: {e}")))?;
    if jwk.d.is_some() {
        return Err(Error::config("a public JWK must not hold `d`"));
    }
    jwk.public()
}

/// The public keys of the issuers a verifier trusts: issuer name -> key id -> key.
#[derive(Debug, Clone, Default)]
pub struct TrustedIssuers {
    issuers: HashMap<String, HashMap<String, Public>>,
}

impl TrustedIssuers {
    /// Trusts `issuer`'s keys in `jwks` (a JWKS JSON text, `{"keys": [...]}`); each key needs
    /// a `kid`. Keys that are neither Ed25519 nor P-256 are refused, not skipped.
    ///
    /// # Errors
    /// `AMBIT_CONFIG` for a malformed JWKS, a key without `kid`, a private key (`d`), or a key
    /// of another type.
    pub fn add(&mut self, issuer: impl Into<String>, jwks: &str) -> Result<()> {
        #[derive(Deserialize)]
        struct Set {
            keys: Vec<Jwk>,
        }
        let set: Set = serde_json::from_str(jwks).map_err(|e| Error::config(format!("invalid JWKS: {e}")))?;
        let keys = self.issuers.entry(issuer.into()).or_default();
        for jwk in set.keys {
            if jwk.d.is_some() {
                return Err(Error::config("a JWKS for verifiers must hold public keys only (this one has `d`)"));
            }
            let kid = jwk
                .kid
                .clone()
                .filter(|k| !k.is_empty())
                .ok_or_else(|| Error::config("every JWKS key needs a `kid`"))?;
            keys.insert(kid, jwk.public()?);
        }
        Ok(())
    }

    /// Whether no issuer is trusted.
    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty()
    }

    fn key(&self, issuer: &str, kid: &str) -> Option<&Public> {
        self.issuers.get(issuer)?.get(kid)
    }

    /// `issuer`'s key `kid`, for the OAuth token verifier.
    pub(crate) fn key_for(&self, issuer: &str, kid: &str) -> Option<&Public> {
        self.key(issuer, kid)
    }
}

/// One link of a credential's chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Link {
    /// The identity's uid text.
    pub(crate) uid: String,
    /// For an agent: its task, scopes, confinement, attributes and lifetime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) agent: Option<AgentLink>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AgentLink {
    pub(crate) task: String,
    pub(crate) scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) resources: Vec<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub(crate) attributes: Map<String, Value>,
    pub(crate) created_at: u64,
    pub(crate) expires_at: u64,
}

/// A credential's claims. Unknown claims are refused: a claim this version does not know
/// could be one that restricts the credential.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Claims {
    pub(crate) iss: String,
    /// The acting agent (the chain's last link).
    pub(crate) sub: String,
    pub(crate) iat: u64,
    #[serde(default)]
    pub(crate) nbf: Option<u64>,
    pub(crate) exp: u64,
    pub(crate) jti: String,
    /// Root first.
    pub(crate) chain: Vec<Link>,
    /// The holder's key, for a credential only its holder may use (with a DPoP proof).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) cnf: Option<Confirmation>,
}

/// A confirmation claim (RFC 7800): the thumbprint of the key a holder proves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Confirmation {
    pub(crate) jkt: String,
}

/// Why a credential was refused: the deny cause, and words for the audit trail and the error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) cause: DenyCause,
    pub(crate) why: String,
}

pub(crate) fn refuse(cause: DenyCause, why: impl Into<String>) -> Refusal {
    Refusal { cause, why: why.into() }
}

fn decode(text: &str) -> std::result::Result<Vec<u8>, base64::DecodeError> {
    B64.decode(text)
}

/// A JOSE header, as far as ambit reads it (credentials and OAuth tokens alike).
#[derive(Deserialize)]
pub(crate) struct Header {
    pub(crate) alg: String,
    #[serde(default)]
    pub(crate) typ: Option<String>,
    #[serde(default)]
    pub(crate) kid: Option<String>,
    #[serde(default)]
    pub(crate) crit: Option<Value>,
    /// A DPoP proof's public key.
    #[serde(default)]
    pub(crate) jwk: Option<Value>,
}

/// A compact JWS taken apart, nothing verified yet.
pub(crate) struct Jws<'t> {
    pub(crate) header: Header,
    /// The header's algorithm, already one ambit accepts (`none` and HMAC never are).
    pub(crate) alg: Algorithm,
    /// Credentials and access tokens name their key; DPoP proofs carry it (`jwk`) instead.
    pub(crate) kid: Option<String>,
    pub(crate) payload: Vec<u8>,
    /// What the signature covers: `header.payload`.
    pub(crate) input: &'t [u8],
    pub(crate) signature: String,
}

impl Jws<'_> {
    /// Whether `key` (which must be of the header's algorithm) signed it.
    pub(crate) fn verified_by(&self, key: &Public) -> std::result::Result<(), Refusal> {
        let signature =
            decode(&self.signature).map_err(|_| refuse(DenyCause::InvalidToken, "the signature is malformed"))?;
        if !key.verifies_as(self.alg, self.input, &signature) {
            return Err(refuse(DenyCause::InvalidToken, "the signature does not verify"));
        }
        Ok(())
    }
}

/// Takes a compact JWS of at most `max_bytes` apart: three base64url parts, a JSON header with
/// an accepted `alg` and no `crit`; the payload decoded. `what` names it in refusals.
pub(crate) fn parse_jws<'t>(token: &'t str, max_bytes: usize, what: &str) -> std::result::Result<Jws<'t>, Refusal> {
    let invalid = |why: String| refuse(DenyCause::InvalidToken, why);
    if token.len() > max_bytes {
        return Err(invalid(format!("the {what} is larger than the limit")));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("not a compact JWS (three base64url parts)".into()));
    };
    let header: Header = decode(header)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| invalid("the header is not base64url JSON".into()))?;
    // the algorithm is fixed by the key type: `none`, HMAC and anything else are refused
    // before any key is looked at, and a key answers only for its own algorithm
    let Ok(alg) = Algorithm::from_name(&header.alg) else {
        return Err(invalid("the algorithm must be EdDSA or ES256 (none and HMAC are refused)".into()));
    };
    if header.crit.is_some() {
        return Err(invalid("critical header extensions are not supported".into()));
    }
    let kid = header.kid.clone();
    let payload = decode(payload).map_err(|_| invalid("the payload is not base64url".into()))?;
    let input = &token.as_bytes()[..token.len() - signature.len() - 1];
    Ok(Jws { header, alg, kid, payload, input, signature: signature.to_owned() })
}

/// Checks a credential's form, signature, issuer and times: its claims, or why not. The chain
/// itself (attenuation, depth, liveness) is checked when its agents are entered.
pub(crate) fn verify(token: &str, trusted: &TrustedIssuers, now: u64) -> std::result::Result<Claims, Refusal> {
    let invalid = |why: &str| refuse(DenyCause::InvalidToken, why);
    let jws = parse_jws(token, MAX_CREDENTIAL_BYTES, "credential")?;
    if jws.header.typ.as_deref() != Some(CREDENTIAL_TYPE) {
        return Err(invalid("the type must be ambit+jwt"));
    }
    let claims: Claims =
        serde_json::from_slice(&jws.payload).map_err(|_| invalid("the payload is not ambit claims"))?;
    let kid = jws.kid.as_deref().ok_or_else(|| invalid("the header has no kid"))?;
    let key = trusted
        .key(&claims.iss, kid)
        .ok_or_else(|| refuse(DenyCause::UntrustedIssuer, "the issuer or its key is not trusted"))?;
    if key.algorithm() != jws.alg {
        return Err(invalid("the algorithm is not the key's"));
    }
    jws.verified_by(key)?;
    if claims.exp.saturating_add(CLOCK_SKEW_SECONDS) <= now {
        return Err(refuse(DenyCause::TokenExpired, "the credential has expired"));
    }
    let not_before = claims.nbf.unwrap_or(claims.iat).max(claims.iat);
    if not_before > now.saturating_add(CLOCK_SKEW_SECONDS) {
        return Err(invalid("the credential is not valid yet"));
    }
    let last = claims.chain.last().ok_or_else(|| invalid("the chain is empty"))?;
    if last.uid != claims.sub || last.agent.is_none() {
        return Err(invalid("the chain does not end with the subject agent"));
    }
    if claims.chain.first().is_some_and(|root| root.agent.is_some()) {
        return Err(invalid("the chain's root must be a static principal"));
    }
    if claims.chain.iter().skip(1).any(|l| l.agent.is_none()) {
        return Err(invalid("every link after the root must be an agent"));
    }
    Ok(claims)
}

/// The claims of a credential for `record` (live, its chain resolved as `hops`), bound to the
/// holder key thumbprint `holder` when given, signed.
pub(crate) fn issue(
    record: &crate::registry::AgentRecord,
    hops: &[(cedar_policy::EntityUid, crate::registry::Hop)],
    key: &IssuerKey,
    holder: Option<&str>,
    now: u64,
) -> Result<String> {
    if holder.is_some_and(|h| !crate::dpop::is_thumbprint(h)) {
        return Err(Error::invalid_request(
            "a holder key is named by its RFC 7638 thumbprint: 43 base64url characters (IssuerKey::thumbprint)",
        ));
    }
    let mut chain = Vec::with_capacity(hops.len());
    for (i, (uid, hop)) in hops.iter().enumerate() {
        let text = record.chain_text.get(i).cloned().unwrap_or_else(|| uid.to_string());
        let agent = match hop {
            crate::registry::Hop::Static => None,
            crate::registry::Hop::Agent(a) => Some(AgentLink {
                task: a.task.clone(),
                scopes: a.scopes_given.clone(),
                resources: a.resources.iter().flatten().map(ToString::to_string).collect(),
                attributes: a.attributes.clone(),
                created_at: a.created_at,
                expires_at: a.expires_at,
            }),
        };
        chain.push(Link { uid: text, agent });
    }
    let claims = Claims {
        iss: key.issuer.clone(),
        sub: record.chain_text.last().cloned().unwrap_or_default(),
        iat: now,
        nbf: None,
        exp: record.expires_at,
        jti: uuid::Uuid::new_v4().to_string(),
        chain,
        cnf: holder.map(|jkt| Confirmation { jkt: jkt.to_owned() }),
    };
    key.sign(&claims)
}

/// A credential verified before: who it speaks for, until when, under which id.
struct Verified {
    sub: String,
    jti: String,
    exp: u64,
    jkt: Option<String>,
}

/// Who an admitted credential speaks for, and the key its holder must prove, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Admitted {
    /// The acting agent's uid.
    pub(crate) sub: String,
    /// `cnf.jkt`: the holder key's thumbprint.
    pub(crate) jkt: Option<String>,
}

/// The most verified credentials remembered; past it the memory starts over.
const MAX_REMEMBERED: usize = 16 * 1024;

/// An authorizer's side of credentials: whom it trusts, what it verified, what was revoked.
pub(crate) struct Verifier {
    /// Swapped whole when a reload reads the issuers' JWKS files again.
    trusted: arc_swap::ArcSwap<TrustedIssuers>,
    verified: papaya::HashMap<[u8; 32], Verified>,
    revoked: papaya::HashSet<String>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier").field("trusted", &self.trusted).finish_non_exhaustive()
    }
}

impl Verifier {
    pub(crate) fn new(trusted: TrustedIssuers) -> Self {
        Self {
            trusted: arc_swap::ArcSwap::from_pointee(trusted),
            verified: papaya::HashMap::new(),
            revoked: papaya::HashSet::new(),
        }
    }

    pub(crate) fn revoke(&self, jti: &str) {
        self.revoked.pin().insert(jti.to_owned());
    }

    /// Trusts these issuers from now on; credentials verified under the old keys are verified
    /// again (a key rotated out no longer admits anything).
    pub(crate) fn set_trusted(&self, trusted: TrustedIssuers) {
        self.trusted.store(std::sync::Arc::new(trusted));
        self.forget_verified();
    }

    /// Every revoked credential id, sorted.
    pub(crate) fn revoked_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.revoked.pin().iter().cloned().collect();
        ids.sort();
        ids
    }

    /// Forgets every verified credential (their agents must be entered again).
    pub(crate) fn forget_verified(&self) {
        self.verified.pin().clear();
    }

    /// The acting agent's uid (and the holder key it is bound to), once the credential is
    /// verified and its agents are in `registry`; or why the credential is refused.
    pub(crate) fn admit(
        &self,
        token: &str,
        snap: &crate::snapshot::Snapshot,
        registry: &crate::registry::Registry,
        max_depth: u32,
        now: u64,
    ) -> std::result::Result<Admitted, Refusal> {
        use sha2::Digest as _;
        if token.len() > MAX_CREDENTIAL_BYTES {
            return Err(refuse(DenyCause::InvalidToken, "the credential is larger than the limit"));
        }
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        if let Some(v) = self.verified.pin().get(&digest) {
            if v.exp.saturating_add(CLOCK_SKEW_SECONDS) > now {
                if self.revoked.pin().contains(&v.jti) {
                    return Err(refuse(DenyCause::Revoked, "the credential was revoked"));
                }
                return Ok(Admitted { sub: v.sub.clone(), jkt: v.jkt.clone() });
            }
        }
        let trusted = self.trusted.load();
        if trusted.is_empty() {
            return Err(refuse(DenyCause::UntrustedIssuer, "this authorizer trusts no credential issuer"));
        }
        let claims = verify(token, &trusted, now)?;
        if self.revoked.pin().contains(&claims.jti) {
            return Err(refuse(DenyCause::Revoked, "the credential was revoked"));
        }
        if claims.chain.len() - 1 > max_depth as usize {
            return Err(refuse(DenyCause::DepthExceeded, "the credential's chain is deeper than the limit"));
        }
        let invalid = |why: String| refuse(DenyCause::InvalidToken, why);
        let mut uids = Vec::with_capacity(claims.chain.len());
        for link in &claims.chain {
            uids.push(
                crate::registry::parse_uid(&link.uid, "chain link").map_err(|e| invalid(e.message().to_owned()))?,
            );
        }
        let root = &uids[0];
        if snap.is_minted(root) || snap.entities.get(root).is_none() {
            return Err(invalid(format!("the chain's root `{root}` is not a known principal here")));
        }
        let opts = crate::registry::MintOptions { now, max_depth, restoring: false };
        for (i, link) in claims.chain.iter().enumerate().skip(1) {
            let Some(agent) = &link.agent else { return Err(invalid("a link after the root is not an agent".into())) };
            let uid = &uids[i];
            if uid.type_name() != &snap.agent_type {
                return Err(invalid(format!("`{uid}` is not of the agent type `{}`", snap.agent_type)));
            }
            // a static agent here (entities.json) is decided as its own entity says, never as
            // a credential describes it
            if !snap.is_minted(uid) {
                return Err(invalid(format!("`{uid}` is a static entity here, not an agent a credential may carry")));
            }
            let ttl = agent.expires_at.saturating_sub(agent.created_at).max(1);
            let spec = crate::registry::AgentSpec::new(claims.chain[i - 1].uid.clone(), agent.task.clone(), ttl)
                .scopes(agent.scopes.iter().cloned())
                .resources(agent.resources.iter().cloned())
                .attributes(agent.attributes.clone());
            let imported = crate::registry::Imported {
                id: uid.id().unescaped(),
                created_at: agent.created_at,
                expires_at: agent.expires_at,
            };
            if let Err(e) = spec.check_limits(&crate::limit::Limits::default()) {
                return Err(invalid(e.message().to_owned()));
            }
            if let Err(e) = registry.import(&spec, snap, &opts, &imported) {
                // a parent that is no longer live is that cause, not a malformed credential
                if let Ok(hops) = registry.resolve(&uids[..i], snap) {
                    if let Some((cause, _)) = registry.check_live(&hops, &snap.entities, now) {
                        return Err(refuse(cause, format!("`{}` on the credential's chain is {cause}", uids[i - 1])));
                    }
                }
                return Err(invalid(format!("link {i} breaks the delegation rules: {}", e.message())));
            }
        }
        let verified = self.verified.pin();
        if verified.len() >= MAX_REMEMBERED {
            verified.clear();
        }
        let jkt = claims.cnf.map(|c| c.jkt);
        verified
            .insert(digest, Verified { sub: claims.sub.clone(), jti: claims.jti, exp: claims.exp, jkt: jkt.clone() });
        Ok(Admitted { sub: claims.sub, jkt })
    }
}
