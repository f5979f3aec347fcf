//! JOSE: the keys, key sets and compact JWS (RFC 7515) that credentials, OAuth tokens and DPoP
//! proofs share. Signing and verification are Ed25519 (`EdDSA`, `verify_strict`) and P-256
//! (`ES256`); a key has one algorithm and a JWS's `alg` must be its key's, so there is no `none`,
//! no HMAC and no algorithm chosen by the token. What a JWS *means* (a credential, an access
//! token, a proof) is decided by the modules that read one: `credential`, `token`, `dpop`.

use crate::decision::DenyCause;
use crate::error::{Error, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use serde::Deserialize;
use serde_json::Value;
use sha2::Digest as _;
use std::collections::HashMap;

/// The media type in a DPoP proof's `typ` header (RFC 9449).
pub const PROOF_TYPE: &str = "dpop+jwt";

/// The base64url SHA-256 of `text`: a token's `ath`, a key's thumbprint.
pub(crate) fn sha256_b64(text: &[u8]) -> String {
    B64.encode(sha2::Sha256::digest(text))
}

/// The RFC 7638 thumbprint of a public JWK (Ed25519 or P-256), given as a JSON object or as
/// its JSON text: what a bound token's `cnf.jkt` holds.
///
/// # Errors
/// `AMBIT_CONFIG` when `jwk` is not such a public key.
pub fn jwk_thumbprint(jwk: &Value) -> Result<String> {
    let parsed;
    let jwk = match jwk {
        Value::String(text) => {
            parsed = serde_json::from_str(text).map_err(|e| Error::config(format!("invalid JWK: {e}")))?;
            &parsed
        }
        other => other,
    };
    public_from_jwk(jwk).map(|k| k.thumbprint())
}

/// Whether `jkt` looks like a SHA-256 thumbprint (43 base64url characters).
pub(crate) fn is_thumbprint(jkt: &str) -> bool {
    jkt.len() == 43 && B64.decode(jkt).is_ok_and(|b| b.len() == 32)
}

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
    pub(crate) fn algorithm(&self) -> Algorithm {
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
        sha256_b64(canonical.to_string().as_bytes())
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

    pub(crate) fn signature(&self, input: &[u8]) -> Vec<u8> {
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
        let header = serde_json::json!({"typ": PROOF_TYPE, "alg": self.algorithm().as_str(), "jwk": jwk});
        let iat = iat.unwrap_or_else(|| crate::clock::Clock::now(&crate::clock::SystemClock));
        let mut claims = serde_json::json!({
            "jti": uuid::Uuid::new_v4().to_string(),
            "htm": method,
            "htu": htu.as_str(),
            "iat": iat,
            "ath": sha256_b64(access_token.as_bytes()),
        });
        if let Some(n) = nonce {
            claims["nonce"] = Value::String(n.to_owned());
        }
        self.sign_jws(&header, &claims)
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

    pub(crate) fn key(&self, issuer: &str, kid: &str) -> Option<&Public> {
        self.issuers.get(issuer)?.get(kid)
    }

    /// `issuer`'s key `kid`, for the OAuth token verifier.
    pub(crate) fn key_for(&self, issuer: &str, kid: &str) -> Option<&Public> {
        self.key(issuer, kid)
    }
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
