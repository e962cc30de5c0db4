//! How a query node asks the nodes it follows for their entries not in the bucket yet:
//! `GET <address>/api/node/recent` ([`logyard_store::NodeLink`]), with the token of
//! `[storage] node_token_env` when the nodes require tokens.

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
    /// A link whose requests take `timeout` at most, sending `token` when given.
    pub fn new(token: Option<String>, timeout: Duration) -> anyhow::Result<HttpLink> {
        let client = reqwest::blocking::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(2)))
            .build()?;
        Ok(HttpLink { client, token })
    }
}

impl NodeLink for HttpLink {
    fn recent(&self, address: &str, known: &[u64], since: u64) -> Result<Vec<u8>, String> {
        let known: Vec<String> = known.iter().map(u64::to_string).collect();
        let url = format!(
            "{}/api/node/recent?known={}&since={since}",
            address.trim_end_matches('/'),
            known.join(",")
        );
        let mut request = self.client.get(&url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let answer = request.send().map_err(|e| e.without_url().to_string())?;
        let status = answer.status();
        let body = answer.bytes().map_err(|e| e.without_url().to_string())?;
        if status.is_success() {
            return Ok(body.to_vec());
        }
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or_default();
        Err(format!("{status} {message}").trim().to_string())
    }
}
