//! Notifiers: where an alert goes once it fires.
//!
//! The `alert` crate decides *when* to notify; this crate only knows *how*. A
//! [`NotifierConfig`] (one `[[alerts.notifiers]]` table) is built into a [`Notifier`], whose
//! [`Notifier::send`] delivers one [`Notification`] with retries and exponential backoff and
//! answers a [`Delivery`] saying whether it arrived, after how many attempts, and why not.
//!
//! Formats: the generic webhook POSTs the [`Notification`] itself as JSON (the contract of
//! `API.md`, "Notifications"); Slack gets an incoming-webhook `{"text": …}`; Alertmanager gets
//! its API v2 list of alerts; e-mail goes over SMTP, with STARTTLS or implicit TLS and AUTH
//! PLAIN or LOGIN. HTTP targets may be `https://`; TLS is rustls, trusting the public roots
//! of `webpki-roots` plus an optional `ca_file`.
//!
//! ```no_run
//! # async fn f() {
//! use logyard_notify::{Notification, NotifierConfig};
//! let config = NotifierConfig::webhook("hermes", "http://localhost:8060");
//! let notifier = config.build().unwrap();
//! let delivery = notifier.send(&Notification::default()).await;
//! assert!(delivery.ok);
//! # }
//! ```

mod config;
mod format;
mod smtp;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use config::{NotifierConfig, NotifierKind};
pub use format::{alertmanager_body, email_text, slack_body};
pub use smtp::SmtpTls;

/// Why a notifier configuration is refused.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// A key has a value that cannot work.
    #[error("notifier {name:?}: {message}")]
    Invalid {
        /// The notifier's name.
        name: String,
        /// What is wrong and what to write instead.
        message: String,
    },
}

/// One alert as notifiers receive it; serialised, it is the generic webhook's body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// The rule's name.
    pub rule: String,
    /// The rule's kind (`immediate`, `threshold`, …).
    pub kind: String,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    /// The values of the rule's `group_by` keys for this alert.
    pub group: BTreeMap<String, String>,
    /// Matching entries that made the alert fire.
    pub count: u64,
    /// Alerts of this rule and group held back by the cooldown since the last notification.
    pub suppressed: u64,
    /// Time of the first entry counted, ns since the Unix epoch; RFC 3339 in JSON.
    #[serde(with = "rfc3339")]
    pub first_seen: i64,
    /// Time of the last entry counted, ns since the Unix epoch; RFC 3339 in JSON.
    #[serde(with = "rfc3339")]
    pub last_seen: i64,
    /// The triggering line's message, or a one-line summary.
    pub message: String,
    /// At most 10 of the entries, as the API prints them.
    pub entries: Vec<serde_json::Value>,
}

/// A time in ns as JSON: written as RFC 3339, read from RFC 3339 or from a number of ns
/// (the alert state files of earlier versions).
mod rfc3339 {
    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ns: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&logyard_model::format_rfc3339(*ns))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        struct Ns;
        impl Visitor<'_> for Ns {
            type Value = i64;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an RFC 3339 time or a number of ns since the Unix epoch")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
                Ok(v)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
                i64::try_from(v).map_err(|_| E::custom(format!("{v} ns is out of range")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
                chrono::DateTime::parse_from_rfc3339(v)
                    .ok()
                    .and_then(|t| t.timestamp_nanos_opt())
                    .ok_or_else(|| E::custom(format!("{v:?} is not an RFC 3339 time")))
            }
        }
        d.deserialize_any(Ns)
    }
}

/// The outcome of sending one notification to one notifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The notifier's name.
    pub notifier: String,
    /// Whether it was delivered.
    pub ok: bool,
    /// Attempts made.
    pub attempts: u32,
    /// The last error, when not delivered.
    pub error: Option<String>,
}

/// How often and how patiently to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Attempts in all (at least 1).
    pub attempts: u32,
    /// Wait before the second attempt; doubles each time.
    pub backoff: Duration,
    /// The longest wait between attempts.
    pub max_backoff: Duration,
    /// How long one attempt may take.
    pub timeout: Duration,
}

impl Default for Retry {
    fn default() -> Retry {
        Retry {
            attempts: 4,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
        }
    }
}

/// A built notifier, ready to send.
#[derive(Debug, Clone)]
pub struct Notifier {
    name: String,
    kind: NotifierKind,
    target: Target,
    retry: Retry,
    http: reqwest::Client,
}

#[derive(Debug, Clone)]
enum Target {
    Http(String),
    Smtp(smtp::SmtpTarget),
}

impl Notifier {
    /// Returns the notifier's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the notifier's format.
    pub fn kind(&self) -> NotifierKind {
        self.kind
    }

    /// Returns its retry settings.
    pub fn retry(&self) -> Retry {
        self.retry
    }

    /// Sends one notification, retrying with exponential backoff up to the configured
    /// number of attempts; never fails, the outcome is in the [`Delivery`].
    pub async fn send(&self, n: &Notification) -> Delivery {
        let mut wait = self.retry.backoff;
        let mut last_error = None;
        let attempts = self.retry.attempts.max(1);
        for attempt in 1..=attempts {
            match self.attempt(n).await {
                Ok(()) => {
                    return Delivery {
                        notifier: self.name.clone(),
                        ok: true,
                        attempts: attempt,
                        error: None,
                    }
                }
                Err(e) => {
                    tracing::debug!(notifier = %self.name, attempt, error = %e, "notification failed");
                    last_error = Some(e);
                }
            }
            if attempt < attempts {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(self.retry.max_backoff);
            }
        }
        Delivery {
            notifier: self.name.clone(),
            ok: false,
            attempts,
            error: last_error,
        }
    }

    async fn attempt(&self, n: &Notification) -> Result<(), String> {
        match &self.target {
            Target::Http(url) => {
                let body = match self.kind {
                    NotifierKind::Webhook => serde_json::to_value(n).map_err(|e| e.to_string())?,
                    NotifierKind::Slack => slack_body(n),
                    NotifierKind::Alertmanager => alertmanager_body(n),
                    NotifierKind::Email => unreachable!("e-mail goes over SMTP"),
                };
                let resp = self
                    .http
                    .post(url)
                    .timeout(self.retry.timeout)
                    .json(&body)
                    .send()
                    .await
                    // Without the URL: its path or query may be a secret (Slack's are).
                    .map_err(|e| describe_reqwest(&e.without_url()))?;
                let status = resp.status();
                if status.is_success() {
                    Ok(())
                } else {
                    Err(format!("{} answered {status}", origin_of(url)))
                }
            }
            Target::Smtp(t) => tokio::time::timeout(self.retry.timeout, t.send(n))
                .await
                .map_err(|_| format!("smtp {} timed out", t.server))?,
        }
    }
}

/// The scheme, host and port of a URL: what an error may show of it.
fn origin_of(url: &str) -> String {
    reqwest::Url::parse(url).map_or_else(
        |_| "the receiver".to_string(),
        |u| u.origin().ascii_serialization(),
    )
}

/// Says why a request failed, with its causes (a TLS error says which certificate check);
/// the node links of the binary say it the same way.
pub fn describe_reqwest(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".to_string();
    }
    let mut text = if e.is_connect() {
        format!("cannot connect: {e}")
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
