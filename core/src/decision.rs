//! Decisions are values: an allow, or a deny with a stable cause.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a request was denied. [`DenyCause::code`] gives the stable string used in JSON, audit
/// records, test vectors and every binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DenyCause {
    /// A credential is malformed, not signed by the key it names, not valid yet, too large,
    /// or carries a chain that breaks the delegation rules.
    InvalidToken,
    /// A credential has expired.
    TokenExpired,
    /// A credential names an issuer (or a key of it) this authorizer does not trust.
    UntrustedIssuer,
    /// A token or credential bound to a key (`cnf.jkt`) came without a DPoP proof, or this
    /// authorizer requires proofs and none came.
    DpopRequired,
    /// A DPoP proof is malformed, signed by another key than the one the token is bound to,
    /// for another method or URL, too old, without the token's hash or the server's nonce.
    DpopInvalid,
    /// A DPoP proof was used before (its `jti` is remembered for its age window).
    Replayed,
    /// This process has not heard from its fleet feed within the staleness bound (or cannot
    /// follow it): a revocation elsewhere might not be known here, so it decides nothing about
    /// agents (and, unless configured otherwise, nothing at all) until the feed is back.
    StaleState,
    /// An agent on the chain is not in the registry (never minted, or purged).
    UnknownPrincipal,
    /// The chain names the same identity twice (a delegation cycle).
    InvalidChain,
    /// The chain is longer than `max_delegation_depth`.
    DepthExceeded,
    /// An identity on the chain (or one it descends from) was revoked.
    Revoked,
    /// An agent on the chain has expired.
    Expired,
    /// The action is not within the scopes of an agent on the chain.
    OutOfScope,
    /// The resource is outside the confinement of an agent on the chain.
    OutOfConfinement,
    /// A `forbid` policy matched for a hop.
    Forbidden,
    /// No `permit` policy matched for a hop.
    NoPermit,
    /// A `forbid` policy erred for a hop; in fail-closed mode it counts as matched.
    EvaluationError,
}

impl DenyCause {
    /// Every cause, in the order ambit checks them.
    pub const ALL: &'static [DenyCause] = &[
        Self::InvalidToken,
        Self::TokenExpired,
        Self::UntrustedIssuer,
        Self::DpopRequired,
        Self::DpopInvalid,
        Self::Replayed,
        Self::StaleState,
        Self::UnknownPrincipal,
        Self::InvalidChain,
        Self::DepthExceeded,
        Self::Revoked,
        Self::Expired,
        Self::OutOfScope,
        Self::OutOfConfinement,
        Self::Forbidden,
        Self::NoPermit,
        Self::EvaluationError,
    ];

    /// The stable string for this cause, e.g. `out_of_scope`.
    pub fn code(self) -> &'static str {
        match self {
            Self::InvalidToken => "invalid_token",
            Self::TokenExpired => "token_expired",
            Self::UntrustedIssuer => "untrusted_issuer",
            Self::DpopRequired => "dpop_required",
            Self::DpopInvalid => "dpop_invalid",
            Self::Replayed => "replayed",
            Self::StaleState => "stale_state",
            Self::UnknownPrincipal => "unknown_principal",
            Self::InvalidChain => "invalid_chain",
            Self::DepthExceeded => "depth_exceeded",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
            Self::OutOfScope => "out_of_scope",
            Self::OutOfConfinement => "out_of_confinement",
            Self::Forbidden => "forbidden",
            Self::NoPermit => "no_permit",
            Self::EvaluationError => "evaluation_error",
        }
    }

    /// Parses a stable code back into a cause.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.code() == code)
    }
}

impl fmt::Display for DenyCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A policy that erred while a hop was evaluated (the policy *text* failing to parse or
/// validate is an [`crate::Error`]: `AMBIT_POLICY_PARSE`, `AMBIT_VALIDATION`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvaluationError {
    pub(crate) policy_id: String,
    pub(crate) message: String,
}

/// The old name of [`EvaluationError`]: Python's `ambit.PolicyError` is a policy-text error, so
/// the evaluation error took a name of its own.
#[deprecated(note = "renamed EvaluationError (Python's PolicyError is a policy-text error)")]
pub type PolicyError = EvaluationError;

impl EvaluationError {
    /// The id of the policy that erred.
    pub fn policy_id(&self) -> &str {
        &self.policy_id
    }
    /// What went wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// The outcome for one hop of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hop {
    pub(crate) principal: String,
    pub(crate) allowed: bool,
    /// false when an earlier check (liveness, scope) or an earlier hop ended the decision.
    pub(crate) evaluated: bool,
    pub(crate) reasons: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) errors: Vec<EvaluationError>,
}

impl Hop {
    /// The principal of this hop.
    pub fn principal(&self) -> &str {
        &self.principal
    }
    /// Whether Cedar allowed this hop.
    pub fn allowed(&self) -> bool {
        self.allowed
    }
    /// Whether Cedar evaluated this hop at all.
    pub fn evaluated(&self) -> bool {
        self.evaluated
    }
    /// The determining policy ids for this hop, sorted.
    pub fn reasons(&self) -> &[String] {
        &self.reasons
    }
    /// Policies that erred for this hop.
    pub fn errors(&self) -> &[EvaluationError] {
        &self.errors
    }
}

/// The answer to a [`crate::Request`].
///
/// `allowed` is true only when every hop of the chain is live, in scope, and allowed by Cedar.
/// Its JSON form is ambit's decision wire format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[expect(clippy::struct_field_names, reason = "`decision_id` is the wire field name")]
pub struct Decision {
    pub(crate) allowed: bool,
    pub(crate) decision_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) deny_cause: Option<DenyCause>,
    /// index into `chain` of the hop that ended a deny, when one hop is to blame
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) deny_hop: Option<usize>,
    pub(crate) reasons: Vec<String>,
    pub(crate) chain: Vec<String>,
    pub(crate) hops: Vec<Hop>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) errors: Vec<EvaluationError>,
    pub(crate) action: String,
    pub(crate) resource: String,
    pub(crate) policy_version: String,
    pub(crate) generation: u64,
    pub(crate) timestamp: u64,
}

impl Decision {
    /// Whether the request is allowed.
    pub fn allowed(&self) -> bool {
        self.allowed
    }
    /// A unique, time-ordered id (UUID v7 text) for this decision.
    pub fn decision_id(&self) -> &str {
        &self.decision_id
    }
    /// Why the request was denied; `None` when allowed.
    pub fn deny_cause(&self) -> Option<DenyCause> {
        self.deny_cause
    }
    /// Index into [`Decision::chain`] of the hop that ended a deny.
    pub fn deny_hop(&self) -> Option<usize> {
        self.deny_hop
    }
    /// Policy ids behind the decision: for an allow, the permits of every hop; for a
    /// `forbidden` or `evaluation_error` deny, the forbids of the hop that ended it.
    pub fn reasons(&self) -> &[String] {
        &self.reasons
    }
    /// The chain, root first, ending with the acting principal.
    pub fn chain(&self) -> &[String] {
        &self.chain
    }
    /// Per-hop outcomes, in chain order.
    pub fn hops(&self) -> &[Hop] {
        &self.hops
    }
    /// Every policy error seen on any evaluated hop.
    pub fn errors(&self) -> &[EvaluationError] {
        &self.errors
    }
    /// The resolved action uid.
    pub fn action(&self) -> &str {
        &self.action
    }
    /// The resource uid.
    pub fn resource(&self) -> &str {
        &self.resource
    }
    /// Content hash of the schema, policies and static entities that decided.
    pub fn policy_version(&self) -> &str {
        &self.policy_version
    }
    /// The snapshot generation that decided; grows by one with every successful reload.
    pub fn generation(&self) -> u64 {
        self.generation
    }
    /// Seconds since the epoch, from the authorizer's clock, when the decision was made.
    pub fn timestamp(&self) -> u64 {
        self.timestamp
    }
    /// The JSON wire form.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

impl Decision {
    /// The decision as JSON text with camelCase field names, `allowed` first and every field
    /// present (`null` or `[]` when empty): what the Node package's `Decision` parses when a
    /// field other than `allowed` is read. The text is ASCII only (every other character as a
    /// `\u` escape, as JSON allows), so a host can take it as one-byte text without decoding.
    pub fn to_camel_json_string(&self) -> String {
        let mut w = crate::ascii::AsciiJson(String::with_capacity(512));
        w.raw(if self.allowed { r#"{"allowed":true,"decisionId":"# } else { r#"{"allowed":false,"decisionId":"# });
        w.string(&self.decision_id);
        w.raw(r#","denyCause":"#);
        match self.deny_cause {
            Some(c) => w.string(c.code()),
            None => w.raw("null"),
        }
        w.raw(r#","denyHop":"#);
        match self.deny_hop {
            Some(h) => w.number(h as u64),
            None => w.raw("null"),
        }
        w.raw(r#","reasons":"#);
        w.strings(&self.reasons);
        w.raw(r#","chain":"#);
        w.strings(&self.chain);
        w.raw(r#","hops":["#);
        for (i, h) in self.hops.iter().enumerate() {
            w.raw(if i == 0 { r#"{"principal":"# } else { r#",{"principal":"# });
            w.string(&h.principal);
            w.raw(if h.allowed { r#","allowed":true"# } else { r#","allowed":false"# });
            w.raw(if h.evaluated { r#","evaluated":true,"reasons":"# } else { r#","evaluated":false,"reasons":"# });
            w.strings(&h.reasons);
            w.raw(r#","errors":"#);
            write_errors(&mut w, &h.errors);
            w.raw("}");
        }
        w.raw(r#"],"errors":"#);
        write_errors(&mut w, &self.errors);
        w.raw(r#","action":"#);
        w.string(&self.action);
        w.raw(r#","resource":"#);
        w.string(&self.resource);
        w.raw(r#","policyVersion":"#);
        w.string(&self.policy_version);
        w.raw(r#","generation":"#);
        w.number(self.generation);
        w.raw(r#","timestamp":"#);
        w.number(self.timestamp);
        w.raw("}");
        w.0
    }
}

/// Policy errors as the camel view writes them: `[{"policyId":…,"message":…}]`.
fn write_errors(w: &mut crate::ascii::AsciiJson, list: &[EvaluationError]) {
    w.raw("[");
    for (i, e) in list.iter().enumerate() {
        w.raw(if i == 0 { r#"{"policyId":"# } else { r#",{"policyId":"# });
        w.string(&e.policy_id);
        w.raw(r#","message":"#);
        w.string(&e.message);
        w.raw("}");
    }
    w.raw("]");
}

/// A UUID v7: millisecond timestamp first (time-ordered), then a per-thread random seed plus
/// a per-thread counter (unique without a shared atomic that every decision on every core
/// would write; the seed is drawn again after [`crate::after_fork`]). Decision ids need not be secret,
/// so no randomness per call.
pub(crate) fn new_decision_id() -> String {
    use std::cell::Cell;
    /// (epoch the seed was drawn under, seed, tag, count); epoch `u64::MAX`: not drawn yet
    type State = (u64, u64, u16, u64);
    fn draw(epoch: u64) -> State {
        let seed = *uuid::Uuid::new_v4().as_bytes();
        let mut hi = [0u8; 8];
        hi.copy_from_slice(&seed[..8]);
        (epoch, u64::from_be_bytes(hi), u16::from_be_bytes([seed[8], seed[9]]), 0)
    }
    thread_local! {
        static STATE: Cell<State> = const { Cell::new((u64::MAX, 0, 0, 0)) };
    }
    let epoch = crate::fork::fork_epoch();
    let (base, tag, n) = STATE.with(|s| {
        let mut state = s.get();
        if state.0 != epoch {
            state = draw(epoch);
        }
        let (_, base, tag, n) = state;
        s.set((epoch, base, tag, n.wrapping_add(1)));
        (base, tag, n)
    });
    let mut bytes = [0u8; 10];
    bytes[..2].copy_from_slice(&tag.to_be_bytes());
    bytes[2..].copy_from_slice(&base.wrapping_add(n).to_be_bytes());
    uuid::Builder::from_unix_timestamp_millis(crate::clock::system_millis(), &bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]
    use super::{new_decision_id, Decision, DenyCause, EvaluationError, Hop};
    use serde_json::Value;

    fn camel(key: &str) -> String {
        let mut out = String::new();
        let mut upper = false;
        for c in key.chars() {
            if c == '_' {
                upper = true;
            } else if upper {
                out.extend(c.to_uppercase());
                upper = false;
            } else {
                out.push(c);
            }
        }
        out
    }

    /// Every key of the wire form, camelCased, recursively: what the camel view must carry.
    fn camel_keys(v: &Value) -> Value {
        match v {
            Value::Object(m) => m.iter().map(|(k, v)| (camel(k), camel_keys(v))).collect(),
            Value::Array(a) => a.iter().map(camel_keys).collect(),
            other => other.clone(),
        }
    }

    /// A decision whose every string field carries `odd` (hops: one clean, one with errors).
    fn decision(allowed: bool, odd: &str) -> Decision {
        let err = EvaluationError { policy_id: format!("p9{odd}"), message: format!("boom {odd}") };
        let hop = |allowed, errors: Vec<EvaluationError>| Hop {
            principal: format!("User::\"a{odd}\""),
            allowed,
            evaluated: allowed,
            reasons: vec![format!("p1{odd}")],
            errors,
        };
        Decision {
            allowed,
            decision_id: new_decision_id(),
            deny_cause: (!allowed).then_some(DenyCause::Forbidden),
            deny_hop: (!allowed).then_some(1),
            reasons: vec!["p1".into(), format!("p2{odd}")],
            chain: vec![format!("User::\"a{odd}\""), "Agent::\"b\"".into()],
            hops: vec![hop(true, vec![]), hop(allowed, vec![err.clone()])],
            errors: vec![err],
            action: format!("Action::\"x{odd}\""),
            resource: format!("Doc::\"{odd}\""),
            policy_version: "v1".into(),
            generation: u64::MAX,
            timestamp: 1_700_000_000,
        }
    }

    /// The camel text is ASCII, starts with `allowed`, and parses to the wire form's value with
    /// camelCase keys (every field present).
    fn check_camel(d: &Decision) {
        let text = d.to_camel_json_string();
        assert!(text.is_ascii(), "{text}");
        let start = if d.allowed { r#"{"allowed":true,"# } else { r#"{"allowed":false,"# };
        assert!(text.starts_with(start), "{text}");
        let mut want = camel_keys(&d.to_json());
        // the camel view always carries every field, where the wire form omits empty ones
        want["hops"][0]["errors"] = Value::Array(vec![]);
        let fields = want.as_object_mut().unwrap();
        fields.entry("denyCause").or_insert(Value::Null);
        fields.entry("denyHop").or_insert(Value::Null);
        fields.entry("errors").or_insert(Value::Array(vec![]));
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), want, "{text}");
    }

    #[test]
    fn camel_json_is_the_wire_form_in_camel_case_with_allowed_first() {
        for allowed in [true, false] {
            for odd in ["", "\"\\/", "\u{0}\u{1f}\u{7f}\n\r\t\u{8}\u{c}", "é漢字", "😀\u{10ffff}", "\u{2028}\u{2029}"]
            {
                check_camel(&decision(allowed, odd));
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn camel_json_writes_any_text_faithfully_in_ascii(odd in "\\PC*|[\\x00-\\x7f]*", allowed: bool) {
            check_camel(&decision(allowed, &odd));
        }
    }

    /// The last 8 bytes of a decision id: the seed plus the count.
    fn counted(id: &str) -> u64 {
        let bytes = *uuid::Uuid::parse_str(id).unwrap().as_bytes();
        u64::from_be_bytes(bytes[8..].try_into().unwrap())
    }

    /// A fork copies a thread's seed and count; after `after_fork` the next id does not go on
    /// from them (a parent and its child would otherwise count through the same ids).
    #[test]
    fn after_fork_draws_a_new_seed() {
        let (a, b) = (new_decision_id(), new_decision_id());
        assert_eq!(counted(&b), counted(&a).wrapping_add(1));
        crate::after_fork();
        let c = new_decision_id();
        assert_ne!(counted(&c), counted(&b).wrapping_add(1));
        assert_eq!(counted(&new_decision_id()), counted(&c).wrapping_add(1));
    }

    #[test]
    fn decision_ids_are_unique_across_threads_and_are_uuid_v7() {
        let threads: Vec<_> =
            (0..4).map(|_| std::thread::spawn(|| (0..20_000).map(|_| new_decision_id()).collect::<Vec<_>>())).collect();
        let mut all = std::collections::HashSet::new();
        for t in threads {
            for id in t.join().unwrap() {
                let uuid = uuid::Uuid::parse_str(&id).unwrap();
                assert_eq!(uuid.get_version_num(), 7, "{id}");
                assert!(all.insert(id), "duplicate decision id");
            }
        }
        assert_eq!(all.len(), 80_000);
    }
}

/// How one policy fared for one hop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyTrace {
    /// The policy id.
    pub id: String,
    /// `permit` or `forbid`.
    pub effect: String,
    /// `satisfied`, `not_satisfied` or `error`.
    pub outcome: String,
    /// The error, when it erred.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
