//! The report in Markdown.

use std::fmt::Write;

use crate::{fmt_change, fmt_num, Report, LEVEL_ORDER};

/// Escapes a table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// Renders a report as Markdown.
pub fn render_markdown(r: &Report) -> String {
    let mut s = String::new();
    let c = &r.counts;
    let p = &c.previous_period;
    let _ = writeln!(s, "# Log report\n\n{} → {}\n", r.range.start, r.range.end);
    let _ = writeln!(
        s,
        "**{}** entries ({} against the previous period's {}), **{}** requests, **{}** failed logins, **{}** database errors, **{}** anomalies.\n",
        c.total,
        fmt_change(p.change_pct.total),
        p.total,
        r.requests.count,
        r.auth.failed,
        r.database_errors,
        r.anomalies.len()
    );
    let _ = writeln!(s, "## Entries by level\n\n| level | entries | previous | change |\n| --- | ---: | ---: | ---: |");
    for level in LEVEL_ORDER {
        let (n, b) = (c.by_level.get(level), p.by_level.get(level));
        if n.is_some() || b.is_some() {
            let _ = writeln!(
                s,
                "| {level} | {} | {} | {} |",
                n.unwrap_or(&0),
                b.unwrap_or(&0),
                fmt_change(p.change_pct.by_level.get(level).copied().flatten())
            );
        }
    }
    let _ = writeln!(s, "\n## Entries by agent\n\n| agent | entries | previous | change |\n| --- | ---: | ---: | ---: |");
    let mut agents: Vec<_> = c.by_agent.iter().collect();
    agents.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (agent, n) in agents {
        let _ = writeln!(
            s,
            "| {} | {n} | {} | {} |",
            cell(agent),
            p.by_agent.get(agent).unwrap_or(&0),
            fmt_change(p.change_pct.by_agent.get(agent).copied().flatten())
        );
    }
    let _ = writeln!(s, "\n## Anomalies\n");
    if r.anomalies.is_empty() {
        let _ = writeln!(s, "None found.");
    }
    for a in &r.anomalies {
        let _ = writeln!(
            s,
            "- **{}** `{}`: {}",
            a.kind,
            cell(&a.agent),
            cell(&a.detail)
        );
    }
    let _ = writeln!(
        s,
        "\n## Errors over time (per {})\n\n| from | errors |\n| --- | ---: |",
        r.errors_over_time.step
    );
    for b in &r.errors_over_time.buckets {
        let _ = writeln!(s, "| {} | {} |", b.t, b.count);
    }
    let _ = writeln!(
        s,
        "\n## Top error patterns\n\n| count | pattern | example |\n| ---: | --- | --- |"
    );
    for e in &r.top_error_patterns {
        let _ = writeln!(
            s,
            "| {} | {} | {} |",
            e.count,
            cell(&e.pattern),
            cell(&e.example)
        );
    }
    let q = &r.requests;
    let _ = writeln!(
        s,
        "\n## Requests\n\n{} requests; latency p50 {} ms, p95 {} ms, p99 {} ms.\n\n| agent | requests | p50 ms | p95 ms | p99 ms |\n| --- | ---: | ---: | ---: | ---: |",
        q.count,
        fmt_num(q.latency_ms.p50),
        fmt_num(q.latency_ms.p95),
        fmt_num(q.latency_ms.p99)
    );
    for (agent, l) in &q.by_agent {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            cell(agent),
            l.count,
            fmt_num(l.p50),
            fmt_num(l.p95),
            fmt_num(l.p99)
        );
    }
    let _ = writeln!(
        s,
        "\n| path | requests | p50 ms | p95 ms | p99 ms |\n| --- | ---: | ---: | ---: | ---: |"
    );
    for pl in &q.by_path {
        let l = &pl.latency;
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            cell(&pl.path),
            l.count,
            fmt_num(l.p50),
            fmt_num(l.p95),
            fmt_num(l.p99)
        );
    }
    let _ = writeln!(
        s,
        "\n### Slowest requests\n\n| time | agent | ms | message |\n| --- | --- | ---: | --- |"
    );
    for e in &q.slow {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            e["timestamp"].as_str().unwrap_or(""),
            cell(e["agent"].as_str().unwrap_or("")),
            e["fields"]["response_time_ms"],
            cell(e["message"].as_str().unwrap_or(""))
        );
    }
    let a = &r.auth;
    let _ = writeln!(
        s,
        "\n## Logins\n\n{} succeeded, {} failed, success rate {}.\n\n| suspicious IP | failed logins |\n| --- | ---: |",
        a.succeeded,
        a.failed,
        a.success_rate.map_or("–".into(), |x| format!("{:.1}%", x * 100.0))
    );
    for ip in &a.suspicious_ips {
        let _ = writeln!(s, "| {} | {} |", cell(&ip.ip), ip.failures);
    }
    let _ = writeln!(s, "\n## Database errors\n\n{}", r.database_errors);
    if !r.partial.is_empty() {
        let _ = writeln!(s, "\n## Partial answers\n");
        for p in &r.partial {
            let _ = writeln!(s, "- {}", cell(p));
        }
    }
    s
}
