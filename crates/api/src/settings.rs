//! The sections of `logyard.toml` the HTTP server owns: `[server]`, `[limits]` and
//! `[metrics]`, with their defaults and the settings they make. `docs/configuration.md`
//! describes each key.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use logyard_model::units::{positive_duration, Size};
use serde::Deserialize;

use crate::{IngestOptions, Limits, ServerOptions};

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Address the HTTP API listens on.
    pub listen: SocketAddr,
    /// Where the store lives.
    pub data_dir: PathBuf,
    /// The longest wait for a request head once its first byte arrived.
    #[serde(deserialize_with = "positive_duration")]
    pub header_timeout: Duration,
    /// The longest time for a request body to arrive whole.
    #[serde(deserialize_with = "positive_duration")]
    pub body_timeout: Duration,
    /// A connection waiting for a request is closed after this long without a byte.
    #[serde(deserialize_with = "positive_duration")]
    pub idle_timeout: Duration,
    /// Most connections open at once (at most half the descriptor limit).
    pub max_connections: NonZeroUsize,
    /// At shutdown, the longest wait for answers in progress.
    #[serde(deserialize_with = "positive_duration")]
    pub shutdown_timeout: Duration,
    /// Serve a non-loopback address without any token, on purpose.
    pub allow_unauthenticated: bool,
    /// The PEM certificate chain of HTTPS; with `tls_key`, the server speaks HTTPS only.
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// PEM certificates of the CAs whose client certificates identify ingest clients.
    pub tls_client_ca: Option<PathBuf>,
    /// Extra `Host` names the server answers to (`name` or `name:port`), beside its address.
    pub allowed_hosts: Vec<String>,
    /// Origins of other sites whose pages may send state-changing requests.
    pub allowed_origins: Vec<String>,
    /// The URL query nodes reach this node at (its manifest names it); by default its
    /// address, unless it listens on every address.
    pub advertise_url: Option<String>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: "127.0.0.1:8062".parse().expect("valid address"),
            data_dir: PathBuf::from("./logyard-data"),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            max_connections: NonZeroUsize::new(1024).expect("nonzero"),
            shutdown_timeout: Duration::from_secs(10),
            allow_unauthenticated: false,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            advertise_url: None,
        }
    }
}

impl ServerSettings {
    /// Returns the settings of the server's connections (without TLS).
    pub fn options(&self) -> ServerOptions {
        ServerOptions {
            header_timeout: self.header_timeout,
            body_timeout: self.body_timeout,
            idle_timeout: self.idle_timeout,
            max_connections: self.max_connections.get(),
            shutdown_timeout: self.shutdown_timeout,
            tls: None,
        }
    }

    /// Returns the `Host` and `Origin` checks of a server bound to `bound` (its real port).
    pub fn guard(&self, bound: SocketAddr) -> crate::guard::Guard {
        crate::guard::Guard::new(
            bound,
            self.allowed_hosts.clone(),
            self.allowed_origins.clone(),
        )
    }

    /// Returns the HTTPS setup of `tls_cert`, `tls_key` and `tls_client_ca`, with the files
    /// read: `None` without them; an error names the file or the missing key.
    pub fn tls(&self) -> Result<Option<logyard_tls::ServerTls>, String> {
        let (cert, key) = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => (cert, key),
            (None, None) if self.tls_client_ca.is_some() => {
                return Err("[server] tls_client_ca needs tls_cert and tls_key: client \
                            certificates are only asked for over HTTPS"
                    .into())
            }
            (None, None) => return Ok(None),
            (Some(_), None) => {
                return Err(
                    "[server] tls_cert is set but not tls_key: give both, or neither".into(),
                )
            }
            (None, Some(_)) => {
                return Err(
                    "[server] tls_key is set but not tls_cert: give both, or neither".into(),
                )
            }
        };
        let files = logyard_tls::TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: self.tls_client_ca.clone(),
        };
        logyard_tls::ServerTls::new(&files, &[b"http/1.1"])
            .map(Some)
            .map_err(|e| format!("[server]: {e}"))
    }
}

/// `[limits]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSettings {
    /// Largest request body.
    pub max_body_bytes: Size,
    /// Largest entry or line.
    pub max_line_bytes: Size,
    /// Most entries in one ingest request.
    pub max_entries_per_request: NonZeroUsize,
    /// Most bytes the entries of one ingest request may decode to.
    pub max_decoded_bytes: Size,
    /// Longest query text.
    pub max_query_bytes: Size,
    /// Largest compiled regex.
    pub max_regex_bytes: Size,
    /// Most queries one token may save on the server.
    pub max_saved_queries: NonZeroUsize,
}

impl Default for LimitsSettings {
    fn default() -> Self {
        let l = Limits::default();
        LimitsSettings {
            max_body_bytes: Size(l.max_body_bytes as u64),
            max_line_bytes: Size(logyard_parse::ParserConfig::default().max_line_bytes as u64),
            max_entries_per_request: NonZeroUsize::new(l.max_entries_per_request).expect("nonzero"),
            max_decoded_bytes: Size(l.max_decoded_bytes as u64),
            max_query_bytes: Size(l.max_query_bytes as u64),
            max_regex_bytes: Size(l.max_regex_bytes as u64),
            max_saved_queries: NonZeroUsize::new(l.max_saved_queries).expect("nonzero"),
        }
    }
}

impl LimitsSettings {
    /// Returns the API's request limits.
    pub fn limits(&self) -> Limits {
        Limits {
            max_body_bytes: usize::try_from(self.max_body_bytes.0).unwrap_or(usize::MAX),
            max_entries_per_request: self.max_entries_per_request.get(),
            max_decoded_bytes: usize::try_from(self.max_decoded_bytes.0).unwrap_or(usize::MAX),
            max_query_bytes: usize::try_from(self.max_query_bytes.0).unwrap_or(usize::MAX),
            max_regex_bytes: self.max_regex_bytes(),
            max_saved_queries: self.max_saved_queries.get(),
        }
    }

    /// The largest entry or line, in bytes.
    pub fn max_line_bytes(&self) -> usize {
        usize::try_from(self.max_line_bytes.0).unwrap_or(usize::MAX)
    }

    /// The largest compiled regex, in bytes.
    pub fn max_regex_bytes(&self) -> usize {
        usize::try_from(self.max_regex_bytes.0).unwrap_or(usize::MAX)
    }

    /// Returns the entry decoding settings of the HTTP ingest endpoints.
    pub fn ingest_options(&self, keep_raw: bool, default_source: &str) -> IngestOptions {
        IngestOptions {
            max_line_bytes: self.max_line_bytes(),
            keep_raw,
            default_source: default_source.to_string(),
        }
    }
}

/// `[metrics]`: the labels of `/metrics`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// Agents with their own `agent` label in `logyard_log_errors_total`; the rest are `other`.
    pub max_agents: usize,
    /// Followed files with their own `logyard_source_file_size_bytes` and
    /// `logyard_source_file_offset_bytes` series (the largest ones past this).
    pub max_file_series: usize,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            max_agents: 100,
            max_file_series: logyard_sources::DEFAULT_MAX_FILE_SERIES,
        }
    }
}
