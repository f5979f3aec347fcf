//! The registry of live agents: just-in-time minting with attenuation, cascading revocation,
//! expiry and purging.
//!
//! Reads (every decision) go through a lock-free map (`papaya`); only writers (mint, revoke,
//! purge) take the small mutex that guards the parent -> children index.

use crate::decision::DenyCause;
use crate::error::{Error, Result};
use crate::snapshot::Snapshot;
use cedar_policy::{Entity, EntityUid};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Attribute names ambit sets on every agent; application attributes may not reuse them.
pub const RESERVED_AGENT_ATTRIBUTES: &[&str] = &["owner", "task", "scopes", "depth", "created_at", "expires_at"];

/// What to mint: the delegator, the task, and the (narrower) authority the agent gets.
///
/// Its JSON form is the mint wire format (`parent`, `task`, `scopes`, `ttl_seconds`,
/// `resources`, `attributes`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSpec {
    parent: String,
    #[serde(default)]
    task: String,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(alias = "ttl")]
    ttl_seconds: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    resources: Vec<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    attributes: Map<String, Value>,
}

impl AgentSpec {
    pub(crate) fn check_limits(&self, limits: &crate::limit::Limits) -> Result<()> {
        limits.check_uid("parent", &self.parent)?;
        for r in &self.resources {
            limits.check_uid("resource", r)?;
        }
        let mut budget = limits.max_request_bytes;
        limits.check_json("attributes", &Value::Object(self.attributes.clone()), &mut budget)?;
        for s in self.scopes.iter().chain(std::iter::once(&self.task)) {
            budget = budget
                .checked_sub(s.len())
                .ok_or_else(|| Error::limit("agent spec is larger than the request limit"))?;
        }
        Ok(())
    }

    /// An agent of `parent` for `task`, with no scopes and a lifetime of `ttl_seconds`.
    pub fn new(parent: impl Into<String>, task: impl Into<String>, ttl_seconds: u64) -> Self {
        Self {
            parent: parent.into(),
            task: task.into(),
            scopes: Vec::new(),
            ttl_seconds,
            resources: Vec::new(),
            attributes: Map::new(),
        }
    }

    /// The action names (or action group names) the agent may use; a subset of its parent's.
    #[must_use]
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Confines the agent to these resources (each, and everything in it).
    #[must_use]
    pub fn resources<I, S>(mut self, resources: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.resources = resources.into_iter().map(Into::into).collect();
        self
    }

    /// The same spec under another parent.
    #[must_use]
    pub fn with_parent(mut self, parent: impl Into<String>) -> Self {
        self.parent = parent.into();
        self
    }

    /// The parent this spec mints under.
    pub fn parent(&self) -> &str {
        &self.parent
    }

    /// Application attributes, in Cedar's entity-attribute JSON format.
    #[must_use]
    pub fn attributes(mut self, attributes: Map<String, Value>) -> Self {
        self.attributes = attributes;
        self
    }
}

/// A minted agent, as the registry sees it. Its JSON form is the agent wire format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    uid: String,
    parent: String,
    owner: String,
    chain: Vec<String>,
    task: String,
    scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    resources: Vec<String>,
    depth: u32,
    created_at: u64,
    expires_at: u64,
    revoked: bool,
}

impl Agent {
    /// The agent's entity uid, e.g. `Helpdesk::Agent::"0193..."`.
    pub fn uid(&self) -> &str {
        &self.uid
    }
    /// The delegator that minted it.
    pub fn parent(&self) -> &str {
        &self.parent
    }
    /// The human or service at the root of its chain.
    pub fn owner(&self) -> &str {
        &self.owner
    }
    /// The chain, root first, ending with this agent.
    pub fn chain(&self) -> &[String] {
        &self.chain
    }
    /// The task it was minted for.
    pub fn task(&self) -> &str {
        &self.task
    }
    /// Its scopes, sorted.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }
    /// Its confinement; empty when unconfined.
    pub fn resources(&self) -> &[String] {
        &self.resources
    }
    /// 1 for an agent minted by a human or service, parent depth + 1 below that.
    pub fn depth(&self) -> u32 {
        self.depth
    }
    /// Seconds since the epoch when minted.
    pub fn created_at(&self) -> u64 {
        self.created_at
    }
    /// Seconds since the epoch when it stops being live.
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }
    /// Whether it (itself) was revoked.
    pub fn revoked(&self) -> bool {
        self.revoked
    }
}

/// A live node of the delegation tree, as returned by `delegation_tree`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelegationNode {
    uid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    agent: Option<Agent>,
    revoked: bool,
    children: Vec<DelegationNode>,
}

impl DelegationNode {
    /// The identity at this node.
    pub fn uid(&self) -> &str {
        &self.uid
    }
    /// The agent's details; `None` for a static principal at the root.
    pub fn agent(&self) -> Option<&Agent> {
        self.agent.as_ref()
    }
    /// Whether this identity is revoked.
    pub fn revoked(&self) -> bool {
        self.revoked
    }
    /// Agents minted by this identity.
    pub fn children(&self) -> &[DelegationNode] {
        &self.children
    }
}

#[derive(Debug)]
pub(crate) struct AgentRecord {
    pub(crate) uid: EntityUid,
    pub(crate) parent: EntityUid,
    /// Root first, ending with this agent.
    pub(crate) chain: Vec<EntityUid>,
    /// The chain's uids as text (what decisions report), formatted once at mint.
    pub(crate) chain_text: Vec<String>,
    pub(crate) task: String,
    /// The canonical uid texts of the actions and action groups its scopes name.
    pub(crate) scopes: HashSet<String>,
    /// The scopes as given at mint, sorted (what `Agent::scopes` and the entity attribute show).
    pub(crate) scopes_given: Vec<String>,
    /// The application attributes given at mint (what a credential carries).
    pub(crate) attributes: Map<String, Value>,
    pub(crate) resources: Option<Vec<EntityUid>>,
    pub(crate) depth: u32,
    pub(crate) created_at: u64,
    pub(crate) expires_at: u64,
    pub(crate) revoked: AtomicBool,
    revoked_at: AtomicU64,
    /// The Cedar entity policies see (attributes; parent = delegator).
    pub(crate) entity: Entity,
    /// Entity uids its attributes mention.
    pub(crate) refs: Vec<EntityUid>,
}

impl AgentRecord {
    /// This agent, when it is the one described (entered again from a credential); an error
    /// when a credential describes another agent under its uid.
    fn same_as(
        &self,
        parent: &EntityUid,
        scopes: &HashSet<String>,
        resources: Option<&Vec<EntityUid>>,
        created_at: u64,
        expires_at: u64,
    ) -> Result<Agent> {
        let same = &self.parent == parent
            && &self.scopes == scopes
            && self.resources.as_ref() == resources
            && self.expires_at == expires_at
            && self.created_at == created_at;
        if !same {
            return Err(Error::invalid_delegation(format!(
                "agent `{}` is already known here with another parent, scopes, confinement or lifetime",
                self.uid
            )));
        }
        Ok(self.to_agent())
    }

    pub(crate) fn is_revoked(&self) -> bool {
        self.revoked.load(Ordering::SeqCst)
    }

    pub(crate) fn to_agent(&self) -> Agent {
        let scopes = self.scopes_given.clone();
        let text = |i: usize| self.chain_text.get(i).cloned().unwrap_or_default();
        let n = self.chain_text.len();
        Agent {
            uid: text(n.saturating_sub(1)),
            parent: text(n.saturating_sub(2)),
            owner: text(0),
            chain: self.chain_text.clone(),
            task: self.task.clone(),
            scopes,
            resources: self.resources.iter().flatten().map(ToString::to_string).collect(),
            depth: self.depth,
            created_at: self.created_at,
            expires_at: self.expires_at,
            revoked: self.is_revoked(),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Registry {
    agents: papaya::HashMap<EntityUid, Arc<AgentRecord>>,
    /// Revoked static principals (humans, services), until reinstated.
    revoked: papaya::HashMap<EntityUid, ()>,
    /// parent -> agents it minted; writers only.
    children: Mutex<HashMap<EntityUid, Vec<EntityUid>>>,
    last_purge: AtomicU64,
}

/// A live identity on a chain, as a decision sees it.
pub(crate) enum Hop {
    Static,
    Agent(Arc<AgentRecord>),
}

pub(crate) struct MintOptions {
    pub(crate) now: u64,
    pub(crate) max_depth: u32,
    /// Entering agents from a fleet checkpoint: the chain's liveness is the checkpoint's
    /// (revocations are restored after the agents), not checked again.
    pub(crate) restoring: bool,
}

/// An agent minted elsewhere (carried by a signed credential), entered with its own identity
/// and times: the same attenuation rules as a local mint, but a lifetime beyond its parent's
/// is an error rather than clamped (the signer claimed it).
pub(crate) struct Imported<'a> {
    /// The agent's entity id (its uid is of the agent type).
    pub(crate) id: &'a str,
    pub(crate) created_at: u64,
    pub(crate) expires_at: u64,
}

impl Registry {
    pub(crate) fn get(&self, uid: &EntityUid) -> Option<Arc<AgentRecord>> {
        self.agents.pin().get(uid).cloned()
    }

    pub(crate) fn is_static_revoked(&self, uid: &EntityUid) -> bool {
        self.revoked.pin().contains_key(uid)
    }

    pub(crate) fn len(&self) -> usize {
        self.agents.len()
    }

    /// Liveness of a chain: the first problem, root first, as (cause, hop index). An identity
    /// is revoked when it, or any entity it descends from in the static entity hierarchy (a
    /// group, a team, a tenant), was revoked; an agent's own chain is the rest of the path.
    pub(crate) fn check_live(
        &self,
        hops: &[(EntityUid, Hop)],
        entities: &cedar_policy::Entities,
        now: u64,
    ) -> Option<(DenyCause, usize)> {
        let any_static = !self.revoked.is_empty();
        for (i, (uid, hop)) in hops.iter().enumerate() {
            let revoked = match hop {
                Hop::Static => any_static && self.static_cut_off(uid, entities),
                Hop::Agent(a) => a.is_revoked(),
            };
            if revoked {
                return Some((DenyCause::Revoked, i));
            }
        }
        for (i, (_, hop)) in hops.iter().enumerate() {
            if let Hop::Agent(a) = hop {
                if a.expires_at <= now {
                    return Some((DenyCause::Expired, i));
                }
            }
        }
        None
    }

    /// Whether a static identity, or an entity it descends from, is revoked.
    pub(crate) fn static_cut_off(&self, uid: &EntityUid, entities: &cedar_policy::Entities) -> bool {
        let revoked = self.revoked.pin();
        if revoked.is_empty() {
            return false;
        }
        revoked.contains_key(uid) || entities.ancestors(uid).is_some_and(|mut a| a.any(|p| revoked.contains_key(p)))
    }

    pub(crate) fn mint(&self, spec: &AgentSpec, snap: &Snapshot, opts: &MintOptions) -> Result<Agent> {
        self.mint_as(spec, snap, opts, None, true)
    }

    /// The agent [`Self::mint`] would mint, checked the same way, without entering it: what a
    /// fleet writer sends to the feed (every process then enters it, this one included).
    pub(crate) fn plan(&self, spec: &AgentSpec, snap: &Snapshot, opts: &MintOptions) -> Result<Agent> {
        self.mint_as(spec, snap, opts, None, false)
    }

    /// Enters an agent minted elsewhere under `spec.parent`, checked as a mint is. Entering
    /// the same agent again is a no-op; one that differs from the agent of that uid already
    /// here (another parent, other scopes or confinement, another lifetime) is an error.
    pub(crate) fn import(
        &self,
        spec: &AgentSpec,
        snap: &Snapshot,
        opts: &MintOptions,
        imported: &Imported<'_>,
    ) -> Result<Agent> {
        self.mint_as(spec, snap, opts, Some(imported), true)
    }

    fn mint_as(
        &self,
        spec: &AgentSpec,
        snap: &Snapshot,
        opts: &MintOptions,
        imported: Option<&Imported<'_>>,
        commit: bool,
    ) -> Result<Agent> {
        let now = opts.now;
        let (parent, parent_text) = snap.parse_uid_text(&spec.parent, "parent")?;
        if spec.ttl_seconds == 0 {
            return Err(Error::invalid_delegation("`ttl_seconds` must be at least 1"));
        }
        let parent_record = if snap.is_minted(&parent) {
            let record = self
                .get(&parent)
                .ok_or_else(|| Error::invalid_delegation(format!("unknown parent agent `{parent}`")))?;
            Some(record)
        } else {
            if snap.entities.get(&parent).is_none() {
                return Err(Error::invalid_delegation(format!(
                    "unknown parent `{parent}`: it is neither a live agent nor a known entity"
                )));
            }
            None
        };
        // the parent's whole chain must be live
        let parent_chain: Vec<EntityUid> = match &parent_record {
            Some(r) => r.chain.clone(),
            None => vec![parent.clone()],
        };
        let hops = self.resolve(&parent_chain, snap)?;
        if let Some((cause, i)) = self.check_live(&hops, &snap.entities, now).filter(|_| !opts.restoring) {
            let who = &parent_chain[i];
            return Err(Error::invalid_delegation(format!(
                "parent `{parent}` is not live: `{who}` is {}",
                match cause {
                    DenyCause::Expired => "expired",
                    _ => "revoked",
                }
            )));
        }
        let depth = parent_record.as_ref().map_or(1, |r| r.depth + 1);
        if depth > opts.max_depth {
            return Err(Error::invalid_delegation(format!(
                "delegation depth {depth} exceeds the maximum of {}",
                opts.max_depth
            )));
        }
        let (scopes, scopes_given) = check_scopes(spec, snap, parent_record.as_deref())?;
        let resources = check_resources(spec, snap, parent_record.as_deref())?;
        let (created_at, expires_at, id) = lifetime(spec, parent_record.as_deref(), imported, now)?;
        let uid = EntityUid::from_type_name_and_id(snap.agent_type.clone(), cedar_policy::EntityId::new(&id));
        if imported.is_some() {
            if let Some(existing) = self.get(&uid) {
                return existing.same_as(&parent, &scopes, resources.as_ref(), created_at, expires_at);
            }
        }
        let mut chain_text = match &parent_record {
            Some(r) => r.chain_text.clone(),
            None => vec![parent_text],
        };
        chain_text.push(uid.to_string());
        let mut chain = parent_chain;
        chain.push(uid.clone());
        let owner = chain_text.first().map_or("", String::as_str);
        let (entity, refs) =
            build_entity(spec, snap, &uid, &parent, owner, &scopes_given, depth, created_at, expires_at)?;
        let record = Arc::new(AgentRecord {
            uid: uid.clone(),
            parent: parent.clone(),
            chain,
            chain_text,
            task: spec.task.clone(),
            scopes,
            scopes_given: scopes_given.into_iter().collect(),
            attributes: spec.attributes.clone(),
            resources,
            depth,
            created_at,
            expires_at,
            revoked: AtomicBool::new(false),
            revoked_at: AtomicU64::new(0),
            entity,
            refs,
        });
        let agent = record.to_agent();
        if !commit {
            return Ok(agent);
        }
        {
            let mut children = self.children.lock().map_err(|_| Error::internal("registry lock poisoned"))?;
            children.entry(parent).or_default().push(uid.clone());
            self.agents.pin().insert(uid, record);
        }
        Ok(agent)
    }

    /// Every hop of a chain, looked up: agents in the registry, anything else static.
    pub(crate) fn resolve(&self, chain: &[EntityUid], snap: &Snapshot) -> Result<Vec<(EntityUid, Hop)>> {
        chain
            .iter()
            .map(|uid| {
                if snap.is_minted(uid) {
                    self.get(uid)
                        .map(|r| (uid.clone(), Hop::Agent(r)))
                        .ok_or_else(|| Error::invalid_delegation(format!("unknown agent `{uid}` on the chain")))
                } else {
                    Ok((uid.clone(), Hop::Static))
                }
            })
            .collect()
    }

    /// Revokes `uid` and cuts off everything under it; returns how many identities were newly
    /// cut off (the identity itself, the static entities that descend from it, and the live
    /// agents minted under any of them, each counted once and only if it was live before).
    ///
    /// An agent's revocation is final and marks its whole subtree. A static identity (a
    /// person, a service, or a group, team or tenant they belong to) is revoked until
    /// reinstated; everything that descends from it in the entity hierarchy, and every agent
    /// whose chain starts there, is cut off by the decision's liveness check.
    pub(crate) fn revoke(&self, uid: &EntityUid, snap: &Snapshot, now: u64) -> Result<usize> {
        let children = self.children.lock().map_err(|_| Error::internal("registry lock poisoned"))?;
        let guard = self.agents.pin();
        if snap.is_minted(uid) {
            let Some(record) = guard.get(uid) else {
                return Ok(0);
            };
            let was_live = !record.is_revoked() && record.expires_at > now && !self.root_cut_off(record, snap);
            if record.revoked.swap(true, Ordering::SeqCst) {
                return Ok(0);
            }
            record.revoked_at.store(now, Ordering::SeqCst);
            let mut count = usize::from(was_live);
            let mut stack: Vec<EntityUid> = children.get(uid).cloned().unwrap_or_default();
            while let Some(child) = stack.pop() {
                if let Some(record) = guard.get(&child) {
                    let live = !record.is_revoked() && record.expires_at > now && !self.root_cut_off(record, snap);
                    if !record.revoked.swap(true, Ordering::SeqCst) {
                        record.revoked_at.store(now, Ordering::SeqCst);
                    }
                    count += usize::from(live);
                }
                if let Some(grand) = children.get(&child) {
                    stack.extend(grand.iter().cloned());
                }
            }
            return Ok(count);
        }
        // identities newly cut off: the uid and its static descendants that were live
        let mut cut: HashSet<EntityUid> = HashSet::new();
        if !self.static_cut_off(uid, &snap.entities) {
            cut.insert(uid.clone());
            for e in snap.entities.iter() {
                let e = e.uid();
                if snap.entities.is_ancestor_of(uid, &e) && !self.static_cut_off(&e, &snap.entities) {
                    cut.insert(e);
                }
            }
        }
        if self.revoked.pin().insert(uid.clone(), ()).is_some() {
            return Ok(0);
        }
        let agents = guard
            .iter()
            .filter(|(_, r)| {
                !r.is_revoked() && r.expires_at > now && r.chain.first().is_some_and(|root| cut.contains(root))
            })
            .count();
        Ok(cut.len() + agents)
    }

    /// Whether the static root of an agent's chain is cut off.
    fn root_cut_off(&self, record: &AgentRecord, snap: &Snapshot) -> bool {
        record.chain.first().is_some_and(|root| self.static_cut_off(root, &snap.entities))
    }

    /// Lifts the revocation of a static principal (a static agent included); minted agents
    /// cannot be reinstated.
    pub(crate) fn reinstate(&self, uid: &EntityUid, snap: &Snapshot) -> Result<bool> {
        if snap.is_minted(uid) {
            return Err(Error::invalid_delegation(format!(
                "`{uid}` is an agent: revoked agents cannot be reinstated, mint a new one"
            )));
        }
        Ok(self.revoked.pin().remove(uid).is_some())
    }

    /// Removes agents that expired or were revoked more than `grace` seconds ago.
    pub(crate) fn purge(&self, now: u64, grace: u64) -> usize {
        let Ok(mut children) = self.children.lock() else {
            return 0;
        };
        self.last_purge.store(now, Ordering::Relaxed);
        let guard = self.agents.pin();
        let dead: Vec<(EntityUid, EntityUid)> = guard
            .iter()
            .filter(|(_, r)| {
                let gone_at =
                    if r.is_revoked() { r.revoked_at.load(Ordering::SeqCst).min(r.expires_at) } else { r.expires_at };
                gone_at.saturating_add(grace) <= now
            })
            .map(|(k, r)| (k.clone(), r.parent.clone()))
            .collect();
        for (uid, parent) in &dead {
            guard.remove(uid);
            children.remove(uid);
            if let Some(siblings) = children.get_mut(parent) {
                siblings.retain(|c| c != uid);
                if siblings.is_empty() {
                    children.remove(parent);
                }
            }
        }
        dead.len()
    }

    /// Counts `now` as the last purge (a fleet member starts its schedule when it joins).
    pub(crate) fn mark_purged(&self, now: u64) {
        self.last_purge.store(now, Ordering::Relaxed);
    }

    /// Whether the last purge is at least `interval` seconds old.
    pub(crate) fn purge_due(&self, now: u64, interval: u64) -> bool {
        now.saturating_sub(self.last_purge.load(Ordering::Relaxed)) >= interval
    }

    /// Purges if the last purge is more than `interval` seconds old.
    pub(crate) fn maybe_purge(&self, now: u64, grace: u64, interval: u64) {
        let last = self.last_purge.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= interval {
            self.purge(now, grace);
        }
    }

    pub(crate) fn agents(&self) -> Vec<Agent> {
        let guard = self.agents.pin();
        let mut out: Vec<Agent> = guard.iter().map(|(_, r)| r.to_agent()).collect();
        out.sort_by(|a, b| (a.created_at, &a.uid).cmp(&(b.created_at, &b.uid)));
        out
    }

    pub(crate) fn tree(&self, root: &EntityUid) -> Result<DelegationNode> {
        let children = self.children.lock().map_err(|_| Error::internal("registry lock poisoned"))?;
        let guard = self.agents.pin();
        let node = |uid: &EntityUid| -> DelegationNode {
            let agent = guard.get(uid).map(|r| r.to_agent());
            let revoked = agent.as_ref().map_or_else(|| self.is_static_revoked(uid), |a| a.revoked);
            DelegationNode { uid: uid.to_string(), agent, revoked, children: Vec::new() }
        };
        Ok(build_tree(root, &children, &node, 0))
    }
}

/// An agent as the fleet carries it: its spec (parent, task, scopes, confinement,
/// attributes), entity id and lifetime. Every process enters it with [`Registry::import`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Minted {
    pub(crate) id: String,
    pub(crate) spec: AgentSpec,
    pub(crate) created_at: u64,
    pub(crate) expires_at: u64,
}

impl Minted {
    /// Enters the agent under its parent, checked as a mint is (at its own creation time, so
    /// every process that applies the same events in the same order decides the same).
    pub(crate) fn enter(&self, registry: &Registry, snap: &Snapshot, max_depth: u32, restoring: bool) -> Result<Agent> {
        registry.import(
            &self.spec,
            snap,
            &MintOptions { now: self.created_at, max_depth, restoring },
            &Imported { id: &self.id, created_at: self.created_at, expires_at: self.expires_at },
        )
    }
}

/// The registry's whole state, as a fleet checkpoint holds it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegistryState {
    /// Parents before children.
    pub(crate) agents: Vec<AgentState>,
    pub(crate) revoked_static: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AgentState {
    pub(crate) agent: Minted,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) revoked_at: Option<u64>,
}

impl Registry {
    /// Every agent and static revocation, parents first.
    pub(crate) fn export(&self) -> RegistryState {
        let guard = self.agents.pin();
        let mut records: Vec<&Arc<AgentRecord>> = guard.iter().map(|(_, r)| r).collect();
        records.sort_by(|a, b| {
            (a.depth, a.created_at, a.uid.to_string()).cmp(&(b.depth, b.created_at, b.uid.to_string()))
        });
        let agents = records
            .into_iter()
            .map(|r| {
                let n = r.chain_text.len();
                let parent = r.chain_text.get(n.saturating_sub(2)).cloned().unwrap_or_default();
                let resources: Vec<String> = r.resources.iter().flatten().map(ToString::to_string).collect();
                let spec = AgentSpec::new(parent, r.task.clone(), r.expires_at.saturating_sub(r.created_at).max(1))
                    .scopes(r.scopes_given.iter().cloned())
                    .resources(resources)
                    .attributes(r.attributes.clone());
                AgentState {
                    agent: Minted {
                        id: r.uid.id().unescaped().to_owned(),
                        spec,
                        created_at: r.created_at,
                        expires_at: r.expires_at,
                    },
                    revoked_at: r.is_revoked().then(|| r.revoked_at.load(Ordering::SeqCst)),
                }
            })
            .collect();
        let mut revoked_static: Vec<String> = self.revoked.pin().iter().map(|(k, ())| k.to_string()).collect();
        revoked_static.sort();
        RegistryState { agents, revoked_static }
    }

    /// Replaces the whole state with `state`; returns how many agents could not be entered
    /// (a checkpoint written under other policies). Revocations never lapse on the way: the
    /// checkpoint's static revocations are added first and the others lifted last, and an
    /// agent is unknown (denied) until it is entered with its revocation.
    pub(crate) fn restore(&self, state: &RegistryState, snap: &Snapshot, max_depth: u32) -> Result<usize> {
        let mut keep = HashSet::new();
        for uid in &state.revoked_static {
            let uid = parse_uid(uid, "revoked")?;
            self.revoked.pin().insert(uid.clone(), ());
            keep.insert(uid);
        }
        {
            let mut children = self.children.lock().map_err(|_| Error::internal("registry lock poisoned"))?;
            self.agents.pin().clear();
            children.clear();
        }
        let mut failed = 0;
        for a in &state.agents {
            // the fleet is marked stale while it restores: no decision about an agent is made
            // between an agent's entry and its revocation
            match a.agent.enter(self, snap, max_depth, true) {
                Ok(agent) => {
                    if let (Some(at), Ok(uid)) = (a.revoked_at, parse_uid(agent.uid(), "agent")) {
                        if let Some(r) = self.get(&uid) {
                            r.revoked.store(true, Ordering::SeqCst);
                            r.revoked_at.store(at, Ordering::SeqCst);
                        }
                    }
                }
                Err(_) => failed += 1,
            }
        }
        let revoked = self.revoked.pin();
        let lifted: Vec<EntityUid> = revoked.iter().map(|(k, ())| k.clone()).filter(|k| !keep.contains(k)).collect();
        for uid in lifted {
            revoked.remove(&uid);
        }
        Ok(failed)
    }
}

/// Delegation trees are bounded by `max_delegation_depth`; this bound only guards recursion.
const MAX_TREE_DEPTH: usize = 64;

fn build_tree(
    uid: &EntityUid,
    children: &HashMap<EntityUid, Vec<EntityUid>>,
    node: &dyn Fn(&EntityUid) -> DelegationNode,
    depth: usize,
) -> DelegationNode {
    let mut n = node(uid);
    if depth < MAX_TREE_DEPTH {
        for c in children.get(uid).into_iter().flatten() {
            n.children.push(build_tree(c, children, node, depth + 1));
        }
    }
    n
}

/// A new agent's creation time, expiry and entity id: now, clamped to its parent's expiry and
/// a fresh UUID for a local mint; as claimed for an imported one, which may not outlive its
/// parent.
fn lifetime(
    spec: &AgentSpec,
    parent_record: Option<&AgentRecord>,
    imported: Option<&Imported<'_>>,
    now: u64,
) -> Result<(u64, u64, String)> {
    Ok(match imported {
        None => {
            let mut expires_at = now.saturating_add(spec.ttl_seconds);
            if let Some(p) = parent_record {
                // clamped, never extended: a child lives no longer than its parent
                expires_at = expires_at.min(p.expires_at);
            }
            (now, expires_at, uuid::Uuid::new_v4().to_string())
        }
        Some(i) => {
            if let Some(p) = parent_record.filter(|p| i.expires_at > p.expires_at) {
                return Err(Error::invalid_delegation(format!(
                    "agent `{}` would outlive its parent `{}` (expires {} after {})",
                    crate::error::user_text(i.id),
                    p.uid,
                    i.expires_at,
                    p.expires_at
                )));
            }
            (i.created_at, i.expires_at, i.id.to_owned())
        }
    })
}

pub(crate) fn parse_uid(text: &str, what: &str) -> Result<EntityUid> {
    text.parse::<EntityUid>().map_err(|_| {
        Error::invalid_request(format!(
            "malformed {what} uid `{}`: expected `Type::\"id\"`",
            crate::error::user_text(text)
        ))
    })
}

/// Resolves each scope to the one action or action group it names, and checks it is within the
/// parent's: held by the parent, or an action in a group the parent holds. Returns the
/// canonical scopes and the given ones.
fn check_scopes(
    spec: &AgentSpec,
    snap: &Snapshot,
    parent: Option<&AgentRecord>,
) -> Result<(HashSet<String>, BTreeSet<String>)> {
    let mut canonical = HashSet::with_capacity(spec.scopes.len());
    let mut given = BTreeSet::new();
    for scope in &spec.scopes {
        let text = snap.resolve_scope(scope)?;
        if let Some(p) = parent {
            let covers = |n: &String| p.scopes.contains(n);
            let held = p.scopes.contains(&text)
                || snap.actions.values().find(|a| a.text == text).is_some_and(|a| a.scope_names.iter().any(covers));
            if !held {
                return Err(Error::invalid_delegation(format!(
                    "scope `{}` is not held by parent `{}`: a child's scopes must be within its parent's",
                    crate::error::user_text(scope),
                    p.uid
                )));
            }
        }
        canonical.insert(text);
        given.insert(scope.clone());
    }
    Ok((canonical, given))
}

fn check_resources(spec: &AgentSpec, snap: &Snapshot, parent: Option<&AgentRecord>) -> Result<Option<Vec<EntityUid>>> {
    let wanted: Vec<EntityUid> = spec.resources.iter().map(|r| parse_uid(r, "resource")).collect::<Result<_>>()?;
    let inherited = parent.and_then(|p| p.resources.clone());
    if wanted.is_empty() {
        return Ok(inherited);
    }
    if let Some(allowed) = &inherited {
        for r in &wanted {
            let inside = allowed.iter().any(|a| a == r || snap.entities.is_ancestor_of(a, r));
            if !inside {
                return Err(Error::invalid_delegation(format!(
                    "resource `{r}` is outside the parent's confinement: a child's resources must be within its parent's"
                )));
            }
        }
    }
    Ok(Some(wanted))
}

#[allow(clippy::too_many_arguments)]
fn build_entity(
    spec: &AgentSpec,
    snap: &Snapshot,
    uid: &EntityUid,
    parent: &EntityUid,
    owner: &str,
    scopes: &BTreeSet<String>,
    depth: u32,
    now: u64,
    expires_at: u64,
) -> Result<(Entity, Vec<EntityUid>)> {
    if let Some(k) = spec.attributes.keys().find(|k| RESERVED_AGENT_ATTRIBUTES.contains(&k.as_str())) {
        return Err(Error::invalid_delegation(format!("attribute `{k}` is set by ambit and cannot be given")));
    }
    let mut refs = Vec::new();
    crate::snapshot::collect_refs(&Value::Object(spec.attributes.clone()), &mut refs);
    let reserved = Reserved { owner, task: &spec.task, scopes, depth, now, expires_at };
    let entity = match plain_entity(spec, snap, uid, parent, &reserved) {
        Some(entity) => entity,
        None => json_entity(spec, snap, uid, parent, &reserved)?,
    };
    Ok((entity, refs))
}

/// The agent entity through Cedar's typed JSON parse and schema check: the general path.
fn json_entity(
    spec: &AgentSpec,
    snap: &Snapshot,
    uid: &EntityUid,
    parent: &EntityUid,
    r: &Reserved<'_>,
) -> Result<Entity> {
    let mut attrs = spec.attributes.clone();
    attrs.insert("owner".into(), json!(r.owner));
    attrs.insert("task".into(), json!(r.task));
    attrs.insert("scopes".into(), json!(r.scopes));
    attrs.insert("depth".into(), json!(r.depth));
    attrs.insert("created_at".into(), json!(r.now));
    attrs.insert("expires_at".into(), json!(r.expires_at));
    let value = json!({
        "uid": { "type": uid.type_name().to_string(), "id": uid.id().unescaped() },
        "attrs": attrs,
        "parents": [ { "type": parent.type_name().to_string(), "id": parent.id().unescaped() } ],
    });
    Entity::from_json_value(value, snap.schema.as_ref()).map_err(|e| {
        Error::invalid_delegation(format!(
            "agent does not fit the schema's `{}` type: {}",
            snap.agent_type,
            crate::error::error_chain(&e)
        ))
    })
}

/// Agent type signatures remembered per snapshot as schema-conformant.
const MAX_REMEMBERED_SHAPES: usize = 1024;

/// The attributes ambit sets on every agent.
struct Reserved<'a> {
    owner: &'a str,
    task: &'a str,
    scopes: &'a BTreeSet<String>,
    depth: u32,
    now: u64,
    expires_at: u64,
}

/// The agent entity built directly, without a JSON round trip, when its application
/// attributes are plain (strings, booleans, integers, sets, records, `__entity` refs).
///
/// Cedar's schema check of an entity depends only on the types of its attributes and parents,
/// so the first entity of each type signature is checked by Cedar and the signature
/// remembered; later ones with the same signature are known to conform. An entity that does
/// not pass returns `None`, and the typed JSON parse decides (and words the error). When the
/// untyped values conform, they are what the typed parse gives: typing only turns strings and
/// `{type, id}` objects into extension values and entity refs, which the untyped values
/// would not conform with.
fn plain_entity(
    spec: &AgentSpec,
    snap: &Snapshot,
    uid: &EntityUid,
    parent: &EntityUid,
    r: &Reserved<'_>,
) -> Option<Entity> {
    use cedar_policy_core::ast::{Entity as CoreEntity, PartialValue, Value as V};
    use std::fmt::Write as _;
    let mut sig = parent.type_name().to_string();
    let mut attrs: Vec<(String, V)> = Vec::with_capacity(spec.attributes.len() + 6);
    for (k, v) in &spec.attributes {
        let _ = write!(sig, "|{}:{k}=", k.len());
        let value = crate::plain::Plain { types: Some(&snap.types), sig: Some(&mut sig) }.value(v)?;
        attrs.push((k.clone(), value));
    }
    attrs.push(("owner".into(), V::new(r.owner, None)));
    attrs.push(("task".into(), V::new(r.task, None)));
    attrs.push(("scopes".into(), V::set(r.scopes.iter().map(|s| V::new(s.as_str(), None)), None)));
    attrs.push(("depth".into(), V::new(i64::from(r.depth), None)));
    attrs.push(("created_at".into(), V::new(i64::try_from(r.now).ok()?, None)));
    attrs.push(("expires_at".into(), V::new(i64::try_from(r.expires_at).ok()?, None)));
    let entity = Entity::from(CoreEntity::new_with_attr_partial_value(
        uid.clone().into(),
        attrs.into_iter().map(|(k, v)| (k.into(), PartialValue::Value(v))),
        HashSet::new(),
        HashSet::from([parent.clone().into()]),
        [],
    ));
    if let Some(schema) = &snap.schema {
        let shapes = snap.agent_shapes.pin();
        if !shapes.contains(&sig) {
            cedar_policy::Entities::from_entities([entity.clone()], Some(schema)).ok()?;
            // bounded: a flood of distinct shapes is checked each time rather than remembered
            if shapes.len() < MAX_REMEMBERED_SHAPES {
                shapes.insert(sig);
            }
        }
    }
    Some(entity)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]
    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    const SCHEMA: &str = "
        entity Tenant; entity User; entity Color enum [\"red\", \"blue\"];
        entity Agent in [User, Agent] {
            owner: String, task: String, scopes: Set<String>, depth: Long, created_at: Long, expires_at: Long,
            tenant?: Tenant, level?: Long, tags?: Set<String>, meta?: { a: String, b?: Bool }, ip?: ipaddr, color?: Color,
        };
        action read appliesTo { principal: [User, Agent], resource: Tenant };
    ";

    fn snapshot() -> &'static Snapshot {
        static SNAP: OnceLock<Snapshot> = OnceLock::new();
        SNAP.get_or_init(|| {
            crate::snapshot::test_snapshot(
                SCHEMA,
                Some(r#"[{"uid":{"type":"User","id":"u"},"attrs":{},"parents":[]}]"#),
                crate::snapshot::Validation::Strict,
            )
        })
    }

    fn attribute() -> impl Strategy<Value = (String, Value)> {
        let leaf = prop_oneof![
            any::<i64>().prop_map(Value::from),
            any::<bool>().prop_map(Value::from),
            prop::sample::select(vec!["x", "10.0.0.1", ""]).prop_map(Value::from),
            Just(json!({"__entity": {"type": "Tenant", "id": "t"}})),
            Just(json!({"__entity": {"type": "User", "id": "u"}})),
            Just(json!({"__entity": {"type": "Color", "id": "red"}})),
            Just(json!({"__entity": {"type": "Color", "id": "green"}})),
            Just(json!({"type": "Tenant", "id": "t"})),
            Just(json!({"__extn": {"fn": "ip", "arg": "10.0.0.1"}})),
            Just(json!(1.5)),
        ];
        let value = leaf.prop_recursive(2, 8, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
                prop::collection::btree_map(
                    prop::sample::select(vec!["a".to_owned(), "b".to_owned(), "c".to_owned()]),
                    inner,
                    0..3
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        });
        (
            prop::sample::select(vec!["tenant", "level", "tags", "meta", "ip", "color", "other"])
                .prop_map(str::to_owned),
            value,
        )
    }

    proptest! {
        /// The direct build (with its shape cache) never accepts what Cedar's typed JSON parse
        /// refuses, and whenever it builds an entity, it is the entity the typed parse gives.
        #[test]
        fn plain_agent_entities_are_the_typed_parse(attrs in prop::collection::vec(attribute(), 0..4), depth in 1u32..5) {
            let snap = snapshot();
            let mut spec = AgentSpec::new("User::\"u\"", "t", 60).scopes(["read"]);
            spec.attributes = attrs.into_iter().collect();
            let uid: EntityUid = "Agent::\"a\"".parse().unwrap();
            let parent: EntityUid = "User::\"u\"".parse().unwrap();
            let scopes: BTreeSet<String> = ["read".to_owned()].into();
            let r = Reserved { owner: "User::\"u\"", task: "t", scopes: &scopes, depth, now: 100, expires_at: 160 };
            let typed = json_entity(&spec, snap, &uid, &parent, &r);
            if let Some(plain) = plain_entity(&spec, snap, &uid, &parent, &r) {
                // Entity's == compares uids only: compare attributes and ancestors too
                let typed = typed.ok();
                prop_assert!(typed.as_ref().is_some_and(|t| t.deep_eq(&plain)), "{:?} vs {:?}", plain, typed);
            }
        }
    }

    #[test]
    fn plain_attributes_take_the_direct_build_and_typed_ones_the_parse() {
        let snap = snapshot();
        let uid: EntityUid = "Agent::\"b\"".parse().unwrap();
        let parent: EntityUid = "User::\"u\"".parse().unwrap();
        let scopes: BTreeSet<String> = ["read".to_owned()].into();
        let r = Reserved { owner: "User::\"u\"", task: "t", scopes: &scopes, depth: 1, now: 100, expires_at: 160 };
        let spec = |attrs: Value| {
            let mut s = AgentSpec::new("User::\"u\"", "t", 60);
            s.attributes = attrs.as_object().unwrap().clone();
            s
        };
        let plain = spec(json!({"tenant": {"__entity": {"type": "Tenant", "id": "t"}}, "level": 3, "tags": ["x"]}));
        assert!(plain_entity(&plain, snap, &uid, &parent, &r).is_some());
        assert!(plain_entity(&plain, snap, &uid, &parent, &r).is_some(), "and again, from the shape cache");
        // an ip address is a string only the typed parse turns into an extension value
        let typed = spec(json!({"ip": "10.0.0.1"}));
        assert!(plain_entity(&typed, snap, &uid, &parent, &r).is_none());
        assert!(json_entity(&typed, snap, &uid, &parent, &r).is_ok());
        // an enumerated entity type checks ids: a remembered shape must not let another id in
        let red = spec(json!({"color": {"__entity": {"type": "Color", "id": "red"}}}));
        let green = spec(json!({"color": {"__entity": {"type": "Color", "id": "green"}}}));
        assert!(plain_entity(&red, snap, &uid, &parent, &r).is_some());
        assert!(plain_entity(&green, snap, &uid, &parent, &r).is_none());
        assert!(json_entity(&green, snap, &uid, &parent, &r).is_err());
        // a wrong type is refused by both
        let wrong = spec(json!({"level": "high"}));
        assert!(plain_entity(&wrong, snap, &uid, &parent, &r).is_none());
        assert_eq!(json_entity(&wrong, snap, &uid, &parent, &r).unwrap_err().code(), "AMBIT_INVALID_DELEGATION");
    }
}
