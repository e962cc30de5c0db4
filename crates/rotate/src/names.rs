//! The names of rotated files: numbered (`app.log.1.gz`) or dated (`app.log-20240115.gz`),
//! in the live file's directory or in `olddir`, and finding the ones that exist.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use chrono::{DateTime, Local};

use crate::rule::RotateRule;

/// Where and how the rotated files of one live file are named.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    /// The directory of rotated files.
    pub dir: PathBuf,
    /// The live file name without the kept extension.
    pub base: String,
    /// The kept extension (`extension .log`), or empty.
    pub ext: String,
    /// The compression extension in use, or empty.
    pub comp: String,
}

/// A rotated file found on disk.
#[derive(Debug, Clone)]
pub(crate) struct Archive {
    pub path: PathBuf,
    /// The number of a numbered name.
    pub number: Option<u64>,
    /// The name ends with a compression extension.
    pub compressed: bool,
    pub len: u64,
    pub mtime: SystemTime,
}

/// Compression extensions recognised on existing archives whatever the rule says.
const KNOWN_COMP: [&str; 2] = [".gz", ".zst"];

impl Names {
    /// Computes the names for `live` under `rule`.
    pub fn new(rule: &RotateRule, live: &Path) -> Names {
        let parent = live.parent().unwrap_or(Path::new("."));
        let dir = match &rule.olddir {
            Some(d) if d.is_absolute() => d.clone(),
            Some(d) => parent.join(d),
            None => parent.to_path_buf(),
        };
        let mut base = live
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut ext = String::new();
        if let Some(e) = &rule.extension {
            if !e.is_empty() && base.len() > e.len() && base.ends_with(e.as_str()) {
                base.truncate(base.len() - e.len());
                ext = e.clone();
            }
        }
        Names {
            dir,
            base,
            ext,
            comp: rule.active_compress_ext().to_string(),
        }
    }

    /// `dir/base.N<ext>`, uncompressed.
    pub fn numbered(&self, n: u64) -> PathBuf {
        self.dir.join(format!("{}.{}{}", self.base, n, self.ext))
    }

    /// `dir/base.N<ext><comp>`.
    pub fn numbered_comp(&self, n: u64) -> PathBuf {
        self.dir
            .join(format!("{}.{}{}{}", self.base, n, self.ext, self.comp))
    }

    /// `dir/base<date><ext>`, uncompressed.
    pub fn dated(&self, date: &str) -> PathBuf {
        self.dir.join(format!("{}{}{}", self.base, date, self.ext))
    }

    /// Returns `path` with the compression extension added.
    pub fn with_comp(&self, path: &Path) -> PathBuf {
        let mut s = path.as_os_str().to_owned();
        s.push(&self.comp);
        PathBuf::from(s)
    }

    /// Splits a file name into (stem, compressed) when it ends with a compression extension.
    fn strip_comp<'a>(&self, name: &'a str) -> (&'a str, bool) {
        let mut exts: Vec<&str> = KNOWN_COMP.to_vec();
        if !self.comp.is_empty() {
            exts.insert(0, &self.comp);
        }
        for e in exts {
            if let Some(s) = name.strip_suffix(e) {
                return (s, true);
            }
        }
        (name, false)
    }

    /// Tells whether a file name is a rotated file of this live file; returns its number
    /// for numbered names.
    fn parse(&self, name: &str, date_format: Option<&str>) -> Option<(Option<u64>, bool)> {
        let (stem, compressed) = self.strip_comp(name);
        let stem = stem.strip_suffix(self.ext.as_str())?;
        let rest = stem.strip_prefix(self.base.as_str())?;
        match date_format {
            Some(f) => date_matches(f, rest).then_some((None, compressed)),
            None => {
                let digits = rest.strip_prefix('.')?;
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                Some((digits.parse().ok(), compressed))
            }
        }
    }

    /// Tells whether a file name in the rotation directory is an archive of this live file.
    pub fn is_archive_name(&self, name: &str, date_format: Option<&str>) -> bool {
        self.parse(name, date_format).is_some()
    }

    /// Lists the rotated files that exist, numbered ones by number, dated ones by name.
    pub fn list(&self, date_format: Option<&str>) -> io::Result<Vec<Archive>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some((number, compressed)) = self.parse(name, date_format) else {
                continue;
            };
            let meta = match entry.metadata() {
                Ok(m) if m.is_file() => m,
                _ => continue,
            };
            out.push(Archive {
                path: entry.path(),
                number,
                compressed,
                len: meta.len(),
                mtime: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            });
        }
        out.sort_by(|a, b| (a.number, a.path.file_name()).cmp(&(b.number, b.path.file_name())));
        Ok(out)
    }
}

/// Formats `format` at time `t` in local time.
pub(crate) fn format_date(format: &str, t: DateTime<Local>) -> String {
    t.format(format).to_string()
}

/// Tells whether `s` is a possible expansion of the dateext `format`.
pub(crate) fn date_matches(format: &str, s: &str) -> bool {
    let mut f = format.chars().peekable();
    let mut rest = s;
    while let Some(c) = f.next() {
        if c == '%' {
            let width = match f.next() {
                Some('Y') => Some(4),
                Some('m' | 'd' | 'H' | 'M' | 'S' | 'V') => Some(2),
                Some('s') => None,
                _ => return false,
            };
            match width {
                Some(w) => {
                    if rest.len() < w || !rest.as_bytes()[..w].iter().all(u8::is_ascii_digit) {
                        return false;
                    }
                    rest = &rest[w..];
                }
                None => {
                    let n = rest.bytes().take_while(u8::is_ascii_digit).count();
                    if n == 0 {
                        return false;
                    }
                    rest = &rest[n..];
                }
            }
        } else {
            match rest.strip_prefix(c) {
                Some(r) => rest = r,
                None => return false,
            }
        }
    }
    rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_match_their_format() {
        assert!(date_matches("-%Y%m%d", "-20240115"));
        assert!(!date_matches("-%Y%m%d", "-2024011"));
        assert!(!date_matches("-%Y%m%d", ".1"));
        assert!(date_matches(".%Y-%m-%d_%s", ".2024-01-15_1705312800"));
        assert!(crate::rule::check_date_format("-%Y%m%d").is_ok());
        assert!(crate::rule::check_date_format("-%b").is_err());
    }

    #[test]
    fn numbered_names_with_extension() {
        let mut rule = RotateRule::new(vec!["/x/web.log".into()]);
        rule.extension = Some(".log".into());
        let n = Names::new(&rule, Path::new("/x/web.log"));
        assert_eq!(n.numbered(1), PathBuf::from("/x/web.1.log"));
        assert_eq!(n.numbered_comp(2), PathBuf::from("/x/web.2.log.gz"));
        assert_eq!(n.parse("web.3.log.gz", None), Some((Some(3), true)));
        assert_eq!(n.parse("web.log", None), None);
    }
}
