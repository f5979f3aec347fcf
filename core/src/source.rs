//! Where policies, schema and entities come from, and reading them (again, on reload).

use crate::error::{EmptySourceError, Error, Result};
use std::path::{Path, PathBuf};

/// One piece of text: inline, or a file that is re-read on every reload.
#[derive(Debug, Clone)]
pub(crate) enum TextSource {
    Inline { name: String, text: String },
    File(PathBuf),
}

/// A piece of text as read, with the name errors and policy ids use.
#[derive(Debug, Clone)]
pub(crate) struct Text {
    /// Path as given (or `inline-<n>`), used in error locations.
    pub(crate) name: String,
    /// File name only, used in `<file>#<n>` policy ids.
    pub(crate) id_stem: String,
    pub(crate) content: String,
}

/// Everything an authorizer was built from; `read()` produces the texts to build a snapshot.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sources {
    /// Directories holding `*.cedarschema`, `*.cedar` and an optional `entities.json`.
    pub(crate) dirs: Vec<PathBuf>,
    /// Directories holding only `*.cedar` files.
    pub(crate) policy_dirs: Vec<PathBuf>,
    pub(crate) schemas: Vec<TextSource>,
    pub(crate) policies: Vec<TextSource>,
    pub(crate) entities: Option<TextSource>,
    /// Links files (Cedar's `links.json` shape); a directory's `links.json` is read too.
    pub(crate) links: Vec<TextSource>,
    /// Links made at run time (`Authorizer::link`), kept across reloads.
    pub(crate) runtime_links: Vec<crate::link::Link>,
}

/// The texts of one build.
#[derive(Debug, Default)]
pub(crate) struct Texts {
    pub(crate) schemas: Vec<Text>,
    pub(crate) policies: Vec<Text>,
    pub(crate) entities: Option<Text>,
    /// Links files, in order.
    pub(crate) links: Vec<Text>,
    /// Links made at run time, after the files' links.
    pub(crate) runtime_links: Vec<crate::link::Link>,
    /// A single inline policy text keeps Cedar's positional ids (`policy0`, ...).
    pub(crate) positional_ids: bool,
    /// Files of the directories that were read, and those that were not (not a schema,
    /// policy, entities or links file), for `ambit validate` to say so.
    pub(crate) read: Vec<PathBuf>,
    pub(crate) skipped: Vec<PathBuf>,
}

/// Whether a file name is an entities file: `entities.json`, or `*.cedarentities.json` /
/// `*.entities.json` as Cedar projects name them.
pub(crate) fn is_entities_file(name: &str) -> bool {
    name.eq_ignore_ascii_case("entities.json")
        || has_suffix(name, ".cedarentities.json")
        || has_suffix(name, ".entities.json")
}

impl Sources {
    /// Whether any source is a file or directory (so `reload()` and `watch()` make sense).
    pub(crate) fn paths(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = self.dirs.iter().chain(&self.policy_dirs).cloned().collect();
        for s in self.schemas.iter().chain(&self.policies).chain(&self.entities).chain(&self.links) {
            if let TextSource::File(p) = s {
                out.push(p.clone());
            }
        }
        out
    }

    pub(crate) fn read(&self) -> Result<Texts> {
        let mut texts = Texts::default();
        for dir in &self.dirs {
            let files = list_dir(dir)?;
            let mut policies = 0;
            for path in files {
                let name = file_name(&path);
                if has_suffix(&name, ".cedarschema") || has_suffix(&name, ".cedarschema.json") {
                    texts.schemas.push(read_file(&path)?);
                } else if has_suffix(&name, ".cedar") {
                    texts.policies.push(read_file(&path)?);
                    policies += 1;
                } else if is_entities_file(&name) {
                    if let Some(first) = &texts.entities {
                        return Err(Error::entities(
                            format!(
                                "two entities files in `{}`: `{}` and `{name}`; keep one",
                                dir.display(),
                                first.id_stem
                            ),
                            None,
                        ));
                    }
                    texts.entities = Some(read_file(&path)?);
                } else if name.eq_ignore_ascii_case("links.json") || has_suffix(&name, ".links.json") {
                    texts.links.push(read_file(&path)?);
                } else {
                    texts.skipped.push(path);
                    continue;
                }
                texts.read.push(path);
            }
            if policies == 0 {
                return Err(EmptySourceError::new(format!("no `*.cedar` policy files in `{}`", dir.display())).into());
            }
        }
        for dir in &self.policy_dirs {
            let mut policies = 0;
            for path in list_dir(dir)? {
                if has_suffix(&file_name(&path), ".cedar") {
                    texts.policies.push(read_file(&path)?);
                    policies += 1;
                }
            }
            if policies == 0 {
                return Err(EmptySourceError::new(format!("no `*.cedar` policy files in `{}`", dir.display())).into());
            }
        }
        for s in &self.schemas {
            texts.schemas.push(read(s)?);
        }
        for s in &self.policies {
            texts.policies.push(read(s)?);
        }
        if let Some(s) = &self.entities {
            if texts.entities.is_some() {
                return Err(Error::entities(
                    "entities given twice: an `entities.json` in the directory and another source",
                    None,
                ));
            }
            texts.entities = Some(read(s)?);
        }
        for s in &self.links {
            texts.links.push(read(s)?);
        }
        texts.runtime_links.clone_from(&self.runtime_links);
        texts.positional_ids = self.dirs.is_empty()
            && self.policy_dirs.is_empty()
            && matches!(self.policies.as_slice(), [TextSource::Inline { .. }]);
        Ok(texts)
    }
}

/// Whether `name` ends with `suffix`, ignoring ASCII case (`.CEDAR` is a policy file too).
pub(crate) fn has_suffix(name: &str, suffix: &str) -> bool {
    name.len() >= suffix.len()
        && name.get(name.len() - suffix.len()..).is_some_and(|end| end.eq_ignore_ascii_case(suffix))
}

fn read(source: &TextSource) -> Result<Text> {
    match source {
        TextSource::Inline { name, text } => {
            Ok(Text { name: name.clone(), id_stem: name.clone(), content: text.clone() })
        }
        TextSource::File(path) => read_file(path),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn read_file(path: &Path) -> Result<Text> {
    let content = std::fs::read_to_string(path).map_err(|e| Error::io(path, &e))?;
    Ok(Text { name: path.display().to_string(), id_stem: file_name(path), content })
}

/// Regular files of a directory, sorted by name so ids and versions are deterministic.
fn list_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, &e))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, &e))?;
        let path = entry.path();
        if path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}
