//! Saved queries, kept on the server per token: `GET /api/saved-queries` lists the caller's,
//! `PUT /api/saved-queries/{name}` saves one (replacing one of the same name) and
//! `DELETE /api/saved-queries/{name}` removes it.
//!
//! Each token has its own list, named after the token; a server without tokens keeps one
//! list for everyone. The lists live in `state/saved-queries.json` of the data directory,
//! replaced atomically at each change. A file that cannot be read as such a list is moved
//! aside (`saved-queries.json.damaged`) with a warning, and the lists start empty.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::auth::Identity;
use crate::error::ApiError;
use crate::AppState;

/// The file of the saved queries, under the data directory.
pub const FILE: &str = "state/saved-queries.json";

/// The longest name of a saved query, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// One saved query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    /// What its owner calls it.
    pub name: String,
    /// The query's text.
    pub query: String,
    /// The time range it was saved with (`15m`, `24h`, `all`…), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<String>,
    /// When it was saved, RFC 3339.
    pub saved_at: String,
}

/// The saved queries of every token, and the file they are kept in.
#[derive(Debug)]
pub struct SavedQueries {
    path: PathBuf,
    lists: Mutex<BTreeMap<String, Vec<Saved>>>,
}

impl SavedQueries {
    /// Reads the lists kept under `data_dir` (none yet is no list).
    pub fn open(data_dir: &Path) -> SavedQueries {
        let path = data_dir.join(FILE);
        let lists = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(lists) => lists,
                Err(e) => {
                    let aside = path.with_extension("json.damaged");
                    tracing::warn!(
                        "{} is not a list of saved queries ({e}); moved to {} and starting \
                         with none",
                        path.display(),
                        aside.display()
                    );
                    let _ = std::fs::rename(&path, &aside);
                    BTreeMap::new()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                tracing::warn!(
                    "cannot read {}: {e}; saved queries start empty",
                    path.display()
                );
                BTreeMap::new()
            }
        };
        SavedQueries {
            path,
            lists: Mutex::new(lists),
        }
    }

    /// The saved queries of one owner, by name.
    pub fn list(&self, owner: &str) -> Vec<Saved> {
        let lists = self.lists.lock().expect("saved queries lock");
        lists.get(owner).cloned().unwrap_or_default()
    }

    /// Saves a query (replacing one of the same name) and writes the file; `max` is the most
    /// an owner may keep.
    pub fn save(&self, owner: &str, saved: Saved, max: usize) -> Result<(), ApiError> {
        self.change(owner, |list| {
            if let Some(old) = list.iter_mut().find(|s| s.name == saved.name) {
                *old = saved;
            } else if list.len() >= max {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "too_many_saved_queries",
                    format!(
                        "{max} queries are saved already (limits.max_saved_queries); \
                         delete one first"
                    ),
                ));
            } else {
                list.push(saved);
                list.sort_by(|a, b| a.name.cmp(&b.name));
            }
            Ok(())
        })
    }

    /// Removes a saved query and writes the file.
    pub fn delete(&self, owner: &str, name: &str) -> Result<(), ApiError> {
        self.change(owner, |list| {
            let before = list.len();
            list.retain(|s| s.name != name);
            if list.len() == before {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    format!("no saved query is named {name:?}"),
                ));
            }
            Ok(())
        })
    }

    /// Applies a change to an owner's list and writes every list; the change is undone when
    /// the file cannot be written.
    fn change(
        &self,
        owner: &str,
        edit: impl FnOnce(&mut Vec<Saved>) -> Result<(), ApiError>,
    ) -> Result<(), ApiError> {
        let mut lists = self.lists.lock().expect("saved queries lock");
        let mut next = lists.clone();
        let list = next.entry(owner.to_string()).or_default();
        edit(list)?;
        if list.is_empty() {
            next.remove(owner);
        }
        let bytes = serde_json::to_vec_pretty(&next).expect("saved queries serialise");
        let written = self
            .path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| logyard_store::fileops::write_atomic(&self.path, &bytes));
        if let Err(e) = written {
            return Err(ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "storage_error",
                format!(
                    "cannot write {}: {e}; nothing was changed",
                    self.path.display()
                ),
            ));
        }
        *lists = next;
        Ok(())
    }
}

/// The routes of saved queries.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/saved-queries", get(list)).route(
        "/api/saved-queries/{name}",
        axum::routing::put(save).delete(delete),
    )
}

/// The body of `PUT /api/saved-queries/{name}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SaveBody {
    query: String,
    #[serde(default)]
    range: Option<String>,
}

/// The owner of the request's lists: its token's name, or "" without tokens.
fn owner(identity: &Option<Extension<Identity>>) -> String {
    identity
        .as_ref()
        .map(|Extension(i)| i.name.clone())
        .unwrap_or_default()
}

async fn list(State(state): State<AppState>, identity: Option<Extension<Identity>>) -> Json<Value> {
    Json(json!({ "queries": state.saved.list(&owner(&identity)) }))
}

async fn save(
    State(state): State<AppState>,
    identity: Option<Extension<Identity>>,
    UrlPath(name): UrlPath<String>,
    body: Result<Json<SaveBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!(
                "{}; send {{\"query\": \"level:ERROR\", \"range\": \"24h\"}}",
                e.body_text()
            ),
        )
    })?;
    let bad = |m: String| ApiError::bad_param(m);
    let name = name.trim().to_string();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(bad(format!(
            "the name must have 1 to {MAX_NAME_CHARS} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(bad("the name cannot hold control characters".into()));
    }
    if body.query.len() > state.limits.max_query_bytes {
        return Err(bad(format!(
            "query is {} bytes, over the limit of {} (setting limits.max_query_bytes)",
            body.query.len(),
            state.limits.max_query_bytes
        )));
    }
    if let Some(range) = &body.range {
        if range.len() > 100 || range.chars().any(char::is_control) {
            return Err(bad("range: at most 100 characters, none a control".into()));
        }
    }
    let saved = Saved {
        name,
        query: body.query,
        range: body.range.filter(|r| !r.is_empty()),
        saved_at: logyard_model::format_rfc3339(logyard_model::now_ns()),
    };
    let owner = owner(&identity);
    let max = state.limits.max_saved_queries;
    let store = Arc::clone(&state.saved);
    let answer = saved.clone();
    crate::error::blocking(move || store.save(&owner, saved, max)).await?;
    Ok(Json(json!({ "saved": answer })))
}

async fn delete(
    State(state): State<AppState>,
    identity: Option<Extension<Identity>>,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    let owner = owner(&identity);
    let store = Arc::clone(&state.saved);
    let deleted = name.clone();
    crate::error::blocking(move || store.delete(&owner, &name)).await?;
    Ok(Json(json!({ "deleted": deleted })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(name: &str, query: &str) -> Saved {
        Saved {
            name: name.into(),
            query: query.into(),
            range: None,
            saved_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn lists_are_per_owner_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let s = SavedQueries::open(dir.path());
        s.save("ana", saved("errors", "level:ERROR"), 10).unwrap();
        s.save("ana", saved("billing", "agent:billing"), 10)
            .unwrap();
        s.save("bo", saved("errors", "level:>=WARNING"), 10)
            .unwrap();
        s.save("ana", saved("errors", "level:>=ERROR"), 10).unwrap();
        let again = SavedQueries::open(dir.path());
        let ana: Vec<_> = again
            .list("ana")
            .into_iter()
            .map(|s| (s.name, s.query))
            .collect();
        assert_eq!(
            ana,
            [
                ("billing".to_string(), "agent:billing".to_string()),
                ("errors".to_string(), "level:>=ERROR".to_string())
            ]
        );
        assert_eq!(again.list("bo")[0].query, "level:>=WARNING");
        assert!(again.list("cy").is_empty());
        let full = again.save("bo", saved("two", "x"), 1).unwrap_err();
        assert_eq!(full.code, "too_many_saved_queries");
        again.delete("bo", "errors").unwrap();
        assert_eq!(again.delete("bo", "errors").unwrap_err().code, "not_found");
        assert!(SavedQueries::open(dir.path()).list("bo").is_empty());
    }

    #[test]
    fn a_damaged_file_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("state")).unwrap();
        std::fs::write(dir.path().join(FILE), b"{not json").unwrap();
        let s = SavedQueries::open(dir.path());
        assert!(s.list("").is_empty());
        assert!(dir.path().join("state/saved-queries.json.damaged").exists());
        s.save("", saved("a", "b"), 5).unwrap();
        assert_eq!(SavedQueries::open(dir.path()).list("")[0].name, "a");
    }
}
