//! Aligned text tables for the terminal.

/// Renders rows under a header, each column as wide as its widest cell; the last column is
/// not padded. Widths count characters, not bytes.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let cols = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(cols) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, cell) in cells.enumerate() {
            if i + 1 < cols {
                text.push_str(cell);
                text.extend(std::iter::repeat_n(
                    ' ',
                    widths[i] - cell.chars().count() + 2,
                ));
            } else {
                text.push_str(cell);
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns() {
        let t = render(
            &["TIME", "LEVEL", "MESSAGE"],
            &[
                vec!["10:00".into(), "ERROR".into(), "disk full".into()],
                vec!["10:01".into(), "INFO".into(), "ok".into()],
            ],
        );
        assert_eq!(
            t,
            "TIME   LEVEL  MESSAGE\n10:00  ERROR  disk full\n10:01  INFO   ok\n"
        );
    }
}
