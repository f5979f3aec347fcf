//! What an authorizer is configured with, fixed for its life: how policies are validated, how
//! evaluation errors count, the depth limit, the agent type, the limits on input, and whom
//! per-request entities are trusted as.

use crate::error::{Error, Result};
use crate::limit::Limits;
use cedar_policy::EntityTypeName;
use std::str::FromStr;

/// Default for [`AuthorizerBuilder::max_delegation_depth`].
pub const DEFAULT_MAX_DELEGATION_DEPTH: u32 = 8;
/// Default for [`AuthorizerBuilder::purge_grace`]: expired or revoked agents stay known (and
/// deny with `expired` / `revoked`) this many seconds before they are purged from memory.
pub const DEFAULT_PURGE_GRACE_SECONDS: u64 = 300;

/// How strictly policies are checked against the schema at load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Validation {
    /// Cedar's strict validation (the default). Requests are validated against the schema too.
    #[default]
    Strict,
    /// Cedar's permissive validation. Requests are validated against the schema too.
    Permissive,
    /// No policy or request validation: for migrating unvalidated Cedar. A schema, when
    /// given, is still used to parse entities and contexts.
    Off,
}

impl Validation {
    /// The stable name: `strict`, `permissive` or `off`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Strict => "strict",
            Self::Permissive => "permissive",
            Self::Off => "off",
        }
    }
}

impl FromStr for Validation {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "strict" => Ok(Self::Strict),
            "permissive" => Ok(Self::Permissive),
            "off" => Ok(Self::Off),
            other => Err(Error::config(format!(
                "unknown validation mode `{}`: expected `strict`, `permissive` or `off`",
                crate::error::user_text(other)
            ))),
        }
    }
}

/// What to do when a policy's condition errors during evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorMode {
    /// An erroring `forbid` counts as matched: the hop is denied with `evaluation_error`
    /// (the default). An erroring `permit` is skipped, as in Cedar.
    #[default]
    FailClosed,
    /// Cedar's exact semantics: an erroring policy is skipped, whatever its effect.
    Cedar,
}

impl ErrorMode {
    /// The stable name: `fail_closed` or `cedar`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FailClosed => "fail_closed",
            Self::Cedar => "cedar",
        }
    }
}

impl FromStr for ErrorMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "fail_closed" => Ok(Self::FailClosed),
            "cedar" => Ok(Self::Cedar),
            other => Err(Error::config(format!(
                "unknown error mode `{}`: expected `fail_closed` or `cedar`",
                crate::error::user_text(other)
            ))),
        }
    }
}

/// An authorizer's settings.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) validation: Validation,
    pub(crate) error_mode: ErrorMode,
    pub(crate) max_depth: u32,
    pub(crate) agent_type: Option<EntityTypeName>,
    pub(crate) purge_grace: u64,
    pub(crate) limits: Limits,
    /// Whether per-request entities may name static entities or agents as parents, or be of
    /// a principal type of the action (see [`AuthorizerBuilder::trust_request_entities`]).
    pub(crate) trust_request_entities: bool,
    pub(crate) validate_entities: bool,
}
