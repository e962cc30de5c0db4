//! Who a request is: a token's [`Role`], the [`Scope`] of its reads and the [`Labels`] of
//! its writes, gathered in an [`Identity`]; and the secrets' form (new tokens, their
//! SHA-256 as configured). The sessions of the UI and the checks of `auth` build on these.

use std::sync::Arc;

use base64::Engine as _;
use logyard_model::{Column, Record};
use logyard_query::Filter;

use crate::quota::Quota;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The ingest endpoints only: `POST /api/logs` and the shippers' protocols.
    Ingest,
    /// Every read: queries, SQL, export, tail, analyses, reports, alerts, the UI.
    Read,
    /// Everything.
    Admin,
}

impl Role {
    /// Parses `ingest`, `read` or `admin`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "ingest" => Some(Role::Ingest),
            "read" => Some(Role::Read),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// The role's name as configured.
    pub fn name(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Read => "read",
            Role::Admin => "admin",
        }
    }

    /// Whether a token of this role may use an endpoint that needs `need`.
    pub(crate) fn allows(self, need: Role) -> bool {
        self == Role::Admin || self == need
    }
}

/// The rows a `read` token may see: `scope = "<filter>"`, e.g. `agent:billing-* OR host:web-*`.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The filter as configured.
    pub text: String,
    /// The parsed filter, ANDed into every read.
    pub filter: Filter,
}

impl Scope {
    /// Parses a scope: a filter of the query language, without pipes. Relative times in it
    /// (`_time:>now-1d`) are anchored when the configuration is read.
    pub fn parse(text: &str) -> Result<Scope, String> {
        let filter =
            logyard_query::parse_filter(text, logyard_model::now_ns()).map_err(|e| match e {
                logyard_query::QueryError::Syntax { message, position } => {
                    format!("scope {text:?}: {message} (at byte {position})")
                }
                other => format!("scope {text:?}: {other}"),
            })?;
        if matches!(filter, Filter::All) {
            return Err(format!(
                "scope {text:?} keeps every entry: remove it, or write the filter the token may read"
            ));
        }
        Ok(Scope {
            text: text.to_string(),
            filter,
        })
    }
}

/// The labels an `ingest` token writes whatever its entries say: `labels = { host = "…" }`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels {
    /// Overwrites every entry's `agent`.
    pub agent: Option<String>,
    /// Overwrites every entry's `host`.
    pub host: Option<String>,
    /// Overwrites every entry's `source`.
    pub source: Option<String>,
}

impl Labels {
    /// Sets one label by name (`agent`, `host` or `source`); any other name is an error.
    pub fn set(&mut self, name: &str, value: String) -> Result<(), String> {
        let slot = match Column::parse(name) {
            Some(Column::Agent) => &mut self.agent,
            Some(Column::Host) => &mut self.host,
            Some(Column::Source) => &mut self.source,
            _ => {
                return Err(format!(
                    "labels: `{name}` is not a label; a token may fix agent, host and source"
                ))
            }
        };
        *slot = Some(value);
        Ok(())
    }

    /// Whether no label is fixed.
    pub fn is_empty(&self) -> bool {
        self.agent.is_none() && self.host.is_none() && self.source.is_none()
    }

    /// Overwrites the fixed labels of a record, and drops the fields of the same names (a
    /// Loki stream's labels), which would claim what the token may not.
    pub fn apply(&self, record: &mut Record) {
        for (label, slot, column) in [
            (&self.agent, &mut record.agent, Column::Agent),
            (&self.host, &mut record.host, Column::Host),
            (&self.source, &mut record.source, Column::Source),
        ] {
            if let Some(value) = label {
                slot.clone_from(value);
                record.fields.remove(column.name());
            }
        }
    }
}

/// The SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// Parses a configured `hash`: `sha256:` and 64 hexadecimal digits.
pub fn parse_hash(text: &str) -> Result<[u8; 32], String> {
    let hex = text.strip_prefix("sha256:").ok_or_else(|| {
        "a token hash is written `sha256:<64 hex digits>` or `$argon2id$…` (`logyard token new` prints one)"
            .to_string()
    })?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "`sha256:` must be followed by 64 hexadecimal digits, not {} characters",
            hex.len()
        ));
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("checked hex digits");
    }
    Ok(out)
}

/// Writes a hash as configured: `sha256:<hex>`.
pub fn format_hash(sha256: &[u8; 32]) -> String {
    let mut out = String::from("sha256:");
    for b in sha256 {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// A new random token: `ly_` and 43 URL-safe base64 characters (256 bits).
pub fn new_secret() -> String {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system's random source works");
    format!(
        "ly_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// Who made a request.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The token's name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// What its reads are narrowed to, if anything.
    pub scope: Option<Arc<Scope>>,
    /// The labels it writes whatever its entries say.
    pub labels: Arc<Labels>,
    /// Its rates and concurrent queries.
    pub quota: Arc<Quota>,
}
