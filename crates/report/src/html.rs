//! The report as one self-contained HTML file: the [`Document`] with inline CSS and SVG, no
//! script, nothing fetched from elsewhere.

use std::fmt::Write;

use crate::document::{document, Block, Cell, Document, Table};
use crate::svg::{error_chart, escape};
use crate::{fmt_change, Report};

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

fn table(s: &mut String, t: &Table) {
    s.push_str("<table><tr>");
    for (name, numeric) in &t.columns {
        let class = if *numeric { " class=\"n\"" } else { "" };
        let _ = write!(s, "<th{class}>{}</th>", escape(name));
    }
    s.push_str("</tr>");
    for row in &t.rows {
        s.push_str("<tr>");
        for c in row {
            match c {
                Cell::Text(t) => {
                    let _ = write!(s, "<td>{}</td>", escape(t));
                }
                Cell::Number(t) => {
                    let _ = write!(s, "<td class=\"n\">{}</td>", escape(t));
                }
                Cell::Change(x) => s.push_str(&change_cell(*x)),
                Cell::Code(t) => {
                    let _ = write!(s, "<td><code>{}</code></td>", escape(t));
                }
                Cell::Strong(t) => {
                    let _ = write!(s, "<td class=\"anom\">{}</td>", escape(t));
                }
            }
        }
        s.push_str("</tr>");
    }
    s.push_str("</table>");
}

/// Renders a report as one HTML document.
pub fn render_html(r: &Report) -> String {
    render(&document(r))
}

fn render(d: &Document) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>logyard report {start}</title><style>{CSS}</style></head><body><main>\
         <h1>Log report</h1><div class=\"range\">{start} → {end}</div><div class=\"cards\">",
        start = escape(d.start),
        end = escape(d.end)
    );
    for (label, value) in &d.figures {
        let _ = write!(
            s,
            "<div class=\"card\"><b>{}</b><span>{label}</span></div>",
            escape(value)
        );
    }
    s.push_str("</div>");
    for section in &d.sections {
        let _ = write!(s, "<h2>{}", escape(section.title));
        if let Some(note) = &section.note {
            let _ = write!(s, " <span class=\"muted\">({})</span>", escape(note));
        }
        s.push_str("</h2>");
        for block in &section.blocks {
            match block {
                Block::Text(text) => {
                    let _ = write!(s, "<p>{}</p>", escape(text));
                }
                Block::Nothing(text) => {
                    let _ = write!(s, "<p class=\"muted\">{}</p>", escape(text));
                }
                Block::Table(t) => table(&mut s, t),
                Block::ErrorChart(series) => {
                    let _ = write!(s, "<div class=\"chart\">{}</div>", error_chart(series));
                }
                Block::List(items) => {
                    s.push_str("<ul>");
                    for item in items {
                        let _ = write!(s, "<li>{}</li>", escape(item));
                    }
                    s.push_str("</ul>");
                }
            }
        }
    }
    s.push_str("</main></body></html>\n");
    s
}
