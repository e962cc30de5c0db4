//! `logyard alerts`: the recent alerts of a server, as an aligned table or JSON.

use std::io::Write;

use serde_json::Value;

use crate::cli::AlertsArgs;

/// Prints `GET /api/alerts` of a server.
pub fn run(args: AlertsArgs) -> anyhow::Result<()> {
    let url = format!("{}/api/alerts", args.server.trim_end_matches('/'));
    let request = crate::cli::http()
        .build()?
        .get(&url)
        .query(&[("limit", args.limit.to_string())]);
    let resp = crate::cli::send(request, &args.server)?;
    if !resp.status().is_success() {
        anyhow::bail!("{url} answered {}", resp.status());
    }
    let (_, body) = crate::cli::json_answer(resp)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{body}")?;
        return Ok(());
    }
    let alerts = body["alerts"].as_array().cloned().unwrap_or_default();
    if alerts.is_empty() {
        writeln!(out, "no alerts")?;
        return Ok(());
    }
    let rows: Vec<Vec<String>> = alerts.iter().map(row).collect();
    out.write_all(
        crate::table::render(
            &[
                "FIRED", "RULE", "SEVERITY", "GROUP", "COUNT", "SUPPR", "NOTIFIED", "MESSAGE",
            ],
            &rows,
        )
        .as_bytes(),
    )?;
    Ok(())
}

fn row(a: &Value) -> Vec<String> {
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    let group = a["group"]
        .as_object()
        .map(|g| {
            g.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    let notified = a["notified"]
        .as_array()
        .map(|n| {
            n.iter()
                .map(|d| {
                    let ok = if d["ok"].as_bool() == Some(true) {
                        "ok"
                    } else {
                        "FAILED"
                    };
                    format!("{}:{ok}", text(&d["notifier"]))
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let mut message: String = text(&a["message"]).replace('\n', " ");
    if message.chars().count() > 80 {
        message = message.chars().take(79).collect::<String>() + "…";
    }
    vec![
        text(&a["fired_at"]),
        text(&a["rule"]),
        text(&a["severity"]),
        group.chars().take(60).collect(),
        a["count"].to_string(),
        a["suppressed"].to_string(),
        if notified.is_empty() {
            "pending".into()
        } else {
            notified
        },
        message,
    ]
}
