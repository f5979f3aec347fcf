//! `ambit._ambit`: the Python face of the `ambit` crate. Glue only: arguments are converted
//! (through serde, with `pythonize`), the core is called with the GIL released, and results or
//! errors are converted back. No policy logic, defaults or JSON shaping live here.

use ambit::audit::{self, Audit};

/// The extension's own allocations (requests, decisions, Cedar's evaluation) go to mimalloc:
/// a decision allocates and frees dozens of small blocks, ~15% of its time under glibc malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};
use pythonize::pythonize;
use serde_json::Value;
use std::sync::{Arc, Mutex};

mod errors;

use errors::to_py;

/// Converts a Python object to JSON faithfully, or refuses it with an ambit error: nesting is
/// bounded while converting (never deeper than `ambit::wire::MAX_JSON_DEPTH`, whatever the
/// object holds), and so is the number of values (`budget`), so hostile input fails at the
/// first item over a limit instead of after converting everything.
fn json(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    let mut budget: usize = 1 << 22;
    json_bounded(obj, 0, &mut budget)
}

fn json_bounded(obj: &Bound<'_, PyAny>, depth: usize, budget: &mut usize) -> PyResult<Value> {
    use pyo3::types::{PyBool, PyByteArray, PyBytes, PyFloat, PyInt, PyList, PyString, PyTuple};
    let invalid = |m: String| to_py(ambit::wire::invalid_value(m));
    *budget = budget.checked_sub(1).ok_or_else(|| to_py(ambit::wire::over_limit("the value holds too many items")))?;
    if depth > ambit::wire::MAX_JSON_DEPTH {
        return Err(to_py(ambit::wire::over_limit(format!(
            "the value nests deeper than {} levels",
            ambit::wire::MAX_JSON_DEPTH
        ))));
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Value::from(i));
        }
        return Err(invalid(format!(
            "integer {} is outside Cedar's 64-bit range",
            obj.str().map(|s| s.to_string()).unwrap_or_default()
        )));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        let v = f.value();
        return serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| invalid(format!("{v} is not a JSON number")));
    }
    if let Ok(text) = obj.cast::<PyString>() {
        return text
            .to_str()
            .map(|t| Value::String(t.to_owned()))
            .map_err(|_| invalid("a string that is not well-formed Unicode (a lone surrogate)".to_owned()));
    }
    if obj.is_instance_of::<PyBytes>() || obj.is_instance_of::<PyByteArray>() {
        return Err(invalid("bytes are not text: decode them first".to_owned()));
    }
    if let Ok(dict) = obj.cast::<PyDict>() {
        let mut map = serde_json::Map::new();
        for (k, v) in dict.iter() {
            let key = k
                .cast::<PyString>()
                .map_err(|_| invalid("a dict key that is not a str".to_owned()))?
                .to_str()
                .map_err(|_| invalid("a dict key that is not well-formed Unicode".to_owned()))?
                .to_owned();
            let value = json_bounded(&v, depth + 1, budget)?;
            map.insert(key, value);
        }
        return Ok(Value::Object(map));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let mut out = Vec::new();
        for item in obj.try_iter()? {
            out.push(json_bounded(&item?, depth + 1, budget)?);
        }
        return Ok(Value::Array(out));
    }
    let type_name = obj.get_type().name().map(|n| n.to_string()).unwrap_or_default();
    Err(invalid(format!("a `{type_name}` is not a JSON value")))
}

/// Converts any serde value to a Python object.
fn py_of<T: serde::Serialize>(py: Python<'_>, value: &T) -> PyResult<Py<PyAny>> {
    Ok(pythonize(py, value).map_err(|e| PyTypeError::new_err(e.to_string()))?.unbind())
}

/// A text argument, or an `AMBIT_INVALID_REQUEST` naming it (bytes, a lone surrogate, a non-str).
fn text(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<String> {
    use pyo3::types::PyString;
    let s = obj.cast::<PyString>().map_err(|_| to_py(ambit::wire::invalid_value(format!("{what} must be a str"))))?;
    s.to_str()
        .map(str::to_owned)
        .map_err(|_| to_py(ambit::wire::invalid_value(format!("{what} is not well-formed Unicode (a lone surrogate)"))))
}

/// A whole, non-negative count argument, or an `AMBIT_INVALID_REQUEST` naming it (negative,
/// too large, a float, a bool, a non-number).
fn whole(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<u64> {
    use pyo3::types::{PyBool, PyInt};
    if obj.is_instance_of::<PyBool>() || !obj.is_instance_of::<PyInt>() {
        return Err(to_py(ambit::wire::invalid_value(format!("{what} must be an int"))));
    }
    obj.extract::<u64>()
        .map_err(|_| to_py(ambit::wire::invalid_value(format!("{what} must be an int from 0 to {}", u64::MAX))))
}

fn texts(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<String>> {
    use pyo3::types::PyString;
    if obj.is_instance_of::<PyString>() {
        return Err(to_py(ambit::wire::invalid_value(format!("{what} must be a list of str, not a str"))));
    }
    let items =
        obj.try_iter().map_err(|_| to_py(ambit::wire::invalid_value(format!("{what} must be a list of str"))))?;
    items.map(|item| text(&item?, what)).collect()
}

/// A uid argument: a Cedar string, or anything whose `str()` is one (like `ambit.Uid`).
/// A `dpop={...}` argument: `None` is no proof.
fn dpop_proof(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<ambit::DpopProof>> {
    match obj {
        None => Ok(None),
        Some(o) => ambit::DpopProof::from_json(&json(o)?).map_err(to_py),
    }
}

/// The RFC 7638 thumbprint of a public JWK (a dict or JSON text): what `cnf.jkt` holds.
#[pyfunction]
fn jwk_thumbprint(jwk: &Bound<'_, PyAny>) -> PyResult<String> {
    ambit::dpop::jwk_thumbprint(&json(jwk)?).map_err(to_py)
}

fn uid(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    if obj.is_instance_of::<pyo3::types::PyString>() {
        return text(obj, "an entity uid");
    }
    if let Ok(u) = obj.cast::<Uid>() {
        // checked when it was made: its canonical text, not formatted again
        return Ok(u.get().0.as_str().to_owned());
    }
    Err(to_py(ambit::wire::invalid_value("an entity uid must be a str like 'User::\"alice\"' or an ambit.Uid")))
}

fn uids(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<String>> {
    let Some(obj) = obj else { return Ok(Vec::new()) };
    let items = obj.try_iter().map_err(|_| to_py(ambit::wire::invalid_value("expected a list of entity uids")))?;
    items.map(|item| uid(&item?)).collect()
}

/// Entities as a JSON string for the builder: a str is passed through, a list is serialised.
fn entities_text(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(s) = obj.extract::<String>() {
        return Ok(s);
    }
    Ok(json(obj)?.to_string())
}

/// An entity uid, checked once: `Uid(type, id)` or `Uid.parse(text)`; `str()` is its canonical
/// Cedar text. The core's `ambit::Uid`; accepted wherever a uid is.
#[pyclass(frozen, eq, hash, ord, module = "ambit", name = "Uid")]
#[derive(PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uid(ambit::Uid);

#[pymethods]
impl Uid {
    #[new]
    #[pyo3(signature = (r#type, id))]
    fn new(r#type: &Bound<'_, PyAny>, id: &Bound<'_, PyAny>) -> PyResult<Self> {
        ambit::Uid::new(&text(r#type, "type")?, &text(id, "id")?).map(Self).map_err(to_py)
    }

    /// Parses `Type::"id"`.
    #[staticmethod]
    fn parse(text: &Bound<'_, PyAny>) -> PyResult<Self> {
        ambit::Uid::parse(&self::text(text, "uid text")?).map(Self).map_err(to_py)
    }

    /// The entity type, e.g. `Helpdesk::User`.
    #[getter(r#type)]
    fn type_name(&self) -> &str {
        self.0.type_name()
    }

    /// The id, unescaped.
    #[getter]
    fn id(&self) -> &str {
        self.0.id()
    }

    fn __str__(&self) -> &str {
        self.0.as_str()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let repr = |s: &str| -> PyResult<String> { Ok(pyo3::types::PyString::new(py, s).repr()?.to_string()) };
        Ok(format!("Uid({}, {})", repr(self.0.type_name())?, repr(self.0.id())?))
    }
}

/// Formats a uid from type and id, escaping the id (the core's Cedar formatting).
#[pyfunction]
fn format_uid(type_name: &Bound<'_, PyAny>, id: &Bound<'_, PyAny>) -> PyResult<String> {
    ambit::format_uid(&text(type_name, "type_name")?, &text(id, "id")?).map_err(to_py)
}

/// A decision: `allowed`, or a deny with a stable `deny_cause`. Immutable; `bool(d)` is
/// `d.allowed`.
#[pyclass(frozen, module = "ambit", name = "Decision")]
pub struct Decision(ambit::Decision);

#[pymethods]
impl Decision {
    /// `allowed` (read-only).
    #[getter]
    fn allowed(&self) -> bool {
        self.0.allowed()
    }
    /// `decision_id` (read-only).
    #[getter]
    fn decision_id(&self) -> &str {
        self.0.decision_id()
    }
    /// `deny_cause` (read-only).
    #[getter]
    fn deny_cause(&self) -> Option<&'static str> {
        self.0.deny_cause().map(ambit::DenyCause::code)
    }
    /// `deny_hop` (read-only).
    #[getter]
    fn deny_hop(&self) -> Option<usize> {
        self.0.deny_hop()
    }
    /// `reasons` (read-only).
    #[getter]
    fn reasons(&self) -> Vec<String> {
        self.0.reasons().to_vec()
    }
    /// `chain` (read-only).
    #[getter]
    fn chain(&self) -> Vec<String> {
        self.0.chain().to_vec()
    }
    /// `hops` (read-only).
    #[getter]
    fn hops(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        py_of(py, &self.0.hops())
    }
    /// `errors` (read-only).
    #[getter]
    fn errors(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        py_of(py, &self.0.errors())
    }
    /// `action` (read-only).
    #[getter]
    fn action(&self) -> &str {
        self.0.action()
    }
    /// `resource` (read-only).
    #[getter]
    fn resource(&self) -> &str {
        self.0.resource()
    }
    /// `policy_version` (read-only).
    #[getter]
    fn policy_version(&self) -> &str {
        self.0.policy_version()
    }
    /// `generation` (read-only).
    #[getter]
    fn generation(&self) -> u64 {
        self.0.generation()
    }
    /// `timestamp` (read-only): seconds since the epoch, from the authorizer's clock.
    #[getter]
    fn timestamp(&self) -> u64 {
        self.0.timestamp()
    }
    /// The decision's JSON wire form as a dict.
    fn to_dict(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        py_of(py, &self.0)
    }
    /// `bool(d)` is `d.allowed`.
    fn __bool__(&self) -> bool {
        self.0.allowed()
    }
    /// A readable one-line summary.
    fn __repr__(&self) -> String {
        match self.0.deny_cause() {
            None => format!("<Decision allowed reasons={:?}>", self.0.reasons()),
            Some(c) => {
                let hop = self.0.deny_hop().map_or_else(|| "None".to_owned(), |h| h.to_string());
                format!("<Decision denied cause={c} hop={hop} reasons={:?}>", self.0.reasons())
            }
        }
    }
}

/// A minted agent. Immutable.
#[pyclass(frozen, module = "ambit", name = "Agent")]
pub struct Agent(ambit::Agent);

#[pymethods]
impl Agent {
    /// `uid` (read-only).
    #[getter]
    fn uid(&self) -> &str {
        self.0.uid()
    }
    /// `parent` (read-only).
    #[getter]
    fn parent(&self) -> &str {
        self.0.parent()
    }
    /// `owner` (read-only).
    #[getter]
    fn owner(&self) -> &str {
        self.0.owner()
    }
    /// `chain` (read-only).
    #[getter]
    fn chain(&self) -> Vec<String> {
        self.0.chain().to_vec()
    }
    /// `task` (read-only).
    #[getter]
    fn task(&self) -> &str {
        self.0.task()
    }
    /// `scopes` (read-only).
    #[getter]
    fn scopes(&self) -> Vec<String> {
        self.0.scopes().to_vec()
    }
    /// `resources` (read-only).
    #[getter]
    fn resources(&self) -> Vec<String> {
        self.0.resources().to_vec()
    }
    /// `depth` (read-only).
    #[getter]
    fn depth(&self) -> u32 {
        self.0.depth()
    }
    /// `created_at` (read-only).
    #[getter]
    fn created_at(&self) -> u64 {
        self.0.created_at()
    }
    /// `expires_at` (read-only).
    #[getter]
    fn expires_at(&self) -> u64 {
        self.0.expires_at()
    }
    /// `revoked` (read-only).
    #[getter]
    fn revoked(&self) -> bool {
        self.0.revoked()
    }
    /// The agent's JSON wire form as a dict.
    fn to_dict(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        py_of(py, &self.0)
    }
    /// A readable one-line summary.
    fn __repr__(&self) -> String {
        format!(
            "<Agent {} task={:?} scopes={:?} expires_at={}>",
            self.0.uid(),
            self.0.task(),
            self.0.scopes(),
            self.0.expires_at()
        )
    }
}

/// A clock that only moves when told to, for tests (`ambit.ManualClock(now)`).
#[pyclass(frozen, module = "ambit", name = "ManualClock")]
pub struct ManualClock(ambit::ManualClock);

#[pymethods]
impl ManualClock {
    /// A clock that reads `now` (epoch seconds).
    #[new]
    fn new(now: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(Self(ambit::ManualClock::new(whole(now, "now")?)))
    }
    /// Moves the clock forward by `seconds`.
    fn advance(&self, seconds: &Bound<'_, PyAny>) -> PyResult<()> {
        self.0.advance(whole(seconds, "seconds")?);
        Ok(())
    }
    /// Sets the clock to `now` (epoch seconds).
    fn set(&self, now: &Bound<'_, PyAny>) -> PyResult<()> {
        self.0.set(whole(now, "now")?);
        Ok(())
    }
    /// The current reading (epoch seconds).
    fn now(&self) -> u64 {
        ambit::Clock::now(&self.0)
    }
}

/// An issuer's Ed25519 signing key for agent credentials (`ambit.IssuerKey.generate(issuer,
/// kid)` or `ambit.IssuerKey.from_jwk(issuer, text)`).
#[pyclass(frozen, module = "ambit", name = "IssuerKey")]
pub struct IssuerKey(ambit::IssuerKey);

#[pymethods]
impl IssuerKey {
    /// A new random key for `issuer`, named `kid`; `alg` is `"EdDSA"` (default) or `"ES256"`.
    #[staticmethod]
    #[pyo3(signature = (issuer, kid, alg=None))]
    fn generate(issuer: &Bound<'_, PyAny>, kid: &Bound<'_, PyAny>, alg: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let alg = match alg {
            Some(a) => ambit::Algorithm::from_name(&text(a, "alg")?).map_err(to_py)?,
            None => ambit::Algorithm::EdDSA,
        };
        ambit::IssuerKey::generate_with(text(issuer, "issuer")?, text(kid, "kid")?, alg).map(Self).map_err(to_py)
    }
    /// The algorithm it signs with (`"EdDSA"` or `"ES256"`).
    #[getter]
    fn algorithm(&self) -> &'static str {
        self.0.algorithm().as_str()
    }
    /// The key from its private JWK text, signing as `issuer`.
    #[staticmethod]
    fn from_jwk(issuer: &Bound<'_, PyAny>, jwk: &Bound<'_, PyAny>) -> PyResult<Self> {
        ambit::IssuerKey::from_jwk(text(issuer, "issuer")?, &text(jwk, "jwk")?).map(Self).map_err(to_py)
    }
    /// The issuer name it signs as.
    #[getter]
    fn issuer(&self) -> &str {
        self.0.issuer()
    }
    /// The key id.
    #[getter]
    fn kid(&self) -> &str {
        self.0.kid()
    }
    /// The private JWK (a dict): keep it where only the issuer reads it.
    fn private_jwk(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        py_of(py, &self.0.private_jwk())
    }
    /// The public JWKS (a dict) verifiers trust (`trusted_issuers=[{"issuer": ..., "jwks": ...}]`).
    fn public_jwks(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        py_of(py, &self.0.public_jwks())
    }
    /// Signs `claims` (a dict) as a JWT (`typ: JWT`, this key's `alg` and `kid`): an access
    /// token for `authorize_token` when no identity provider issues them.
    fn sign_jwt(&self, claims: &Bound<'_, PyAny>) -> PyResult<String> {
        self.0.sign_jwt(&json(claims)?).map_err(to_py)
    }
    /// Signs `header` and `claims` (dicts) exactly as given as a compact JWS.
    fn sign_jws(&self, header: &Bound<'_, PyAny>, claims: &Bound<'_, PyAny>) -> PyResult<String> {
        self.0.sign_jws(&json(header)?, &json(claims)?).map_err(to_py)
    }
    /// The RFC 7638 thumbprint of its public key: the `cnf.jkt` (or `issue_credential`
    /// `holder`) of what is bound to it.
    fn thumbprint(&self) -> String {
        self.0.thumbprint()
    }
    /// A DPoP proof (RFC 9449) by this key for one call (`method`, `url`) with
    /// `access_token`; `nonce` when the server gave one, `iat` (default now) in epoch seconds.
    #[pyo3(signature = (method, url, access_token, nonce=None, iat=None))]
    fn dpop_proof(
        &self,
        method: &Bound<'_, PyAny>,
        url: &Bound<'_, PyAny>,
        access_token: &Bound<'_, PyAny>,
        nonce: Option<&Bound<'_, PyAny>>,
        iat: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<String> {
        let nonce = nonce.map(|n| text(n, "nonce")).transpose()?;
        let iat = iat.map(|t| whole(t, "iat")).transpose()?;
        self.0
            .dpop_proof(
                &text(method, "method")?,
                &text(url, "url")?,
                &text(access_token, "access_token")?,
                nonce.as_deref(),
                iat,
            )
            .map_err(to_py)
    }
    fn __repr__(&self) -> String {
        format!("IssuerKey(issuer={:?}, kid={:?})", self.0.issuer(), self.0.kid())
    }
}

/// The in-process authorizer. Safe to share across threads; the GIL is released while it
/// decides, reloads, mints, revokes and flushes.
#[pyclass(frozen, module = "ambit", name = "Authorizer")]
pub struct Authorizer {
    inner: Arc<ambit::Authorizer>,
    watcher: Mutex<Option<ambit::Watcher>>,
}

/// Options shared by the constructor and `from_dir`: the core's named options plus what only
/// Python has (a clock object, a callable).
#[derive(Default)]
struct Options<'py> {
    named: ambit::wire::AuthorizerOptions,
    clock: Option<Bound<'py, ManualClock>>,
    audit_callback: Option<Bound<'py, PyAny>>,
}

fn configure(mut b: ambit::AuthorizerBuilder, o: Options<'_>) -> PyResult<ambit::AuthorizerBuilder> {
    if let Some(c) = o.clock {
        b = b.clock(Arc::new(c.get().0.clone()));
    }
    let callback = o.audit_callback.map(|cb| {
        let cb = cb.unbind();
        Box::new(move |record: &ambit::AuditRecord| {
            // never during interpreter shutdown (attaching then would abort the process): the
            // package closes every authorizer at exit, so nothing is pending by then
            let _ = Python::try_attach(|py| {
                let result = pythonize(py, record).map_err(PyErr::from).and_then(|obj| cb.call1(py, (obj,)));
                if let Err(e) = result {
                    e.write_unraisable(py, None);
                }
            });
        }) as ambit::wire::AuditCallback
    });
    o.named.apply(b, callback).map_err(to_py)
}

impl Drop for Authorizer {
    /// The last reference may go while the writer thread waits for the GIL to call an audit
    /// callback: the core's drop (which flushes and joins that thread) runs with the GIL
    /// released, so it never waits on itself.
    fn drop(&mut self) {
        let inner = std::mem::replace(&mut self.inner, placeholder());
        let watcher = self.watcher.lock().ok().and_then(|mut w| w.take());
        let release = move || {
            drop(watcher);
            drop(inner);
        };
        // attached already (a dealloc holds the GIL); if not, `release` runs as it is dropped
        let _ = Python::try_attach(|py| py.detach(release));
    }
}

/// Authorizers with an audit trail, closed (flushed, with a final `closed` record) by an
/// `atexit` hook before the interpreter shuts down, so no record is pending when it does.
static AUDITED: Mutex<Vec<std::sync::Weak<ambit::Authorizer>>> = Mutex::new(Vec::new());

fn audited(inner: Arc<ambit::Authorizer>) -> Arc<ambit::Authorizer> {
    if inner.audit().is_some() {
        if let Ok(mut live) = AUDITED.lock() {
            live.retain(|w| w.strong_count() > 0);
            live.push(Arc::downgrade(&inner));
        }
    }
    inner
}

/// Closes every audited authorizer still alive (registered with `atexit` by the package).
#[pyfunction]
fn close_all(py: Python<'_>) {
    let live: Vec<Arc<ambit::Authorizer>> =
        AUDITED.lock().map(|l| l.iter().filter_map(std::sync::Weak::upgrade).collect()).unwrap_or_default();
    py.detach(move || {
        for a in &live {
            a.close();
        }
    });
}

/// One shared authorizer with no policies and no trail, left in the place of one being dropped.
fn placeholder() -> Arc<ambit::Authorizer> {
    static EMPTY: std::sync::OnceLock<Option<Arc<ambit::Authorizer>>> = std::sync::OnceLock::new();
    let built = EMPTY.get_or_init(|| {
        ambit::Authorizer::builder()
            .policies_str("forbid(principal, action, resource);")
            .validation(ambit::Validation::Off)
            .build()
            .ok()
            .map(Arc::new)
    });
    match built {
        Some(a) => Arc::clone(a),
        None => unreachable!("a one-line forbid always builds"),
    }
}

#[pymethods]
impl Authorizer {
    /// Builds an authorizer from text: `schema` (Cedar schema syntax), `policies` (Cedar), and
    /// `entities` (a JSON string, or a list of entity dicts). Keyword options (also for
    /// `from_dir`): `validation` (`"strict"`, `"permissive"`, `"off"`), `error_mode`
    /// (`"fail_closed"`, `"cedar"`), `max_delegation_depth`, `trust_request_entities`, `validate_entities`, `agent_type`, `clock` (a `ManualClock`), `audit_file`,
    /// `audit_callback`, `audit_overflow` (`"block"`, `"drop"`), `audit_capacity`,
    /// `audit_include_context`, `audit_max_record_bytes`.
    #[new]
    #[pyo3(signature = (*, schema=None, policies=None, entities=None, **options))]
    fn new(
        py: Python<'_>,
        schema: Option<&Bound<'_, PyAny>>,
        policies: Option<&Bound<'_, PyAny>>,
        entities: Option<&Bound<'_, PyAny>>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let mut b = ambit::Authorizer::builder();
        if let Some(s) = schema {
            b = b.schema_str(text(s, "schema")?);
        }
        if let Some(p) = policies {
            b = b.policies_str(text(p, "policies")?);
        }
        if let Some(e) = entities {
            b = b.entities_json(entities_text(e)?);
        }
        Self::finish(py, configure(b, extract_options(options)?)?)
    }

    /// Every `*.cedarschema`, `*.cedar` and an optional `entities.json` in `path`.
    #[staticmethod]
    #[pyo3(signature = (path, **options))]
    fn from_dir(py: Python<'_>, path: &Bound<'_, PyAny>, options: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let path: std::path::PathBuf =
            path.extract().map_err(|_| to_py(ambit::wire::invalid_value("path must be a str or an os.PathLike")))?;
        Self::finish(py, configure(ambit::Authorizer::builder().dir(path), extract_options(options)?)?)
    }

    /// Decides one request. A deny is a `Decision`, never an exception.
    #[pyo3(signature = (principal, action, resource, context=None, entities=None, on_behalf_of=None))]
    fn authorize(
        &self,
        py: Python<'_>,
        principal: &Bound<'_, PyAny>,
        action: &Bound<'_, PyAny>,
        resource: &Bound<'_, PyAny>,
        context: Option<&Bound<'_, PyAny>>,
        entities: Option<&Bound<'_, PyAny>>,
        on_behalf_of: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Decision> {
        let request = request(
            &self.inner.limits(),
            principal,
            &text(action, "action")?,
            resource,
            context,
            entities,
            on_behalf_of,
        )?;
        let inner = Arc::clone(&self.inner);
        py.detach(move || inner.authorize(&request)).map(Decision).map_err(to_py)
    }

    /// Whether the request is allowed, on one path: a deny and every error (a malformed
    /// request included) are `False`. For callers that branch on one boolean; `authorize`
    /// says why.
    #[pyo3(signature = (principal, action, resource, context=None, entities=None, on_behalf_of=None))]
    fn check(
        &self,
        py: Python<'_>,
        principal: &Bound<'_, PyAny>,
        action: &Bound<'_, PyAny>,
        resource: &Bound<'_, PyAny>,
        context: Option<&Bound<'_, PyAny>>,
        entities: Option<&Bound<'_, PyAny>>,
        on_behalf_of: Option<&Bound<'_, PyAny>>,
    ) -> bool {
        // `authorize`, every error a denial (as the core's `Authorizer::check`)
        self.authorize(py, principal, action, resource, context, entities, on_behalf_of).is_ok_and(|d| d.0.allowed())
    }

    /// The identity checks of a decision without its policies (chain, liveness, scopes): the
    /// deny cause every call of this action by this principal gets whatever its context, or
    /// `None` when the policies decide. Not audited.
    #[pyo3(signature = (principal, action, resource, on_behalf_of=None))]
    fn precheck(
        &self,
        py: Python<'_>,
        principal: &Bound<'_, PyAny>,
        action: &Bound<'_, PyAny>,
        resource: &Bound<'_, PyAny>,
        on_behalf_of: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<&'static str>> {
        let request =
            request(&self.inner.limits(), principal, &text(action, "action")?, resource, None, None, on_behalf_of)?;
        let inner = Arc::clone(&self.inner);
        py.detach(move || inner.precheck(&request)).map(|c| c.map(ambit::DenyCause::code)).map_err(to_py)
    }

    /// A signed credential (compact JWS text) for the live agent `agent`, signed with `key`:
    /// another process that trusts the key's issuer decides with it alone.
    /// With `holder` (a key's thumbprint) it is good only with a DPoP proof by that key.
    #[pyo3(signature = (agent, key, holder=None))]
    fn issue_credential(
        &self,
        py: Python<'_>,
        agent: &Bound<'_, PyAny>,
        key: &Bound<'_, IssuerKey>,
        holder: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<String> {
        let agent = uid(agent)?;
        let key = key.get().0.clone();
        let holder = holder.map(|h| text(h, "holder")).transpose()?;
        let inner = Arc::clone(&self.inner);
        py.detach(move || inner.issue_credential(&agent, &key, holder.as_deref())).map_err(to_py)
    }

    /// Decides for the agent a signed credential carries, as if it had been minted here; a
    /// credential that fails is a deny (`invalid_token`, `token_expired`, `untrusted_issuer`,
    /// `depth_exceeded`, `revoked`, `dpop_required`, `dpop_invalid`, `replayed`), never an
    /// exception. `dpop` is `{"proof", "method", "url", "nonce"?}` for a bound credential.
    #[pyo3(signature = (credential, action, resource, context=None, dpop=None))]
    fn authorize_credential(
        &self,
        py: Python<'_>,
        credential: &Bound<'_, PyAny>,
        action: &Bound<'_, PyAny>,
        resource: &Bound<'_, PyAny>,
        context: Option<&Bound<'_, PyAny>>,
        dpop: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Decision> {
        let credential = text(credential, "credential")?;
        let action = text(action, "action")?;
        let resource = uid(resource)?;
        let context = context.map(json).transpose()?.unwrap_or(Value::Null);
        let dpop = dpop_proof(dpop)?;
        let inner = Arc::clone(&self.inner);
        py.detach(move || inner.authorize_credential(&credential, &action, &resource, context, dpop.as_ref()))
            .map(Decision)
            .map_err(to_py)
    }

    /// Decides for an OAuth access token of a configured issuer (`oauth_issuers=[...]`): its
    /// `sub` and nested `act` claims are the chain; a token that fails is a deny
    /// (`invalid_token`, `token_expired`, `untrusted_issuer`, `depth_exceeded`,
    /// `dpop_required`, `dpop_invalid`, `replayed`), never an exception. `dpop` is
    /// `{"proof", "method", "url", "nonce"?}`: the `DPoP` header and the call it came with.
    #[pyo3(signature = (token, action, resource, context=None, dpop=None))]
    fn authorize_token(
        &self,
        py: Python<'_>,
        token: &Bound<'_, PyAny>,
        action: &Bound<'_, PyAny>,
        resource: &Bound<'_, PyAny>,
        context: Option<&Bound<'_, PyAny>>,
        dpop: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Decision> {
        let token = text(token, "token")?;
        let action = text(action, "action")?;
        let resource = uid(resource)?;
        let context = context.map(json).transpose()?.unwrap_or(Value::Null);
        let dpop = dpop_proof(dpop)?;
        let inner = Arc::clone(&self.inner);
        py.detach(move || inner.authorize_token(&token, &action, &resource, context, dpop.as_ref()))
            .map(Decision)
            .map_err(to_py)
    }

    /// Revokes a credential by its `jti`: every later decision with it is denied `revoked`.
    fn revoke_credential(&self, py: Python<'_>, jti: &Bound<'_, PyAny>) -> PyResult<()> {
        let jti = text(jti, "jti")?;
        let inner = Arc::clone(&self.inner);
        py.detach(move || inner.revoke_credential(&jti)).map_err(to_py)
    }

    /// What this process knows of its fleet feed, as a dict; `None` without a fleet.
    fn fleet_status(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        self.inner.fleet_status().map(|s| py_of(py, &s)).transpose()
    }

    /// Saves the registry as the fleet's checkpoint now and trims the feed to it; the event
    /// it covers.
    fn fleet_checkpoint(&self, py: Python<'_>) -> PyResult<u64> {
        let inner = Arc::clone(&self.inner);
        py.detach(move || inner.fleet_checkpoint()).map_err(to_py)
    }

    /// `authorize` with the decision explained per hop, as a dict.
    #[pyo3(signature = (principal, action, resource, context=None, entities=None, on_behalf_of=None))]
    fn explain(
        &self,
        py: Python<'_>,
        principal: &Bound<'_, PyAny>,
        action: &Bound<'_, PyAny>,
        resource: &Bound<'_, PyAny>,
        context: Option<&Bound<'_, PyAny>>,
        entities: Option<&Bound<'_, PyAny>>,
        on_behalf_of: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let request = request(
            &self.inner.limits(),
            principal,
            &text(action, "action")?,
            resource,
            context,
            entities,
            on_behalf_of,
        )?;
        let inner = Arc::clone(&self.inner);
        let e = py.detach(move || inner.explain(&request)).map_err(to_py)?;
        py_of(py, &e)
    }

    /// Decides many requests (dicts in the request wire format) on one policy version. Each
    /// result is a `Decision` or an `AmbitError` instance (not raised).
    fn authorize_batch(&self, py: Python<'_>, requests: &Bound<'_, PyList>) -> PyResult<Vec<Py<PyAny>>> {
        // each request read once, as `authorize` reads its arguments (uids as str or Uid); one
        // that cannot be read is an error in its own slot, as in Node, and the rest are decided
        let limits = self.inner.limits();
        let mut good = Vec::with_capacity(requests.len());
        let slots: Vec<Option<PyErr>> = requests
            .iter()
            .map(|item| match batch_request(&limits, &item) {
                Ok(r) => {
                    good.push(r);
                    None
                }
                Err(e) => Some(e),
            })
            .collect();
        let inner = Arc::clone(&self.inner);
        let mut decided = py.detach(move || inner.authorize_batch(&good)).into_iter();
        slots
            .into_iter()
            .map(|slot| {
                if let Some(unread) = slot {
                    return Ok(unread.into_value(py).into_any());
                }
                match decided.next() {
                    Some(Ok(d)) => Ok(Py::new(py, Decision(d))?.into_any()),
                    Some(Err(e)) => Ok(to_py(e).into_value(py).into_any()),
                    // one decision per request handed over: unreachable
                    None => Err(pyo3::exceptions::PyRuntimeError::new_err("a batch slot without a decision")),
                }
            })
            .collect()
    }

    /// Mints a just-in-time agent under a live parent.
    #[pyo3(signature = (parent, task, scopes, ttl_seconds, resources=None, attributes=None))]
    fn mint_agent(
        &self,
        py: Python<'_>,
        parent: &Bound<'_, PyAny>,
        task: &Bound<'_, PyAny>,
        scopes: &Bound<'_, PyAny>,
        ttl_seconds: &Bound<'_, PyAny>,
        resources: Option<&Bound<'_, PyAny>>,
        attributes: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Agent> {
        let spec = agent_spec(uid(parent)?, task, scopes, ttl_seconds, resources, attributes)?;
        let inner = Arc::clone(&self.inner);
        py.detach(move || inner.mint_agent(&spec)).map(Agent).map_err(to_py)
    }

    /// A narrower credential for a sub-agent of the agent `credential` carries (minted here
    /// with `task`, `scopes`, `ttl_seconds`, ...), signed with `key`.
    #[pyo3(signature = (credential, key, task, scopes, ttl_seconds, resources=None, attributes=None))]
    #[allow(clippy::too_many_arguments, reason = "the keyword arguments of mint_agent, plus the credential and key")]
    fn attenuate(
        &self,
        py: Python<'_>,
        credential: &Bound<'_, PyAny>,
        key: &Bound<'_, IssuerKey>,
        task: &Bound<'_, PyAny>,
        scopes: &Bound<'_, PyAny>,
        ttl_seconds: &Bound<'_, PyAny>,
        resources: Option<&Bound<'_, PyAny>>,
        attributes: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<String> {
        let spec = agent_spec(String::new(), task, scopes, ttl_seconds, resources, attributes)?;
        let credential = text(credential, "credential")?;
        let key = key.get().0.clone();
        let inner = Arc::clone(&self.inner);
        py.detach(move || inner.attenuate(&credential, &spec, &key)).map_err(to_py)
    }

    /// Revokes an identity and everything minted under it; returns how many were cut off.
    fn revoke(&self, py: Python<'_>, uid_: &Bound<'_, PyAny>) -> PyResult<usize> {
        let u = uid(uid_)?;
        let inner = Arc::clone(&self.inner);
        py.detach(move || inner.revoke(&u)).map_err(to_py)
    }

    /// Lifts the revocation of a person or service; returns whether it was revoked.
    fn reinstate(&self, py: Python<'_>, uid_: &Bound<'_, PyAny>) -> PyResult<bool> {
        let u = uid(uid_)?;
        let inner = Arc::clone(&self.inner);
        py.detach(move || inner.reinstate(&u)).map_err(to_py)
    }

    /// Links template `template_id` as the policy `link_id`, with `?principal` / `?resource`
    /// filled; kept across reloads until `unlink`. Returns the reload outcome dict.
    #[pyo3(signature = (template_id, link_id, principal=None, resource=None))]
    fn link(
        &self,
        py: Python<'_>,
        template_id: &Bound<'_, PyAny>,
        link_id: &Bound<'_, PyAny>,
        principal: Option<&Bound<'_, PyAny>>,
        resource: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let mut link = ambit::Link::new(text(template_id, "template_id")?, text(link_id, "link_id")?);
        if let Some(p) = principal {
            link = link.principal(uid(p)?);
        }
        if let Some(r) = resource {
            link = link.resource(uid(r)?);
        }
        let inner = Arc::clone(&self.inner);
        let outcome = py.detach(move || inner.link(&link)).map_err(to_py)?;
        py_of(py, &outcome)
    }

    /// The members of `arguments` that `action`'s context type declares (the default context
    /// of a guarded tool call).
    fn context_for(
        &self,
        py: Python<'_>,
        action: &Bound<'_, PyAny>,
        arguments: &Bound<'_, PyAny>,
    ) -> PyResult<Py<PyAny>> {
        let args = json(arguments)?;
        let out = self.inner.context_for(&text(action, "action")?, &args).map_err(to_py)?;
        py_of(py, &out)
    }

    /// Removes a run-time link.
    fn unlink(&self, py: Python<'_>, link_id: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let id = text(link_id, "link_id")?;
        let inner = Arc::clone(&self.inner);
        let outcome = py.detach(move || inner.unlink(&id)).map_err(to_py)?;
        py_of(py, &outcome)
    }

    /// Every template link now serving, as dicts (`template_id`, `link_id`, `args`).
    fn links(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        py_of(py, &self.inner.links())
    }

    /// Re-reads every source; on error the last good policies keep serving.
    fn reload(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let inner = Arc::clone(&self.inner);
        let outcome = py.detach(move || inner.reload()).map_err(to_py)?;
        py_of(py, &outcome)
    }

    /// Replaces the policies with `text`.
    fn replace_policies(&self, py: Python<'_>, text: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let text = self::text(text, "policies")?;
        let inner = Arc::clone(&self.inner);
        let outcome = py.detach(move || inner.replace_policies(&text)).map_err(to_py)?;
        py_of(py, &outcome)
    }

    /// Replaces the static entities (a JSON string or a list of entity dicts).
    fn replace_entities(&self, py: Python<'_>, entities: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let text = entities_text(entities)?;
        let inner = Arc::clone(&self.inner);
        let outcome = py.detach(move || inner.replace_entities(&text)).map_err(to_py)?;
        py_of(py, &outcome)
    }

    /// Follows the policy files and reloads on change; `callback(outcome)` gets a dict with
    /// `ok`, and `version` / `generation` or `code` / `message` (as in Node). Stops with `unwatch()`.
    #[pyo3(signature = (callback=None))]
    fn watch(&self, callback: Option<Py<PyAny>>) -> PyResult<()> {
        let cb: Option<ambit::ReloadCallback> = callback.map(|cb| -> ambit::ReloadCallback {
            Box::new(move |outcome: &ambit::Result<ambit::ReloadOutcome>| {
                Python::attach(|py| {
                    let payload = ambit::wire::ReloadReport::from(outcome);
                    if let Err(e) = pythonize(py, &payload).map_err(PyErr::from).and_then(|o| cb.call1(py, (o,))) {
                        e.write_unraisable(py, None);
                    }
                });
            })
        });
        let watcher = self.inner.watch(cb).map_err(to_py)?;
        *self.watcher.lock().map_err(|_| PyTypeError::new_err("watcher lock poisoned"))? = Some(watcher);
        Ok(())
    }

    /// Stops following the policy files.
    fn unwatch(&self, py: Python<'_>) {
        let taken = self.watcher.lock().ok().and_then(|mut w| w.take());
        py.detach(move || drop(taken));
    }

    /// What the watcher has done so far (reloads, failures, last error), or None.
    fn watch_status(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let status = self.watcher.lock().ok().and_then(|w| w.as_ref().map(ambit::Watcher::status));
        status.map(|s| py_of(py, &s)).transpose()
    }

    /// Every agent in the registry.
    fn agents(&self) -> Vec<Agent> {
        self.inner.agents().into_iter().map(Agent).collect()
    }

    /// The delegation tree under `root`, as a dict.
    fn delegation_tree(&self, py: Python<'_>, root: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let tree = self.inner.delegation_tree(&uid(root)?).map_err(to_py)?;
        py_of(py, &tree)
    }

    /// Removes agents expired or revoked longer ago than the grace period; returns how many.
    fn purge_expired(&self, py: Python<'_>) -> usize {
        let inner = Arc::clone(&self.inner);
        py.detach(move || inner.purge_expired())
    }

    /// `policy_version` (read-only).
    #[getter]
    fn policy_version(&self) -> String {
        self.inner.policy_version()
    }
    /// `generation` (read-only).
    #[getter]
    fn generation(&self) -> u64 {
        self.inner.generation()
    }
    /// `policy_ids` (read-only).
    #[getter]
    fn policy_ids(&self) -> Vec<String> {
        self.inner.policy_ids()
    }

    /// The last `n` (default 100) audit records (dicts), after flushing; empty without an audit trail.
    #[pyo3(signature = (n=None))]
    fn audit_recent(&self, py: Python<'_>, n: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyAny>> {
        let n = n.map_or(Ok(100), |n| whole(n, "n")).map(|n| usize::try_from(n).unwrap_or(usize::MAX))?;
        let inner = Arc::clone(&self.inner);
        let records = py.detach(move || {
            inner.audit().map(|a| {
                a.flush();
                a.recent(n)
            })
        });
        py_of(py, &records.unwrap_or_default())
    }

    /// Waits until every audit record so far is written by every sink.
    /// Flushes the audit trail and closes it with a final `closed` record; afterwards every
    /// decision raises `AuditError` (nothing is decided unrecorded). Idempotent.
    fn close(&self, py: Python<'_>) {
        let inner = Arc::clone(&self.inner);
        py.detach(move || inner.close());
    }

    /// Waits until every audit record handed off so far is written.
    fn flush(&self, py: Python<'_>) {
        let inner = Arc::clone(&self.inner);
        py.detach(move || inner.flush());
    }

    fn audit_flush(&self, py: Python<'_>) {
        let inner = Arc::clone(&self.inner);
        py.detach(move || {
            if let Some(a) = inner.audit() {
                a.flush();
            }
        });
    }

    /// Audit records dropped because the queue was full (`audit_overflow="drop"`).
    fn audit_dropped(&self) -> u64 {
        self.inner.audit().map_or(0, Audit::dropped)
    }

    /// A decorator that authorizes every call of a tool function (see `ambit.guard`).
    #[pyo3(signature = (**kwargs))]
    fn guard(slf: Py<Self>, py: Python<'_>, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Py<PyAny>> {
        let module = py.import("ambit._guard")?;
        Ok(module.getattr("guard")?.call((slf,), kwargs)?.unbind())
    }

    /// A readable one-line summary.
    fn __repr__(&self) -> String {
        format!("<Authorizer {} policies version={}>", self.inner.policy_ids().len(), self.inner.policy_version())
    }
}

impl Authorizer {
    fn finish(py: Python<'_>, builder: ambit::AuthorizerBuilder) -> PyResult<Self> {
        let inner = py.detach(move || builder.build()).map_err(to_py)?;
        Ok(Self { inner: audited(Arc::new(inner)), watcher: Mutex::new(None) })
    }
}

/// The keyword options of `Authorizer(...)` and `Authorizer.from_dir(...)`: `clock` and
/// `audit_callback` are Python objects; every other keyword goes to the core's
/// `AuthorizerOptions` as it is (converted to JSON), which alone knows the names and values.
fn extract_options<'py>(options: Option<&Bound<'py, PyDict>>) -> PyResult<Options<'py>> {
    let mut out = Options::default();
    let Some(options) = options else { return Ok(out) };
    let mut named = serde_json::Map::new();
    for (key, value) in options.iter() {
        let key: String = key.extract()?;
        match key.as_str() {
            _ if value.is_none() => {}
            "clock" => out.clock = Some(value.cast_into::<ManualClock>().map_err(PyErr::from)?),
            "audit_callback" => out.audit_callback = Some(value),
            // any os.PathLike, as Python's own file APIs take
            "audit_file" => {
                let path: std::path::PathBuf = value.extract().map_err(|_| {
                    to_py(ambit::wire::config_error("invalid options: audit_file must be a str or an os.PathLike"))
                })?;
                let path = path.into_os_string().into_string().map_err(|_| {
                    to_py(ambit::wire::config_error("invalid options: audit_file is not a Unicode path"))
                })?;
                named.insert(key, Value::String(path));
            }
            _ => {
                named.insert(key, json(&value)?);
            }
        }
    }
    out.named = ambit::wire::AuthorizerOptions::from_json(&Value::Object(named)).map_err(to_py)?;
    Ok(out)
}

/// A mint's spec from `mint_agent`'s (and `attenuate`'s) arguments.
fn agent_spec(
    parent: String,
    task: &Bound<'_, PyAny>,
    scopes: &Bound<'_, PyAny>,
    ttl_seconds: &Bound<'_, PyAny>,
    resources: Option<&Bound<'_, PyAny>>,
    attributes: Option<&Bound<'_, PyAny>>,
) -> PyResult<ambit::AgentSpec> {
    let mut spec = ambit::AgentSpec::new(parent, text(task, "task")?, whole(ttl_seconds, "ttl_seconds")?)
        .scopes(texts(scopes, "scopes")?)
        .resources(uids(resources)?);
    if let Some(attrs) = attributes {
        match json(attrs)? {
            Value::Object(map) => spec = spec.attributes(map),
            _ => return Err(to_py(ambit::wire::invalid_value("attributes must be a dict"))),
        }
    }
    Ok(spec)
}

fn request(
    limits: &ambit::Limits,
    principal: &Bound<'_, PyAny>,
    action: &str,
    resource: &Bound<'_, PyAny>,
    context: Option<&Bound<'_, PyAny>>,
    entities: Option<&Bound<'_, PyAny>>,
    on_behalf_of: Option<&Bound<'_, PyAny>>,
) -> PyResult<ambit::Request> {
    let mut r = ambit::Request::new(uid(principal)?, action, uid(resource)?);
    if let Some(c) = context {
        r = r.with_context(json(c)?);
    }
    if let Some(e) = entities {
        // the count is known before anything is converted
        if let Ok(n) = e.len() {
            if n > limits.max_request_entities {
                return Err(to_py(ambit::wire::over_limit(format!(
                    "{n} request entities, more than the limit of {}",
                    limits.max_request_entities
                ))));
            }
        }
        match json(e)? {
            Value::Array(list) => r = r.with_entities(list),
            _ => return Err(to_py(ambit::wire::invalid_value("entities must be a list of entity dicts"))),
        }
    }
    if on_behalf_of.is_some() {
        r = r.on_behalf_of(uids(on_behalf_of)?);
    }
    Ok(r)
}

/// One request of a batch: a dict with `principal`, `action`, `resource` and optionally
/// `context`, `entities`, `on_behalf_of` (the request wire format's fields; `None` is absent).
fn batch_request(limits: &ambit::Limits, item: &Bound<'_, PyAny>) -> PyResult<ambit::Request> {
    let invalid = |m: String| to_py(ambit::wire::invalid_value(m));
    let dict = item.cast::<PyDict>().map_err(|_| {
        invalid(
            "a batch request is a dict {principal, action, resource, context?, entities?, on_behalf_of?}".to_owned(),
        )
    })?;
    // one pass over the dict's items: each key checked against the request format's fields and
    // its value kept (a lookup per field made a Python string per name and hashed it again)
    let mut values: [Option<Bound<'_, PyAny>>; ambit::wire::REQUEST_FIELDS.len()] = Default::default();
    for (key, value) in dict.iter() {
        let text = key.cast::<PyString>().ok();
        let Some(slot) =
            text.and_then(|k| k.to_str().ok()).and_then(|n| ambit::wire::REQUEST_FIELDS.iter().position(|f| *f == n))
        else {
            return Err(invalid(format!(
                "unknown request field `{}`",
                key.str().map(|k| k.to_string()).unwrap_or_default()
            )));
        };
        if let Some(v) = values.get_mut(slot) {
            *v = Some(value).filter(|v| !v.is_none());
        }
    }
    let field = |name: &str| -> PyResult<Option<Bound<'_, PyAny>>> {
        Ok(ambit::wire::REQUEST_FIELDS.iter().position(|f| *f == name).and_then(|i| values.get(i)).cloned().flatten())
    };
    let required = |name: &str| -> PyResult<Bound<'_, PyAny>> {
        field(name)?.ok_or_else(|| invalid(format!("a batch request needs `{name}`")))
    };
    request(
        limits,
        &required("principal")?,
        &text(&required("action")?, "action")?,
        &required("resource")?,
        field("context")?.as_ref(),
        field("entities")?.as_ref(),
        field("on_behalf_of")?.as_ref(),
    )
}

/// Called in a fork's child (`os.register_at_fork`): per-thread decision-id seeds are drawn
/// again, so a parent and its child never give two decisions the same id.
#[pyfunction]
fn after_fork() {
    ambit::after_fork();
}

/// Verifies a hash-chained audit log across files (oldest first); returns the report dict.
#[pyfunction]
fn verify_audit_log(py: Python<'_>, files: Vec<std::path::PathBuf>) -> PyResult<Py<PyAny>> {
    let report = py.detach(move || audit::verify(&files)).map_err(to_py)?;
    py_of(py, &report)
}

#[pymodule]
fn _ambit(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Authorizer>()?;
    m.add_class::<Decision>()?;
    m.add_class::<Agent>()?;
    m.add_class::<ManualClock>()?;
    m.add_class::<IssuerKey>()?;
    m.add_class::<Uid>()?;
    m.add_function(wrap_pyfunction!(format_uid, m)?)?;
    m.add_function(wrap_pyfunction!(verify_audit_log, m)?)?;
    m.add_function(wrap_pyfunction!(jwk_thumbprint, m)?)?;
    m.add_function(wrap_pyfunction!(close_all, m)?)?;
    m.add_function(wrap_pyfunction!(after_fork, m)?)?;
    m.add("DENY_CAUSES", ambit::DenyCause::ALL.iter().map(|c| c.code()).collect::<Vec<_>>())?;
    m.add("ERROR_CODES", ambit::Error::CODES.to_vec())?;
    m.add("REQUEST_FIELDS", ambit::wire::REQUEST_FIELDS.to_vec())?;
    errors::register(m)
}
