//! The record's column names are spelled in one place: `logyard_model::Column` (and the
//! keys inputs name columns by, in `logyard_parse::roles`). This test reads the code of
//! every crate and of the binary and refuses a string literal equal to a column's name
//! anywhere else, so that a column is renamed or added in one place.
//!
//! Where the same word means something else (an error object's `"message"`, the SSH host of
//! a remote source, the `fields` pipe), the file is listed in [`OTHER_MEANINGS`] with why.

use std::path::{Path, PathBuf};

use logyard_model::Column;

/// The files where the schema is spelled.
const SCHEMA: [&str; 2] = ["crates/model/src/schema.rs", "crates/parse/src/roles.rs"];

/// Files where a column's word means something else: file, word, what it means there.
const OTHER_MEANINGS: &str = "
crates/alert/src/engine.rs               message    the notification's text
crates/api/src/admin.rs                  message    an error of a backup
crates/api/src/analysis.rs               timestamp  when the summary was made
crates/api/src/error.rs                  message    the error object of every answer
crates/api/src/shippers/otlp.rs          message    google.rpc.Status's text
crates/parse/src/fields.rs               agent      a word that is not a key of key=value
crates/parse/src/fields.rs               message    a field name that is kept as written
crates/parse/src/fields.rs               timestamp  a field name that is kept as written
crates/parse/src/formats/nginx_error.rs  host       nginx's Host header
crates/parse/src/grok.rs                 agent      the combined log's user agent
crates/query/src/pipes/fields.rs         fields     the name of the `fields` pipe
crates/query/src/pipes/mod.rs            fields     the name of the `fields` pipe
crates/store/src/storage.rs              host       the node's host name
src/alerts_cmd.rs                        message    an alert's text in the server's answer
src/cli.rs                               message    the error object of the server's answers
src/remote_cmd.rs                        host       the SSH host of a remote source
src/remote_json.rs                       host       the SSH host of a remote source
src/serve.rs                             message    the error object of an answer
";

/// The (file, word) pairs of [`OTHER_MEANINGS`].
fn other_meanings() -> Vec<(&'static str, &'static str)> {
    OTHER_MEANINGS
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            Some((words.next()?, words.next()?))
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            // Test modules kept in folders of their own.
            if path.file_name().is_some_and(|n| n != "tests") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs")
            && path.file_name().is_some_and(|n| n != "tests.rs")
        {
            out.push(path);
        }
    }
}

/// The string literals of a line that are exactly one of `words`.
fn literals<'a>(line: &str, words: &[&'a str]) -> Vec<&'a str> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find('"') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('"') else {
            break;
        };
        if let Some(w) = words.iter().find(|w| **w == &after[..end]) {
            found.push(*w);
        }
        rest = &after[end + 1..];
    }
    found
}

#[test]
fn column_names_are_spelled_in_the_schema_only() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    for krate in std::fs::read_dir(root.join("crates")).unwrap().flatten() {
        rust_files(&krate.path().join("src"), &mut files);
    }
    assert!(
        files.len() > 100,
        "the code was not found under {}",
        root.display()
    );
    let words: Vec<&str> = Column::ALL.iter().map(|c| c.name()).collect();
    let others = other_meanings();
    let mut wrong = Vec::new();
    for path in files {
        let name = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if SCHEMA.contains(&name.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.trim_start();
            // Unit tests sit at the end of their file.
            if code.starts_with("#[cfg(test)]") {
                break;
            }
            if code.starts_with("//") {
                continue;
            }
            for word in literals(line, &words) {
                let other = others.iter().any(|(file, w)| *file == name && *w == word);
                if !other {
                    wrong.push(format!("{name}:{}: \"{word}\" in `{}`", i + 1, code));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "a column's name is spelled outside the schema; name it through \
         logyard_model::Column (an input's key through logyard_parse::roles), or, where the \
         word means something else, list the file in OTHER_MEANINGS with what it means:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn every_other_meaning_is_still_there() {
    // An entry whose word left its file would hide a column name spelled there later.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (file, word) in other_meanings() {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let code: String = text
            .lines()
            .take_while(|l| !l.trim_start().starts_with("#[cfg(test)]"))
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            code.contains(&format!("\"{word}\"")),
            "{file} no longer spells \"{word}\": remove it from OTHER_MEANINGS"
        );
    }
}
