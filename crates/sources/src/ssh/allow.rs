//! The allow-list: the one place that turns a requested operation into a remote command
//! line.
//!
//! A remote host only ever receives a command built here from a typed [`RemoteCommand`]:
//! `docker ps`, `docker logs` (with `--since`, `--timestamps`, `--tail`; standard error
//! joined to the output), `docker inspect`,
//! `docker stats --no-stream`, and `tail`/`cat` of the paths configured for the host.
//! Every argument is validated (container names `[A-Za-z0-9][A-Za-z0-9_.-]*`, paths among
//! the configured ones, numbers as numbers) and shell-quoted; anything else is refused with
//! a [`Refused`] error before a connection is opened. Text typed by a person
//! (`logyard remote run …`) goes through [`AllowList::parse`], which only knows the same
//! operations.

use std::fmt;

/// The longest container name or id accepted (Docker's own names are far shorter).
pub const MAX_CONTAINER_NAME: usize = 255;

/// The commands a remote host may be asked to run, as shown in refusals and docs.
pub const ALLOWED: &str = "docker ps | docker logs [--since TIME] [--timestamps] [--tail N] NAME | \
docker inspect NAME… | docker stats --no-stream [NAME…] | tail -c +N PATH | tail -n N PATH | cat PATH \
(PATH among the host's configured `paths`)";

/// A request that the allow-list refuses: nothing was sent to the host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refused: {reason}; nothing was sent. Allowed: {ALLOWED}")]
pub struct Refused {
    /// Why the request is refused.
    pub reason: String,
}

fn refuse(reason: impl Into<String>) -> Refused {
    Refused {
        reason: reason.into(),
    }
}

/// A read-only operation on a remote host; [`AllowList::command_line`] turns it into the
/// command sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteCommand {
    /// `docker ps --all --no-trunc --format '{{json .}}'`: every container, one JSON
    /// object per line.
    DockerPs,
    /// `docker logs [--timestamps] [--since TIME] [--tail N] NAME 2>&1` (the container's
    /// standard error joined to its output).
    DockerLogs {
        /// The container's name or id.
        container: String,
        /// Only lines at or after this time (ns since the epoch).
        since: Option<i64>,
        /// Prefix each line with Docker's RFC 3339 nanosecond stamp.
        timestamps: bool,
        /// Only the last this many lines.
        tail: Option<u32>,
    },
    /// `docker inspect NAME…`: a JSON array of the containers' details.
    DockerInspect {
        /// The containers' names or ids (at least one).
        containers: Vec<String>,
    },
    /// `docker stats --no-stream --no-trunc --format '{{json .}}' [NAME…]`: one sample.
    DockerStats {
        /// The containers (all running ones when empty).
        containers: Vec<String>,
    },
    /// `tail -c +N PATH`: the file from byte `from` (0-based) to its end.
    TailFrom {
        /// A configured path.
        path: String,
        /// The first byte to print (0 = the whole file).
        from: u64,
    },
    /// `tail -n N PATH`: the last lines of the file.
    TailLines {
        /// A configured path.
        path: String,
        /// How many lines.
        lines: u32,
    },
    /// `cat PATH`: the whole file.
    Cat {
        /// A configured path.
        path: String,
    },
}

/// The operations allowed on one host: the fixed commands, and `tail`/`cat` of its
/// configured paths only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    paths: Vec<String>,
}

impl AllowList {
    /// Builds the list over the host's configured paths; a path that is not absolute,
    /// holds `..` or a character outside `[A-Za-z0-9_./@%+=:,-]` is refused.
    pub fn new(paths: &[String]) -> Result<AllowList, Refused> {
        for p in paths {
            check_path_text(p)?;
        }
        Ok(AllowList {
            paths: paths.to_vec(),
        })
    }

    /// Returns the configured paths.
    pub fn paths(&self) -> &[String] {
        &self.paths
    }

    /// Returns the command line sent for an operation, every argument validated and
    /// quoted, or why it is refused.
    pub fn command_line(&self, cmd: &RemoteCommand) -> Result<String, Refused> {
        self.build(cmd, true)
    }

    /// Builds the command line, checking every argument when `check` is set (unchecked
    /// lines are for messages only, never sent).
    fn build(&self, cmd: &RemoteCommand, check: bool) -> Result<String, Refused> {
        let container_ok = |c: &str| if check { check_container(c) } else { Ok(()) };
        let path_ok = |p: &str| if check { self.check_path(p) } else { Ok(()) };
        let mut words: Vec<String> = Vec::new();
        let mut push = |w: &str| words.push(quote(w));
        match cmd {
            RemoteCommand::DockerPs => {
                for w in [
                    "docker",
                    "ps",
                    "--all",
                    "--no-trunc",
                    "--format",
                    "{{json .}}",
                ] {
                    push(w);
                }
            }
            RemoteCommand::DockerLogs {
                container,
                since,
                timestamps,
                tail,
            } => {
                container_ok(container)?;
                push("docker");
                push("logs");
                if *timestamps {
                    push("--timestamps");
                }
                if let Some(ns) = since {
                    push("--since");
                    push(&docker_time(*ns));
                }
                if let Some(n) = tail {
                    push("--tail");
                    push(&n.to_string());
                }
                push(container);
                // Containers write to both streams, and `docker logs` gives each on its
                // own: join them so that none is lost. The suffix is fixed text.
                words.push("2>&1".into());
            }
            RemoteCommand::DockerInspect { containers } => {
                if containers.is_empty() {
                    return Err(refuse("docker inspect needs at least one container"));
                }
                push("docker");
                push("inspect");
                for c in containers {
                    container_ok(c)?;
                    push(c);
                }
            }
            RemoteCommand::DockerStats { containers } => {
                for w in [
                    "docker",
                    "stats",
                    "--no-stream",
                    "--no-trunc",
                    "--format",
                    "{{json .}}",
                ] {
                    push(w);
                }
                for c in containers {
                    container_ok(c)?;
                    push(c);
                }
            }
            RemoteCommand::TailFrom { path, from } => {
                path_ok(path)?;
                push("tail");
                push("-c");
                push(&format!("+{}", from.saturating_add(1)));
                push(path);
            }
            RemoteCommand::TailLines { path, lines } => {
                path_ok(path)?;
                push("tail");
                push("-n");
                push(&lines.to_string());
                push(path);
            }
            RemoteCommand::Cat { path } => {
                path_ok(path)?;
                push("cat");
                push(path);
            }
        }
        Ok(words.join(" "))
    }

    /// Parses a command typed as words (`docker logs --since 1h web`) into an operation of
    /// the allow-list, or refuses it. Times are RFC 3339 or a duration before `now_ns`.
    pub fn parse(&self, words: &[String], now_ns: i64) -> Result<RemoteCommand, Refused> {
        let text = words.join(" ");
        let w: Vec<&str> = words.iter().map(String::as_str).collect();
        let cmd = match w.as_slice() {
            ["docker", "ps", flags @ ..]
                if flags
                    .iter()
                    .all(|f| matches!(*f, "-a" | "--all" | "--no-trunc")) =>
            {
                RemoteCommand::DockerPs
            }
            ["docker", "logs", rest @ ..] => parse_logs(rest, now_ns)?,
            ["docker", "inspect", names @ ..] => RemoteCommand::DockerInspect {
                containers: names.iter().map(|s| s.to_string()).collect(),
            },
            ["docker", "stats", rest @ ..] if rest.contains(&"--no-stream") => {
                RemoteCommand::DockerStats {
                    containers: rest
                        .iter()
                        .filter(|s| !matches!(**s, "--no-stream" | "--no-trunc"))
                        .map(|s| s.to_string())
                        .collect(),
                }
            }
            ["docker", "stats", ..] => {
                return Err(refuse(
                    "docker stats streams until stopped: add --no-stream",
                ))
            }
            ["tail", "-c", n, path] => RemoteCommand::TailFrom {
                path: path.to_string(),
                from: n
                    .strip_prefix('+')
                    .and_then(|n| n.parse::<u64>().ok())
                    .filter(|n| *n >= 1)
                    .map(|n| n - 1)
                    .ok_or_else(|| refuse(format!("tail -c takes +N (N ≥ 1), not {n:?}")))?,
            },
            ["tail", "-n", n, path] => RemoteCommand::TailLines {
                path: path.to_string(),
                lines: n
                    .parse()
                    .map_err(|_| refuse(format!("tail -n takes a number, not {n:?}")))?,
            },
            ["tail", path] => RemoteCommand::TailLines {
                path: path.to_string(),
                lines: 10,
            },
            ["cat", path] => RemoteCommand::Cat {
                path: path.to_string(),
            },
            _ => {
                return Err(refuse(format!(
                    "{text:?} is not an allowed read-only command"
                )))
            }
        };
        self.command_line(&cmd)?;
        Ok(cmd)
    }

    fn check_path(&self, path: &str) -> Result<(), Refused> {
        if self.paths.iter().any(|p| p == path) {
            return Ok(());
        }
        Err(refuse(format!(
            "{path:?} is not among the host's configured paths ({})",
            if self.paths.is_empty() {
                "none".to_string()
            } else {
                self.paths.join(", ")
            }
        )))
    }
}

/// Parses the arguments of `docker logs`.
fn parse_logs(rest: &[&str], now_ns: i64) -> Result<RemoteCommand, Refused> {
    let mut since = None;
    let mut timestamps = false;
    let mut tail = None;
    let mut container = None;
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match *a {
            "-t" | "--timestamps" => timestamps = true,
            "--since" => {
                let v = it.next().ok_or_else(|| refuse("--since needs a time"))?;
                since = Some(
                    logyard_model::parse_time(v, now_ns)
                        .map_err(|e| refuse(format!("--since: {e}")))?,
                );
            }
            "-n" | "--tail" => {
                let v = it.next().ok_or_else(|| refuse("--tail needs a number"))?;
                tail = Some(
                    v.parse()
                        .map_err(|_| refuse(format!("--tail takes a number, not {v:?}")))?,
                );
            }
            other if other.starts_with('-') => {
                return Err(refuse(format!("docker logs {other} is not allowed")))
            }
            other if container.is_none() => container = Some(other.to_string()),
            other => {
                return Err(refuse(format!(
                    "docker logs takes one container, {other:?} is a second"
                )))
            }
        }
    }
    Ok(RemoteCommand::DockerLogs {
        container: container.ok_or_else(|| refuse("docker logs needs a container"))?,
        since,
        timestamps,
        tail,
    })
}

/// Checks a container name or id: `[A-Za-z0-9][A-Za-z0-9_.-]*`, at most
/// [`MAX_CONTAINER_NAME`] bytes.
pub fn check_container(name: &str) -> Result<(), Refused> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && name.len() <= MAX_CONTAINER_NAME;
    if ok {
        Ok(())
    } else {
        Err(refuse(format!(
            "{name:?} is not a container name ([A-Za-z0-9][A-Za-z0-9_.-]*, at most {MAX_CONTAINER_NAME} characters)"
        )))
    }
}

/// Checks the text of a configured path.
fn check_path_text(path: &str) -> Result<(), Refused> {
    if !path.starts_with('/') {
        return Err(refuse(format!("path {path:?} is not absolute")));
    }
    if path.split('/').any(|c| c == "..") {
        return Err(refuse(format!("path {path:?} holds `..`")));
    }
    if let Some(c) = path
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "_./@%+=:,-".contains(*c)))
    {
        return Err(refuse(format!(
            "path {path:?} holds {c:?}: only [A-Za-z0-9_./@%+=:,-] are allowed"
        )));
    }
    Ok(())
}

/// Formats a time as Docker's `--since` takes it: RFC 3339 UTC with nine fraction digits.
pub fn docker_time(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns)
        .format("%Y-%m-%dT%H:%M:%S%.9fZ")
        .to_string()
}

/// Quotes a word for a POSIX shell: left bare when it holds only `[A-Za-z0-9_./:=+,@%-]`,
/// else put in single quotes with each `'` written `'\''`.
pub fn quote(word: &str) -> String {
    let bare = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./:=+,@%-".contains(c));
    if bare {
        return word.to_string();
    }
    let mut out = String::with_capacity(word.len() + 2);
    out.push('\'');
    for c in word.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

impl fmt::Display for RemoteCommand {
    /// Prints the command line the operation asks for, its arguments quoted but not checked:
    /// for messages and the audit log's entries of refused requests, never sent.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match AllowList::default().build(self, false) {
            Ok(line) => f.write_str(&line),
            Err(e) => write!(f, "<{}>", e.reason),
        }
    }
}

#[cfg(test)]
mod tests;
