//! The registry of live agents: just-in-time minting with attenuation, cascading revocation,
//! expiry and purging.
//!
//! Reads (every decision) go through a lock-free map (`papaya`); only writers (mint, revoke,
//! purge) take the small mutex that guards the parent -> children index.

use crate::agent::{
    build_entity, check_resources, check_scopes, lifetime, Agent, AgentRecord, AgentSpec, DelegationNode, Imported,
};
use crate::decision::DenyCause;
use crate::error::{Error, Result};
use crate::snapshot::Snapshot;
use cedar_policy::EntityUid;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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
        chain_text.push(crate::uid::uid_text(&uid, &snap.agent_type_text));
        let mut chain = parent_chain;
        chain.push(uid.clone());
        let owner = chain_text.first().map_or("", String::as_str);
        let scopes_given: Vec<String> = scopes_given.into_iter().collect();
        let (entity, refs) =
            build_entity(spec, snap, &uid, &parent, owner, &scopes_given, depth, created_at, expires_at)?;
        let record = Arc::new(AgentRecord {
            uid: uid.clone(),
            parent: parent.clone(),
            chain,
            chain_text,
            task: spec.task.clone(),
            scopes,
            scopes_given,
            attributes: spec.attributes.clone(),
            resources,
            depth,
            created_at,
            expires_at,
            revoked: AtomicBool::new(false),
            revoked_at: AtomicU64::new(0),
            entity,
            refs,
            closed: arc_swap::ArcSwapOption::empty(),
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
            let uid = crate::uid::parse_uid(uid, "revoked")?;
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
                    if let (Some(at), Ok(uid)) = (a.revoked_at, crate::uid::parse_uid(agent.uid(), "agent")) {
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
