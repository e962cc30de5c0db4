//! The report in Markdown: the [`Document`] spelled as headings, tables and lists.

use std::fmt::Write;

use crate::document::{document, Block, Cell, Document, Table};
use crate::{fmt_change, Report};

/// Escapes a table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn table(s: &mut String, t: &Table) {
    let heads: Vec<&str> = t.columns.iter().map(|c| c.0).collect();
    let rules: Vec<&str> = t
        .columns
        .iter()
        .map(|c| if c.1 { "---:" } else { "---" })
        .collect();
    let _ = writeln!(s, "| {} |\n| {} |", heads.join(" | "), rules.join(" | "));
    for row in &t.rows {
        let cells: Vec<String> = row
            .iter()
            .map(|c| match c {
                Cell::Text(t) | Cell::Number(t) | Cell::Code(t) => cell(t),
                Cell::Change(x) => fmt_change(*x),
                Cell::Strong(t) => format!("**{}**", cell(t)),
            })
            .collect();
        let _ = writeln!(s, "| {} |", cells.join(" | "));
    }
}

/// Renders a report as Markdown.
pub fn render_markdown(r: &Report) -> String {
    render(&document(r))
}

fn render(d: &Document) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Log report\n\n{} → {}\n", d.start, d.end);
    let figures: Vec<String> = d
        .figures
        .iter()
        .map(|(label, value)| format!("**{value}** {label}"))
        .collect();
    let _ = writeln!(s, "{}.", figures.join(", "));
    for section in &d.sections {
        match &section.note {
            Some(note) => {
                let _ = writeln!(s, "\n## {} ({note})", section.title);
            }
            None => {
                let _ = writeln!(s, "\n## {}", section.title);
            }
        }
        for block in &section.blocks {
            s.push('\n');
            match block {
                Block::Text(text) => {
                    let _ = writeln!(s, "{text}");
                }
                Block::Nothing(text) => {
                    let _ = writeln!(s, "{text}");
                }
                Block::Table(t) => table(&mut s, t),
                Block::ErrorChart(series) => {
                    let mut t = Table {
                        columns: vec![("from", false), ("errors", true)],
                        rows: Vec::new(),
                    };
                    for b in &series.buckets {
                        t.rows.push(vec![
                            Cell::Text(b.t.clone()),
                            Cell::Number(b.count.to_string()),
                        ]);
                    }
                    table(&mut s, &t);
                }
                Block::List(items) => {
                    for item in items {
                        let _ = writeln!(s, "- {}", cell(item));
                    }
                }
            }
        }
    }
    s
}
