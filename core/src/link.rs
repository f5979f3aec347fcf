//! Template links: a template's slots (`?principal`, `?resource`) filled with entity uids,
//! giving a policy of its own id. Links come from a links file (Cedar's `links.json` shape) or
//! are made at run time with [`crate::Authorizer::link`]; either way they are part of the
//! snapshot (validated with it, indexed like static policies, counted in its version) and
//! survive reloads of the policy files.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One link: `template_id` with its slots filled, known as `link_id`. Its JSON form is the
/// shape of the Cedar examples' `links.json` entries:
/// `{"template_id": "T", "link_id": "L", "args": {"?principal": "User::\"a\"", "?resource": "Doc::\"d\""}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[expect(clippy::struct_field_names, reason = "`link_id` is the name the links file format uses")]
pub struct Link {
    template_id: String,
    link_id: String,
    #[serde(default)]
    args: BTreeMap<String, String>,
}

impl Link {
    /// A link of `template_id` named `link_id`, with no slot filled yet.
    pub fn new(template_id: impl Into<String>, link_id: impl Into<String>) -> Self {
        Self { template_id: template_id.into(), link_id: link_id.into(), args: BTreeMap::new() }
    }
    /// Fills `?principal` with an entity uid (`User::"alice"`).
    #[must_use]
    pub fn principal(mut self, uid: impl Into<String>) -> Self {
        self.args.insert("?principal".into(), uid.into());
        self
    }
    /// Fills `?resource` with an entity uid.
    #[must_use]
    pub fn resource(mut self, uid: impl Into<String>) -> Self {
        self.args.insert("?resource".into(), uid.into());
        self
    }
    /// The template it links.
    pub fn template_id(&self) -> &str {
        &self.template_id
    }
    /// Its own policy id (what decisions name as a reason).
    pub fn link_id(&self) -> &str {
        &self.link_id
    }
    /// The slot values, by slot name (`?principal`, `?resource`).
    pub fn args(&self) -> &BTreeMap<String, String> {
        &self.args
    }
}
