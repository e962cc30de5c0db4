//! Who a request is, and what it may do: tokens with roles (`[[auth.tokens]]`).
//!
//! Once any token is configured, every request but `/health` (and `/metrics` with
//! `auth.public_metrics`) must present one, in the form its client can send:
//!
//! - `Authorization: Bearer <token>` (the CLI, curl, OTLP exporters' headers, Prometheus);
//! - HTTP Basic, user = the token's name, password = the token (Promtail, Fluent Bit, Vector,
//!   Filebeat, the Elasticsearch clients, and a browser opening the UI);
//! - `Authorization: ApiKey <base64 of name:token>`, or the token itself, as the
//!   Elasticsearch clients send an API key.
//!
//! With `[server] tls_client_ca`, a client may instead present a TLS client certificate
//! signed by that CA: a request that carries no `Authorization` header on such a connection
//! is the role `ingest`, named after the certificate (its CN, else its first DNS name; see
//! [`crate::ConnectionInfo`]). A request that carries a token is judged by the token alone,
//! so an agent holding both may still read with a `read` token, and a bad token is refused
//! even on a connection with a certificate.
//!
//! Without a valid token a request is answered `401 unauthorized` (with
//! `WWW-Authenticate: Bearer, Basic realm="logyard"`); with a token whose role may not use the
//! endpoint, `403 forbidden`. What each role may use is [`access`], one table for every route,
//! so that a route missing from it is an administrator's alone.
//!
//! Secrets are held as SHA-256 hashes only, compared in constant time, and never logged or
//! echoed: errors name the token, never its secret.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

use crate::error::ApiError;
use crate::AppState;

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
    fn allows(self, need: Role) -> bool {
        self == Role::Admin || self == need
    }
}

/// A configured token: its name, role and the SHA-256 of its secret.
#[derive(Clone)]
pub struct Token {
    /// The name: HTTP Basic's user, and what logs and errors call the token.
    pub name: String,
    /// What it may do.
    pub role: Role,
    sha256: [u8; 32],
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl Token {
    /// A token whose secret has the given SHA-256.
    pub fn from_hash(name: String, role: Role, sha256: [u8; 32]) -> Token {
        Token { name, role, sha256 }
    }

    /// A token whose clear secret is known (read from `token_file` or `token_env`).
    pub fn from_secret(name: String, role: Role, secret: &str) -> Token {
        Token::from_hash(name, role, sha256(secret.as_bytes()))
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
        "a token hash is written `sha256:<64 hex digits>` (`logyard token new` prints one)"
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

/// The configured tokens and what needs one.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    tokens: Vec<Token>,
    /// `/metrics` answers without a token.
    pub public_metrics: bool,
}

/// Who made a request.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The token's name.
    pub name: String,
    /// Its role.
    pub role: Role,
}

impl Auth {
    /// Tokens checked on every request; none means no authentication at all.
    pub fn new(tokens: Vec<Token>, public_metrics: bool) -> Auth {
        Auth {
            tokens,
            public_metrics,
        }
    }

    /// Whether requests must present a token.
    pub fn enabled(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// The token a request presents, if any matches. Every configured hash is compared, in
    /// constant time, whatever matches first.
    pub fn identify(&self, headers: &HeaderMap) -> Option<Identity> {
        let presented = presented(headers)?;
        let hash = sha256(presented.secret.as_bytes());
        let mut found: Option<&Token> = None;
        for token in &self.tokens {
            let same: bool = subtle::ConstantTimeEq::ct_eq(&token.sha256[..], &hash[..]).into();
            let name_ok = presented.name.as_deref().is_none_or(|n| n == token.name);
            if same && name_ok && found.is_none() {
                found = Some(token);
            }
        }
        found.map(|t| Identity {
            name: t.name.clone(),
            role: t.role,
        })
    }
}

/// A secret as a request presents it, with the name Basic and ApiKey carry.
struct Presented {
    name: Option<String>,
    secret: String,
}

fn presented(headers: &HeaderMap) -> Option<Presented> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    let rest = rest.trim();
    let decode = |text: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
    };
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(Presented {
            name: None,
            secret: rest.to_string(),
        });
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let (name, secret) = decode(rest)?
            .split_once(':')
            .map(|(n, s)| (n.to_string(), s.to_string()))?;
        return Some(Presented {
            name: Some(name),
            secret,
        });
    }
    if scheme.eq_ignore_ascii_case("apikey") {
        // Elasticsearch clients send base64("id:api_key"); some send the key itself.
        return Some(
            match decode(rest).and_then(|t| {
                t.split_once(':')
                    .map(|(n, s)| (n.to_string(), s.to_string()))
            }) {
                Some((name, secret)) => Presented {
                    name: Some(name),
                    secret,
                },
                None => Presented {
                    name: None,
                    secret: rest.to_string(),
                },
            },
        );
    }
    None
}

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, with or without a token.
    Open,
    /// Any valid token, whatever its role.
    Anyone,
    /// A token of this role, or an administrator's.
    Role(Role),
}

/// Every route of the router, with the method and what it needs. `/metrics` is listed as
/// needing `read`; `auth.public_metrics` opens it. A route missing here is an
/// administrator's alone ([`access`]).
pub const ROUTES: &[(Method, &str, Access)] = &[
    (Method::GET, "/health", Access::Open),
    (Method::GET, "/metrics", Access::Role(Role::Read)),
    // The UI's page (a browser signs in with Basic) and the Elasticsearch clients' version
    // probe, which ingest tokens send.
    (Method::GET, "/", Access::Anyone),
    (Method::GET, "/ui/{*path}", Access::Role(Role::Read)),
    (Method::POST, "/api/logs", Access::Role(Role::Ingest)),
    (Method::POST, "/_bulk", Access::Role(Role::Ingest)),
    (Method::PUT, "/_bulk", Access::Role(Role::Ingest)),
    (Method::POST, "/{index}/_bulk", Access::Role(Role::Ingest)),
    (Method::PUT, "/{index}/_bulk", Access::Role(Role::Ingest)),
    (
        Method::POST,
        "/loki/api/v1/push",
        Access::Role(Role::Ingest),
    ),
    (Method::POST, "/v1/logs", Access::Role(Role::Ingest)),
    (Method::GET, "/api/logs", Access::Role(Role::Read)),
    (Method::GET, "/api/logs/search", Access::Role(Role::Read)),
    (
        Method::GET,
        "/api/logs/agent/{agent_name}",
        Access::Role(Role::Read),
    ),
    (
        Method::GET,
        "/api/logs/{id}/context",
        Access::Role(Role::Read),
    ),
    (Method::GET, "/api/query", Access::Role(Role::Read)),
    (Method::GET, "/api/agents", Access::Role(Role::Read)),
    (Method::GET, "/api/stats", Access::Role(Role::Read)),
    (Method::GET, "/api/sources", Access::Role(Role::Read)),
    (Method::GET, "/api/histogram", Access::Role(Role::Read)),
    (Method::GET, "/api/errors/summary", Access::Role(Role::Read)),
    (Method::GET, "/api/export", Access::Role(Role::Read)),
    (Method::GET, "/api/tail", Access::Role(Role::Read)),
    (Method::GET, "/api/report", Access::Role(Role::Read)),
    (Method::GET, "/api/analyses/slow", Access::Role(Role::Read)),
    (Method::GET, "/api/analyses/auth", Access::Role(Role::Read)),
    (Method::GET, "/api/analyses/db", Access::Role(Role::Read)),
    (Method::POST, "/api/sql", Access::Role(Role::Read)),
    (Method::GET, "/api/alerts", Access::Role(Role::Read)),
    (Method::GET, "/api/alerts/rules", Access::Role(Role::Read)),
];

/// What a request for `path` (the route's pattern, e.g. `/api/logs/{id}/context`) with
/// `method` needs: its line of [`ROUTES`] (`HEAD` as `GET`), else an administrator.
pub fn access(method: &Method, path: &str, public_metrics: bool) -> Access {
    if path == "/metrics" && public_metrics {
        return Access::Open;
    }
    let method = if *method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    ROUTES
        .iter()
        .find(|(m, p, _)| m == method && *p == path)
        .map_or(Access::Role(Role::Admin), |(_, _, a)| *a)
}

/// The identity of a verified client certificate on the request's connection: the role
/// `ingest`, named after the certificate.
fn certified(req: &Request) -> Option<Identity> {
    let name = req
        .extensions()
        .get::<crate::ConnectionInfo>()?
        .client_cert
        .clone()?;
    Some(Identity {
        name,
        role: Role::Ingest,
    })
}

/// The middleware: answers 401 or 403 before the handler runs, or lets the request through
/// with its [`Identity`] in the request's extensions.
pub async fn check(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let auth = &state.auth;
    if !auth.enabled() {
        return next.run(req).await;
    }
    // An unknown path (the fallback) has no pattern: it needs a token, so that nobody learns
    // which paths exist without one.
    let need = match req.extensions().get::<MatchedPath>() {
        Some(p) => access(req.method(), p.as_str(), auth.public_metrics),
        None => Access::Anyone,
    };
    if need == Access::Open {
        return next.run(req).await;
    }
    let by_token = req.headers().contains_key(header::AUTHORIZATION);
    let identity = if by_token {
        auth.identify(req.headers())
    } else {
        certified(&req)
    };
    let Some(identity) = identity else {
        let why = if req.headers().contains_key(header::AUTHORIZATION) {
            "the token presented is not valid: check it, or ask for a new one (`logyard token new`)"
        } else {
            "this endpoint needs a token: send `Authorization: Bearer <token>` (or HTTP Basic \
             with the token's name as user and the token as password)"
        };
        state.metrics.auth_failed();
        tracing::info!(path = %req.uri().path(), "request without a valid token refused");
        let mut response =
            ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", why).into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer, Basic realm=\"logyard\""),
        );
        return response;
    };
    if let Access::Role(role) = need {
        if !identity.role.allows(role) {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "the {} `{}` has the role `{}`; {} {} needs a token of the role `{}`",
                    if by_token {
                        "token"
                    } else {
                        "client certificate"
                    },
                    identity.name,
                    identity.role.name(),
                    req.method(),
                    req.uri().path(),
                    role.name()
                ),
            )
            .into_response();
        }
    }
    req.extensions_mut().insert(identity);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    #[test]
    fn tokens_are_found_in_every_form_a_client_sends() {
        let auth = Auth::new(
            vec![
                Token::from_secret("shipper".into(), Role::Ingest, "s3cret-ingest"),
                Token::from_hash(
                    "team".into(),
                    Role::Read,
                    parse_hash(&format_hash(&sha256(b"s3cret-read"))).unwrap(),
                ),
            ],
            false,
        );
        let who = |h: &HeaderMap| auth.identify(h).map(|i| (i.name, i.role));
        let shipper = Some(("shipper".to_string(), Role::Ingest));
        let team = Some(("team".to_string(), Role::Read));
        assert_eq!(who(&headers("Bearer s3cret-ingest")), shipper);
        assert_eq!(who(&headers("bearer  s3cret-read")), team);
        assert_eq!(
            who(&headers(&format!("Basic {}", b64("shipper:s3cret-ingest")))),
            shipper
        );
        assert_eq!(
            who(&headers(&format!("ApiKey {}", b64("team:s3cret-read")))),
            team
        );
        assert_eq!(who(&headers("ApiKey s3cret-read")), team);
        // A right secret under another token's name, a wrong secret, no header.
        assert_eq!(
            who(&headers(&format!("Basic {}", b64("team:s3cret-ingest")))),
            None
        );
        assert_eq!(who(&headers("Bearer s3cret")), None);
        assert_eq!(who(&HeaderMap::new()), None);
        assert_eq!(who(&headers("Digest abc")), None);
    }

    #[test]
    fn hashes_are_checked_and_round_trip() {
        let h = sha256(b"x");
        assert_eq!(parse_hash(&format_hash(&h)).unwrap(), h);
        assert!(parse_hash("md5:abc").is_err());
        assert!(parse_hash("sha256:abc").is_err());
        assert!(parse_hash(&format!("sha256:{}", "g".repeat(64))).is_err());
        let a = new_secret();
        assert!(a.starts_with("ly_") && a.len() == 46, "{a}");
        assert_ne!(a, new_secret());
    }

    #[test]
    fn routes_need_their_role_and_unknown_ones_an_administrator() {
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(access(&get, "/health", false), Access::Open);
        assert_eq!(access(&get, "/metrics", true), Access::Open);
        assert_eq!(access(&get, "/metrics", false), Access::Role(Role::Read));
        assert_eq!(
            access(&post, "/api/logs", false),
            Access::Role(Role::Ingest)
        );
        assert_eq!(access(&get, "/api/logs", false), Access::Role(Role::Read));
        assert_eq!(access(&post, "/api/sql", false), Access::Role(Role::Read));
        assert_eq!(
            access(&Method::DELETE, "/api/logs", false),
            Access::Role(Role::Admin)
        );
        assert_eq!(
            access(&get, "/api/something-new", false),
            Access::Role(Role::Admin)
        );
        assert!(Role::Admin.allows(Role::Ingest) && Role::Admin.allows(Role::Read));
        assert!(!Role::Read.allows(Role::Ingest) && !Role::Ingest.allows(Role::Read));
    }
}
