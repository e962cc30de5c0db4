//! Loki push: `POST /loki/api/v1/push`, protobuf + snappy (`application/x-protobuf`, what
//! Promtail and most agents send) or JSON (`application/json`, optionally gzip).
//!
//! Every line is parsed by the `parse` crate (format detection, as a file line would be);
//! the stream's labels become fields and take precedence for the level (`level`,
//! `severity`, `detected_level`), the agent (`service_name`, `app`, `job`) and the host
//! (`host`, `hostname`, `instance`); structured metadata become fields; the entry's time is
//! the record's. The answer is `204`; an error is a `400` (or `413`) with a text body, as
//! Loki answers.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use logyard_model::{Level, Record, Value};
use logyard_parse::{LineContext, Parser, ParserConfig, RedactConfig};
use prost::Message;

use super::{read_body, store, unsnappy, ShipperError};
use crate::AppState;

/// The protobuf messages of Loki's push API (`logproto`).
pub mod proto {
    /// `logproto.PushRequest`.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct PushRequest {
        /// The streams.
        #[prost(message, repeated, tag = "1")]
        pub streams: Vec<StreamAdapter>,
    }

    /// `logproto.StreamAdapter`: a label set and its entries.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct StreamAdapter {
        /// The labels as Prometheus writes a label set: `{a="b", c="d"}`.
        #[prost(string, tag = "1")]
        pub labels: String,
        /// The entries.
        #[prost(message, repeated, tag = "2")]
        pub entries: Vec<EntryAdapter>,
        /// The labels' hash (unused).
        #[prost(uint64, tag = "3")]
        pub hash: u64,
    }

    /// `logproto.EntryAdapter`.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct EntryAdapter {
        /// When.
        #[prost(message, optional, tag = "1")]
        pub timestamp: Option<Timestamp>,
        /// The line.
        #[prost(string, tag = "2")]
        pub line: String,
        /// Structured metadata.
        #[prost(message, repeated, tag = "3")]
        pub structured_metadata: Vec<LabelPairAdapter>,
    }

    /// `logproto.LabelPairAdapter`.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct LabelPairAdapter {
        /// The name.
        #[prost(string, tag = "1")]
        pub name: String,
        /// The value.
        #[prost(string, tag = "2")]
        pub value: String,
    }

    /// `google.protobuf.Timestamp`.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Timestamp {
        /// Seconds since the epoch.
        #[prost(int64, tag = "1")]
        pub seconds: i64,
        /// Nanoseconds within the second.
        #[prost(int32, tag = "2")]
        pub nanos: i32,
    }
}

/// The route of Loki push.
pub fn routes() -> Router<AppState> {
    Router::new().route("/loki/api/v1/push", post(push))
}

/// An error answer: its text, as Loki answers.
fn text(e: &ShipperError) -> Response {
    (
        e.status(),
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{}\n", e.message()),
    )
        .into_response()
}

/// One stream: its labels and its entries (time in ns, line, structured metadata).
type Stream = (
    Vec<(String, String)>,
    Vec<(i64, String, Vec<(String, String)>)>,
);

async fn push(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    match accept(&state, headers, body).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => text(&e),
    }
}

async fn accept(state: &AppState, headers: HeaderMap, body: Body) -> Result<(), ShipperError> {
    let content_type = super::content_type(&headers);
    let (bytes, wire) = read_body(state, &headers, body).await?;
    // Protobuf unless said JSON, as Loki decides; a JSON object sent with another type
    // (curl's default form type) is taken as JSON too, since snappy never starts with `{`
    // followed by `"` the way a push body does.
    let json = content_type.contains("json")
        || (content_type != "application/x-protobuf"
            && bytes.trim_ascii_start().starts_with(b"{\""));
    let max_body = state.limits.max_body_bytes;
    let max_entries = state.limits.max_entries_per_request;
    let opts = state.ingest.clone();
    let records = tokio::task::spawn_blocking(move || {
        let streams = if json {
            from_json(&bytes)?
        } else {
            from_protobuf(&unsnappy(&bytes, max_body)?)?
        };
        let n: usize = streams.iter().map(|s| s.1.len()).sum();
        if n > max_entries {
            return Err(ShipperError::TooLarge(format!(
                "the request holds {n} entries, over the limit of {max_entries} (setting limits.max_entries_per_request); send smaller batches"
            )));
        }
        Ok(to_records(streams, opts.max_line_bytes, opts.keep_raw))
    })
    .await?
    .inspect_err(|e| match e {
        ShipperError::TooLarge(_) => state.metrics.add_rejected("body_too_large", 1),
        ShipperError::Invalid(_) => state.metrics.add_rejected("invalid_loki", 1),
        _ => {}
    })?;
    store(state, records, wire).await
}

fn bad(m: String) -> ShipperError {
    ShipperError::Invalid(m)
}

/// Decodes a protobuf `PushRequest` (already decompressed).
pub fn from_protobuf(bytes: &[u8]) -> Result<Vec<Stream>, ShipperError> {
    let request = proto::PushRequest::decode(bytes).map_err(|e| {
        bad(format!(
            "the body is not a Loki PushRequest in protobuf: {e}"
        ))
    })?;
    request
        .streams
        .into_iter()
        .map(|s| {
            let labels = parse_labels(&s.labels).map_err(bad)?;
            let entries = s
                .entries
                .into_iter()
                .map(|e| {
                    let t = e.timestamp.unwrap_or_default();
                    let ns = t
                        .seconds
                        .checked_mul(1_000_000_000)
                        .and_then(|ns| ns.checked_add(i64::from(t.nanos)))
                        .ok_or_else(|| bad(format!("timestamp {}s is out of range", t.seconds)))?;
                    let meta = e
                        .structured_metadata
                        .into_iter()
                        .map(|p| (p.name, p.value))
                        .collect();
                    Ok((ns, e.line, meta))
                })
                .collect::<Result<_, ShipperError>>()?;
            Ok((labels, entries))
        })
        .collect()
}

/// Decodes the JSON push body.
pub fn from_json(bytes: &[u8]) -> Result<Vec<Stream>, ShipperError> {
    #[derive(serde::Deserialize)]
    struct Push {
        streams: Vec<JsonStream>,
    }
    #[derive(serde::Deserialize)]
    struct JsonStream {
        #[serde(default)]
        stream: std::collections::BTreeMap<String, serde_json::Value>,
        #[serde(default)]
        values: Vec<Vec<serde_json::Value>>,
    }
    let push: Push = serde_json::from_slice(bytes).map_err(|e| {
        bad(format!(
            "the body is not a Loki push request ({e}); send {{\"streams\": [{{\"stream\": {{labels}}, \"values\": [[\"<unix ns>\", \"line\"]]}}]}}"
        ))
    })?;
    push.streams
        .into_iter()
        .enumerate()
        .map(|(si, s)| {
            let entries = s
                .values
                .into_iter()
                .enumerate()
                .map(|(vi, v)| {
                    let at = || format!("streams[{si}].values[{vi}]");
                    if v.len() < 2 || v.len() > 3 {
                        return Err(bad(format!("{} has {} items: expected [\"<unix ns>\", \"line\"] or with structured metadata", at(), v.len())));
                    }
                    let ns = match &v[0] {
                        serde_json::Value::String(s) => s.parse::<i64>().ok(),
                        serde_json::Value::Number(n) => n.as_i64(),
                        _ => None,
                    }
                    .ok_or_else(|| bad(format!("{}: timestamp {} is not nanoseconds since the epoch as a string", at(), v[0])))?;
                    let line = v[1]
                        .as_str()
                        .ok_or_else(|| bad(format!("{}: the line is not a string", at())))?
                        .to_string();
                    let meta = match v.get(2) {
                        None | Some(serde_json::Value::Null) => Vec::new(),
                        Some(serde_json::Value::Object(m)) => m
                            .iter()
                            .map(|(k, v)| {
                                let v = match v {
                                    serde_json::Value::String(s) => s.clone(),
                                    other => other.to_string(),
                                };
                                (k.clone(), v)
                            })
                            .collect(),
                        Some(_) => {
                            return Err(bad(format!("{}: structured metadata is not an object", at())))
                        }
                    };
                    Ok((ns, line, meta))
                })
                .collect::<Result<_, ShipperError>>()?;
            let labels = s
                .stream
                .into_iter()
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => (k, s),
                    other => (k, other.to_string()),
                })
                .collect();
            Ok((labels, entries))
        })
        .collect()
}

/// Parses a Prometheus label set, `{a="b", c="d\"e"}`.
pub fn parse_labels(text: &str) -> Result<Vec<(String, String)>, String> {
    let err =
        |what: &str| format!("invalid labels {text:?}: {what}; expected {{name=\"value\", …}}");
    let inner = text
        .trim()
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or_else(|| err("not in braces"))?;
    let mut labels = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace() || *c == ',').is_some() {}
        if chars.peek().is_none() {
            return Ok(labels);
        }
        let mut name = String::new();
        while let Some(c) = chars.next_if(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.') {
            name.push(c);
        }
        if name.is_empty() {
            return Err(err("a label name is empty or has an invalid character"));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(err(&format!("no '=' after {name}")));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('"') {
            return Err(err(&format!("the value of {name} is not quoted")));
        }
        let mut value = String::new();
        loop {
            match chars.next() {
                None => return Err(err(&format!("the value of {name} has no closing quote"))),
                Some('"') => break,
                Some('\\') => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some('t') => value.push('\t'),
                    Some(c) => value.push(c),
                    None => return Err(err("a lone backslash at the end")),
                },
                Some(c) => value.push(c),
            }
        }
        labels.push((name, value));
    }
}

/// Parses every line and applies the labels.
pub fn to_records(streams: Vec<Stream>, max_line_bytes: usize, keep_raw: bool) -> Vec<Record> {
    // Secrets are removed once, from the whole record, by `store` with the server's rules.
    let cfg = ParserConfig {
        max_line_bytes,
        keep_raw,
        redact: RedactConfig {
            builtin: false,
            ..RedactConfig::default()
        },
        ..ParserConfig::default()
    };
    let mut parser = Parser::new(cfg).expect("the default parser configuration is valid");
    let mut records = Vec::new();
    for (labels, entries) in streams {
        let find = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| labels.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()))
        };
        let level_label = find(&["level", "severity", "detected_level"]);
        let level = level_label.as_deref().and_then(Level::normalize);
        let agent = find(&["service_name", "app", "job"]).unwrap_or_default();
        let host = find(&["host", "hostname", "instance"]).unwrap_or_default();
        for (ns, line, meta) in entries {
            let ctx = LineContext {
                source: "loki",
                agent_hint: &agent,
                host: &host,
                received_ns: ns,
            };
            let mut r = parser
                .parse(line.as_bytes(), &ctx)
                .unwrap_or_else(|| Record::new(ns, line.clone()));
            r.timestamp = ns;
            r.source = "loki".into();
            if level.is_some() {
                r.level = level;
            }
            if !agent.is_empty() {
                r.agent.clone_from(&agent);
            }
            if !host.is_empty() {
                r.host.clone_from(&host);
            }
            for (k, v) in labels.iter().chain(&meta) {
                r.fields.insert(k.clone(), Value::Str(v.clone()));
            }
            records.push(r);
        }
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_sets() {
        assert_eq!(
            parse_labels(r#"{app="web", level="warn", msg="a \"q\" b\\c", empty=""}"#).unwrap(),
            [
                ("app".into(), "web".into()),
                ("level".into(), "warn".into()),
                ("msg".into(), "a \"q\" b\\c".into()),
                ("empty".into(), String::new()),
            ]
        );
        assert_eq!(parse_labels("{}").unwrap(), []);
        for bad in ["app=\"x\"", "{app=x}", "{app=\"x}", "{=\"x\"}", "{a\"x\"}"] {
            assert!(parse_labels(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn labels_take_precedence_over_the_parsed_line() {
        let streams = vec![(
            vec![
                ("job".to_string(), "api".to_string()),
                ("level".to_string(), "error".to_string()),
                ("env".to_string(), "prod".to_string()),
            ],
            vec![(
                5,
                r#"{"level":"info","msg":"boom","user":"ana"}"#.to_string(),
                vec![("trace_id".to_string(), "abc".to_string())],
            )],
        )];
        let r = &to_records(streams, 10_000, false)[0];
        assert_eq!(r.level, Some(Level::Error));
        assert_eq!(r.agent, "api");
        assert_eq!(r.timestamp, 5);
        assert_eq!(r.source, "loki");
        assert_eq!(r.message, "boom");
        assert_eq!(r.fields["user"], Value::Str("ana".into()));
        assert_eq!(r.fields["env"], Value::Str("prod".into()));
        assert_eq!(r.fields["trace_id"], Value::Str("abc".into()));
    }
}
