//! ambit's JSON wire format: the one set of shapes the CLI, the bindings and the shared test
//! vectors use. Every type here is serde; the bindings convert and call, never reshape.

pub use crate::agent::{Agent, AgentSpec, DelegationNode};
pub use crate::audit::{AuditEvent, AuditRecord, VerifyReport};
pub use crate::authorizer::ReloadOutcome;
pub use crate::authorizer::{Explanation, HopExplanation};
pub use crate::decision::PolicyTrace;
pub use crate::decision::{Decision, DenyCause, EvaluationError, Hop};
pub use crate::fleet::{FleetOptions, FleetStatus};
pub use crate::link::Link;
pub use crate::options::{AuditCallback, AuthorizerOptions, TrustedIssuerOptions};
pub use crate::request::Request;
pub use crate::token::OAuthIssuerOptions;
#[cfg(feature = "testing")]
pub use crate::vector::{Expect, IssueStep, MintStep, SignStep, Step, VectorCase, VectorFile};

pub use crate::limit::MAX_JSON_DEPTH;

/// The fields of a request in the wire format (snake_case; camelCase in Node's objects): a
/// request with any other field is refused, so a misspelt `contxt` cannot decide without the
/// context a forbid reads. The bindings that read host dicts and objects check against this.
pub const REQUEST_FIELDS: &[&str] = &["principal", "action", "resource", "context", "entities", "on_behalf_of"];

/// What a reload attempt came to, as a watch callback and an off-thread reload report it in
/// every language: `{ok: true, version, generation}` or `{ok: false, code, message}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReloadReport {
    /// Whether the new sources serve now (on `false` the last good snapshot still does).
    pub ok: bool,
    /// The version serving after a successful reload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The generation serving after a successful reload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    /// The stable code of a failed reload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The message of a failed reload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl From<&crate::Result<ReloadOutcome>> for ReloadReport {
    fn from(outcome: &crate::Result<ReloadOutcome>) -> Self {
        match outcome {
            Ok(o) => Self {
                ok: true,
                version: Some(o.version.clone()),
                generation: Some(o.generation),
                code: None,
                message: None,
            },
            Err(e) => Self {
                ok: false,
                version: None,
                generation: None,
                code: Some(e.code().to_owned()),
                message: Some(e.to_string()),
            },
        }
    }
}

/// The error a binding gives for a host value it cannot convert faithfully (bytes, a lone
/// surrogate, an integer outside Cedar's 64-bit range, an object that is not JSON).
pub fn invalid_value(message: impl Into<String>) -> crate::Error {
    crate::Error::invalid_request(message)
}

/// The error a binding gives when what it expects of the core is missing (a bug, never input):
/// `AMBIT_INTERNAL`, failing closed.
pub fn internal(message: impl Into<String>) -> crate::Error {
    crate::Error::internal(message)
}

/// The error a binding gives for a host value over a limit while it converts it (deeper than
/// [`MAX_JSON_DEPTH`], more items than the request limit allows).
pub fn over_limit(message: impl Into<String>) -> crate::Error {
    crate::Error::limit(message)
}

/// The error a binding gives for an option it cannot even hand to [`AuthorizerOptions`] (a
/// path that is not Unicode, a clock that is not a clock): `AMBIT_CONFIG`.
pub fn config_error(message: impl Into<String>) -> crate::Error {
    crate::Error::config(message)
}

/// The keys of a camelCase options object (`errorMode`, `auditFile`, and those of nested
/// option objects such as `fleet: {redisUrl}`) in snake_case (`error_mode`, `audit_file`,
/// `redis_url`), as [`AuthorizerOptions::from_json`] reads them; values, and objects inside
/// lists (an issuer's JWKS), are untouched (values are snake_case in every language). A key already in snake_case stays as it
/// is; two keys that meet (`errorMode` and `error_mode`) are an `AMBIT_CONFIG` error.
///
/// # Errors
/// `AMBIT_CONFIG` when two keys name the same option.
pub fn snake_case_keys(
    object: serde_json::Map<String, serde_json::Value>,
) -> crate::Result<serde_json::Map<String, serde_json::Value>> {
    let mut out = serde_json::Map::with_capacity(object.len());
    for (key, value) in object {
        let mut snake = String::with_capacity(key.len() + 4);
        for c in key.chars() {
            if c.is_ascii_uppercase() {
                snake.push('_');
                snake.push(c.to_ascii_lowercase());
            } else {
                snake.push(c);
            }
        }
        // nested option groups (`fleet: {redisUrl}`, `oauthIssuers: [{principalType}]`) too;
        // a JWKS is data, left as it is
        let value = if snake == "jwks" { value } else { snake_values(value)? };
        if out.insert(snake.clone(), value).is_some() {
            return Err(crate::Error::config(format!(
                "option `{}` is given twice (as `{}` and in another spelling)",
                crate::error::user_text(&snake),
                crate::error::user_text(&key)
            )));
        }
    }
    Ok(out)
}

fn snake_values(value: serde_json::Value) -> crate::Result<serde_json::Value> {
    Ok(match value {
        serde_json::Value::Object(inner) => serde_json::Value::Object(snake_case_keys(inner)?),
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(snake_values).collect::<crate::Result<_>>()?)
        }
        v => v,
    })
}

/// The keys of a core shape (a fleet status, say) in camelCase, for Node: `heard_ms_ago` ->
/// `heardMsAgo`, in nested objects too; values untouched.
pub fn camel_case_keys(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(object) => serde_json::Value::Object(
            object
                .into_iter()
                .map(|(k, v)| {
                    let mut camel = String::with_capacity(k.len());
                    let mut upper = false;
                    for c in k.chars() {
                        if c == '_' {
                            upper = true;
                        } else if upper {
                            camel.push(c.to_ascii_uppercase());
                            upper = false;
                        } else {
                            camel.push(c);
                        }
                    }
                    (camel, camel_case_keys(v))
                })
                .collect(),
        ),
        serde_json::Value::Array(items) => serde_json::Value::Array(items.into_iter().map(camel_case_keys).collect()),
        v => v,
    }
}

/// Text from UTF-16 code units, as JavaScript strings arrive, refusing lone surrogates. A lossy
/// conversion would turn every ill-formed string into the same U+FFFD text, so two different
/// principals could become one uid; ambit rejects them instead.
///
/// # Errors
/// `AMBIT_INVALID_REQUEST` naming `what` and the position of the first lone surrogate.
pub fn text_from_utf16(units: &[u16], what: &str) -> crate::Result<String> {
    String::from_utf16(units).map_err(|_| {
        let at = char::decode_utf16(units.iter().copied()).position(|c| c.is_err()).unwrap_or(0);
        crate::Error::invalid_request(format!("{what} is not well-formed Unicode: a lone surrogate at character {at}"))
    })
}

/// A JSON value of shape `T` from text, as the Node package sends contexts and entities
/// (`JSON.stringify` output, which escapes lone surrogates rather than dropping them).
///
/// # Errors
/// `AMBIT_INVALID_REQUEST` naming `what`, when the text is not JSON of that shape (an escaped
/// lone surrogate included: serde_json refuses it).
pub fn json_from_text<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> crate::Result<T> {
    serde_json::from_str(text).map_err(|e| crate::Error::invalid_request(format!("{what} could not be read: {e}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]
    use super::{json_from_text, snake_case_keys, text_from_utf16, Request, REQUEST_FIELDS};

    #[test]
    fn request_fields_are_exactly_what_the_wire_format_accepts() {
        // every listed field is accepted, together, and a full request writes exactly them
        let full = serde_json::json!({"principal": "U::\"a\"", "action": "x", "resource": "R::\"r\"",
            "context": {"n": 1}, "entities": [{"uid": {"type": "T", "id": "t"}, "attrs": {}, "parents": []}],
            "on_behalf_of": ["U::\"b\""]});
        let keys: Vec<&str> = full.as_object().unwrap().keys().map(String::as_str).collect();
        let mut listed = REQUEST_FIELDS.to_vec();
        listed.sort_unstable();
        let mut given = keys.clone();
        given.sort_unstable();
        assert_eq!(listed, given);
        let r: Request = serde_json::from_value(full).unwrap();
        let written = serde_json::to_value(&r).unwrap();
        let mut written: Vec<String> = written.as_object().unwrap().keys().cloned().collect();
        written.sort_unstable();
        assert_eq!(written, listed);
        // and anything else is refused
        let misspelt =
            serde_json::json!({"principal": "U::\"a\"", "action": "x", "resource": "R::\"r\"", "contxt": {}});
        assert!(serde_json::from_value::<Request>(misspelt).is_err());
    }

    #[test]
    fn camel_case_option_keys_become_snake_case_and_clashes_are_config_errors() {
        let m = serde_json::json!({"errorMode": "cedar", "auditMaxRecordBytes": 9, "validation": "off"});
        let out = snake_case_keys(m.as_object().unwrap().clone()).unwrap();
        assert_eq!(
            serde_json::Value::Object(out),
            serde_json::json!({"error_mode": "cedar", "audit_max_record_bytes": 9, "validation": "off"})
        );
        let clash = serde_json::json!({"errorMode": "cedar", "error_mode": "cedar"});
        assert_eq!(snake_case_keys(clash.as_object().unwrap().clone()).unwrap_err().code(), "AMBIT_CONFIG");
    }

    #[test]
    fn json_text_with_a_lone_surrogate_is_refused() {
        let ok: serde_json::Value = json_from_text(r#"{"a":"\ud83d\ude00"}"#, "context").unwrap();
        assert_eq!(ok["a"], "😀");
        for bad in [r#"{"a":"\ud800"}"#, "{", "[1,]", ""] {
            let err = json_from_text::<serde_json::Value>(bad, "context").unwrap_err();
            assert_eq!(err.code(), "AMBIT_INVALID_REQUEST");
            assert!(err.to_string().starts_with("context could not be read"), "{err}");
        }
        let err = json_from_text::<Vec<serde_json::Value>>("{}", "entities").unwrap_err();
        assert!(err.to_string().starts_with("entities could not be read"), "{err}");
    }

    #[test]
    fn lone_surrogates_are_refused_not_replaced() {
        let good: Vec<u16> = "User::\"\u{fffd}é😀\"".encode_utf16().collect();
        assert_eq!(text_from_utf16(&good, "principal").unwrap(), "User::\"\u{fffd}é😀\"");
        for bad in [vec![0xd800], vec![0x41, 0xdc00, 0x42], vec![0xd83d]] {
            let err = text_from_utf16(&bad, "principal").unwrap_err();
            assert_eq!(err.code(), "AMBIT_INVALID_REQUEST");
            assert!(err.to_string().starts_with("principal is not well-formed Unicode"), "{err}");
        }
    }
}
