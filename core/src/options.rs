//! The options every binding accepts by name, mapped onto the builder in one place so that
//! `validation="off"` means the same thing from Python, Node and the CLI.

use crate::audit::{Audit, AuditRecord, FileOptions, Overflow};
use crate::authorizer::AuthorizerBuilder;
use crate::error::Result;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A binding's audit callback, called with every record on the writer thread.
pub type AuditCallback = Box<dyn FnMut(&AuditRecord) + Send>;

/// Named authorizer options (the wire form of the builder's common settings). `None` keeps
/// the core's default. The audit trail is configured when any `audit_*` field is set or the
/// binding passes a callback.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct AuthorizerOptions {
    /// `strict` (default), `permissive` or `off`.
    pub validation: Option<String>,
    /// `fail_closed` (default) or `cedar` (also `failClosed`).
    pub error_mode: Option<String>,
    /// Most delegations in a chain.
    pub max_delegation_depth: Option<u32>,
    /// Let per-request entities join static entities or agents, or be principals (a trust
    /// decision: see `AuthorizerBuilder::trust_request_entities`).
    pub trust_request_entities: Option<bool>,
    /// Whether static entities must fit the schema (default true).
    pub validate_entities: Option<bool>,
    /// The entity type of agents (default: the schema's one type named `Agent`).
    pub agent_type: Option<String>,
    /// Path of the hash-chained JSONL audit log.
    pub audit_file: Option<PathBuf>,
    /// `block` (default) or `drop`.
    pub audit_overflow: Option<String>,
    /// Queue length to the audit writer.
    pub audit_capacity: Option<usize>,
    /// Keep contexts in decision records (default: only their digest).
    pub audit_include_context: Option<bool>,
    /// Largest audit record kept whole, in bytes.
    pub audit_max_record_bytes: Option<usize>,
}

impl AuthorizerOptions {
    /// Applies the options to `builder`; `callback`, when given, receives every audit record
    /// on the writer thread.
    ///
    /// # Errors
    /// `AMBIT_INVALID_REQUEST` for an unknown validation, error mode or overflow name;
    /// `AMBIT_IO` / `AMBIT_AUDIT` when the audit log cannot be opened or continued.
    pub fn apply(self, mut builder: AuthorizerBuilder, callback: Option<AuditCallback>) -> Result<AuthorizerBuilder> {
        if let Some(v) = &self.validation {
            builder = builder.validation(v.parse()?);
        }
        if let Some(m) = &self.error_mode {
            builder = builder.error_mode(m.parse()?);
        }
        if let Some(d) = self.max_delegation_depth {
            builder = builder.max_delegation_depth(d);
        }
        if let Some(t) = self.trust_request_entities {
            builder = builder.trust_request_entities(t);
        }
        if let Some(v) = self.validate_entities {
            builder = builder.validate_entities(v);
        }
        if let Some(t) = self.agent_type {
            builder = builder.agent_type(t);
        }
        let wants_audit = self.audit_file.is_some()
            || self.audit_capacity.is_some()
            || self.audit_overflow.is_some()
            || self.audit_include_context.is_some()
            || self.audit_max_record_bytes.is_some()
            || callback.is_some();
        if !wants_audit {
            return Ok(builder);
        }
        let mut audit = Audit::builder();
        if let Some(path) = self.audit_file {
            audit = audit.file(path, FileOptions::default());
        }
        if let Some(n) = self.audit_capacity {
            audit = audit.capacity(n);
        }
        if let Some(include) = self.audit_include_context {
            audit = audit.include_context(include);
        }
        if let Some(n) = self.audit_max_record_bytes {
            audit = audit.max_record_bytes(n);
        }
        if let Some(overflow) = &self.audit_overflow {
            audit = audit.overflow(overflow.parse::<Overflow>()?);
        }
        if let Some(f) = callback {
            audit = audit.callback(f);
        }
        Ok(builder.audit(audit.build()?))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]
    use super::AuthorizerOptions;
    use crate::Authorizer;

    #[test]
    fn names_map_onto_the_builder_and_bad_names_are_coded_errors() {
        let options: AuthorizerOptions =
            serde_json::from_value(serde_json::json!({"validation": "off", "audit_capacity": 8})).unwrap();
        let builder = options.apply(Authorizer::builder().policies_str("permit(principal, action, resource);"), None);
        let a = builder.unwrap().build().unwrap();
        assert!(a.audit().is_some(), "an audit_* option turns the trail on");
        for bad in [
            serde_json::json!({"validation": "lenient"}),
            serde_json::json!({"error_mode": "yolo"}),
            serde_json::json!({"audit_overflow": "spill"}),
        ] {
            let options: AuthorizerOptions = serde_json::from_value(bad).unwrap();
            let err = options.apply(Authorizer::builder(), None).unwrap_err();
            assert_eq!(err.code(), "AMBIT_INVALID_REQUEST");
        }
        assert!(serde_json::from_value::<AuthorizerOptions>(serde_json::json!({"validaton": "off"})).is_err());
    }
}
