//! External OAuth access tokens (RFC 9068 JWTs, RFC 8693 token exchange) as decision inputs:
//! a token's `sub` and its nested `act` claims become the delegation chain, root first (the
//! person, then each actor, the outermost `act` last: the current actor), each hop decided by
//! Cedar as for any chain; `scope` / `scp` narrow the actions like agent scopes; selected
//! claims become `context.token`.

use crate::decision::DenyCause;
use crate::error::{Error, Result};
use crate::jose::{Algorithm, TrustedIssuers};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::PathBuf;

/// The largest token read.
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;
/// The name in `context_claims` that is not a claim but ambit's verdict: `context.token.dpop_bound`
/// is whether a valid DPoP proof bound this token to its holder's key (a token's own claim of
/// that name is never copied).
pub const DPOP_BOUND: &str = "dpop_bound";

/// An OAuth issuer whose access tokens this authorizer accepts (option `oauth_issuers`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OAuthIssuerOptions {
    /// Its `iss`.
    pub issuer: String,
    /// The `aud` its tokens must name (this service).
    pub audience: String,
    /// Its JWKS file, or inline `jwks`: exactly one.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Its JWKS (`{"keys": [...]}`).
    #[serde(default)]
    pub jwks: Option<Value>,
    /// The algorithms accepted (default both: `ES256`, `EdDSA`); a key answers only for its own.
    #[serde(default)]
    pub algorithms: Option<Vec<String>>,
    /// Skew allowed on `exp`, `nbf` and `iat` (default 60).
    #[serde(default)]
    pub clock_skew_seconds: Option<u64>,
    /// The entity type of `sub` (the person or client the token is for).
    pub principal_type: String,
    /// The entity type of each `act.sub` (the agents or services acting).
    pub actor_type: String,
    /// Claims copied into the context as `context.token.<claim>` (the action's context type
    /// must declare `token`); none by default. `dpop_bound` names no claim: it is whether a
    /// valid DPoP proof came with the token (a boolean).
    #[serde(default)]
    pub context_claims: Option<Vec<String>>,
    /// Claims that become attributes of the subject's entity (same names), for a subject the
    /// entity store does not know (a known one is decided as the store says); none by default.
    #[serde(default)]
    pub principal_claims: Option<Vec<String>>,
    /// Members of each `act` claim that become attributes of that actor's entity, likewise.
    #[serde(default)]
    pub actor_claims: Option<Vec<String>>,
}

/// An issuer, ready to verify.
#[derive(Debug, Clone)]
pub(crate) struct OAuthIssuer {
    pub(crate) issuer: String,
    audience: String,
    keys: TrustedIssuers,
    algorithms: Vec<Algorithm>,
    skew: u64,
    principal_type: String,
    actor_type: String,
    context_claims: Vec<String>,
    principal_claims: Vec<String>,
    actor_claims: Vec<String>,
}

impl OAuthIssuer {
    /// # Errors
    /// `AMBIT_CONFIG` for a malformed JWKS or algorithm, `AMBIT_IO` for a JWKS file that does
    /// not read.
    pub(crate) fn from_options(o: &OAuthIssuerOptions) -> Result<Self> {
        let jwks = match (&o.file, &o.jwks) {
            (Some(path), None) => std::fs::read_to_string(path).map_err(|e| Error::io(path, &e))?,
            (None, Some(v)) => v.to_string(),
            _ => {
                return Err(Error::config(format!(
                    "OAuth issuer `{}` needs exactly one of `file` and `jwks`",
                    crate::error::user_text(&o.issuer)
                )))
            }
        };
        let mut keys = TrustedIssuers::default();
        keys.add(o.issuer.clone(), &jwks)?;
        let algorithms = Algorithm::list(o.algorithms.as_deref(), "algorithms")?;
        for (what, t) in [("principal_type", &o.principal_type), ("actor_type", &o.actor_type)] {
            t.parse::<cedar_policy::EntityTypeName>().map_err(|_| {
                Error::config(format!("`{what}` `{}` is not an entity type", crate::error::user_text(t)))
            })?;
        }
        Ok(Self {
            issuer: o.issuer.clone(),
            audience: o.audience.clone(),
            keys,
            algorithms,
            skew: o.clock_skew_seconds.unwrap_or(crate::credential::CLOCK_SKEW_SECONDS),
            principal_type: o.principal_type.clone(),
            actor_type: o.actor_type.clone(),
            context_claims: o.context_claims.clone().unwrap_or_default(),
            principal_claims: o.principal_claims.clone().unwrap_or_default(),
            actor_claims: o.actor_claims.clone().unwrap_or_default(),
        })
    }
}

/// A verified token's claims, shared between the memory and the decisions that use them.
type SignedClaims = std::sync::Arc<Map<String, Value>>;

/// The most verified tokens remembered; past it the memory starts over.
const MAX_REMEMBERED: usize = 16 * 1024;

/// The configured issuers and the tokens whose signature they verified, remembered by the
/// token's SHA-256: a token presented again is not verified again (its times, audience and
/// chain still are). Swapped whole when a reload reads the issuers' keys again, so a key
/// rotated out verifies nothing it verified before.
pub(crate) struct Issuers {
    list: Vec<OAuthIssuer>,
    verified: papaya::HashMap<[u8; 32], (SignedClaims, usize)>,
}

impl std::fmt::Debug for Issuers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuers").field("list", &self.list).finish_non_exhaustive()
    }
}

impl Issuers {
    pub(crate) fn new(list: Vec<OAuthIssuer>) -> Self {
        Self { list, verified: papaya::HashMap::new() }
    }

    /// The claims of a token whose signature one of these issuers verified, and that issuer.
    fn signed(&self, token: &str) -> std::result::Result<(SignedClaims, &OAuthIssuer), Refused> {
        use sha2::Digest as _;
        if token.len() > MAX_TOKEN_BYTES {
            return Err(refuse(DenyCause::InvalidToken, "the token is larger than the limit"));
        }
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let verified = self.verified.pin();
        if let Some((claims, i)) = verified.get(&digest) {
            if let Some(issuer) = self.list.get(*i) {
                return Ok((std::sync::Arc::clone(claims), issuer));
            }
        }
        let (claims, issuer) = signed(token, &self.list)?;
        let index = self.list.iter().position(|i| std::ptr::eq(i, issuer)).unwrap_or(usize::MAX);
        let claims = std::sync::Arc::new(claims);
        if verified.len() >= MAX_REMEMBERED {
            verified.clear();
        }
        verified.insert(digest, (std::sync::Arc::clone(&claims), index));
        Ok((claims, issuer))
    }
}

/// What a verified token asks for.
#[derive(Debug)]
pub(crate) struct Admitted {
    /// Whether `context_claims` asks for `dpop_bound`.
    pub(crate) wants_dpop_bound: bool,
    /// Root first: the subject, then each actor, the current actor last.
    pub(crate) chain: Vec<String>,
    /// The token's scopes, when it has any (`None`: the token does not narrow actions).
    pub(crate) scopes: Option<Vec<String>>,
    /// `context.token`, when claims are mapped.
    pub(crate) token_context: Option<Map<String, Value>>,
    /// `cnf.jkt`: the key a DPoP proof must be made with.
    pub(crate) jkt: Option<String>,
    /// The chain's entities as the token describes them (Cedar entity JSON), root first, for
    /// the hops whose attributes are mapped from claims.
    pub(crate) entities: Vec<(String, Value)>,
}

use crate::jose::{refuse, Refusal as Refused};

fn time_claim(claims: &Map<String, Value>, name: &str) -> std::result::Result<Option<u64>, Refused> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| refuse(DenyCause::InvalidToken, format!("`{name}` is not a whole number of seconds"))),
    }
}

/// The claims of a token whose form, algorithm, issuer, key and signature check out, and its
/// issuer.
fn signed<'i>(
    token: &str,
    issuers: &'i [OAuthIssuer],
) -> std::result::Result<(Map<String, Value>, &'i OAuthIssuer), Refused> {
    let invalid = |why: &str| refuse(DenyCause::InvalidToken, why);
    if issuers.is_empty() {
        return Err(refuse(DenyCause::UntrustedIssuer, "this authorizer trusts no OAuth issuer"));
    }
    let jws = crate::jose::parse_jws(token, MAX_TOKEN_BYTES, "token")?;
    match jws.header.typ.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("jwt" | "at+jwt" | "application/at+jwt") => {}
        Some(_) => return Err(invalid("the type is not an access token's (JWT, at+jwt)")),
    }
    let claims: Map<String, Value> =
        serde_json::from_slice(&jws.payload).map_err(|_| invalid("the payload is not a JSON object"))?;
    let iss = claims.get("iss").and_then(Value::as_str).ok_or_else(|| invalid("the token has no `iss`"))?;
    let issuer = issuers
        .iter()
        .find(|i| i.issuer == iss)
        .ok_or_else(|| refuse(DenyCause::UntrustedIssuer, "the issuer is not trusted"))?;
    if !issuer.algorithms.contains(&jws.alg) {
        return Err(invalid("the algorithm is not one this issuer is trusted for"));
    }
    let key = issuer
        .keys
        .key_for(iss, jws.kid.as_deref().ok_or_else(|| invalid("the header has no kid"))?)
        .ok_or_else(|| refuse(DenyCause::UntrustedIssuer, "the issuer's key is not trusted"))?;
    jws.verified_by(key)?;
    Ok((claims, issuer))
}

/// Verifies `token` against the configured issuers at `now`: who it is for and through whom.
pub(crate) fn admit(
    token: &str,
    issuers: &Issuers,
    max_depth: u32,
    now: u64,
) -> std::result::Result<Admitted, Refused> {
    let invalid = |why: &str| refuse(DenyCause::InvalidToken, why);
    let (claims, issuer) = issuers.signed(token)?;
    let skew = issuer.skew;
    let exp = time_claim(&claims, "exp")?.ok_or_else(|| invalid("the token has no `exp`"))?;
    if exp.saturating_add(skew) <= now {
        return Err(refuse(DenyCause::TokenExpired, "the token has expired"));
    }
    for name in ["nbf", "iat"] {
        if time_claim(&claims, name)?.is_some_and(|t| t > now.saturating_add(skew)) {
            return Err(invalid(&format!("the token is not valid yet (`{name}` in the future)")));
        }
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == &issuer.audience,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(issuer.audience.as_str())),
        _ => false,
    };
    if !aud_ok {
        return Err(invalid("the token is not for this audience"));
    }
    let sub = claims.get("sub").and_then(Value::as_str).ok_or_else(|| invalid("the token has no `sub`"))?;
    // nested `act`, outermost first (RFC 8693 4.1): the current actor, then who it acts for
    let mut actors: Vec<(&str, &Map<String, Value>)> = Vec::new();
    let mut act = claims.get("act");
    while let Some(a) = act {
        if actors.len() >= max_depth as usize {
            return Err(refuse(DenyCause::DepthExceeded, "the token's `act` chain is deeper than the limit"));
        }
        let a = a.as_object().ok_or_else(|| invalid("an `act` claim is not an object"))?;
        actors.push((a.get("sub").and_then(Value::as_str).ok_or_else(|| invalid("an `act` claim has no `sub`"))?, a));
        act = a.get("act");
    }
    if let Some(may) = claims.get("may_act") {
        let allowed = may.get("sub").and_then(Value::as_str).ok_or_else(|| invalid("`may_act` has no `sub`"))?;
        if actors.first().is_some_and(|(current, _)| *current != allowed) {
            return Err(invalid("the current actor is not the one `may_act` allows"));
        }
    }
    let uid = |t: &str, id: &str| {
        crate::uid::format_uid(t, id).map_err(|e| refuse(DenyCause::InvalidToken, e.message().to_owned()))
    };
    let mut chain = vec![uid(&issuer.principal_type, sub)?];
    let mut entities = Vec::new();
    let described = |ty: &str, id: &str, names: &[String], from: &Map<String, Value>| {
        let attrs: Map<String, Value> =
            names.iter().filter_map(|n| from.get(n).map(|v| (n.clone(), v.clone()))).collect();
        serde_json::json!({"uid": {"type": ty, "id": id}, "attrs": attrs, "parents": []})
    };
    if !issuer.principal_claims.is_empty() {
        entities.push((chain[0].clone(), described(&issuer.principal_type, sub, &issuer.principal_claims, &claims)));
    }
    for (a, from) in actors.iter().rev() {
        let text = uid(&issuer.actor_type, a)?;
        if !issuer.actor_claims.is_empty() {
            entities.push((text.clone(), described(&issuer.actor_type, a, &issuer.actor_claims, from)));
        }
        chain.push(text);
    }
    let scopes = match (claims.get("scope"), claims.get("scp")) {
        (Some(Value::String(s)), _) | (None, Some(Value::String(s))) => {
            Some(s.split_whitespace().map(str::to_owned).collect())
        }
        (None, Some(Value::Array(list))) => Some(
            list.iter()
                .map(|s| s.as_str().map(str::to_owned).ok_or_else(|| invalid("`scp` is not a list of strings")))
                .collect::<std::result::Result<Vec<_>, _>>()?,
        ),
        (None, None) => None,
        _ => return Err(invalid("`scope` is not a string")),
    };
    let jkt = match claims.get("cnf") {
        None => None,
        Some(cnf) => match cnf.as_object().map(|o| (o.get("jkt"), o.len())) {
            Some((Some(Value::String(jkt)), 1)) if crate::jose::is_thumbprint(jkt) => Some(jkt.clone()),
            // a token bound some other way (an mTLS certificate: `x5t#S256`) cannot be proven
            // here: refused, never taken as a bearer token
            _ => return Err(invalid("the token's `cnf` is not a DPoP key thumbprint (`jkt`) alone")),
        },
    };
    let token_context = (!issuer.context_claims.is_empty()).then(|| {
        issuer
            .context_claims
            .iter()
            .filter(|c| c.as_str() != DPOP_BOUND)
            .filter_map(|c| claims.get(c).map(|v| (c.clone(), v.clone())))
            .collect()
    });
    let wants_dpop_bound = issuer.context_claims.iter().any(|c| c == DPOP_BOUND);
    Ok(Admitted { wants_dpop_bound, chain, scopes, token_context, jkt, entities })
}
