//! The report as a document: its headline figures and its sections in order, each made of
//! paragraphs, tables and a chart. This is the one walk of a [`Report`] for people; the
//! Markdown and HTML renderers only spell a [`Document`] in their syntax (JSON is the
//! report itself).

use crate::{fmt_change, fmt_num, ErrorSeries, Latency, Report, LEVEL_ORDER};

/// A report laid out for reading.
pub(crate) struct Document<'a> {
    /// The first instant of the range, RFC 3339.
    pub start: &'a str,
    /// The first instant after the range, RFC 3339.
    pub end: &'a str,
    /// The figures shown first (cards in HTML, one line in Markdown).
    pub figures: Vec<(&'static str, String)>,
    /// The sections, in reading order.
    pub sections: Vec<Section<'a>>,
}

/// A titled part of the document.
pub(crate) struct Section<'a> {
    /// Its heading.
    pub title: &'static str,
    /// A short qualifier beside the heading (`per 30m`).
    pub note: Option<String>,
    /// Its content, in order.
    pub blocks: Vec<Block<'a>>,
}

/// One piece of a section.
pub(crate) enum Block<'a> {
    /// A sentence or two.
    Text(String),
    /// A sentence saying there is nothing to show.
    Nothing(&'static str),
    /// A table.
    Table(Table),
    /// Errors per bucket: a chart where the format can draw one, a table otherwise.
    ErrorChart(&'a ErrorSeries),
    /// A bulleted list.
    List(Vec<String>),
}

/// A table: its columns and its rows of cells.
pub(crate) struct Table {
    /// Each column's heading and whether it holds numbers (aligned right).
    pub columns: Vec<(&'static str, bool)>,
    /// The rows, one cell per column.
    pub rows: Vec<Vec<Cell>>,
}

/// One cell of a table.
pub(crate) enum Cell {
    /// Plain text.
    Text(String),
    /// A number, formatted.
    Number(String),
    /// A change in percent: its sign is coloured where the format allows.
    Change(Option<f64>),
    /// Text from the logs (a pattern, a message), shown as code where the format allows.
    Code(String),
    /// Text that needs attention (an anomaly's kind).
    Strong(String),
}

impl Table {
    fn new(columns: &[(&'static str, bool)]) -> Table {
        Table {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }
}

fn number(n: impl ToString) -> Cell {
    Cell::Number(n.to_string())
}

fn latency_row(key: &str, l: &Latency) -> Vec<Cell> {
    vec![
        Cell::Text(key.to_string()),
        number(l.count),
        Cell::Number(fmt_num(l.p50)),
        Cell::Number(fmt_num(l.p95)),
        Cell::Number(fmt_num(l.p99)),
    ]
}

/// Lays a report out as a document.
pub(crate) fn document(r: &Report) -> Document<'_> {
    let c = &r.counts;
    let p = &c.previous_period;
    let q = &r.requests;
    let errors = c.by_level.get("ERROR").unwrap_or(&0) + c.by_level.get("CRITICAL").unwrap_or(&0);
    let figures = vec![
        ("entries", c.total.to_string()),
        ("errors", errors.to_string()),
        ("requests", q.count.to_string()),
        ("p95 latency ms", fmt_num(q.latency_ms.p95)),
        ("failed logins", r.auth.failed.to_string()),
        ("database errors", r.database_errors.to_string()),
        ("anomalies", r.anomalies.len().to_string()),
    ];
    let mut sections = Vec::new();

    sections.push(Section {
        title: "Errors over time",
        note: Some(format!("per {}", r.errors_over_time.step)),
        blocks: vec![Block::ErrorChart(&r.errors_over_time)],
    });

    let anomalies = if r.anomalies.is_empty() {
        Block::Nothing("None found.")
    } else {
        let mut t = Table::new(&[("kind", false), ("agent", false), ("detail", false)]);
        for a in &r.anomalies {
            t.rows.push(vec![
                Cell::Strong(a.kind.clone()),
                Cell::Text(a.agent.clone()),
                Cell::Text(a.detail.clone()),
            ]);
        }
        Block::Table(t)
    };
    sections.push(Section {
        title: "Anomalies",
        note: None,
        blocks: vec![anomalies],
    });

    let columns = [("entries", true), ("previous", true), ("change", true)];
    let mut levels = Table::new(&[&[("level", false)][..], &columns].concat());
    for level in LEVEL_ORDER {
        let (n, b) = (c.by_level.get(level), p.by_level.get(level));
        if n.is_some() || b.is_some() {
            levels.rows.push(vec![
                Cell::Text(level.to_string()),
                number(n.unwrap_or(&0)),
                number(b.unwrap_or(&0)),
                Cell::Change(p.change_pct.by_level.get(level).copied().flatten()),
            ]);
        }
    }
    sections.push(Section {
        title: "Entries by level",
        note: None,
        blocks: vec![
            Block::Text(format!(
                "{} entries, {} against the previous period's {}.",
                c.total,
                fmt_change(p.change_pct.total),
                p.total
            )),
            Block::Table(levels),
        ],
    });

    let mut agents = Table::new(&[&[("agent", false)][..], &columns].concat());
    let mut by_agent: Vec<_> = c.by_agent.iter().collect();
    by_agent.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (agent, n) in by_agent {
        agents.rows.push(vec![
            Cell::Text(agent.clone()),
            number(n),
            number(p.by_agent.get(agent).unwrap_or(&0)),
            Cell::Change(p.change_pct.by_agent.get(agent).copied().flatten()),
        ]);
    }
    sections.push(Section {
        title: "Entries by agent",
        note: None,
        blocks: vec![Block::Table(agents)],
    });

    let mut patterns = Table::new(&[("count", true), ("pattern", false), ("example", false)]);
    for e in &r.top_error_patterns {
        patterns.rows.push(vec![
            number(e.count),
            Cell::Code(e.pattern.clone()),
            Cell::Code(e.example.clone()),
        ]);
    }
    sections.push(Section {
        title: "Top error patterns",
        note: None,
        blocks: vec![Block::Table(patterns)],
    });

    let latency_columns = [
        ("requests", true),
        ("p50 ms", true),
        ("p95 ms", true),
        ("p99 ms", true),
    ];
    let mut by_agent = Table::new(&[&[("agent", false)][..], &latency_columns].concat());
    for (agent, l) in &q.by_agent {
        by_agent.rows.push(latency_row(agent, l));
    }
    sections.push(Section {
        title: "Requests",
        note: None,
        blocks: vec![
            Block::Text(format!(
                "{} requests; latency p50 {} ms, p95 {} ms, p99 {} ms.",
                q.count,
                fmt_num(q.latency_ms.p50),
                fmt_num(q.latency_ms.p95),
                fmt_num(q.latency_ms.p99)
            )),
            Block::Table(by_agent),
        ],
    });
    let mut by_path = Table::new(&[&[("path", false)][..], &latency_columns].concat());
    for pl in &q.by_path {
        by_path.rows.push(latency_row(&pl.path, &pl.latency));
    }
    sections.push(Section {
        title: "Most requested paths",
        note: None,
        blocks: vec![Block::Table(by_path)],
    });

    let mut slow = Table::new(&[
        ("time", false),
        ("agent", false),
        ("ms", true),
        ("message", false),
    ]);
    for e in &q.slow {
        slow.rows.push(vec![
            Cell::Text(e["timestamp"].as_str().unwrap_or("").to_string()),
            Cell::Text(e["agent"].as_str().unwrap_or("").to_string()),
            number(&e["fields"]["response_time_ms"]),
            Cell::Code(e["message"].as_str().unwrap_or("").to_string()),
        ]);
    }
    sections.push(Section {
        title: "Slowest requests",
        note: None,
        blocks: vec![Block::Table(slow)],
    });

    let a = &r.auth;
    let mut ips = Table::new(&[("suspicious IP", false), ("failed logins", true)]);
    for ip in &a.suspicious_ips {
        ips.rows
            .push(vec![Cell::Text(ip.ip.clone()), number(ip.failures)]);
    }
    sections.push(Section {
        title: "Logins",
        note: None,
        blocks: vec![
            Block::Text(format!(
                "{} succeeded, {} failed, success rate {}.",
                a.succeeded,
                a.failed,
                a.success_rate
                    .map_or("–".into(), |x| format!("{:.1}%", x * 100.0))
            )),
            Block::Table(ips),
        ],
    });

    sections.push(Section {
        title: "Database errors",
        note: None,
        blocks: vec![Block::Text(r.database_errors.to_string())],
    });

    if !r.partial.is_empty() {
        sections.push(Section {
            title: "Partial answers",
            note: None,
            blocks: vec![Block::List(r.partial.clone())],
        });
    }

    Document {
        start: &r.range.start,
        end: &r.range.end,
        figures,
        sections,
    }
}
