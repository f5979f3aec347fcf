//! The request an application asks ambit to decide.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// "May `principal`, acting for `on_behalf_of`, do `action` on `resource`, now, given `context`?"
///
/// Entity uids are Cedar strings (`User::"alice"`). `action` may be a bare action name
/// (`issue_refund`), resolved in the schema's namespace, or a full uid
/// (`Helpdesk::Action::"issue_refund"`). The JSON form of this type is ambit's request wire
/// format, shared by the CLI and every binding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    principal: String,
    action: String,
    resource: String,
    #[serde(default = "empty_object")]
    context: Value,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    entities: Vec<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    on_behalf_of: Vec<String>,
    /// The entities were built by ambit from a verified token (never from the wire): they may
    /// be principals, as static entities are.
    #[serde(skip)]
    trusted: bool,
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

impl Request {
    /// A request with an empty context, no extra entities and no explicit delegators.
    pub fn new(principal: impl Into<String>, action: impl Into<String>, resource: impl Into<String>) -> Self {
        Self {
            principal: principal.into(),
            action: action.into(),
            resource: resource.into(),
            context: empty_object(),
            entities: Vec::new(),
            on_behalf_of: Vec::new(),
            trusted: false,
        }
    }

    /// Entities ambit built from a verified token's claims: trusted as principals.
    pub(crate) fn with_token_entities(mut self, entities: Vec<Value>) -> Self {
        self.entities = entities;
        self.trusted = true;
        self
    }

    /// Whether the entities came from a verified token.
    pub(crate) fn entities_trusted(&self) -> bool {
        self.trusted
    }

    /// Sets the context: a JSON object (Cedar's context JSON format).
    #[must_use]
    pub fn with_context(mut self, context: Value) -> Self {
        self.context = context;
        self
    }

    /// Adds per-request entities in Cedar's entity JSON format (e.g. the ticket with its tenant
    /// parent). They may not redefine a static entity or an agent.
    #[must_use]
    pub fn with_entities(mut self, entities: Vec<Value>) -> Self {
        self.entities = entities;
        self
    }

    /// Sets an explicit chain of delegators, root first, for principals that come from outside
    /// the registry (a service acting for a user). Registry agents bring their own chain; an
    /// explicit chain is put in front of it, and can only narrow what is allowed.
    #[must_use]
    pub fn on_behalf_of<I, S>(mut self, chain: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.on_behalf_of = chain.into_iter().map(Into::into).collect();
        self
    }

    /// Parses the request wire format (JSON).
    ///
    /// # Errors
    /// `AMBIT_INVALID_REQUEST` when the text is not a request.
    pub fn from_json(text: &str) -> crate::Result<Self> {
        serde_json::from_str(text).map_err(|e| crate::Error::invalid_request(format!("malformed request json: {e}")))
    }

    /// The acting principal.
    pub fn principal(&self) -> &str {
        &self.principal
    }
    /// The action, bare name or full uid.
    pub fn action(&self) -> &str {
        &self.action
    }
    /// The resource.
    pub fn resource(&self) -> &str {
        &self.resource
    }
    /// The context object.
    pub fn context(&self) -> &Value {
        &self.context
    }
    /// Per-request entities.
    pub fn entities(&self) -> &[Value] {
        &self.entities
    }
    /// Explicit delegators, root first.
    pub fn delegators(&self) -> &[String] {
        &self.on_behalf_of
    }
}
