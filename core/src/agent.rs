//! Agents as identities: what a mint asks for (`AgentSpec`), what an agent is (`Agent`, its
//! record and its Cedar entity), where it sits (`DelegationNode`), and the attenuation rules a
//! child must meet: scopes within its parent's, confinement within its parent's, a lifetime
//! within its parent's.

use crate::error::{Error, Result};
use crate::snapshot::Snapshot;
use cedar_policy::{Entity, EntityUid};
use rustc_hash::FxHashSet;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Attribute names ambit sets on every agent; application attributes may not reuse them.
pub const RESERVED_AGENT_ATTRIBUTES: &[&str] = &["owner", "task", "scopes", "depth", "created_at", "expires_at"];

/// What to mint: the delegator, the task, and the (narrower) authority the agent gets.
///
/// Its JSON form is the mint wire format (`parent`, `task`, `scopes`, `ttl_seconds`,
/// `resources`, `attributes`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSpec {
    pub(crate) parent: String,
    #[serde(default)]
    pub(crate) task: String,
    #[serde(default)]
    pub(crate) scopes: Vec<String>,
    #[serde(alias = "ttl")]
    pub(crate) ttl_seconds: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) resources: Vec<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub(crate) attributes: Map<String, Value>,
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
    pub(crate) uid: String,
    pub(crate) parent: String,
    pub(crate) owner: String,
    pub(crate) chain: Vec<String>,
    pub(crate) task: String,
    pub(crate) scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) resources: Vec<String>,
    pub(crate) depth: u32,
    pub(crate) created_at: u64,
    pub(crate) expires_at: u64,
    pub(crate) revoked: bool,
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
    pub(crate) uid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) agent: Option<Agent>,
    pub(crate) revoked: bool,
    pub(crate) children: Vec<DelegationNode>,
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
    /// (FxHash: each decision looks its action up here once per agent hop)
    pub(crate) scopes: FxHashSet<String>,
    /// The scopes as given at mint, sorted (what `Agent::scopes` and the entity attribute show).
    pub(crate) scopes_given: Vec<String>,
    /// The application attributes given at mint (what a credential carries).
    pub(crate) attributes: Map<String, Value>,
    pub(crate) resources: Option<Vec<EntityUid>>,
    pub(crate) depth: u32,
    pub(crate) created_at: u64,
    pub(crate) expires_at: u64,
    pub(crate) revoked: AtomicBool,
    pub(crate) revoked_at: AtomicU64,
    /// The Cedar entity policies see (attributes; parent = delegator).
    pub(crate) entity: Entity,
    /// Entity uids its attributes mention.
    pub(crate) refs: Vec<EntityUid>,
    /// `entity` with its ancestors closed, under the last snapshot a decision built it for
    /// (see `closed_entity`).
    pub(crate) closed: arc_swap::ArcSwapOption<Closed>,
}

/// An agent's entity with its ancestor set closed, and the snapshot it holds for.
#[derive(Debug)]
pub(crate) struct Closed {
    snapshot: u64,
    entity: Arc<cedar_policy_core::ast::Entity>,
}

impl AgentRecord {
    /// The agent's entity as a decision's store holds it, its ancestor set closed: its parent,
    /// the agents above it on its chain, its root, and the root's ancestors in the snapshot's
    /// (already closed) hierarchy. Those depend only on the agent's chain, fixed at mint, and
    /// on the snapshot, so the entity is built once per snapshot and shared by every decision
    /// under it (rebuilt per decision, it was a third of a 2-hop chain's cost).
    pub(crate) fn closed_entity(&self, snap: &Snapshot) -> Arc<cedar_policy_core::ast::Entity> {
        if let Some(c) = self.closed.load().as_deref() {
            if c.snapshot == snap.id {
                return Arc::clone(&c.entity);
            }
        }
        let mut entity: cedar_policy_core::ast::Entity = self.entity.as_ref().clone();
        let above = &self.chain[..self.chain.len().saturating_sub(1)];
        for uid in above {
            let uid: cedar_policy_core::ast::EntityUID = uid.clone().into();
            if !entity.is_descendant_of(&uid) {
                entity.add_indirect_ancestor(uid);
            }
        }
        if let Some(root) = above.first() {
            for ancestor in snap.entities.ancestors(root).into_iter().flatten() {
                entity.add_indirect_ancestor(ancestor.clone().into());
            }
        }
        let entity = Arc::new(entity);
        // two decisions racing here build equal entities: either may stay
        self.closed.store(Some(Arc::new(Closed { snapshot: snap.id, entity: Arc::clone(&entity) })));
        entity
    }

    /// This agent, when it is the one described (entered again from a credential); an error
    /// when a credential describes another agent under its uid.
    pub(crate) fn same_as(
        &self,
        parent: &EntityUid,
        scopes: &FxHashSet<String>,
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

/// A new agent's creation time, expiry and entity id: now, clamped to its parent's expiry and
/// a fresh UUID for a local mint; as claimed for an imported one, which may not outlive its
/// parent.
pub(crate) fn lifetime(
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

/// Resolves each scope to the one action or action group it names, and checks it is within the
/// parent's: held by the parent, or an action in a group the parent holds. Returns the
/// canonical scopes and the given ones.
pub(crate) fn check_scopes(
    spec: &AgentSpec,
    snap: &Snapshot,
    parent: Option<&AgentRecord>,
) -> Result<(FxHashSet<String>, BTreeSet<String>)> {
    let mut canonical = FxHashSet::with_capacity_and_hasher(spec.scopes.len(), rustc_hash::FxBuildHasher);
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

pub(crate) fn check_resources(
    spec: &AgentSpec,
    snap: &Snapshot,
    parent: Option<&AgentRecord>,
) -> Result<Option<Vec<EntityUid>>> {
    let wanted: Vec<EntityUid> =
        spec.resources.iter().map(|r| crate::uid::parse_uid(r, "resource")).collect::<Result<_>>()?;
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
pub(crate) fn build_entity(
    spec: &AgentSpec,
    snap: &Snapshot,
    uid: &EntityUid,
    parent: &EntityUid,
    owner: &str,
    scopes: &[String],
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
pub(crate) fn json_entity(
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
pub(crate) const MAX_REMEMBERED_SHAPES: usize = 1024;

/// The attributes ambit sets on every agent.
pub(crate) struct Reserved<'a> {
    pub(crate) owner: &'a str,
    pub(crate) task: &'a str,
    /// Sorted, without duplicates.
    pub(crate) scopes: &'a [String],
    pub(crate) depth: u32,
    pub(crate) now: u64,
    pub(crate) expires_at: u64,
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
pub(crate) fn plain_entity(
    spec: &AgentSpec,
    snap: &Snapshot,
    uid: &EntityUid,
    parent: &EntityUid,
    r: &Reserved<'_>,
) -> Option<Entity> {
    use cedar_policy_core::ast::{Entity as CoreEntity, PartialValue, Value as V};
    use std::fmt::Write as _;
    let mut sig = parent.type_name().to_string();
    // keys straight to Cedar's inline strings (no `String` made and dropped per attribute)
    let mut attrs = Vec::with_capacity(spec.attributes.len() + 6);
    for (k, v) in &spec.attributes {
        let _ = write!(sig, "|{}:{k}=", k.len());
        let value = crate::plain::Plain { types: Some(&snap.types), sig: Some(&mut sig) }.value(v)?;
        attrs.push((k.as_str().into(), PartialValue::Value(value)));
    }
    let scopes = scope_value(snap, r.scopes);
    for (k, v) in [
        ("owner", V::new(r.owner, None)),
        ("task", V::new(r.task, None)),
        ("scopes", scopes),
        ("depth", V::new(i64::from(r.depth), None)),
        ("created_at", V::new(i64::try_from(r.now).ok()?, None)),
        ("expires_at", V::new(i64::try_from(r.expires_at).ok()?, None)),
    ] {
        attrs.push((k.into(), PartialValue::Value(v)));
    }
    let entity = Entity::from(CoreEntity::new_with_attr_partial_value(
        uid.clone().into(),
        attrs,
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

/// The `scopes` attribute's Cedar set, shared (an `Arc`) by the agents of a snapshot minted
/// with the same scopes: an agent fleet holds a few scope lists, and each set built anew was
/// a fifth of an agent's memory and a tenth of its mint.
fn scope_value(snap: &Snapshot, scopes: &[String]) -> cedar_policy_core::ast::Value {
    use cedar_policy_core::ast::Value as V;
    let values = snap.scope_values.pin();
    if let Some(v) = values.get(scopes) {
        return v.clone();
    }
    let v = V::set(scopes.iter().map(|s| V::new(s.as_str(), None)), None);
    // bounded: past the bound, sets are built per agent rather than remembered
    if values.len() < MAX_REMEMBERED_SHAPES {
        values.insert(scopes.to_vec(), v.clone());
    }
    v
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
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
                crate::config::Validation::Strict,
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
        fn plain_agent_entities_are_the_typed_parse(
            attrs in prop::collection::vec(attribute(), 0..4),
            depth in 1u32..5,
            scopes in prop::collection::btree_set(prop::sample::select(vec!["read", "write", "a\"b", ""]), 0..4),
        ) {
            let snap = snapshot();
            let mut spec = AgentSpec::new("User::\"u\"", "t", 60).scopes(["read"]);
            spec.attributes = attrs.into_iter().collect();
            let uid: EntityUid = "Agent::\"a\"".parse().unwrap();
            let parent: EntityUid = "User::\"u\"".parse().unwrap();
            // the scope set is remembered per list: every list, first seen or remembered
            let scopes: Vec<String> = scopes.into_iter().map(str::to_owned).collect();
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
        let scopes = ["read".to_owned()];
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
