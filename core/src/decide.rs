//! The decision: a pure function of a snapshot, the registry, the configuration, a prepared
//! request and the time. Chain resolution, liveness, scopes, confinement, then Cedar per hop,
//! root first; the first check that fails ends it with its cause and hop.

use crate::config::{Config, ErrorMode, Validation};
use crate::decision::{self, Decision, DenyCause, EvaluationError, Hop, PolicyTrace};
use crate::error::{Error, Result};
use crate::prepare::{enum_error, Prepared};
use crate::registry::{self, Registry};
use crate::snapshot::Snapshot;
use cedar_policy::EntityUid;
use std::collections::HashSet;
use std::sync::Arc;

/// Each evaluated hop's policy outcomes, root first: what `explain` reports.
pub(crate) type Trace = Vec<Vec<PolicyTrace>>;

/// What a decision reads besides the request: the policies, the agents and the settings.
#[derive(Clone, Copy)]
pub(crate) struct Inputs<'a> {
    pub(crate) snapshot: &'a Snapshot,
    pub(crate) registry: &'a Registry,
    pub(crate) config: &'a Config,
    /// The fleet feed is stale for this request: it denies `stale_state` before anything else.
    pub(crate) stale: bool,
}

/// Decides the prepared request `p` at `now`. With `trace`, each evaluated hop's policy
/// outcomes are appended to it (one list per hop, root first), from the very evaluation that
/// decides: an explanation cannot disagree with the decision it explains.
///
/// # Errors
/// `AMBIT_INVALID_REQUEST` for a chain the schema does not allow as principals,
/// `AMBIT_ENTITIES` when the decision's entities cannot be assembled.
pub(crate) fn decide(inputs: Inputs<'_>, p: &Prepared, now: u64, mut trace: Option<&mut Trace>) -> Result<Decision> {
    let Inputs { snapshot: snap, registry, config, stale } = inputs;
    if stale {
        let mut claimed = p.delegator_texts.clone();
        claimed.push(p.principal_text.clone());
        return Ok(Outcome::new(snap, p, claimed, now).deny(DenyCause::StaleState, None));
    }
    let (chain, hops, mut out) = match resolve_chain(snap, registry, config, p) {
        Ok((chain, chain_text, hops)) => (chain, hops, Outcome::new(snap, p, chain_text, now)),
        Err((cause, hop, chain_text)) => return Ok(Outcome::new(snap, p, chain_text, now).deny(cause, hop)),
    };
    // 2. every identity on the chain, and everything it descends from, is live
    if let Some((cause, i)) = registry.check_live(&hops, &snap.entities, now) {
        return Ok(out.deny(cause, Some(i)));
    }
    // 3. the action is within every agent's scopes
    let info = p.info;
    if let Some(i) = out_of_scope(p, &hops) {
        return Ok(out.deny(DenyCause::OutOfScope, Some(i)));
    }
    if snap.validation != Validation::Off {
        if let Some(allowed) = info.and_then(|i| i.principals.as_ref()) {
            if let Some(uid) = chain.iter().find(|u| !allowed.contains(u.type_name())) {
                return Err(Error::invalid_request(format!(
                    "principal type `{}` (of `{uid}` on the chain) is not valid for action `{}`",
                    uid.type_name(),
                    p.action
                )));
            }
        }
        if let Some(uid) = chain.iter().find(|u| snap.bad_enum_id(u)) {
            return Err(enum_error(uid));
        }
    }
    let slice = &snap.index.slices[info.map_or(crate::index::FULL, |i| i.slice)];
    // Only agents and per-request entities are not in the static store; without them the
    // store itself is the decision's entity set (what raw Cedar would use), at no cost.
    let sliced;
    let entities = if p.entities.is_empty() && hops.iter().all(|(_, h)| matches!(h, registry::Hop::Static)) {
        &snap.entities
    } else {
        sliced = crate::slice::entity_slice(snap, registry, &hops, p, &slice.literals)?;
        sliced.get()
    };
    // trusted request entities may name parents of their own: revocation reaches through them
    if !p.entities.is_empty() {
        for (i, (uid, hop)) in hops.iter().enumerate() {
            if matches!(hop, registry::Hop::Static) && registry.static_cut_off(uid, entities) {
                return Ok(out.deny(DenyCause::Revoked, Some(i)));
            }
        }
    }
    // 3b. the resource is within every agent's confinement
    for (i, (_, hop)) in hops.iter().enumerate() {
        if let registry::Hop::Agent(a) = hop {
            if let Some(allowed) = &a.resources {
                let inside = allowed.iter().any(|r| r == &p.resource || entities.is_ancestor_of(r, &p.resource));
                if !inside {
                    return Ok(out.deny(DenyCause::OutOfConfinement, Some(i)));
                }
            }
        }
    }
    // 4. Cedar decides each hop, root first
    for (i, uid) in chain.iter().enumerate() {
        let policies = slice.policies_for(uid, &p.resource, entities);
        let hop_trace = trace.as_deref_mut().map(|t| {
            t.resize_with(i + 1, Vec::new);
            &mut t[i]
        });
        let answer = crate::engine::is_authorized(
            uid,
            &p.action,
            &p.resource,
            &p.context,
            entities,
            policies,
            slice.scopes_hold(),
            hop_trace,
        );
        let hop = evaluate_hop(answer, config.error_mode);
        out.record_hop(i, hop.0);
        if let Some(cause) = hop.1 {
            return Ok(out.deny(cause, Some(i)));
        }
    }
    // 5. a revocation that landed while Cedar was deciding still wins
    if let Some((cause, i)) = registry.check_live(&hops, &snap.entities, now) {
        return Ok(out.deny(cause, Some(i)));
    }
    Ok(out.allow())
}

/// The identity checks of a decision without its policies: the chain (steps 1 to 3 of
/// the decision: resolution, liveness, scopes), not the context, the confinement or
/// Cedar. `Some(cause)` means every call of this action by this principal (and these
/// delegators) is denied now, whatever its context; `None` means the policies decide.
/// Tool listings use it (`tools/list` shows only what an agent may call). Not audited:
/// it decides nothing.
///
pub(crate) fn precheck(inputs: Inputs<'_>, p: &Prepared, now: u64) -> Option<DenyCause> {
    let Inputs { snapshot: snap, registry, config, stale } = inputs;
    if stale {
        return Some(DenyCause::StaleState);
    }
    let hops = match resolve_chain(snap, registry, config, p) {
        Ok((_, _, hops)) => hops,
        Err((cause, _, _)) => return Some(cause),
    };
    if let Some((cause, _)) = registry.check_live(&hops, &snap.entities, now) {
        return Some(cause);
    }
    out_of_scope(p, &hops).map(|_| DenyCause::OutOfScope)
}

/// The chain a request is decided over, root first: the explicit delegators, then the
/// principal, where every agent, wherever it appears, brings its whole registry ancestry.
/// The result is one consistent path: each agent's parent is the hop right before it.
/// Linear in the chain, which is bounded by the depth limit before anything is looked up.
///
/// A request that cannot be resolved is a denial: (cause, hop, the chain as claimed).
fn resolve_chain(snap: &Snapshot, registry: &Registry, config: &Config, p: &Prepared) -> ChainResult {
    let max_hops = (config.max_depth as usize).saturating_add(1);
    let claimed = || {
        let mut texts = p.delegator_texts.clone();
        texts.push(p.principal_text.clone());
        texts
    };
    if p.too_deep || p.delegators.len() >= max_hops {
        return Err((DenyCause::DepthExceeded, None, claimed()));
    }
    let mut chain: Vec<EntityUid> = Vec::with_capacity(p.delegators.len() + 4);
    let mut texts: Vec<String> = Vec::with_capacity(p.delegators.len() + 4);
    let mut hops: Vec<(EntityUid, registry::Hop)> = Vec::with_capacity(p.delegators.len() + 4);
    let named = p.delegators.iter().zip(&p.delegator_texts).chain(std::iter::once((&p.principal, &p.principal_text)));
    for (uid, text) in named {
        if snap.is_minted(uid) {
            let Some(record) = registry.get(uid) else {
                return Err((DenyCause::UnknownPrincipal, Some(chain.len()), claimed()));
            };
            // where the agent's ancestry joins the chain so far: at its start, or right
            // after the hop before it (which must then be one of its ancestors)
            let start = match chain.last() {
                None => 0,
                Some(last) => match record.chain.iter().position(|a| a == last) {
                    Some(j) if j + 1 < record.chain.len() && chain.ends_with(&record.chain[..=j]) => j + 1,
                    _ => return Err((DenyCause::InvalidChain, Some(chain.len()), claimed())),
                },
            };
            for (k, (a, t)) in record.chain.iter().zip(&record.chain_text).enumerate().skip(start) {
                let hop = if k + 1 == record.chain.len() {
                    registry::Hop::Agent(Arc::clone(&record))
                } else if snap.is_minted(a) {
                    match registry.get(a) {
                        Some(r) => registry::Hop::Agent(r),
                        None => return Err((DenyCause::UnknownPrincipal, Some(chain.len()), claimed())),
                    }
                } else {
                    registry::Hop::Static
                };
                chain.push(a.clone());
                texts.push(t.clone());
                hops.push((a.clone(), hop));
            }
        } else {
            chain.push(uid.clone());
            texts.push(text.clone());
            hops.push((uid.clone(), registry::Hop::Static));
        }
        if chain.len() > max_hops {
            return Err((DenyCause::DepthExceeded, None, texts));
        }
    }
    // no identity twice (a cycle); the chain is at most max_hops long
    let repeated = if chain.len() <= 16 {
        (1..chain.len()).find(|&i| chain[..i].contains(&chain[i]))
    } else {
        let mut seen = HashSet::with_capacity(chain.len());
        chain.iter().position(|u| !seen.insert(u))
    };
    if let Some(i) = repeated {
        return Err((DenyCause::InvalidChain, Some(i), texts));
    }
    Ok((chain, texts, hops))
}

/// A resolved chain (uids, their texts, their hops), or why there is none.
type ChainResult = std::result::Result<
    (Vec<EntityUid>, Vec<String>, Vec<(EntityUid, registry::Hop)>),
    (DenyCause, Option<usize>, Vec<String>),
>;

/// The first hop (if any) that is an agent whose scopes do not hold the action.
fn out_of_scope(p: &Prepared, hops: &[(EntityUid, registry::Hop)]) -> Option<usize> {
    let own_name = [p.action_text.clone()];
    let names: &[String] = p.info.map_or(&own_name, |i| &i.scope_names);
    hops.iter().position(|(_, hop)| match hop {
        registry::Hop::Agent(a) => !names.iter().any(|n| a.scopes.contains(n)),
        registry::Hop::Static => false,
    })
}

/// Cedar's answer for one hop, with ambit's error mode applied.
fn evaluate_hop(answer: crate::engine::Answer, mode: ErrorMode) -> (Hop, Option<DenyCause>) {
    let crate::engine::Answer { allowed: cedar_allows, mut reasons, errors, erring_forbids } = answer;
    let errors: Vec<EvaluationError> =
        errors.into_iter().map(|(policy_id, message)| EvaluationError { policy_id, message }).collect();
    let (allowed, cause) = if mode == ErrorMode::FailClosed && !erring_forbids.is_empty() {
        reasons = erring_forbids;
        (false, Some(DenyCause::EvaluationError))
    } else if cedar_allows {
        (true, None)
    } else if reasons.is_empty() {
        (false, Some(DenyCause::NoPermit))
    } else {
        (false, Some(DenyCause::Forbidden))
    };
    (Hop { principal: String::new(), allowed, evaluated: true, reasons, errors }, cause)
}

/// A decision under construction.
struct Outcome {
    decision: Decision,
}

impl Outcome {
    fn new(snap: &Snapshot, p: &Prepared, chain: Vec<String>, now: u64) -> Self {
        let hops = chain
            .iter()
            .map(|u| Hop {
                principal: u.clone(),
                allowed: false,
                evaluated: false,
                reasons: Vec::new(),
                errors: Vec::new(),
            })
            .collect();
        Self {
            decision: Decision {
                allowed: false,
                decision_id: decision::new_decision_id(),
                deny_cause: None,
                deny_hop: None,
                reasons: Vec::new(),
                chain,
                hops,
                errors: Vec::new(),
                action: p.action_text.clone(),
                resource: p.resource_text.clone(),
                policy_version: snap.version.clone(),
                generation: snap.generation,
                timestamp: now,
            },
        }
    }

    fn record_hop(&mut self, i: usize, mut hop: Hop) {
        if let Some(slot) = self.decision.hops.get_mut(i) {
            hop.principal = std::mem::take(&mut slot.principal);
            self.decision.errors.extend(hop.errors.iter().cloned());
            *slot = hop;
        }
    }

    fn deny(mut self, cause: DenyCause, hop: Option<usize>) -> Decision {
        self.decision.allowed = false;
        self.decision.deny_cause = Some(cause);
        self.decision.deny_hop = hop;
        if matches!(cause, DenyCause::Forbidden | DenyCause::EvaluationError) {
            if let Some(h) = hop.and_then(|i| self.decision.hops.get(i)) {
                self.decision.reasons = h.reasons.clone();
            }
        }
        self.decision
    }

    fn allow(mut self) -> Decision {
        let mut reasons: Vec<String> = Vec::new();
        for h in &self.decision.hops {
            for r in &h.reasons {
                if !reasons.contains(r) {
                    reasons.push(r.clone());
                }
            }
        }
        self.decision.allowed = true;
        self.decision.reasons = reasons;
        self.decision
    }
}
