//! Language-neutral decision vectors: the format, and the Rust runner (used by the tests and
//! by `ambit test`). The Python and Node runners read the same files through their bindings.
//!
//! A vector file names a policy fixture directory, optional authorizer options, and cases.
//! Each case starts from a fresh authorizer with a manual clock, runs its setup steps (mint,
//! revoke, reinstate, advance the clock, replace policies) and checks one request.

use crate::{AgentSpec, Authorizer, ManualClock, Request};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Clock start for every case unless the file says otherwise (2027-01-15).
pub const DEFAULT_NOW: u64 = 1_800_000_000;

/// One vector file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorFile {
    /// Name of the scenario.
    pub name: String,
    /// Fixture directory, relative to the repository root.
    pub policies: String,
    /// Authorizer options: the same names and values as every binding's
    /// ([`crate::options::AuthorizerOptions`]).
    #[serde(default)]
    pub options: crate::options::AuthorizerOptions,
    /// Clock start (epoch seconds).
    #[serde(default)]
    pub now: Option<u64>,
    /// The cases.
    pub cases: Vec<VectorCase>,
}

/// One case: setup steps, then a request and what to expect.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorCase {
    /// What the case shows.
    pub description: String,
    /// Steps run before the request, in order.
    #[serde(default)]
    pub setup: Vec<Step>,
    /// The request; `$name` strings refer to agents minted in setup.
    pub request: Request,
    /// Decide with this signed credential (or `$name` of one issued in setup) instead of the
    /// request's principal: the request gives the action, resource and context, and its
    /// principal names, for the reader, the agent the credential carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    /// Decide with this OAuth access token (or `$name` of one signed in setup) instead of the
    /// request's principal, as `credential` does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// With `credential` or `token`: the DPoP proof presented (`{proof, method, url,
    /// nonce?}`, `proof` may be `$name` of one made in setup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop: Option<Value>,
    /// Make the request this many times (default 1); the expectation is for the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
    /// The expected outcome.
    pub expect: Expect,
}

/// A setup step. Exactly one action field is set.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Mint an agent; `as` names it for `$name` references.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mint: Option<MintStep>,
    /// Revoke a uid (or `$name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoke: Option<String>,
    /// Reinstate a uid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reinstate: Option<String>,
    /// Move the clock forward by this many seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advance: Option<u64>,
    /// Link a template (a [`crate::Link`] in its JSON form; `$name` slot values refer to
    /// agents minted in setup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<Value>,
    /// Remove a run-time link by id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlink: Option<String>,
    /// Replace the policies with this text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_policies: Option<String>,
    /// Issue a signed credential for an agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue: Option<IssueStep>,
    /// Sign claims as a JWT (an OAuth access token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign: Option<SignStep>,
    /// Make a DPoP proof.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<ProofStep>,
    /// The step must fail with this error code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_error: Option<String>,
    /// For `revoke`: the number of identities it must cut off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_count: Option<usize>,
}

/// A mint step: an [`AgentSpec`] plus the name to refer to it by.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MintStep {
    /// Name for `$name` references.
    #[serde(rename = "as")]
    pub name: String,
    /// The spec (its `parent` may be `$name`).
    #[serde(flatten)]
    pub spec: Value,
}

/// An issue step: a credential for `agent` signed with `key` as `issuer`, named `as`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueStep {
    /// Name for `$name` references (the credential text).
    #[serde(rename = "as")]
    pub name: String,
    /// The agent (`$name`).
    pub agent: String,
    /// The issuer name the key signs as.
    pub issuer: String,
    /// The private JWK.
    pub key: Value,
    /// Bind it to this holder key thumbprint (`cnf.jkt`).
    #[serde(default)]
    pub holder: Option<String>,
}

/// A sign step: `claims` signed with `key` as `issuer` (`IssuerKey::sign_jwt`), named `as`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignStep {
    /// Name for `$name` references (the token text).
    #[serde(rename = "as")]
    pub name: String,
    /// The issuer name the key signs as.
    pub issuer: String,
    /// The private JWK.
    pub key: Value,
    /// The claims, as signed.
    pub claims: Value,
}

/// A proof step: a DPoP proof by `key` for `method` `url` and the token `token` (`$name`),
/// named `as`. Its header is `{typ: dpop+jwt, alg: the key's, jwk: the key's public JWK}`, its
/// claims `{jti, htm, htu, iat, ath}` (and `nonce` when given); `header` and `claims` then
/// change it as they say (a `null` removes the member), and it is signed as it stands, so
/// cases can forge what a correct client never sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofStep {
    /// Name for `$name` references (the proof text).
    #[serde(rename = "as")]
    pub name: String,
    /// The holder's private JWK.
    pub key: Value,
    /// `htm`.
    pub method: String,
    /// `htu`.
    pub url: String,
    /// The token (or `$name`) whose hash is `ath`.
    pub token: String,
    /// `iat` (default: the case's clock).
    #[serde(default)]
    pub iat: Option<u64>,
    /// `jti` (default: the step's name).
    #[serde(default)]
    pub jti: Option<String>,
    /// `nonce`.
    #[serde(default)]
    pub nonce: Option<String>,
    /// Header members changed (`null` removes).
    #[serde(default)]
    pub header: Option<serde_json::Map<String, Value>>,
    /// Claims changed (`null` removes).
    #[serde(default)]
    pub claims: Option<serde_json::Map<String, Value>>,
}

impl ProofStep {
    fn sign(&self, token: &str, now: u64) -> crate::Result<String> {
        let key = crate::IssuerKey::from_jwk("holder", &self.key.to_string())?;
        let mut header = serde_json::json!({
            "typ": crate::dpop::PROOF_TYPE, "alg": key.algorithm().as_str(), "jwk": key.public_jwks()["keys"][0],
        });
        let mut claims = serde_json::json!({
            "jti": self.jti.clone().unwrap_or_else(|| self.name.clone()),
            "htm": self.method, "htu": self.url, "iat": self.iat.unwrap_or(now),
            "ath": crate::jose::sha256_b64(token.as_bytes()),
        });
        if let Some(n) = &self.nonce {
            claims["nonce"] = Value::String(n.clone());
        }
        for (target, changes) in [(&mut header, &self.header), (&mut claims, &self.claims)] {
            if let (Some(object), Some(changes)) = (target.as_object_mut(), changes) {
                for (k, v) in changes {
                    if v.is_null() {
                        object.remove(k);
                    } else {
                        object.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        key.sign_jws(&header, &claims)
    }
}

/// What a case expects. Only the fields given are checked.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Allowed or denied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<bool>,
    /// The deny cause code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny_cause: Option<String>,
    /// Exact reasons (policy ids), in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasons: Option<Vec<String>>,
    /// Index of the hop that ended a deny.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny_hop: Option<usize>,
    /// Ids of policies that erred.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<String>>,
    /// The request must fail with this error code instead of deciding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The outcome of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseResult {
    /// `<file name>: <description>`.
    pub name: String,
    /// `None` when the case passed; what differed otherwise.
    pub failure: Option<String>,
}

/// Every `*.json` vector file under `dir`, sorted.
///
/// # Errors
/// `AMBIT_IO` when the directory cannot be read.
pub fn find_files(dir: &Path) -> crate::Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| crate::Error::io(dir, &e))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    Ok(files)
}

/// Runs every case of a vector file; fixture paths are relative to `root`.
///
/// # Errors
/// `AMBIT_IO` or `AMBIT_INVALID_REQUEST` when the file cannot be read or parsed.
pub fn run_file(path: &Path, root: &Path) -> crate::Result<Vec<CaseResult>> {
    let text = std::fs::read_to_string(path).map_err(|e| crate::Error::io(path, &e))?;
    let file: VectorFile = serde_json::from_str(&text)
        .map_err(|e| crate::Error::invalid_request(format!("vector file `{}`: {e}", path.display())))?;
    // fixture paths are relative to `root`; when the fixture is not there (a run from another
    // directory), the nearest ancestor of the vector file that holds it is the root
    let found;
    let root = if root.join(&file.policies).exists() {
        root
    } else {
        let start = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let start = std::fs::canonicalize(&start).unwrap_or(start);
        found = start.ancestors().find(|a| a.join(&file.policies).is_dir()).map(Path::to_path_buf);
        found.as_deref().unwrap_or(root)
    };
    let label = path.file_name().map_or_else(|| file.name.clone(), |n| n.to_string_lossy().into_owned());
    Ok(file
        .cases
        .iter()
        .map(|case| CaseResult {
            name: format!("{label}: {}", case.description),
            failure: run_case(&file, case, root).err(),
        })
        .collect())
}

fn build(file: &VectorFile, root: &Path, clock: &ManualClock) -> Result<Authorizer, String> {
    let b = Authorizer::builder().dir(root.join(&file.policies)).clock(Arc::new(clock.clone()));
    let b = file.options.clone().apply(b, None).map_err(|e| format!("options: {e} ({})", e.code()))?;
    b.build().map_err(|e| format!("fixture `{}` does not load: {} ({e})", file.policies, e.code()))
}

#[allow(clippy::too_many_lines, reason = "one case, setup steps to check, top to bottom")]
fn run_case(file: &VectorFile, case: &VectorCase, root: &Path) -> Result<(), String> {
    let clock = ManualClock::new(file.now.unwrap_or(DEFAULT_NOW));
    let authz = build(file, root, &clock)?;
    let mut names: HashMap<String, String> = HashMap::new();
    let sub = |s: &str, names: &HashMap<String, String>| -> String {
        s.strip_prefix('$').and_then(|n| names.get(n)).cloned().unwrap_or_else(|| s.to_owned())
    };
    for (i, step) in case.setup.iter().enumerate() {
        let outcome: Result<Option<usize>, crate::Error> = if let Some(m) = &step.mint {
            let mut spec = m.spec.clone();
            if let Some(parent) = spec.get("parent").and_then(Value::as_str) {
                spec["parent"] = Value::String(sub(parent, &names));
            }
            let spec: AgentSpec =
                serde_json::from_value(spec).map_err(|e| format!("setup step {i}: bad mint spec: {e}"))?;
            authz.mint_agent(&spec).map(|a| {
                names.insert(m.name.clone(), a.uid().to_owned());
                None
            })
        } else if let Some(uid) = &step.revoke {
            authz.revoke(&sub(uid, &names)).map(Some)
        } else if let Some(uid) = &step.reinstate {
            authz.reinstate(&sub(uid, &names)).map(|_| None)
        } else if let Some(secs) = step.advance {
            clock.advance(secs);
            Ok(None)
        } else if let Some(link) = &step.link {
            let mut link = link.clone();
            if let Some(args) = link.get_mut("args").and_then(Value::as_object_mut) {
                for v in args.values_mut() {
                    if let Some(s) = v.as_str() {
                        *v = Value::String(sub(s, &names));
                    }
                }
            }
            let link: crate::Link =
                serde_json::from_value(link).map_err(|e| format!("setup step {i}: bad link: {e}"))?;
            authz.link(&link).map(|_| None)
        } else if let Some(id) = &step.unlink {
            authz.unlink(id).map(|_| None)
        } else if let Some(text) = &step.replace_policies {
            authz.replace_policies(text).map(|_| None)
        } else if let Some(issue) = &step.issue {
            crate::IssuerKey::from_jwk(issue.issuer.clone(), &issue.key.to_string())
                .and_then(|key| authz.issue_credential(&sub(&issue.agent, &names), &key, issue.holder.as_deref()))
                .map(|credential| {
                    names.insert(issue.name.clone(), credential);
                    None
                })
        } else if let Some(proof) = &step.proof {
            proof.sign(&sub(&proof.token, &names), crate::Clock::now(&clock)).map(|p| {
                names.insert(proof.name.clone(), p);
                None
            })
        } else if let Some(sign) = &step.sign {
            crate::IssuerKey::from_jwk(sign.issuer.clone(), &sign.key.to_string())
                .and_then(|key| key.sign_jwt(&sign.claims))
                .map(|token| {
                    names.insert(sign.name.clone(), token);
                    None
                })
        } else {
            return Err(format!("setup step {i} does nothing"));
        };
        match (outcome, &step.expect_error) {
            (Ok(count), None) => {
                if let (Some(want), Some(got)) = (step.expect_count, count) {
                    if want != got {
                        return Err(format!("setup step {i}: revoke cut off {got}, expected {want}"));
                    }
                }
            }
            (Ok(_), Some(code)) => return Err(format!("setup step {i}: expected error {code}, got success")),
            (Err(e), None) => return Err(format!("setup step {i}: unexpected error {}: {e}", e.code())),
            (Err(e), Some(code)) if e.code() != code => {
                return Err(format!("setup step {i}: expected error {code}, got {}: {e}", e.code()))
            }
            (Err(_), Some(_)) => {}
        }
    }
    let mut request = serde_json::to_value(&case.request).map_err(|e| e.to_string())?;
    for key in ["principal", "resource"] {
        if let Some(s) = request.get(key).and_then(Value::as_str) {
            request[key] = Value::String(sub(s, &names));
        }
    }
    if let Some(list) = request.get_mut("on_behalf_of").and_then(Value::as_array_mut) {
        for v in list.iter_mut() {
            if let Some(s) = v.as_str() {
                *v = Value::String(sub(s, &names));
            }
        }
    }
    let request: Request = serde_json::from_value(request).map_err(|e| e.to_string())?;
    let mut dpop = case.dpop.clone().unwrap_or(Value::Null);
    if let Some(p) = dpop.get("proof").and_then(Value::as_str) {
        dpop["proof"] = Value::String(sub(p, &names));
    }
    let dpop = crate::DpopProof::from_json(&dpop).map_err(|e| format!("bad case dpop: {e}"))?;
    let decide = || match (&case.credential, &case.token) {
        (Some(c), _) => authz.authorize_credential(
            &sub(c, &names),
            request.action(),
            request.resource(),
            request.context().clone(),
            dpop.as_ref(),
        ),
        (None, Some(t)) => authz.authorize_token(
            &sub(t, &names),
            request.action(),
            request.resource(),
            request.context().clone(),
            dpop.as_ref(),
        ),
        (None, None) => authz.authorize(&request),
    };
    for _ in 1..case.times.unwrap_or(1) {
        let _ = decide();
    }
    check(&case.expect, decide())
}

fn check(expect: &Expect, got: crate::Result<crate::Decision>) -> Result<(), String> {
    let d = match (got, &expect.error) {
        (Err(e), Some(code)) if e.code() == code => return Ok(()),
        (Err(e), _) => return Err(format!("unexpected error {}: {e}", e.code())),
        (Ok(d), Some(code)) => return Err(format!("expected error {code}, got a decision: {}", d.to_json())),
        (Ok(d), None) => d,
    };
    let mut diffs = Vec::new();
    if let Some(a) = expect.allowed {
        if a != d.allowed() {
            diffs.push(format!("allowed: expected {a}, got {}", d.allowed()));
        }
    }
    if let Some(c) = &expect.deny_cause {
        if !crate::DenyCause::ALL.iter().any(|k| k.code() == c) {
            return Err(format!("unknown expected deny cause `{c}` (a typo?)"));
        }
        let got = d.deny_cause().map_or("none (allowed)", crate::DenyCause::code);
        if got != c.as_str() {
            diffs.push(format!("deny_cause: expected {c}, got {got}"));
        }
    }
    if let Some(r) = &expect.reasons {
        if r.as_slice() != d.reasons() {
            diffs.push(format!("reasons: expected {r:?}, got {:?}", d.reasons()));
        }
    }
    if let Some(h) = expect.deny_hop {
        if Some(h) != d.deny_hop() {
            diffs.push(format!(
                "deny_hop: expected {h}, got {}",
                d.deny_hop().map_or_else(|| "none".to_owned(), |x| x.to_string())
            ));
        }
    }
    if let Some(errs) = &expect.errors {
        let got: Vec<&str> = d.errors().iter().map(crate::EvaluationError::policy_id).collect();
        if errs.iter().map(String::as_str).collect::<Vec<_>>() != got {
            diffs.push(format!("errors: expected {errs:?}, got {got:?}"));
        }
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(diffs.join("; "))
    }
}
