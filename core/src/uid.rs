//! Entity uids: parsing (Cedar's parser, and the fast path for the common shape), formatting,
//! and each thread's own copies of the names decisions clone.

use crate::error::{Error, Result};
use cedar_policy::{EntityTypeName, EntityUid};
use rustc_hash::FxHashMap;
use std::str::FromStr;

/// An entity uid, checked once: its type, its id, and its canonical Cedar text
/// (`Helpdesk::User::"alice"`, the id escaped). Accepted wherever a uid is (it converts into
/// the text the request takes), so nobody formats uids by hand. The same type is `ambit.Uid`
/// in Python and `Uid` in Node.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uid {
    text: String,
    type_name: String,
    id: String,
}

impl Uid {
    /// The uid of type `type_name` (a Cedar type name, namespaces included) and id `id` (any
    /// text: it is escaped in the canonical form).
    ///
    /// # Errors
    /// `AMBIT_INVALID_REQUEST` when `type_name` is not a valid Cedar type name.
    pub fn new(type_name: &str, id: &str) -> Result<Self> {
        // formatted by Cedar, then read back: the type as Cedar normalises it
        Self::parse(&format_uid(type_name, id)?)
    }

    /// Parses `Type::"id"` (Cedar's syntax, escapes included).
    ///
    /// # Errors
    /// `AMBIT_INVALID_REQUEST` when `text` is not a uid.
    pub fn parse(text: &str) -> Result<Self> {
        let uid = parse_uid(text, "entity")?;
        Ok(Self { text: uid.to_string(), type_name: uid.type_name().to_string(), id: uid.id().unescaped().to_owned() })
    }

    /// The entity type, e.g. `Helpdesk::User`.
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// The id, unescaped.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The canonical text, as a request takes it.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl FromStr for Uid {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self> {
        Self::parse(text)
    }
}

impl std::fmt::Display for Uid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl From<Uid> for String {
    fn from(uid: Uid) -> Self {
        uid.text
    }
}

impl From<&Uid> for String {
    fn from(uid: &Uid) -> Self {
        uid.text.clone()
    }
}

impl AsRef<str> for Uid {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

/// Parses `Type::"id"` with Cedar's parser; `what` names it in the error.
pub(crate) fn parse_uid(text: &str, what: &str) -> Result<EntityUid> {
    text.parse::<EntityUid>().map_err(|_| {
        Error::invalid_request(format!(
            "malformed {what} uid `{}`: expected `Type::\"id\"`",
            crate::error::user_text(text)
        ))
    })
}

/// Formats an entity uid in Cedar syntax, escaping the id: `format_uid("User", "a\"b")` is
/// `User::"a\"b"`.
///
/// # Errors
/// `AMBIT_INVALID_REQUEST` when `type_name` is not a valid Cedar type name.
pub fn format_uid(type_name: &str, id: &str) -> crate::Result<String> {
    let ty: cedar_policy::EntityTypeName = type_name.parse().map_err(|_| {
        crate::Error::invalid_request(format!("malformed entity type `{}`", crate::error::user_text(type_name)))
    })?;
    Ok(cedar_policy::EntityUid::from_type_name_and_id(ty, cedar_policy::EntityId::new(id)).to_string())
}

/// `uid`'s canonical text (what Cedar's `Display` writes) from its type's text: written
/// directly when the id is plain (no byte Cedar escapes, the rule the fast parse uses), else
/// through `Display`. A mint writes each agent's uid text once; `Display` was a quarter of it.
pub(crate) fn uid_text(uid: &cedar_policy::EntityUid, type_text: &str) -> String {
    let id = uid.id().unescaped();
    if !id.bytes().all(plain_id_byte) {
        return uid.to_string();
    }
    let mut text = String::with_capacity(type_text.len() + id.len() + 4);
    text.push_str(type_text);
    text.push_str("::\"");
    text.push_str(id);
    text.push('"');
    text
}

/// Id characters that need no escaping in Cedar's normalized uid text.
pub(crate) fn plain_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_'
                | b'.'
                | b':'
                | b'@'
                | b'/'
                | b'+'
                | b'='
                | b'~'
                | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'!'
                | b'?'
                | b','
                | b';'
                | b'|'
        )
}

/// Names a decision clones, as this thread's own copies.
///
/// A Cedar name holds reference counts (`Arc`s: its namespace path, its source text) that every
/// clone increments and every drop decrements. Cloned from one table shared by all threads,
/// each decision on each core writes the same few cache lines, and a second thread adds little
/// throughput (measured: 1.25× the decisions of one thread at P = 100, where two processes
/// give 2×). A copy parsed once per thread from the name's text is equal to the shared one
/// (equality and hashing ignore source locations) and its counters stay on that thread.
pub(crate) struct ThreadCopies {
    types: FxHashMap<String, EntityTypeName>,
    uids: FxHashMap<String, EntityUid>,
}

/// Entries per map and thread; beyond it the map starts over (names come from snapshots, so
/// only a process cycling through many schemas gets there).
const MAX_THREAD_COPIES: usize = 1024;

thread_local! {
    static THREAD_COPIES: std::cell::RefCell<ThreadCopies> =
        std::cell::RefCell::new(ThreadCopies { types: FxHashMap::default(), uids: FxHashMap::default() });
}

/// This thread's copy of the name written `text`, which `shared` gives (or `None` when the
/// snapshot does not know it). Falls back to the shared value when the thread's table cannot
/// be used (during thread teardown).
pub(crate) fn thread_copy<T: Clone + FromStr + PartialEq>(text: &str, shared: impl Fn() -> Option<T>) -> Option<T>
where
    ThreadCopies: CopyTable<T>,
{
    let local = THREAD_COPIES.try_with(|cell| {
        let mut copies = cell.try_borrow_mut().ok()?;
        let table = copies.table();
        if let Some(t) = table.get(text) {
            return Some(t.clone());
        }
        // only names the snapshot knows get a copy (the table stays bounded by them)
        shared()?;
        let own: T = text.parse().ok()?;
        debug_assert!(shared().is_some_and(|s| s == own), "a thread copy differs from the shared name");
        if table.len() >= MAX_THREAD_COPIES {
            table.clear();
        }
        table.insert(text.to_owned(), own.clone());
        Some(own)
    });
    match local {
        Ok(Some(t)) => Some(t),
        // unknown to the snapshot (`shared` says so again, cheaply), or no usable thread table
        _ => shared(),
    }
}

pub(crate) trait CopyTable<T> {
    fn table(&mut self) -> &mut FxHashMap<String, T>;
}

impl CopyTable<EntityTypeName> for ThreadCopies {
    fn table(&mut self) -> &mut FxHashMap<String, EntityTypeName> {
        &mut self.types
    }
}

impl CopyTable<EntityUid> for ThreadCopies {
    fn table(&mut self) -> &mut FxHashMap<String, EntityUid> {
        &mut self.uids
    }
}

/// This thread's copy of a uid the snapshot holds, `text` being its canonical text.
pub(crate) fn thread_uid(text: &str, shared: &EntityUid) -> EntityUid {
    thread_copy(text, || Some(shared.clone())).unwrap_or_else(|| shared.clone())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]
    use super::Uid;

    /// The direct write is exactly Cedar's uid text, for plain ids and for every id Cedar
    /// escapes (quotes, backslashes, control and non-ASCII characters), minted or imported.
    #[test]
    fn uid_text_is_cedars_display() {
        for ty in ["Agent", "Helpdesk::Agent", "A::B::Agent"] {
            let fresh = uuid::Uuid::new_v4().to_string();
            for id in [fresh.as_str(), "", "a\"b", "a\\b", "line\nbreak", "tab\t", "é", "💥", "x::\"y\"", "a b", "{}"]
            {
                let uid = cedar_policy::EntityUid::from_type_name_and_id(
                    ty.parse().unwrap(),
                    cedar_policy::EntityId::new(id),
                );
                assert_eq!(super::uid_text(&uid, ty), uid.to_string(), "{id:?}");
            }
        }
    }
    use proptest::prelude::*;

    #[test]
    fn a_uid_is_its_parts_and_its_text() {
        let u = Uid::new("Helpdesk::User", "a\"b").unwrap();
        assert_eq!(u.type_name(), "Helpdesk::User");
        assert_eq!(u.id(), "a\"b");
        assert_eq!(u.to_string(), r#"Helpdesk::User::"a\"b""#);
        assert_eq!(Uid::parse(u.as_str()).unwrap(), u);
        assert_eq!(String::from(&u), u.as_str());
        let e = Uid::new("not a type", "x").unwrap_err();
        assert_eq!(e.code(), "AMBIT_INVALID_REQUEST");
        assert_eq!(Uid::parse("User::alice").unwrap_err().code(), "AMBIT_INVALID_REQUEST");
    }

    proptest! {
        #[test]
        fn any_id_round_trips(id in any::<String>(), ns in prop::bool::ANY) {
            let ty = if ns { "A::B" } else { "User" };
            let u = Uid::new(ty, &id).unwrap();
            prop_assert_eq!(u.id(), id.as_str());
            prop_assert_eq!(u.type_name(), ty);
            let back = Uid::parse(u.as_str()).unwrap();
            prop_assert_eq!(&back, &u);
        }
    }
}
