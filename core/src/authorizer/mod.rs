//! The authorizer: one snapshot of policies, one registry of agents, and the decision path.

use crate::agent::{Agent, AgentSpec, DelegationNode};
use crate::audit::{Audit, AuditEvent};
use crate::clock::Clock;
use crate::config::Config;
use crate::decide::{self, Inputs, Trace};
use crate::decision::{Decision, DenyCause};
use crate::error::{Error, Result};
use crate::limit::Limits;
use crate::prepare::{self, Prepared};
use crate::registry::{self, MintOptions, Registry};
use crate::request::Request;
use crate::snapshot::Snapshot;
use crate::source::Sources;
use arc_swap::ArcSwap;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

mod builder;
mod credentials;
mod explain;
mod reload;

pub use builder::AuthorizerBuilder;
pub use explain::{Explanation, HopExplanation};

/// What a successful reload produced.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReloadOutcome {
    /// The new policy version.
    pub version: String,
    /// The new generation.
    pub generation: u64,
}

/// Requests per thread below which a batch is not split: starting a thread costs about what
/// deciding a few dozen requests does.
const BATCH_PER_THREAD: usize = 64;

/// Threads a batch is split across at most: one call should not take over a large machine.
const BATCH_THREADS: usize = 4;

/// The cores this process may use, asked once: the standard library reads cgroup files for it
/// on Linux, which costs more than a small batch.
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// Decides requests against one snapshot of Cedar policies and a registry of live agents.
///
/// `Authorizer` is `Send + Sync`: share it in an `Arc` across threads. Decisions never block on
/// reloads, mints or revocations.
#[derive(Debug)]
pub struct Authorizer {
    snapshot: Arc<ArcSwap<Snapshot>>,
    registry: Arc<Registry>,
    /// Also serialises reloads.
    sources: Mutex<Sources>,
    config: Config,
    clock: Arc<dyn Clock>,
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

    /// Refuses, as a decision is refused, an operation that grants authority while the audit
    /// trail is closed (after `close`, or in a fork's child): nothing is granted unrecorded.
    /// Revocations and unlinks, which take authority away, go on.
    fn audit_open(&self) -> Result<()> {
        match &self.audit {
            Some(audit) if audit.is_closed() => Err(audit.closed_error()),
            _ => Ok(()),
        }
    }

    /// One decision, recorded: a decision record, or a `request_failed` record for a request
    /// that could not be decided. An authorizer whose trail was closed decides nothing.
    fn decide_audited(&self, snap: &Snapshot, request: &Request) -> Result<Decision> {
        let Some(audit) = &self.audit else { return self.decide(snap, request, None) };
        if audit.is_closed() {
            return Err(audit.closed_error());
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

    /// The decision path, unaudited: prepare, then the pure decision over this snapshot,
    /// registry and settings at the clock's time.
    fn decide(&self, snap: &Snapshot, request: &Request, trace: Option<&mut Trace>) -> Result<Decision> {
        let p = prepare::prepare(snap, &self.config, request)?;
        decide::decide(self.inputs(snap, &p), &p, self.clock.now(), trace)
    }

    /// What the decision reads besides the request.
    fn inputs<'a>(&'a self, snap: &'a Snapshot, p: &Prepared<'_>) -> Inputs<'a> {
        Inputs { snapshot: snap, registry: &self.registry, config: &self.config, stale: self.fleet_stale_for(snap, p) }
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
        let p = prepare::prepare_with(&snap, &self.config, request, false)?;
        Ok(decide::precheck(self.inputs(&snap, &p), &p, self.clock.now()))
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
        let uid = prepare::resolve_action(&snap, action)?;
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
    /// request does not fail the others. Answers come in the requests' order.
    ///
    /// A batch of 128 requests or more is split across up to 4 threads (64 requests each at
    /// least, no more threads than the machine has cores), the calling thread deciding one
    /// part: each decision is the one [`Authorizer::authorize`] gives, and is audited as it is
    /// made, so audit records of a large batch may interleave out of the batch's order.
    pub fn authorize_batch(&self, requests: &[Request]) -> Vec<Result<Decision>> {
        let snap = self.snapshot.load_full();
        let decide_all = |part: &[Request]| part.iter().map(|r| self.decide_audited(&snap, r)).collect::<Vec<_>>();
        let parts = (requests.len() / BATCH_PER_THREAD).min(BATCH_THREADS);
        if parts <= 1 {
            return decide_all(requests);
        }
        let threads = parts.min(cores());
        if threads <= 1 {
            return decide_all(requests);
        }
        let size = requests.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let mut parts = requests.chunks(size);
            let mine = parts.next().unwrap_or_default();
            let others: Vec<_> = parts
                .map(|part| (part, std::thread::Builder::new().spawn_scoped(scope, || decide_all(part))))
                .collect();
            let mut out = decide_all(mine);
            for (part, thread) in others {
                match thread {
                    Ok(handle) => match handle.join() {
                        Ok(decided) => out.extend(decided),
                        // a bug, never input: the part fails closed
                        Err(_) => out.extend(part.iter().map(|_| Err(Error::internal("a batch thread failed")))),
                    },
                    // no thread to be had: this part is decided here
                    Err(_) => out.extend(decide_all(part)),
                }
            }
            out
        })
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
    /// the schema; `AMBIT_INVALID_REQUEST` for a malformed uid; `AMBIT_AUDIT` when the audit
    /// trail is closed (nothing is granted unrecorded).
    pub fn mint_agent(&self, spec: &AgentSpec) -> Result<Agent> {
        self.audit_open()?;
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
                let uid = crate::uid::parse_uid(planned.uid(), "agent")?;
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
        let uid = crate::uid::parse_uid(uid, "revoked")?;
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

    /// Lifts the revocation of a person or service; returns whether it was revoked.
    ///
    /// # Errors
    /// `AMBIT_INVALID_DELEGATION` for an agent (agent revocation is final),
    /// `AMBIT_INVALID_REQUEST` for a malformed uid, `AMBIT_AUDIT` when the audit trail is closed.
    pub fn reinstate(&self, uid: &str) -> Result<bool> {
        self.audit_open()?;
        let uid = crate::uid::parse_uid(uid, "reinstated")?;
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
        let root = crate::uid::parse_uid(root, "root")?;
        self.registry.tree(&root)
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
}
