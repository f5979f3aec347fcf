//! The per-action policy index.
//!
//! Raw Cedar evaluates every policy for every request. At load, ambit cuts the policy set into
//! one slice per action: the policies whose action scope can match it (`action == A`,
//! `action in [..]` naming A or a group A is in, and unconstrained `action`). Dropping policies
//! whose scope cannot match changes neither decision, reasons nor errors: their scope is false,
//! so Cedar never evaluates their conditions.

use cedar_policy::{ActionConstraint, EntityUid, PolicySet};
use std::collections::HashSet;

/// The policies that can apply to one action, and the entity literals they mention.
#[derive(Debug)]
pub(crate) struct Slice {
    pub(crate) policies: PolicySet,
    /// Entity uids written in these policies; a decision's entity slice includes them.
    pub(crate) literals: Vec<EntityUid>,
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
        Self { slices: vec![Slice { policies: policies.clone(), literals }] }
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
        // Ids are unique in the full set, so assembling a subset cannot fail; fall back to the
        // full set if it ever does (correct, only slower).
        let Ok(set) = PolicySet::from_policies(chosen) else {
            return FULL;
        };
        self.slices.push(Slice { policies: set, literals });
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
