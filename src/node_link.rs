//! How a query node asks the nodes it follows for their entries not in the bucket yet:
//! `GET <address>/api/node/recent` ([`logyard_store::NodeLink`]), with the token of
//! `[storage] node_token_env` when the nodes require tokens. An `https://` address is
//! checked against the public authorities and those of `[storage] node_ca_file`.

use std::path::Path;
use std::time::Duration;

use logyard_store::NodeLink;

/// The HTTP link of a query node to the nodes it follows.
pub struct HttpLink {
    client: reqwest::blocking::Client,
    token: Option<String>,
}

impl std::fmt::Debug for HttpLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpLink")
            .field("token", &self.token.as_ref().map(|_| "…"))
            .finish()
    }
}

impl HttpLink {
    /// A link whose requests take `timeout` at most, sending `token` when given, trusting
    /// the certificates of `ca_file` (PEM, `[storage] node_ca_file`) besides the public
    /// authorities.
    pub fn new(
        token: Option<String>,
        timeout: Duration,
        ca_file: Option<&Path>,
    ) -> anyhow::Result<HttpLink> {
        let mut client = reqwest::blocking::Client::builder()
            .use_rustls_tls()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(2)));
        if let Some(path) = ca_file {
            let key = format!("[storage] node_ca_file = {:?}", path.display());
            let pem = std::fs::read(path).map_err(|e| {
                anyhow::anyhow!(
                    "{key} cannot be read: {e}; name the PEM file of the authority that signs \
                     the nodes' certificates"
                )
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| {
                    anyhow::anyhow!("{key} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
                })?;
            for cert in certs {
                client = client.add_root_certificate(cert);
            }
        }
        Ok(HttpLink {
            client: client.build()?,
            token,
        })
    }
}

/// What stopped a request, with its causes (a refused certificate is named only in them)
/// and, for a certificate, what to do.
fn explain(e: reqwest::Error) -> String {
    let mut text = logyard_notify::describe_reqwest(&e.without_url());
    if text.contains("certificate") {
        text.push_str(
            " (for a node certificate signed by a private authority, name the authority's PEM \
             file in [storage] node_ca_file)",
        );
    }
    text
}

impl NodeLink for HttpLink {
    fn recent(
        &self,
        address: &str,
        known: &[u64],
        since: u64,
        max_bytes: u64,
    ) -> Result<Vec<u8>, String> {
        let known: Vec<String> = known.iter().map(u64::to_string).collect();
        let url = format!(
            "{}/api/node/recent?known={}&since={since}&max_bytes={max_bytes}",
            address.trim_end_matches('/'),
            known.join(",")
        );
        let mut request = self.client.get(&url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let answer = request.send().map_err(explain)?;
        let status = answer.status();
        let body = answer.bytes().map_err(explain)?;
        if status.is_success() {
            return Ok(body.to_vec());
        }
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .map(|v| crate::cli::error_message(&v).to_string())
            .unwrap_or_default();
        Err(format!("{status} {message}").trim().to_string())
    }
}
