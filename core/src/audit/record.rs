//! The audit event model: what each record says (decisions, lifecycle events), and the record
//! with its sequence number and hash.

use super::hex;
use crate::canonical::canonical;
use crate::decision::{Decision, DenyCause, Hop};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditEvent {
    /// A decision.
    Decision {
        /// The decision id.
        decision_id: String,
        /// Whether it allowed.
        allowed: bool,
        /// Why it denied.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deny_cause: Option<DenyCause>,
        /// The acting principal.
        principal: String,
        /// Root first.
        chain: Vec<String>,
        /// The action uid.
        action: String,
        /// The resource uid.
        resource: String,
        /// Determining policies.
        reasons: Vec<String>,
        /// Per-hop outcomes (determining policies and errors).
        hops: Vec<Hop>,
        /// The policy version that decided.
        policy_version: String,
        /// SHA-256 of the canonical context JSON.
        context_digest: String,
        /// The context itself, only when the application opted in.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        context: Option<Value>,
    },
    /// An agent was minted.
    AgentMinted {
        /// The new agent.
        uid: String,
        /// Who minted it.
        parent: String,
        /// Its task.
        task: String,
        /// Its scopes.
        scopes: Vec<String>,
        /// Its expiry (epoch seconds).
        expires_at: u64,
    },
    /// An identity was revoked.
    Revoked {
        /// The revoked identity.
        uid: String,
        /// Identities cut off, the identity included.
        count: usize,
    },
    /// A template was linked at run time.
    Linked {
        /// The new policy's id.
        link_id: String,
        /// The template.
        template_id: String,
        /// The slot values.
        args: std::collections::BTreeMap<String, String>,
        /// The policy version it made.
        version: String,
    },
    /// A run-time link was removed.
    Unlinked {
        /// The removed policy's id.
        link_id: String,
        /// The policy version it made.
        version: String,
    },
    /// A person or service was reinstated.
    Reinstated {
        /// The reinstated identity.
        uid: String,
    },
    /// A reload succeeded.
    ReloadSucceeded {
        /// The new version.
        version: String,
        /// The new generation.
        generation: u64,
    },
    /// A reload failed; the last good policies kept serving.
    ReloadFailed {
        /// The error code.
        code: String,
        /// The error.
        error: String,
    },
    /// A request could not be decided (malformed, over a limit): what hostile callers send.
    RequestFailed {
        /// The error code.
        code: String,
        /// The error.
        error: String,
        /// The principal as given (cut to 256 bytes).
        principal: String,
        /// The action as given (cut to 256 bytes).
        action: String,
        /// The resource as given (cut to 256 bytes).
        resource: String,
    },
    /// The trail was closed cleanly (`close`, or the authorizer dropped): nothing was handed off
    /// after this record. A log whose last record is not this one was cut short or is still
    /// being written.
    Closed {
        /// Records dropped over the trail's life (overflow policy `drop`).
        dropped: u64,
    },
    /// Records were dropped because the queue was full (overflow policy `drop`).
    RecordsDropped {
        /// Total dropped so far.
        total: u64,
    },
    /// A torn (incomplete) last line was found in the log on open and cut off.
    TornTailDiscarded {
        /// Bytes discarded.
        bytes: u64,
    },
    /// A record larger than the record size limit ([`AuditBuilder::max_record_bytes`]), kept in
    /// short form: what it was, its size and the digest of its full canonical JSON, and for a
    /// decision its id and outcome. Nothing is lost silently and no record grows without bound.
    Oversize {
        /// The `kind` of the full record.
        original_kind: String,
        /// Bytes of the full record.
        bytes: u64,
        /// The limit it exceeded.
        limit: u64,
        /// `sha256:` of the full record's canonical JSON (without `seq`, `ts`, `prev`, `hash`).
        digest: String,
        /// The decision id, for a decision.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        decision_id: Option<String>,
        /// Whether it allowed, for a decision.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        allowed: Option<bool>,
        /// Why it denied, for a denied decision.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deny_cause: Option<DenyCause>,
    },
}

impl AuditEvent {
    /// The `kind` tag this event has in a record.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Decision { .. } => "decision",
            Self::AgentMinted { .. } => "agent_minted",
            Self::Revoked { .. } => "revoked",
            Self::Reinstated { .. } => "reinstated",
            Self::Linked { .. } => "linked",
            Self::Unlinked { .. } => "unlinked",
            Self::ReloadSucceeded { .. } => "reload_succeeded",
            Self::ReloadFailed { .. } => "reload_failed",
            Self::RequestFailed { .. } => "request_failed",
            Self::Closed { .. } => "closed",
            Self::RecordsDropped { .. } => "records_dropped",
            Self::TornTailDiscarded { .. } => "torn_tail_discarded",
            Self::Oversize { .. } => "oversize",
        }
    }

    /// The short form of an event whose record is `bytes` long, over `limit`.
    pub(crate) fn oversize(&self, bytes: usize, limit: usize) -> Self {
        let full = serde_json::to_value(self).unwrap_or(Value::Null);
        let digest = format!("sha256:{}", hex(&Sha256::digest(canonical(&full).as_bytes())));
        let (decision_id, allowed, deny_cause) = match self {
            Self::Decision { decision_id, allowed, deny_cause, .. } => {
                (Some(decision_id.clone()), Some(*allowed), *deny_cause)
            }
            _ => (None, None, None),
        };
        Self::Oversize {
            original_kind: self.kind().to_owned(),
            bytes: bytes as u64,
            limit: limit as u64,
            digest,
            decision_id,
            allowed,
            deny_cause,
        }
    }
}

/// One record of the trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// Milliseconds since the epoch.
    pub ts: u64,
    /// The event.
    #[serde(flatten)]
    pub event: AuditEvent,
    /// Hash of the previous record ([`GENESIS`] for the first).
    pub prev: String,
    /// This record's hash.
    pub hash: String,
}

pub(crate) fn decision_event(d: &Decision, context: Value, include: bool) -> AuditEvent {
    let digest = hex(&Sha256::digest(canonical(&context).as_bytes()));
    AuditEvent::Decision {
        decision_id: d.decision_id.clone(),
        allowed: d.allowed,
        deny_cause: d.deny_cause,
        principal: d.chain.last().cloned().unwrap_or_default(),
        chain: d.chain.clone(),
        action: d.action.clone(),
        resource: d.resource.clone(),
        reasons: d.reasons.clone(),
        hops: d.hops.clone(),
        policy_version: d.policy_version.clone(),
        context_digest: format!("sha256:{digest}"),
        context: include.then_some(context),
    }
}
