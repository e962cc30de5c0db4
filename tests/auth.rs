//! Tokens with roles, through the real binary: every route of the router answers 401
//! without a token, 403 with a token of the wrong role, and with the right one what a server
//! without tokens answers; tokens in every form clients send them; secrets never in an
//! answer or a log; `logyard token new`; no unauthenticated start on a non-loopback address.

mod util;

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use logyard_api::auth::{Access, Role, ROUTES};
use reqwest::blocking::RequestBuilder;
use reqwest::Method;
use serde_json::Value;
use util::Server;

const INGEST: &str = "ingest-secret-0123456789";
const READ: &str = "read-secret-0123456789abc";
const ADMIN: &str = "admin-secret-0123456789ab";

/// Starts a server with three tokens: `shipper` (ingest, a hash), `team` (read, a file) and
/// `root` (admin, a hash).
fn start_with_tokens(dir: &Path) -> Server {
    let hash = |s: &str| logyard_api::auth::format_hash(&logyard_api::auth::sha256(s.as_bytes()));
    std::fs::write(dir.join("team.token"), format!("{READ}\n")).unwrap();
    let config = dir.join("logyard.toml");
    std::fs::write(
        &config,
        format!(
            "[[auth.tokens]]\nname = \"shipper\"\nrole = \"ingest\"\nhash = \"{}\"\n\n\
             [[auth.tokens]]\nname = \"team\"\nrole = \"read\"\ntoken_file = \"{}\"\n\n\
             [[auth.tokens]]\nname = \"root\"\nrole = \"admin\"\nhash = \"{}\"\n",
            hash(INGEST),
            dir.join("team.token").display(),
            hash(ADMIN)
        ),
    )
    .unwrap();
    Server::start(&dir.join("data"), &["--config", config.to_str().unwrap()])
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A concrete request for a route pattern of [`ROUTES`].
fn request(server: &Server, method: &Method, pattern: &str, id: &str) -> RequestBuilder {
    let path = pattern
        .replace("{index}", "idx")
        .replace("{agent_name}", "web")
        .replace("{id}", id)
        .replace("{name}", "critical")
        .replace("{*path}", "js/main.js");
    let query = match pattern {
        "/api/logs/search" => "?q=first",
        "/api/report" => "?since=1h",
        _ => "",
    };
    let builder = client().request(method.clone(), format!("{}{path}{query}", server.url));
    let (content_type, body): (&str, &str) = match pattern {
        "/api/logs" if *method == Method::POST => {
            ("application/json", r#"{"agent": "web", "message": "m"}"#)
        }
        "/_bulk" | "/{index}/_bulk" => (
            "application/x-ndjson",
            "{\"index\": {}}\n{\"message\": \"bulk\"}\n",
        ),
        "/loki/api/v1/push" => (
            "application/json",
            r#"{"streams": [{"stream": {"job": "j"}, "values": [["1700000000000000000", "l"]]}]}"#,
        ),
        "/v1/logs" => ("application/json", r#"{"resourceLogs": []}"#),
        "/api/sql" => (
            "application/json",
            r#"{"sql": "SELECT count(*) FROM logs"}"#,
        ),
        "/api/alerts/rules/{name}/silence" => ("application/json", r#"{"for": "1h"}"#),
        "/api/saved-queries/{name}" if *method == Method::PUT => (
            "application/json",
            r#"{"query": "level:ERROR", "range": "24h"}"#,
        ),
        "/api/session" if *method == Method::POST => (
            "application/json",
            r#"{"token": "read-secret-0123456789abc"}"#,
        ),
        _ => return builder,
    };
    builder
        .header("content-type", content_type)
        .body(body.to_string())
}

/// The status of a request, the body left unread (a live tail never ends).
fn status(builder: RequestBuilder) -> (u16, reqwest::blocking::Response) {
    let resp = builder.send().expect("answered");
    (resp.status().as_u16(), resp)
}

fn first_id(server: &Server, bearer: Option<&str>) -> String {
    let mut b = client().get(format!("{}/api/logs?limit=1", server.url));
    if let Some(t) = bearer {
        b = b.bearer_auth(t);
    }
    let page: Value = b.send().unwrap().json().unwrap();
    page["logs"][0]["id"].as_str().unwrap().to_string()
}

#[test]
fn every_route_needs_its_role_and_answers_as_without_tokens_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_tokens(dir.path());
    let open_dir = tempfile::tempdir().unwrap();
    // A config file of its own, empty, so that a reload has something to read on both.
    let open_config = open_dir.path().join("logyard.toml");
    std::fs::write(&open_config, "").unwrap();
    let open = Server::start(
        &open_dir.path().join("data"),
        &["--config", open_config.to_str().unwrap()],
    );
    for s in [&server, &open] {
        let (code, _) = status(
            client()
                .post(format!("{}/api/logs", s.url))
                .bearer_auth(INGEST)
                .header("content-type", "application/json")
                .body(r#"{"agent": "web", "message": "first entry"}"#),
        );
        assert_eq!(code, 200);
    }
    let id = first_id(&server, Some(READ));
    let open_id = first_id(&open, None);
    let token_of = |role: Role| match role {
        Role::Ingest => INGEST,
        Role::Read => READ,
        Role::Admin => ADMIN,
    };
    for (method, pattern, access) in ROUTES {
        let what = format!("{method} {pattern}");
        let (code, resp) = status(request(&server, method, pattern, &id));
        if *access == Access::Open {
            assert_eq!(code, 200, "{what} is open");
            continue;
        }
        assert_eq!(code, 401, "{what} without a token");
        assert_eq!(
            resp.headers()["www-authenticate"],
            "Bearer, Basic realm=\"logyard\"",
            "{what}"
        );
        let wrong = match access {
            Access::Role(Role::Ingest) | Access::Whole(Role::Ingest) => Some(READ),
            Access::Role(Role::Read) | Access::Whole(Role::Read) => Some(INGEST),
            _ => None,
        };
        if let Some(wrong) = wrong {
            let (code, resp) = status(request(&server, method, pattern, &id).bearer_auth(wrong));
            assert_eq!(code, 403, "{what} with a token of another role");
            let text = resp.text().unwrap();
            assert!(text.contains("forbidden"), "{what}: {text}");
            assert!(!text.contains(wrong), "{what}: the secret echoed: {text}");
        }
        let right = match access {
            Access::Role(r) | Access::Whole(r) => token_of(*r),
            _ => INGEST,
        };
        let (expected, _) = status(request(&open, method, pattern, &open_id));
        for token in [right, ADMIN] {
            let (code, _) = status(request(&server, method, pattern, &id).bearer_auth(token));
            assert_eq!(
                code, expected,
                "{what} with the right role, as without tokens"
            );
        }
    }
    // An unknown path needs a token too, so that nobody learns which paths exist.
    let (code, _) = status(client().get(format!("{}/api/nothing-here", server.url)));
    assert_eq!(code, 401);
    let (code, _) = status(
        client()
            .get(format!("{}/api/nothing-here", server.url))
            .bearer_auth(ADMIN),
    );
    assert_eq!(code, 404);
}

#[test]
fn each_token_keeps_its_own_saved_queries_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_tokens(dir.path());
    let call = |server: &Server, method: Method, path: &str, token: &str, body: Option<&str>| {
        let mut b = client()
            .request(method, format!("{}{path}", server.url))
            .bearer_auth(token);
        if let Some(body) = body {
            b = b
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let resp = b.send().unwrap();
        let code = resp.status().as_u16();
        (code, resp.json::<Value>().unwrap())
    };
    let names = |v: &Value| -> Vec<String> {
        v["queries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| q["name"].as_str().unwrap().to_string())
            .collect()
    };
    let (code, saved) = call(
        &server,
        Method::PUT,
        "/api/saved-queries/slow%20checkouts",
        READ,
        Some(r#"{"query": "agent:checkout response_time_ms:>1000", "range": "24h"}"#),
    );
    assert_eq!(code, 200, "{saved}");
    assert_eq!(saved["saved"]["name"], "slow checkouts");
    let (code, _) = call(
        &server,
        Method::PUT,
        "/api/saved-queries/errors",
        ADMIN,
        Some(r#"{"query": "level:>=ERROR"}"#),
    );
    assert_eq!(code, 200);
    // An ingest token has none; a bad body says what to send.
    let (code, _) = call(&server, Method::GET, "/api/saved-queries", INGEST, None);
    assert_eq!(code, 403);
    let (code, bad) = call(
        &server,
        Method::PUT,
        "/api/saved-queries/x",
        READ,
        Some("{\"q\": 1}"),
    );
    assert_eq!(code, 400);
    assert!(
        bad["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"query\""),
        "{bad}"
    );
    let server = {
        drop(server);
        start_with_tokens(dir.path())
    };
    let (_, team) = call(&server, Method::GET, "/api/saved-queries", READ, None);
    assert_eq!(names(&team), ["slow checkouts"]);
    assert_eq!(
        team["queries"][0]["query"],
        "agent:checkout response_time_ms:>1000"
    );
    assert_eq!(team["queries"][0]["range"], "24h");
    let (_, root) = call(&server, Method::GET, "/api/saved-queries", ADMIN, None);
    assert_eq!(names(&root), ["errors"]);
    // Nobody deletes another token's query.
    let (code, _) = call(
        &server,
        Method::DELETE,
        "/api/saved-queries/errors",
        READ,
        None,
    );
    assert_eq!(code, 404);
    let (code, _) = call(
        &server,
        Method::DELETE,
        "/api/saved-queries/errors",
        ADMIN,
        None,
    );
    assert_eq!(code, 200);
    let (_, root) = call(&server, Method::GET, "/api/saved-queries", ADMIN, None);
    assert!(names(&root).is_empty());
}

#[test]
fn every_route_is_documented_and_every_documented_endpoint_is_a_route() {
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/api.md")).unwrap();
    let ui =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/ui.md")).unwrap();
    for (method, pattern, _) in ROUTES {
        let named = match *pattern {
            "/" => ui.contains("GET /`") || ui.contains("`/`"),
            "/ui/{*path}" => ui.contains("/ui/<path>"),
            "/_bulk" | "/{index}/_bulk" if *method == Method::PUT => docs.contains("PUT"),
            _ => {
                docs.contains(&format!("{method} {pattern}`"))
                    || docs.contains(&format!("`{pattern}`"))
            }
        };
        assert!(
            named,
            "{method} {pattern} is not in docs/api.md (or docs/ui.md)"
        );
    }
    // Every `METHOD /path` the API's documentation names is a route of the table.
    for (i, _) in docs.match_indices('`') {
        let rest = &docs[i + 1..];
        let Some(end) = rest.find('`') else { break };
        let words: Vec<&str> = rest[..end].split(' ').collect();
        if let [method @ ("GET" | "POST" | "PUT" | "DELETE"), path] = words.as_slice() {
            if path.starts_with('/') {
                let path = path.split('?').next().unwrap_or(path);
                assert!(
                    ROUTES
                        .iter()
                        .any(|(m, p, _)| m.as_str() == *method && *p == path),
                    "docs/api.md names {method} {path}, which auth::ROUTES lacks"
                );
            }
        }
    }
}

#[test]
fn tokens_come_as_bearer_basic_and_api_key_and_failures_are_counted_without_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_tokens(dir.path());
    let post = |b: RequestBuilder| {
        b.header("content-type", "application/json")
            .body(r#"{"agent": "forms", "message": "m"}"#)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    let url = format!("{}/api/logs", server.url);
    assert_eq!(post(client().post(&url).bearer_auth(INGEST)), 200);
    assert_eq!(
        post(client().post(&url).basic_auth("shipper", Some(INGEST))),
        200
    );
    // Basic with the secret of one token under another's name is refused.
    assert_eq!(
        post(client().post(&url).basic_auth("root", Some(INGEST))),
        401
    );
    let api_key = base64::engine::general_purpose::STANDARD.encode(format!("shipper:{INGEST}"));
    assert_eq!(
        post(
            client()
                .post(&url)
                .header("authorization", format!("ApiKey {api_key}"))
        ),
        200
    );
    let wrong = "wrong-secret-that-must-not-leak";
    let resp = client()
        .post(&url)
        .bearer_auth(wrong)
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let text = resp.text().unwrap();
    assert!(
        text.contains("unauthorized") && !text.contains(wrong),
        "{text}"
    );
    let metrics = client()
        .get(format!("{}/metrics", server.url))
        .bearer_auth(READ)
        .send()
        .unwrap()
        .text()
        .unwrap();
    let failures: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("logyard_auth_failures_total "))
        .expect("logyard_auth_failures_total")
        .parse()
        .unwrap();
    assert_eq!(failures, 2.0, "{metrics}");
    let page: Value = client()
        .get(format!("{}/api/logs?agent=forms", server.url))
        .bearer_auth(READ)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(page["total"], 3, "{page}");
    let log = server.stop();
    for secret in [INGEST, READ, ADMIN, wrong] {
        assert!(!log.contains(secret), "a secret in the server's log: {log}");
    }
}

#[test]
fn a_new_token_works_once_its_lines_are_in_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let out = util::run(
        dir.path(),
        &["token", "new", "--name", "ci", "--role", "read"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let token = text
        .split_whitespace()
        .find(|w| w.starts_with("ly_"))
        .expect("a token")
        .to_string();
    let lines = &text[text.find("[[auth.tokens]]").expect("config lines")..];
    assert!(
        !lines.contains(&token),
        "the config lines hold the clear token: {lines}"
    );
    let config = dir.path().join("logyard.toml");
    std::fs::write(&config, lines).unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let get = |t: Option<&str>| {
        let mut b = client().get(format!("{}/api/stats", server.url));
        if let Some(t) = t {
            b = b.bearer_auth(t);
        }
        b.send().unwrap().status().as_u16()
    };
    assert_eq!(get(None), 401);
    assert_eq!(get(Some(&token)), 200);
    // The CLI sends --token (or LOGYARD_TOKEN) to the server.
    let out = util::run(
        dir.path(),
        &["--token", &token, "query", "--server", &server.url, "*"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = util::run(dir.path(), &["query", "--server", &server.url, "*"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A bad role is refused with the roles named.
    let out = util::run(
        dir.path(),
        &["token", "new", "--name", "x", "--role", "root"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ingest, read, admin"));
}

#[test]
fn a_non_loopback_address_without_tokens_stops_the_start_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = util::run(
        dir.path(),
        &[
            "serve",
            "--data",
            data.to_str().unwrap(),
            "--listen",
            "0.0.0.0:0",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("logyard token new") && err.contains("allow_unauthenticated"),
        "{err}"
    );
    // Configuration mistakes name the token and the key, never a secret.
    let config = dir.path().join("bad.toml");
    let check = |text: &str| {
        std::fs::write(&config, text).unwrap();
        let out = util::run(
            dir.path(),
            &["--config", config.to_str().unwrap(), "check-config"],
        );
        assert!(!out.status.success(), "{text} was accepted");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = check(
        "[[auth.tokens]]\nname = \"a\"\nrole = \"read\"\ntoken_env = \"LOGYARD_TEST_UNSET_TOKEN\"\n",
    );
    assert!(
        err.contains("LOGYARD_TEST_UNSET_TOKEN") && err.contains("`a`"),
        "{err}"
    );
    let err = check("[[auth.tokens]]\nname = \"a\"\nrole = \"read\"\nhash = \"plain-secret\"\n");
    assert!(
        err.contains("sha256:") && !err.contains("plain-secret"),
        "{err}"
    );
}

#[test]
fn the_ui_signs_in_with_a_token_and_then_uses_a_session_cookie_with_csrf() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_tokens(dir.path());
    let url = |path: &str| format!("{}{path}", server.url);
    // The UI's files and the sign-in are open; data is not.
    assert_eq!(
        client().get(url("/")).send().unwrap().status().as_u16(),
        200
    );
    assert_eq!(
        client()
            .get(url("/api/logs"))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    let wrong = client()
        .post(url("/api/session"))
        .json(&serde_json::json!({"token": "not-a-token-at-all-0000"}))
        .send()
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());
    let signed = client()
        .post(url("/api/session"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={READ}"))
        .send()
        .unwrap();
    assert_eq!(signed.status().as_u16(), 200);
    let set_cookie = signed.headers()["set-cookie"].to_str().unwrap().to_string();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "no TLS: {set_cookie}");
    let session: Value = signed.json().unwrap();
    assert_eq!(session["name"], "team");
    assert_eq!(session["role"], "read");
    let csrf = session["csrf"].as_str().unwrap().to_string();
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    assert!(!cookie.contains(READ) && !set_cookie.contains(READ));
    let with_cookie = |b: RequestBuilder| b.header("cookie", cookie.clone());
    // Reads with the cookie; the role holds (no ingest), and so does CSRF on changes.
    let (code, _) = status(with_cookie(client().get(url("/api/logs"))));
    assert_eq!(code, 200);
    let who: Value = with_cookie(client().get(url("/api/session")))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(who["name"], "team");
    assert_eq!(who["csrf"], csrf.as_str());
    let sql = |b: RequestBuilder| {
        b.header("content-type", "application/json")
            .body(r#"{"sql": "SELECT count(*) FROM logs"}"#)
    };
    let (code, resp) = status(sql(with_cookie(client().post(url("/api/sql")))));
    assert_eq!(code, 403);
    assert!(resp.text().unwrap().contains("\"csrf\""));
    let (code, _) =
        status(sql(with_cookie(client().post(url("/api/sql")))).header("x-csrf-token", "wrong"));
    assert_eq!(code, 403);
    let (code, _) =
        status(sql(with_cookie(client().post(url("/api/sql")))).header("x-csrf-token", &csrf));
    assert_eq!(code, 200);
    let (code, _) = status(
        with_cookie(client().post(url("/api/logs")))
            .header("x-csrf-token", &csrf)
            .header("content-type", "application/json")
            .body(r#"{"message": "m"}"#),
    );
    assert_eq!(code, 403, "a read session may not ingest");
    // Sign out: CSRF needed, then the cookie opens nothing.
    let (code, _) = status(with_cookie(client().delete(url("/api/session"))));
    assert_eq!(code, 403);
    let (code, resp) =
        status(with_cookie(client().delete(url("/api/session"))).header("x-csrf-token", &csrf));
    assert_eq!(code, 204);
    assert!(resp.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let (code, _) = status(with_cookie(client().get(url("/api/logs"))));
    assert_eq!(code, 401);
    // The sign-in and the failure are audit entries.
    let audit: Value = client()
        .get(url("/api/logs?agent=logyard-audit"))
        .bearer_auth(ADMIN)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let events: Vec<&str> = audit["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["fields"]["event"].as_str().unwrap())
        .collect();
    assert!(
        events.contains(&"sign_in") && events.contains(&"login_failed"),
        "{audit}"
    );
}

#[test]
fn an_argon2_token_is_checked_once_then_found_by_its_digest() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "a-person-chose-this-passphrase";
    let config = dir.path().join("logyard.toml");
    std::fs::write(
        &config,
        format!(
            "[[auth.tokens]]\nname = \"ops\"\nrole = \"read\"\nhash = '{}'\n\n\
             [[auth.tokens]]\nname = \"bad\"\nrole = \"read\"\nhash = \"sha256:{}\"\n",
            logyard_api::auth::argon2_hash(secret),
            "0".repeat(64)
        ),
    )
    .unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let get = |b: RequestBuilder| status(b).0;
    let logs = || client().get(format!("{}/api/logs", server.url));
    assert_eq!(get(logs().bearer_auth("a-wrong-passphrase")), 401);
    assert_eq!(get(logs().bearer_auth(secret)), 200);
    assert_eq!(get(logs().bearer_auth(secret)), 200);
    assert_eq!(get(logs().basic_auth("ops", Some(secret))), 200);
    assert_eq!(get(logs().basic_auth("bad", Some(secret))), 401);
    // A malformed Argon2 hash stops the start with the token's name.
    std::fs::write(
        &config,
        "[[auth.tokens]]\nname = \"ops\"\nrole = \"read\"\nhash = '$argon2id$v=19$broken'\n",
    )
    .unwrap();
    let err = Server::try_start(
        &dir.path().join("data2"),
        &["--config", config.to_str().unwrap()],
    )
    .err()
    .unwrap();
    assert!(err.contains("`ops`") && err.contains("argon2"), "{err}");
    // `logyard token new --argon2` prints such a hash.
    let out = util::run(
        dir.path(),
        &["token", "new", "--name", "n", "--role", "read", "--argon2"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("hash = \"$argon2id$v=19$"),
        "{text}"
    );
}
