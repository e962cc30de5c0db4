//! The `[auth]` section of `logyard.toml`: the tokens requests present (`[[auth.tokens]]`),
//! whether `/metrics` needs one, and how long a sign-in of the UI lasts; [`AuthConfig::build`]
//! reads each token's secret from the configuration, a file or the environment and checks
//! its role, scope, labels and quota. `docs/configuration.md` describes each key.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use logyard_model::units::Size;
use serde::Deserialize;

use crate::auth::{parse_hash, Auth, Labels, Role, Scope, Token, DEFAULT_SESSION_TTL};
use crate::quota::QuotaConfig;

/// `[auth]`: the tokens requests present.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// `[[auth.tokens]]`.
    pub tokens: Vec<TokenConfig>,
    /// `/metrics` answers without a token.
    pub public_metrics: bool,
    /// How long a sign-in of the web UI lasts.
    #[serde(deserialize_with = "logyard_model::units::positive_duration")]
    pub session_ttl: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            tokens: Vec::new(),
            public_metrics: false,
            session_ttl: DEFAULT_SESSION_TTL,
        }
    }
}

/// One `[[auth.tokens]]`: a name, a role, and where its secret's hash comes from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// HTTP Basic's user; what audit records and errors call the token.
    pub name: String,
    /// `ingest`, `read` or `admin`.
    pub role: String,
    /// `sha256:<hex>` of the token, or its Argon2 hash (`$argon2id$…`).
    pub hash: Option<String>,
    /// A file holding the token (its first line).
    pub token_file: Option<PathBuf>,
    /// An environment variable holding the token.
    pub token_env: Option<String>,
    /// A `read` token's filter, ANDed into every read it makes.
    pub scope: Option<String>,
    /// An `ingest` token's labels (`agent`, `host`, `source`), written over its entries'.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Entries per second the token may send (no limit when absent).
    pub max_lines_per_second: Option<f64>,
    /// Request bytes per second the token may send, e.g. `"10MiB"` (no limit when absent).
    pub max_bytes_per_second: Option<Size>,
    /// Queries the token may run at once (no limit when absent).
    pub max_concurrent_queries: Option<usize>,
}

/// The fewest characters of a token read from a file or the environment.
const MIN_TOKEN_CHARS: usize = 16;

impl AuthConfig {
    /// Returns the tokens of `[[auth.tokens]]`, each with its secret's hash read from the
    /// file, the environment or the configuration, and an address held after more than
    /// `max_failures` failed logins; an error names the token, never a secret.
    pub fn build(&self, max_failures: u64) -> Result<Auth, String> {
        let mut tokens = Vec::new();
        for (i, t) in self.tokens.iter().enumerate() {
            let what = format!("[[auth.tokens]] #{} (`{}`)", i + 1, t.name);
            if t.name.is_empty() || t.name.contains(':') || t.name.chars().any(char::is_whitespace)
            {
                return Err(format!(
                    "{what}: a name is needed, without `:` or spaces (it is HTTP Basic's user)"
                ));
            }
            if self.tokens[..i].iter().any(|o| o.name == t.name) {
                return Err(format!("{what}: another token has the same name"));
            }
            let role = Role::parse(&t.role).ok_or_else(|| {
                format!(
                    "{what}: role `{}` is not one of ingest, read, admin",
                    t.role
                )
            })?;
            let given = [
                t.hash.is_some(),
                t.token_file.is_some(),
                t.token_env.is_some(),
            ];
            if given.iter().filter(|g| **g).count() != 1 {
                return Err(format!(
                    "{what}: give exactly one of hash = \"sha256:…\", token_file or token_env \
                     (`logyard token new` prints a hash)"
                ));
            }
            let secret = |text: String, from: &str| -> Result<Token, String> {
                let text = text.lines().next().unwrap_or("").trim().to_string();
                if text.chars().count() < MIN_TOKEN_CHARS {
                    return Err(format!(
                        "{what}: the token in {from} is shorter than {MIN_TOKEN_CHARS} characters; \
                         `logyard token new` makes one"
                    ));
                }
                Ok(Token::from_secret(t.name.clone(), role, &text))
            };
            let token = if let Some(phc) = t.hash.as_deref().filter(|h| h.starts_with("$argon2")) {
                Token::from_argon2(t.name.clone(), role, phc).map_err(|e| format!("{what}: {e}"))?
            } else if let Some(hash) = &t.hash {
                Token::from_hash(
                    t.name.clone(),
                    role,
                    parse_hash(hash).map_err(|e| format!("{what}: {e}"))?,
                )
            } else if let Some(path) = &t.token_file {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    format!("{what}: cannot read token_file {}: {e}", path.display())
                })?;
                secret(text, &format!("token_file {}", path.display()))?
            } else {
                let name = t.token_env.as_deref().unwrap_or_default();
                let text = std::env::var(name).map_err(|_| {
                    format!("{what}: the environment variable {name} (token_env) is not set")
                })?;
                secret(text, &format!("${name}"))?
            };
            let token = match &t.scope {
                Some(_) if role != Role::Read => {
                    return Err(format!(
                    "{what}: only a `read` token may have a scope (an `{}` token reads everything \
                     or nothing)",
                    role.name()
                ))
                }
                Some(text) => {
                    token.with_scope(Scope::parse(text).map_err(|e| format!("{what}: {e}"))?)
                }
                None => token,
            };
            if !t.labels.is_empty() && role != Role::Ingest {
                return Err(format!("{what}: only an `ingest` token may fix labels"));
            }
            let mut labels = Labels::default();
            for (name, value) in &t.labels {
                labels
                    .set(name, value.clone())
                    .map_err(|e| format!("{what}: {e}"))?;
            }
            if t.max_lines_per_second
                .is_some_and(|n| !(n > 0.0 && n.is_finite()))
                || t.max_bytes_per_second.is_some_and(|s| s.0 == 0)
                || t.max_concurrent_queries == Some(0)
            {
                return Err(format!(
                    "{what}: max_lines_per_second, max_bytes_per_second and \
                     max_concurrent_queries are above 0; leave one out for no limit"
                ));
            }
            let quota = QuotaConfig {
                lines_per_second: t.max_lines_per_second,
                bytes_per_second: t.max_bytes_per_second.map(|s| s.0 as f64),
                concurrent_queries: t.max_concurrent_queries,
            };
            tokens.push(token.with_labels(labels).with_quota(quota));
        }
        Ok(Auth::new(tokens, self.public_metrics)
            .with_max_failures(max_failures)
            .with_session_ttl(self.session_ttl))
    }
}
