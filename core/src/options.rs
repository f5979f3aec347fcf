//! The options every binding accepts by name, defined once (one serde type with real enums)
//! and mapped onto the builder in one place, so that `validation="off"` means the same thing
//! from Python, Node, the CLI and a vector file. Each binding converts its keyword arguments or
//! options object to this type (Node's camelCase keys to snake_case) and does nothing else:
//! unknown names, wrong types and out-of-range values are `AMBIT_CONFIG` errors from here.

use crate::audit::{Audit, AuditRecord, FileOptions, Overflow};
use crate::authorizer::AuthorizerBuilder;
use crate::config::{ErrorMode, Validation};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A binding's audit callback, called with every record on the writer thread.
pub type AuditCallback = Box<dyn FnMut(&AuditRecord) + Send>;

/// Named authorizer options (the wire form of the builder's common settings). `None` keeps
/// the core's default. The audit trail is configured when any `audit_*` field is set or the
/// binding passes a callback. Names and values are snake_case only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct AuthorizerOptions {
    /// `strict` (default), `permissive` or `off`.
    pub validation: Option<Validation>,
    /// `fail_closed` (default) or `cedar`.
    pub error_mode: Option<ErrorMode>,
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
    pub audit_overflow: Option<Overflow>,
    /// Queue length to the audit writer.
    pub audit_capacity: Option<usize>,
    /// Keep contexts in decision records (default: only their digest).
    pub audit_include_context: Option<bool>,
    /// Largest audit record kept whole, in bytes.
    pub audit_max_record_bytes: Option<usize>,
    /// Issuers whose signed agent credentials this authorizer accepts.
    pub trusted_issuers: Option<Vec<TrustedIssuerOptions>>,
    /// OAuth issuers whose access tokens `authorize_token` accepts (`issuer`, `audience`,
    /// `file` or `jwks`, `algorithms`, `clock_skew_seconds`, `principal_type`, `actor_type`,
    /// `context_claims`, `principal_claims`, `actor_claims`).
    pub oauth_issuers: Option<Vec<crate::token::OAuthIssuerOptions>>,
    /// Share the registry with a fleet through Redis (`redis_url`, `stream`, `staleness_ms`,
    /// `stale_static`, `checkpoint_every`, `connect_timeout_ms`).
    pub fleet: Option<crate::fleet::FleetOptions>,
    /// How DPoP proofs are judged (`required`, `max_age_seconds`, `clock_skew_seconds`,
    /// `replay_capacity`, `algorithms`).
    pub dpop: Option<crate::dpop::DpopOptions>,
}

/// One trusted credential issuer: its name and its public keys, as a JWKS file (`file`) or
/// inline (`jwks`), exactly one of the two.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TrustedIssuerOptions {
    /// The issuer name (`iss`) its credentials carry.
    pub issuer: String,
    /// Path of its JWKS file.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Its JWKS (`{"keys": [...]}`).
    #[serde(default)]
    pub jwks: Option<serde_json::Value>,
}

impl AuthorizerOptions {
    /// The options from their JSON form (an object of snake_case names; `null` values keep the
    /// default).
    ///
    /// # Errors
    /// `AMBIT_CONFIG` naming the option: an unknown name (with the names there are), a value
    /// of the wrong type, an unknown enum value (with the values there are), a negative or
    /// fractional count.
    pub fn from_json(value: &serde_json::Value) -> Result<Self> {
        if value.is_null() {
            return Ok(Self::default());
        }
        if !value.is_object() {
            return Err(Error::config("options must be an object of named options"));
        }
        Self::deserialize(value).map_err(|e| Error::config(format!("invalid options: {e}")))
    }

    /// Applies the options to `builder`; `callback`, when given, receives every audit record
    /// on the writer thread.
    ///
    /// # Errors
    /// `AMBIT_IO` / `AMBIT_AUDIT` when the audit log cannot be opened or continued.
    pub fn apply(self, mut builder: AuthorizerBuilder, callback: Option<AuditCallback>) -> Result<AuthorizerBuilder> {
        if let Some(v) = self.validation {
            builder = builder.validation(v);
        }
        if let Some(m) = self.error_mode {
            builder = builder.error_mode(m);
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
        if let Some(d) = self.dpop {
            builder = builder.dpop(d);
        }
        for o in self.oauth_issuers.unwrap_or_default() {
            builder = builder.oauth_issuer(o);
        }
        if let Some(f) = &self.fleet {
            f.open()?; // bad options are AMBIT_CONFIG here, before anything connects
            builder = builder.fleet(f);
        }
        for t in self.trusted_issuers.unwrap_or_default() {
            builder = match (t.file, t.jwks) {
                (Some(file), None) => builder.trust_issuer_file(t.issuer, file),
                (None, Some(jwks)) => builder.trust_issuer(t.issuer, &jwks.to_string()),
                _ => {
                    return Err(Error::config(format!(
                        "trusted issuer `{}` needs exactly one of `file` and `jwks`",
                        crate::error::user_text(&t.issuer)
                    )))
                }
            };
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
        if let Some(overflow) = self.audit_overflow {
            audit = audit.overflow(overflow);
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
    use serde_json::json;

    #[test]
    fn names_map_onto_the_builder_and_bad_options_are_config_errors() {
        let options = AuthorizerOptions::from_json(&json!({"validation": "off", "audit_capacity": 8})).unwrap();
        let builder = options.apply(Authorizer::builder().policies_str("permit(principal, action, resource);"), None);
        let a = builder.unwrap().build().unwrap();
        assert!(a.audit().is_some(), "an audit_* option turns the trail on");
        assert_eq!(AuthorizerOptions::from_json(&json!(null)).unwrap(), AuthorizerOptions::default());
        assert_eq!(
            AuthorizerOptions::from_json(&json!({"validation": null})).unwrap(),
            AuthorizerOptions::default(),
            "null keeps the default"
        );
        for (bad, says) in [
            (json!({"validation": "lenient"}), "lenient"),
            (json!({"error_mode": "yolo"}), "yolo"),
            (json!({"error_mode": "failClosed"}), "failClosed"), // snake_case only
            (json!({"audit_overflow": "spill"}), "spill"),
            (json!({"validaton": "off"}), "validaton"),
            (json!({"errorMode": "cedar"}), "errorMode"),
            (json!({"max_delegation_depth": -1}), "-1"),
            (json!({"max_delegation_depth": 2.5}), "2.5"),
            (json!({"audit_capacity": "8"}), "\"8\""),
            (json!({"trust_request_entities": 1}), "1"),
            (json!([1]), "object"),
        ] {
            let err = AuthorizerOptions::from_json(&bad).unwrap_err();
            assert_eq!(err.code(), "AMBIT_CONFIG", "{bad}");
            assert!(err.to_string().contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn the_wire_form_round_trips() {
        let options = AuthorizerOptions::from_json(
            &json!({"validation": "permissive", "error_mode": "cedar", "audit_overflow": "drop", "max_delegation_depth": 3}),
        )
        .unwrap();
        let back = serde_json::to_value(&options).unwrap();
        assert_eq!(back["error_mode"], "cedar");
        assert_eq!(AuthorizerOptions::from_json(&back).unwrap(), options);
    }
}
