//! Browser sessions: the web UI signs in with a token once and then presents a cookie.
//!
//! `POST /api/session` with `{"token": "…"}` (or a form field `token`) checks the token like
//! any request, and answers who it is with a session cookie: `HttpOnly`, `SameSite=Strict`,
//! `Path=/`, expiring after `auth.session_ttl`, `Secure` when the request came over TLS. The
//! answer also carries a CSRF token, which every state-changing request made with the cookie
//! must send back as `X-CSRF-Token` (a cross-site page can neither read it nor, under
//! `SameSite=Strict`, send the cookie). `GET /api/session` answers who the cookie (or token)
//! is, for the UI to hide what the role cannot do; `DELETE /api/session` signs out.
//!
//! A session names its token and is resolved to that token at every request, so removing the
//! token from the configuration ends its sessions. The server keeps only the SHA-256 of each
//! session id, in memory: a restart signs everyone out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::audit::{Event, Subject};
use crate::error::ApiError;
use crate::identity::{new_secret, sha256, Identity};
use crate::AppState;

/// The name of the session cookie.
pub const COOKIE: &str = "logyard_session";

/// The header a state-changing request made with the cookie carries.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The largest sign-in body.
const MAX_SIGN_IN_BYTES: usize = 4096;

/// Most sessions kept at once; signing in past it ends the session closest to expiring.
const MAX_SESSIONS: usize = 10_000;

/// One signed-in browser.
#[derive(Debug, Clone)]
struct Session {
    token: String,
    csrf: String,
    expires: Instant,
}

/// The open sessions, by the SHA-256 of their id.
#[derive(Debug)]
pub struct Sessions {
    ttl: Duration,
    open: Mutex<HashMap<[u8; 32], Session>>,
}

/// A session found for a request: the token's name and the CSRF token it expects.
#[derive(Debug, Clone)]
pub struct Found {
    /// The name of the token that signed in.
    pub token: String,
    /// What `X-CSRF-Token` must be on a state-changing request.
    pub csrf: String,
}

impl Sessions {
    /// Sessions that last `ttl` from sign-in.
    pub fn new(ttl: Duration) -> Sessions {
        Sessions {
            ttl,
            open: Mutex::default(),
        }
    }

    /// Opens a session for a token; returns its id and CSRF token.
    fn open(&self, token: &str) -> (String, String) {
        let id = new_secret();
        let csrf = new_secret();
        let now = Instant::now();
        let mut open = self.open.lock().expect("sessions lock");
        open.retain(|_, s| s.expires > now);
        if open.len() >= MAX_SESSIONS {
            if let Some(first) = open.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k) {
                open.remove(&first);
            }
        }
        open.insert(
            sha256(id.as_bytes()),
            Session {
                token: token.to_string(),
                csrf: csrf.clone(),
                expires: now + self.ttl,
            },
        );
        (id, csrf)
    }

    /// The session of a request's cookie, if it is open.
    pub fn find(&self, headers: &HeaderMap) -> Option<Found> {
        let id = cookie(headers)?;
        let mut open = self.open.lock().expect("sessions lock");
        let key = sha256(id.as_bytes());
        let session = open.get(&key)?;
        if session.expires <= Instant::now() {
            open.remove(&key);
            return None;
        }
        Some(Found {
            token: session.token.clone(),
            csrf: session.csrf.clone(),
        })
    }

    /// Ends the session of a request's cookie.
    fn close(&self, headers: &HeaderMap) {
        if let Some(id) = cookie(headers) {
            self.open
                .lock()
                .expect("sessions lock")
                .remove(&sha256(id.as_bytes()));
        }
    }
}

/// The session id of the request's `Cookie` header.
fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE).then(|| value.to_string())
        })
}

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/session", post(sign_in).get(whoami).delete(sign_out))
}

/// What the UI needs to know of an identity.
fn identity_json(identity: &Identity) -> Value {
    json!({
        "name": identity.name,
        "role": identity.role.name(),
        "scope": identity.scope.as_ref().map(|s| s.text.clone()),
    })
}

/// `POST /api/session`: signs in with a token (JSON `{"token"}` or a form field `token`).
pub async fn sign_in(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let connection = req.extensions().get::<crate::ConnectionInfo>();
    let ip = connection.map(|c| c.peer.ip());
    let tls = connection.is_some_and(|c| c.tls);
    let body = axum::body::to_bytes(req.into_body(), MAX_SIGN_IN_BYTES)
        .await
        .map_err(|_| ApiError::bad_param("the sign-in body is over 4 KiB: send the token only"))?;
    let auth = &state.auth;
    if !auth.enabled() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no token is configured ([[auth.tokens]]): there is nothing to sign in to",
        ));
    }
    let secret = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("token").and_then(Value::as_str).map(str::to_string))
        .or_else(|| {
            form_urlencoded::parse(&body).find_map(|(k, v)| (k == "token").then(|| v.into_owned()))
        })
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::bad_param("send the token as {\"token\": \"…\"} or a form field `token`")
        })?;
    if let Some(wait) = ip.and_then(|ip| auth.audit.held(ip)) {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_failures",
            format!(
                "this address presented wrong tokens too often: try again in {} s",
                wait.as_secs().max(1)
            ),
        ));
    }
    let Some(identity) = auth.clone().identify_secret_slow(&secret).await else {
        if let Some(ip) = ip {
            auth.audit.failed(ip);
        }
        auth.audit.record(
            &state.store,
            Event::LoginFailed,
            &Subject {
                ip,
                token: None,
                method: "POST",
                path: "/api/session",
            },
        );
        state.metrics.auth_failed();
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the token is not valid: check it, or ask for a new one (`logyard token new`)",
        ));
    };
    auth.audit.record(
        &state.store,
        Event::SignIn,
        &Subject {
            ip,
            token: Some(&identity.name),
            method: "POST",
            path: "/api/session",
        },
    );
    let (id, csrf) = auth.sessions.open(&identity.name);
    let secure = if tls { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        auth.sessions.ttl.as_secs()
    );
    let mut body = identity_json(&identity);
    body["auth"] = true.into();
    body["csrf"] = csrf.into();
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).expect("a cookie of URL-safe characters"),
    );
    Ok(response)
}

/// `GET /api/session`: who the request is (by its cookie or token), with the session's CSRF
/// token when a cookie signed it in.
pub async fn whoami(State(state): State<AppState>, req: Request) -> Result<Json<Value>, ApiError> {
    let headers = req.headers();
    let Some(identity) = req.extensions().get::<Identity>() else {
        return Ok(Json(
            json!({"name": null, "role": "admin", "scope": null, "auth": false}),
        ));
    };
    let mut body = identity_json(identity);
    body["auth"] = true.into();
    if let Some(found) = state.auth.sessions.find(headers) {
        body["csrf"] = found.csrf.into();
    }
    Ok(Json(body))
}

/// `DELETE /api/session`: signs out; the cookie is cleared.
pub async fn sign_out(State(state): State<AppState>, headers: HeaderMap) -> Response {
    state.auth.sessions.close(&headers);
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&format!(
            "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
        ))
        .expect("a plain cookie"),
    );
    response
}
