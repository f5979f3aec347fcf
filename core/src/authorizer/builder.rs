//! Building an authorizer: its sources, settings, trust, audit trail and fleet.

use super::Authorizer;

use crate::audit::Audit;
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ErrorMode, Validation, DEFAULT_MAX_DELEGATION_DEPTH, DEFAULT_PURGE_GRACE_SECONDS};
use crate::error::{user_text, Error, Result};
use crate::limit::Limits;
use crate::registry::Registry;
use crate::snapshot::{BuildOptions, Snapshot};
use crate::source::{Sources, TextSource};
use arc_swap::ArcSwap;
use cedar_policy::EntityTypeName;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

/// The inline issuers plus those whose JWKS files read now.
pub(super) fn issuers_with_files(
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
                previous: None,
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
