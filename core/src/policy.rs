//! A policy compiled once, at load: Cedar's condition, the condition's body once the scopes
//! hold, its principal and resource scopes as the index tests them, and the entity literals
//! its conditions name (what a decision's entity slice must hold).

use cedar_policy::{ActionConstraint, Effect, EntityUid};
use cedar_policy_core::ast::{self, Expr};

/// A policy ready to evaluate.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub(crate) id: String,
    pub(crate) forbid: bool,
    /// The policy itself.
    pub(crate) policy: cedar_policy::Policy,
    /// Cedar's `condition()` of the policy, built once.
    pub(crate) condition: Expr,
    /// `true && <when and unless>`: the condition once its three scopes are known to hold, as
    /// Cedar's `&&` chain evaluates it then (a non-boolean body is the same type error).
    pub(crate) body: Expr,
    /// Entity uids written in the policy's conditions (see `condition_literals`).
    pub(crate) literals: Vec<EntityUid>,
    /// Its principal and resource scopes, to drop it before evaluation when either cannot
    /// match (see `crate::index::Slice::policies_for`).
    pub(crate) scope: (Scope, Scope),
}

impl Compiled {
    pub(crate) fn new(p: &cedar_policy::Policy) -> Self {
        let policy: &ast::Policy = p.as_ref();
        Self {
            id: p.id().to_string(),
            forbid: p.effect() == Effect::Forbid,
            condition: policy.condition(),
            body: Expr::and(
                Expr::val(true),
                policy.non_scope_constraints().cloned().unwrap_or_else(|| Expr::val(true)),
            )
            .with_maybe_source_loc(policy.loc().cloned()),
            literals: condition_literals(p),
            scope: Scope::of(p),
            policy: p.clone(),
        }
    }
}

/// A principal or resource scope, as the index tests it.
#[derive(Debug, Clone)]
pub(crate) enum Scope {
    Any,
    Eq(EntityUid),
    In(EntityUid),
    Is(cedar_policy::EntityTypeName),
    IsIn(cedar_policy::EntityTypeName, EntityUid),
}

impl Scope {
    pub(crate) fn of(p: &cedar_policy::Policy) -> (Self, Self) {
        use cedar_policy::{PrincipalConstraint as P, ResourceConstraint as R};
        let principal = match p.principal_constraint() {
            P::Any => Self::Any,
            P::Eq(e) => Self::Eq(e),
            P::In(e) => Self::In(e),
            P::Is(t) => Self::Is(t),
            P::IsIn(t, e) => Self::IsIn(t, e),
        };
        let resource = match p.resource_constraint() {
            R::Any => Self::Any,
            R::Eq(e) => Self::Eq(e),
            R::In(e) => Self::In(e),
            R::Is(t) => Self::Is(t),
            R::IsIn(t, e) => Self::IsIn(t, e),
        };
        (principal, resource)
    }

    /// Whether the scope can hold for `uid`, whose ancestors (in the decision's entities) are
    /// `ancestors`: exactly Cedar's `==`, `in`, `is` and `is ... in` on a known entity.
    pub(crate) fn may_match(&self, uid: &EntityUid, ancestors: &[&EntityUid]) -> bool {
        let within = |e: &EntityUid| uid == e || ancestors.contains(&e);
        match self {
            Self::Any => true,
            Self::Eq(e) => uid == e,
            Self::In(e) => within(e),
            Self::Is(t) => uid.type_name() == t,
            Self::IsIn(t, e) => uid.type_name() == t && within(e),
        }
    }
}

/// Entity literals in a policy's `when` / `unless` conditions. Scope literals are left out:
/// `principal == X` compares uids and `principal in X` reads the principal's ancestors, so
/// neither needs entity `X` itself. Cedar's `entity_literals` lists one occurrence per use,
/// scope included; removing one occurrence per scope use keeps a literal that appears in both.
pub(crate) fn condition_literals(p: &cedar_policy::Policy) -> Vec<EntityUid> {
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
