//! Explanations: what `authorize` decides, plus per hop which policies applied, which were
//! satisfied or erred, and the rule that ended a deny, in words a person can act on.

use super::Authorizer;
use crate::decision::{Decision, DenyCause, PolicyTrace};
use crate::error::Result;
use crate::prepare::Prepared;
use crate::registry::Hop;
use crate::request::Request;
use cedar_policy::EntityUid;
use serde::{Deserialize, Serialize};

/// One hop, explained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HopExplanation {
    /// Position on the chain, root = 0: the same numbering as `Decision::deny_hop`.
    pub hop: usize,
    /// The principal of this hop.
    pub principal: String,
    /// Whether Cedar evaluated this hop.
    pub evaluated: bool,
    /// Whether the hop was allowed.
    pub allowed: bool,
    /// Every policy that applies to the action, and how it fared (empty when not evaluated).
    pub policies: Vec<PolicyTrace>,
}

/// What `authorize` decides, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    /// The decision, exactly as `authorize` gives it.
    pub decision: Decision,
    /// One line a person can act on.
    pub summary: String,
    /// Per hop.
    pub hops: Vec<HopExplanation>,
}

impl Authorizer {
    /// Decides `request` and explains the decision: the same evaluation `authorize` runs, with
    /// a trace of how each policy the index selected fared, hop by hop. An explanation is for
    /// people and tools; it writes no audit record.
    ///
    /// # Errors
    /// As [`Authorizer::authorize`].
    pub fn explain(&self, request: &Request) -> Result<Explanation> {
        let snap = self.snapshot.load();
        // one preparation and one evaluation: the decision explained is the decision made
        let p = crate::prepare::prepare(&snap, &self.config, request)?;
        let mut traces: crate::decide::Trace = Vec::new();
        let decision = crate::decide::decide(self.inputs(&snap, &p), &p, self.clock.now(), Some(&mut traces))?;
        let slice = &snap.index.slices[p.info.map_or(crate::index::FULL, |i| i.slice)];
        let hops: Vec<(EntityUid, Hop)> = decision
            .chain
            .iter()
            .filter_map(|c| c.parse::<EntityUid>().ok())
            .map(|u| match self.registry.get(&u) {
                Some(r) => (u, Hop::Agent(r)),
                None => (u, Hop::Static),
            })
            .collect();
        let mut out = Vec::with_capacity(decision.hops.len());
        for (i, h) in decision.hops.iter().enumerate() {
            let mut policies = if h.evaluated { traces.get(i).cloned().unwrap_or_default() } else { Vec::new() };
            policies.sort_by(|a, b| a.id.cmp(&b.id));
            out.push(HopExplanation {
                hop: i,
                principal: h.principal.clone(),
                evaluated: h.evaluated,
                allowed: h.allowed,
                policies,
            });
        }
        let summary = self.summary(&decision, &hops, &p, slice.all().len());
        Ok(Explanation { decision, summary, hops: out })
    }

    fn summary(&self, d: &Decision, hops: &[(EntityUid, Hop)], p: &Prepared, applicable: usize) -> String {
        let action = p.action.id().unescaped();
        if d.allowed {
            return format!(
                "allowed: every hop of the chain ({}) may `{action}` on `{}`; permitted by {}",
                d.chain.len(),
                p.resource,
                list(&d.reasons)
            );
        }
        let Some(cause) = d.deny_cause else { return "denied".to_owned() };
        let at =
            d.deny_hop.map_or(String::new(), |i| format!("hop {i} `{}`: ", d.chain.get(i).map_or("", String::as_str)));
        let agent = d.deny_hop.and_then(|i| hops.get(i)).and_then(|(_, h)| match h {
            Hop::Agent(a) => Some(a),
            Hop::Static => None,
        });
        let why = match cause {
            DenyCause::InvalidToken => "the credential is invalid".to_owned(),
            DenyCause::TokenExpired => "the credential has expired".to_owned(),
            DenyCause::UntrustedIssuer => "the credential's issuer is not trusted".to_owned(),
            DenyCause::DpopRequired => "the token is bound to a key and came without a DPoP proof".to_owned(),
            DenyCause::DpopInvalid => "the DPoP proof does not hold for this token and call".to_owned(),
            DenyCause::Replayed => "the DPoP proof was used before".to_owned(),
            DenyCause::StaleState => {
                "this process has not heard from its fleet feed within the staleness bound: a revocation elsewhere might not be known here"
                    .to_owned()
            }
            DenyCause::UnknownPrincipal => {
                "agent not found in the registry (never minted, or purged after expiry)".to_owned()
            }
            DenyCause::InvalidChain => {
                "the chain is not one path: this identity appears twice, or is an agent whose parent is not the hop before it"
                    .to_owned()
            }
            DenyCause::DepthExceeded => format!(
                "the chain has {} delegations, more than the limit of {}",
                d.chain.len().saturating_sub(1),
                self.config.max_depth
            ),
            DenyCause::Revoked => "revoked (revoke an identity and everything under it is cut off)".to_owned(),
            DenyCause::Expired => {
                agent.map_or("expired".to_owned(), |a| format!("expired at {} (now {})", a.expires_at, d.timestamp))
            }
            DenyCause::OutOfScope => {
                let scopes: Vec<String> = agent.map(|a| a.to_agent().scopes().to_vec()).unwrap_or_default();
                format!("action `{action}` is not in scopes [{}]", scopes.join(", "))
            }
            DenyCause::OutOfConfinement => {
                let res: Vec<String> =
                    agent.and_then(|a| a.resources.as_ref()).into_iter().flatten().map(ToString::to_string).collect();
                format!("resource `{}` is outside its confinement [{}]", p.resource, res.join(", "))
            }
            DenyCause::Forbidden => format!("forbidden by {}", list(&d.reasons)),
            DenyCause::NoPermit => {
                format!("no permit policy matched ({applicable} policies apply to action `{action}`)")
            }
            DenyCause::EvaluationError => {
                format!("forbid {} failed to evaluate, and fail-closed mode counts it as matched", list(&d.reasons))
            }
        };
        format!("denied ({cause}): {at}{why}")
    }
}

fn list(ids: &[String]) -> String {
    ids.iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(", ")
}
