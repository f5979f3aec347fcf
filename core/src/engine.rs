//! Cedar's authorization rule over policies prepared once per snapshot.
//!
//! `cedar_policy::Authorizer::is_authorized` rebuilds every policy's condition expression
//! (principal scope ∧ action scope ∧ resource scope ∧ `when` ∧ ¬`unless`) for each evaluation,
//! runs it through the partial evaluator and converts the partial response into a response:
//! on the bench workload that bookkeeping costs about as much as evaluating the conditions.
//! Here each condition is built once, at load, by Cedar's own `condition()`, and evaluated by
//! Cedar's own `Evaluator`; only the rule that combines the results is ambit's, and it is
//! Cedar's rule (the Cedar specification's, as `PartialResponse` into `Response` applies it):
//!
//! - an evaluation error skips the policy (it counts as not satisfied) and is reported;
//! - the request is allowed when some permit is satisfied and no forbid is;
//! - the determining policies are the satisfied forbids when there are any, else the
//!   satisfied permits.
//!
//! `core/tests/differential.rs` compares decisions, reasons, error ids and error messages with
//! `cedar_policy::Authorizer` on random policy sets; Cedar's corpus runs through it too.

use crate::policy::Compiled;
use cedar_policy::EntityUid;
use cedar_policy_core::ast::{self, EntityUIDEntry, Literal, ValueKind};
use cedar_policy_core::evaluator::Evaluator;
use cedar_policy_core::extensions::Extensions;

/// Cedar's answer for one request.
#[derive(Debug, Default)]
pub(crate) struct Answer {
    pub(crate) allowed: bool,
    /// The determining policies, sorted.
    pub(crate) reasons: Vec<String>,
    /// `(policy id, message)` of every policy whose evaluation erred, sorted by id.
    pub(crate) errors: Vec<(String, String)>,
    /// Ids of the forbids among `errors`, sorted.
    pub(crate) erring_forbids: Vec<String>,
}

/// Evaluates `policies` for the request `principal`, `action`, `resource`, `context` over
/// `entities`, by Cedar's rule. With `trace`, records how each policy fared: this is the one
/// evaluation `explain` reports, so its trace cannot disagree with the decision. With
/// `scopes_hold`, the caller has established that every policy's principal, action and
/// resource scopes hold for this request, and only the rest of each condition is evaluated.
#[allow(clippy::too_many_arguments, reason = "one Cedar request, its store, its policies, and how to read them")]
pub(crate) fn is_authorized<'a>(
    principal: &EntityUid,
    action: &EntityUid,
    resource: &EntityUid,
    context: &cedar_policy::Context,
    entities: &cedar_policy::Entities,
    policies: impl Iterator<Item = &'a Compiled>,
    scopes_hold: bool,
    mut trace: Option<&mut Vec<crate::decision::PolicyTrace>>,
) -> Answer {
    let known = |uid: &EntityUid| EntityUIDEntry::known(AsRef::<ast::EntityUID>::as_ref(uid).clone(), None);
    let request = ast::Request::new_unchecked(
        known(principal),
        known(action),
        known(resource),
        Some(AsRef::<ast::Context>::as_ref(context).clone()),
    );
    let evaluator = Evaluator::new(request, entities.as_ref(), Extensions::all_available());
    let (mut permits, mut forbids) = (Vec::new(), Vec::new());
    let mut answer = Answer::default();
    for p in policies {
        let env = AsRef::<ast::Policy>::as_ref(&p.policy).env();
        let condition = if scopes_hold { &p.body } else { &p.condition };
        let satisfied = match evaluator.interpret(condition, env) {
            Ok(v) => match v.value_kind() {
                ValueKind::Lit(Literal::Bool(b)) => Ok(*b),
                // a condition is a conjunction (`&&`), whose value is always a boolean
                _ => Err("the policy's condition is not a boolean".to_owned()),
            },
            Err(e) => Err(crate::error::cedar_text(&e)),
        };
        if let Some(t) = trace.as_deref_mut() {
            t.push(crate::decision::PolicyTrace {
                id: p.id.clone(),
                effect: if p.forbid { "forbid" } else { "permit" }.to_owned(),
                outcome: match &satisfied {
                    Ok(true) => "satisfied",
                    Ok(false) => "not_satisfied",
                    Err(_) => "error",
                }
                .to_owned(),
                error: satisfied.as_ref().err().cloned(),
            });
        }
        match satisfied {
            Ok(true) => if p.forbid { &mut forbids } else { &mut permits }.push(p.id.clone()),
            Ok(false) => {}
            Err(message) => {
                answer.errors.push((p.id.clone(), message));
                if p.forbid {
                    answer.erring_forbids.push(p.id.clone());
                }
            }
        }
    }
    answer.allowed = !permits.is_empty() && forbids.is_empty();
    answer.reasons = if forbids.is_empty() { permits } else { forbids };
    answer.reasons.sort_unstable();
    answer.errors.sort_unstable();
    answer.erring_forbids.sort_unstable();
    answer
}
