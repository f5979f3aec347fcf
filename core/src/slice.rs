//! The entity store one decision reads: the chain, the action, the resource, what the context
//! and the policies' conditions name, and everything their attributes reach; built with the
//! transitive closure already known where ambit can prove it.

use crate::agent::AgentRecord;
use crate::error::{cedar_text, Error, Result};
use crate::prepare::Prepared;
use crate::registry::{self, Registry};
use crate::snapshot::Snapshot;
use cedar_policy::{Entities, Entity, EntityUid};
use cedar_policy_core::ast::Entity as CoreEntity;
use std::sync::Arc;

/// The small set of entities one decision can reach: the chain, action, resource, context
/// references, the slice's condition literals, and everything their attributes mention.
pub(crate) fn entity_slice(
    snap: &Snapshot,
    registry: &Registry,
    hops: &[(EntityUid, registry::Hop)],
    p: &Prepared,
    literals: &[EntityUid],
) -> Result<SliceEntities> {
    // a handful of uids per decision: FxHash, not SipHash (which was a fifth of building the
    // slice of a 3-hop chain; these uids are ambit's own, not chosen to collide)
    let mut seen: rustc_hash::FxHashSet<EntityUid> =
        rustc_hash::FxHashSet::with_capacity_and_hasher(16 + literals.len(), rustc_hash::FxBuildHasher);
    let mut queue: Vec<EntityUid> = Vec::with_capacity(8 + literals.len());
    let mut list: Vec<Arc<CoreEntity>> = Vec::new();
    let mut agents: Vec<Arc<AgentRecord>> = Vec::new();
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
    let mut given: Vec<Entity> = Vec::with_capacity(p.entities.len());
    for (entity, refs) in &p.entities {
        if seen.insert(entity.uid()) {
            given.push(entity.clone());
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
        if let Some(s) = snap.statics.get(&uid) {
            queue.extend(s.refs.iter().cloned());
            list.push(Arc::clone(&s.entity));
        } else if uid.type_name() == &snap.agent_type {
            if let Some(a) = registry.get(&uid) {
                queue.extend(a.refs.iter().cloned());
                queue.push(a.parent.clone());
                agents.push(a);
            }
        }
        seen.insert(uid);
    }
    if given.is_empty() {
        return closed_store(snap, list, &agents);
    }
    // request entities name parents of their own: let Cedar compute the closure
    given.extend(list.into_iter().map(|e| Entity::from(Arc::unwrap_or_clone(e))));
    given.extend(agents.iter().map(|a| a.entity.clone()));
    Entities::from_entities(given, None).map(SliceEntities::Api).map_err(|e| slice_error(&e))
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
/// without Cedar's per-request transitive-closure pass: each agent's closed entity is built
/// once per snapshot (`AgentRecord::closed_entity`), and every entity is shared, not copied.
/// Debug builds check the result against Cedar's own computation.
fn closed_store(snap: &Snapshot, mut list: Vec<Arc<CoreEntity>>, agents: &[Arc<AgentRecord>]) -> Result<SliceEntities> {
    #[cfg(debug_assertions)]
    let plain: Vec<Entity> =
        list.iter().map(|e| Entity::from(e.as_ref().clone())).chain(agents.iter().map(|a| a.entity.clone())).collect();
    list.extend(agents.iter().map(|a| a.closed_entity(snap)));
    let store = crate::snapshot::shared_store(list).map_err(|e| slice_error(&e))?;
    #[cfg(debug_assertions)]
    {
        if let Ok(cedar) = Entities::from_entities(plain, None) {
            debug_assert!(cedar.as_ref().deep_eq(&store), "precomputed closure differs from Cedar's");
        }
    }
    Ok(SliceEntities::Core(store))
}
