#![doc = include_str!("../../README.md")]
#![expect(clippy::doc_markdown, reason = "the README is prose for people, included as crate docs for its doctest")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod audit;
mod authorizer;
mod canonical;
mod clock;
pub mod credential;
mod decision;
pub mod dpop;
mod engine;
pub mod error;
mod explain;
pub mod fleet;
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod fuzzing;
mod index;
mod limit;
mod link;
mod mismatch;
mod options;
mod plain;
mod registry;
mod request;
mod snapshot;
mod source;
pub mod token;
#[cfg(feature = "testing")]
pub mod vector;
#[cfg(feature = "watch")]
mod watch;
pub mod wire;

pub use audit::{Audit, AuditEvent, AuditRecord};
pub use authorizer::{
    Authorizer, AuthorizerBuilder, ReloadOutcome, DEFAULT_MAX_DELEGATION_DEPTH, DEFAULT_PURGE_GRACE_SECONDS,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use credential::{Algorithm, IssuerKey, TrustedIssuers};
pub use decision::{Decision, DenyCause, Hop, PolicyError};
pub use dpop::{DpopOptions, DpopProof};
pub use error::{Error, Result};
pub use explain::{Explanation, HopExplanation, PolicyTrace};
pub use limit::Limits;
pub use link::Link;
pub use registry::{Agent, AgentSpec, DelegationNode, RESERVED_AGENT_ATTRIBUTES};
pub use request::{format_uid, Request};
pub use snapshot::{ErrorMode, Validation};
#[cfg(feature = "watch")]
pub use watch::{ReloadCallback, WatchStatus, Watcher, DEFAULT_DEBOUNCE};
