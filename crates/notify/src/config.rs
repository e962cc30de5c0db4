//! `[[alerts.notifiers]]` tables: [`NotifierConfig`] mirrors the keys, [`NotifierConfig::build`]
//! checks them into a [`Notifier`].

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::smtp::{Credentials, Secret, SmtpTarget, SmtpTls};
use crate::{Notifier, NotifyError, Retry, Target};

/// The format a notifier speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifierKind {
    /// A JSON POST of the notification itself.
    Webhook,
    /// A Slack incoming webhook.
    Slack,
    /// Alertmanager's `POST /api/v2/alerts`.
    Alertmanager,
    /// SMTP e-mail.
    Email,
}

impl NotifierKind {
    /// Returns the name written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifierKind::Webhook => "webhook",
            NotifierKind::Slack => "slack",
            NotifierKind::Alertmanager => "alertmanager",
            NotifierKind::Email => "email",
        }
    }
}

/// One `[[alerts.notifiers]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifierConfig {
    /// The name rules refer to in `notify`.
    pub name: String,
    /// The format.
    #[serde(rename = "type")]
    pub kind: NotifierKind,
    /// Where to POST (webhook, slack); for alertmanager, its base URL.
    #[serde(default)]
    pub url: Option<String>,
    /// The environment variable holding `url` instead (a service unit's `HERMES_URL`, a
    /// Slack URL kept out of the file); its value never appears in an error.
    #[serde(default)]
    pub url_env: Option<String>,
    /// Attempts in all before giving up (default 4).
    #[serde(default)]
    pub attempts: Option<u32>,
    /// First wait between attempts, doubled each time (default `500ms`).
    #[serde(default)]
    pub backoff: Option<String>,
    /// Longest wait between attempts (default `30s`).
    #[serde(default)]
    pub max_backoff: Option<String>,
    /// How long one attempt may take (default `10s`).
    #[serde(default)]
    pub timeout: Option<String>,
    /// E-mail: the SMTP server as `host:port`.
    #[serde(default)]
    pub smtp: Option<String>,
    /// E-mail: the sender address.
    #[serde(default)]
    pub from: Option<String>,
    /// E-mail: the recipients.
    #[serde(default)]
    pub to: Vec<String>,
    /// E-mail: STARTTLS when offered (default), required, implicit TLS, or none.
    #[serde(default)]
    pub tls: Option<SmtpTls>,
    /// E-mail: the user name to log in with (AUTH PLAIN or LOGIN).
    #[serde(default)]
    pub username: Option<String>,
    /// E-mail: the environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// E-mail: a file holding the password (a trailing newline is ignored).
    #[serde(default)]
    pub password_file: Option<std::path::PathBuf>,
    /// HTTPS and e-mail over TLS: a PEM file of certificate authorities trusted besides the
    /// public ones (a private CA, a self-signed receiver).
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
}

impl NotifierConfig {
    /// Returns a generic webhook notifier's configuration.
    pub fn webhook(name: &str, url: &str) -> NotifierConfig {
        NotifierConfig {
            name: name.into(),
            kind: NotifierKind::Webhook,
            url: Some(url.into()),
            url_env: None,
            attempts: None,
            backoff: None,
            max_backoff: None,
            timeout: None,
            smtp: None,
            from: None,
            to: Vec::new(),
            tls: None,
            username: None,
            password_env: None,
            password_file: None,
            ca_file: None,
        }
    }

    /// Checks the keys and builds the notifier.
    pub fn build(&self) -> Result<Notifier, NotifyError> {
        let invalid = |message: String| NotifyError::Invalid {
            name: self.name.clone(),
            message,
        };
        if self.name.trim().is_empty() {
            return Err(invalid(
                "the name is empty; give every notifier a name".into(),
            ));
        }
        let d = Retry::default();
        let dur = |key: &str, v: &Option<String>, default: Duration| match v {
            None => Ok(default),
            Some(text) => match logyard_model::parse_duration(text) {
                Ok(ns) if ns > 0 => Ok(Duration::from_nanos(ns as u64)),
                _ => Err(invalid(format!(
                    "{key} = {text:?} is not a duration; write 500ms, 10s, 1m"
                ))),
            },
        };
        let retry = Retry {
            attempts: match self.attempts {
                Some(0) => return Err(invalid("attempts must be at least 1".into())),
                Some(a) => a,
                None => d.attempts,
            },
            backoff: dur("backoff", &self.backoff, d.backoff)?,
            max_backoff: dur("max_backoff", &self.max_backoff, d.max_backoff)?,
            timeout: dur("timeout", &self.timeout, d.timeout)?,
        };
        // Read once, trusted by the HTTP client and by SMTP over TLS.
        let ca_pem = match &self.ca_file {
            None => None,
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                invalid(format!(
                    "ca_file = {:?} cannot be read: {e}",
                    path.display()
                ))
            })?),
        };
        let no_pem = |path: &std::path::Path| {
            invalid(format!(
                "ca_file = {:?} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                path.display()
            ))
        };
        if self.kind != NotifierKind::Email {
            let email_only = [
                ("tls", self.tls.is_some()),
                ("username", self.username.is_some()),
                ("password_env", self.password_env.is_some()),
                ("password_file", self.password_file.is_some()),
            ];
            if let Some((key, _)) = email_only.iter().find(|k| k.1) {
                return Err(invalid(format!(
                    "{key} is a key of email notifiers, not of {}",
                    self.kind.as_str()
                )));
            }
        }
        let target = match self.kind {
            NotifierKind::Email => {
                let server = self.smtp.clone().ok_or_else(|| {
                    invalid("an email notifier needs smtp = \"host:port\"".into())
                })?;
                if !server.contains(':') {
                    return Err(invalid(format!(
                        "smtp = {server:?} needs a port, as in \"mail.example.com:25\""
                    )));
                }
                let from = self
                    .from
                    .clone()
                    .ok_or_else(|| invalid("an email notifier needs from = \"address\"".into()))?;
                if self.to.is_empty() {
                    return Err(invalid(
                        "an email notifier needs to = [\"address\", …]".into(),
                    ));
                }
                let tls = self.tls.unwrap_or_default();
                let credentials = self.credentials(&invalid)?;
                let mut roots = tokio_rustls::rustls::RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                };
                if let (Some(pem), Some(path)) = (&ca_pem, &self.ca_file) {
                    use rustls_pki_types::pem::PemObject;
                    let certs: Vec<_> = rustls_pki_types::CertificateDer::pem_slice_iter(pem)
                        .collect::<Result<_, _>>()
                        .map_err(|e| {
                            invalid(format!(
                                "ca_file = {:?} is not valid PEM: {e}",
                                path.display()
                            ))
                        })?;
                    if certs.is_empty() {
                        return Err(no_pem(path));
                    }
                    for cert in certs {
                        roots.add(cert).map_err(|e| {
                            invalid(format!(
                                "ca_file = {:?} holds a certificate that cannot be trusted: {e}",
                                path.display()
                            ))
                        })?;
                    }
                }
                let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
                let tls_config =
                    tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
                        .with_safe_default_protocol_versions()
                        .map_err(|e| invalid(format!("cannot set up TLS: {e}")))?
                        .with_root_certificates(roots)
                        .with_no_client_auth();
                Target::Smtp(SmtpTarget {
                    server,
                    from,
                    to: self.to.clone(),
                    tls,
                    credentials,
                    tls_config: Arc::new(tls_config),
                })
            }
            kind => {
                // How errors name the URL: a value from the environment is not shown, as it
                // may hold a secret (Slack's webhook URLs do).
                let (url, named) = match (&self.url, &self.url_env) {
                    (Some(_), Some(_)) => {
                        return Err(invalid("set url or url_env, not both".into()));
                    }
                    (Some(url), None) => (url.clone(), format!("url = {url:?}")),
                    (None, Some(var)) => {
                        let url = std::env::var(var).map_err(|_| {
                            invalid(format!(
                                "url_env = {var:?}: the variable is not set (or not UTF-8); \
                                 set it in the server's environment, or write url = \"http://…\""
                            ))
                        })?;
                        (url, format!("the URL in {var}"))
                    }
                    (None, None) => {
                        return Err(invalid(format!(
                            "a {} notifier needs url = \"http://…\" or url_env = \"VARIABLE\"",
                            kind.as_str()
                        )));
                    }
                };
                let parsed = reqwest::Url::parse(&url)
                    .map_err(|e| invalid(format!("{named} is not a URL: {e}")))?;
                if parsed.scheme() != "http" && parsed.scheme() != "https" {
                    return Err(invalid(format!(
                        "{named}: only http:// and https:// URLs are supported"
                    )));
                }
                if kind == NotifierKind::Alertmanager {
                    Target::Http(format!("{}/api/v2/alerts", url.trim_end_matches('/')))
                } else {
                    Target::Http(url)
                }
            }
        };
        let mut http = reqwest::Client::builder().use_rustls_tls();
        if let (Some(pem), Some(path)) = (&ca_pem, &self.ca_file) {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| no_pem(path))?;
            for cert in certs {
                http = http.add_root_certificate(cert);
            }
        }
        let http = http
            .build()
            .map_err(|e| invalid(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Notifier {
            name: self.name.clone(),
            kind: self.kind,
            target,
            retry,
            http,
        })
    }

    /// Reads the password of `username` from `password_env` or `password_file` (never from
    /// the configuration itself).
    fn credentials(
        &self,
        invalid: &dyn Fn(String) -> NotifyError,
    ) -> Result<Option<Credentials>, NotifyError> {
        let Some(username) = &self.username else {
            if self.password_env.is_some() || self.password_file.is_some() {
                return Err(invalid(
                    "password_env and password_file need username = \"…\"".into(),
                ));
            }
            return Ok(None);
        };
        if username.is_empty() {
            return Err(invalid("username is empty".into()));
        }
        let password = match (&self.password_env, &self.password_file) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "set password_env or password_file, not both".into(),
                ))
            }
            (None, None) => {
                return Err(invalid(
                    "username needs a password: password_env = \"VARIABLE\" or password_file = \"/path\""
                        .into(),
                ))
            }
            (Some(var), None) => std::env::var(var).map_err(|e| {
                invalid(format!("password_env = {var:?}: the variable cannot be read: {e}"))
            })?,
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    invalid(format!(
                        "password_file = {:?} cannot be read: {e}",
                        path.display()
                    ))
                })?;
                text.strip_suffix('\n')
                    .map(|t| t.strip_suffix('\r').unwrap_or(t))
                    .unwrap_or(&text)
                    .to_string()
            }
        };
        if password.is_empty() {
            return Err(invalid("the password is empty".into()));
        }
        Ok(Some(Credentials {
            username: username.clone(),
            password: Secret(password),
        }))
    }
}
