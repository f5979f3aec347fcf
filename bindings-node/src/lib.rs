//! The Node face of the `ambit` crate (napi-rs). Glue only: typed `#[napi(object)]` structs
//! mirror `ambit::wire`, the core is called, results and errors are converted. Errors carry
//! the stable code as `err.code`.

use napi::bindgen_prelude::*;

/// The addon's own allocations (requests, decisions, Cedar's evaluation) go to mimalloc: a
/// decision allocates and frees dozens of small blocks, ~15% of its time under glibc malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use serde_json::Value;
use std::sync::{Arc, Mutex};

/// `ambit::Error` as a JS `Error` whose `code` is the stable code string.
fn to_js(e: ambit::Error) -> napi::Error<String> {
    napi::Error::new(e.code().to_owned(), e.to_string())
}

/// A JS string as Rust text, refusing lone surrogates rather than replacing them with U+FFFD
/// (which would make different strings the same uid).
fn utf16_text(s: &Utf16String, what: &str) -> napi::Result<String, String> {
    ambit::wire::text_from_utf16(s, what).map_err(to_js)
}

fn texts(list: &[Utf16String], what: &str) -> napi::Result<Vec<String>, String> {
    list.iter().map(|s| utf16_text(s, what)).collect()
}

fn bad_arg(message: impl Into<String>) -> napi::Error<String> {
    to_js(ambit::wire::invalid_value(message))
}

/// An argument as `T`. Arguments arrive as `Unknown` and are converted here, so a value of the
/// wrong type is `AMBIT_INVALID_REQUEST` like every other bad input (napi's own conversion
/// would throw its status, `StringExpected`, with no ambit code).
fn arg<T: FromNapiValue>(value: Unknown<'_>, what: &str, expected: &str) -> napi::Result<T, String> {
    T::from_unknown(value).map_err(|_| bad_arg(format!("{what} must be {expected}")))
}

/// A string argument; lone surrogates refused.
fn text_arg(value: Unknown<'_>, what: &str) -> napi::Result<String, String> {
    utf16_text(&arg::<Utf16String>(value, what, "a string")?, what)
}

/// An optional string argument (absent, `undefined` or `null`: none).
fn opt_text_arg(value: Option<Unknown<'_>>, what: &str) -> napi::Result<Option<String>, String> {
    value.map(|v| text_arg(v, what)).transpose()
}

/// A uid argument: a `Uid`, or uid text (checked where it is used).
fn uid_arg(value: Unknown<'_>, what: &str) -> napi::Result<String, String> {
    if value.get_type().is_ok_and(|t| t == ValueType::Object) {
        return ClassInstance::<Uid>::from_unknown(value)
            .map(|u| u.0.as_str().to_owned())
            .map_err(|_| bad_arg(format!("{what} must be uid text or a Uid")));
    }
    utf16_text(&arg::<Utf16String>(value, what, "uid text or a Uid")?, what)
}

/// A JSON value argument (an object, array, string, number, boolean or null).
fn json_arg(value: Unknown<'_>, what: &str) -> napi::Result<Value, String> {
    arg::<Value>(value, what, "a JSON value")
}

/// A count argument (see [`count`]).
fn count_arg(value: Unknown<'_>, what: &str, max: u64) -> napi::Result<u64, String> {
    count(arg::<f64>(value, what, "a number")?, what, max)
}

/// A JS number as JSON: a whole number napi handed over as a double (above `u32::MAX`) is
/// the integer it is, within 2^53, so `auditMaxRecordBytes: 5e9` reads as a count.
fn whole_number(n: serde_json::Number) -> serde_json::Number {
    match n.as_f64() {
        Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0 => {
            #[expect(clippy::cast_possible_truncation, reason = "whole and within 2^53: exact")]
            let i = f as i64;
            serde_json::Number::from(i)
        }
        _ => n,
    }
}

/// A JS number that must be a whole, non-negative count no larger than `max`: a negative,
/// fractional, non-finite or too large value is refused (napi's own conversion would wrap
/// `-1` to `4294967295`).
fn count(value: f64, what: &str, max: u64) -> napi::Result<u64, String> {
    #[expect(clippy::cast_precision_loss, reason = "max is at most 2^53 here; compared as a double")]
    let ok = value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value <= max.min(1 << 53) as f64;
    if !ok {
        return Err(bad_arg(format!("{what} must be a whole number from 0 to {max}, not {value}")));
    }
    #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "checked whole and in range above")]
    Ok(value as u64)
}

/// A request as the package's glue (ambit.js) hands it over: uids as JS strings (read as
/// UTF-16, so lone surrogates are refused), context and entities as `JSON.stringify` text (one
/// V8 call instead of a property read per field). `explain` takes one.
#[napi(object)]
pub struct RawRequest {
    pub principal: Utf16String,
    /// A bare action name (`issue_refund`) or a full uid.
    pub action: Utf16String,
    pub resource: Utf16String,
    /// The context object as JSON text.
    pub context: Option<String>,
    /// Request entities (an array of entity objects) as JSON text.
    pub entities: Option<String>,
    /// Explicit delegators, root first.
    pub on_behalf_of: Option<Vec<Utf16String>>,
}

/// A mint's spec from the package's options; `attributes` is JSON text.
fn agent_spec(options: &MintOptions, attributes: Option<String>) -> napi::Result<ambit::AgentSpec, String> {
    let parent = utf16_text(&options.parent, "parent")?;
    let task = utf16_text(&options.task, "task")?;
    let mut spec = ambit::AgentSpec::new(parent, task, count(options.ttl_seconds, "ttlSeconds", u64::MAX)?)
        .scopes(texts(&options.scopes, "scope")?)
        .resources(texts(options.resources.as_deref().unwrap_or_default(), "resource")?);
    if let Some(text) = attributes {
        match ambit::wire::json_from_text::<Value>(&text, "attributes").map_err(to_js)? {
            Value::Object(map) => spec = spec.attributes(map),
            _ => return Err(bad_arg("attributes must be an object")),
        }
    }
    Ok(spec)
}

/// Who asks for what, without a context: `precheck`'s request.
#[napi(object)]
pub struct PrecheckRequest {
    pub principal: Utf16String,
    /// A bare action name (`issue_refund`) or a full uid.
    pub action: Utf16String,
    pub resource: Utf16String,
    /// Explicit delegators, root first.
    pub on_behalf_of: Option<Vec<Utf16String>>,
}

fn to_request(
    principal: &Utf16String,
    action: &Utf16String,
    resource: &Utf16String,
    context: Option<&str>,
    entities: Option<&str>,
    on_behalf_of: Option<&[Utf16String]>,
) -> napi::Result<ambit::Request, String> {
    let mut req = ambit::Request::new(
        utf16_text(principal, "principal")?,
        utf16_text(action, "action")?,
        utf16_text(resource, "resource")?,
    );
    if let Some(c) = context {
        req = req.with_context(ambit::wire::json_from_text::<Value>(c, "context").map_err(to_js)?);
    }
    if let Some(e) = entities {
        req = req.with_entities(ambit::wire::json_from_text::<Vec<Value>>(e, "entities").map_err(to_js)?);
    }
    if let Some(chain) = on_behalf_of {
        req = req.on_behalf_of(texts(chain, "onBehalfOf")?);
    }
    Ok(req)
}

fn raw_request(r: &RawRequest) -> napi::Result<ambit::Request, String> {
    to_request(
        &r.principal,
        &r.action,
        &r.resource,
        r.context.as_deref(),
        r.entities.as_deref(),
        r.on_behalf_of.as_deref(),
    )
}

/// An error in one slot of `authorizeBatch`'s answer.
#[napi(object)]
pub struct BatchError {
    pub code: String,
    pub message: String,
}

/// A template link: `templateId` linked as `linkId`, with its slots.
#[napi(object)]
pub struct LinkOptions {
    pub template_id: Utf16String,
    pub link_id: Utf16String,
    /// `?principal`, an entity uid.
    pub principal: Option<Utf16String>,
    /// `?resource`, an entity uid.
    pub resource: Option<Utf16String>,
}

/// A template link now serving.
#[napi(object)]
pub struct LinkInfo {
    pub template_id: String,
    pub link_id: String,
    pub principal: Option<String>,
    pub resource: Option<String>,
}

/// What to mint.
#[napi(object)]
pub struct MintOptions {
    pub parent: Utf16String,
    pub task: Utf16String,
    pub scopes: Vec<Utf16String>,
    pub ttl_seconds: f64,
    pub resources: Option<Vec<Utf16String>>,
}

/// A minted agent.
#[napi(object)]
pub struct Agent {
    pub uid: String,
    pub parent: String,
    pub owner: String,
    pub chain: Vec<String>,
    pub task: String,
    pub scopes: Vec<String>,
    pub resources: Vec<String>,
    pub depth: u32,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked: bool,
}

impl From<ambit::Agent> for Agent {
    fn from(a: ambit::Agent) -> Self {
        Self {
            uid: a.uid().to_owned(),
            parent: a.parent().to_owned(),
            owner: a.owner().to_owned(),
            chain: a.chain().to_vec(),
            task: a.task().to_owned(),
            scopes: a.scopes().to_vec(),
            resources: a.resources().to_vec(),
            depth: a.depth(),
            created_at: i64::try_from(a.created_at()).unwrap_or(i64::MAX),
            expires_at: i64::try_from(a.expires_at()).unwrap_or(i64::MAX),
            revoked: a.revoked(),
        }
    }
}

/// What a successful reload produced.
#[napi(object)]
pub struct ReloadOutcome {
    pub version: String,
    pub generation: i64,
}

impl From<ambit::ReloadOutcome> for ReloadOutcome {
    fn from(o: ambit::ReloadOutcome) -> Self {
        Self { version: o.version, generation: i64::try_from(o.generation).unwrap_or(i64::MAX) }
    }
}

/// A clock that only moves when told to, for tests.
#[napi]
pub struct ManualClock(ambit::ManualClock);

#[napi]
impl ManualClock {
    #[napi(constructor)]
    pub fn new(#[napi(ts_arg_type = "number")] now: Unknown<'_>) -> napi::Result<Self, String> {
        Ok(Self(ambit::ManualClock::new(count_arg(now, "now", u64::MAX)?)))
    }
    #[napi]
    pub fn advance(&self, #[napi(ts_arg_type = "number")] seconds: Unknown<'_>) -> napi::Result<(), String> {
        self.0.advance(count_arg(seconds, "seconds", u64::MAX)?);
        Ok(())
    }
    /// Sets the time (epoch seconds).
    #[napi]
    pub fn set(&self, #[napi(ts_arg_type = "number")] now: Unknown<'_>) -> napi::Result<(), String> {
        self.0.set(count_arg(now, "now", u64::MAX)?);
        Ok(())
    }
    /// The time (epoch seconds).
    #[napi]
    pub fn now(&self) -> f64 {
        #[expect(clippy::cast_precision_loss, reason = "epoch seconds are far below 2^53")]
        let now = ambit::Clock::now(&self.0) as f64;
        now
    }
}

/// An issuer's Ed25519 signing key for agent credentials.
#[napi]
pub struct IssuerKey(ambit::IssuerKey);

#[napi]
impl IssuerKey {
    /// Keys are made by `IssuerKey.generate` or `IssuerKey.fromJwk`: `new IssuerKey()` is
    /// `AMBIT_INVALID_REQUEST`.
    #[napi(constructor, skip_typescript)]
    pub fn new() -> napi::Result<Self, String> {
        Err(bad_arg("keys are made by IssuerKey.generate(issuer, kid) or IssuerKey.fromJwk(issuer, jwk)"))
    }
    /// A new random key for `issuer`, named `kid`; `alg` is `'EdDSA'` (default) or `'ES256'`.
    #[napi(factory)]
    pub fn generate(
        #[napi(ts_arg_type = "string")] issuer: Unknown<'_>,
        #[napi(ts_arg_type = "string")] kid: Unknown<'_>,
        #[napi(ts_arg_type = "'EdDSA' | 'ES256'")] alg: Option<Unknown<'_>>,
    ) -> napi::Result<Self, String> {
        let alg = match opt_text_arg(alg, "alg")? {
            Some(a) => ambit::Algorithm::from_name(&a).map_err(to_js)?,
            None => ambit::Algorithm::EdDSA,
        };
        ambit::IssuerKey::generate_with(text_arg(issuer, "issuer")?, text_arg(kid, "kid")?, alg)
            .map(Self)
            .map_err(to_js)
    }
    /// The algorithm it signs with (`'EdDSA'` or `'ES256'`).
    #[napi(getter, ts_return_type = "'EdDSA' | 'ES256'")]
    pub fn algorithm(&self) -> &'static str {
        self.0.algorithm().as_str()
    }
    /// The key from its private JWK text, signing as `issuer`.
    #[napi(factory)]
    pub fn from_jwk(
        #[napi(ts_arg_type = "string")] issuer: Unknown<'_>,
        #[napi(ts_arg_type = "string")] jwk: Unknown<'_>,
    ) -> napi::Result<Self, String> {
        ambit::IssuerKey::from_jwk(text_arg(issuer, "issuer")?, &text_arg(jwk, "jwk")?).map(Self).map_err(to_js)
    }
    /// The issuer name it signs as.
    #[napi(getter)]
    pub fn issuer(&self) -> String {
        self.0.issuer().to_owned()
    }
    /// The key id.
    #[napi(getter)]
    pub fn kid(&self) -> String {
        self.0.kid().to_owned()
    }
    /// The private JWK: keep it where only the issuer reads it.
    #[napi(ts_return_type = "Record<string, unknown>")]
    pub fn private_jwk(&self) -> Value {
        self.0.private_jwk()
    }
    /// The public JWKS verifiers trust (`trustedIssuers: [{ issuer, jwks }]`).
    #[napi(ts_return_type = "{ keys: Array<Record<string, unknown>> }")]
    pub fn public_jwks(&self) -> Value {
        self.0.public_jwks()
    }
    /// Signs `claims` as a JWT (`typ: JWT`, this key's `alg` and `kid`): an access token for
    /// `authorizeToken` when no identity provider issues them.
    #[napi]
    pub fn sign_jwt(
        &self,
        #[napi(ts_arg_type = "Record<string, unknown>")] claims: Unknown<'_>,
    ) -> napi::Result<String, String> {
        self.0.sign_jwt(&json_arg(claims, "claims")?).map_err(to_js)
    }
    /// Signs `header` and `claims` exactly as given as a compact JWS.
    #[napi]
    pub fn sign_jws(
        &self,
        #[napi(ts_arg_type = "Record<string, unknown>")] header: Unknown<'_>,
        #[napi(ts_arg_type = "Record<string, unknown>")] claims: Unknown<'_>,
    ) -> napi::Result<String, String> {
        self.0.sign_jws(&json_arg(header, "header")?, &json_arg(claims, "claims")?).map_err(to_js)
    }
    /// The RFC 7638 thumbprint of its public key: the `cnf.jkt` (or `issueCredential`
    /// `holder`) of what is bound to it.
    #[napi]
    pub fn thumbprint(&self) -> String {
        self.0.thumbprint()
    }
    /// A DPoP proof (RFC 9449) by this key for one call (`method`, `url`) with `accessToken`;
    /// `nonce` when the server gave one, `iat` (default now) in epoch seconds.
    #[napi]
    pub fn dpop_proof(
        &self,
        #[napi(ts_arg_type = "string")] method: Unknown<'_>,
        #[napi(ts_arg_type = "string")] url: Unknown<'_>,
        #[napi(ts_arg_type = "string")] access_token: Unknown<'_>,
        #[napi(ts_arg_type = "string")] nonce: Option<Unknown<'_>>,
        #[napi(ts_arg_type = "number")] iat: Option<Unknown<'_>>,
    ) -> napi::Result<String, String> {
        let nonce = opt_text_arg(nonce, "nonce")?;
        let iat = iat.map(|t| count_arg(t, "iat", u64::MAX)).transpose()?;
        self.0
            .dpop_proof(
                &text_arg(method, "method")?,
                &text_arg(url, "url")?,
                &text_arg(access_token, "accessToken")?,
                nonce.as_deref(),
                iat,
            )
            .map_err(to_js)
    }
}

/// A `dpop` argument as JSON text (`{proof, method, url, nonce?}`); none is no proof.
fn dpop_proof(text: Option<&str>) -> napi::Result<Option<ambit::DpopProof>, String> {
    match text {
        None => Ok(None),
        Some(t) => ambit::DpopProof::from_json(&ambit::wire::json_from_text(t, "dpop").map_err(to_js)?).map_err(to_js),
    }
}

/// The audit callback gets each record as JSON text; the package's glue parses it (so keys such
/// as `__proto__` stay plain data) and contains whatever the user's function throws or rejects.
type AuditCallback = ThreadsafeFunction<String, Unknown<'static>, String, Status, false, true>;

/// The in-process authorizer.
#[napi]
pub struct Authorizer {
    inner: Arc<ambit::Authorizer>,
    watcher: Mutex<Option<ambit::Watcher>>,
}

/// `new Authorizer(options)` / `fromDir(path, options)`: `schema`, `policies` and `entities`
/// are sources; every other key goes to the core's `AuthorizerOptions` with its camelCase
/// name in `snake_case` (`errorMode` -> `error_mode`), which alone knows names and values. Values
/// are converted faithfully: strings refuse lone surrogates, whole numbers stay whole.
fn build(
    mut b: ambit::AuthorizerBuilder,
    options: Option<Unknown<'_>>,
    clock: Option<Unknown<'_>>,
    on_audit: Option<AuditCallback>,
) -> napi::Result<Authorizer, String> {
    let config = |what: &str| to_js(ambit::wire::config_error(what));
    if let Some(c) = clock {
        let c = ClassInstance::<ManualClock>::from_unknown(c).map_err(|_| config("clock must be a ManualClock"))?;
        b = b.clock(Arc::new(c.0.clone()));
    }
    let options = match options {
        Some(o) if o.get_type().is_ok_and(|t| t == ValueType::Object) => {
            Some(Object::from_unknown(o).map_err(|_| config("options must be an object"))?)
        }
        Some(_) => return Err(config("options must be an object")),
        None => None,
    };
    let js = |e: napi::Error| to_js(ambit::wire::config_error(format!("invalid options: {e}")));
    let mut named = serde_json::Map::new();
    if let Some(o) = options {
        for key in Object::keys(&o).map_err(js)? {
            match key.as_str() {
                "schema" => {
                    if let Some(text) = o.get::<Utf16String>("schema").map_err(js)? {
                        b = b.schema_str(utf16_text(&text, "schema text")?);
                    }
                }
                "policies" => {
                    if let Some(text) = o.get::<Utf16String>("policies").map_err(js)? {
                        b = b.policies_str(utf16_text(&text, "policy text")?);
                    }
                }
                "entities" => match o.get::<Value>("entities").map_err(js)? {
                    Some(Value::String(s)) => b = b.entities_json(s),
                    Some(v @ Value::Array(_)) => b = b.entities_json(v.to_string()),
                    Some(Value::Null) | None => {}
                    Some(_) => return Err(bad_arg("entities must be a JSON string or an array of entity objects")),
                },
                _ => {
                    let value = match o.get::<Value>(&key).map_err(js)? {
                        None => continue, // undefined: absent
                        Some(Value::String(lossy)) => match o.get::<Utf16String>(&key).map_err(js)? {
                            Some(text) => Value::String(utf16_text(&text, &format!("option {key}"))?),
                            None => Value::String(lossy),
                        },
                        Some(Value::Number(n)) => Value::Number(whole_number(n)),
                        Some(v) => v,
                    };
                    named.insert(key, value);
                }
            }
        }
    }
    let named = ambit::wire::snake_case_keys(named).map_err(to_js)?;
    let named = ambit::wire::AuthorizerOptions::from_json(&Value::Object(named)).map_err(to_js)?;
    let callback = on_audit.map(|cb| {
        Box::new(move |record: &ambit::AuditRecord| {
            let text = serde_json::to_string(record).unwrap_or_default();
            // NonBlocking: the queue is unbounded, and the writer thread must never wait on the
            // JS thread (which may itself be waiting in `auditFlush`)
            let _ = cb.call(text, ThreadsafeFunctionCallMode::NonBlocking);
        }) as ambit::wire::AuditCallback
    });
    b = named.apply(b, callback).map_err(to_js)?;
    let inner = b.build().map_err(to_js)?;
    Ok(Authorizer { inner: Arc::new(inner), watcher: Mutex::new(None) })
}

#[napi]
impl Authorizer {
    /// Builds an authorizer from `options`: sources (`schema`, `policies`, `entities`) and the
    /// core's settings. The package's `Authorizer.fromDir(path, ...)` passes `dir` too: every
    /// `*.cedarschema`, `*.cedar` and an optional `entities.json` there.
    #[napi(
        constructor,
        ts_args_type = "options: import('./ambit').AuthorizerOptions, clock?: ManualClock | undefined | null, onAudit?: (record: Record<string, unknown>) => void | Promise<void>"
    )]
    pub fn new(
        options: Option<Unknown<'_>>,
        clock: Option<Unknown<'_>>,
        on_audit: Option<AuditCallback>,
        dir: Option<String>,
    ) -> napi::Result<Self, String> {
        let builder = match dir {
            Some(path) => ambit::Authorizer::builder().dir(path),
            None => ambit::Authorizer::builder(),
        };
        build(builder, options, clock, on_audit)
    }

    /// Decides one request (the package's `authorize(request)` reads the request object and
    /// calls this): see [`decided`] for `allowed` and the returned text.
    #[napi(skip_typescript)]
    // positional, as JS passes them: a request object costs a property read per field
    #[allow(clippy::too_many_arguments)]
    pub fn authorize_raw(
        &self,
        allowed: Unknown<'_>,
        principal: Utf16String,
        action: Utf16String,
        resource: Utf16String,
        context: Option<String>,
        entities: Option<String>,
        on_behalf_of: Option<Vec<Utf16String>>,
    ) -> napi::Result<Latin1String, String> {
        let req = to_request(
            &principal,
            &action,
            &resource,
            context.as_deref(),
            entities.as_deref(),
            on_behalf_of.as_deref(),
        )?;
        decided(&self.inner.authorize(&req).map_err(to_js)?, allowed)
    }

    /// A signed credential (compact JWS text) for the live agent `agent`, signed with `key`.
    #[napi]
    /// With `holder` (a key's thumbprint) it is good only with a DPoP proof by that key.
    pub fn issue_credential(
        &self,
        #[napi(ts_arg_type = "string | Uid")] agent: Unknown<'_>,
        #[napi(ts_arg_type = "IssuerKey")] key: Unknown<'_>,
        #[napi(ts_arg_type = "string")] holder: Option<Unknown<'_>>,
    ) -> napi::Result<String, String> {
        let agent = uid_arg(agent, "agent")?;
        let key = arg::<ClassInstance<IssuerKey>>(key, "key", "an IssuerKey")?;
        let holder = opt_text_arg(holder, "holder")?;
        self.inner.issue_credential(&agent, &key.0, holder.as_deref()).map_err(to_js)
    }

    /// Decides for the agent a credential carries (the package's
    /// `authorizeCredential(request)` calls this).
    #[napi(skip_typescript)]
    pub fn authorize_credential_raw(
        &self,
        allowed: Unknown<'_>,
        credential: Utf16String,
        action: Utf16String,
        resource: Utf16String,
        context: Option<String>,
        dpop: Option<String>,
    ) -> napi::Result<Latin1String, String> {
        let dpop = dpop_proof(dpop.as_deref())?;
        let context: Value = match context {
            Some(text) => ambit::wire::json_from_text(&text, "context").map_err(to_js)?,
            None => Value::Null,
        };
        let d = self
            .inner
            .authorize_credential(
                &utf16_text(&credential, "credential")?,
                &utf16_text(&action, "action")?,
                &utf16_text(&resource, "resource")?,
                context,
                dpop.as_ref(),
            )
            .map_err(to_js)?;
        decided(&d, allowed)
    }

    /// Decides for an OAuth access token (the package's `authorizeToken(request)` calls this).
    #[napi(skip_typescript)]
    pub fn authorize_token_raw(
        &self,
        allowed: Unknown<'_>,
        token: Utf16String,
        action: Utf16String,
        resource: Utf16String,
        context: Option<String>,
        dpop: Option<String>,
    ) -> napi::Result<Latin1String, String> {
        let dpop = dpop_proof(dpop.as_deref())?;
        let context: Value = match context {
            Some(text) => ambit::wire::json_from_text(&text, "context").map_err(to_js)?,
            None => Value::Null,
        };
        let d = self
            .inner
            .authorize_token(
                &utf16_text(&token, "token")?,
                &utf16_text(&action, "action")?,
                &utf16_text(&resource, "resource")?,
                context,
                dpop.as_ref(),
            )
            .map_err(to_js)?;
        decided(&d, allowed)
    }

    /// Revokes a credential by its `jti`: every later decision with it is denied `revoked`.
    #[napi]
    pub fn revoke_credential(&self, #[napi(ts_arg_type = "string")] jti: Unknown<'_>) -> napi::Result<(), String> {
        self.inner.revoke_credential(&text_arg(jti, "jti")?).map_err(to_js)
    }

    /// What this process knows of its fleet feed (camelCase keys); `null` without a fleet.
    #[napi(ts_return_type = "import('./ambit').FleetStatus | null")]
    pub fn fleet_status(&self) -> Option<Value> {
        self.inner.fleet_status().and_then(|s| serde_json::to_value(s).ok()).map(ambit::wire::camel_case_keys)
    }

    /// Saves the registry as the fleet's checkpoint now and trims the feed to it; the event
    /// it covers.
    #[napi]
    pub fn fleet_checkpoint(&self) -> napi::Result<i64, String> {
        self.inner.fleet_checkpoint().map(|s| i64::try_from(s).unwrap_or(i64::MAX)).map_err(to_js)
    }

    /// The identity checks of a decision without its policies (chain, liveness, scopes): the
    /// deny cause every call of this action by this principal gets whatever its context, or
    /// `null` when the policies decide. The context is not read. Not audited. (The package's
    /// `precheck(request)` reads the request object and calls this.)
    #[napi(skip_typescript)]
    pub fn precheck_raw(&self, request: PrecheckRequest) -> napi::Result<Option<&'static str>, String> {
        let req = to_request(
            &request.principal,
            &request.action,
            &request.resource,
            None,
            None,
            request.on_behalf_of.as_deref(),
        )?;
        self.inner.precheck(&req).map(|c| c.map(ambit::DenyCause::code)).map_err(to_js)
    }

    /// Decides and explains, per hop (the package's `explain(request)` reads the request object
    /// and calls this).
    #[napi(skip_typescript)]
    pub fn explain_raw(&self, request: RawRequest) -> napi::Result<Explanation, String> {
        self.inner.explain(&raw_request(&request)?).map(Explanation::from).map_err(to_js)
    }

    /// Decides many requests on one policy version (the package's `authorizeBatch(requests)`
    /// writes them and calls this). `requests` holds one request per line, each in the request
    /// wire format's JSON (which has no raw newline); the answer holds one text per line in the
    /// same order: the decision's camel JSON (see [`decided`]), or for a request that could not
    /// be read or decided the error's (`{code, message}`). `allowed[i]` is 1 or 0 for a
    /// decision and 2 for an error. One text each way: a napi object read per request field and
    /// an object built per answer cost more than the parse and the text.
    #[napi(skip_typescript)]
    pub fn authorize_batch_raw(&self, allowed: Unknown<'_>, requests: String) -> napi::Result<Latin1String, String> {
        let slots =
            <&mut [u8]>::from_unknown(allowed).map_err(|_| bad_arg("the decision slots must be a Uint8Array"))?;
        let lines: Vec<&str> = if requests.is_empty() { Vec::new() } else { requests.split('\n').collect() };
        if lines.len() != slots.len() {
            return Err(bad_arg(format!("{} requests for {} decision slots", lines.len(), slots.len())));
        }
        // each read request moves to the batch (no copy of its context); a slot keeps only its error
        let mut good = Vec::with_capacity(lines.len());
        let read: Vec<Option<ambit::Error>> = lines
            .iter()
            .map(|line| match ambit::wire::json_from_text::<ambit::Request>(line, "request") {
                Ok(r) => {
                    good.push(r);
                    None
                }
                Err(e) => Some(e),
            })
            .collect();
        let mut decided = self.inner.authorize_batch(&good).into_iter();
        let mut out = String::with_capacity(lines.len() * 512);
        for (i, (r, slot)) in read.into_iter().zip(slots.iter_mut()).enumerate() {
            if i > 0 {
                out.push('\n');
            }
            let answer = match r {
                None => decided.next().unwrap_or_else(|| Err(ambit::wire::internal("a batch answer is missing"))),
                Some(e) => Err(e),
            };
            match answer {
                Ok(d) => {
                    *slot = u8::from(d.allowed());
                    out.push_str(&d.to_camel_json_string());
                }
                Err(e) => {
                    *slot = 2;
                    out.push_str(&e.to_camel_json_string());
                }
            }
        }
        Ok(Latin1String::from(out))
    }

    /// Mints a just-in-time agent; `attributes` is JSON text (the package's
    /// `mintAgent(options)` converts the attributes object faithfully first).
    #[napi(skip_typescript)]
    pub fn mint_agent_raw(&self, options: MintOptions, attributes: Option<String>) -> napi::Result<Agent, String> {
        self.inner.mint_agent(&agent_spec(&options, attributes)?).map(Agent::from).map_err(to_js)
    }

    /// A narrower credential for a sub-agent of the agent `credential` carries, signed with
    /// `key` (the package's `attenuate({ credential, key, task, scopes, ttlSeconds, ... })`
    /// calls this with an empty parent).
    #[napi(skip_typescript)]
    pub fn attenuate_raw(
        &self,
        credential: Utf16String,
        options: MintOptions,
        attributes: Option<String>,
        key: &IssuerKey,
    ) -> napi::Result<String, String> {
        let spec = agent_spec(&options, attributes)?;
        self.inner.attenuate(&utf16_text(&credential, "credential")?, &spec, &key.0).map_err(to_js)
    }

    /// Revokes an identity and its subtree; returns how many were cut off.
    #[napi]
    pub fn revoke(&self, #[napi(ts_arg_type = "string | Uid")] uid: Unknown<'_>) -> napi::Result<u32, String> {
        self.inner.revoke(&uid_arg(uid, "uid")?).map(|n| u32::try_from(n).unwrap_or(u32::MAX)).map_err(to_js)
    }

    /// Lifts the revocation of a person or service.
    #[napi]
    pub fn reinstate(&self, #[napi(ts_arg_type = "string | Uid")] uid: Unknown<'_>) -> napi::Result<bool, String> {
        self.inner.reinstate(&uid_arg(uid, "uid")?).map_err(to_js)
    }

    /// Links template `templateId` as the policy `linkId`, with `?principal` / `?resource`
    /// filled; kept across reloads until `unlink`.
    #[napi]
    pub fn link(&self, #[napi(ts_arg_type = "LinkOptions")] link: Unknown<'_>) -> napi::Result<ReloadOutcome, String> {
        let link =
            arg::<LinkOptions>(link, "link", "an object { templateId, linkId, principal?, resource? } of strings")?;
        let mut l =
            ambit::Link::new(utf16_text(&link.template_id, "templateId")?, utf16_text(&link.link_id, "linkId")?);
        if let Some(p) = &link.principal {
            l = l.principal(utf16_text(p, "principal")?);
        }
        if let Some(r) = &link.resource {
            l = l.resource(utf16_text(r, "resource")?);
        }
        self.inner.link(&l).map(ReloadOutcome::from).map_err(to_js)
    }

    /// The members of `arguments` (JSON text) that `action`'s context type declares, as JSON
    /// text (the package's `contextFor(action, args)` converts both ways).
    #[napi(skip_typescript)]
    pub fn context_for_json(&self, action: Utf16String, arguments: String) -> napi::Result<String, String> {
        let args = ambit::wire::json_from_text::<Value>(&arguments, "arguments").map_err(to_js)?;
        let out = self.inner.context_for(&utf16_text(&action, "action")?, &args).map_err(to_js)?;
        Ok(out.to_string())
    }

    /// Removes a run-time link.
    #[napi]
    pub fn unlink(&self, #[napi(ts_arg_type = "string")] link_id: Unknown<'_>) -> napi::Result<ReloadOutcome, String> {
        self.inner.unlink(&text_arg(link_id, "linkId")?).map(ReloadOutcome::from).map_err(to_js)
    }

    /// Every template link now serving.
    #[napi]
    pub fn links(&self) -> Vec<LinkInfo> {
        self.inner
            .links()
            .iter()
            .map(|l| LinkInfo {
                template_id: l.template_id().to_owned(),
                link_id: l.link_id().to_owned(),
                principal: l.args().get("?principal").cloned(),
                resource: l.args().get("?resource").cloned(),
            })
            .collect()
    }

    /// Re-reads every source; on error the last good policies keep serving.
    #[napi]
    pub fn reload(&self) -> napi::Result<ReloadOutcome, String> {
        self.inner.reload().map(ReloadOutcome::from).map_err(to_js)
    }

    /// `reload()` off the event loop (the package's `reloadAsync()` wraps this).
    #[napi(skip_typescript)]
    pub fn reload_async_raw(&self) -> AsyncTask<ReloadTask> {
        AsyncTask::new(ReloadTask(Arc::clone(&self.inner)))
    }

    #[napi]
    pub fn replace_policies(
        &self,
        #[napi(ts_arg_type = "string")] text: Unknown<'_>,
    ) -> napi::Result<ReloadOutcome, String> {
        self.inner.replace_policies(&text_arg(text, "policy text")?).map(ReloadOutcome::from).map_err(to_js)
    }

    #[napi]
    pub fn replace_entities(
        &self,
        #[napi(ts_arg_type = "string")] json: Unknown<'_>,
    ) -> napi::Result<ReloadOutcome, String> {
        self.inner.replace_entities(&text_arg(json, "entities json")?).map(ReloadOutcome::from).map_err(to_js)
    }

    /// Follows the policy files and reloads on change (the package's `watch(callback)` makes
    /// the callback safe and calls this).
    #[napi(skip_typescript)]
    pub fn watch_raw(&self, callback: Option<AuditCallback>) -> napi::Result<(), String> {
        let cb = callback.map(|cb| -> ambit::ReloadCallback {
            Box::new(move |outcome: &ambit::Result<ambit::ReloadOutcome>| {
                let text = serde_json::to_string(&ambit::wire::ReloadReport::from(outcome)).unwrap_or_default();
                let _ = cb.call(text, ThreadsafeFunctionCallMode::NonBlocking);
            })
        });
        let w = self.inner.watch(cb).map_err(to_js)?;
        if let Ok(mut slot) = self.watcher.lock() {
            *slot = Some(w);
        }
        Ok(())
    }

    #[napi]
    pub fn unwatch(&self) {
        if let Ok(mut slot) = self.watcher.lock() {
            slot.take();
        }
    }

    #[napi(
        ts_return_type = "{ reloads: number, failures: number, lastVersion: string | null, lastError: [string, string] | null } | null"
    )]
    pub fn watch_status(&self) -> Option<Value> {
        let status = self.watcher.lock().ok()?.as_ref().map(ambit::Watcher::status)?;
        serde_json::to_value(status).ok().map(ambit::wire::camel_case_keys)
    }

    #[napi]
    pub fn agents(&self) -> Vec<Agent> {
        self.inner.agents().into_iter().map(Agent::from).collect()
    }

    #[napi(ts_return_type = "import('./ambit').DelegationNode")]
    pub fn delegation_tree(
        &self,
        #[napi(ts_arg_type = "string | Uid")] root: Unknown<'_>,
    ) -> napi::Result<Value, String> {
        let tree = self.inner.delegation_tree(&uid_arg(root, "root")?).map_err(to_js)?;
        serde_json::to_value(tree).map(ambit::wire::camel_case_keys).map_err(|e| bad_arg(e.to_string()))
    }

    #[napi]
    pub fn purge_expired(&self) -> u32 {
        u32::try_from(self.inner.purge_expired()).unwrap_or(u32::MAX)
    }

    #[napi(getter)]
    pub fn policy_version(&self) -> String {
        self.inner.policy_version()
    }

    #[napi(getter)]
    pub fn generation(&self) -> i64 {
        i64::try_from(self.inner.generation()).unwrap_or(i64::MAX)
    }

    /// The most entities one request may carry (the package checks it before converting them).
    #[napi(getter)]
    pub fn max_request_entities(&self) -> u32 {
        u32::try_from(self.inner.limits().max_request_entities).unwrap_or(u32::MAX)
    }

    #[napi(getter)]
    pub fn policy_ids(&self) -> Vec<String> {
        self.inner.policy_ids()
    }

    /// The last `n` audit records, after flushing, as a JSON array text (the package's
    /// `auditRecent(n)` parses it).
    #[napi(skip_typescript)]
    pub fn audit_recent_json(&self, n: f64) -> napi::Result<String, String> {
        let n = usize::try_from(count(n, "n", u64::MAX)?).unwrap_or(usize::MAX);
        let records = self.inner.audit().map_or_else(Vec::new, |a| {
            a.flush();
            a.recent(n)
        });
        Ok(serde_json::to_string(&records).unwrap_or_else(|_| "[]".to_owned()))
    }

    /// Flushes the audit trail and closes it with a final `closed` record; afterwards every
    /// decision throws `AMBIT_AUDIT` (nothing is decided unrecorded). Idempotent; the package
    /// calls it for every audited authorizer when the process exits.
    #[napi]
    pub fn close(&self) {
        self.inner.close();
    }

    /// Waits until every audit record handed off so far is written.
    #[napi]
    pub fn flush(&self) {
        self.inner.flush();
    }

    #[napi]
    pub fn audit_flush(&self) {
        if let Some(a) = self.inner.audit() {
            a.flush();
        }
    }

    #[napi]
    pub fn audit_dropped(&self) -> i64 {
        self.inner.audit().map_or(0, |a| i64::try_from(a.dropped()).unwrap_or(i64::MAX))
    }
}

pub struct ReloadTask(Arc<ambit::Authorizer>);

/// The core's [`ambit::wire::ReloadReport`], as napi carries it to JS (same names, camelCase).
#[napi(object)]
pub struct ReloadResult {
    pub ok: bool,
    pub version: Option<String>,
    pub generation: Option<i64>,
    pub code: Option<String>,
    pub message: Option<String>,
}

impl From<ambit::wire::ReloadReport> for ReloadResult {
    fn from(r: ambit::wire::ReloadReport) -> Self {
        Self {
            ok: r.ok,
            version: r.version,
            generation: r.generation.and_then(|g| i64::try_from(g).ok()),
            code: r.code,
            message: r.message,
        }
    }
}

impl Task for ReloadTask {
    type Output = ReloadResult;
    type JsValue = ReloadResult;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        // the core's report (`ok`, then `version` / `generation` or `code` / `message`): the JS
        // wrapper turns `ok: false` into a thrown Error with `code` (a task rejects only with a status)
        Ok(ambit::wire::ReloadReport::from(&self.0.reload()).into())
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> napi::Result<Self::JsValue> {
        Ok(output)
    }
}

/// Verifies a hash-chained audit log across files, oldest first.
#[napi(
    ts_return_type = "{ ok: boolean, records: number, firstBadSeq: number | null, problem: string | null, lastSeq: number, lastHash: string, closed: boolean }"
)]
pub fn verify_audit_log(#[napi(ts_arg_type = "Array<string>")] files: Unknown<'_>) -> napi::Result<Value, String> {
    let files = arg::<Vec<String>>(files, "files", "an array of paths")?;
    let files: Vec<std::path::PathBuf> = files.into_iter().map(Into::into).collect();
    let report = ambit::audit::verify(&files).map_err(to_js)?;
    serde_json::to_value(report).map(ambit::wire::camel_case_keys).map_err(|e| bad_arg(e.to_string()))
}

/// The RFC 7638 thumbprint of a public JWK (an object or JSON text): what `cnf.jkt` holds.
#[napi]
pub fn jwk_thumbprint(
    #[napi(ts_arg_type = "string | Record<string, unknown>")] jwk: Unknown<'_>,
) -> napi::Result<String, String> {
    ambit::dpop::jwk_thumbprint(&json_arg(jwk, "jwk")?).map_err(to_js)
}

/// An entity uid, checked once: `new Uid(type, id)` or `Uid.parse(text)`; `toString()` is its
/// canonical Cedar text. The core's `ambit::Uid`; accepted wherever a uid is.
#[napi]
pub struct Uid(ambit::Uid);

#[napi]
impl Uid {
    #[napi(constructor)]
    pub fn new(
        #[napi(ts_arg_type = "string")] type_name: Unknown<'_>,
        #[napi(ts_arg_type = "string")] id: Unknown<'_>,
    ) -> napi::Result<Self, String> {
        ambit::Uid::new(&text_arg(type_name, "type")?, &text_arg(id, "id")?).map(Self).map_err(to_js)
    }

    /// Parses `Type::"id"`.
    #[napi(factory)]
    pub fn parse(#[napi(ts_arg_type = "string")] text: Unknown<'_>) -> napi::Result<Self, String> {
        ambit::Uid::parse(&text_arg(text, "uid text")?).map(Self).map_err(to_js)
    }

    /// The entity type, e.g. `Helpdesk::User`.
    #[napi(getter, js_name = "type")]
    pub fn type_name(&self) -> String {
        self.0.type_name().to_owned()
    }

    /// The id, unescaped.
    #[napi(getter)]
    pub fn id(&self) -> String {
        self.0.id().to_owned()
    }

    /// The canonical text.
    #[napi(js_name = "toString")]
    pub fn text(&self) -> String {
        self.0.as_str().to_owned()
    }

    /// The canonical text (what `JSON.stringify` writes).
    #[napi(js_name = "toJSON")]
    pub fn to_json(&self) -> String {
        self.0.as_str().to_owned()
    }

    /// Whether `other` (a `Uid`, or uid text) is the same uid.
    #[napi]
    pub fn equals(&self, #[napi(ts_arg_type = "Uid | string")] other: Unknown<'_>) -> bool {
        uid_arg(other, "uid").ok().and_then(|t| ambit::Uid::parse(&t).ok()).is_some_and(|o| o == self.0)
    }
}

/// Formats a uid from type and id, escaping the id.
#[napi]
pub fn format_uid(
    #[napi(ts_arg_type = "string")] type_name: Unknown<'_>,
    #[napi(ts_arg_type = "string")] id: Unknown<'_>,
) -> napi::Result<String, String> {
    ambit::format_uid(&text_arg(type_name, "type")?, &text_arg(id, "id")?).map_err(to_js)
}

/// Every deny cause, in check order.
#[napi]
pub fn deny_causes() -> Vec<&'static str> {
    ambit::DenyCause::ALL.iter().map(|c| c.code()).collect()
}

/// The request format's fields in Node's spelling: the core's `wire::REQUEST_FIELDS` in
/// camelCase (the package's glue refuses any other field with them).
#[napi]
pub fn request_fields() -> Vec<String> {
    let fields = ambit::wire::REQUEST_FIELDS.iter().map(|f| ((*f).to_owned(), Value::Null)).collect();
    match ambit::wire::camel_case_keys(Value::Object(fields)) {
        Value::Object(camel) => camel.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// Every error code.
#[napi]
pub fn error_codes() -> Vec<&'static str> {
    ambit::Error::CODES.to_vec()
}

/// A decision as it crosses to JS: the core's camelCase JSON text (ASCII, so V8 copies it as
/// one-byte text without decoding), which the package's `Decision` parses only when a field
/// other than `allowed` is read, and `allowed`, the core's boolean, written as 1 or 0 into
/// `slot`, a `Uint8Array` of the package's glue. Returning an object `{ allowed, json }` per
/// decision cost ~1 µs of V8 property definition, five times the string; a napi class instance
/// (weak reference, finalizer) cost more still.
fn decided(d: &ambit::Decision, slot: Unknown<'_>) -> napi::Result<Latin1String, String> {
    let slot = <&mut [u8]>::from_unknown(slot).map_err(|_| bad_arg("the decision slot must be a Uint8Array"))?;
    let first = slot.first_mut().ok_or_else(|| bad_arg("the decision slot is empty"))?;
    *first = u8::from(d.allowed());
    Ok(Latin1String::from(d.to_camel_json_string()))
}

/// A decision with its `allowed`, as `explain` and `authorizeBatch` give it (see [`decided`]
/// for the one-decision calls).
#[napi(object, object_from_js = false)]
pub struct DecisionJson {
    pub allowed: bool,
    pub json: String,
}

impl From<&ambit::Decision> for DecisionJson {
    fn from(d: &ambit::Decision) -> Self {
        Self { allowed: d.allowed(), json: d.to_camel_json_string() }
    }
}

/// How one policy fared for one hop.
#[napi(object)]
pub struct PolicyTrace {
    pub id: String,
    /// `permit` or `forbid`.
    #[napi(ts_type = "'permit' | 'forbid'")]
    pub effect: String,
    #[napi(ts_type = "'satisfied' | 'not_satisfied' | 'error'")]
    pub outcome: String,
    /// The error, when it erred.
    pub error: Option<String>,
}

/// One hop, explained.
#[napi(object)]
pub struct HopExplanation {
    /// Position on the chain, root = 0 (as `denyHop`).
    pub hop: u32,
    pub principal: String,
    pub evaluated: bool,
    pub allowed: bool,
    /// Every policy that applies to the action, and how it fared (empty when not evaluated).
    pub policies: Vec<PolicyTrace>,
}

/// What `authorize` decides, and why.
#[napi(object, object_from_js = false)]
pub struct Explanation {
    /// The decision, exactly as `authorize` gives it.
    pub decision: DecisionJson,
    /// One line a person can act on.
    pub summary: String,
    pub hops: Vec<HopExplanation>,
}

impl From<ambit::wire::Explanation> for Explanation {
    fn from(e: ambit::wire::Explanation) -> Self {
        Self {
            decision: DecisionJson::from(&e.decision),
            summary: e.summary,
            hops: e
                .hops
                .into_iter()
                .map(|h| HopExplanation {
                    hop: u32::try_from(h.hop).unwrap_or(u32::MAX),
                    principal: h.principal,
                    evaluated: h.evaluated,
                    allowed: h.allowed,
                    policies: h
                        .policies
                        .into_iter()
                        .map(|p| PolicyTrace { id: p.id, effect: p.effect, outcome: p.outcome, error: p.error })
                        .collect(),
                })
                .collect(),
        }
    }
}
