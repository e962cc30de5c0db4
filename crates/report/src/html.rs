//! The report as one self-contained HTML file: inline CSS and SVG, no script, nothing
//! fetched from elsewhere.

use std::fmt::Write;

use crate::svg::{error_chart, escape};
use crate::{fmt_change, fmt_num, Report, LEVEL_ORDER};

const CSS: &str = "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;background:#f6f7f9;color:#222}\
main{max-width:1100px;margin:0 auto;padding:24px}\
h1{margin:0 0 4px;font-size:24px}h2{font-size:18px;margin:28px 0 8px}\
.range{color:#666}.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}\
.card{background:#fff;border:1px solid #e2e4e8;border-radius:8px;padding:10px 16px;min-width:130px}\
.card b{display:block;font-size:22px}.card span{color:#666;font-size:12px}\
table{border-collapse:collapse;background:#fff;width:100%;border:1px solid #e2e4e8}\
th,td{padding:5px 8px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}\
th{background:#fafbfc;font-weight:600}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}\
.up{color:#b52b27}.down{color:#2b7a3b}code{font-size:12px;word-break:break-word}\
.chart{background:#fff;border:1px solid #e2e4e8;border-radius:8px;padding:8px}\
.anom{color:#b52b27;font-weight:600}.muted{color:#888}";

fn change_cell(x: Option<f64>) -> String {
    let class = match x {
        Some(v) if v > 0.0 => "up",
        Some(v) if v < 0.0 => "down",
        _ => "",
    };
    format!("<td class=\"n {class}\">{}</td>", escape(&fmt_change(x)))
}

/// Renders a report as one HTML document.
pub fn render_html(r: &Report) -> String {
    let mut s = String::new();
    let c = &r.counts;
    let p = &c.previous_period;
    let errors = c.by_level.get("ERROR").unwrap_or(&0) + c.by_level.get("CRITICAL").unwrap_or(&0);
    let _ = write!(
        s,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>logyard report {start}</title><style>{CSS}</style></head><body><main>\
         <h1>Log report</h1><div class=\"range\">{start} → {end}</div><div class=\"cards\">",
        start = escape(&r.range.start),
        end = escape(&r.range.end)
    );
    let cards = [
        ("entries", c.total.to_string()),
        ("errors", errors.to_string()),
        ("requests", r.requests.count.to_string()),
        ("p95 latency ms", fmt_num(r.requests.latency_ms.p95)),
        ("failed logins", r.auth.failed.to_string()),
        ("database errors", r.database_errors.to_string()),
        ("anomalies", r.anomalies.len().to_string()),
    ];
    for (label, value) in cards {
        let _ = write!(
            s,
            "<div class=\"card\"><b>{}</b><span>{label}</span></div>",
            escape(&value)
        );
    }
    let _ = write!(
        s,
        "</div><h2>Errors over time <span class=\"muted\">(per {})</span></h2><div class=\"chart\">{}</div>",
        escape(&r.errors_over_time.step),
        error_chart(&r.errors_over_time)
    );
    let _ = write!(s, "<h2>Anomalies</h2>");
    if r.anomalies.is_empty() {
        let _ = write!(s, "<p class=\"muted\">None found.</p>");
    } else {
        let _ = write!(
            s,
            "<table><tr><th>kind</th><th>agent</th><th>detail</th></tr>"
        );
        for a in &r.anomalies {
            let _ = write!(
                s,
                "<tr><td class=\"anom\">{}</td><td>{}</td><td>{}</td></tr>",
                escape(&a.kind),
                escape(&a.agent),
                escape(&a.detail)
            );
        }
        s.push_str("</table>");
    }
    let _ = write!(
        s,
        "<h2>Entries by level</h2><table><tr><th>level</th><th class=\"n\">entries</th><th class=\"n\">previous</th><th class=\"n\">change</th></tr>"
    );
    for level in LEVEL_ORDER {
        let (n, b) = (c.by_level.get(level), p.by_level.get(level));
        if n.is_some() || b.is_some() {
            let _ = write!(
                s,
                "<tr><td>{level}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>{}</tr>",
                n.unwrap_or(&0),
                b.unwrap_or(&0),
                change_cell(p.change_pct.by_level.get(level).copied().flatten())
            );
        }
    }
    let _ = write!(
        s,
        "</table><h2>Entries by agent</h2><table><tr><th>agent</th><th class=\"n\">entries</th><th class=\"n\">previous</th><th class=\"n\">change</th></tr>"
    );
    let mut agents: Vec<_> = c.by_agent.iter().collect();
    agents.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (agent, n) in agents {
        let _ = write!(
            s,
            "<tr><td>{}</td><td class=\"n\">{n}</td><td class=\"n\">{}</td>{}</tr>",
            escape(agent),
            p.by_agent.get(agent).unwrap_or(&0),
            change_cell(p.change_pct.by_agent.get(agent).copied().flatten())
        );
    }
    let _ = write!(
        s,
        "</table><h2>Top error patterns</h2><table><tr><th class=\"n\">count</th><th>pattern</th><th>example</th></tr>"
    );
    for e in &r.top_error_patterns {
        let _ = write!(
            s,
            "<tr><td class=\"n\">{}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
            e.count,
            escape(&e.pattern),
            escape(&e.example)
        );
    }
    let q = &r.requests;
    let _ = write!(
        s,
        "</table><h2>Requests</h2><p>{} requests; latency p50 {} ms, p95 {} ms, p99 {} ms.</p>\
         <table><tr><th>agent</th><th class=\"n\">requests</th><th class=\"n\">p50 ms</th><th class=\"n\">p95 ms</th><th class=\"n\">p99 ms</th></tr>",
        q.count,
        fmt_num(q.latency_ms.p50),
        fmt_num(q.latency_ms.p95),
        fmt_num(q.latency_ms.p99)
    );
    let row = |s: &mut String, key: &str, l: &crate::Latency| {
        let _ = write!(
            s,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(key),
            l.count,
            fmt_num(l.p50),
            fmt_num(l.p95),
            fmt_num(l.p99)
        );
    };
    for (agent, l) in &q.by_agent {
        row(&mut s, agent, l);
    }
    let _ = write!(s, "</table><h2>Most requested paths</h2><table><tr><th>path</th><th class=\"n\">requests</th><th class=\"n\">p50 ms</th><th class=\"n\">p95 ms</th><th class=\"n\">p99 ms</th></tr>");
    for pl in &q.by_path {
        row(&mut s, &pl.path, &pl.latency);
    }
    let _ = write!(s, "</table><h2>Slowest requests</h2><table><tr><th>time</th><th>agent</th><th class=\"n\">ms</th><th>message</th></tr>");
    for e in &q.slow {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td><code>{}</code></td></tr>",
            escape(e["timestamp"].as_str().unwrap_or("")),
            escape(e["agent"].as_str().unwrap_or("")),
            escape(&e["fields"]["response_time_ms"].to_string()),
            escape(e["message"].as_str().unwrap_or(""))
        );
    }
    let a = &r.auth;
    let _ = write!(
        s,
        "</table><h2>Logins</h2><p>{} succeeded, {} failed, success rate {}.</p><table><tr><th>suspicious IP</th><th class=\"n\">failed logins</th></tr>",
        a.succeeded,
        a.failed,
        a.success_rate.map_or("–".into(), |x| format!("{:.1}%", x * 100.0))
    );
    for ip in &a.suspicious_ips {
        let _ = write!(
            s,
            "<tr><td>{}</td><td class=\"n\">{}</td></tr>",
            escape(&ip.ip),
            ip.failures
        );
    }
    let _ = write!(
        s,
        "</table><h2>Database errors</h2><p>{}</p>",
        r.database_errors
    );
    if !r.partial.is_empty() {
        let _ = write!(s, "<h2>Partial answers</h2><ul>");
        for p in &r.partial {
            let _ = write!(s, "<li>{}</li>", escape(p));
        }
        s.push_str("</ul>");
    }
    s.push_str("</main></body></html>\n");
    s
}
