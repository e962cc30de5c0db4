//! The errors-over-time chart, drawn as inline SVG (no script, no external resource).

use std::fmt::Write;

use crate::ErrorSeries;

/// Escapes text for XML and HTML.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Draws a bar chart of the errors per bucket, with a y axis and a few time labels.
pub(crate) fn error_chart(series: &ErrorSeries) -> String {
    const W: f64 = 960.0;
    const H: f64 = 240.0;
    const LEFT: f64 = 48.0;
    const BOTTOM: f64 = 28.0;
    const TOP: f64 = 12.0;
    let n = series.buckets.len().max(1) as f64;
    let max = series
        .buckets
        .iter()
        .map(|b| b.count)
        .max()
        .unwrap_or(0)
        .max(1);
    let plot_w = W - LEFT - 8.0;
    let plot_h = H - BOTTOM - TOP;
    let bar_w = plot_w / n;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="100%" role="img" aria-label="errors per {step}">"#,
        step = escape(&series.step)
    );
    // Grid lines and y labels at 0, max/2, max.
    for frac in [0.0, 0.5, 1.0] {
        let y = TOP + plot_h * (1.0 - frac);
        let v = (max as f64 * frac).round() as u64;
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{x2:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{tx:.1}" y="{ty:.1}" font-size="11" text-anchor="end" fill="#555">{v}</text>"##,
            x2 = W - 8.0,
            tx = LEFT - 6.0,
            ty = y + 4.0
        );
    }
    for (i, b) in series.buckets.iter().enumerate() {
        let h = plot_h * b.count as f64 / max as f64;
        let x = LEFT + i as f64 * bar_w;
        let _ = write!(
            s,
            r##"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="#d9534f"><title>{t}: {c}</title></rect>"##,
            y = TOP + plot_h - h,
            w = (bar_w - 1.0).max(0.5),
            t = escape(&b.t),
            c = b.count
        );
    }
    // About six time labels along the bottom.
    let every = (series.buckets.len() / 6).max(1);
    for (i, b) in series.buckets.iter().enumerate().step_by(every) {
        let x = LEFT + i as f64 * bar_w;
        let label = b.t.get(5..16).unwrap_or(&b.t).replace('T', " ");
        let _ = write!(
            s,
            r##"<text x="{x:.1}" y="{y:.1}" font-size="11" fill="#555">{l}</text>"##,
            y = H - 8.0,
            l = escape(&label)
        );
    }
    s.push_str("</svg>");
    s
}
