//! The per-action policy index.
//!
//! Raw Cedar evaluates every policy for every request. At load, ambit cuts the policy set into
//! one slice per action: the policies whose action scope can match it (`action == A`,
//! `action in [..]` naming A or a group A is in, and unconstrained `action`). Dropping policies
//! whose scope cannot match changes neither decision, reasons nor errors: their scope is false,
//! so Cedar never evaluates their conditions.

use cedar_policy::{ActionConstraint, EntityUid, PolicySet};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

/// The policies that can apply to one action, and the entity literals they mention.
#[derive(Debug)]
pub(crate) struct Slice {
    pub(crate) policies: PolicySet,
    /// Entity uids written in these policies; a decision's entity slice includes them.
    pub(crate) literals: Vec<EntityUid>,
    /// For large slices, the same policies keyed by their resource scope.
    keyed: Option<ResourceKeys>,
}

/// Policies keyed by the entity in their resource scope (`resource == E`, `resource in E`,
/// `resource is T in E`); `unkeyed` holds the rest (`resource`, `resource is T`). A policy
/// keyed by `E` can only match a resource that is `E` or has `E` among its ancestors.
/// Policies keyed by neither go to `unkeyed`; those with an unconstrained resource but a
/// principal scope entity are keyed by that entity in `by_principal`, the same way.
#[derive(Debug)]
struct ResourceKeys {
    unkeyed: Vec<cedar_policy::Policy>,
    by_entity: HashMap<EntityUid, Vec<cedar_policy::Policy>>,
    by_principal: HashMap<EntityUid, Vec<cedar_policy::Policy>>,
}

/// Slices smaller than this are evaluated whole: assembling a per-request subset would cost
/// more than it saves. Measured with callgrind on the bench workload: at 8, one hop at P = 100
/// (slices of ~10-15 policies) takes 46% fewer instructions than evaluating whole slices, and
/// P = 10 is unchanged; at 2 or 4, P = 10 gets slower.
const KEYED_MIN_POLICIES: usize = 8;

impl Slice {
    /// The policies of this slice whose resource (or, for unconstrained resources, principal)
    /// scope can match, given the decision's entities (for ancestors). Exactly the slice's
    /// policies minus some whose scope is false for this request, so decisions, reasons and
    /// errors are unchanged.
    pub(crate) fn for_request(
        &self,
        principal: &EntityUid,
        resource: &EntityUid,
        entities: &cedar_policy::Entities,
    ) -> Cow<'_, PolicySet> {
        let Some(keys) = &self.keyed else { return Cow::Borrowed(&self.policies) };
        let mut chosen: Vec<cedar_policy::Policy> = keys.unkeyed.clone();
        for (map, uid) in [(&keys.by_entity, resource), (&keys.by_principal, principal)] {
            if let Some(ps) = map.get(uid) {
                chosen.extend(ps.iter().cloned());
            }
            for ancestor in entities.ancestors(uid).into_iter().flatten() {
                if ancestor != uid {
                    if let Some(ps) = map.get(ancestor) {
                        chosen.extend(ps.iter().cloned());
                    }
                }
            }
        }
        match PolicySet::from_policies(chosen) {
            Ok(set) => Cow::Owned(set),
            Err(_) => Cow::Borrowed(&self.policies),
        }
    }
}

fn resource_keys(policies: &[cedar_policy::Policy]) -> Option<ResourceKeys> {
    use cedar_policy::{PrincipalConstraint as P, ResourceConstraint as R};
    if policies.len() < KEYED_MIN_POLICIES {
        return None;
    }
    let mut keys = ResourceKeys { unkeyed: Vec::new(), by_entity: HashMap::new(), by_principal: HashMap::new() };
    for p in policies {
        match (p.resource_constraint(), p.principal_constraint()) {
            (R::Eq(e) | R::In(e) | R::IsIn(_, e), _) => keys.by_entity.entry(e).or_default().push(p.clone()),
            (R::Any | R::Is(_), P::Eq(e) | P::In(e) | P::IsIn(_, e)) => {
                keys.by_principal.entry(e).or_default().push(p.clone());
            }
            (R::Any | R::Is(_), P::Any | P::Is(_)) => keys.unkeyed.push(p.clone()),
        }
    }
    Some(keys)
}

#[derive(Debug)]
pub(crate) struct Index {
    pub(crate) slices: Vec<Slice>,
}

/// Index of the slice holding every policy, for actions unknown at load (validation off).
pub(crate) const FULL: usize = 0;

impl Index {
    pub(crate) fn new(policies: &PolicySet) -> Self {
        let literals = literals(policies.policies());
        let all: Vec<cedar_policy::Policy> = policies.policies().cloned().collect();
        Self { slices: vec![Slice { policies: policies.clone(), literals, keyed: resource_keys(&all) }] }
    }

    /// Builds the slice for `action`, whose action groups (transitively) are `groups`.
    pub(crate) fn add_action(&mut self, action: &EntityUid, groups: &[EntityUid], policies: &PolicySet) -> usize {
        let applies = |p: &&cedar_policy::Policy| match p.action_constraint() {
            ActionConstraint::Any => true,
            ActionConstraint::Eq(a) => &a == action,
            ActionConstraint::In(list) => list.iter().any(|a| a == action || groups.contains(a)),
        };
        let chosen: Vec<cedar_policy::Policy> = policies.policies().filter(applies).cloned().collect();
        let literals = literals(chosen.iter());
        let keyed = resource_keys(&chosen);
        // Ids are unique in the full set, so assembling a subset cannot fail; fall back to the
        // full set if it ever does (correct, only slower).
        let Ok(set) = PolicySet::from_policies(chosen) else {
            return FULL;
        };
        self.slices.push(Slice { policies: set, literals, keyed });
        self.slices.len() - 1
    }
}

fn literals<'a>(policies: impl Iterator<Item = &'a cedar_policy::Policy>) -> Vec<EntityUid> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for p in policies {
        for uid in condition_literals(p) {
            if seen.insert(uid.clone()) {
                out.push(uid);
            }
        }
    }
    out
}

/// Entity literals in a policy's `when` / `unless` conditions. Scope literals are left out:
/// `principal == X` compares uids and `principal in X` reads the principal's ancestors, so
/// neither needs entity `X` itself. Cedar's `entity_literals` lists one occurrence per use,
/// scope included; removing one occurrence per scope use keeps a literal that appears in both.
fn condition_literals(p: &cedar_policy::Policy) -> Vec<EntityUid> {
    use cedar_policy::{PrincipalConstraint as P, ResourceConstraint as R};
    if !p.has_non_scope_constraint() {
        return Vec::new();
    }
    let mut all = p.entity_literals();
    let mut scope = Vec::new();
    match p.principal_constraint() {
        P::In(u) | P::Eq(u) | P::IsIn(_, u) => scope.push(u),
        P::Any | P::Is(_) => {}
    }
    match p.action_constraint() {
        ActionConstraint::Eq(u) => scope.push(u),
        ActionConstraint::In(list) => scope.extend(list),
        ActionConstraint::Any => {}
    }
    match p.resource_constraint() {
        R::In(u) | R::Eq(u) | R::IsIn(_, u) => scope.push(u),
        R::Any | R::Is(_) => {}
    }
    for s in scope {
        if let Some(pos) = all.iter().position(|x| x == &s) {
            all.swap_remove(pos);
        }
    }
    all
}
