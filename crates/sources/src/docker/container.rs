//! What the Docker source knows of a container, which containers it reads, and what their
//! records are labelled with.

use std::collections::BTreeMap;

use logyard_model::Value;

use crate::file::PathMeta;

/// Characters of a container id kept in the `container_id` field (as `docker ps` shows it).
pub(crate) const SHORT_ID: usize = 12;

/// A container's identity and labels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ContainerInfo {
    /// The full id (64 hex digits).
    pub id: String,
    /// The name, without Docker's leading `/`.
    pub name: String,
    /// The image it runs, as given to `docker run`.
    pub image: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
}

impl ContainerInfo {
    /// A container known only by its id (its configuration could not be read): named after
    /// its short id.
    pub fn unnamed(id: &str) -> ContainerInfo {
        ContainerInfo {
            id: id.to_string(),
            name: short_id(id).to_string(),
            ..ContainerInfo::default()
        }
    }
}

/// The first [`SHORT_ID`] characters of an id.
pub(crate) fn short_id(id: &str) -> &str {
    id.get(..SHORT_ID).unwrap_or(id)
}

/// Strips Docker's leading `/` from a name.
pub(crate) fn clean_name(name: &str) -> String {
    name.strip_prefix('/').unwrap_or(name).to_string()
}

/// The `containers`, `exclude` and `labels` settings, compiled.
#[derive(Debug, Clone)]
pub(crate) struct NameFilter {
    include: Vec<glob::Pattern>,
    exclude: Vec<glob::Pattern>,
    labels: Vec<glob::Pattern>,
}

impl NameFilter {
    /// Compiles the globs; the error names the bad one.
    pub fn new(include: &[String], exclude: &[String], labels: &[String]) -> Result<Self, String> {
        let compile = |key: &str, globs: &[String]| {
            globs
                .iter()
                .map(|g| {
                    glob::Pattern::new(g).map_err(|e| format!("invalid glob {g:?} in `{key}`: {e}"))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(NameFilter {
            include: compile("containers", include)?,
            exclude: compile("exclude", exclude)?,
            labels: compile("labels", labels)?,
        })
    }

    /// True when a container of this name is to be read.
    pub fn wants(&self, name: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|p| p.matches(name)))
            && !self.exclude.iter().any(|p| p.matches(name))
    }

    /// The fields every record of the container gets.
    pub fn fields(&self, c: &ContainerInfo) -> Vec<(String, Value)> {
        let mut out = vec![
            (
                "container_id".to_string(),
                Value::Str(short_id(&c.id).into()),
            ),
            ("container_name".to_string(), Value::Str(c.name.clone())),
        ];
        if !c.image.is_empty() {
            out.push(("image".to_string(), Value::Str(c.image.clone())));
        }
        for (k, v) in &c.labels {
            if self.labels.iter().any(|p| p.matches(k)) {
                out.push((format!("label.{k}"), Value::Str(v.clone())));
            }
        }
        out
    }

    /// The labels of the container's records: `source`, agent and fields.
    pub fn meta(&self, c: &ContainerInfo) -> PathMeta {
        PathMeta {
            source: format!("docker:{}", c.name),
            agent: c.name.clone(),
            fields: self.fields(c),
        }
    }
}
