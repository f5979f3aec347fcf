//! Reloads: policies, schema, entities and links read again, built into a new snapshot and
//! swapped in whole, or refused with the last good snapshot kept.

use super::{Authorizer, ReloadOutcome};

use crate::audit::AuditEvent;
use crate::error::{user_text, Error, LinkError, ReloadError, Result};
use crate::snapshot::{BuildOptions, Snapshot};
use crate::source::{Sources, TextSource};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl Authorizer {
    /// The files of the source directories that were read (schemas, policies, entities, links)
    /// and those that were skipped (anything else), for the snapshot now serving.
    pub fn source_files(&self) -> (Vec<std::path::PathBuf>, Vec<std::path::PathBuf>) {
        let snap = self.snapshot.load();
        (snap.files_read.clone(), snap.files_skipped.clone())
    }

    /// Re-reads every source the authorizer was built from, builds and validates a new
    /// snapshot off the read path, and swaps it in atomically. On any error the last good
    /// snapshot keeps serving. Revocations and agents survive reloads.
    ///
    /// # Errors
    /// `AMBIT_RELOAD`, whose cause is the underlying error (with file and line).
    pub fn reload(&self) -> Result<ReloadOutcome> {
        let sources = self.sources.lock().map_err(|_| Error::internal("reload lock poisoned"))?;
        self.rebuild(&sources)
    }

    /// Replaces the policies with `text` (schema and entities stay), then reloads.
    ///
    /// # Errors
    /// As [`Authorizer::reload`]; on error the sources are left unchanged too.
    pub fn replace_policies(&self, text: &str) -> Result<ReloadOutcome> {
        let mut sources = self.sources.lock().map_err(|_| Error::internal("reload lock poisoned"))?;
        let mut next = sources.clone();
        next.replace_policies(text);
        let outcome = self.rebuild(&next)?;
        *sources = next;
        Ok(outcome)
    }

    /// Replaces the static entities with `json` (schema and policies stay), then reloads.
    ///
    /// # Errors
    /// As [`Authorizer::reload`]; on error the sources are left unchanged too.
    pub fn replace_entities(&self, json: &str) -> Result<ReloadOutcome> {
        let mut sources = self.sources.lock().map_err(|_| Error::internal("reload lock poisoned"))?;
        let mut next = sources.clone();
        next.replace_entities(json);
        let outcome = self.rebuild(&next)?;
        *sources = next;
        Ok(outcome)
    }

    /// Links a template at run time: the new policy (named `link_id`) is validated against the
    /// schema with everything else, indexed like a static policy, counted in the policy version,
    /// audited, and kept across reloads of the policy files until [`Authorizer::unlink`]ed. A
    /// link is the natural way to grant one agent access to one resource just in time.
    ///
    /// # Errors
    /// `AMBIT_LINK` when the template is unknown, a slot is missing or extra, the link id is
    /// taken, a uid is malformed, or the linked policy fails validation; `AMBIT_RELOAD` when
    /// the sources themselves no longer build (nothing changes then); `AMBIT_AUDIT` when the
    /// audit trail is closed.
    pub fn link(&self, link: &crate::Link) -> Result<ReloadOutcome> {
        self.audit_open()?;
        let mut sources = self.sources.lock().map_err(|_| Error::internal("reload lock poisoned"))?;
        {
            let snap = self.snapshot.load();
            let mut trial = snap.policies.clone();
            crate::snapshot::link_one(&mut trial, link).map_err(|m| Error::from(LinkError::new(m, None)))?;
        }
        let mut next = sources.clone();
        next.runtime_links.push(link.clone());
        let outcome = match self.rebuild_inner(&next) {
            Ok(o) => o,
            Err(Error::Reload(r)) if r.cause().code() == "AMBIT_VALIDATION" => {
                return Err(LinkError::new(
                    format!("link `{}` does not validate: {}", user_text(link.link_id()), r.cause().message()),
                    None,
                )
                .into());
            }
            Err(e) => return Err(e),
        };
        *sources = next;
        if let Some(audit) = &self.audit {
            audit.event(AuditEvent::Linked {
                link_id: link.link_id().to_owned(),
                template_id: link.template_id().to_owned(),
                args: link.args().clone(),
                version: outcome.version.clone(),
            });
        }
        Ok(outcome)
    }

    /// Removes a link made with [`Authorizer::link`]; decisions stop using it at once.
    ///
    /// # Errors
    /// `AMBIT_LINK` when no run-time link has that id (links from a links file are removed by
    /// editing the file and reloading); `AMBIT_RELOAD` when the sources no longer build.
    pub fn unlink(&self, link_id: &str) -> Result<ReloadOutcome> {
        let mut sources = self.sources.lock().map_err(|_| Error::internal("reload lock poisoned"))?;
        let Some(at) = sources.runtime_links.iter().position(|l| l.link_id() == link_id) else {
            return Err(LinkError::new(
                format!("no run-time link `{}`: links from a links file are removed there", user_text(link_id)),
                None,
            )
            .into());
        };
        let mut next = sources.clone();
        next.runtime_links.remove(at);
        let outcome = self.rebuild_inner(&next)?;
        *sources = next;
        if let Some(audit) = &self.audit {
            audit.event(AuditEvent::Unlinked { link_id: link_id.to_owned(), version: outcome.version.clone() });
        }
        Ok(outcome)
    }

    /// Every template link now serving (from links files and made at run time), by link id.
    pub fn links(&self) -> Vec<crate::Link> {
        let snap = self.snapshot.load();
        let mut out: Vec<crate::Link> = snap
            .policies
            .policies()
            .filter_map(|p| {
                let template = p.template_id()?;
                let mut link = crate::Link::new(template.to_string(), p.id().to_string());
                for (slot, uid) in p.template_links()? {
                    link = match slot.to_string().as_str() {
                        "?principal" => link.principal(uid.to_string()),
                        _ => link.resource(uid.to_string()),
                    };
                }
                Some(link)
            })
            .collect();
        out.sort_by(|a, b| a.link_id().cmp(b.link_id()));
        out
    }

    /// The files and directories this authorizer reads (what `watch` follows).
    pub fn source_paths(&self) -> Vec<std::path::PathBuf> {
        let mut paths = self.sources.lock().map(|s| s.paths()).unwrap_or_default();
        // a rotated JWKS file reloads too
        paths.extend(self.issuer_files.iter().map(|(_, p)| p.clone()));
        paths.extend(self.oauth_options.iter().filter_map(|o| o.file.clone()));
        paths
    }

    fn rebuild(&self, sources: &Sources) -> Result<ReloadOutcome> {
        let outcome = self.rebuild_inner(sources);
        if let Some(audit) = &self.audit {
            audit.event(match &outcome {
                Ok(o) => AuditEvent::ReloadSucceeded { version: o.version.clone(), generation: o.generation },
                Err(e) => AuditEvent::ReloadFailed { code: e.code().to_owned(), error: e.to_string() },
            });
        }
        outcome
    }

    fn rebuild_inner(&self, sources: &Sources) -> Result<ReloadOutcome> {
        // issuer keys first: a JWKS file that no longer reads fails the reload, and nothing
        // (keys or policies) changes
        let trusted = if self.issuer_files.is_empty() {
            None
        } else {
            Some(
                super::builder::issuers_with_files(&self.inline_issuers, &self.issuer_files)
                    .map_err(|e| Error::from(ReloadError::new(e)))?,
            )
        };
        let oauth = if self.oauth_options.iter().any(|o| o.file.is_some()) {
            Some(
                self.oauth_options
                    .iter()
                    .map(crate::token::OAuthIssuer::from_options)
                    .collect::<Result<Vec<_>>>()
                    .map_err(|e| Error::from(ReloadError::new(e)))?,
            )
        } else {
            None
        };
        let generation = self.generation.load(Ordering::SeqCst) + 1;
        let current = self.snapshot.load();
        let built = sources.read().and_then(|texts| {
            Snapshot::build(
                &texts,
                &BuildOptions {
                    previous: Some(&current),
                    validation: self.config.validation,
                    agent_type: self.config.agent_type.as_ref(),
                    generation,
                    max_source_bytes: self.config.limits.max_source_bytes,
                    validate_entities: self.config.validate_entities,
                },
            )
        });
        let snapshot = built.map_err(|e| Error::from(ReloadError::new(e)))?;
        if snapshot.agent_type != current.agent_type {
            return Err(ReloadError::new(Error::schema(
                format!(
                    "the agent type changed from `{}` to `{}`: live agents would be orphaned",
                    current.agent_type, snapshot.agent_type
                ),
                None,
            ))
            .into());
        }
        let outcome = ReloadOutcome { version: snapshot.version.clone(), generation };
        self.generation.store(generation, Ordering::SeqCst);
        if let Some(trusted) = trusted {
            self.credentials.set_trusted(trusted);
        }
        if let Some(oauth) = oauth {
            self.oauth.store(Arc::new(crate::token::Issuers::new(oauth)));
        }
        let old = self.snapshot.swap(Arc::new(snapshot));
        // The writer keeps the previous snapshot until the next reload, so the last strong
        // reference (and the cost of freeing a whole policy set) is rarely a reader's.
        if let Ok(mut retired) = self.retired.lock() {
            *retired = Some(old);
        }
        Ok(outcome)
    }
}

impl Sources {
    fn replace_policies(&mut self, text: &str) {
        // directories keep providing schema and entities, but not policies
        for dir in std::mem::take(&mut self.dirs) {
            self.schema_and_entities_from(&dir);
        }
        self.policy_dirs.clear();
        self.policies = vec![TextSource::Inline { name: "<replaced-policies>".into(), text: text.to_owned() }];
    }

    fn replace_entities(&mut self, json: &str) {
        for dir in std::mem::take(&mut self.dirs) {
            self.policy_dirs.push(dir.clone());
            self.schema_and_entities_from(&dir);
        }
        self.entities = Some(TextSource::Inline { name: "<replaced-entities>".into(), text: json.to_owned() });
    }

    fn schema_and_entities_from(&mut self, dir: &Path) {
        let mut files: Vec<_> =
            std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
        files.sort();
        for path in files {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if name.ends_with(".cedarschema") || name.ends_with(".cedarschema.json") {
                self.schemas.push(TextSource::File(path));
            } else if crate::source::is_entities_file(&name) && self.entities.is_none() {
                self.entities = Some(TextSource::File(path));
            }
        }
    }
}
