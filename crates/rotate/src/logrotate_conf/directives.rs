//! The directives of logrotate's syntax: each one changes the options in force, starts a
//! script or an include, or is refused with a hint.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{syntax, unsupported, Opts};
use crate::error::RotateError;
use crate::rule::{parse_size, Compression, CreateSpec, Interval};

/// What a directive asks the parser to do next.
pub(super) enum Step {
    Done,
    Script(&'static str),
    Include(String),
}

const SUPPORTED: &str = "daily weekly monthly yearly hourly size minsize maxsize maxage rotate compress nocompress delaycompress nodelaycompress compresscmd uncompresscmd compressext compressoptions copytruncate nocopytruncate copy nocopy create nocreate missingok nomissingok notifempty ifempty dateext nodateext dateformat dateyesterday extension olddir noolddir su prerotate postrotate firstaction lastaction endscript sharedscripts nosharedscripts start tabooext include";

pub(super) fn directive(
    toks: &[String],
    o: &mut Opts,
    file: &Path,
    line: usize,
) -> Result<Step, RotateError> {
    let name = toks[0].as_str();
    let args = &toks[1..];
    let count = |min: usize, max: usize, usage: &str| {
        if args.len() < min || args.len() > max {
            Err(syntax(
                file,
                line,
                format!(
                    "{name} takes {}",
                    if min == max {
                        format!("{min} argument(s)")
                    } else {
                        format!("{min} to {max} arguments")
                    }
                ),
                format!("write it as: {usage}"),
            ))
        } else {
            Ok(())
        }
    };
    let number = |usage: &str| -> Result<u64, RotateError> {
        count(1, 1, usage)?;
        args[0].parse::<u64>().map_err(|_| {
            syntax(
                file,
                line,
                format!("{name}: {:?} is not a whole number", args[0]),
                format!("write it as: {usage}"),
            )
        })
    };
    let size = |usage: &str| -> Result<u64, RotateError> {
        count(1, 1, usage)?;
        parse_size(&args[0]).map_err(|m| {
            syntax(
                file,
                line,
                format!("{name}: {m}"),
                format!("write it as: {usage}"),
            )
        })
    };
    let r = &mut o.rule;
    match name {
        "hourly" | "daily" | "monthly" | "yearly" | "weekly" => {
            if name == "weekly" && !args.is_empty() {
                return Err(unsupported(file, line, "weekly with a weekday", "write weekly without an argument"));
            }
            count(0, 0, name)?;
            r.every = Some(match name {
                "hourly" => Interval::Hourly,
                "daily" => Interval::Daily,
                "weekly" => Interval::Weekly,
                "monthly" => Interval::Monthly,
                _ => Interval::Yearly,
            });
            r.size = None;
        }
        "size" => {
            r.size = Some(size("size 100k")?);
            r.every = None;
        }
        "minsize" => r.min_size = Some(size("minsize 1M")?),
        "maxsize" => r.max_size = Some(size("maxsize 100M")?),
        "maxage" => r.max_age = Some(Duration::from_secs(number("maxage 30")? * 86_400)),
        "rotate" => {
            if args.first().is_some_and(|a| a.starts_with('-')) {
                return Err(unsupported(file, line, "rotate -1", "keeping every archive is not supported; write a large count such as rotate 10000"));
            }
            r.keep = number("rotate 5")? as usize;
        }
        "start" => r.start = number("start 1")?,
        "compress" | "nocompress" => {
            count(0, 0, name)?;
            o.compress = name == "compress";
        }
        "delaycompress" | "nodelaycompress" => {
            count(0, 0, name)?;
            r.delay_compress = name == "delaycompress";
        }
        "compresscmd" => {
            count(1, 1, "compresscmd /usr/bin/zstd")?;
            let base = Path::new(&args[0]).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            o.codec = match base.as_str() {
                "gzip" | "pigz" => Compression::Gzip { level: 6 },
                "zstd" | "pzstd" => Compression::Zstd { level: 3 },
                _ => return Err(unsupported(file, line, &format!("compresscmd {}", args[0]), "only gzip and zstd are built in; use compresscmd gzip or compresscmd zstd")),
            };
        }
        "uncompresscmd" => {
            count(1, 1, "uncompresscmd /usr/bin/unzstd")?;
            let base = Path::new(&args[0]).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if !["gunzip", "gzip", "zcat", "unpigz", "zstd", "unzstd", "zstdcat"].contains(&base.as_str()) {
                return Err(unsupported(file, line, &format!("uncompresscmd {}", args[0]), "only gzip and zstd are built in"));
            }
        }
        "compressext" => {
            count(1, 1, "compressext .gz")?;
            o.ext = Some(args[0].clone());
        }
        "compressoptions" => {
            for a in args {
                let level = a.strip_prefix('-').and_then(|l| l.parse::<i32>().ok());
                match (level, &mut o.codec) {
                    (Some(l), Compression::Gzip { level }) if (1..=9).contains(&l) => *level = l as u32,
                    (Some(l), Compression::Zstd { level }) if (1..=19).contains(&l) => *level = l,
                    _ => return Err(unsupported(file, line, &format!("compressoptions {a}"), "only a level is supported: -1 to -9 for gzip, -1 to -19 for zstd (set compresscmd first)")),
                }
            }
        }
        "copytruncate" | "nocopytruncate" => {
            count(0, 0, name)?;
            o.copytruncate = name == "copytruncate";
        }
        "copy" | "nocopy" => {
            count(0, 0, name)?;
            o.copy = name == "copy";
        }
        "create" => {
            count(0, 3, "create 0640 owner group")?;
            let mut spec = CreateSpec::default();
            let bad = |m: String| syntax(file, line, m, "write it as: create 0640 owner group");
            if let Some(m) = args.first() {
                spec.mode = Some(crate::config::parse_mode(m).map_err(bad)?);
            }
            if let Some(u) = args.get(1) {
                spec.uid = Some(crate::users::uid(u).map_err(bad)?);
            }
            if let Some(g) = args.get(2) {
                spec.gid = Some(crate::users::gid(g).map_err(bad)?);
            }
            o.create = Some(spec);
        }
        "nocreate" => {
            count(0, 0, name)?;
            o.create = None;
        }
        "missingok" | "nomissingok" => {
            count(0, 0, name)?;
            r.missing_ok = name == "missingok";
        }
        "notifempty" | "ifempty" => {
            count(0, 0, name)?;
            r.if_empty = name == "ifempty";
        }
        "dateext" | "nodateext" => {
            count(0, 0, name)?;
            o.dateext = name == "dateext";
        }
        "dateformat" => {
            count(1, 1, "dateformat -%Y%m%d")?;
            crate::rule::check_date_format(&args[0]).map_err(|m| syntax(file, line, m, "write it as: dateformat -%Y%m%d"))?;
            o.dateformat = args[0].clone();
        }
        "dateyesterday" => {
            count(0, 0, name)?;
            o.dateyesterday = true;
        }
        "extension" => {
            count(1, 1, "extension .log")?;
            r.extension = Some(args[0].clone());
        }
        "olddir" => {
            count(1, 1, "olddir /var/log/old")?;
            r.olddir = Some(PathBuf::from(&args[0]));
        }
        "noolddir" => r.olddir = None,
        // logyard rotates as the user it runs as; `su` only quiets logrotate's own checks.
        "su" => count(0, 2, "su user group")?,
        "sharedscripts" | "nosharedscripts" => {
            count(0, 0, name)?;
            r.scripts.shared = name == "sharedscripts";
        }
        "prerotate" | "postrotate" | "firstaction" | "lastaction" => {
            if !args.is_empty() {
                return Err(syntax(file, line, format!("text after {name}"), format!("start the script on the line after {name} and end it with endscript")));
            }
            return Ok(Step::Script(match name {
                "prerotate" => "prerotate",
                "postrotate" => "postrotate",
                "firstaction" => "firstaction",
                _ => "lastaction",
            }));
        }
        "endscript" => return Err(syntax(file, line, "endscript without a script", "remove it, or open the script with postrotate")),
        "tabooext" => {
            let (add, list) = match args.first().map(String::as_str) {
                Some("+") => (true, &args[1..]),
                _ => (false, args),
            };
            let items: Vec<String> = list.iter().flat_map(|a| a.split(',')).filter(|s| !s.is_empty()).map(String::from).collect();
            if add {
                o.taboo.extend(items);
            } else {
                o.taboo = items;
            }
        }
        "include" => {
            count(1, 1, "include /etc/logrotate.d")?;
            return Ok(Step::Include(args[0].clone()));
        }
        "mail" | "nomail" | "mailfirst" | "maillast" => return Err(unsupported(file, line, name, "logyard does not send rotated logs by mail; remove it (alerts and reports cover notification)")),
        "shred" | "noshred" | "shredcycles" => return Err(unsupported(file, line, name, "shredding is not supported; remove it")),
        "renamecopy" | "norenamecopy" => return Err(unsupported(file, line, name, "use olddir on the same filesystem, or copytruncate")),
        "createolddir" | "nocreateolddir" => return Err(unsupported(file, line, name, "create the olddir once by hand (mkdir -p) and remove the directive")),
        "minage" | "datehourago" | "preremove" | "ignoreduplicates" | "taboopat" | "addextension" | "allowcompress" => {
            return Err(unsupported(file, line, name, "remove it; see ROTATE.md for the supported directives"))
        }
        _ if name.starts_with(['/', '"', '\'', '~', '.', '*']) => {
            return Err(syntax(file, line, format!("path {name} inside a block"), "close the previous block with } before naming more files"))
        }
        _ => return Err(unsupported(file, line, name, format!("it is not a logrotate directive logyard knows; check the spelling; supported: {SUPPORTED}"))),
    }
    Ok(Step::Done)
}
