#![doc = include_str!("../../README.md")]
#![expect(clippy::doc_markdown, reason = "the README is prose for people, included as crate docs for its doctest")]
//!
//! # Module map
//!
//! The decision is a pure function, `decide::decide(inputs, prepared, now, trace)`, of a
//! snapshot (policies, schema, static entities, index), the registry of agents, the settings
//! and a prepared request. [`Authorizer`] is the facade around it: it loads the snapshot,
//! prepares the request, decides, audits, and swaps a new snapshot in on reload. `explain` is
//! the same call with a trace. Dependencies point one way, down this list (each module uses
//! only modules above it, `core/tests/architecture.rs` fails on a cycle):
//!
//! - `ascii`: JSON text written by hand in ASCII. `fork`: the fork epoch (`after_fork`).
//! - `error`: the error type and its stable codes. `clock`: time. `canonical`: RFC 8785 JSON.
//! - `link`: template links. `request`: the request value. `plain`: plain JSON as Cedar values.
//! - `policy`: a policy compiled once (condition, body, scopes, condition literals).
//! - `decision`: decisions, hops, causes and policy traces, as values.
//! - `limit`: bounds on input. `uid`: uid parsing, formatting, per-thread name copies.
//! - `source`: where policy, schema and entity texts come from.
//! - `index`: per-action slices, keyed by principal and resource scope.
//! - `config`: settings fixed for an authorizer's life (validation, error mode, depth).
//! - `engine`: Cedar's rule over compiled policies. `mismatch`: words for a context that does
//!   not fit.
//! - `jose`: keys, key sets and compact JWS shared by credentials, tokens and DPoP.
//! - `audit/`: the event model (`record`), the hash chain (`chain`), the rotating file sink
//!   (`file`), verification (`verify`), and the writer pipeline (`mod`).
//! - `snapshot`: one immutable build of sources into policies, schema, entities and index.
//! - `agent`: agents as identities, their Cedar entities, and the attenuation rules.
//! - `prepare`: a request parsed and checked against a snapshot.
//! - `registry`: the concurrent store of live agents: mint, import, revoke, purge, export.
//! - `credential`: signed agent credentials. `slice`: the entity store one decision reads.
//! - `decide`: the decision path. `fleet/`: a registry shared through Redis.
//! - `token`: OAuth access tokens (RFC 8693 `act` chains). `dpop`: proof of possession.
//! - `authorizer/`: the facade (`mod`), its `builder`, `reload`, `credentials` and `explain`.
//! - `options`: the one serde options type every binding converts to. `watch`: file watching.
//! - `vector` and `fuzzing`: the test harnesses, behind the `testing` feature.
//! - `wire`: the JSON shapes the CLI, the bindings and the vectors share.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod agent;
mod ascii;
pub mod audit;
mod authorizer;
mod canonical;
mod clock;
mod config;
pub mod credential;
mod decide;
mod decision;
pub mod dpop;
mod engine;
pub mod error;
pub mod fleet;
mod fork;
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod fuzzing;
mod index;
pub mod jose;
mod limit;
mod link;
mod mismatch;
mod options;
mod plain;
mod policy;
mod prepare;
mod registry;
mod request;
mod slice;
mod snapshot;
mod source;
pub mod token;
mod uid;
#[cfg(feature = "testing")]
pub mod vector;
#[cfg(feature = "watch")]
mod watch;
pub mod wire;

pub use agent::{Agent, AgentSpec, DelegationNode, RESERVED_AGENT_ATTRIBUTES};
pub use audit::{Audit, AuditEvent, AuditRecord};
pub use authorizer::{Authorizer, AuthorizerBuilder, Explanation, HopExplanation, ReloadOutcome};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{ErrorMode, Validation, DEFAULT_MAX_DELEGATION_DEPTH, DEFAULT_PURGE_GRACE_SECONDS};
pub use credential::{Algorithm, IssuerKey, TrustedIssuers};
#[allow(deprecated, reason = "the old name, kept one release for users of the Rust API")]
pub use decision::PolicyError;
pub use decision::{Decision, DenyCause, EvaluationError, Hop, PolicyTrace};
pub use dpop::{DpopOptions, DpopProof};
pub use error::{Error, Result};
pub use fork::after_fork;
pub use limit::Limits;
pub use link::Link;
pub use request::Request;
pub use uid::{format_uid, Uid};
#[cfg(feature = "watch")]
pub use watch::{ReloadCallback, WatchStatus, Watcher, DEFAULT_DEBOUNCE};
