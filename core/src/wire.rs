//! ambit's JSON wire format: the one set of shapes the CLI, the bindings and the shared test
//! vectors use. Every type here is serde; the bindings convert and call, never reshape.

pub use crate::audit::{AuditEvent, AuditRecord, VerifyReport};
pub use crate::authorizer::ReloadOutcome;
pub use crate::decision::{Decision, DenyCause, Hop, PolicyError};
pub use crate::explain::{Explanation, HopExplanation, PolicyTrace};
pub use crate::registry::{Agent, AgentSpec, DelegationNode};
pub use crate::request::Request;
pub use crate::vector::{Expect, MintStep, Step, VectorCase, VectorFile, VectorOptions};
