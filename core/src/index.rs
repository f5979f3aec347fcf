//! The per-action policy index.
//!
//! Raw Cedar evaluates every policy for every request. At load, ambit cuts the policy set into
//! one slice per action: the policies whose action scope can match it (`action == A`,
//! `action in [..]` naming A or a group A is in, and unconstrained `action`). Dropping policies
//! whose scope cannot match changes neither decision, reasons nor errors: their scope is false,
//! so Cedar never evaluates their conditions.

use crate::policy::{Compiled, Scope};
use cedar_policy::{ActionConstraint, EntityUid, PolicySet};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// The policies that can apply to one action, and the entity literals they mention.
#[derive(Debug)]
pub(crate) struct Slice {
    /// The policies, prepared for evaluation (shared between slices).
    compiled: Vec<Arc<Compiled>>,
    /// Entity uids written in these policies; a decision's entity slice includes them.
    pub(crate) literals: Vec<EntityUid>,
    /// For larger slices, the same policies grouped by their scope entity.
    keyed: Option<ScopeKeys>,
    /// Whether some policy has a principal (`.0`) or resource (`.1`) scope to check, and
    /// whether one of those is an `in` (its ancestors are needed).
    checks: ((bool, bool), (bool, bool)),
    /// A slice for one action (not the full set): every policy's action scope holds for it.
    for_action: bool,
}

/// Policies grouped by the entity in their resource scope (`resource == E`, `resource in E`,
/// `resource is T in E`); those with an unconstrained resource but a principal scope entity
/// are grouped by that entity (`by_principal`); the rest are `unkeyed`. A policy grouped under
/// `E` can only match a request whose resource (or principal) is `E` or under `E`.
#[derive(Debug)]
struct ScopeKeys {
    unkeyed: Vec<Arc<Compiled>>,
    groups: Vec<Vec<Arc<Compiled>>>,
    by_entity: HashMap<EntityUid, u32, rustc_hash::FxBuildHasher>,
    by_principal: HashMap<EntityUid, u32, rustc_hash::FxBuildHasher>,
}

/// Slices smaller than this are evaluated whole: looking up scope groups would cost more than
/// it saves. Measured with callgrind on the bench workload: at 8, one hop at P = 100 (slices
/// of ~10-15 policies) takes 46% fewer instructions than evaluating whole slices, and P = 10
/// is unchanged; at 2 or 4, P = 10 gets slower.
const KEYED_MIN_POLICIES: usize = 8;

impl Slice {
    /// Whether every policy [`Self::policies_for`] yields has all three scopes true for the
    /// request: the action's by construction (a per-action slice), the principal's and the
    /// resource's because they were checked.
    pub(crate) fn scopes_hold(&self) -> bool {
        self.for_action
    }

    /// Every policy of the slice.
    pub(crate) fn all(&self) -> impl ExactSizeIterator<Item = &Compiled> {
        self.compiled.iter().map(AsRef::as_ref)
    }

    /// The policies of this slice whose resource (or, for unconstrained resources, principal)
    /// scope can match, given the decision's entities (for ancestors): exactly the slice's
    /// policies minus some whose scope is false for this request, so decisions, reasons and
    /// errors are unchanged. Each policy comes at most once (a policy is in one group, and a
    /// uid's ancestors exclude the uid).
    ///
    /// Each candidate's scopes are checked too (a policy keyed by its
    /// resource scope whose principal scope is false for this principal, or one whose `is`
    /// cannot hold, is dropped): a request evaluates the policies whose principal *and*
    /// resource scopes can both match. A scope that is false makes Cedar's condition false
    /// before any `when` / `unless` is read, so dropping it changes no decision, reason or
    /// error.
    pub(crate) fn policies_for<'a>(
        &'a self,
        principal: &'a EntityUid,
        resource: &'a EntityUid,
        entities: &'a cedar_policy::Entities,
    ) -> impl Iterator<Item = &'a Compiled> + 'a {
        let mut groups: Vec<u32> = Vec::new();
        let ((check_p, in_p), (check_r, in_r)) = self.checks;
        let ancestors = |uid: &EntityUid, needed: bool| -> Vec<&'a EntityUid> {
            if needed {
                entities.ancestors(uid).into_iter().flatten().collect()
            } else {
                Vec::new()
            }
        };
        let (p_anc, r_anc) = (ancestors(principal, in_p), ancestors(resource, in_r));
        if let Some(keys) = &self.keyed {
            for (map, uid) in [(&keys.by_entity, resource), (&keys.by_principal, principal)] {
                if map.is_empty() {
                    continue;
                }
                if let Some(g) = map.get(uid) {
                    groups.push(*g);
                }
                for ancestor in entities.ancestors(uid).into_iter().flatten() {
                    if ancestor != uid {
                        if let Some(g) = map.get(ancestor) {
                            groups.push(*g);
                        }
                    }
                }
            }
        }
        let (whole, keyed): (&[Arc<Compiled>], Option<&ScopeKeys>) = match &self.keyed {
            Some(keys) => (&keys.unkeyed, Some(keys)),
            None => (&self.compiled, None),
        };
        whole
            .iter()
            .chain(groups.into_iter().flat_map(move |g| keyed.map_or(&[][..], |k| &k.groups[g as usize][..])))
            .map(AsRef::as_ref)
            .filter(move |c| {
                (!check_p || c.scope.0.may_match(principal, &p_anc))
                    && (!check_r || c.scope.1.may_match(resource, &r_anc))
            })
    }
}

fn scope_keys(policies: &[Arc<Compiled>]) -> Option<ScopeKeys> {
    use cedar_policy::{PrincipalConstraint as P, ResourceConstraint as R};
    if policies.len() < KEYED_MIN_POLICIES {
        return None;
    }
    let mut keys = ScopeKeys {
        unkeyed: Vec::new(),
        groups: Vec::new(),
        by_entity: HashMap::default(),
        by_principal: HashMap::default(),
    };
    for compiled in policies {
        let p = &compiled.policy;
        let (map, e) = match (p.resource_constraint(), p.principal_constraint()) {
            (R::Eq(e) | R::In(e) | R::IsIn(_, e), _) => (&mut keys.by_entity, e),
            (R::Any | R::Is(_), P::Eq(e) | P::In(e) | P::IsIn(_, e)) => (&mut keys.by_principal, e),
            (R::Any | R::Is(_), P::Any | P::Is(_)) => {
                keys.unkeyed.push(Arc::clone(compiled));
                continue;
            }
        };
        let next = u32::try_from(keys.groups.len()).ok()?;
        let g = *map.entry(e).or_insert(next);
        if g == next {
            keys.groups.push(Vec::new());
        }
        keys.groups[g as usize].push(Arc::clone(compiled));
    }
    Some(keys)
}

#[derive(Debug)]
pub(crate) struct Index {
    /// `slices[FULL]` holds every policy, prepared once; the per-action slices share them.
    pub(crate) slices: Vec<Slice>,
}

/// Index of the slice holding every policy, for actions unknown at load (validation off).
pub(crate) const FULL: usize = 0;

impl Index {
    pub(crate) fn new(policies: &PolicySet) -> Self {
        let all: Vec<Arc<Compiled>> = policies.policies().map(|p| Arc::new(Compiled::new(p))).collect();
        Self { slices: vec![slice(all, false)] }
    }

    /// Builds the slice for `action`, whose action groups (transitively) are `groups`.
    pub(crate) fn add_action(&mut self, action: &EntityUid, groups: &[EntityUid]) -> usize {
        let applies = |p: &&Arc<Compiled>| match p.policy.action_constraint() {
            ActionConstraint::Any => true,
            ActionConstraint::Eq(a) => &a == action,
            ActionConstraint::In(list) => list.iter().any(|a| a == action || groups.contains(a)),
        };
        let chosen: Vec<Arc<Compiled>> = self.slices[FULL].compiled.iter().filter(applies).cloned().collect();
        self.slices.push(slice(chosen, true));
        self.slices.len() - 1
    }
}

fn slice(compiled: Vec<Arc<Compiled>>, for_action: bool) -> Slice {
    let mut seen = HashSet::new();
    let literals = compiled.iter().flat_map(|c| &c.literals).filter(|u| seen.insert(*u)).cloned().collect();
    let keyed = scope_keys(&compiled);
    let side = |f: fn(&Compiled) -> &Scope| {
        let scoped = compiled.iter().any(|c| !matches!(f(c), Scope::Any));
        let within = compiled.iter().any(|c| matches!(f(c), Scope::In(_) | Scope::IsIn(..)));
        (scoped, within)
    };
    let checks = (side(|c| &c.scope.0), side(|c| &c.scope.1));
    Slice { compiled, literals, keyed, checks, for_action }
}
