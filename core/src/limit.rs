//! Input limits with safe defaults: hostile or runaway input is an `AMBIT_LIMIT` error, never a
//! crash or an unbounded allocation.

use crate::error::{Error, Result};
use serde_json::Value;

/// The deepest nesting any limit may allow (contexts, entity and agent attributes): converting
/// and evaluating a value this deep stays well inside a 2 MiB thread stack.
pub const MAX_JSON_DEPTH: usize = 128;

/// Limits on what ambit accepts. Every field has a safe default; raise one only when an
/// application needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Bytes of one entity uid string (principal, resource, delegator, parent). Default 4 KiB.
    pub max_uid_bytes: usize,
    /// Approximate bytes of a request's context plus entities. Default 1 MiB.
    pub max_request_bytes: usize,
    /// Nesting depth of a context or of request entities. Default 32, at most
    /// [`MAX_JSON_DEPTH`] (a larger value is refused when the authorizer is built).
    pub max_json_depth: usize,
    /// Entities passed with one request. Default 1,000.
    pub max_request_entities: usize,
    /// Bytes of one policy, schema or entities source text. Default 64 MiB.
    pub max_source_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_uid_bytes: 4096,
            max_request_bytes: 1 << 20,
            max_json_depth: 32,
            max_request_entities: 1000,
            max_source_bytes: 64 << 20,
        }
    }
}

impl Limits {
    /// Sets [`Limits::max_uid_bytes`].
    #[must_use]
    pub fn with_max_uid_bytes(mut self, n: usize) -> Self {
        self.max_uid_bytes = n;
        self
    }
    /// Sets [`Limits::max_request_bytes`].
    #[must_use]
    pub fn with_max_request_bytes(mut self, n: usize) -> Self {
        self.max_request_bytes = n;
        self
    }
    /// Sets [`Limits::max_json_depth`].
    #[must_use]
    pub fn with_max_json_depth(mut self, n: usize) -> Self {
        self.max_json_depth = n;
        self
    }
    /// Sets [`Limits::max_request_entities`].
    #[must_use]
    pub fn with_max_request_entities(mut self, n: usize) -> Self {
        self.max_request_entities = n;
        self
    }
    /// Sets [`Limits::max_source_bytes`].
    #[must_use]
    pub fn with_max_source_bytes(mut self, n: usize) -> Self {
        self.max_source_bytes = n;
        self
    }

    /// Refuses limits that cannot be honoured safely.
    pub(crate) fn check(&self) -> Result<()> {
        if self.max_json_depth > MAX_JSON_DEPTH {
            return Err(Error::limit(format!(
                "a nesting limit of {} is more than ambit can convert safely ({MAX_JSON_DEPTH})",
                self.max_json_depth
            )));
        }
        Ok(())
    }

    pub(crate) fn check_uid(&self, what: &str, uid: &str) -> Result<()> {
        if uid.len() > self.max_uid_bytes {
            return Err(Error::limit(format!(
                "{what} uid is {} bytes, more than the limit of {}",
                uid.len(),
                self.max_uid_bytes
            )));
        }
        Ok(())
    }

    /// Checks depth and approximate size of request JSON in one walk.
    pub(crate) fn check_json(&self, what: &str, value: &Value, budget: &mut usize) -> Result<()> {
        fn walk(
            v: &Value,
            depth: usize,
            max_depth: usize,
            budget: &mut usize,
        ) -> std::result::Result<(), &'static str> {
            if depth > max_depth {
                return Err("depth");
            }
            let size = match v {
                Value::String(s) => s.len() + 2,
                Value::Array(items) => {
                    for i in items {
                        walk(i, depth + 1, max_depth, budget)?;
                    }
                    items.len() + 2
                }
                Value::Object(map) => {
                    for (k, i) in map {
                        *budget = budget.checked_sub(k.len() + 3).ok_or("size")?;
                        walk(i, depth + 1, max_depth, budget)?;
                    }
                    2
                }
                _ => 8,
            };
            *budget = budget.checked_sub(size).ok_or("size")?;
            Ok(())
        }
        walk(value, 0, self.max_json_depth, budget).map_err(|kind| match kind {
            "depth" => Error::limit(format!("{what} nests deeper than the limit of {}", self.max_json_depth)),
            _ => Error::limit(format!("request is larger than the limit of {} bytes", self.max_request_bytes)),
        })
    }
}
