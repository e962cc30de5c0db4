//! logrotate's configuration syntax (`/etc/logrotate.conf`, `/etc/logrotate.d/*`), read into
//! [`RotateRule`]s with logrotate's defaults: keep 0, no compression, rename without create,
//! missing files are errors, empty files are rotated.
//!
//! Global directives set the defaults of the blocks that follow; a block names one or more
//! paths or globs (quoted if they hold spaces) before `{`. `include` takes a file or a
//! directory (its files in name order, skipping taboo extensions such as `.dpkg-old`); a
//! relative include is resolved from the including file's directory. A directive logyard
//! does not implement is an error naming it, the file and the line: nothing is ignored.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::RotateError;
use crate::rule::{Compression, CreateSpec, DateExt, Method, RotateRule};

use directives::{directive, Step};

/// Parses a logrotate configuration file and the files it includes.
pub fn parse_logrotate_conf(path: &Path) -> Result<Vec<RotateRule>, RotateError> {
    let mut p = Parser::default();
    let mut globals = Opts::default();
    p.file(path, &mut globals, 0)?;
    Ok(p.rules)
}

/// Parses logrotate configuration text; `origin` names it in errors and anchors relative
/// includes.
pub fn parse_logrotate_str(text: &str, origin: &Path) -> Result<Vec<RotateRule>, RotateError> {
    let mut p = Parser::default();
    let mut globals = Opts::default();
    p.text(text, origin, &mut globals, 0)?;
    Ok(p.rules)
}

/// The options in force: logrotate's defaults, changed by global directives, copied into
/// each block.
#[derive(Debug, Clone)]
pub(super) struct Opts {
    pub(super) rule: RotateRule,
    pub(super) compress: bool,
    pub(super) codec: Compression,
    pub(super) ext: Option<String>,
    pub(super) dateext: bool,
    pub(super) dateformat: String,
    pub(super) dateyesterday: bool,
    pub(super) create: Option<CreateSpec>,
    pub(super) copytruncate: bool,
    pub(super) copy: bool,
    pub(super) taboo: Vec<String>,
}

impl Default for Opts {
    fn default() -> Opts {
        let mut rule = RotateRule::new(Vec::new());
        rule.keep = 0;
        rule.compression = Compression::None;
        rule.method = Method::Rename;
        rule.missing_ok = false;
        rule.if_empty = true;
        Opts {
            rule,
            compress: false,
            codec: Compression::Gzip { level: 6 },
            ext: None,
            dateext: false,
            dateformat: "-%Y%m%d".into(),
            dateyesterday: false,
            create: None,
            copytruncate: false,
            copy: false,
            taboo: [
                ",v",
                ".cfsaved",
                ".disabled",
                ".dpkg-bak",
                ".dpkg-del",
                ".dpkg-dist",
                ".dpkg-new",
                ".dpkg-old",
                ".dpkg-tmp",
                ".rhn-cfg-tmp-*",
                ".rpmnew",
                ".rpmorig",
                ".rpmsave",
                ".swp",
                ".ucf-dist",
                ".ucf-new",
                ".ucf-old",
                "~",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

impl Opts {
    fn build(&self, paths: Vec<String>) -> RotateRule {
        let mut r = self.rule.clone();
        r.name = paths.first().cloned().unwrap_or_default();
        r.paths = paths;
        r.compression = if self.compress {
            self.codec
        } else {
            Compression::None
        };
        r.compress_ext = self
            .ext
            .clone()
            .unwrap_or_else(|| self.codec.default_ext().to_string());
        r.date_ext = self.dateext.then(|| DateExt {
            format: self.dateformat.clone(),
            yesterday: self.dateyesterday,
        });
        r.method = if self.copytruncate {
            Method::CopyTruncate
        } else if self.copy {
            Method::Copy
        } else if let Some(c) = &self.create {
            Method::Create(c.clone())
        } else {
            Method::Rename
        };
        r
    }
}

#[derive(Default)]
struct Parser {
    rules: Vec<RotateRule>,
    seen_paths: BTreeSet<String>,
    open_files: Vec<PathBuf>,
}

/// A block being read.
struct Block {
    paths: Vec<String>,
    opts: Opts,
    line: usize,
}

/// A script being read.
struct Script {
    kind: &'static str,
    body: String,
    line: usize,
}

pub(super) fn syntax(
    file: &Path,
    line: usize,
    message: impl Into<String>,
    hint: impl Into<String>,
) -> RotateError {
    RotateError::Syntax {
        file: file.into(),
        line,
        message: message.into(),
        hint: hint.into(),
    }
}

pub(super) fn unsupported(
    file: &Path,
    line: usize,
    directive: &str,
    hint: impl Into<String>,
) -> RotateError {
    RotateError::Unsupported {
        file: file.into(),
        line,
        directive: directive.into(),
        hint: hint.into(),
    }
}

/// Splits a line into words; quotes group words, `{` and `}` stand alone.
fn tokenize(line: &str, file: &Path, lineno: usize) -> Result<Vec<String>, RotateError> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '{' || c == '}' {
            out.push(c.to_string());
            chars.next();
        } else if c == '"' || c == '\'' {
            chars.next();
            let mut s = String::new();
            loop {
                match chars.next() {
                    Some(q) if q == c => break,
                    Some(x) => s.push(x),
                    None => {
                        return Err(syntax(
                            file,
                            lineno,
                            format!("unterminated quote {c}"),
                            format!("close the quoted path with {c}"),
                        ))
                    }
                }
            }
            out.push(s);
        } else if c == '#' && out.is_empty() {
            break;
        } else {
            let mut s = String::new();
            while let Some(&x) = chars.peek() {
                if x.is_whitespace() || x == '{' || x == '}' {
                    break;
                }
                s.push(x);
                chars.next();
            }
            out.push(s);
        }
    }
    // `size=100k` and `size = 100k` mean `size 100k`.
    if let Some(first) = out.first().cloned() {
        if let Some((k, v)) = first.split_once('=') {
            if k.chars().all(|c| c.is_ascii_alphabetic()) && !k.is_empty() {
                out[0] = k.to_string();
                if !v.is_empty() {
                    out.insert(1, v.to_string());
                }
            }
        } else if out.get(1).map(String::as_str) == Some("=") {
            out.remove(1);
        }
    }
    Ok(out)
}

impl Parser {
    fn file(&mut self, path: &Path, globals: &mut Opts, depth: usize) -> Result<(), RotateError> {
        let text = fs::read_to_string(path).map_err(|e| {
            RotateError::io(
                "read",
                path,
                e,
                "check the path given to --logrotate-conf or include",
            )
        })?;
        let canon = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        if self.open_files.contains(&canon) {
            return Err(syntax(
                path,
                1,
                "include loop",
                "a file must not include itself",
            ));
        }
        self.open_files.push(canon);
        let r = self.text(&text, path, globals, depth);
        self.open_files.pop();
        r
    }

    fn include(
        &mut self,
        target: &str,
        file: &Path,
        line: usize,
        globals: &mut Opts,
        depth: usize,
    ) -> Result<(), RotateError> {
        if depth > 16 {
            return Err(syntax(
                file,
                line,
                "includes nest too deep",
                "check for an include loop",
            ));
        }
        let mut path = PathBuf::from(target);
        if path.is_relative() {
            path = file.parent().unwrap_or(Path::new(".")).join(path);
        }
        let meta = fs::metadata(&path).map_err(|e| {
            syntax(
                file,
                line,
                format!("cannot include {}: {e}", path.display()),
                "fix the path",
            )
        })?;
        if !meta.is_dir() {
            return self.file(&path, globals, depth + 1);
        }
        let mut names: Vec<PathBuf> = fs::read_dir(&path)
            .map_err(|e| {
                syntax(
                    file,
                    line,
                    format!("cannot read {}: {e}", path.display()),
                    "check its permissions",
                )
            })?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        names.sort();
        for p in names {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let taboo = name.starts_with('.')
                || globals.taboo.iter().any(|t| match t.strip_suffix('*') {
                    Some(prefix) => name.contains(prefix),
                    None => name.ends_with(t.as_str()),
                });
            if taboo || !fs::metadata(&p).is_ok_and(|m| m.is_file()) {
                continue;
            }
            self.file(&p, globals, depth + 1)?;
        }
        Ok(())
    }

    fn text(
        &mut self,
        text: &str,
        file: &Path,
        globals: &mut Opts,
        depth: usize,
    ) -> Result<(), RotateError> {
        let mut block: Option<Block> = None;
        let mut script: Option<Script> = None;
        let mut pending: Vec<String> = Vec::new();
        let mut pending_line = 0;
        for (i, raw) in text.lines().enumerate() {
            let lineno = i + 1;
            if let Some(s) = &mut script {
                if raw.trim() == "endscript" {
                    let s = script.take().expect("script");
                    let opts = block.as_mut().map(|b| &mut b.opts).unwrap_or(globals);
                    let slot = match s.kind {
                        "prerotate" => &mut opts.rule.scripts.prerotate,
                        "postrotate" => &mut opts.rule.scripts.postrotate,
                        "firstaction" => &mut opts.rule.scripts.firstaction,
                        _ => &mut opts.rule.scripts.lastaction,
                    };
                    *slot = Some(s.body);
                } else {
                    s.body.push_str(raw);
                    s.body.push('\n');
                }
                continue;
            }
            let mut toks = tokenize(raw, file, lineno)?;
            if toks.is_empty() {
                continue;
            }
            if block.is_none() {
                if let Some(pos) = toks.iter().position(|t| t == "{") {
                    let rest: Vec<String> = toks.split_off(pos + 1);
                    toks.pop();
                    if pending.is_empty() {
                        pending_line = lineno;
                    }
                    pending.extend(toks);
                    if pending.is_empty() {
                        return Err(syntax(
                            file,
                            lineno,
                            "a block without paths",
                            "write the log paths before {, as in /var/log/app.log {",
                        ));
                    }
                    if !rest.is_empty() {
                        return Err(syntax(
                            file,
                            lineno,
                            format!("{:?} after {{", rest.join(" ")),
                            "put each directive on its own line",
                        ));
                    }
                    for p in &pending {
                        if !p.contains(['*', '?', '[']) && !self.seen_paths.insert(p.clone()) {
                            return Err(syntax(
                                file,
                                pending_line,
                                format!("duplicate log entry for {p}"),
                                "each file may be named by one block only",
                            ));
                        }
                    }
                    block = Some(Block {
                        paths: std::mem::take(&mut pending),
                        opts: globals.clone(),
                        line: pending_line,
                    });
                    continue;
                }
                let first = toks[0].chars().next().unwrap_or(' ');
                if !first.is_ascii_alphabetic() || !pending.is_empty() {
                    if toks.iter().any(|t| t == "}") {
                        return Err(syntax(
                            file,
                            lineno,
                            "} without a block",
                            "remove it, or open the block with paths and {",
                        ));
                    }
                    if pending.is_empty() {
                        pending_line = lineno;
                    }
                    pending.extend(toks);
                    continue;
                }
            }
            let closes = toks.last().map(String::as_str) == Some("}");
            if closes {
                toks.pop();
                if block.is_none() {
                    return Err(syntax(
                        file,
                        lineno,
                        "} without a block",
                        "remove it, or open the block with paths and {",
                    ));
                }
            }
            if toks.iter().any(|t| t == "{") {
                return Err(syntax(
                    file,
                    lineno,
                    "{ inside a block",
                    "blocks cannot nest; close the previous block with }",
                ));
            }
            if !toks.is_empty() {
                let in_block = block.is_some();
                let opts = block.as_mut().map(|b| &mut b.opts).unwrap_or(globals);
                match directive(&toks, opts, file, lineno)? {
                    Step::Done => {}
                    Step::Script(kind) => {
                        if closes {
                            return Err(syntax(
                                file,
                                lineno,
                                format!("{kind} ends its block"),
                                "end the script with endscript first",
                            ));
                        }
                        script = Some(Script {
                            kind,
                            body: String::new(),
                            line: lineno,
                        });
                    }
                    Step::Include(target) => {
                        if in_block {
                            return Err(syntax(
                                file,
                                lineno,
                                "include inside a block",
                                "move include outside of { }",
                            ));
                        }
                        self.include(&target, file, lineno, globals, depth)?;
                    }
                }
            }
            if closes {
                let b = block.take().expect("block");
                let rule = b.opts.build(b.paths);
                rule.validate()
                    .map_err(|e| syntax(file, b.line, e.to_string(), "fix the block"))?;
                self.rules.push(rule);
            }
        }
        if let Some(s) = script {
            return Err(syntax(
                file,
                s.line,
                format!("{} is not ended", s.kind),
                "add a line with endscript",
            ));
        }
        if let Some(b) = block {
            return Err(syntax(
                file,
                b.line,
                "block is not closed",
                "add a line with } at its end",
            ));
        }
        if !pending.is_empty() {
            return Err(syntax(
                file,
                pending_line,
                format!("paths {:?} without a block", pending.join(" ")),
                "follow them with { and the directives, then }",
            ));
        }
        Ok(())
    }
}

mod directives;

#[cfg(test)]
mod tests;
