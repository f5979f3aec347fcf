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
use crate::jose::{parse_jws, refuse, Refusal};
pub use crate::jose::{Algorithm, IssuerKey, TrustedIssuers};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The media type in a credential's `typ` header.
pub const CREDENTIAL_TYPE: &str = "ambit+jwt";
/// The largest credential accepted, in bytes: larger ones are `invalid_token` before any
/// decoding.
pub const MAX_CREDENTIAL_BYTES: usize = 64 * 1024;
/// Clock skew allowed on `iat` / `nbf` / `exp`, in seconds.
pub const CLOCK_SKEW_SECONDS: u64 = 60;

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
    record: &crate::agent::AgentRecord,
    hops: &[(cedar_policy::EntityUid, crate::registry::Hop)],
    key: &IssuerKey,
    holder: Option<&str>,
    now: u64,
) -> Result<String> {
    if holder.is_some_and(|h| !crate::jose::is_thumbprint(h)) {
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
        iss: key.issuer().to_owned(),
        sub: record.chain_text.last().cloned().unwrap_or_default(),
        iat: now,
        nbf: None,
        exp: record.expires_at,
        jti: uuid::Uuid::new_v4().to_string(),
        chain,
        cnf: holder.map(|jkt| Confirmation { jkt: jkt.to_owned() }),
    };
    sign(key, &claims)
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
            uids.push(crate::uid::parse_uid(&link.uid, "chain link").map_err(|e| invalid(e.message().to_owned()))?);
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
            let spec = crate::agent::AgentSpec::new(claims.chain[i - 1].uid.clone(), agent.task.clone(), ttl)
                .scopes(agent.scopes.iter().cloned())
                .resources(agent.resources.iter().cloned())
                .attributes(agent.attributes.clone());
            let imported = crate::agent::Imported {
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

/// Signs `claims` as a credential with `key`.
fn sign(key: &IssuerKey, claims: &Claims) -> Result<String> {
    let header = serde_json::json!({"alg": key.algorithm().as_str(), "typ": CREDENTIAL_TYPE, "kid": key.kid()});
    let header = B64.encode(serde_json::to_vec(&header).map_err(|e| Error::internal(e.to_string()))?);
    let payload = B64.encode(serde_json::to_vec(claims).map_err(|e| Error::internal(e.to_string()))?);
    let input = format!("{header}.{payload}");
    let signature = key.signature(input.as_bytes());
    Ok(format!("{input}.{}", B64.encode(signature)))
}
