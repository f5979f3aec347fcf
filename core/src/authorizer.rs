//! The authorizer: one snapshot of policies, one registry of agents, and the decision path.

use crate::audit::{Audit, AuditEvent};
use crate::clock::{Clock, SystemClock};
use crate::decision::{self, Decision, DenyCause, Hop, PolicyError};
use crate::error::{cedar_text, user_text, Error, LinkError, ReloadError, Result};
use crate::limit::Limits;
use crate::registry::{self, Agent, AgentSpec, DelegationNode, MintOptions, Registry};
use crate::request::Request;
use crate::snapshot::{ActionInfo, BuildOptions, ErrorMode, Snapshot, Validation};
use crate::source::{Sources, TextSource};
use arc_swap::ArcSwap;
use cedar_policy::{Context, Entities, Entity, EntityTypeName, EntityUid};
use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The inline issuers plus those whose JWKS files read now.
fn issuers_with_files(
    inline: &crate::credential::TrustedIssuers,
    files: &[(String, std::path::PathBuf)],
) -> Result<crate::credential::TrustedIssuers> {
    let mut trusted = inline.clone();
    for (issuer, path) in files {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, &e))?;
        trusted.add(issuer.clone(), &text)?;
    }
    Ok(trusted)
}

/// Default for [`AuthorizerBuilder::max_delegation_depth`].
pub const DEFAULT_MAX_DELEGATION_DEPTH: u32 = 8;
/// Default for [`AuthorizerBuilder::purge_grace`]: expired or revoked agents stay known (and
/// deny with `expired` / `revoked`) this many seconds before they are purged from memory.
pub const DEFAULT_PURGE_GRACE_SECONDS: u64 = 300;

/// Builds an [`Authorizer`]: where policies come from, and how strictly they are checked.
#[derive(Debug)]
pub struct AuthorizerBuilder {
    sources: Sources,
    validation: Validation,
    error_mode: ErrorMode,
    max_depth: u32,
    clock: Arc<dyn Clock>,
    agent_type: Option<String>,
    purge_grace: u64,
    limits: Limits,
    inline: usize,
    audit: Option<Audit>,
    trust_request_entities: bool,
    validate_entities: bool,
    issuers: crate::credential::TrustedIssuers,
    /// Issuers whose JWKS is a file: read at build and again at every reload.
    issuer_files: Vec<(String, std::path::PathBuf)>,
    oauth: Vec<crate::token::OAuthIssuerOptions>,
    dpop: crate::dpop::DpopOptions,
    deferred_error: Option<Error>,
    fleet: Option<(Arc<dyn crate::fleet::Backend>, crate::fleet::FleetSettings)>,
}

impl Default for AuthorizerBuilder {
    fn default() -> Self {
        Self {
            sources: Sources::default(),
            validation: Validation::Strict,
            error_mode: ErrorMode::FailClosed,
            max_depth: DEFAULT_MAX_DELEGATION_DEPTH,
            clock: Arc::new(SystemClock),
            agent_type: None,
            purge_grace: DEFAULT_PURGE_GRACE_SECONDS,
            limits: Limits::default(),
            inline: 0,
            audit: None,
            trust_request_entities: false,
            validate_entities: true,
            issuers: crate::credential::TrustedIssuers::default(),
            issuer_files: Vec::new(),
            oauth: Vec::new(),
            dpop: crate::dpop::DpopOptions::default(),
            deferred_error: None,
            fleet: None,
        }
    }
}

impl AuthorizerBuilder {
    fn inline_name(&mut self, kind: &str) -> String {
        self.inline += 1;
        format!("<{kind}-{}>", self.inline)
    }

    /// Shares this authorizer's registry with a fleet through the Redis the options name:
    /// see [`crate::fleet`]. `build` connects, restores the feed's checkpoint and catches up
    /// before it returns.
    ///
    /// # Errors
    /// (at `build`) `AMBIT_CONFIG` for malformed options, `AMBIT_FLEET` when Redis cannot be
    /// reached or followed.
    #[must_use]
    pub fn fleet(mut self, options: &crate::fleet::FleetOptions) -> Self {
        match options.open() {
            Ok(f) => self.fleet = Some(f),
            Err(e) => self.deferred_error = Some(e),
        }
        self
    }

    /// [`Self::fleet`] on a backend of your own.
    #[must_use]
    pub fn fleet_backend(
        mut self,
        backend: Arc<dyn crate::fleet::Backend>,
        settings: crate::fleet::FleetSettings,
    ) -> Self {
        self.fleet = Some((backend, settings));
        self
    }

    /// Every `*.cedarschema`, `*.cedar` and an optional `entities.json` in `dir`.
    #[must_use]
    pub fn dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.sources.dirs.push(dir.as_ref().to_path_buf());
        self
    }
    /// A schema in Cedar schema syntax (or JSON, if it parses as such is not assumed).
    #[must_use]
    pub fn schema_str(mut self, text: impl Into<String>) -> Self {
        let name = self.inline_name("schema");
        self.sources.schemas.push(TextSource::Inline { name, text: text.into() });
        self
    }
    /// A schema file (`*.cedarschema`, or `*.cedarschema.json` for the JSON format).
    #[must_use]
    pub fn schema_file(mut self, path: impl AsRef<Path>) -> Self {
        self.sources.schemas.push(TextSource::File(path.as_ref().to_path_buf()));
        self
    }
    /// Policy text. A single inline text keeps Cedar's positional ids (`policy0`, ...) for
    /// policies without `@id`.
    #[must_use]
    pub fn policies_str(mut self, text: impl Into<String>) -> Self {
        let name = self.inline_name("policies");
        self.sources.policies.push(TextSource::Inline { name, text: text.into() });
        self
    }
    /// A policy file; policies without `@id` get the id `<file name>#<n>`.
    #[must_use]
    pub fn policies_file(mut self, path: impl AsRef<Path>) -> Self {
        self.sources.policies.push(TextSource::File(path.as_ref().to_path_buf()));
        self
    }
    /// Every `*.cedar` file in `dir`.
    #[must_use]
    pub fn policies_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.sources.policy_dirs.push(dir.as_ref().to_path_buf());
        self
    }
    /// A links file: template links in the shape of the Cedar examples' `links.json` (a
    /// directory's `links.json` is read without this).
    #[must_use]
    pub fn links_file(mut self, path: impl AsRef<Path>) -> Self {
        self.sources.links.push(TextSource::File(path.as_ref().to_path_buf()));
        self
    }
    /// Template links as JSON text, in the links file shape.
    #[must_use]
    pub fn links_json(mut self, json: impl Into<String>) -> Self {
        let name = self.inline_name("links");
        self.sources.links.push(TextSource::Inline { name, text: json.into() });
        self
    }
    /// Static entities in Cedar's entity JSON format.
    #[must_use]
    pub fn entities_json(mut self, json: impl Into<String>) -> Self {
        let name = self.inline_name("entities");
        self.sources.entities = Some(TextSource::Inline { name, text: json.into() });
        self
    }
    /// A static entities file in Cedar's entity JSON format.
    #[must_use]
    pub fn entities_file(mut self, path: impl AsRef<Path>) -> Self {
        self.sources.entities = Some(TextSource::File(path.as_ref().to_path_buf()));
        self
    }
    /// Policy and request validation (default [`Validation::Strict`]).
    #[must_use]
    pub fn validation(mut self, validation: Validation) -> Self {
        self.validation = validation;
        self
    }
    /// What an erroring policy means (default [`ErrorMode::FailClosed`]).
    #[must_use]
    pub fn error_mode(mut self, mode: ErrorMode) -> Self {
        self.error_mode = mode;
        self
    }
    /// The longest delegation chain allowed, counted in delegations (default 8).
    #[must_use]
    pub fn max_delegation_depth(mut self, depth: u32) -> Self {
        self.max_depth = depth;
        self
    }
    /// The clock for expiry (default: the system clock). Tests inject a [`crate::ManualClock`].
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
    /// The entity type of agents (default: the schema's one type named `Agent`).
    #[must_use]
    pub fn agent_type(mut self, type_name: impl Into<String>) -> Self {
        self.agent_type = Some(type_name.into());
        self
    }
    /// Seconds an expired or revoked agent is kept before it is purged (default 300).
    #[must_use]
    pub fn purge_grace(mut self, seconds: u64) -> Self {
        self.purge_grace = seconds;
        self
    }

    /// Input limits (default [`Limits::default`]).
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Trusts the signed agent credentials of `issuer`: its public keys are the JWKS text
    /// `jwks` (`{"keys": [...]}`, Ed25519, each with a `kid`). A malformed JWKS fails `build`
    /// with `AMBIT_CONFIG`.
    #[must_use]
    pub fn trust_issuer(mut self, issuer: impl Into<String>, jwks: &str) -> Self {
        if let Err(e) = self.issuers.add(issuer, jwks) {
            self.deferred_error.get_or_insert(e);
        }
        self
    }

    /// [`Self::trust_issuer`] with the JWKS read from a file (no network). An unreadable file
    /// fails `build` with `AMBIT_IO`.
    #[must_use]
    pub fn trust_issuer_file(mut self, issuer: impl Into<String>, path: impl AsRef<Path>) -> Self {
        self.issuer_files.push((issuer.into(), path.as_ref().to_path_buf()));
        self
    }

    /// Accepts the OAuth access tokens of an issuer for [`Authorizer::authorize_token`]: its
    /// `sub` and nested `act` claims become the chain (see [`crate::token`]).
    ///
    /// # Errors
    /// (at `build`) `AMBIT_CONFIG` for a malformed JWKS, algorithm or entity type, `AMBIT_IO`
    /// for a JWKS file that does not read.
    #[must_use]
    pub fn oauth_issuer(mut self, issuer: crate::token::OAuthIssuerOptions) -> Self {
        self.oauth.push(issuer);
        self
    }

    /// How DPoP proofs (RFC 9449) are judged: whether every token needs one, their age
    /// window, the replay memory, the algorithms (see [`crate::dpop`]).
    ///
    /// # Errors
    /// (at `build`) `AMBIT_CONFIG` for an unknown algorithm or a zero replay capacity.
    #[must_use]
    pub fn dpop(mut self, options: crate::dpop::DpopOptions) -> Self {
        self.dpop = options;
        self
    }

    /// Lets per-request entities name static entities or registry agents as their parents,
    /// and be of a type the action allows as principal (default `false`).
    ///
    /// This is a trust decision: whoever builds the request can then make a new principal a
    /// member of any group (`principal in Group::"admins"`), or put a resource inside any
    /// container. Turn it on only when requests come from code you trust as much as your
    /// entity files; without it such a request is `AMBIT_ENTITIES`.
    #[must_use]
    pub fn trust_request_entities(mut self, trust: bool) -> Self {
        self.trust_request_entities = trust;
        self
    }

    /// Whether static entities must fit the schema (default `true`). Turn it off for entities
    /// files that do not fit their own schema (as some Cedar projects have): they are read as
    /// Cedar reads entities without a schema, while policies and requests are still validated
    /// as [`AuthorizerBuilder::validation`] says.
    #[must_use]
    pub fn validate_entities(mut self, validate: bool) -> Self {
        self.validate_entities = validate;
        self
    }

    /// Records every decision and lifecycle event in `audit` (see [`crate::audit`]).
    #[must_use]
    pub fn audit(mut self, audit: Audit) -> Self {
        self.audit = Some(audit);
        self
    }

    /// Reads, parses and validates everything, and builds the index.
    ///
    /// # Errors
    /// `AMBIT_IO`, `AMBIT_EMPTY_SOURCE`, `AMBIT_POLICY_PARSE`, `AMBIT_DUPLICATE_POLICY_ID`,
    /// `AMBIT_SCHEMA`, `AMBIT_VALIDATION` or `AMBIT_ENTITIES`, naming file and line.
    pub fn build(mut self) -> Result<Authorizer> {
        self.limits.check()?;
        if let Some(e) = self.deferred_error.take() {
            return Err(e);
        }
        let agent_type = match &self.agent_type {
            Some(t) => Some(
                t.parse::<EntityTypeName>()
                    .map_err(|_| Error::schema(format!("malformed agent type `{}`", user_text(t)), None))?,
            ),
            None => None,
        };
        let config = Config {
            validation: self.validation,
            error_mode: self.error_mode,
            max_depth: self.max_depth,
            agent_type,
            purge_grace: self.purge_grace,
            limits: self.limits,
            trust_request_entities: self.trust_request_entities,
            validate_entities: self.validate_entities,
        };
        let texts = self.sources.read()?;
        let snapshot = Snapshot::build(
            &texts,
            &BuildOptions {
                validation: config.validation,
                agent_type: config.agent_type.as_ref(),
                generation: 1,
                max_source_bytes: config.limits.max_source_bytes,
                validate_entities: config.validate_entities,
            },
        )?;
        let snapshot = Arc::new(ArcSwap::from_pointee(snapshot));
        let registry = Arc::new(Registry::default());
        let trusted = issuers_with_files(&self.issuers, &self.issuer_files)?;
        let oauth = self.oauth.iter().map(crate::token::OAuthIssuer::from_options).collect::<Result<Vec<_>>>()?;
        let dpop = crate::dpop::Dpop::from_options(&self.dpop)?;
        let credentials = Arc::new(crate::credential::Verifier::new(trusted));
        let fleet = match self.fleet {
            Some((backend, settings)) => Some({
                registry.mark_purged(self.clock.now());
                crate::fleet::Fleet::start(
                    backend,
                    settings,
                    crate::fleet::Target {
                        snapshot: Arc::clone(&snapshot),
                        registry: Arc::clone(&registry),
                        credentials: Arc::clone(&credentials),
                        max_depth: config.max_depth,
                    },
                )?
            }),
            None => None,
        };
        Ok(Authorizer {
            snapshot,
            registry,
            sources: Mutex::new(self.sources),
            config,
            clock: self.clock,
            generation: AtomicU64::new(1),
            audit: self.audit,
            retired: Mutex::new(None),
            credentials,
            inline_issuers: self.issuers,
            oauth: ArcSwap::from_pointee(crate::token::Issuers::new(oauth)),
            oauth_options: self.oauth,
            dpop,
            issuer_files: self.issuer_files,
            fleet,
        })
    }
}

#[derive(Debug)]
pub(crate) struct Config {
    validation: Validation,
    error_mode: ErrorMode,
    pub(crate) max_depth: u32,
    agent_type: Option<EntityTypeName>,
    purge_grace: u64,
    pub(crate) limits: Limits,
    /// Whether per-request entities may name static entities or agents as parents, or be of
    /// a principal type of the action (see [`AuthorizerBuilder::trust_request_entities`]).
    pub(crate) trust_request_entities: bool,
    validate_entities: bool,
}

/// What a successful reload produced.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReloadOutcome {
    /// The new policy version.
    pub version: String,
    /// The new generation.
    pub generation: u64,
}

/// Decides requests against one snapshot of Cedar policies and a registry of live agents.
///
/// `Authorizer` is `Send + Sync`: share it in an `Arc` across threads. Decisions never block on
/// reloads, mints or revocations.
#[derive(Debug)]
pub struct Authorizer {
    pub(crate) snapshot: Arc<ArcSwap<Snapshot>>,
    pub(crate) registry: Arc<Registry>,
    /// Also serialises reloads.
    sources: Mutex<Sources>,
    pub(crate) config: Config,
    pub(crate) clock: Arc<dyn Clock>,
    generation: AtomicU64,
    audit: Option<Audit>,
    retired: Mutex<Option<Arc<Snapshot>>>,
    /// Trusted issuers, verified credentials and revoked credential ids.
    credentials: Arc<crate::credential::Verifier>,
    /// The trusted issuers given inline, and those read from files (again at every reload).
    inline_issuers: crate::credential::TrustedIssuers,
    issuer_files: Vec<(String, std::path::PathBuf)>,
    /// OAuth issuers whose access tokens `authorize_token` accepts: swapped whole when a
    /// reload reads their JWKS files again.
    oauth: ArcSwap<crate::token::Issuers>,
    oauth_options: Vec<crate::token::OAuthIssuerOptions>,
    /// The DPoP judge and the proofs it has seen.
    dpop: crate::dpop::Dpop,
    /// The fleet feed this authorizer follows, when it shares its registry.
    fleet: Option<crate::fleet::Fleet>,
}

/// A request with every string parsed, ready for the decision path.
pub(crate) struct Prepared<'s> {
    /// The action's schema entry and policy slice, looked up once.
    pub(crate) info: Option<&'s ActionInfo>,
    pub(crate) principal: EntityUid,
    pub(crate) action: EntityUid,
    pub(crate) resource: EntityUid,
    pub(crate) delegators: Vec<EntityUid>,
    /// Canonical texts of the above, for the decision (formatting uids is not free).
    pub(crate) principal_text: String,
    pub(crate) action_text: String,
    pub(crate) resource_text: String,
    pub(crate) delegator_texts: Vec<String>,
    /// More delegators than the depth limit allows: they were not parsed, and the request is
    /// denied with `depth_exceeded`.
    pub(crate) too_deep: bool,
    pub(crate) context: Context,
    pub(crate) context_refs: Vec<EntityUid>,
    pub(crate) entities: Vec<(Entity, Vec<EntityUid>)>,
}

impl Authorizer {
    /// Starts a builder.
    pub fn builder() -> AuthorizerBuilder {
        AuthorizerBuilder::default()
    }

    /// Every `*.cedarschema`, `*.cedar` and an optional `entities.json` in `dir`, with the
    /// defaults (strict validation, fail-closed errors, depth 8).
    ///
    /// # Errors
    /// See [`AuthorizerBuilder::build`].
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
        Self::builder().dir(dir).build()
    }

    /// Decides one request. A deny is `Ok(decision)` with `allowed() == false`.
    ///
    /// # Errors
    /// `AMBIT_INVALID_REQUEST` (malformed uid, unknown action, wrong context) or
    /// `AMBIT_ENTITIES` (malformed per-request entities): input that cannot be evaluated.
    pub fn authorize(&self, request: &Request) -> Result<Decision> {
        let snap = self.snapshot.load();
        self.decide_audited(&snap, request)
    }

    /// One decision, recorded: a decision record, or a `request_failed` record for a request
    /// that could not be decided. An authorizer whose trail was closed decides nothing.
    fn decide_audited(&self, snap: &Snapshot, request: &Request) -> Result<Decision> {
        let Some(audit) = &self.audit else { return self.decide(snap, request, None) };
        if audit.is_closed() {
            return Err(Error::audit("the audit trail is closed: no decision can be recorded"));
        }
        match self.decide(snap, request, None) {
            Ok(decision) => {
                audit.decision(&decision, request.context());
                Ok(decision)
            }
            Err(e) => {
                audit.request_failed(request, &e);
                Err(e)
            }
        }
    }

    /// Flushes the audit trail and closes it with a final `closed` record; afterwards every
    /// decision is an `AMBIT_AUDIT` error (nothing is decided that is not recorded). Without a
    /// trail, does nothing. Idempotent; dropping the authorizer closes it too.
    pub fn close(&self) {
        if let Some(audit) = &self.audit {
            audit.close();
        }
    }

    /// Waits until every audit record handed off so far is written and flushed.
    pub fn flush(&self) {
        if let Some(audit) = &self.audit {
            audit.flush();
        }
    }

    /// The members of a tool's `arguments` (a JSON object) that `action`'s context type
    /// declares: what the framework guards send as the context when none is given, so a tool's
    /// other arguments (the ticket id, say) never make a context the schema refuses. Without a
    /// schema, or for an unknown action, an empty context.
    ///
    /// # Errors
    /// `AMBIT_INVALID_REQUEST` for a malformed action.
    pub fn context_for(&self, action: &str, arguments: &serde_json::Value) -> Result<serde_json::Value> {
        let snap = self.snapshot.load();
        let Some(schema) = snap.schema.as_ref() else { return Ok(serde_json::Value::Object(serde_json::Map::new())) };
        let uid = resolve_action(&snap, action)?;
        Ok(crate::mismatch::declared(schema, &uid, arguments))
    }

    /// The input limits this authorizer enforces.
    pub fn limits(&self) -> Limits {
        self.config.limits
    }

    /// The audit trail, when one was configured.
    pub fn audit(&self) -> Option<&Audit> {
        self.audit.as_ref()
    }

    /// Decides many requests on one snapshot (one policy version for the batch). One bad
    /// request does not fail the others.
    pub fn authorize_batch(&self, requests: &[Request]) -> Vec<Result<Decision>> {
        let snap = self.snapshot.load_full();
        requests.iter().map(|r| self.decide_audited(&snap, r)).collect()
    }

    /// Like [`Authorizer::authorize`], with any error turned into a denial: `true` only when
    /// the request is well-formed and allowed.
    pub fn check(&self, request: &Request) -> bool {
        self.authorize(request).is_ok_and(|d| d.allowed())
    }

    /// Mints a just-in-time agent under a live parent, narrowed to the given scopes,
    /// resources and lifetime.
    ///
    /// A lifetime beyond the parent's expiry is clamped to it.
    ///
    /// # Errors
    /// `AMBIT_INVALID_DELEGATION` when the parent is unknown, revoked or expired, a scope or
    /// resource exceeds the parent's, the depth limit is reached, or the agent does not fit
    /// the schema; `AMBIT_INVALID_REQUEST` for a malformed uid.
    pub fn mint_agent(&self, spec: &AgentSpec) -> Result<Agent> {
        spec.check_limits(&self.config.limits)?;
        let snap = self.snapshot.load();
        let now = self.clock.now();
        let (grace, interval) = (self.config.purge_grace, self.config.purge_grace.max(1));
        match &self.fleet {
            None => self.registry.maybe_purge(now, grace, interval),
            // in a fleet, purging is an event too, so every member holds the same agents
            Some(fleet) if self.registry.purge_due(now, interval) => {
                if let Err(e) = fleet.link.write(crate::fleet::Op::Purge { now, grace }) {
                    fleet.link.note_error(&e);
                }
            }
            Some(_) => {}
        }
        let opts = MintOptions { now, max_depth: self.config.max_depth, restoring: false };
        let agent = match &self.fleet {
            None => self.registry.mint(spec, &snap, &opts)?,
            Some(fleet) => {
                // checked here, then entered by every process from the feed, this one included
                let planned = self.registry.plan(spec, &snap, &opts)?;
                let uid = registry::parse_uid(planned.uid(), "agent")?;
                let minted = registry::Minted {
                    id: uid.id().unescaped().to_owned(),
                    spec: spec.clone().with_parent(planned.parent()),
                    created_at: planned.created_at(),
                    expires_at: planned.expires_at(),
                };
                let value = fleet.link.write(crate::fleet::Op::Mint { agent: minted })?;
                serde_json::from_value(value).map_err(|e| Error::internal(format!("fleet mint outcome: {e}")))?
            }
        };
        if let Some(audit) = &self.audit {
            audit.event(AuditEvent::AgentMinted {
                uid: agent.uid().to_owned(),
                parent: agent.parent().to_owned(),
                task: agent.task().to_owned(),
                scopes: agent.scopes().to_vec(),
                expires_at: agent.expires_at(),
            });
        }
        Ok(agent)
    }

    /// Revokes `uid` and cuts off everything minted under it, effective for the very next
    /// decision on any thread. Returns how many identities were newly cut off. A revoked
    /// agent stays revoked; a revoked person or service can be [`Authorizer::reinstate`]d.
    ///
    /// # Errors
    /// `AMBIT_INVALID_REQUEST` for a malformed uid.
    pub fn revoke(&self, uid: &str) -> Result<usize> {
        let uid = registry::parse_uid(uid, "revoked")?;
        let snap = self.snapshot.load();
        let count = match &self.fleet {
            None => self.registry.revoke(&uid, &snap, self.clock.now())?,
            Some(fleet) => {
                let value =
                    fleet.link.write(crate::fleet::Op::Revoke { uid: uid.to_string(), at: self.clock.now() })?;
                usize::try_from(value.as_u64().unwrap_or(0)).unwrap_or(usize::MAX)
            }
        };
        if let Some(audit) = &self.audit {
            audit.event(AuditEvent::Revoked { uid: uid.to_string(), count });
        }
        Ok(count)
    }

    /// A signed credential (compact JWS, EdDSA) for the live agent `agent`, signed with `key`:
    /// its whole chain (root first, each agent's task, scopes, confinement, attributes and
    /// lifetime), `iat`, `exp` (the agent's expiry) and a fresh `jti`. Any authorizer that
    /// trusts `key`'s issuer decides with it ([`Self::authorize_credential`]) as if the agent
    /// had been minted there. With `holder` (a key's RFC 7638 thumbprint,
    /// [`crate::IssuerKey::thumbprint`]) the credential carries `cnf.jkt` and is good only
    /// with a DPoP proof made by that key: a stolen copy is useless.
    ///
    /// # Errors
    /// `AMBIT_INVALID_REQUEST` for a malformed uid or holder thumbprint,
    /// `AMBIT_INVALID_DELEGATION` for an agent that is unknown, revoked or expired here.
    pub fn issue_credential(
        &self,
        agent: &str,
        key: &crate::credential::IssuerKey,
        holder: Option<&str>,
    ) -> Result<String> {
        let uid = registry::parse_uid(agent, "agent")?;
        let snap = self.snapshot.load();
        let now = self.clock.now();
        let record = self.registry.get(&uid).ok_or_else(|| {
            Error::invalid_delegation(format!("unknown agent `{uid}`: only minted agents get credentials"))
        })?;
        let hops = self.registry.resolve(&record.chain, &snap)?;
        if let Some((cause, i)) = self.registry.check_live(&hops, &snap.entities, now) {
            return Err(Error::invalid_delegation(format!(
                "agent `{uid}` is not live: `{}` is {cause}",
                record.chain_text.get(i).map_or("", String::as_str)
            )));
        }
        crate::credential::issue(&record, &hops, key, holder, now)
    }

    /// Decides `action` on `resource` for the agent a signed credential carries: the
    /// credential is verified (size, `alg: EdDSA` only, a trusted issuer and key, the
    /// signature, the times with [`crate::credential::CLOCK_SKEW_SECONDS`] of skew, the depth),
    /// its agents are entered with the same attenuation rules as local mints, and the decision
    /// is then the one a locally minted agent gets, audited the same way. A credential that
    /// fails is a deny with `invalid_token`, `token_expired`, `untrusted_issuer`,
    /// `depth_exceeded` or `revoked` (its `jti`, or its root), never an error. A credential
    /// verified once is remembered by its hash until it expires. A credential bound to a
    /// holder key (`cnf.jkt`) needs `dpop`, a proof by that key for this call
    /// (`dpop_required`, `dpop_invalid`, `replayed`; see [`crate::dpop`]).
    ///
    /// # Errors
    /// As [`Self::authorize`], for a malformed action, resource or context.
    pub fn authorize_credential(
        &self,
        credential: &str,
        action: &str,
        resource: &str,
        context: serde_json::Value,
        dpop: Option<&crate::dpop::DpopProof>,
    ) -> Result<Decision> {
        let snap = self.snapshot.load();
        let now = self.clock.now();
        let admitted =
            self.credentials.admit(credential, &snap, &self.registry, self.config.max_depth, now).and_then(|a| {
                self.dpop.check(dpop, credential, a.jkt.as_deref(), now, self.fleet_backend()).map(|_| a.sub)
            });
        match admitted {
            Ok(sub) => self.decide_audited(&snap, &Request::new(sub, action, resource).with_context(context)),
            Err(refusal) => self.refused(&snap, now, action, resource, context, refusal.cause, refusal.why),
        }
    }

    /// Decides `action` on `resource` for an OAuth access token (a JWT of a configured
    /// [`AuthorizerBuilder::oauth_issuer`]): verified (size, an allowed asymmetric `alg` that
    /// is its key's, a trusted issuer and `kid`, the signature, `aud`, `exp` / `nbf` / `iat`
    /// with the issuer's skew), its `sub` and nested `act` claims (RFC 8693, the outermost
    /// `act` the current actor) become the chain, each hop decided by Cedar; `scope` / `scp`
    /// narrow the actions (a bare action name or its uid must be among them: `out_of_scope`);
    /// `may_act` must allow the current actor; mapped claims are `context.token`. A token
    /// bound to a key (`cnf.jkt`, RFC 9449) needs `dpop`, a proof by that key for this call;
    /// `context.token.dpop_bound` says whether one was (when `context_claims` names it). A
    /// token that fails is a deny (`invalid_token`, `token_expired`, `untrusted_issuer`,
    /// `depth_exceeded`, `dpop_required`, `dpop_invalid`, `replayed`), never an error.
    ///
    /// # Errors
    /// As [`Self::authorize`], for a malformed action, resource or context.
    pub fn authorize_token(
        &self,
        token: &str,
        action: &str,
        resource: &str,
        context: serde_json::Value,
        dpop: Option<&crate::dpop::DpopProof>,
    ) -> Result<Decision> {
        let snap = self.snapshot.load();
        let now = self.clock.now();
        let admitted = crate::token::admit(token, &self.oauth.load(), self.config.max_depth, now).and_then(|a| {
            self.dpop.check(dpop, token, a.jkt.as_deref(), now, self.fleet_backend()).map(|bound| (a, bound))
        });
        let (admitted, bound) = match admitted {
            Ok(admitted) => admitted,
            Err(r) => return self.refused(&snap, now, action, resource, context, r.cause, r.why),
        };
        if let Some(scopes) = &admitted.scopes {
            let uid = resolve_action(&snap, action)?;
            let name = uid.id().unescaped().to_owned();
            let text = uid.to_string();
            if !scopes.iter().any(|s| s == &name || s == &text) {
                let why = format!("action `{}` is not in the token's scopes", user_text(action));
                return self.refused(&snap, now, action, resource, context, DenyCause::OutOfScope, why);
            }
        }
        let mut context = match context {
            serde_json::Value::Null => serde_json::Map::new(),
            serde_json::Value::Object(m) => m,
            _ => return Err(Error::invalid_request("context must be a JSON object")),
        };
        if let Some(mut claims) = admitted.token_context {
            if admitted.wants_dpop_bound {
                claims.insert(crate::token::DPOP_BOUND.into(), serde_json::Value::Bool(bound));
            }
            // the token's claims, never the caller's: a `token` the caller sent is replaced
            context.insert("token".into(), serde_json::Value::Object(claims));
        }
        // the chain's entities the token describes, for identities the entity store does not
        // know (a known one is decided as the store says): a description that does not fit the
        // schema is the token's fault, a deny
        let mut entities = Vec::with_capacity(admitted.entities.len());
        for (text, json) in admitted.entities {
            // registry agents bring their own attributes
            let known = snap
                .parse_uid_text(&text, "principal")
                .is_ok_and(|(uid, _)| snap.entities.get(&uid).is_some() || uid.type_name() == &snap.agent_type);
            if known {
                continue;
            }
            if let Err(e) = cedar_policy::Entity::from_json_value(json.clone(), snap.schema.as_ref()) {
                let why = format!(
                    "the token's claims do not describe `{text}` as the schema says: {}",
                    crate::error::error_chain(&e)
                );
                return self.refused(&snap, now, action, resource, context.into(), DenyCause::InvalidToken, why);
            }
            entities.push(json);
        }
        let mut chain = admitted.chain;
        let principal = chain.pop().unwrap_or_default();
        let request = Request::new(principal, action, resource)
            .on_behalf_of(chain)
            .with_context(context.into())
            .with_token_entities(entities);
        self.decide_audited(&snap, &request)
    }

    /// The fleet's backend, when this authorizer follows one.
    fn fleet_backend(&self) -> Option<&dyn crate::fleet::Backend> {
        self.fleet.as_ref().map(|f| f.link.backend())
    }

    /// A deny for a credential or token that was refused before any chain was decided,
    /// audited as any decision.
    #[allow(clippy::too_many_arguments, reason = "one record of the refusal")]
    fn refused(
        &self,
        snap: &Snapshot,
        now: u64,
        action: &str,
        resource: &str,
        context: serde_json::Value,
        cause: DenyCause,
        why: String,
    ) -> Result<Decision> {
        let request = Request::new(String::new(), action, resource).with_context(context);
        let decision = Decision {
            allowed: false,
            decision_id: decision::new_decision_id(),
            deny_cause: Some(cause),
            deny_hop: None,
            reasons: Vec::new(),
            chain: Vec::new(),
            hops: Vec::new(),
            errors: vec![PolicyError { policy_id: String::new(), message: why }],
            action: user_text(action),
            resource: user_text(resource),
            policy_version: snap.version.clone(),
            generation: snap.generation,
            timestamp: now,
        };
        if let Some(audit) = &self.audit {
            if audit.is_closed() {
                return Err(Error::audit("the audit trail is closed: no decision can be recorded"));
            }
            audit.decision(&decision, request.context());
        }
        Ok(decision)
    }

    /// A narrower credential for a sub-agent of the agent `credential` carries: the
    /// credential is verified as [`Self::authorize_credential`] does, a child is minted under
    /// its agent with `spec` (its parent must be that agent, or empty), with the usual
    /// attenuation (scopes and confinement within the parent's, a lifetime clamped to the
    /// parent's, depth bounded), and its credential is signed with `key`. Verifiers check
    /// every link again, so `key`'s issuer must be one they trust. A credential bound to a
    /// holder key gives a child bound to the same key: narrowing never drops the binding.
    ///
    /// # Errors
    /// `AMBIT_INVALID_DELEGATION` when the credential is refused (its cause named), `spec`
    /// names another parent, or the child would widen its parent.
    pub fn attenuate(&self, credential: &str, spec: &AgentSpec, key: &crate::credential::IssuerKey) -> Result<String> {
        let snap = self.snapshot.load();
        let now = self.clock.now();
        let crate::credential::Admitted { sub, jkt } = self
            .credentials
            .admit(credential, &snap, &self.registry, self.config.max_depth, now)
            .map_err(|r| Error::invalid_delegation(format!("the credential is refused ({}): {}", r.cause, r.why)))?;
        if !spec.parent().is_empty() && spec.parent() != sub {
            return Err(Error::invalid_delegation(format!(
                "a credential for `{sub}` can only be narrowed for a child of `{sub}`, not of `{}`",
                user_text(spec.parent())
            )));
        }
        let child = self.mint_agent(&spec.clone().with_parent(sub))?;
        self.issue_credential(child.uid(), key, jkt.as_deref())
    }

    /// Revokes a credential by its `jti`: every later decision with it is denied `revoked`
    /// (the agents it carries stay as they are; revoke them by uid to cut them off).
    ///
    /// # Errors
    /// `AMBIT_FLEET` when the authorizer follows a fleet and the revocation cannot be
    /// appended to its feed (nothing changed).
    pub fn revoke_credential(&self, jti: &str) -> Result<()> {
        match &self.fleet {
            None => self.credentials.revoke(jti),
            Some(fleet) => {
                fleet.link.write(crate::fleet::Op::RevokeCredential { jti: jti.to_owned() })?;
            }
        }
        if let Some(audit) = &self.audit {
            audit.event(AuditEvent::Revoked { uid: format!("jti:{}", user_text(jti)), count: 0 });
        }
        Ok(())
    }

    /// Lifts the revocation of a person or service; returns whether it was revoked.
    ///
    /// # Errors
    /// `AMBIT_INVALID_DELEGATION` for an agent (agent revocation is final),
    /// `AMBIT_INVALID_REQUEST` for a malformed uid.
    pub fn reinstate(&self, uid: &str) -> Result<bool> {
        let uid = registry::parse_uid(uid, "reinstated")?;
        let snap = self.snapshot.load();
        let was = match &self.fleet {
            None => self.registry.reinstate(&uid, &snap)?,
            Some(fleet) => {
                if snap.is_minted(&uid) {
                    // refused before it reaches the feed (the same error every process would give)
                    return self.registry.reinstate(&uid, &snap);
                }
                fleet.link.write(crate::fleet::Op::Reinstate { uid: uid.to_string() })?.as_bool().unwrap_or(false)
            }
        };
        if let (Some(audit), true) = (&self.audit, was) {
            audit.event(AuditEvent::Reinstated { uid: uid.to_string() });
        }
        Ok(was)
    }

    /// Removes agents that expired or were revoked more than the purge grace ago; returns how
    /// many. Minting also purges on a schedule, so memory stays bounded without calling this.
    /// In a fleet the purge is an event every member applies (0 when the feed refuses it; the
    /// fleet status shows why).
    pub fn purge_expired(&self) -> usize {
        let (now, grace) = (self.clock.now(), self.config.purge_grace);
        match &self.fleet {
            None => self.registry.purge(now, grace),
            Some(fleet) => match fleet.link.write(crate::fleet::Op::Purge { now, grace }) {
                Ok(v) => usize::try_from(v.as_u64().unwrap_or(0)).unwrap_or(usize::MAX),
                Err(e) => {
                    fleet.link.note_error(&e);
                    0
                }
            },
        }
    }

    /// Every agent in the registry (live, expired or revoked but not yet purged).
    pub fn agents(&self) -> Vec<Agent> {
        self.registry.agents()
    }

    /// The number of agents in the registry.
    pub fn agent_count(&self) -> usize {
        self.registry.len()
    }

    /// The delegation tree under `root` (a person, service or agent).
    ///
    /// # Errors
    /// `AMBIT_INVALID_REQUEST` for a malformed uid.
    pub fn delegation_tree(&self, root: &str) -> Result<DelegationNode> {
        let root = registry::parse_uid(root, "root")?;
        self.registry.tree(&root)
    }

    /// The files of the source directories that were read (schemas, policies, entities, links)
    /// and those that were skipped (anything else), for the snapshot now serving.
    pub fn source_files(&self) -> (Vec<std::path::PathBuf>, Vec<std::path::PathBuf>) {
        let snap = self.snapshot.load();
        (snap.files_read.clone(), snap.files_skipped.clone())
    }

    /// The version (content hash) of the policies now serving.
    pub fn policy_version(&self) -> String {
        self.snapshot.load().version.clone()
    }

    /// The generation now serving; it grows by one with every successful reload.
    pub fn generation(&self) -> u64 {
        self.snapshot.load().generation
    }

    /// The ids of every loaded policy, sorted.
    pub fn policy_ids(&self) -> Vec<String> {
        let snap = self.snapshot.load();
        let mut ids: Vec<String> = snap.policies.policies().map(|p| p.id().to_string()).collect();
        ids.sort();
        ids
    }

    /// Re-reads every source the authorizer was built from, builds and validates a new
    /// snapshot off the read path, and swaps it in atomically. On any error the last good
    /// snapshot keeps serving. Revocations and agents survive reloads.
    ///
    /// # Errors
    /// `AMBIT_RELOAD`, whose cause is the underlying error (with file and line).
    pub fn reload(&self) -> Result<ReloadOutcome> {
        let sources = self.sources.lock().map_err(|_| Error::internal("reload lock poisoned"))?;
        self.rebuild(&sources)
    }

    /// Replaces the policies with `text` (schema and entities stay), then reloads.
    ///
    /// # Errors
    /// As [`Authorizer::reload`]; on error the sources are left unchanged too.
    pub fn replace_policies(&self, text: &str) -> Result<ReloadOutcome> {
        let mut sources = self.sources.lock().map_err(|_| Error::internal("reload lock poisoned"))?;
        let mut next = sources.clone();
        next.replace_policies(text);
        let outcome = self.rebuild(&next)?;
        *sources = next;
        Ok(outcome)
    }

    /// Replaces the static entities with `json` (schema and policies stay), then reloads.
    ///
    /// # Errors
    /// As [`Authorizer::reload`]; on error the sources are left unchanged too.
    pub fn replace_entities(&self, json: &str) -> Result<ReloadOutcome> {
        let mut sources = self.sources.lock().map_err(|_| Error::internal("reload lock poisoned"))?;
        let mut next = sources.clone();
        next.replace_entities(json);
        let outcome = self.rebuild(&next)?;
        *sources = next;
        Ok(outcome)
    }

    /// Links a template at run time: the new policy (named `link_id`) is validated against the
    /// schema with everything else, indexed like a static policy, counted in the policy version,
    /// audited, and kept across reloads of the policy files until [`Authorizer::unlink`]ed. A
    /// link is the natural way to grant one agent access to one resource just in time.
    ///
    /// # Errors
    /// `AMBIT_LINK` when the template is unknown, a slot is missing or extra, the link id is
    /// taken, a uid is malformed, or the linked policy fails validation; `AMBIT_RELOAD` when
    /// the sources themselves no longer build (nothing changes then).
    pub fn link(&self, link: &crate::Link) -> Result<ReloadOutcome> {
        let mut sources = self.sources.lock().map_err(|_| Error::internal("reload lock poisoned"))?;
        {
            let snap = self.snapshot.load();
            let mut trial = snap.policies.clone();
            crate::snapshot::link_one(&mut trial, link).map_err(|m| Error::from(LinkError::new(m, None)))?;
        }
        let mut next = sources.clone();
        next.runtime_links.push(link.clone());
        let outcome = match self.rebuild_inner(&next) {
            Ok(o) => o,
            Err(Error::Reload(r)) if r.cause().code() == "AMBIT_VALIDATION" => {
                return Err(LinkError::new(
                    format!("link `{}` does not validate: {}", user_text(link.link_id()), r.cause().message()),
                    None,
                )
                .into());
            }
            Err(e) => return Err(e),
        };
        *sources = next;
        if let Some(audit) = &self.audit {
            audit.event(AuditEvent::Linked {
                link_id: link.link_id().to_owned(),
                template_id: link.template_id().to_owned(),
                args: link.args().clone(),
                version: outcome.version.clone(),
            });
        }
        Ok(outcome)
    }

    /// Removes a link made with [`Authorizer::link`]; decisions stop using it at once.
    ///
    /// # Errors
    /// `AMBIT_LINK` when no run-time link has that id (links from a links file are removed by
    /// editing the file and reloading); `AMBIT_RELOAD` when the sources no longer build.
    pub fn unlink(&self, link_id: &str) -> Result<ReloadOutcome> {
        let mut sources = self.sources.lock().map_err(|_| Error::internal("reload lock poisoned"))?;
        let Some(at) = sources.runtime_links.iter().position(|l| l.link_id() == link_id) else {
            return Err(LinkError::new(
                format!("no run-time link `{}`: links from a links file are removed there", user_text(link_id)),
                None,
            )
            .into());
        };
        let mut next = sources.clone();
        next.runtime_links.remove(at);
        let outcome = self.rebuild_inner(&next)?;
        *sources = next;
        if let Some(audit) = &self.audit {
            audit.event(AuditEvent::Unlinked { link_id: link_id.to_owned(), version: outcome.version.clone() });
        }
        Ok(outcome)
    }

    /// Every template link now serving (from links files and made at run time), by link id.
    pub fn links(&self) -> Vec<crate::Link> {
        let snap = self.snapshot.load();
        let mut out: Vec<crate::Link> = snap
            .policies
            .policies()
            .filter_map(|p| {
                let template = p.template_id()?;
                let mut link = crate::Link::new(template.to_string(), p.id().to_string());
                for (slot, uid) in p.template_links()? {
                    link = match slot.to_string().as_str() {
                        "?principal" => link.principal(uid.to_string()),
                        _ => link.resource(uid.to_string()),
                    };
                }
                Some(link)
            })
            .collect();
        out.sort_by(|a, b| a.link_id().cmp(b.link_id()));
        out
    }

    /// The files and directories this authorizer reads (what `watch` follows).
    pub fn source_paths(&self) -> Vec<std::path::PathBuf> {
        let mut paths = self.sources.lock().map(|s| s.paths()).unwrap_or_default();
        // a rotated JWKS file reloads too
        paths.extend(self.issuer_files.iter().map(|(_, p)| p.clone()));
        paths.extend(self.oauth_options.iter().filter_map(|o| o.file.clone()));
        paths
    }

    fn rebuild(&self, sources: &Sources) -> Result<ReloadOutcome> {
        let outcome = self.rebuild_inner(sources);
        if let Some(audit) = &self.audit {
            audit.event(match &outcome {
                Ok(o) => AuditEvent::ReloadSucceeded { version: o.version.clone(), generation: o.generation },
                Err(e) => AuditEvent::ReloadFailed { code: e.code().to_owned(), error: e.to_string() },
            });
        }
        outcome
    }

    fn rebuild_inner(&self, sources: &Sources) -> Result<ReloadOutcome> {
        // issuer keys first: a JWKS file that no longer reads fails the reload, and nothing
        // (keys or policies) changes
        let trusted = if self.issuer_files.is_empty() {
            None
        } else {
            Some(
                issuers_with_files(&self.inline_issuers, &self.issuer_files)
                    .map_err(|e| Error::from(ReloadError::new(e)))?,
            )
        };
        let oauth = if self.oauth_options.iter().any(|o| o.file.is_some()) {
            Some(
                self.oauth_options
                    .iter()
                    .map(crate::token::OAuthIssuer::from_options)
                    .collect::<Result<Vec<_>>>()
                    .map_err(|e| Error::from(ReloadError::new(e)))?,
            )
        } else {
            None
        };
        let generation = self.generation.load(Ordering::SeqCst) + 1;
        let built = sources.read().and_then(|texts| {
            Snapshot::build(
                &texts,
                &BuildOptions {
                    validation: self.config.validation,
                    agent_type: self.config.agent_type.as_ref(),
                    generation,
                    max_source_bytes: self.config.limits.max_source_bytes,
                    validate_entities: self.config.validate_entities,
                },
            )
        });
        let snapshot = built.map_err(|e| Error::from(ReloadError::new(e)))?;
        let current = self.snapshot.load();
        if snapshot.agent_type != current.agent_type {
            return Err(ReloadError::new(Error::schema(
                format!(
                    "the agent type changed from `{}` to `{}`: live agents would be orphaned",
                    current.agent_type, snapshot.agent_type
                ),
                None,
            ))
            .into());
        }
        let outcome = ReloadOutcome { version: snapshot.version.clone(), generation };
        self.generation.store(generation, Ordering::SeqCst);
        if let Some(trusted) = trusted {
            self.credentials.set_trusted(trusted);
        }
        if let Some(oauth) = oauth {
            self.oauth.store(Arc::new(crate::token::Issuers::new(oauth)));
        }
        let old = self.snapshot.swap(Arc::new(snapshot));
        // The writer keeps the previous snapshot until the next reload, so the last strong
        // reference (and the cost of freeing a whole policy set) is rarely a reader's.
        if let Ok(mut retired) = self.retired.lock() {
            *retired = Some(old);
        }
        Ok(outcome)
    }

    pub(crate) fn prepare<'s>(snap: &'s Snapshot, config: &Config, request: &Request) -> Result<Prepared<'s>> {
        Self::prepare_with(snap, config, request, true)
    }

    /// [`Self::prepare`]; without `with_context` the context is neither parsed nor checked
    /// (empty): for checks that do not read it.
    fn prepare_with<'s>(
        snap: &'s Snapshot,
        config: &Config,
        request: &Request,
        with_context: bool,
    ) -> Result<Prepared<'s>> {
        let limits = &config.limits;
        // bounded before anything is parsed: a chain longer than the depth limit is denied
        // (`depth_exceeded`) without looking at its delegators one by one
        let too_deep = request.delegators().len() > config.max_depth as usize;
        limits.check_uid("principal", request.principal())?;
        limits.check_uid("resource", request.resource())?;
        limits.check_uid("action", request.action())?;
        let delegators_given = if too_deep { &[][..] } else { request.delegators() };
        for d in delegators_given {
            limits.check_uid("delegator", d)?;
        }
        if request.entities().len() > limits.max_request_entities {
            return Err(Error::limit(format!(
                "{} request entities, more than the limit of {}",
                request.entities().len(),
                limits.max_request_entities
            )));
        }
        let mut budget = limits.max_request_bytes;
        limits.check_json("context", request.context(), &mut budget)?;
        for e in request.entities() {
            limits.check_json("a request entity", e, &mut budget)?;
        }
        let (principal, principal_text) = snap.parse_uid_text(request.principal(), "principal")?;
        let (resource, resource_text) = snap.parse_uid_text(request.resource(), "resource")?;
        let action = resolve_action(snap, request.action())?;
        let info = snap.actions.get(&action);
        let action_text = info.map_or_else(|| action.to_string(), |i| i.text.clone());
        let action = match info {
            Some(i) => crate::snapshot::thread_uid(&i.text, &action),
            None => action,
        };
        let (delegators, delegator_texts): (Vec<_>, Vec<_>) = delegators_given
            .iter()
            .map(|d| snap.parse_uid_text(d, "delegator"))
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .unzip();
        let empty;
        let context_json = match request.context() {
            serde_json::Value::Null => {
                empty = serde_json::Value::Object(serde_json::Map::new());
                &empty
            }
            v @ serde_json::Value::Object(_) => v,
            _ => return Err(Error::invalid_request("context must be a JSON object")),
        };
        let mut context_refs = Vec::new();
        crate::snapshot::collect_refs(context_json, &mut context_refs);
        let schema_action = snap.schema.as_ref().filter(|_| info.is_some()).map(|s| (s, &action));
        let context = if with_context {
            parse_context(snap, &action, &action_text, context_json, schema_action)?
        } else {
            Context::empty()
        };
        if snap.validation != Validation::Off {
            if let Some(info) = info {
                if let Some(allowed) = &info.resources {
                    if !allowed.contains(resource.type_name()) {
                        return Err(Error::invalid_request(format!(
                            "resource type `{}` is not valid for action `{action}`",
                            resource.type_name()
                        )));
                    }
                }
            }
            if snap.bad_enum_id(&resource) {
                return Err(enum_error(&resource));
            }
        }
        let entities =
            request_entities(snap, request, info, config.trust_request_entities || request.entities_trusted())?;
        Ok(Prepared {
            info,
            principal,
            action,
            resource,
            delegators,
            principal_text,
            action_text,
            resource_text,
            delegator_texts,
            too_deep,
            context,
            context_refs,
            entities,
        })
    }

    /// Decides one request on `snap`. With `trace`, each evaluated hop's policy outcomes are
    /// appended to it (one list per hop, root first), from the very evaluation that decides.
    pub(crate) fn decide(
        &self,
        snap: &Snapshot,
        request: &Request,
        mut trace: Option<&mut Vec<Vec<crate::explain::PolicyTrace>>>,
    ) -> Result<Decision> {
        let p = Self::prepare(snap, &self.config, request)?;
        let now = self.clock.now();
        if self.fleet_stale_for(snap, &p) {
            let mut claimed = p.delegator_texts.clone();
            claimed.push(p.principal_text.clone());
            return Ok(Outcome::new(snap, &p, claimed, now).deny(DenyCause::StaleState, None));
        }
        let (chain, hops, mut out) = match self.resolve_chain(snap, &p) {
            Ok((chain, chain_text, hops)) => (chain, hops, Outcome::new(snap, &p, chain_text, now)),
            Err((cause, hop, chain_text)) => return Ok(Outcome::new(snap, &p, chain_text, now).deny(cause, hop)),
        };
        // 2. every identity on the chain, and everything it descends from, is live
        if let Some((cause, i)) = self.registry.check_live(&hops, &snap.entities, now) {
            return Ok(out.deny(cause, Some(i)));
        }
        // 3. the action is within every agent's scopes
        let info = p.info;
        if let Some(i) = out_of_scope(&p, &hops) {
            return Ok(out.deny(DenyCause::OutOfScope, Some(i)));
        }
        if snap.validation != Validation::Off {
            if let Some(allowed) = info.and_then(|i| i.principals.as_ref()) {
                if let Some(uid) = chain.iter().find(|u| !allowed.contains(u.type_name())) {
                    return Err(Error::invalid_request(format!(
                        "principal type `{}` (of `{uid}` on the chain) is not valid for action `{}`",
                        uid.type_name(),
                        p.action
                    )));
                }
            }
            if let Some(uid) = chain.iter().find(|u| snap.bad_enum_id(u)) {
                return Err(enum_error(uid));
            }
        }
        let slice = &snap.index.slices[info.map_or(crate::index::FULL, |i| i.slice)];
        // Only agents and per-request entities are not in the static store; without them the
        // store itself is the decision's entity set (what raw Cedar would use), at no cost.
        let sliced;
        let entities = if p.entities.is_empty() && hops.iter().all(|(_, h)| matches!(h, registry::Hop::Static)) {
            &snap.entities
        } else {
            sliced = entity_slice(snap, &self.registry, &hops, &p, &slice.literals)?;
            sliced.get()
        };
        // trusted request entities may name parents of their own: revocation reaches through them
        if !p.entities.is_empty() {
            for (i, (uid, hop)) in hops.iter().enumerate() {
                if matches!(hop, registry::Hop::Static) && self.registry.static_cut_off(uid, entities) {
                    return Ok(out.deny(DenyCause::Revoked, Some(i)));
                }
            }
        }
        // 3b. the resource is within every agent's confinement
        for (i, (_, hop)) in hops.iter().enumerate() {
            if let registry::Hop::Agent(a) = hop {
                if let Some(allowed) = &a.resources {
                    let inside = allowed.iter().any(|r| r == &p.resource || entities.is_ancestor_of(r, &p.resource));
                    if !inside {
                        return Ok(out.deny(DenyCause::OutOfConfinement, Some(i)));
                    }
                }
            }
        }
        // 4. Cedar decides each hop, root first
        for (i, uid) in chain.iter().enumerate() {
            let policies = slice.policies_for(uid, &p.resource, entities);
            let hop_trace = trace.as_deref_mut().map(|t| {
                t.resize_with(i + 1, Vec::new);
                &mut t[i]
            });
            let answer = crate::engine::is_authorized(
                uid,
                &p.action,
                &p.resource,
                &p.context,
                entities,
                policies,
                slice.scopes_hold(),
                hop_trace,
            );
            let hop = evaluate_hop(answer, self.config.error_mode);
            out.record_hop(i, hop.0);
            if let Some(cause) = hop.1 {
                return Ok(out.deny(cause, Some(i)));
            }
        }
        // 5. a revocation that landed while Cedar was deciding still wins
        if let Some((cause, i)) = self.registry.check_live(&hops, &snap.entities, self.clock.now()) {
            return Ok(out.deny(cause, Some(i)));
        }
        Ok(out.allow())
    }

    /// The identity checks of a decision without its policies: the chain (steps 1 to 3 of
    /// the decision: resolution, liveness, scopes), not the context, the confinement or
    /// Cedar. `Some(cause)` means every call of this action by this principal (and these
    /// delegators) is denied now, whatever its context; `None` means the policies decide.
    /// Tool listings use it (`tools/list` shows only what an agent may call). Not audited:
    /// it decides nothing.
    ///
    /// # Errors
    /// As [`Self::authorize`], except that the context is not read.
    pub fn precheck(&self, request: &Request) -> Result<Option<DenyCause>> {
        let snap = self.snapshot.load();
        let p = Self::prepare_with(&snap, &self.config, request, false)?;
        if self.fleet_stale_for(&snap, &p) {
            return Ok(Some(DenyCause::StaleState));
        }
        let hops = match self.resolve_chain(&snap, &p) {
            Ok((_, _, hops)) => hops,
            Err((cause, _, _)) => return Ok(Some(cause)),
        };
        if let Some((cause, _)) = self.registry.check_live(&hops, &snap.entities, self.clock.now()) {
            return Ok(Some(cause));
        }
        Ok(out_of_scope(&p, &hops).map(|_| DenyCause::OutOfScope))
    }

    /// Whether this request must deny `stale_state`: the fleet feed is stale and the request
    /// names a minted agent (or static principals deny too).
    fn fleet_stale_for(&self, snap: &Snapshot, p: &Prepared) -> bool {
        let Some(fleet) = &self.fleet else { return false };
        fleet.link.is_stale()
            && (fleet.link.denies_static()
                || snap.is_minted(&p.principal)
                || p.too_deep
                || p.delegators.iter().any(|d| snap.is_minted(d)))
    }

    /// What this process knows of its fleet feed; `None` without a fleet.
    pub fn fleet_status(&self) -> Option<crate::fleet::FleetStatus> {
        self.fleet.as_ref().map(|f| f.link.status())
    }

    /// Saves the registry as the fleet's checkpoint now and trims the feed up to it (followers
    /// behind it restore it); the event it covers. Checkpoints are also taken every
    /// `checkpoint_every` events.
    ///
    /// # Errors
    /// `AMBIT_CONFIG` without a fleet, `AMBIT_FLEET` when the backend cannot be reached.
    pub fn fleet_checkpoint(&self) -> Result<u64> {
        let fleet = self.fleet.as_ref().ok_or_else(|| Error::config("this authorizer follows no fleet"))?;
        fleet.link.checkpoint(&fleet.target)
    }

    /// The chain a request is decided over, root first: the explicit delegators, then the
    /// principal, where every agent, wherever it appears, brings its whole registry ancestry.
    /// The result is one consistent path: each agent's parent is the hop right before it.
    /// Linear in the chain, which is bounded by the depth limit before anything is looked up.
    ///
    /// A request that cannot be resolved is a denial: (cause, hop, the chain as claimed).
    fn resolve_chain(&self, snap: &Snapshot, p: &Prepared) -> ChainResult {
        let max_hops = (self.config.max_depth as usize).saturating_add(1);
        let claimed = || {
            let mut texts = p.delegator_texts.clone();
            texts.push(p.principal_text.clone());
            texts
        };
        if p.too_deep || p.delegators.len() >= max_hops {
            return Err((DenyCause::DepthExceeded, None, claimed()));
        }
        let mut chain: Vec<EntityUid> = Vec::with_capacity(p.delegators.len() + 4);
        let mut texts: Vec<String> = Vec::with_capacity(p.delegators.len() + 4);
        let mut hops: Vec<(EntityUid, registry::Hop)> = Vec::with_capacity(p.delegators.len() + 4);
        let named =
            p.delegators.iter().zip(&p.delegator_texts).chain(std::iter::once((&p.principal, &p.principal_text)));
        for (uid, text) in named {
            if snap.is_minted(uid) {
                let Some(record) = self.registry.get(uid) else {
                    return Err((DenyCause::UnknownPrincipal, Some(chain.len()), claimed()));
                };
                // where the agent's ancestry joins the chain so far: at its start, or right
                // after the hop before it (which must then be one of its ancestors)
                let start = match chain.last() {
                    None => 0,
                    Some(last) => match record.chain.iter().position(|a| a == last) {
                        Some(j) if j + 1 < record.chain.len() && chain.ends_with(&record.chain[..=j]) => j + 1,
                        _ => return Err((DenyCause::InvalidChain, Some(chain.len()), claimed())),
                    },
                };
                for (k, (a, t)) in record.chain.iter().zip(&record.chain_text).enumerate().skip(start) {
                    let hop = if k + 1 == record.chain.len() {
                        registry::Hop::Agent(Arc::clone(&record))
                    } else if snap.is_minted(a) {
                        match self.registry.get(a) {
                            Some(r) => registry::Hop::Agent(r),
                            None => return Err((DenyCause::UnknownPrincipal, Some(chain.len()), claimed())),
                        }
                    } else {
                        registry::Hop::Static
                    };
                    chain.push(a.clone());
                    texts.push(t.clone());
                    hops.push((a.clone(), hop));
                }
            } else {
                chain.push(uid.clone());
                texts.push(text.clone());
                hops.push((uid.clone(), registry::Hop::Static));
            }
            if chain.len() > max_hops {
                return Err((DenyCause::DepthExceeded, None, texts));
            }
        }
        // no identity twice (a cycle); the chain is at most max_hops long
        let repeated = if chain.len() <= 16 {
            (1..chain.len()).find(|&i| chain[..i].contains(&chain[i]))
        } else {
            let mut seen = HashSet::with_capacity(chain.len());
            chain.iter().position(|u| !seen.insert(u))
        };
        if let Some(i) = repeated {
            return Err((DenyCause::InvalidChain, Some(i), texts));
        }
        Ok((chain, texts, hops))
    }
}

/// A resolved chain (uids, their texts, their hops), or why there is none.
type ChainResult = std::result::Result<
    (Vec<EntityUid>, Vec<String>, Vec<(EntityUid, registry::Hop)>),
    (DenyCause, Option<usize>, Vec<String>),
>;

fn enum_error(uid: &EntityUid) -> Error {
    Error::invalid_request(format!(
        "entity `{uid}` is of an enumerated entity type, but `{}` is not one of its declared ids",
        user_text(uid.id().unescaped())
    ))
}

impl Sources {
    fn replace_policies(&mut self, text: &str) {
        // directories keep providing schema and entities, but not policies
        for dir in std::mem::take(&mut self.dirs) {
            self.schema_and_entities_from(&dir);
        }
        self.policy_dirs.clear();
        self.policies = vec![TextSource::Inline { name: "<replaced-policies>".into(), text: text.to_owned() }];
    }

    fn replace_entities(&mut self, json: &str) {
        for dir in std::mem::take(&mut self.dirs) {
            self.policy_dirs.push(dir.clone());
            self.schema_and_entities_from(&dir);
        }
        self.entities = Some(TextSource::Inline { name: "<replaced-entities>".into(), text: json.to_owned() });
    }

    fn schema_and_entities_from(&mut self, dir: &Path) {
        let mut files: Vec<_> =
            std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
        files.sort();
        for path in files {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if name.ends_with(".cedarschema") || name.ends_with(".cedarschema.json") {
                self.schemas.push(TextSource::File(path));
            } else if crate::source::is_entities_file(&name) && self.entities.is_none() {
                self.entities = Some(TextSource::File(path));
            }
        }
    }
}

/// A context of plain JSON (strings, integers, booleans, arrays, objects; no `__entity`,
/// `__extn` or `{type, id}` escapes) built directly, as Cedar's untyped JSON parse would build
/// it; `None` for anything else.
#[cfg(test)]
fn plain_context(json: &serde_json::Value) -> Option<Context> {
    plain_context_shape(json, None)
}

/// Cedar's untyped parse of a plain context (no entity or extension escapes: their ids and
/// typing matter to validation), built directly (`crate::plain`). With `shape`, also writes the
/// value's type signature there: Cedar's check of such a context depends only on it.
fn plain_context_shape(json: &serde_json::Value, shape: Option<&mut String>) -> Option<Context> {
    use cedar_policy_core::ast::{Context as CoreContext, Value, ValueKind};
    let fields = crate::plain::Plain { types: None, sig: shape }.fields(json.as_object()?)?;
    let record = Value::record(fields, None);
    let ValueKind::Record(attrs) = record.value_kind() else { return None };
    Some(Context::from(CoreContext::Value(Arc::clone(attrs))))
}

/// Context shapes remembered per snapshot as valid for their action.
const MAX_REMEMBERED_SHAPES: usize = 4096;
/// Longer signatures (large contexts) are checked by Cedar every time.
const MAX_SHAPE_BYTES: usize = 512;

/// The request context, typed by the schema. With validation on, a context that parses
/// untyped and then validates against the action's context type is the same value the typed
/// parse gives (typing only changes strings into extension values or entity references, which
/// the untyped value would fail validation for), and the untyped parse is much cheaper; any
/// other context takes the typed parse. Cedar's validation of an untyped plain context
/// depends only on its type signature (no entity or extension values, whose ids could
/// matter), so a signature that validated once for an action is remembered for the snapshot.
/// The first hop (if any) that is an agent whose scopes do not hold the action.
fn out_of_scope(p: &Prepared, hops: &[(EntityUid, registry::Hop)]) -> Option<usize> {
    let own_name = [p.action_text.clone()];
    let names: &[String] = p.info.map_or(&own_name, |i| &i.scope_names);
    hops.iter().position(|(_, hop)| match hop {
        registry::Hop::Agent(a) => !names.iter().any(|n| a.scopes.contains(n)),
        registry::Hop::Static => false,
    })
}

fn parse_context(
    snap: &Snapshot,
    action: &EntityUid,
    action_text: &str,
    json: &serde_json::Value,
    schema_action: Option<(&cedar_policy::Schema, &EntityUid)>,
) -> Result<Context> {
    let invalid = |e: &dyn std::fmt::Display| {
        // name the attribute and the type expected where ambit can; Cedar's words otherwise
        let why = schema_action
            .and_then(|(schema, a)| crate::mismatch::context(schema, a, json))
            .unwrap_or_else(|| cedar_text(e));
        Error::invalid_request(format!("context does not fit action `{action}`: {why}"))
    };
    let validating = snap.validation != Validation::Off;
    if let (true, Some((schema, a))) = (validating, schema_action) {
        let mut shape = String::with_capacity(action_text.len() + 32);
        shape.push_str(action_text);
        shape.push('|');
        if let Some(untyped) = plain_context_shape(json, Some(&mut shape)) {
            let shapes = snap.context_shapes.pin();
            if shapes.contains(&shape) {
                return Ok(untyped);
            }
            if untyped.validate(schema, a).is_ok() {
                if shapes.len() < MAX_REMEMBERED_SHAPES && shape.len() <= MAX_SHAPE_BYTES {
                    shapes.insert(shape);
                }
                return Ok(untyped);
            }
        }
    }
    let typed = Context::from_json_value(json.clone(), schema_action).map_err(|e| invalid(&e))?;
    if let (true, Some((schema, a))) = (validating, schema_action) {
        typed.validate(schema, a).map_err(|e| invalid(&e))?;
    }
    Ok(typed)
}

fn resolve_action(snap: &Snapshot, text: &str) -> Result<EntityUid> {
    if text.as_bytes().windows(2).any(|w| w == b"::") {
        let uid = snap.parse_uid(text, "action")?;
        if snap.validation != Validation::Off && !snap.actions.contains_key(&uid) {
            return Err(Error::invalid_request(format!("unknown action `{}`", user_text(text))));
        }
        return Ok(uid);
    }
    match snap.action_names.get(text) {
        Some(Some(uid)) => Ok(uid.clone()),
        Some(None) => Err(Error::invalid_request(format!(
            "action name `{}` is ambiguous across namespaces: give the full uid",
            user_text(text)
        ))),
        None if snap.actions.is_empty() => {
            let ty: EntityTypeName = "Action".parse().map_err(|_| Error::internal("cannot name `Action`"))?;
            Ok(EntityUid::from_type_name_and_id(ty, cedar_policy::EntityId::new(text)))
        }
        None => Err(Error::invalid_request(format!("unknown action `{}`", user_text(text)))),
    }
}

/// Per-request entities, checked: no agents, nothing that redefines a static entity, and
/// (unless trusted) no entity that joins the static hierarchy or could act as a principal.
fn request_entities(
    snap: &Snapshot,
    request: &Request,
    info: Option<&ActionInfo>,
    trusted: bool,
) -> Result<Vec<(Entity, Vec<EntityUid>)>> {
    if request.entities().is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::with_capacity(request.entities().len());
    for json in request.entities() {
        let entity = Entity::from_json_value(json.clone(), snap.schema.as_ref())
            .map_err(|e| Error::entities(format!("request entity: {}", crate::error::error_chain(&e)), None))?;
        let uid = entity.uid();
        if uid.type_name() == &snap.agent_type {
            // static agents are static entities (refused below as redefinitions)
            return Err(Error::entities(
                format!("request entity `{uid}` is an agent: agents come from the registry only"),
                None,
            ));
        }
        if snap.entities.get(&uid).is_some() {
            return Err(Error::entities(format!("request entity `{uid}` redefines a static entity"), None));
        }
        let parents: Vec<EntityUid> = entity.as_ref().parents().map(|p| EntityUid::from(p.clone())).collect();
        if !trusted {
            if let Some(parent) =
                parents.iter().find(|p| p.type_name() == &snap.agent_type || snap.entities.get(p).is_some())
            {
                return Err(Error::entities(
                    format!(
                        "request entity `{uid}` names `{parent}` as a parent: request entities may not join static \
                         entities or agents unless the authorizer trusts request entities"
                    ),
                    None,
                ));
            }
            if info.and_then(|i| i.principals.as_ref()).is_some_and(|types| types.contains(uid.type_name())) {
                return Err(Error::entities(
                    format!(
                        "request entity `{uid}` is of a principal type of the action: principals come from the \
                         static entities or the registry unless the authorizer trusts request entities"
                    ),
                    None,
                ));
            }
        }
        let mut refs = parents;
        if let Some(attrs) = json.get("attrs") {
            crate::snapshot::collect_refs(attrs, &mut refs);
        }
        out.push((entity, refs));
    }
    Ok(out)
}

/// The small set of entities one decision can reach: the chain, action, resource, context
/// references, the slice's condition literals, and everything their attributes mention.
pub(crate) fn entity_slice(
    snap: &Snapshot,
    registry: &Registry,
    hops: &[(EntityUid, registry::Hop)],
    p: &Prepared,
    literals: &[EntityUid],
) -> Result<SliceEntities> {
    let mut seen: HashSet<EntityUid> = HashSet::new();
    let mut queue: Vec<EntityUid> = Vec::with_capacity(8 + literals.len());
    let mut list: Vec<Entity> = Vec::new();
    let mut agents: Vec<Arc<registry::AgentRecord>> = Vec::new();
    for (uid, hop) in hops {
        if let registry::Hop::Agent(a) = hop {
            if seen.insert(uid.clone()) {
                queue.extend(a.refs.iter().cloned());
                agents.push(Arc::clone(a));
            }
        } else {
            queue.push(uid.clone());
        }
    }
    for (entity, refs) in &p.entities {
        if seen.insert(entity.uid()) {
            list.push(entity.clone());
            queue.extend(refs.iter().cloned());
        }
    }
    queue.push(p.action.clone());
    queue.push(p.resource.clone());
    queue.extend(p.context_refs.iter().cloned());
    queue.extend(literals.iter().cloned());
    while let Some(uid) = queue.pop() {
        if seen.contains(&uid) {
            continue;
        }
        if let Some(e) = snap.entities.get(&uid) {
            if let Some(refs) = snap.refs.get(&uid) {
                queue.extend(refs.iter().cloned());
            }
            list.push(e.clone());
        } else if uid.type_name() == &snap.agent_type {
            if let Some(a) = registry.get(&uid) {
                queue.extend(a.refs.iter().cloned());
                queue.push(a.parent.clone());
                agents.push(a);
            }
        }
        seen.insert(uid);
    }
    if p.entities.is_empty() {
        return closed_store(snap, list, &agents);
    }
    // request entities name parents of their own: let Cedar compute the closure
    list.extend(agents.iter().map(|a| a.entity.clone()));
    Entities::from_entities(list, None).map(SliceEntities::Api).map_err(|e| slice_error(&e))
}

fn slice_error(e: &dyn std::fmt::Display) -> Error {
    Error::entities(format!("cannot assemble the request's entities: {}", cedar_text(e)), None)
}

/// A decision's entity store: Cedar's, or one built with its closure already known.
pub(crate) enum SliceEntities {
    Api(Entities),
    Core(cedar_policy_core::entities::Entities),
}

impl SliceEntities {
    pub(crate) fn get(&self) -> &Entities {
        use ref_cast::RefCast as _;
        match self {
            Self::Api(e) => e,
            Self::Core(e) => Entities::ref_cast(e),
        }
    }
}

/// The store for static entities (whose ancestor sets the snapshot already closed) and agents,
/// without Cedar's per-request transitive-closure pass: an agent's ancestors are exactly the
/// agents above it on its chain, its root, and the root's (already closed) ancestors, so they
/// are added directly. Debug builds check the result against Cedar's own computation.
fn closed_store(snap: &Snapshot, list: Vec<Entity>, agents: &[Arc<registry::AgentRecord>]) -> Result<SliceEntities> {
    use cedar_policy_core::ast::{Entity as CoreEntity, EntityUID};
    use cedar_policy_core::entities::{Entities as CoreEntities, NoEntitiesSchema, TCComputation};
    let mut all: Vec<CoreEntity> = list.iter().map(|e| e.as_ref().clone()).collect();
    for a in agents {
        let mut entity: CoreEntity = a.entity.as_ref().clone();
        let above = &a.chain[..a.chain.len().saturating_sub(1)];
        for uid in above {
            let uid: EntityUID = uid.clone().into();
            if !entity.is_descendant_of(&uid) {
                entity.add_indirect_ancestor(uid);
            }
        }
        if let Some(root) = above.first() {
            for ancestor in snap.entities.ancestors(root).into_iter().flatten() {
                entity.add_indirect_ancestor(ancestor.clone().into());
            }
        }
        all.push(entity);
    }
    let store = CoreEntities::from_entities(
        all,
        None::<&NoEntitiesSchema>,
        TCComputation::AssumeAlreadyComputed,
        cedar_policy_core::extensions::Extensions::all_available(),
    )
    .map_err(|e| slice_error(&e))?;
    #[cfg(debug_assertions)]
    {
        let mut plain = list;
        plain.extend(agents.iter().map(|a| a.entity.clone()));
        if let Ok(cedar) = Entities::from_entities(plain, None) {
            debug_assert!(cedar.as_ref().deep_eq(&store), "precomputed closure differs from Cedar's");
        }
    }
    Ok(SliceEntities::Core(store))
}

/// Cedar's answer for one hop, with ambit's error mode applied.
fn evaluate_hop(answer: crate::engine::Answer, mode: ErrorMode) -> (Hop, Option<DenyCause>) {
    let crate::engine::Answer { allowed: cedar_allows, mut reasons, errors, erring_forbids } = answer;
    let errors: Vec<PolicyError> =
        errors.into_iter().map(|(policy_id, message)| PolicyError { policy_id, message }).collect();
    let (allowed, cause) = if mode == ErrorMode::FailClosed && !erring_forbids.is_empty() {
        reasons = erring_forbids;
        (false, Some(DenyCause::EvaluationError))
    } else if cedar_allows {
        (true, None)
    } else if reasons.is_empty() {
        (false, Some(DenyCause::NoPermit))
    } else {
        (false, Some(DenyCause::Forbidden))
    };
    (Hop { principal: String::new(), allowed, evaluated: true, reasons, errors }, cause)
}

/// A decision under construction.
struct Outcome {
    decision: Decision,
}

impl Outcome {
    fn new(snap: &Snapshot, p: &Prepared, chain: Vec<String>, now: u64) -> Self {
        let hops = chain
            .iter()
            .map(|u| Hop {
                principal: u.clone(),
                allowed: false,
                evaluated: false,
                reasons: Vec::new(),
                errors: Vec::new(),
            })
            .collect();
        Self {
            decision: Decision {
                allowed: false,
                decision_id: decision::new_decision_id(),
                deny_cause: None,
                deny_hop: None,
                reasons: Vec::new(),
                chain,
                hops,
                errors: Vec::new(),
                action: p.action_text.clone(),
                resource: p.resource_text.clone(),
                policy_version: snap.version.clone(),
                generation: snap.generation,
                timestamp: now,
            },
        }
    }

    fn record_hop(&mut self, i: usize, mut hop: Hop) {
        if let Some(slot) = self.decision.hops.get_mut(i) {
            hop.principal = std::mem::take(&mut slot.principal);
            self.decision.errors.extend(hop.errors.iter().cloned());
            *slot = hop;
        }
    }

    fn deny(mut self, cause: DenyCause, hop: Option<usize>) -> Decision {
        self.decision.allowed = false;
        self.decision.deny_cause = Some(cause);
        self.decision.deny_hop = hop;
        if matches!(cause, DenyCause::Forbidden | DenyCause::EvaluationError) {
            if let Some(h) = hop.and_then(|i| self.decision.hops.get(i)) {
                self.decision.reasons = h.reasons.clone();
            }
        }
        self.decision
    }

    fn allow(mut self) -> Decision {
        let mut reasons: Vec<String> = Vec::new();
        for h in &self.decision.hops {
            for r in &h.reasons {
                if !reasons.contains(r) {
                    reasons.push(r.clone());
                }
            }
        }
        self.decision.allowed = true;
        self.decision.reasons = reasons;
        self.decision
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_context, plain_context};
    use crate::snapshot::Snapshot;
    use cedar_policy::{Context, EntityUid};
    use proptest::prelude::*;
    use std::sync::OnceLock;

    const SCHEMA: &str = r#"
        entity User; entity Color enum ["red", "blue"];
        type Limits = { cap: Long, note?: String };
        action pay appliesTo { principal: User, resource: User, context: { amount: Long, purpose?: String, urgent: Bool } };
        action tag appliesTo { principal: User, resource: User, context: { tags: Set<String>, limits?: Limits, color?: Color } };
        action route appliesTo { principal: User, resource: User, context: { ip: ipaddr, owner?: User } };
        action none appliesTo { principal: User, resource: User };
    "#;

    fn snapshot() -> &'static Snapshot {
        static SNAP: OnceLock<Snapshot> = OnceLock::new();
        SNAP.get_or_init(|| crate::snapshot::test_snapshot(SCHEMA, None, crate::snapshot::Validation::Strict))
    }

    fn json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            any::<i64>().prop_map(serde_json::Value::from),
            any::<bool>().prop_map(serde_json::Value::from),
            "\\PC{0,8}".prop_map(serde_json::Value::from),
            Just(serde_json::Value::Null),
            any::<f64>().prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::btree_map("[a-z_]{1,6}|type|__entity|__extn|id", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Contexts near each action's declared type: every attribute from a small pool of
    /// right and wrong values (or absent), so valid and invalid shapes both come up often.
    fn context(action: &str) -> impl Strategy<Value = serde_json::Value> {
        use serde_json::json;
        let keys: &[&str] = match action {
            "pay" => &["amount", "purpose", "urgent", "other"],
            "tag" => &["tags", "limits", "color", "other"],
            "route" => &["ip", "owner", "other"],
            _ => &["other", "amount"],
        };
        let pools: Vec<(&str, Vec<serde_json::Value>)> = vec![
            ("amount", vec![json!(1), json!(-2), json!("1"), json!(true)]),
            ("purpose", vec![json!("x"), json!(3)]),
            ("urgent", vec![json!(true), json!(false), json!("yes")]),
            ("tags", vec![json!([]), json!(["a"]), json!(["a", 1]), json!("a")]),
            ("limits", vec![json!({"cap": 1}), json!({"cap": 1, "note": "n"}), json!({"cap": "1"}), json!({"x": 1})]),
            (
                "color",
                vec![
                    json!({"__entity": {"type": "Color", "id": "red"}}),
                    json!({"__entity": {"type": "Color", "id": "green"}}),
                    json!("red"),
                ],
            ),
            ("ip", vec![json!("10.0.0.1"), json!({"__extn": {"fn": "ip", "arg": "10.0.0.1"}}), json!(5)]),
            ("owner", vec![json!({"__entity": {"type": "User", "id": "u"}}), json!("User::\"u\"")]),
            ("other", vec![json!(1)]),
        ];
        let pools: Vec<_> = pools.into_iter().filter(|(k, _)| keys.contains(k)).collect();
        prop::collection::vec(0usize..8, pools.len()).prop_map(move |picks| {
            let mut m = serde_json::Map::new();
            for ((key, pool), pick) in pools.iter().zip(picks) {
                // more often absent than not for the extra key; otherwise about half present
                let present = if *key == "other" { pick == 0 } else { pick < pool.len() };
                if present {
                    m.insert((*key).to_owned(), pool[pick % pool.len()].clone());
                }
            }
            serde_json::Value::Object(m)
        })
    }

    proptest! {
        /// With the shape memo warm or cold, a context is accepted exactly when Cedar's typed
        /// parse and validation accept it, and it is the same value.
        #[test]
        fn remembered_context_shapes_decide_as_cedar_validates(
            (action, ctx) in prop::sample::select(vec!["pay", "tag", "route", "none"]).prop_flat_map(|a| (Just(a), context(a))),
        ) {
            let snap = snapshot();
            let schema = snap.schema.as_ref().unwrap();
            let uid: EntityUid = format!("Action::\"{action}\"").parse().unwrap();
            let text = uid.to_string();
            let reference = Context::from_json_value(ctx.clone(), Some((schema, &uid)))
                .ok()
                .filter(|c| c.validate(schema, &uid).is_ok());
            for _ in 0..2 {
                let ours = parse_context(snap, &uid, &text, &ctx, Some((schema, &uid))).ok();
                prop_assert_eq!(&ours, &reference, "{}: {}", action, ctx);
            }
        }

        /// The direct build is exactly Cedar's untyped JSON parse, or declines.
        #[test]
        fn plain_context_is_cedars_untyped_parse(fields in prop::collection::btree_map("[a-z]{1,4}", json(), 0..4)) {
            let v = serde_json::Value::Object(fields.into_iter().collect());
            if let Some(ours) = plain_context(&v) {
                let cedar = Context::from_json_value(v.clone(), None);
                prop_assert_eq!(Some(ours), cedar.ok(), "{}", v);
            }
        }
    }
}
