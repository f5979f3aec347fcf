//! Errors returned by ambit's public API.
//!
//! One enum, [`Error`], with a stable machine-readable [`Error::code`] per variant. Each variant
//! wraps a struct with private fields and accessors, so details can grow without breaking
//! callers. A deny is never an error: it is a [`crate::Decision`] with `allowed() == false`.

use std::fmt;
use std::path::{Path, PathBuf};

/// Errors returned by ambit's public API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory could not be read.
    #[error(transparent)]
    Io(#[from] IoError),
    /// A policy source holds no policies at all.
    #[error(transparent)]
    EmptySource(#[from] EmptySourceError),
    /// Policy text does not parse, or uses a construct ambit does not support.
    #[error(transparent)]
    PolicyParse(#[from] PolicyParseError),
    /// Two policies claim the same id.
    #[error(transparent)]
    DuplicatePolicyId(#[from] DuplicatePolicyIdError),
    /// The schema does not parse or is inconsistent.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// Policies fail validation against the schema.
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// A template link cannot be made: unknown template, a slot missing or extra, a link id
    /// already in use, a malformed uid.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// Static or per-request entities are malformed or do not match the schema.
    #[error(transparent)]
    Entities(#[from] EntitiesError),
    /// A request cannot be evaluated (malformed uid, unknown action, wrong context type, ...).
    #[error(transparent)]
    InvalidRequest(#[from] InvalidRequestError),
    /// A mint, revoke or reinstate would break the delegation rules.
    #[error(transparent)]
    InvalidDelegation(#[from] InvalidDelegationError),
    /// A reload failed; the last good policies keep serving.
    #[error(transparent)]
    Reload(#[from] ReloadError),
    /// An input exceeds a configured limit.
    #[error(transparent)]
    Limit(#[from] LimitError),
    /// An audit sink or audit log failed.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// Something ambit did not expect; the operation failed closed.
    #[error(transparent)]
    Internal(#[from] InternalError),
    /// An option is unknown, of the wrong type or out of range (`AuthorizerOptions`).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The fleet backend (Redis) could not be reached, refused a write, or holds a state this
    /// process cannot follow; nothing changed locally.
    #[error(transparent)]
    Fleet(#[from] FleetError),
}

impl Error {
    /// Every code [`Error::code`] can return, in declaration order.
    pub const CODES: &'static [&'static str] = &[
        "AMBIT_IO",
        "AMBIT_EMPTY_SOURCE",
        "AMBIT_POLICY_PARSE",
        "AMBIT_DUPLICATE_POLICY_ID",
        "AMBIT_SCHEMA",
        "AMBIT_VALIDATION",
        "AMBIT_LINK",
        "AMBIT_ENTITIES",
        "AMBIT_INVALID_REQUEST",
        "AMBIT_INVALID_DELEGATION",
        "AMBIT_RELOAD",
        "AMBIT_LIMIT",
        "AMBIT_AUDIT",
        "AMBIT_INTERNAL",
        "AMBIT_CONFIG",
        "AMBIT_FLEET",
    ];

    /// The error as JSON text `{"code":…,"message":…}`, ASCII only (as
    /// [`crate::Decision::to_camel_json_string`]): a failed slot of a batch as the Node package
    /// reads it.
    pub fn to_camel_json_string(&self) -> String {
        let mut w = crate::ascii::AsciiJson(String::with_capacity(64));
        w.raw(r#"{"code":"#);
        w.string(self.code());
        w.raw(r#","message":"#);
        w.string(&self.to_string());
        w.raw("}");
        w.0
    }

    /// The stable code of this error, e.g. `AMBIT_POLICY_PARSE`. Codes never change meaning.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Io(_) => "AMBIT_IO",
            Self::EmptySource(_) => "AMBIT_EMPTY_SOURCE",
            Self::PolicyParse(_) => "AMBIT_POLICY_PARSE",
            Self::DuplicatePolicyId(_) => "AMBIT_DUPLICATE_POLICY_ID",
            Self::Schema(_) => "AMBIT_SCHEMA",
            Self::Validation(_) => "AMBIT_VALIDATION",
            Self::Link(_) => "AMBIT_LINK",
            Self::Entities(_) => "AMBIT_ENTITIES",
            Self::InvalidRequest(_) => "AMBIT_INVALID_REQUEST",
            Self::InvalidDelegation(_) => "AMBIT_INVALID_DELEGATION",
            Self::Reload(_) => "AMBIT_RELOAD",
            Self::Limit(_) => "AMBIT_LIMIT",
            Self::Audit(_) => "AMBIT_AUDIT",
            Self::Internal(_) => "AMBIT_INTERNAL",
            Self::Config(_) => "AMBIT_CONFIG",
            Self::Fleet(_) => "AMBIT_FLEET",
        }
    }

    /// Where in a source file the error is, when it comes from policy, schema or entity text.
    pub fn location(&self) -> Option<&Location> {
        match self {
            Self::PolicyParse(e) => e.0.location.as_ref(),
            Self::DuplicatePolicyId(e) => e.0.location.as_ref(),
            Self::Schema(e) => e.0.location.as_ref(),
            Self::Validation(e) => e.0.location.as_ref(),
            Self::Link(e) => e.0.location.as_ref(),
            Self::Entities(e) => e.0.location.as_ref(),
            Self::Reload(e) => e.cause.location(),
            _ => None,
        }
    }

    /// The message without the location prefix.
    pub fn message(&self) -> &str {
        match self {
            Self::Io(e) => &e.message,
            Self::EmptySource(e) => &e.0.message,
            Self::PolicyParse(e) => &e.0.message,
            Self::DuplicatePolicyId(e) => &e.0.message,
            Self::Schema(e) => &e.0.message,
            Self::Validation(e) => &e.0.message,
            Self::Link(e) => &e.0.message,
            Self::Entities(e) => &e.0.message,
            Self::InvalidRequest(e) => &e.0.message,
            Self::InvalidDelegation(e) => &e.0.message,
            Self::Reload(e) => e.cause.message(),
            Self::Limit(e) => &e.0.message,
            Self::Audit(e) => &e.0.message,
            Self::Internal(e) => &e.0.message,
            Self::Config(e) => &e.0.message,
            Self::Fleet(e) => &e.0.message,
        }
    }

    pub(crate) fn invalid_request(message: impl Into<String>) -> Self {
        InvalidRequestError(Detail::new(message)).into()
    }

    pub(crate) fn invalid_delegation(message: impl Into<String>) -> Self {
        InvalidDelegationError(Detail::new(message)).into()
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        ConfigError(Detail::new(message)).into()
    }
    /// A fleet backend failure (`AMBIT_FLEET`); public so that other backends can report one.
    pub fn fleet(message: impl Into<String>) -> Self {
        FleetError(Detail::new(message)).into()
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        InternalError(Detail::new(message)).into()
    }

    pub(crate) fn entities(message: impl Into<String>, location: Option<Location>) -> Self {
        EntitiesError(Detail::located(message, location)).into()
    }

    pub(crate) fn schema(message: impl Into<String>, location: Option<Location>) -> Self {
        SchemaError(Detail::located(message, location)).into()
    }

    pub(crate) fn policy_parse(message: impl Into<String>, location: Option<Location>) -> Self {
        PolicyParseError(Detail::located(message, location)).into()
    }

    pub(crate) fn limit(message: impl Into<String>) -> Self {
        LimitError(Detail::new(message)).into()
    }

    pub(crate) fn audit(message: impl Into<String>) -> Self {
        AuditError(Detail::new(message)).into()
    }

    pub(crate) fn io(path: &Path, err: &std::io::Error) -> Self {
        IoError::new(path, err).into()
    }
}

fn io_reason(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => err.to_string().to_lowercase(),
    }
}

/// A position in a source file: path (or a name for inline text), 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub(crate) file: String,
    pub(crate) line: usize,
    pub(crate) column: usize,
    pub(crate) excerpt: String,
}

impl Location {
    /// Builds a location from a byte offset into `text`.
    pub(crate) fn from_offset(file: &str, text: &str, offset: usize) -> Self {
        let offset = offset.min(text.len());
        let before = text.get(..offset).unwrap_or(text);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = text.get(line_start..offset).map_or(1, |s| s.chars().count() + 1);
        let excerpt = text.get(line_start..).and_then(|rest| rest.lines().next()).unwrap_or("").to_owned();
        Self { file: file.to_owned(), line, column, excerpt }
    }

    /// Builds a location from a 1-based line and column (serde_json's error position).
    pub(crate) fn from_line_column(file: &str, text: &str, line: usize, column: usize) -> Self {
        let line = line.max(1);
        let excerpt = text.lines().nth(line - 1).unwrap_or("").to_owned();
        Self { file: file.to_owned(), line, column: column.max(1), excerpt }
    }

    /// The file path, or the name given to inline text.
    pub fn file(&self) -> &str {
        &self.file
    }
    /// 1-based line.
    pub fn line(&self) -> usize {
        self.line
    }
    /// 1-based column, in characters.
    pub fn column(&self) -> usize {
        self.column
    }
    /// The source line the error points into, for a caret display.
    pub fn excerpt(&self) -> &str {
        &self.excerpt
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// The shared body of most error structs: a message and an optional location.
#[derive(Debug, Clone)]
struct Detail {
    message: String,
    location: Option<Location>,
}

impl Detail {
    fn new(message: impl Into<String>) -> Self {
        Self { message: message.into(), location: None }
    }
    fn located(message: impl Into<String>, location: Option<Location>) -> Self {
        Self { message: message.into(), location }
    }
}

impl fmt::Display for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(loc) => write!(f, "{loc}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

macro_rules! detail_error {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name(Detail);

        impl $name {
            /// The message, without location.
            pub fn message(&self) -> &str {
                &self.0.message
            }
            /// The source location, when the error comes from a file.
            pub fn location(&self) -> Option<&Location> {
                self.0.location.as_ref()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::error::Error for $name {}
    };
}

detail_error!(
    /// A policy source holds no policies (`AMBIT_EMPTY_SOURCE`).
    EmptySourceError
);
detail_error!(
    /// Policy text does not parse (`AMBIT_POLICY_PARSE`).
    PolicyParseError
);
detail_error!(
    /// Two policies claim the same id (`AMBIT_DUPLICATE_POLICY_ID`).
    DuplicatePolicyIdError
);
detail_error!(
    /// The schema does not parse or is inconsistent (`AMBIT_SCHEMA`).
    SchemaError
);
detail_error!(
    /// A template link cannot be made (`AMBIT_LINK`).
    LinkError
);
detail_error!(
    /// Entities are malformed or do not match the schema (`AMBIT_ENTITIES`).
    EntitiesError
);
detail_error!(
    /// A request cannot be evaluated (`AMBIT_INVALID_REQUEST`).
    InvalidRequestError
);
detail_error!(
    /// A delegation rule would be broken (`AMBIT_INVALID_DELEGATION`).
    InvalidDelegationError
);
detail_error!(
    /// An input exceeds a configured limit (`AMBIT_LIMIT`).
    LimitError
);
detail_error!(
    /// An audit sink or log failed (`AMBIT_AUDIT`).
    AuditError
);
detail_error!(
    /// An internal surprise; the operation failed closed (`AMBIT_INTERNAL`).
    InternalError
);
detail_error!(
    /// An option is unknown, of the wrong type or out of range (`AMBIT_CONFIG`).
    ConfigError
);
detail_error!(
    /// The fleet backend failed or cannot be followed (`AMBIT_FLEET`).
    FleetError
);

impl EmptySourceError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(Detail::new(message))
    }
}

impl DuplicatePolicyIdError {
    pub(crate) fn new(message: impl Into<String>, location: Option<Location>) -> Self {
        Self(Detail::located(message, location))
    }
}

impl LinkError {
    pub(crate) fn new(message: impl Into<String>, location: Option<Location>) -> Self {
        Self(Detail::located(message, location))
    }
}

/// Policies fail validation against the schema (`AMBIT_VALIDATION`): every validation error,
/// each with its policy's file and line; the message is the first, the others follow it.
#[derive(Debug, Clone)]
pub struct ValidationError(Detail, Vec<Detail>);

impl ValidationError {
    /// One error per (message, location), the first first.
    pub(crate) fn new(mut all: Vec<(String, Option<Location>)>) -> Self {
        let rest = all.split_off(1.min(all.len()));
        let first = all.pop().map_or_else(|| Detail::new("validation failed"), |(m, l)| Detail::located(m, l));
        Self(first, rest.into_iter().map(|(m, l)| Detail::located(m, l)).collect())
    }
    /// The first error's message, without location.
    pub fn message(&self) -> &str {
        &self.0.message
    }
    /// The first error's location.
    pub fn location(&self) -> Option<&Location> {
        self.0.location.as_ref()
    }
    /// Every validation error, as (message, location), the first first.
    pub fn errors(&self) -> impl Iterator<Item = (&str, Option<&Location>)> {
        std::iter::once(&self.0).chain(&self.1).map(|d| (d.message.as_str(), d.location.as_ref()))
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)?;
        if !self.1.is_empty() {
            write!(f, " (and {} more validation errors: ", self.1.len())?;
            for (i, d) in self.1.iter().enumerate() {
                if i > 0 {
                    f.write_str("; ")?;
                }
                d.fmt(f)?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationError {}

/// A file or directory could not be read (`AMBIT_IO`).
#[derive(Debug, Clone)]
pub struct IoError {
    path: PathBuf,
    message: String,
}

impl IoError {
    /// An error reading `path`.
    pub fn new(path: &Path, err: &std::io::Error) -> Self {
        Self { path: path.to_path_buf(), message: format!("cannot read `{}`: {}", path.display(), io_reason(err)) }
    }

    /// An error reading standard input.
    pub fn stdin(err: &std::io::Error) -> Self {
        Self { path: PathBuf::from("-"), message: format!("cannot read standard input: {}", io_reason(err)) }
    }

    /// The path that could not be read.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for IoError {}

/// A reload failed and the last good snapshot keeps serving (`AMBIT_RELOAD`).
#[derive(Debug)]
pub struct ReloadError {
    cause: Box<Error>,
}

impl ReloadError {
    pub(crate) fn new(cause: Error) -> Self {
        Self { cause: Box::new(cause) }
    }

    /// The error that made the new policies unusable (parse, schema, validation, ...).
    pub fn cause(&self) -> &Error {
        &self.cause
    }
}

impl fmt::Display for ReloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "reload rejected, last good policies kept: {}", self.cause)
    }
}

impl std::error::Error for ReloadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.cause)
    }
}

/// Result alias for ambit's API.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Turns a Cedar diagnostic (parse, schema or validation error) into message and location.
/// The whole diagnostic is kept: its source chain, its labels' texts (Cedar's parser puts
/// "expected `;` or identifier" there), its help, and every related diagnostic.
pub(crate) fn diagnostic_parts(
    diag: &dyn miette::Diagnostic,
    display: &str,
    file: &str,
    text: &str,
) -> (String, Option<Location>) {
    let mut offset = diag.labels().and_then(|mut labels| labels.next()).map(|l| l.offset());
    let mut parts: Vec<String> = vec![display.trim_end_matches('.').to_owned()];
    collect_parts(diag, &mut parts, &mut offset, 0);
    let mut message = parts.join(": ");
    if let Some(help) = diag.help() {
        let help = help.to_string();
        let help = help.trim_end_matches('.');
        if !message.contains(help) {
            message = format!("{message}: {help}");
        }
    }
    let message = first_lower(&message.replace('\n', " "));
    let location = offset.map(|o| Location::from_offset(file, text, o));
    let location = location.or_else(|| {
        Some(Location { file: file.to_owned(), line: 1, column: 1, excerpt: String::new() })
            .filter(|_| !file.is_empty())
    });
    (message, location)
}

/// Labels, sources and related diagnostics of `diag`, each once, in order; the first label
/// offset found anywhere when the top has none.
fn collect_parts(diag: &dyn miette::Diagnostic, parts: &mut Vec<String>, offset: &mut Option<usize>, depth: usize) {
    let push = |s: String, parts: &mut Vec<String>| {
        let s = s.trim_end_matches('.').to_owned();
        if !s.is_empty() && !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    };
    for label in diag.labels().into_iter().flatten() {
        if let Some(text) = label.label() {
            push(text.to_owned(), parts);
        }
        offset.get_or_insert(label.offset());
    }
    let mut source = std::error::Error::source(diag);
    while let Some(s) = source {
        push(s.to_string(), parts);
        source = s.source();
    }
    if depth < 4 {
        for related in diag.related().into_iter().flatten() {
            push(related.to_string(), parts);
            collect_parts(related, parts, offset, depth + 1);
        }
    }
}

/// An error's text and every `source()` below it, joined with `: ` (Cedar's entity errors
/// say only "error during entity deserialization" at the top; the cause is underneath).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![cedar_text(&e)];
    let mut source = e.source();
    while let Some(s) = source {
        let text = cedar_text(&s);
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

fn first_lower(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_uppercase() && !chars.next().is_some_and(char::is_uppercase) => {
            c.to_lowercase().chain(s.chars().skip(1)).collect()
        }
        _ => s.to_owned(),
    }
}

/// User input quoted in a message: control characters escaped, long input cut.
pub(crate) fn user_text(s: &str) -> String {
    const MAX: usize = 120;
    let mut out: String = s.chars().take(MAX).flat_map(char::escape_debug).collect();
    if s.chars().count() > MAX {
        out.push_str("...");
    }
    out
}

/// A Cedar error's text in ambit's message style: one line, lowercase start, no final period.
pub(crate) fn cedar_text(e: &dyn std::fmt::Display) -> String {
    first_lower(e.to_string().replace('\n', " ").trim_end_matches('.'))
}

#[cfg(test)]
mod tests {
    use super::{Error, IoError};

    /// `AMBIT_INTERNAL` cannot be caused from input (that would be a bug); its shape is checked
    /// here, with the stable code every other variant carries.
    #[test]
    fn internal_errors_carry_their_code() {
        let e = Error::internal("cannot assemble policies: surprise");
        assert_eq!(e.code(), "AMBIT_INTERNAL");
        assert!(e.to_string().contains("cannot assemble policies"), "{e}");
        assert!(Error::CODES.contains(&e.code()));
        let io = Error::from(IoError::new(std::path::Path::new("x"), &std::io::Error::other("gone")));
        assert_eq!(io.code(), "AMBIT_IO");
    }

    #[test]
    fn error_json_is_ascii_code_and_message() {
        let e = Error::invalid_request("bad \"uid\" \u{e9}\u{1f600}\n\\ end");
        let text = e.to_camel_json_string();
        assert!(text.is_ascii() && !text.contains('\n'), "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(v, serde_json::json!({"code": "AMBIT_INVALID_REQUEST", "message": e.to_string()}));
    }
}
