//! Decisions for identities that travel: signed agent credentials and OAuth access tokens,
//! with their DPoP proofs; issuing, attenuating and revoking credentials.

use super::Authorizer;

use crate::agent::AgentSpec;
use crate::audit::AuditEvent;
use crate::decision::{self, Decision, DenyCause, EvaluationError};
use crate::error::{user_text, Error, Result};
use crate::prepare::{self};
use crate::request::Request;
use crate::snapshot::Snapshot;

impl Authorizer {
    /// A signed credential (compact JWS, EdDSA) for the live agent `agent`, signed with `key`:
    /// its whole chain (root first, each agent's task, scopes, confinement, attributes and
    /// lifetime), `iat`, `exp` (the agent's expiry) and a fresh `jti`. Any authorizer that
    /// trusts `key`'s issuer decides with it ([`Self::authorize_credential`]) as if the agent
    /// had been minted there. With `holder` (a key's RFC 7638 thumbprint,
    /// [`crate::IssuerKey::thumbprint`]) the credential carries `cnf.jkt` and is good only
    /// with a DPoP proof made by that key: a stolen copy is useless.
    ///
    /// # Errors
    /// `AMBIT_INVALID_REQUEST` for a malformed uid or holder thumbprint,
    /// `AMBIT_INVALID_DELEGATION` for an agent that is unknown, revoked or expired here.
    pub fn issue_credential(
        &self,
        agent: &str,
        key: &crate::credential::IssuerKey,
        holder: Option<&str>,
    ) -> Result<String> {
        let uid = crate::uid::parse_uid(agent, "agent")?;
        let snap = self.snapshot.load();
        let now = self.clock.now();
        let record = self.registry.get(&uid).ok_or_else(|| {
            Error::invalid_delegation(format!("unknown agent `{uid}`: only minted agents get credentials"))
        })?;
        let hops = self.registry.resolve(&record.chain, &snap)?;
        if let Some((cause, i)) = self.registry.check_live(&hops, &snap.entities, now) {
            return Err(Error::invalid_delegation(format!(
                "agent `{uid}` is not live: `{}` is {cause}",
                record.chain_text.get(i).map_or("", String::as_str)
            )));
        }
        crate::credential::issue(&record, &hops, key, holder, now)
    }

    /// Decides `action` on `resource` for the agent a signed credential carries: the
    /// credential is verified (size, `alg: EdDSA` only, a trusted issuer and key, the
    /// signature, the times with [`crate::credential::CLOCK_SKEW_SECONDS`] of skew, the depth),
    /// its agents are entered with the same attenuation rules as local mints, and the decision
    /// is then the one a locally minted agent gets, audited the same way. A credential that
    /// fails is a deny with `invalid_token`, `token_expired`, `untrusted_issuer`,
    /// `depth_exceeded` or `revoked` (its `jti`, or its root), never an error. A credential
    /// verified once is remembered by its hash until it expires. A credential bound to a
    /// holder key (`cnf.jkt`) needs `dpop`, a proof by that key for this call
    /// (`dpop_required`, `dpop_invalid`, `replayed`; see [`crate::dpop`]).
    ///
    /// # Errors
    /// As [`Self::authorize`], for a malformed action, resource or context.
    pub fn authorize_credential(
        &self,
        credential: &str,
        action: &str,
        resource: &str,
        context: serde_json::Value,
        dpop: Option<&crate::dpop::DpopProof>,
    ) -> Result<Decision> {
        let fleet = self.fleet_backend()?;
        let snap = self.snapshot.load();
        let now = self.clock.now();
        let admitted = self
            .credentials
            .admit(credential, &snap, &self.registry, self.config.max_depth, now)
            .and_then(|a| self.dpop.check(dpop, credential, a.jkt.as_deref(), now, fleet).map(|_| a.sub));
        match admitted {
            Ok(sub) => self.decide_audited(&snap, &Request::new(sub, action, resource).with_context(context)),
            Err(refusal) => self.refused(&snap, now, action, resource, context, refusal.cause, refusal.why),
        }
    }

    /// Decides `action` on `resource` for an OAuth access token (a JWT of a configured
    /// [`AuthorizerBuilder::oauth_issuer`]): verified (size, an allowed asymmetric `alg` that
    /// is its key's, a trusted issuer and `kid`, the signature, `aud`, `exp` / `nbf` / `iat`
    /// with the issuer's skew), its `sub` and nested `act` claims (RFC 8693, the outermost
    /// `act` the current actor) become the chain, each hop decided by Cedar; `scope` / `scp`
    /// narrow the actions (a bare action name or its uid must be among them: `out_of_scope`);
    /// `may_act` must allow the current actor; mapped claims are `context.token`. A token
    /// bound to a key (`cnf.jkt`, RFC 9449) needs `dpop`, a proof by that key for this call;
    /// `context.token.dpop_bound` says whether one was (when `context_claims` names it). A
    /// token that fails is a deny (`invalid_token`, `token_expired`, `untrusted_issuer`,
    /// `depth_exceeded`, `dpop_required`, `dpop_invalid`, `replayed`), never an error.
    ///
    /// # Errors
    /// As [`Self::authorize`], for a malformed action, resource or context.
    pub fn authorize_token(
        &self,
        token: &str,
        action: &str,
        resource: &str,
        context: serde_json::Value,
        dpop: Option<&crate::dpop::DpopProof>,
    ) -> Result<Decision> {
        let fleet = self.fleet_backend()?;
        let snap = self.snapshot.load();
        let now = self.clock.now();
        let admitted = crate::token::admit(token, &self.oauth.load(), self.config.max_depth, now)
            .and_then(|a| self.dpop.check(dpop, token, a.jkt.as_deref(), now, fleet).map(|bound| (a, bound)));
        let (admitted, bound) = match admitted {
            Ok(admitted) => admitted,
            Err(r) => return self.refused(&snap, now, action, resource, context, r.cause, r.why),
        };
        if let Some(scopes) = &admitted.scopes {
            let uid = prepare::resolve_action(&snap, action)?;
            let name = uid.id().unescaped().to_owned();
            let text = uid.to_string();
            if !scopes.iter().any(|s| s == &name || s == &text) {
                let why = format!("action `{}` is not in the token's scopes", user_text(action));
                return self.refused(&snap, now, action, resource, context, DenyCause::OutOfScope, why);
            }
        }
        let mut context = match context {
            serde_json::Value::Null => serde_json::Map::new(),
            serde_json::Value::Object(m) => m,
            _ => return Err(Error::invalid_request("context must be a JSON object")),
        };
        if let Some(mut claims) = admitted.token_context {
            if admitted.wants_dpop_bound {
                claims.insert(crate::token::DPOP_BOUND.into(), serde_json::Value::Bool(bound));
            }
            // the token's claims, never the caller's: a `token` the caller sent is replaced
            context.insert("token".into(), serde_json::Value::Object(claims));
        }
        // the chain's entities the token describes, for identities the entity store does not
        // know (a known one is decided as the store says): a description that does not fit the
        // schema is the token's fault, a deny
        let mut entities = Vec::with_capacity(admitted.entities.len());
        for (text, json) in admitted.entities {
            // registry agents bring their own attributes
            let known = snap
                .parse_uid_text(&text, "principal")
                .is_ok_and(|(uid, _)| snap.entities.get(&uid).is_some() || uid.type_name() == &snap.agent_type);
            if known {
                continue;
            }
            if let Err(e) = cedar_policy::Entity::from_json_value(json.clone(), snap.schema.as_ref()) {
                let why = format!(
                    "the token's claims do not describe `{text}` as the schema says: {}",
                    crate::error::error_chain(&e)
                );
                return self.refused(&snap, now, action, resource, context.into(), DenyCause::InvalidToken, why);
            }
            entities.push(json);
        }
        let mut chain = admitted.chain;
        let principal = chain.pop().unwrap_or_default();
        let request = Request::new(principal, action, resource)
            .on_behalf_of(chain)
            .with_context(context.into())
            .with_token_entities(entities);
        self.decide_audited(&snap, &request)
    }

    /// The fleet's backend, when this authorizer follows one (refused in a fork's child).
    fn fleet_backend(&self) -> Result<Option<&dyn crate::fleet::Backend>> {
        self.fleet.as_ref().map(|f| f.link.usable_backend()).transpose()
    }

    /// A deny for a credential or token that was refused before any chain was decided,
    /// audited as any decision.
    #[allow(clippy::too_many_arguments, reason = "one record of the refusal")]
    fn refused(
        &self,
        snap: &Snapshot,
        now: u64,
        action: &str,
        resource: &str,
        context: serde_json::Value,
        cause: DenyCause,
        why: String,
    ) -> Result<Decision> {
        let request = Request::new(String::new(), action, resource).with_context(context);
        let decision = Decision {
            allowed: false,
            decision_id: decision::new_decision_id(),
            deny_cause: Some(cause),
            deny_hop: None,
            reasons: Vec::new(),
            chain: Vec::new(),
            hops: Vec::new(),
            errors: vec![EvaluationError { policy_id: String::new(), message: why }],
            action: user_text(action),
            resource: user_text(resource),
            policy_version: snap.version.clone(),
            generation: snap.generation,
            timestamp: now,
        };
        if let Some(audit) = &self.audit {
            if audit.is_closed() {
                return Err(audit.closed_error());
            }
            audit.decision(&decision, request.context());
        }
        Ok(decision)
    }

    /// A narrower credential for a sub-agent of the agent `credential` carries: the
    /// credential is verified as [`Self::authorize_credential`] does, a child is minted under
    /// its agent with `spec` (its parent must be that agent, or empty), with the usual
    /// attenuation (scopes and confinement within the parent's, a lifetime clamped to the
    /// parent's, depth bounded), and its credential is signed with `key`. Verifiers check
    /// every link again, so `key`'s issuer must be one they trust. A credential bound to a
    /// holder key gives a child bound to the same key: narrowing never drops the binding.
    ///
    /// # Errors
    /// `AMBIT_INVALID_DELEGATION` when the credential is refused (its cause named), `spec`
    /// names another parent, or the child would widen its parent.
    pub fn attenuate(&self, credential: &str, spec: &AgentSpec, key: &crate::credential::IssuerKey) -> Result<String> {
        let snap = self.snapshot.load();
        let now = self.clock.now();
        let crate::credential::Admitted { sub, jkt } = self
            .credentials
            .admit(credential, &snap, &self.registry, self.config.max_depth, now)
            .map_err(|r| Error::invalid_delegation(format!("the credential is refused ({}): {}", r.cause, r.why)))?;
        if !spec.parent().is_empty() && spec.parent() != sub {
            return Err(Error::invalid_delegation(format!(
                "a credential for `{sub}` can only be narrowed for a child of `{sub}`, not of `{}`",
                user_text(spec.parent())
            )));
        }
        let child = self.mint_agent(&spec.clone().with_parent(sub))?;
        self.issue_credential(child.uid(), key, jkt.as_deref())
    }

    /// Revokes a credential by its `jti`: every later decision with it is denied `revoked`
    /// (the agents it carries stay as they are; revoke them by uid to cut them off).
    ///
    /// # Errors
    /// `AMBIT_FLEET` when the authorizer follows a fleet and the revocation cannot be
    /// appended to its feed (nothing changed).
    pub fn revoke_credential(&self, jti: &str) -> Result<()> {
        match &self.fleet {
            None => self.credentials.revoke(jti),
            Some(fleet) => {
                fleet.link.write(crate::fleet::Op::RevokeCredential { jti: jti.to_owned() })?;
            }
        }
        if let Some(audit) = &self.audit {
            audit.event(AuditEvent::Revoked { uid: format!("jti:{}", user_text(jti)), count: 0 });
        }
        Ok(())
    }
}
