//! Audit records, and the brake on addresses that keep presenting wrong tokens.
//!
//! Every sign-in of the UI, every login that fails (a request presenting a token that matches
//! none: the client's address, the token's name when Basic or ApiKey carried one, never the
//! secret), every
//! administrator's request to an administrator's endpoint, and every request of a scoped
//! token refused because its answer covers every agent is written to the store as an entry
//! of the agent [`AGENT`], and counted in `logyard_audit_events_total`. A request without any
//! token is only counted (`logyard_auth_failures_total`): a browser's first request is one.
//!
//! The failures are written as the auth analysis reads failed logins (`login failed`, an
//! `ip` field), so `/api/analyses/auth` finds brute force against logyard itself. The same
//! rule brakes it here: an address with more than `report.suspicious_failures` failed logins
//! within [`FAILURE_WINDOW`] has its further wrong tokens answered `429 too_many_failures`
//! (with `Retry-After`) without being checked, until its oldest failure leaves the window. A
//! valid token from that address still works.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use logyard_model::{Level, Record, Value};
use logyard_store::Store;

/// The agent of audit records.
pub const AGENT: &str = "logyard-audit";

/// How long a failed login counts against its address.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(600);

/// Most addresses whose failures are remembered; past it the oldest are forgotten.
const MAX_ADDRESSES: usize = 10_000;

/// What an audit record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A token that matches none.
    LoginFailed,
    /// An administrator's request to an administrator's endpoint.
    AdminAction,
    /// A scoped token asked for an answer that covers every agent.
    ScopeRefused,
    /// A browser signed in with a token.
    SignIn,
}

impl Event {
    /// The event's name: the `event` field and the metric's label.
    pub fn name(self) -> &'static str {
        match self {
            Event::LoginFailed => "login_failed",
            Event::AdminAction => "admin_action",
            Event::ScopeRefused => "scope_refused",
            Event::SignIn => "sign_in",
        }
    }
}

/// One request's part in an audit record.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    /// The client's address, when known.
    pub ip: Option<IpAddr>,
    /// The token's name, when known.
    pub token: Option<&'a str>,
    /// The request's method.
    pub method: &'a str,
    /// The request's path (without its query, which may hold secrets).
    pub path: &'a str,
}

/// Writes audit records and keeps the failed logins of each address.
#[derive(Debug)]
pub struct Audit {
    max_failures: u64,
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
    events: [AtomicU64; 4],
    throttled: AtomicU64,
}

impl Audit {
    /// An audit whose brake holds an address after more than `max_failures` failed logins
    /// within [`FAILURE_WINDOW`].
    pub fn new(max_failures: u64) -> Audit {
        Audit {
            max_failures,
            failures: Mutex::default(),
            events: Default::default(),
            throttled: AtomicU64::new(0),
        }
    }

    /// Writes one record to the store (not waiting for it to be durable) and counts it.
    pub fn record(&self, store: &Store, event: Event, who: &Subject<'_>) {
        self.events[event as usize].fetch_add(1, Ordering::Relaxed);
        let ip = who
            .ip
            .map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
        let token = who.token.map(|t| format!("`{t}`"));
        let message = match event {
            Event::LoginFailed => format!(
                "login failed: {} from {ip} ({} {})",
                token
                    .as_deref()
                    .map_or("a token that matches none".to_string(), |t| format!(
                        "a wrong secret for the token {t}"
                    )),
                who.method,
                who.path
            ),
            Event::AdminAction => format!(
                "admin action: the token {} {} {} from {ip}",
                token.as_deref().unwrap_or("?"),
                who.method,
                who.path
            ),
            Event::ScopeRefused => format!(
                "scope escape refused: the token {} asked {} {} from {ip}",
                token.as_deref().unwrap_or("?"),
                who.method,
                who.path
            ),
            Event::SignIn => format!(
                "sign-in: the token {} from {ip}",
                token.as_deref().unwrap_or("?")
            ),
        };
        let mut record = Record::new(logyard_model::now_ns(), message);
        record.level = Some(match event {
            Event::AdminAction | Event::SignIn => Level::Info,
            _ => Level::Warning,
        });
        record.agent = AGENT.into();
        record.source = "audit".into();
        let mut field = |k: &str, v: String| {
            record.fields.insert(k.into(), Value::Str(v));
        };
        field("event", event.name().into());
        field("ip", ip);
        field("method", who.method.into());
        field("path", who.path.into());
        if let Some(t) = who.token {
            field("token", t.into());
        }
        if let Err(e) = store.submit(vec![record]) {
            tracing::warn!(error = %e, "an audit record could not be written");
        }
    }

    /// Counts a failed login of an address.
    pub fn failed(&self, ip: IpAddr) {
        let now = Instant::now();
        let mut map = self.failures.lock().expect("audit lock");
        if map.len() >= MAX_ADDRESSES && !map.contains_key(&ip) {
            map.retain(|_, times| times.back().is_some_and(|t| now - *t < FAILURE_WINDOW));
            if map.len() >= MAX_ADDRESSES {
                let oldest = map
                    .iter()
                    .min_by_key(|(_, times)| times.back().copied())
                    .map(|(ip, _)| *ip);
                if let Some(oldest) = oldest {
                    map.remove(&oldest);
                }
            }
        }
        let times = map.entry(ip).or_default();
        times.push_back(now);
        while times.len() as u64 > self.max_failures.saturating_add(1) {
            times.pop_front();
        }
    }

    /// How long an address is held for its failed logins, if it is.
    pub fn held(&self, ip: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        let mut map = self.failures.lock().expect("audit lock");
        let times = map.get_mut(&ip)?;
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= FAILURE_WINDOW)
        {
            times.pop_front();
        }
        if (times.len() as u64) <= self.max_failures {
            return None;
        }
        self.throttled.fetch_add(1, Ordering::Relaxed);
        let oldest = *times.front()?;
        Some(FAILURE_WINDOW.saturating_sub(now.duration_since(oldest)))
    }

    /// The Prometheus text of the audit counters.
    pub fn render_prometheus(&self) -> String {
        let mut out = String::from(
            "# HELP logyard_audit_events_total Audit records written, by event.\n\
             # TYPE logyard_audit_events_total counter\n",
        );
        for event in [
            Event::LoginFailed,
            Event::AdminAction,
            Event::ScopeRefused,
            Event::SignIn,
        ] {
            out.push_str(&format!(
                "logyard_audit_events_total{{event=\"{}\"}} {}\n",
                event.name(),
                self.events[event as usize].load(Ordering::Relaxed)
            ));
        }
        out.push_str(&format!(
            "# HELP logyard_auth_throttled_total Requests with a wrong token refused 429 because \
             their address failed too often.\n\
             # TYPE logyard_auth_throttled_total counter\n\
             logyard_auth_throttled_total {}\n",
            self.throttled.load(Ordering::Relaxed)
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_held_after_more_failures_than_allowed() {
        let audit = Audit::new(3);
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        let other: IpAddr = "198.51.100.1".parse().unwrap();
        for _ in 0..3 {
            audit.failed(ip);
            assert_eq!(audit.held(ip), None);
        }
        audit.failed(ip);
        let held = audit.held(ip).expect("held");
        assert!(held > FAILURE_WINDOW - Duration::from_secs(5), "{held:?}");
        assert_eq!(audit.held(other), None);
        assert!(audit
            .render_prometheus()
            .contains("logyard_auth_throttled_total 1"));
    }
}
