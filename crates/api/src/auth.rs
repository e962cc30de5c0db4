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
//! A `read` token may carry a [`Scope`]: a filter of the query language ANDed into every read
//! it makes ([`ReadScope`], which the read handlers take), and refused on the answers that
//! cover every agent at once (`/metrics`, alerts, sources: [`Access::Whole`]). An `ingest`
//! token may carry [`Labels`] that overwrite those of every entry it sends ([`Ingester`]),
//! so that a compromised agent cannot write as another.
//!
//! Secrets are held as SHA-256 hashes only, compared in constant time, and never logged or
//! echoed: errors name the token, never its secret.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use logyard_model::Record;
use logyard_query::Filter;

use crate::audit::{Audit, Event, Subject};
use crate::error::ApiError;
pub use crate::identity::{
    format_hash, new_secret, parse_hash, sha256, Identity, Labels, Role, Scope,
};
use crate::quota::{Quota, QuotaConfig, Refusal};
use crate::session::{Sessions, CSRF_HEADER};
use crate::AppState;

/// How a token's secret is checked.
#[derive(Debug)]
enum Secret {
    /// Its SHA-256, compared in constant time.
    Sha256([u8; 32]),
    /// An Argon2 hash in the PHC string format; once a secret verifies, its SHA-256 is kept
    /// so that later requests cost a comparison, not a derivation.
    Argon2 {
        phc: String,
        verified: std::sync::Mutex<Option<[u8; 32]>>,
    },
}

impl Secret {
    /// The SHA-256 a presented secret is compared with, when known.
    fn digest(&self) -> Option<[u8; 32]> {
        match self {
            Secret::Sha256(h) => Some(*h),
            Secret::Argon2 { verified, .. } => *verified.lock().expect("argon2 lock"),
        }
    }
}

/// A configured token: its name, role, how its secret is checked, and what narrows it.
#[derive(Clone)]
pub struct Token {
    /// The name: HTTP Basic's user, and what logs and errors call the token.
    pub name: String,
    /// What it may do.
    pub role: Role,
    secret: Arc<Secret>,
    scope: Option<Arc<Scope>>,
    labels: Arc<Labels>,
    quota: Arc<Quota>,
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
        Token::with_secret(name, role, Secret::Sha256(sha256))
    }

    /// A token whose secret has the given Argon2 hash (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`).
    pub fn from_argon2(name: String, role: Role, phc: &str) -> Result<Token, String> {
        let parsed = argon2::PasswordHash::new(phc)
            .map_err(|e| format!("the argon2 hash does not parse ({e}): write it in the PHC form `$argon2id$v=19$m=…,t=…,p=…$<salt>$<hash>`"))?;
        if parsed.hash.is_none() || parsed.salt.is_none() {
            return Err(
                "the argon2 hash has no salt or no hash: write it in the PHC form `$argon2id$v=19$m=…,t=…,p=…$<salt>$<hash>`"
                    .into(),
            );
        }
        if !parsed.algorithm.as_str().starts_with("argon2") {
            return Err(format!(
                "`{}` is not an argon2 hash; use argon2id, or `sha256:`",
                parsed.algorithm
            ));
        }
        Ok(Token::with_secret(
            name,
            role,
            Secret::Argon2 {
                phc: phc.to_string(),
                verified: std::sync::Mutex::new(None),
            },
        ))
    }

    fn with_secret(name: String, role: Role, secret: Secret) -> Token {
        Token {
            name,
            role,
            secret: Arc::new(secret),
            scope: None,
            labels: Arc::default(),
            quota: Arc::default(),
        }
    }

    /// A token whose clear secret is known (read from `token_file` or `token_env`).
    pub fn from_secret(name: String, role: Role, secret: &str) -> Token {
        Token::from_hash(name, role, sha256(secret.as_bytes()))
    }

    /// Narrows every read of the token to a scope (a `read` token's).
    pub fn with_scope(mut self, scope: Scope) -> Token {
        self.scope = Some(Arc::new(scope));
        self
    }

    /// Limits the token's rates and concurrent queries.
    pub fn with_quota(mut self, quota: QuotaConfig) -> Token {
        self.quota = Arc::new(Quota::new(quota));
        self
    }

    /// Fixes labels of every entry the token sends (an `ingest` token's).
    pub fn with_labels(mut self, labels: Labels) -> Token {
        self.labels = Arc::new(labels);
        self
    }
}

/// The configured tokens, what needs one, and the audit of their use.
#[derive(Debug)]
pub struct Auth {
    tokens: Vec<Token>,
    /// `/metrics` answers without a token.
    pub public_metrics: bool,
    /// Audit records, and the brake on addresses that fail too often.
    pub audit: Arc<Audit>,
    /// The UI's signed-in browsers.
    pub sessions: Arc<Sessions>,
}

impl Default for Auth {
    fn default() -> Auth {
        Auth::new(Vec::new(), false)
    }
}

/// Failed logins an address may make within [`crate::audit::FAILURE_WINDOW`] before it is
/// held: the default of `report.suspicious_failures`.
pub const DEFAULT_MAX_FAILURES: u64 = 5;

/// How long a sign-in of the UI lasts: the default of `auth.session_ttl`.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

impl Auth {
    /// Tokens checked on every request; none means no authentication at all.
    pub fn new(tokens: Vec<Token>, public_metrics: bool) -> Auth {
        Auth {
            tokens,
            public_metrics,
            audit: Arc::new(Audit::new(DEFAULT_MAX_FAILURES)),
            sessions: Arc::new(Sessions::new(DEFAULT_SESSION_TTL)),
        }
    }

    /// Keeps the signed-in sessions and the audit's counters of `running` (a reload): a
    /// session lasts while its token is still configured, and an address held for its
    /// failures stays held. `session_ttl` and `suspicious_failures` are those of the start.
    pub fn carry_over(mut self, running: &Auth) -> Auth {
        self.audit = running.audit.clone();
        self.sessions = running.sessions.clone();
        self
    }

    /// Ends the UI's sessions `ttl` after their sign-in (`auth.session_ttl`).
    pub fn with_session_ttl(mut self, ttl: Duration) -> Auth {
        self.sessions = Arc::new(Sessions::new(ttl));
        self
    }

    /// Holds an address after more than `n` failed logins within the audit's window
    /// (`report.suspicious_failures`, the auth analysis's rule).
    pub fn with_max_failures(mut self, n: u64) -> Auth {
        self.audit = Arc::new(Audit::new(n));
        self
    }

    /// Whether requests must present a token.
    pub fn enabled(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// The token a request presents, if any matches. Every configured hash is compared, in
    /// constant time, whatever matches first.
    pub fn identify(&self, headers: &HeaderMap) -> Option<Identity> {
        let presented = presented(headers)?;
        self.find(&presented.secret, presented.name.as_deref())
    }

    /// The token whose secret this is (the UI's sign-in).
    pub fn identify_secret(&self, secret: &str) -> Option<Identity> {
        self.find(secret, None)
    }

    /// The identity of the token of this name (a session's), if it is still configured.
    pub fn identity_named(&self, name: &str) -> Option<Identity> {
        self.tokens
            .iter()
            .find(|t| t.name == name)
            .map(Token::identity)
    }

    fn find(&self, secret: &str, name: Option<&str>) -> Option<Identity> {
        let hash = sha256(secret.as_bytes());
        let mut found: Option<&Token> = None;
        for token in &self.tokens {
            let Some(digest) = token.secret.digest() else {
                continue;
            };
            let same: bool = subtle::ConstantTimeEq::ct_eq(&digest[..], &hash[..]).into();
            let name_ok = name.is_none_or(|n| n == token.name);
            if same && name_ok && found.is_none() {
                found = Some(token);
            }
        }
        found.map(Token::identity)
    }

    /// [`Auth::identify`], then the Argon2 tokens no secret has verified yet, derived on a
    /// blocking thread (each costs milliseconds by design). Once a token's secret verifies,
    /// it is found by [`Auth::identify`] alone.
    pub async fn identify_slow(self: Arc<Self>, headers: &HeaderMap) -> Option<Identity> {
        if let Some(identity) = self.identify(headers) {
            return Some(identity);
        }
        let presented = presented(headers)?;
        self.verify_argon2(presented.secret, presented.name).await
    }

    /// [`Auth::identify_secret`], then the Argon2 tokens not verified yet.
    pub async fn identify_secret_slow(self: Arc<Self>, secret: &str) -> Option<Identity> {
        if let Some(identity) = self.identify_secret(secret) {
            return Some(identity);
        }
        self.verify_argon2(secret.to_string(), None).await
    }

    async fn verify_argon2(
        self: Arc<Self>,
        secret: String,
        name: Option<String>,
    ) -> Option<Identity> {
        let unverified = self
            .tokens
            .iter()
            .any(|t| matches!(&*t.secret, Secret::Argon2 { .. }) && t.secret.digest().is_none());
        if !unverified {
            return None;
        }
        tokio::task::spawn_blocking(move || {
            use argon2::PasswordVerifier as _;
            for token in &self.tokens {
                let Secret::Argon2 { phc, verified } = &*token.secret else {
                    continue;
                };
                if name.as_deref().is_some_and(|n| n != token.name)
                    || verified.lock().expect("argon2 lock").is_some()
                {
                    continue;
                }
                let Ok(parsed) = argon2::PasswordHash::new(phc) else {
                    continue;
                };
                if argon2::Argon2::default()
                    .verify_password(secret.as_bytes(), &parsed)
                    .is_ok()
                {
                    *verified.lock().expect("argon2 lock") = Some(sha256(secret.as_bytes()));
                    return Some(token.identity());
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
    }
}

/// An Argon2id hash of a secret in the PHC string format, with a random salt and the
/// `argon2` crate's default cost (19 MiB, 2 passes).
pub fn argon2_hash(secret: &str) -> String {
    use argon2::PasswordHasher as _;
    use ring::rand::SecureRandom as _;
    let mut salt = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut salt)
        .expect("the system's random source works");
    let salt = argon2::password_hash::SaltString::encode_b64(&salt).expect("16 bytes of salt");
    argon2::Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .expect("argon2 hashes any secret with the default parameters")
        .to_string()
}

impl Token {
    fn identity(&self) -> Identity {
        Identity {
            name: self.name.clone(),
            role: self.role,
            scope: self.scope.clone(),
            labels: self.labels.clone(),
            quota: self.quota.clone(),
        }
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
    /// A token of this role (or an administrator's) without a scope: the answer covers every
    /// agent at once, so a scoped token could read past its scope there.
    Whole(Role),
}

/// Every route of the router, with the method and what it needs. `/metrics` is listed as
/// needing `read`; `auth.public_metrics` opens it. A route missing here is an
/// administrator's alone ([`access`]).
pub const ROUTES: &[(Method, &str, Access)] = &[
    (Method::GET, "/health", Access::Open),
    (Method::GET, "/metrics", Access::Whole(Role::Read)),
    // The UI's page (a browser signs in with Basic) and the Elasticsearch clients' version
    // probe, which ingest tokens send.
    (Method::GET, "/", Access::Open),
    (Method::GET, "/ui/{*path}", Access::Open),
    (Method::POST, "/api/session", Access::Open),
    (Method::GET, "/api/session", Access::Anyone),
    (Method::DELETE, "/api/session", Access::Anyone),
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
    (Method::GET, "/api/sources", Access::Whole(Role::Read)),
    (Method::GET, "/api/histogram", Access::Role(Role::Read)),
    (Method::GET, "/api/errors/summary", Access::Role(Role::Read)),
    (Method::GET, "/api/export", Access::Role(Role::Read)),
    (Method::GET, "/api/tail", Access::Role(Role::Read)),
    (Method::GET, "/api/report", Access::Role(Role::Read)),
    (Method::GET, "/api/analyses/slow", Access::Role(Role::Read)),
    (Method::GET, "/api/analyses/auth", Access::Role(Role::Read)),
    (Method::GET, "/api/analyses/db", Access::Role(Role::Read)),
    (Method::POST, "/api/sql", Access::Role(Role::Read)),
    (Method::GET, "/api/alerts", Access::Whole(Role::Read)),
    (Method::GET, "/api/alerts/rules", Access::Whole(Role::Read)),
    // Each token's own list: nothing another token saved is read or changed.
    (Method::GET, "/api/saved-queries", Access::Role(Role::Read)),
    (
        Method::PUT,
        "/api/saved-queries/{name}",
        Access::Role(Role::Read),
    ),
    (
        Method::DELETE,
        "/api/saved-queries/{name}",
        Access::Role(Role::Read),
    ),
    // Changes what the alerting sends: an administrator's alone, and audited.
    (
        Method::POST,
        "/api/alerts/rules/{name}/silence",
        Access::Role(Role::Admin),
    ),
    (Method::POST, "/api/admin/reload", Access::Role(Role::Admin)),
    // Writes files on the server's host: an administrator's alone, and audited.
    (Method::POST, "/api/admin/backup", Access::Role(Role::Admin)),
    // Names the bucket and the data directory: an administrator's.
    (Method::GET, "/api/storage", Access::Role(Role::Admin)),
    (Method::GET, "/api/nodes", Access::Role(Role::Admin)),
    // Every entry not in the bucket yet: a token that reads every agent (the query nodes');
    // not audited, as a query node asks every second.
    (Method::GET, "/api/node/recent", Access::Whole(Role::Read)),
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
        scope: None,
        labels: Arc::default(),
        quota: Arc::default(),
    })
}

/// The middleware: answers 401, 403 or 429 before the handler runs, or lets the request
/// through with its [`Identity`] in the request's extensions (holding a query slot of the
/// token while the handler runs), writing the audit records of [`crate::audit`].
pub async fn check(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let auth = &state.auth;
    if !auth.enabled() {
        return next.run(req).await;
    }
    // An unknown path (the fallback) has no pattern: it needs a token, so that nobody learns
    // which paths exist without one.
    let pattern = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let need = match &pattern {
        Some(p) => access(req.method(), p, auth.public_metrics),
        None => Access::Anyone,
    };
    if need == Access::Open {
        return next.run(req).await;
    }
    let ip = req
        .extensions()
        .get::<crate::ConnectionInfo>()
        .map(|c| c.peer.ip());
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let by_token = req.headers().contains_key(header::AUTHORIZATION);
    let identity = match state.auth.clone().identify_slow(req.headers()).await {
        Some(identity) => identity,
        None if !by_token => {
            match session_identity(auth, req.headers(), req.method())
                .or_else(|| certified(&req).map(Ok))
            {
                Some(Ok(identity)) => identity,
                Some(Err(refused)) => return refused,
                None => return refuse_unidentified(&state, req.headers(), ip, &method, &path),
            }
        }
        None => return refuse_unidentified(&state, req.headers(), ip, &method, &path),
    };
    let who = Subject {
        ip,
        token: Some(&identity.name),
        method: &method,
        path: &path,
    };
    if let Access::Role(role) | Access::Whole(role) = need {
        if !identity.role.allows(role) {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "the {} `{}` has the role `{}`; {method} {path} needs a token of the role `{}`",
                    if by_token || identity.role != Role::Ingest {
                        "token"
                    } else {
                        "client certificate"
                    },
                    identity.name,
                    identity.role.name(),
                    role.name()
                ),
            )
            .into_response();
        }
    }
    if let (Access::Whole(_), Some(scope)) = (need, &identity.scope) {
        auth.audit.record(&state.store, Event::ScopeRefused, &who);
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "the token `{}` reads only `{}`, and {method} {path} answers for every agent: ask \
                 for a token without a scope",
                identity.name, scope.text,
            ),
        )
        .into_response();
    }
    if need == Access::Role(Role::Admin) && pattern.is_some() {
        auth.audit.record(&state.store, Event::AdminAction, &who);
    }
    if need == Access::Role(Role::Ingest) {
        if let Err(refusal) = identity.quota.admit_ingest() {
            state.metrics.token_limited();
            return limited(&identity.name, &refusal);
        }
    }
    let _query_slot = if matches!(need, Access::Role(Role::Read) | Access::Whole(Role::Read))
        && path.starts_with("/api/")
        && path != "/api/tail"
    {
        match identity.quota.start_query() {
            Ok(slot) => slot,
            Err(refusal) => {
                state.metrics.token_limited();
                return limited(&identity.name, &refusal);
            }
        }
    } else {
        None
    };
    req.extensions_mut().insert(identity);
    next.run(req).await
}

/// The identity of a request's session cookie, if it has an open one whose token is still
/// configured; a state-changing request without the session's CSRF token is refused.
fn session_identity(
    auth: &Auth,
    headers: &HeaderMap,
    method: &Method,
) -> Option<Result<Identity, Response>> {
    let found = auth.sessions.find(headers)?;
    let identity = auth.identity_named(&found.token)?;
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    let csrf_ok = headers
        .get(CSRF_HEADER)
        .is_some_and(|v| subtle::ConstantTimeEq::ct_eq(v.as_bytes(), found.csrf.as_bytes()).into());
    if !safe && !csrf_ok {
        return Some(Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "a request signed in by the session cookie that changes something must carry the \
             session's X-CSRF-Token (GET /api/session gives it)",
        )
        .into_response()));
    }
    Some(Ok(identity))
}

/// The answer to a request without a valid token: `401`, or `429` while its address is held
/// for failing too often; a token presented and wrong is audited as a failed login.
fn refuse_unidentified(
    state: &AppState,
    headers: &HeaderMap,
    ip: Option<IpAddr>,
    method: &str,
    path: &str,
) -> Response {
    let auth = &state.auth;
    state.metrics.auth_failed();
    let presented = presented(headers);
    if presented.is_some() {
        if let Some(wait) = ip.and_then(|ip| auth.audit.held(ip)) {
            let mut response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_failures",
                "this address presented wrong tokens too often: wait, then send a valid token",
            )
            .into_response();
            retry_after(&mut response, wait);
            return response;
        }
        if let Some(ip) = ip {
            auth.audit.failed(ip);
        }
        let name = presented.as_ref().and_then(|p| p.name.as_deref());
        auth.audit.record(
            &state.store,
            Event::LoginFailed,
            &Subject {
                ip,
                token: name,
                method,
                path,
            },
        );
    }
    let why = if presented.is_some() {
        "the token presented is not valid: check it, or ask for a new one (`logyard token new`)"
    } else {
        "this endpoint needs a token: send `Authorization: Bearer <token>` (or HTTP Basic \
         with the token's name as user and the token as password)"
    };
    tracing::info!(path, "request without a valid token refused");
    let mut response = ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", why).into_response();
    // A script's fetch in a browser (the UI, which signs in with its own form) gets no Basic
    // challenge, which would open the browser's password dialog over the page.
    let scripted = headers
        .get("sec-fetch-mode")
        .is_some_and(|m| m.as_bytes() != b"navigate");
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(if scripted {
            "Bearer realm=\"logyard\""
        } else {
            "Bearer, Basic realm=\"logyard\""
        }),
    );
    response
}

/// The `429` of a token over one of its limits.
fn limited(token: &str, refusal: &Refusal) -> Response {
    match refusal {
        Refusal::Rate {
            retry_after: wait,
            setting,
        } => {
            let mut response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "the token `{token}` sent more than its {setting}: retry after {:.1} s",
                    wait.as_secs_f64()
                ),
            )
            .into_response();
            retry_after(&mut response, *wait);
            response
        }
        Refusal::Queries(n) => {
            let mut response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_queries",
                format!(
                    "the token `{token}` runs {n} queries already (its max_concurrent_queries): \
                     retry when one ends"
                ),
            )
            .into_response();
            retry_after(&mut response, Duration::from_secs(1));
            response
        }
    }
}

/// Sets `Retry-After` in whole seconds, rounded up.
fn retry_after(response: &mut Response, wait: Duration) {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
}

/// The scope of the request's token: what every read handler ANDs into its filter. Without
/// a token, or with one that has no scope, every entry.
#[derive(Debug, Clone, Default)]
pub struct ReadScope(Option<Arc<Scope>>);

impl ReadScope {
    /// A scope of a filter (for the CLI and tests); `Filter::All` is no scope.
    pub fn of(scope: Option<Scope>) -> ReadScope {
        ReadScope(scope.map(Arc::new))
    }

    /// The filter every read is narrowed to (`Filter::All` without a scope).
    pub fn filter(&self) -> Filter {
        self.0.as_ref().map_or(Filter::All, |s| s.filter.clone())
    }

    /// A filter narrowed to the scope.
    pub fn narrow(&self, filter: Filter) -> Filter {
        match &self.0 {
            None => filter,
            Some(scope) => Filter::and(vec![filter, scope.filter.clone()]),
        }
    }

    /// Whether reads are narrowed.
    pub fn is_scoped(&self) -> bool {
        self.0.is_some()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ReadScope {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ReadScope(
            parts
                .extensions
                .get::<Identity>()
                .and_then(|i| i.scope.clone()),
        ))
    }
}

/// What the request's token fixes and limits on ingest: its labels, written over every
/// entry, and its rates, charged with what the request brought (nothing without a token).
#[derive(Debug, Clone, Default)]
pub struct Ingester {
    labels: Arc<Labels>,
    quota: Arc<Quota>,
}

impl Ingester {
    /// Writes the fixed labels over every record, and counts the records and `wire_bytes`
    /// against the token's rates (the next request waits when they are over).
    pub fn admit(&self, records: &mut [Record], wire_bytes: u64) {
        if !self.labels.is_empty() {
            records.iter_mut().for_each(|r| self.labels.apply(r));
        }
        self.quota.charge_ingest(records.len() as u64, wire_bytes);
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Ingester {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Identity>()
            .map(|i| Ingester {
                labels: i.labels.clone(),
                quota: i.quota.clone(),
            })
            .unwrap_or_default())
    }
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
        assert_eq!(access(&get, "/metrics", false), Access::Whole(Role::Read));
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
