//! DPoP (RFC 9449): proof that whoever presents an access token or a credential holds the
//! private key it is bound to (`cnf.jkt`, the key's RFC 7638 thumbprint), for this one HTTP
//! call, once.
//!
//! A proof is a compact JWS of type `dpop+jwt`, signed with an allowed asymmetric algorithm by
//! the public key in its own `jwk` header (never a private one). Its claims name the call
//! (`htm`, the method, exactly; `htu`, the URL without query and fragment, compared after
//! RFC 3986 normalisation), its time (`iat`, within `max_age_seconds` back and the skew
//! ahead), the token it goes with (`ath`, the base64url SHA-256 of the token), the server's
//! `nonce` when the call says there is one, and a `jti` remembered in a bounded, time-windowed
//! set so that a proof works once. The checks fail closed: a proof that cannot be judged is
//! `dpop_invalid`, one seen before is `replayed`, a bound token without a proof (or any token
//! without one, when proofs are required) is `dpop_required`.

use crate::decision::DenyCause;
use crate::error::{Error, Result};
use crate::jose::{refuse, Algorithm, Refusal};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Digest as _;
use std::collections::HashMap;
use std::sync::Mutex;

pub use crate::jose::PROOF_TYPE;
/// The largest proof read, in bytes.
pub const MAX_PROOF_BYTES: usize = 8 * 1024;
/// The longest `jti` accepted, in bytes.
pub const MAX_JTI_BYTES: usize = 256;

/// How this authorizer judges DPoP proofs (option `dpop`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct DpopOptions {
    /// Every access token must come with a valid proof (a bearer token without `cnf.jkt` is
    /// then `dpop_required` too). Default false: only bound tokens need one.
    pub required: Option<bool>,
    /// How old a proof's `iat` may be (default 60).
    pub max_age_seconds: Option<u64>,
    /// How far in the future a proof's `iat` may be (default 5).
    pub clock_skew_seconds: Option<u64>,
    /// The most proofs remembered for replay protection (default 100,000); when that many
    /// are still within their window, new proofs are refused (`dpop_invalid`), never let
    /// through unremembered.
    pub replay_capacity: Option<usize>,
    /// The proof algorithms accepted (default both: `ES256`, `EdDSA`).
    pub algorithms: Option<Vec<String>>,
}

/// A DPoP proof as presented with one call: the `DPoP` header's value, and the call it must
/// be for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct DpopProof {
    /// The proof (the `DPoP` header's value).
    pub proof: String,
    /// The call's HTTP method (`GET`, `POST`, ...), compared exactly with `htm`.
    pub method: String,
    /// The call's URL (`https://api.example/refunds?id=1`); query and fragment are ignored.
    pub url: String,
    /// The nonce this server currently requires (RFC 9449 §8), when it uses nonces.
    #[serde(default)]
    pub nonce: Option<String>,
}

impl DpopProof {
    /// A proof presented for `method` `url`.
    pub fn new(proof: impl Into<String>, method: impl Into<String>, url: impl Into<String>) -> Self {
        Self { proof: proof.into(), method: method.into(), url: url.into(), nonce: None }
    }

    /// The proof from its JSON form (`{"proof", "method", "url", "nonce"?}`), as bindings pass
    /// it; `null` is no proof.
    ///
    /// # Errors
    /// `AMBIT_INVALID_REQUEST` naming what is wrong: another shape, an unknown field, a
    /// missing one.
    pub fn from_json(value: &Value) -> Result<Option<Self>> {
        if value.is_null() {
            return Ok(None);
        }
        Self::deserialize(value)
            .map(Some)
            .map_err(|e| Error::invalid_request(format!("`dpop` must be {{proof, method, url, nonce?}}: {e}")))
    }

    /// Requires the proof to carry this server nonce.
    #[must_use]
    pub fn with_nonce(mut self, nonce: impl Into<String>) -> Self {
        self.nonce = Some(nonce.into());
        self
    }
}

pub use crate::jose::jwk_thumbprint;
use crate::jose::sha256_b64;

/// An authorizer's DPoP judge: its settings and the proofs it has seen.
#[derive(Debug)]
pub(crate) struct Dpop {
    required: bool,
    max_age: u64,
    skew: u64,
    capacity: usize,
    algorithms: Vec<Algorithm>,
    /// hash(thumbprint, jti) -> the time after which the proof is too old anyway
    seen: Mutex<HashMap<[u8; 32], u64>>,
}

impl Dpop {
    /// # Errors
    /// `AMBIT_CONFIG` for an unknown algorithm or a zero capacity.
    pub(crate) fn from_options(o: &DpopOptions) -> Result<Self> {
        let algorithms = Algorithm::list(o.algorithms.as_deref(), "dpop.algorithms")?;
        let capacity = o.replay_capacity.unwrap_or(100_000);
        if capacity == 0 {
            return Err(Error::config("`dpop.replay_capacity` must be at least 1"));
        }
        Ok(Self {
            required: o.required.unwrap_or(false),
            max_age: o.max_age_seconds.unwrap_or(60),
            skew: o.clock_skew_seconds.unwrap_or(5),
            capacity,
            algorithms,
            seen: Mutex::new(HashMap::new()),
        })
    }

    /// Judges the proof (if any) presented with `token`, bound to `jkt` (if it is): whether
    /// the token is now proven bound to its holder's key, or why it is refused.
    /// With `fleet`, a proof is also claimed in the fleet's shared memory, so that it works
    /// once across every member; a fleet that cannot be reached refuses it.
    pub(crate) fn check(
        &self,
        proof: Option<&DpopProof>,
        token: &str,
        jkt: Option<&str>,
        now: u64,
        fleet: Option<&dyn crate::fleet::Backend>,
    ) -> std::result::Result<bool, Refusal> {
        match (proof, jkt) {
            (None, None) if self.required => {
                Err(refuse(DenyCause::DpopRequired, "this authorizer requires DPoP-bound tokens with a proof"))
            }
            (None, None) => Ok(false),
            (None, Some(_)) => {
                Err(refuse(DenyCause::DpopRequired, "the token is bound to a key (cnf.jkt): a DPoP proof is required"))
            }
            (Some(_), None) => {
                Err(refuse(DenyCause::DpopInvalid, "a DPoP proof came with a token that is not bound to a key"))
            }
            (Some(p), Some(jkt)) => self.verify(p, token, jkt, now, fleet).map(|()| true),
        }
    }

    fn verify(
        &self,
        p: &DpopProof,
        token: &str,
        jkt: &str,
        now: u64,
        fleet: Option<&dyn crate::fleet::Backend>,
    ) -> std::result::Result<(), Refusal> {
        let invalid = |why: &str| refuse(DenyCause::DpopInvalid, why);
        let jws = crate::jose::parse_jws(&p.proof, MAX_PROOF_BYTES, "DPoP proof")
            .map_err(|r| refuse(DenyCause::DpopInvalid, r.why))?;
        if jws.header.typ.as_deref() != Some(PROOF_TYPE) {
            return Err(invalid("the proof's type must be dpop+jwt"));
        }
        if !self.algorithms.contains(&jws.alg) {
            return Err(invalid("the proof's algorithm is not one accepted here"));
        }
        let jwk = jws.header.jwk.as_ref().ok_or_else(|| invalid("the proof has no `jwk` header"))?;
        if jwk.get("d").is_some() || jwk.get("p").is_some() || jwk.get("k").is_some() {
            return Err(invalid("the proof's `jwk` holds a private key"));
        }
        let key =
            crate::jose::public_from_jwk(jwk).map_err(|_| invalid("the proof's `jwk` is not a usable public key"))?;
        jws.verified_by(&key).map_err(|r| refuse(DenyCause::DpopInvalid, r.why))?;
        let claims: Map<String, Value> =
            serde_json::from_slice(&jws.payload).map_err(|_| invalid("the proof's payload is not a JSON object"))?;
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        let jti = text("jti").filter(|j| !j.is_empty()).ok_or_else(|| invalid("the proof has no `jti`"))?;
        if jti.len() > MAX_JTI_BYTES {
            return Err(invalid("the proof's `jti` is longer than the limit"));
        }
        if text("htm") != Some(p.method.as_str()) {
            return Err(invalid("the proof is for another HTTP method (`htm`)"));
        }
        let htu = text("htu").ok_or_else(|| invalid("the proof has no `htu`"))?;
        let call = normal_url(&p.url).ok_or_else(|| invalid("the call's URL is not an absolute http(s) URL"))?;
        if normal_url(htu).as_deref() != Some(call.as_str()) {
            return Err(invalid("the proof is for another URL (`htu`)"));
        }
        let iat =
            claims.get("iat").and_then(Value::as_u64).ok_or_else(|| invalid("the proof has no whole-second `iat`"))?;
        if iat > now.saturating_add(self.skew) {
            return Err(invalid("the proof's `iat` is in the future"));
        }
        if iat.saturating_add(self.max_age) < now {
            return Err(invalid("the proof is too old (`iat`)"));
        }
        if text("ath") != Some(sha256_b64(token.as_bytes()).as_str()) {
            return Err(invalid("the proof's `ath` is missing or is not the hash of this token"));
        }
        if let Some(nonce) = &p.nonce {
            if text("nonce") != Some(nonce.as_str()) {
                return Err(invalid("the proof does not carry the server's current nonce"));
            }
        }
        if key.thumbprint() != jkt {
            return Err(invalid("the proof's key is not the one the token is bound to (cnf.jkt)"));
        }
        // remembered only once everything else holds: a forged proof cannot use up a jti
        self.remember(jkt, jti, iat.saturating_add(self.max_age), now, fleet)
    }

    fn remember(
        &self,
        jkt: &str,
        jti: &str,
        until: u64,
        now: u64,
        fleet: Option<&dyn crate::fleet::Backend>,
    ) -> std::result::Result<(), Refusal> {
        let mut hasher = sha2::Sha256::new();
        hasher.update(jkt.as_bytes());
        hasher.update([0]);
        hasher.update(jti.as_bytes());
        let id: [u8; 32] = hasher.finalize().into();
        let replayed = || refuse(DenyCause::Replayed, "this DPoP proof was used before");
        let seen_here = |seen: &HashMap<[u8; 32], u64>| seen.get(&id).is_some_and(|&old| old >= now);
        if let Some(fleet) = fleet {
            // seen here: no need to ask; otherwise the fleet's memory decides (atomically, so
            // two members given the same proof at once accept it once), and the lock is not
            // held while Redis answers
            if seen_here(&self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner)) {
                return Err(replayed());
            }
            let key = B64.encode(id);
            match fleet.claim_once(&key, until.saturating_sub(now).saturating_add(1)) {
                Ok(true) => {}
                Ok(false) => return Err(replayed()),
                Err(e) => {
                    return Err(refuse(
                        DenyCause::DpopInvalid,
                        format!("the fleet's DPoP replay memory cannot be reached, so the proof is refused: {e}"),
                    ))
                }
            }
        }
        // a poisoned lock only means another thread panicked mid-insert: the map is still a map
        let mut seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen_here(&seen) {
            return Err(replayed());
        }
        if seen.len() >= self.capacity {
            seen.retain(|_, until| *until >= now);
            if seen.len() >= self.capacity {
                return Err(refuse(
                    DenyCause::DpopInvalid,
                    "too many live DPoP proofs to remember: refused rather than let through unremembered",
                ));
            }
        }
        seen.insert(id, until);
        Ok(())
    }
}

/// A URL as `htu` compares it (RFC 9449 §4.3, RFC 3986 §6.2.2-6.2.3): absolute `http` or
/// `https`, scheme and host lower-cased, the default port dropped, dot segments removed, an
/// empty path `/`, percent-encoded unreserved characters decoded and other escapes
/// upper-cased; without query and fragment.
fn normal_url(text: &str) -> Option<String> {
    let mut url = url::Url::parse(text).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return None;
    }
    url.set_query(None);
    url.set_fragment(None);
    let path = normal_escapes(url.path());
    url.set_path(&path);
    Some(url.to_string())
}

fn normal_escapes(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                let c = char::from(u8::try_from(h * 16 + l).unwrap_or(0));
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~') {
                    out.push(c);
                } else {
                    out.push('%');
                    out.push(char::from(bytes[i + 1]).to_ascii_uppercase());
                    out.push(char::from(bytes[i + 2]).to_ascii_uppercase());
                }
                i += 3;
                continue;
            }
        }
        out.push(char::from(bytes[i]));
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]
    use super::normal_url;

    #[test]
    fn urls_compare_after_normalisation() {
        let same = [
            ("https://API.Example/refunds", "https://api.example:443/refunds?x=1#top"),
            ("https://api.example", "https://api.example/"),
            ("https://api.example/a/./b/../c", "https://api.example/a/c"),
            ("https://api.example/%7euser/%2f", "https://api.example/~user/%2F"),
            ("HTTP://api.example:80/x", "http://api.example/x"),
        ];
        for (a, b) in same {
            assert_eq!(normal_url(a), normal_url(b), "{a} vs {b}");
            assert!(normal_url(a).is_some(), "{a}");
        }
        let different = [
            ("https://api.example/refunds", "https://api.example/refunds/"),
            ("https://api.example/refunds", "http://api.example/refunds"),
            ("https://api.example/refunds", "https://api.example:8443/refunds"),
            ("https://api.example/refunds", "https://evil.example/refunds"),
            ("https://api.example/a%2Fb", "https://api.example/a/b"),
        ];
        for (a, b) in different {
            assert_ne!(normal_url(a), normal_url(b), "{a} vs {b}");
        }
        for bad in ["/refunds", "ftp://api.example/x", "not a url", "", "https://api.example/%"] {
            if bad == "https://api.example/%" {
                assert!(normal_url(bad).is_some(), "a lone % is kept as it is");
            } else {
                assert_eq!(normal_url(bad), None, "{bad}");
            }
        }
    }
}
