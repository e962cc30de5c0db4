//! The report as a document: its headline figures and its sections in order, each made of
//! paragraphs, tables and a chart. This is the one walk of a [`Report`] for people; the
//! Markdown and HTML renderers only spell a [`Document`] in their syntax (JSON is the
//! report itself).

use crate::{fmt_change, fmt_num, ErrorSeries, Latency, Report, LEVEL_ORDER};
use logyard_model::schema::Column;

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

/// A row of entries against the previous period: the name, now, before, the change.
fn count_row(name: &str, now: u64, before: u64, change: Option<f64>) -> Vec<Cell> {
    vec![
        Cell::Text(name.to_string()),
        number(now),
        number(before),
        Cell::Change(change),
    ]
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
        let mut t = Table::new(&[
            ("kind", false),
            (Column::Agent.name(), false),
            ("detail", false),
        ]);
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
    let mut levels = Table::new(&[&[(Column::Level.name(), false)][..], &columns].concat());
    for level in LEVEL_ORDER {
        let (n, b) = (c.by_level.get(level), p.by_level.get(level));
        if n.is_some() || b.is_some() {
            levels.rows.push(count_row(
                level,
                n.copied().unwrap_or(0),
                b.copied().unwrap_or(0),
                p.change_pct.by_level.get(level).copied().flatten(),
            ));
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

    let mut agents = Table::new(&[&[(Column::Agent.name(), false)][..], &columns].concat());
    let mut by_agent: Vec<_> = c.by_agent.iter().collect();
    by_agent.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (agent, n) in by_agent {
        agents.rows.push(count_row(
            agent,
            *n,
            p.by_agent.get(agent).copied().unwrap_or(0),
            p.change_pct.by_agent.get(agent).copied().flatten(),
        ));
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
    let mut by_agent =
        Table::new(&[&[(Column::Agent.name(), false)][..], &latency_columns].concat());
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
        (Column::Agent.name(), false),
        ("ms", true),
        (Column::Message.name(), false),
    ]);
    for e in &q.slow {
        slow.rows.push(vec![
            Cell::Text(
                e[Column::Timestamp.name()]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            ),
            Cell::Text(e[Column::Agent.name()].as_str().unwrap_or("").to_string()),
            number(&e[Column::Fields.name()]["response_time_ms"]),
            Cell::Code(e[Column::Message.name()].as_str().unwrap_or("").to_string()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{render_html, render_markdown, Anomaly, Counts, ErrorPattern, Range};

    fn report() -> Report {
        Report {
            range: Range {
                start: "2024-01-15T00:00:00Z".into(),
                end: "2024-01-16T00:00:00Z".into(),
            },
            counts: Counts {
                total: 12,
                by_level: [("ERROR".to_string(), 5), ("INFO".to_string(), 7)].into(),
                by_agent: [("web|app".to_string(), 12)].into(),
                ..Counts::default()
            },
            top_error_patterns: vec![ErrorPattern {
                pattern: "timeout after <num> ms".into(),
                count: 5,
                example: "timeout after 30 ms <db>".into(),
            }],
            requests: Default::default(),
            auth: Default::default(),
            database_errors: 2,
            anomalies: vec![Anomaly {
                kind: "error_rate".into(),
                agent: "web|app".into(),
                detail: "5 of 12".into(),
            }],
            errors_over_time: Default::default(),
            partial: vec!["a query was cut".into()],
        }
    }

    /// Markdown and HTML are two spellings of one document: the same sections in the same
    /// order, each value escaped for its format.
    #[test]
    fn markdown_and_html_render_the_same_sections() {
        let r = report();
        let titles: Vec<&str> = document(&r).sections.iter().map(|s| s.title).collect();
        assert_eq!(titles.first(), Some(&"Errors over time"));
        assert_eq!(titles.last(), Some(&"Partial answers"));
        let md = render_markdown(&r);
        let md_titles: Vec<&str> = md
            .lines()
            .filter_map(|l| l.strip_prefix("## "))
            .map(|l| l.split(" (").next().unwrap_or(l))
            .collect();
        assert_eq!(md_titles, titles);
        let html = render_html(&r);
        let html_titles: Vec<&str> = html
            .split("<h2>")
            .skip(1)
            .map(|h| h.split(['<', ' ']).next().unwrap_or(h))
            .collect();
        let first_words: Vec<&str> = titles
            .iter()
            .map(|t| t.split(' ').next().unwrap_or(t))
            .collect();
        assert_eq!(html_titles, first_words);
        assert!(md.contains("| web\\|app | 12 | 0 | new |"), "{md}");
        assert!(md.contains("| ERROR | 5 | 0 | new |"), "{md}");
        assert!(md.contains("**12** entries, **5** errors"), "{md}");
        assert!(
            html.contains("<td>web|app</td><td class=\"n\">12</td>"),
            "{html}"
        );
        assert!(html.contains("timeout after 30 ms &lt;db&gt;"), "{html}");
        assert!(
            html.contains("<td class=\"anom\">error_rate</td>"),
            "{html}"
        );
    }
}
