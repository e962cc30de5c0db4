//! Browsers are clients too: what keeps a web page open on the same machine (or network)
//! from reading the logs or writing into the store.
//!
//! - **`Host`** (DNS rebinding): a request whose `Host` is not a name of this server is
//!   answered `421 bad_host`. A loopback listen knows its names (`localhost`, `127.0.0.1`,
//!   `[::1]` and the listen address, with or without the port); a specific address knows
//!   itself; `[server] allowed_hosts` adds names (a reverse proxy's public name). A wildcard
//!   listen (`0.0.0.0`, `::`) cannot know its names: without `allowed_hosts` it accepts any,
//!   with it only those, the loopback names and IP literals. A request without `Host` (not a
//!   browser) passes, and `/health` answers any `Host` (load balancers probe by address).
//! - **Cross-origin writes**: a request other than `GET`, `HEAD` or `OPTIONS` whose `Origin`
//!   is not the server's own (scheme `http` or `https`, the accepted `Host`) nor one of
//!   `[server] allowed_origins`, or that says `Sec-Fetch-Site: cross-site` or `same-site`
//!   without such an origin, is answered `403 cross_origin`. Shippers send no `Origin`.
//! - **Cross-site reads**: a `GET` of `/api/*` or `/metrics` that a page of another site
//!   makes (`Sec-Fetch-Site: cross-site` or `same-site`) is `403 cross_origin`, unless it is a
//!   top-level navigation (a followed link, whose answer only the user sees). No answer
//!   carries `Access-Control-Allow-Origin`, so no other origin can read one anyway.
//! - **Security headers** on every answer: a `Content-Security-Policy` without inline script
//!   or style and with `frame-ancestors 'none'`, `X-Frame-Options: DENY`,
//!   `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`. An answer that sets
//!   its own policy (the HTML report's inline style) keeps it.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::AppState;

/// The policy of every answer: scripts, styles and requests from this origin only, no
/// plugins, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Which `Host` names and `Origin`s the server answers (`[server] listen`, `allowed_hosts`,
/// `allowed_origins`).
#[derive(Debug, Clone)]
pub struct Guard {
    listen: SocketAddr,
    allowed_hosts: Vec<(String, Option<u16>)>,
    allowed_origins: Vec<String>,
}

impl Default for Guard {
    fn default() -> Guard {
        Guard::new(
            SocketAddr::from(([127, 0, 0, 1], 8062)),
            Vec::new(),
            Vec::new(),
        )
    }
}

impl Guard {
    /// The guard of a server bound to `listen` (the bound address: its real port), with the
    /// extra names (`name` or `name:port`) and origins (`https://name[:port]`).
    pub fn new(
        listen: SocketAddr,
        allowed_hosts: Vec<String>,
        allowed_origins: Vec<String>,
    ) -> Guard {
        Guard {
            listen,
            allowed_hosts: allowed_hosts.iter().filter_map(|h| split_host(h)).collect(),
            allowed_origins: allowed_origins
                .iter()
                .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    /// Whether `host` (a `Host` header's value) names this server.
    pub fn host_allowed(&self, host: &str) -> bool {
        let Some((name, port)) = split_host(host) else {
            return false;
        };
        let port_ok = port.is_none_or(|p| p == self.listen.port());
        let listen_ip = self.listen.ip();
        let ip: Option<IpAddr> = name.trim_matches(['[', ']']).parse().ok();
        let loopback_name = name == "localhost" || ip.is_some_and(|i| i.is_loopback());
        if self
            .allowed_hosts
            .iter()
            .any(|(n, p)| *n == name && p.is_none_or(|p| Some(p) == port))
        {
            return true;
        }
        if listen_ip.is_unspecified() {
            // Any address of the host may be the one dialled; names are known only when
            // configured.
            return port_ok && (self.allowed_hosts.is_empty() || loopback_name || ip.is_some());
        }
        if listen_ip.is_loopback() {
            return port_ok && (loopback_name || ip == Some(listen_ip));
        }
        port_ok && ip == Some(listen_ip)
    }

    /// Whether `origin` (an `Origin` header's value) is the server's own, given the `Host`
    /// the request was accepted under, or a configured one.
    pub fn origin_allowed(&self, origin: &str, host: Option<&str>) -> bool {
        let origin = origin.trim().to_ascii_lowercase();
        if self.allowed_origins.contains(&origin) {
            return true;
        }
        let Some((scheme, rest)) = origin.split_once("://") else {
            return false;
        };
        let default_port = match scheme {
            "http" => 80,
            "https" => 443,
            _ => return false,
        };
        let (Some((o_name, o_port)), Some((h_name, h_port))) =
            (split_host(rest), host.and_then(split_host))
        else {
            return false;
        };
        o_name == h_name && o_port.unwrap_or(default_port) == h_port.unwrap_or(default_port)
    }
}

/// `name[:port]` or `[v6][:port]`, lower-case, without a trailing dot; `None` when malformed.
fn split_host(text: &str) -> Option<(String, Option<u16>)> {
    let text = text.trim().to_ascii_lowercase();
    let (name, port) = if text.starts_with('[') {
        let end = text.find(']')?;
        let port = match &text[end + 1..] {
            "" => None,
            p => Some(p.strip_prefix(':')?.parse().ok()?),
        };
        (text[..=end].to_string(), port)
    } else {
        match text.rsplit_once(':') {
            Some((n, p)) if !n.contains(':') => (n.to_string(), Some(p.parse().ok()?)),
            Some(_) => (format!("[{text}]"), None),
            None => (text.clone(), None),
        }
    };
    let name = name.trim_end_matches('.').to_string();
    if name.is_empty()
        || !name.bytes().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b'[' | b']' | b':')
        })
    {
        return None;
    }
    Some((name, port))
}

fn refuse(status: StatusCode, code: &'static str, message: String) -> Response {
    ApiError::new(status, code, message).into_response()
}

/// What a request's headers say that the guard reads.
fn text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Checks a request against the guard, or answers it; returns the answer with the security
/// headers.
fn check(guard: &Guard, req: &Request) -> Option<Response> {
    let path = req.uri().path();
    let headers = req.headers();
    if path == "/health" {
        return None;
    }
    let host = match headers.get(header::HOST) {
        Some(v) => Some(v.to_str().unwrap_or("\u{fffd}")),
        None => req.uri().authority().map(|a| a.as_str()),
    };
    if let Some(host) = host {
        if !guard.host_allowed(host) {
            let shown: String = host.chars().take(100).collect();
            return Some(refuse(
                StatusCode::MISDIRECTED_REQUEST,
                "bad_host",
                format!(
                    "`{shown}` is not a name of this server (it listens on {}): open it by that \
                     address, or add the name to [server] allowed_hosts in logyard.toml",
                    guard.listen
                ),
            ));
        }
    }
    let origin = text(headers, "origin");
    let origin_ok = origin.map(|o| guard.origin_allowed(o, host));
    let site = text(headers, "sec-fetch-site").map(str::to_ascii_lowercase);
    let foreign_site = matches!(site.as_deref(), Some("cross-site" | "same-site"));
    let method = req.method();
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    let cross = refuse_cross_origin(origin);
    if !safe {
        if origin_ok == Some(false) || (foreign_site && origin_ok != Some(true)) {
            return Some(cross);
        }
        return None;
    }
    let api = path.starts_with("/api/") || path == "/metrics";
    let navigation = text(headers, "sec-fetch-mode") == Some("navigate")
        && !matches!(text(headers, "sec-fetch-dest"), Some("object" | "embed"));
    if api && foreign_site && origin_ok != Some(true) && !navigation {
        return Some(cross);
    }
    None
}

fn refuse_cross_origin(origin: Option<&str>) -> Response {
    let from = origin.map_or("another site".to_string(), |o| {
        format!("`{}`", o.chars().take(100).collect::<String>())
    });
    refuse(
        StatusCode::FORBIDDEN,
        "cross_origin",
        format!(
            "a page of {from} may not use this endpoint: only the server's own pages and \
             clients without an Origin (shippers, curl, the CLI) may; to allow a site, add its \
             origin to [server] allowed_origins in logyard.toml"
        ),
    )
}

/// Adds the security headers to an answer, keeping a policy the handler set.
fn secure(mut response: Response) -> Response {
    let h = response.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.remove(header::ACCESS_CONTROL_ALLOW_ORIGIN);
    response
}

/// The middleware: refuses a foreign `Host` and cross-origin requests before anything else
/// runs, and adds the security headers to every answer.
pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(refused) = check(&state.guard, &req) {
        tracing::info!(path = %req.uri().path(), "a browser's cross-origin or foreign-Host request refused");
        return secure(refused);
    }
    secure(next.run(req).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(listen: &str, hosts: &[&str]) -> Guard {
        Guard::new(
            listen.parse().unwrap(),
            hosts.iter().map(|h| h.to_string()).collect(),
            vec!["https://dash.example.com".into()],
        )
    }

    #[test]
    fn hosts_of_each_kind_of_listen() {
        let g = guard("127.0.0.1:8062", &[]);
        for ok in [
            "localhost",
            "LOCALHOST:8062",
            "127.0.0.1:8062",
            "[::1]",
            "[::1]:8062",
            "localhost.",
        ] {
            assert!(g.host_allowed(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8062",
            "localhost:9999",
            "10.0.0.1",
            "",
            "a b",
        ] {
            assert!(!g.host_allowed(bad), "{bad}");
        }
        let g = guard("10.0.0.5:8062", &["logs.example.com"]);
        assert!(g.host_allowed("10.0.0.5:8062") && g.host_allowed("logs.example.com"));
        assert!(g.host_allowed("Logs.Example.Com:443"), "a proxy's port");
        assert!(!g.host_allowed("localhost") && !g.host_allowed("10.0.0.6"));
        let g = guard("0.0.0.0:8062", &[]);
        assert!(g.host_allowed("anything.example") && g.host_allowed("10.1.2.3:8062"));
        let g = guard("[::]:8062", &["logs.example.com:8443"]);
        assert!(g.host_allowed("logs.example.com:8443") && g.host_allowed("192.168.1.4"));
        assert!(!g.host_allowed("logs.example.com:1") && !g.host_allowed("evil.example"));
    }

    #[test]
    fn origins_are_the_hosts_own_or_configured() {
        let g = guard("127.0.0.1:8062", &[]);
        let host = Some("127.0.0.1:8062");
        assert!(g.origin_allowed("http://127.0.0.1:8062", host));
        assert!(g.origin_allowed("https://dash.example.com", host));
        assert!(g.origin_allowed("https://logs.example.com", Some("logs.example.com")));
        assert!(!g.origin_allowed("http://127.0.0.1:3000", host));
        assert!(!g.origin_allowed("http://evil.example", host));
        assert!(!g.origin_allowed("null", host));
        assert!(!g.origin_allowed("http://127.0.0.1:8062", None));
    }
}
