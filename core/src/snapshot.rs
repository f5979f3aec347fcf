//! One immutable, fully validated view of schema, policies, index and static entities.
//!
//! A snapshot is built off the read path and swapped in whole; a decision loads one snapshot and
//! never mixes two versions.

use crate::config::Validation;
use crate::error::{diagnostic_parts, DuplicatePolicyIdError, Error, Location, Result, ValidationError};
use crate::index::Index;
use crate::source::{Text, Texts};
use cedar_policy::{
    Entities, EntityTypeName, EntityUid, PolicyId, PolicySet, Schema, SchemaFragment, ValidationMode, Validator,
};
use rustc_hash::{FxHashMap, FxHashSet};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::str::FromStr;

/// Facts about one action known at load.
#[derive(Debug)]
pub(crate) struct ActionInfo {
    /// The canonical uid texts of the action and of every action group it is in: an agent
    /// scope naming any of them covers the action.
    pub(crate) scope_names: Vec<String>,
    /// Index of the action's policy slice in `Index::slices`.
    pub(crate) slice: usize,
    /// Principal types the schema allows for the action (`None` without a schema entry).
    pub(crate) principals: Option<FxHashSet<EntityTypeName>>,
    /// Resource types the schema allows for the action.
    pub(crate) resources: Option<FxHashSet<EntityTypeName>>,
    /// The action uid's text, as decisions report it.
    pub(crate) text: String,
}

#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) schema: Option<Schema>,
    pub(crate) policies: PolicySet,
    pub(crate) index: Index,
    pub(crate) entities: Entities,
    /// Every static entity, shared (the same `Arc`s) with `entities`, with the uids its
    /// attributes and tags mention: what a decision's entity slice takes without a copy.
    pub(crate) statics: std::sync::Arc<Statics>,
    /// Unique to this snapshot in the process (a reload's snapshot gets a new one): what
    /// per-snapshot caches outside it (an agent's closed entity) are keyed by.
    pub(crate) id: u64,
    pub(crate) actions: FxHashMap<EntityUid, ActionInfo>,
    /// Bare action name -> uid; `None` when the name is ambiguous across namespaces.
    pub(crate) action_names: FxHashMap<String, Option<EntityUid>>,
    pub(crate) agent_type: EntityTypeName,
    /// The agent type as uid text writes it (`Helpdesk::Agent`): a mint writes its agent's uid
    /// text from it and the new id, not through `Display`.
    pub(crate) agent_type_text: String,
    /// Every entity type the snapshot knows, by its text, for the fast uid parse.
    pub(crate) types: FxHashMap<String, EntityTypeName>,
    pub(crate) version: String,
    pub(crate) generation: u64,
    pub(crate) validation: Validation,
    /// Bare action (or action group) name -> the canonical uid text it names; `None` when the
    /// name is ambiguous across namespaces.
    pub(crate) scope_names: FxHashMap<String, Option<String>>,
    /// Enumerated entity types and their declared ids: strict request validation refuses any
    /// other id, as Cedar's `Request::new` with a schema does.
    pub(crate) enums: FxHashMap<EntityTypeName, FxHashSet<String>>,
    /// Type signatures of agent entities already checked against the schema (see
    /// `registry::build_entity`): conformance depends only on the signature.
    pub(crate) agent_shapes: papaya::HashSet<String>,
    /// The `scopes` set value of agents minted with each scope list (see `agent::scope_value`).
    pub(crate) scope_values: papaya::HashMap<Vec<String>, cedar_policy_core::ast::Value>,
    /// `<action>|<signature>` of plain request contexts already validated for the action
    /// (see `authorizer::parse_context`).
    pub(crate) context_shapes: papaya::HashSet<String>,
    /// Files of the source directories read, and skipped.
    pub(crate) files_read: Vec<std::path::PathBuf>,
    pub(crate) files_skipped: Vec<std::path::PathBuf>,
    /// What the next build may take from this one instead of doing it again.
    pub(crate) reuse: Reuse,
}

/// What a reload takes from the snapshot it replaces when its inputs are the same: the schema
/// and the entities when their texts are, the parse of each policy file whose name and text
/// are, and the validation of each policy whose id and text are (Cedar validates each policy
/// on its own against the schema). A reload that changes one file re-parses that file, and
/// re-validates the policies whose text changed.
#[derive(Debug, Default)]
pub(crate) struct Reuse {
    /// SHA-256 of the schema texts.
    schema: [u8; 32],
    /// SHA-256 of the entities text, and whether the entities were checked against the schema.
    entities: ([u8; 32], bool),
    /// The policies that passed validation in this mode against this schema: id -> source
    /// text. `None` when validation was off, or templates are in play (their links are
    /// validated with them: such a set is validated whole).
    validated: Option<Validated>,
    /// Each policy file's parse (see [`Parsed`]).
    parsed: Parsed,
}

fn digest<'t>(texts: impl IntoIterator<Item = &'t Text>) -> [u8; 32] {
    let mut h = Sha256::new();
    for t in texts {
        for part in [&t.name, &t.id_stem, &t.content] {
            h.update(part.len().to_le_bytes());
            h.update(part.as_bytes());
        }
    }
    h.finalize().into()
}

pub(crate) struct BuildOptions<'a> {
    /// The snapshot this build replaces (a reload), whose work it reuses where the inputs are
    /// the same (see [`Reuse`]).
    pub(crate) previous: Option<&'a Snapshot>,
    pub(crate) validation: Validation,
    pub(crate) agent_type: Option<&'a EntityTypeName>,
    pub(crate) generation: u64,
    pub(crate) max_source_bytes: usize,
    /// Whether static entities are checked against the schema (default true).
    pub(crate) validate_entities: bool,
}

impl Snapshot {
    /// The canonical uid text of the action or action group a scope names: a bare name that is
    /// unique across namespaces, or a full uid (`Ns::Action::"export"`).
    ///
    /// # Errors
    /// `AMBIT_INVALID_DELEGATION` for an unknown or ambiguous name.
    pub(crate) fn resolve_scope(&self, scope: &str) -> Result<String> {
        let unknown = || {
            Error::invalid_delegation(format!(
                "unknown scope `{}`: it names no action or action group",
                crate::error::user_text(scope)
            ))
        };
        if scope.contains("::") {
            let uid: EntityUid = scope.parse().map_err(|_| unknown())?;
            return match self.actions.get(&uid) {
                Some(info) => Ok(info.text.clone()),
                None if self.actions.is_empty() => Ok(uid.to_string()),
                None => Err(unknown()),
            };
        }
        match self.scope_names.get(scope) {
            Some(Some(text)) => Ok(text.clone()),
            Some(None) => Err(Error::invalid_delegation(format!(
                "scope `{}` is ambiguous across namespaces: give the action's full uid",
                crate::error::user_text(scope)
            ))),
            // nothing to check a name against (no schema, no action entities): keep it as an
            // action of the default namespace, which is how the request names it
            None if self.actions.is_empty() => Ok(format!("Action::{}", serde_json::Value::from(scope))),
            None => Err(unknown()),
        }
    }

    /// Whether `uid` names a minted agent (one the registry holds): of the agent type, and not
    /// a static agent listed in the entities file (a long-lived agent the application already
    /// has, decided as Cedar decides any static principal).
    pub(crate) fn is_minted(&self, uid: &EntityUid) -> bool {
        uid.type_name() == &self.agent_type && self.entities.get(uid).is_none()
    }

    /// Cedar's strict request check of enumerated entity ids: `uid` is of an enumerated type
    /// and its id is not one the schema declares.
    pub(crate) fn bad_enum_id(&self, uid: &EntityUid) -> bool {
        self.enums.get(uid.type_name()).is_some_and(|ids| !ids.contains(uid.id().unescaped()))
    }

    /// Parses `Type::"id"`. The common shape (a known type, an id of plain characters that
    /// Cedar never escapes) is split directly, which gives exactly what Cedar's parser gives;
    /// anything else goes through Cedar's parser.
    pub(crate) fn parse_uid(&self, text: &str, what: &str) -> Result<EntityUid> {
        match self.parse_plain_uid(text) {
            Some(uid) => Ok(uid),
            None => crate::uid::parse_uid(text, what),
        }
    }

    /// [`Snapshot::parse_uid`] with the uid's canonical text (what Cedar prints): the input
    /// itself when it has the common shape, which saves formatting it again.
    pub(crate) fn parse_uid_text(&self, text: &str, what: &str) -> Result<(EntityUid, String)> {
        if let Some(uid) = self.parse_plain_uid(text) {
            debug_assert_eq!(uid.to_string(), text);
            Ok((uid, text.to_owned()))
        } else {
            let uid = crate::uid::parse_uid(text, what)?;
            let canonical = uid.to_string();
            Ok((uid, canonical))
        }
    }

    fn parse_plain_uid(&self, text: &str) -> Option<EntityUid> {
        // the first quote ends the type (a type name has none); `find` on one byte is a
        // memchr, cheaper than searching for the three-byte separator
        let quote = text.find('"')?;
        let ty = text[..quote].strip_suffix("::")?;
        let id = text[quote + 1..].strip_suffix('"')?;
        if !id.bytes().all(crate::uid::plain_id_byte) {
            return None;
        }
        let t = crate::uid::thread_copy(ty, || self.types.get(ty).cloned())?;
        Some(EntityUid::from_type_name_and_id(t, cedar_policy::EntityId::new(id)))
    }

    pub(crate) fn build(texts: &Texts, opts: &BuildOptions<'_>) -> Result<Self> {
        for t in texts.schemas.iter().chain(&texts.policies).chain(&texts.entities) {
            if t.content.len() > opts.max_source_bytes {
                return Err(Error::limit(format!(
                    "`{}` is {} bytes, more than the limit of {}",
                    t.name,
                    t.content.len(),
                    opts.max_source_bytes
                )));
            }
        }
        let schema_digest = digest(&texts.schemas);
        // the snapshot replaced, when it was built over the same schema
        let same_schema = opts.previous.filter(|p| p.reuse.schema == schema_digest);
        let schema = match same_schema {
            Some(p) => p.schema.clone(),
            None => parse_schema(&texts.schemas)?,
        };
        let before = opts.previous.map(|p| &p.reuse.parsed);
        let (mut policies, origins, parsed) = parse_policies(&texts.policies, texts.positional_ids, before)?;
        apply_links(&mut policies, &texts.links, &texts.runtime_links)?;
        let validated = if opts.validation == Validation::Off {
            None
        } else {
            let Some(schema) = &schema else {
                return Err(Error::schema(
                    "validation is on but no schema was given: add a `*.cedarschema` file or set validation to `off`",
                    None,
                ));
            };
            let before = same_schema.and_then(|p| p.reuse.validated.as_ref());
            validate_changed(schema, &policies, &origins, &texts.policies, opts.validation, before)?
        };
        let agent_type = match opts.agent_type {
            Some(t) => t.clone(),
            None => detect_agent_type(schema.as_ref())?,
        };
        let entities_key = (digest(&texts.entities), opts.validate_entities);
        let (entities, statics) = if let Some(p) = same_schema.filter(|p| p.reuse.entities == entities_key) {
            // the same text parsed against the same schema: the same entities, shared
            (p.entities.clone(), std::sync::Arc::clone(&p.statics))
        } else {
            let entities = parse_entities(texts.entities.as_ref(), schema.as_ref(), opts.validate_entities)?;
            let (entities, statics) = share(entities)?;
            (entities, std::sync::Arc::new(statics))
        };
        let (actions, action_names, index) = index_actions(schema.as_ref(), &entities, &policies);
        let version = version(texts);
        let mut types: FxHashMap<String, EntityTypeName> = FxHashMap::default();
        let known = schema.iter().flat_map(|s| s.entity_types().cloned().collect::<Vec<_>>());
        let seen = entities.iter().map(|e| e.uid().type_name().clone());
        for t in known.chain(seen).chain(actions.keys().map(|a| a.type_name().clone())).chain([agent_type.clone()]) {
            types.insert(t.to_string(), t);
        }
        let mut scope_names: FxHashMap<String, Option<String>> = FxHashMap::default();
        for (uid, info) in &actions {
            scope_names
                .entry(uid.id().unescaped().to_owned())
                .and_modify(|v| {
                    if v.as_deref() != Some(info.text.as_str()) {
                        *v = None;
                    }
                })
                .or_insert_with(|| Some(info.text.clone()));
        }
        let enums = schema.as_ref().map(enum_ids).unwrap_or_default();
        Ok(Self {
            schema,
            policies,
            index,
            entities,
            statics,
            id: NEXT_SNAPSHOT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            actions,
            action_names,
            agent_type_text: agent_type.to_string(),
            agent_type,
            types,
            version,
            generation: opts.generation,
            validation: opts.validation,
            scope_names,
            enums,
            agent_shapes: papaya::HashSet::new(),
            scope_values: papaya::HashMap::new(),
            context_shapes: papaya::HashSet::new(),
            files_read: texts.read.clone(),
            files_skipped: texts.skipped.clone(),
            reuse: Reuse { schema: schema_digest, entities: entities_key, validated, parsed },
        })
    }
}

/// A snapshot from inline texts, for unit tests of the modules that read snapshots.
#[cfg(test)]
pub(crate) fn test_snapshot(schema: &str, entities: Option<&str>, validation: Validation) -> Snapshot {
    let text = |name: &str, content: &str| Text { name: name.into(), id_stem: name.into(), content: content.into() };
    let texts = Texts {
        schemas: vec![text("s", schema)],
        policies: vec![text("p", "permit(principal, action, resource);")],
        entities: entities.map(|e| text("e", e)),
        links: Vec::new(),
        runtime_links: Vec::new(),
        positional_ids: true,
        read: Vec::new(),
        skipped: Vec::new(),
    };
    let options = BuildOptions {
        previous: None,
        validation,
        agent_type: None,
        generation: 1,
        max_source_bytes: usize::MAX,
        validate_entities: true,
    };
    match Snapshot::build(&texts, &options) {
        Ok(snap) => snap,
        Err(e) => unreachable!("test snapshot must build: {e}"),
    }
}

fn parse_schema(texts: &[Text]) -> Result<Option<Schema>> {
    if texts.is_empty() {
        return Ok(None);
    }
    let mut fragments = Vec::with_capacity(texts.len());
    for t in texts {
        // JSON syntax by file name, or for inline text by its first character (Cedar schema
        // syntax never starts with `{`)
        let fragment = if crate::source::has_suffix(&t.name, ".json") || t.content.trim_start().starts_with('{') {
            SchemaFragment::from_json_str(&t.content).map_err(|e| {
                let (m, l) = diagnostic_parts(&e, &e.to_string(), &t.name, &t.content);
                Error::schema(m, l)
            })?
        } else {
            SchemaFragment::from_cedarschema_str(&t.content)
                .map_err(|e| {
                    let (m, l) = diagnostic_parts(&e, &e.to_string(), &t.name, &t.content);
                    Error::schema(m, l)
                })?
                .0
        };
        fragments.push(fragment);
    }
    Schema::from_schema_fragments(fragments).map(Some).map_err(|e| {
        use miette::Diagnostic as _;
        // the label points into the fragment it came from: the schema text whose span there
        // is a word the message names (with one schema text, that one)
        let label = e.labels().and_then(|mut l| l.next());
        let owner = label.and_then(|l| {
            let (o, n) = (l.offset(), l.len().max(1));
            let message = e.to_string() + &e.help().map(|h| h.to_string()).unwrap_or_default();
            texts
                .iter()
                .find(|t| t.content.get(o..o + n).is_some_and(|span| message.contains(span.trim())))
                .or_else(|| (texts.len() == 1).then(|| &texts[0]))
        });
        if let Some(t) = owner {
            let (m, l) = diagnostic_parts(&e, &e.to_string(), &t.name, &t.content);
            Error::schema(m, l)
        } else {
            let names: Vec<&str> = texts.iter().map(|t| t.name.as_str()).collect();
            let (m, _) = diagnostic_parts(&e, &e.to_string(), "", "");
            Error::schema(format!("{m} (in schema {})", names.join(", ")), None)
        }
    })
}

/// Where each policy came from: index into the policy texts.
type Origins = HashMap<PolicyId, usize>;

/// Each policy file's policies and templates under the ids ambit gives them, by the digest of
/// the file's name and text and the id rule: a reload re-parses only the files that changed.
/// The snapshot's policy set holds the same policies (their syntax trees are shared).
pub(crate) type Parsed = FxHashMap<([u8; 32], bool), std::sync::Arc<Vec<Item>>>;

/// A policy or template of a file, with its id.
#[derive(Debug)]
pub(crate) enum Item {
    Policy(cedar_policy::Policy),
    Template(cedar_policy::Template),
}

impl Item {
    fn id(&self) -> &PolicyId {
        match self {
            Self::Policy(p) => p.id(),
            Self::Template(t) => t.id(),
        }
    }
}

/// One file's policies and templates, in file order, each with its id: its `@id`, else its
/// position (`policy<n>` with positional ids, else `<file>#<n>`).
fn parse_file(t: &Text, positional: bool) -> Result<Vec<Item>> {
    let set = PolicySet::from_str(&t.content).map_err(|e| {
        let (m, l) = diagnostic_parts(&e, &e.to_string(), &t.name, &t.content);
        Error::policy_parse(m, l)
    })?;
    let mut named: Vec<(usize, Named<'_>)> = set
        .policies()
        .map(|p| (positional_number(p.id()), Named::Policy(p)))
        .chain(set.templates().map(|t| (positional_number(t.id()), Named::Template(t))))
        .collect();
    named.sort_by_key(|(n, _)| *n);
    let mut items = Vec::with_capacity(named.len());
    for (n, item) in named {
        let (annotated, positional_id) = match &item {
            Named::Policy(p) => {
                (p.annotations().find(|(k, _)| *k == "id").map(|(_, v)| v.to_owned()), p.id().to_string())
            }
            Named::Template(t) => {
                (t.annotations().find(|(k, _)| *k == "id").map(|(_, v)| v.to_owned()), t.id().to_string())
            }
        };
        let id = match annotated {
            Some(id) => id,
            None if positional => positional_id,
            None => format!("{}#{n}", t.id_stem),
        };
        if id.is_empty() {
            return Err(Error::policy_parse(
                "empty `@id` annotation: give the policy a name",
                find_offset(&t.content, "@id(\"\")").map(|o| Location::from_offset(&t.name, &t.content, o)),
            ));
        }
        let pid = PolicyId::new(&id);
        items.push(match item {
            Named::Policy(p) => Item::Policy(p.new_id(pid)),
            Named::Template(tpl) => Item::Template(tpl.new_id(pid)),
        });
    }
    Ok(items)
}

fn parse_policies(texts: &[Text], positional: bool, before: Option<&Parsed>) -> Result<(PolicySet, Origins, Parsed)> {
    let mut all = Vec::new();
    let mut templates = Vec::new();
    let mut origins = Origins::new();
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut parsed = Parsed::default();
    for (i, t) in texts.iter().enumerate() {
        let key = (digest([t]), positional);
        let items = match before.and_then(|b| b.get(&key)) {
            Some(items) => std::sync::Arc::clone(items),
            None => std::sync::Arc::new(parse_file(t, positional)?),
        };
        for item in items.iter() {
            let id = item.id().to_string();
            if let Some(first) = seen.get(&id) {
                let loc = nth_offset(&t.content, &format!("@id(\"{id}\")"), usize::from(first == &t.name))
                    .map(|o| Location::from_offset(&t.name, &t.content, o));
                return Err(DuplicatePolicyIdError::new(
                    format!("duplicate policy id `{id}`: first defined in `{first}`"),
                    loc,
                )
                .into());
            }
            seen.insert(id, t.name.clone());
            origins.insert(item.id().clone(), i);
            match item {
                Item::Policy(p) => all.push(p.clone()),
                Item::Template(tpl) => templates.push(tpl.clone()),
            }
        }
        parsed.insert(key, items);
    }
    let mut set =
        PolicySet::from_policies(all).map_err(|e| Error::internal(format!("cannot assemble policies: {e}")))?;
    for template in templates {
        set.add_template(template).map_err(|e| Error::internal(format!("cannot assemble templates: {e}")))?;
    }
    Ok((set, origins, parsed))
}

/// A policy or a template of one text, before it gets its id.
enum Named<'a> {
    Policy(&'a cedar_policy::Policy),
    Template(&'a cedar_policy::Template),
}

/// Links every template link, the files' first, then the run-time ones. A link that cannot be
/// made is `AMBIT_LINK`, naming the links file and the link's line when it comes from one.
fn apply_links(set: &mut PolicySet, files: &[Text], runtime: &[crate::link::Link]) -> Result<()> {
    for t in files {
        let links: Vec<crate::link::Link> = serde_json::from_str(&t.content).map_err(|e| {
            let loc = Location::from_line_column(&t.name, &t.content, e.line(), e.column());
            crate::error::LinkError::new(format!("not a links file: {e}"), Some(loc))
        })?;
        for l in &links {
            link_one(set, l).map_err(|message| {
                let loc = find_offset(&t.content, &format!("\"{}\"", l.link_id()))
                    .map(|o| Location::from_offset(&t.name, &t.content, o));
                crate::error::LinkError::new(message, loc)
            })?;
        }
    }
    for l in runtime {
        link_one(set, l).map_err(|message| crate::error::LinkError::new(message, None))?;
    }
    Ok(())
}

/// Links one template into `set`; the error is Cedar's reason, in ambit's words.
pub(crate) fn link_one(set: &mut PolicySet, l: &crate::link::Link) -> std::result::Result<(), String> {
    use cedar_policy::SlotId;
    let template = PolicyId::new(l.template_id());
    if set.template(&template).is_none() {
        return Err(format!(
            "link `{}`: no template `{}`",
            crate::error::user_text(l.link_id()),
            crate::error::user_text(l.template_id())
        ));
    }
    let mut values = HashMap::new();
    for (slot, uid) in l.args() {
        let id = match slot.as_str() {
            "?principal" => SlotId::principal(),
            "?resource" => SlotId::resource(),
            other => {
                return Err(format!(
                    "link `{}`: unknown slot `{}`",
                    crate::error::user_text(l.link_id()),
                    crate::error::user_text(other)
                ))
            }
        };
        let value: EntityUid = uid.parse().map_err(|_| {
            format!(
                "link `{}`: malformed uid `{}` for `{slot}`",
                crate::error::user_text(l.link_id()),
                crate::error::user_text(uid)
            )
        })?;
        values.insert(id, value);
    }
    set.link(template, PolicyId::new(l.link_id()), values)
        .map_err(|e| format!("link `{}`: {}", crate::error::user_text(l.link_id()), crate::error::cedar_text(&e)))
}

fn positional_number(id: &PolicyId) -> usize {
    id.to_string().strip_prefix("policy").and_then(|n| n.parse().ok()).unwrap_or(usize::MAX)
}

fn find_offset(text: &str, needle: &str) -> Option<usize> {
    text.find(needle)
}

fn nth_offset(text: &str, needle: &str, n: usize) -> Option<usize> {
    text.match_indices(needle).nth(n).or_else(|| text.match_indices(needle).next()).map(|(o, _)| o)
}

/// Policy ids and source texts that passed validation in a mode (see [`Reuse`]).
type Validated = (Validation, FxHashMap<String, String>);

/// Validates `policies`, only those new or changed since `before` (validated under the same
/// schema) when it is given and in the same mode. A set with templates or links is validated
/// whole and remembers nothing.
fn validate_changed(
    schema: &Schema,
    policies: &PolicySet,
    origins: &Origins,
    texts: &[Text],
    mode: Validation,
    before: Option<&Validated>,
) -> Result<Option<Validated>> {
    if policies.templates().next().is_some() || policies.policies().any(|p| p.template_id().is_some()) {
        validate(schema, policies, origins, texts, mode)?;
        return Ok(None);
    }
    let now: FxHashMap<String, String> = policies.policies().map(|p| (p.id().to_string(), p.to_string())).collect();
    match before.filter(|(m, _)| *m == mode).map(|(_, texts)| texts) {
        Some(before) => {
            let changed = policies
                .policies()
                .filter(|p| {
                    let id: &str = p.id().as_ref();
                    before.get(id) != now.get(id)
                })
                .cloned();
            let changed = PolicySet::from_policies(changed).map_err(|e| Error::internal(e.to_string()))?;
            validate(schema, &changed, origins, texts, mode)?;
        }
        None => validate(schema, policies, origins, texts, mode)?,
    }
    Ok(Some((mode, now)))
}

fn validate(schema: &Schema, policies: &PolicySet, origins: &Origins, texts: &[Text], mode: Validation) -> Result<()> {
    let mode = match mode {
        Validation::Permissive => ValidationMode::Permissive,
        _ => ValidationMode::Strict,
    };
    let result = Validator::new(schema.clone()).validate(policies, mode);
    if result.validation_passed() {
        return Ok(());
    }
    let all: Vec<(String, Option<Location>)> = result
        .validation_errors()
        .map(|e| {
            let (file, text) = origins
                .get(e.policy_id())
                .and_then(|i| texts.get(*i))
                .map_or(("", ""), |t| (t.name.as_str(), t.content.as_str()));
            let (message, location) = diagnostic_parts(e, &e.to_string(), file, text);
            let id = e.policy_id();
            let message = message.strip_prefix(&format!("for policy `{id}`, ")).unwrap_or(&message).to_owned();
            (format!("policy `{id}`: {message}"), location)
        })
        .collect();
    if all.is_empty() {
        return Err(Error::internal("validation failed without an error"));
    }
    Err(ValidationError::new(all).into())
}

/// The agent entity type: given explicitly, else the one schema type named `Agent`, else `Agent`.
fn detect_agent_type(schema: Option<&Schema>) -> Result<EntityTypeName> {
    let candidates: Vec<&EntityTypeName> =
        schema.map(|s| s.entity_types().filter(|t| t.basename() == "Agent").collect()).unwrap_or_default();
    match candidates.as_slice() {
        [one] => Ok((*one).clone()),
        [] => EntityTypeName::from_str("Agent").map_err(|e| Error::internal(e.to_string())),
        many => Err(Error::schema(
            format!(
                "several entity types are named `Agent` ({}): choose one with `agent_type`",
                many.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            ),
            None,
        )),
    }
}

/// The static entities and, for each, the uids its attributes mention. The text is parsed
/// to JSON once for both; Cedar's text parser only runs again to word an error.
fn parse_entities(text: Option<&Text>, schema: Option<&Schema>, validate: bool) -> Result<Entities> {
    if !validate {
        // as Cedar's CLI reads entities without a schema; the schema's action entities (the
        // action groups) are added so `action in` still means what the schema says
        let entities = parse_entities(text, None, true)?;
        let Some(schema) = schema else { return Ok(entities) };
        let actions = schema.action_entities().map_err(|e| Error::schema(e.to_string(), None))?;
        let known: HashSet<EntityUid> = entities.iter().map(cedar_policy::Entity::uid).collect();
        let extra: Vec<cedar_policy::Entity> = actions.iter().filter(|a| !known.contains(&a.uid())).cloned().collect();
        let entities =
            entities.add_entities(extra, None).map_err(|e| Error::entities(crate::error::error_chain(&e), None))?;
        return Ok(entities);
    }
    let cedar_error = |t: &Text| {
        // JSON syntax first: serde_json knows the line and column
        if let Err(e) = serde_json::from_str::<serde_json::Value>(&t.content) {
            return Error::entities(
                format!("not valid JSON: {e}"),
                Some(Location::from_line_column(&t.name, &t.content, e.line(), e.column())),
            );
        }
        let Err(e) = Entities::from_json_str(&t.content, schema) else {
            return Error::internal(format!("`{}` parsed as text but not as JSON", t.name));
        };
        let message = crate::error::error_chain(&e);
        let location = entity_error_offset(&t.content, &message).map_or_else(
            || Location::from_offset(&t.name, &t.content, 0),
            |o| Location::from_offset(&t.name, &t.content, o),
        );
        Error::entities(message, Some(location))
    };
    // agents listed here are static agents: long-lived identities with their own attributes and
    // parents, decided as any static principal; minted agents may be minted under them
    match text {
        Some(t) => Entities::from_json_str(&t.content, schema).map_err(|_| cedar_error(t)),
        None => match schema {
            Some(s) => s.action_entities().map_err(|e| Error::schema(e.to_string(), None)),
            None => Ok(Entities::empty()),
        },
    }
}

/// Where in an entities file the entity an error names is (`` `Type::"id"` `` in the message),
/// and within it the attribute it names (`` attribute `x` ``), when they can be found.
fn entity_error_offset(text: &str, message: &str) -> Option<usize> {
    let uid: EntityUid = message.split('`').skip(1).step_by(2).find_map(|quoted| quoted.parse().ok())?;
    let id = serde_json::to_string(uid.id().unescaped()).ok()?;
    let ty = serde_json::to_string(&uid.type_name().to_string()).ok()?;
    // the entity: its id string, with its type string close before it
    let at = text.match_indices(&id).map(|(o, _)| o).find(|&o| text[o.saturating_sub(200)..o].contains(&ty))?;
    let entity_start = text[..at].rfind("\"uid\"").unwrap_or(at);
    if let Some(a) = message.find("attribute `") {
        let name_start = a + "attribute `".len();
        if let Some(len) = message[name_start..].find('`') {
            let attr = serde_json::to_string(&message[name_start..name_start + len]).ok()?;
            if let Some(o) = text[entity_start..].find(&attr) {
                return Some(entity_start + o);
            }
        }
    }
    Some(entity_start)
}

/// Snapshot ids: see `Snapshot::id`.
static NEXT_SNAPSHOT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A static entity as a decision's slice takes it: shared, with its references.
#[derive(Debug)]
pub(crate) struct Static {
    pub(crate) entity: std::sync::Arc<cedar_policy_core::ast::Entity>,
    /// The uids its attributes and tags mention, sorted, once each.
    pub(crate) refs: Vec<EntityUid>,
}

/// Every static entity by uid, looked up for each entity of every chain's slice (FxHash:
/// SipHash was a tenth of building a chain's slice; these keys come from the trusted entity
/// files, not from requests).
pub(crate) type Statics = rustc_hash::FxHashMap<EntityUid, Static>;

/// The store rebuilt over entities it shares with a by-uid map, so a decision's slice takes an
/// entity by cloning an `Arc` rather than the entity (its attribute map and ancestor sets).
/// Each entity's references are read here too, from the values Cedar parsed (exactly its
/// references, in either JSON form), so a slice follows every reference a policy could
/// dereference. The ancestor relation is Cedar's, already closed: nothing is recomputed.
fn share(entities: Entities) -> Result<(Entities, Statics)> {
    use cedar_policy_core::entities::Entities as CoreEntities;
    use std::sync::Arc;
    let core: CoreEntities = entities.as_ref().clone();
    // the clone's `Arc`s are the only ones left: taking the entities out copies nothing
    drop(entities);
    let mut statics = Statics::with_capacity_and_hasher(core.len(), rustc_hash::FxBuildHasher);
    let mut shared = Vec::with_capacity(core.len());
    for e in core {
        let mut refs = Vec::new();
        for (_, v) in e.attrs().chain(e.tags()) {
            if let cedar_policy_core::ast::PartialValue::Value(v) = v {
                value_refs(v, &mut refs);
            }
        }
        refs.sort_unstable();
        refs.dedup();
        let entity = Arc::new(e);
        statics.insert(EntityUid::from(entity.uid().clone()), Static { entity: Arc::clone(&entity), refs });
        shared.push(entity);
    }
    let store = shared_store(shared).map_err(|e| Error::entities(e, None))?;
    Ok((Entities::from(store), statics))
}

/// Cedar's store over entities it shares (no copy), whose ancestor sets are already closed:
/// the snapshot's, and each chain decision's slice. An error is Cedar's words.
pub(crate) fn shared_store(
    entities: Vec<std::sync::Arc<cedar_policy_core::ast::Entity>>,
) -> std::result::Result<cedar_policy_core::entities::Entities, String> {
    use cedar_policy_core::entities::{Entities as CoreEntities, NoEntitiesSchema, TCComputation};
    CoreEntities::new()
        .add_entities(
            entities,
            None::<&NoEntitiesSchema>,
            TCComputation::AssumeAlreadyComputed,
            cedar_policy_core::extensions::Extensions::all_available(),
        )
        .map_err(|e| crate::error::error_chain(&e))
}

fn value_refs(v: &cedar_policy_core::ast::Value, out: &mut Vec<EntityUid>) {
    use cedar_policy_core::ast::{Literal, ValueKind};
    match v.value_kind() {
        ValueKind::Lit(Literal::EntityUID(uid)) => out.push(EntityUid::from(uid.as_ref().clone())),
        ValueKind::Set(set) => set.iter().for_each(|x| value_refs(x, out)),
        ValueKind::Record(fields) => fields.values().for_each(|x| value_refs(x, out)),
        ValueKind::Lit(_) | ValueKind::ExtensionValue(_) => {}
    }
}

/// An entity's `uid` field (`{type, id}` or `{"__entity": {type, id}}`), with type names
/// parsed once per type.
fn uid_from_json(v: &serde_json::Value, types: &mut HashMap<String, EntityTypeName>) -> Option<EntityUid> {
    let v = v.get("__entity").unwrap_or(v);
    let (ty, id) = (v.get("type")?.as_str()?, v.get("id")?.as_str()?);
    let ty = if let Some(t) = types.get(ty) {
        t.clone()
    } else {
        let t: EntityTypeName = ty.parse().ok()?;
        types.insert(ty.to_owned(), t.clone());
        t
    };
    Some(EntityUid::from_type_name_and_id(ty, cedar_policy::EntityId::new(id)))
}

/// Collects entity references (`{"__entity": {...}}`, or `{"type", "id"}` in contexts) from JSON.
pub(crate) fn collect_refs(v: &serde_json::Value, out: &mut Vec<EntityUid>) {
    collect_refs_with(v, out, &mut HashMap::new());
}

fn collect_refs_with(v: &serde_json::Value, out: &mut Vec<EntityUid>, types: &mut HashMap<String, EntityTypeName>) {
    match v {
        serde_json::Value::Object(map) => {
            if let Some(inner) = map.get("__entity") {
                if let Some(uid) = uid_from_json(inner, types) {
                    out.push(uid);
                }
                return;
            }
            if map.len() == 2 && map.get("type").is_some_and(serde_json::Value::is_string) {
                if let Some(uid) = uid_from_json(v, types) {
                    out.push(uid);
                }
            }
            for value in map.values() {
                collect_refs_with(value, out, types);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                collect_refs_with(item, out, types);
            }
        }
        _ => {}
    }
}

type ActionTables = (FxHashMap<EntityUid, ActionInfo>, FxHashMap<String, Option<EntityUid>>, Index);

fn index_actions(schema: Option<&Schema>, entities: &Entities, policies: &PolicySet) -> ActionTables {
    let mut uids: Vec<EntityUid> = Vec::new();
    let mut seen = HashSet::new();
    let from_schema = schema.into_iter().flat_map(Schema::actions).cloned();
    let from_entities = entities.iter().map(cedar_policy::Entity::uid).filter(|u| u.type_name().basename() == "Action");
    for uid in from_schema.chain(from_entities) {
        if seen.insert(uid.clone()) {
            uids.push(uid);
        }
    }
    uids.sort_by_key(ToString::to_string);
    let mut index = Index::new(policies);
    let mut actions = FxHashMap::default();
    let mut names: FxHashMap<String, Option<EntityUid>> = FxHashMap::default();
    for uid in uids {
        let ancestors: Vec<EntityUid> = entities.ancestors(&uid).map(|it| it.cloned().collect()).unwrap_or_default();
        let mut scope_names = vec![uid.to_string()];
        scope_names.extend(ancestors.iter().map(ToString::to_string));
        let slice = index.add_action(&uid, &ancestors);
        names
            .entry(uid.id().unescaped().to_owned())
            .and_modify(|v| {
                if v.as_ref() != Some(&uid) {
                    *v = None;
                }
            })
            .or_insert_with(|| Some(uid.clone()));
        let principals = schema.and_then(|s| s.principals_for_action(&uid)).map(|it| it.cloned().collect());
        let resources = schema.and_then(|s| s.resources_for_action(&uid)).map(|it| it.cloned().collect());
        let text = uid.to_string();
        actions.insert(uid, ActionInfo { scope_names, slice, principals, resources, text });
    }
    (actions, names, index)
}

/// Every enumerated entity type of the schema with its declared ids.
fn enum_ids(schema: &Schema) -> FxHashMap<EntityTypeName, FxHashSet<String>> {
    use cedar_policy_core::validator::ValidatorEntityTypeKind;
    let mut out = FxHashMap::default();
    for ty in schema.as_ref().entity_types() {
        if let ValidatorEntityTypeKind::Enum(choices) = &ty.kind {
            let name: EntityTypeName = EntityTypeName::from(ty.name().clone());
            out.insert(name, choices.iter().map(|id| AsRef::<str>::as_ref(id).to_owned()).collect());
        }
    }
    out
}

fn version(texts: &Texts) -> String {
    let mut h = Sha256::new();
    for (kind, list) in [("schema", &texts.schemas), ("policies", &texts.policies)] {
        for t in list {
            h.update(kind.as_bytes());
            h.update([0]);
            h.update(t.id_stem.as_bytes());
            h.update([0]);
            h.update(t.content.as_bytes());
            h.update([0]);
        }
    }
    if let Some(t) = &texts.entities {
        h.update(b"entities\0");
        h.update(t.content.as_bytes());
    }
    for t in &texts.links {
        h.update(b"links\0");
        h.update(t.content.as_bytes());
        h.update([0]);
    }
    for l in &texts.runtime_links {
        h.update(b"link\0");
        h.update(serde_json::to_string(l).unwrap_or_default().as_bytes());
        h.update([0]);
    }
    let digest = h.finalize();
    let mut out = String::from("sha256:");
    for b in digest.iter().take(12) {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The fast path and Cedar's parser agree on every string: same uid, or both refuse.
        #[test]
        fn fast_uid_parse_matches_cedar(ty in prop::sample::select(vec!["User", "Doc", "A::B", "Nope"]), id in "[ -~]{0,12}|\\PC{0,6}") {
            let snap = test_snapshot("entity User; entity Doc; namespace A { entity B; }", None, Validation::Off);
            for text in [format!("{ty}::\"{id}\""), format!("{ty}::{id}"), id.clone()] {
                let ours = snap.parse_uid(&text, "x").ok();
                let cedar = text.parse::<EntityUid>().ok();
                prop_assert_eq!(ours, cedar, "{}", text);
            }
        }
    }
}
