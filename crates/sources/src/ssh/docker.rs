//! Reads the output formats of the Docker CLI: `docker ps --format '{{json .}}'`,
//! `docker stats --no-stream --format '{{json .}}'`, `docker inspect` and the stamps of
//! `docker logs --timestamps`. Unknown keys are ignored and missing ones left empty, so
//! the formats of older and newer Docker versions read alike.

use serde::Deserialize;

/// One container as `docker ps` lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Container {
    /// The container id.
    #[serde(rename = "ID")]
    pub id: String,
    /// Its name(s), comma-separated by Docker when linked.
    #[serde(rename = "Names")]
    pub names: String,
    /// The image.
    #[serde(rename = "Image")]
    pub image: String,
    /// `running`, `exited`, `restarting`, `paused`, `created`, `dead`.
    #[serde(rename = "State")]
    pub state: String,
    /// The human status (`Up 2 hours`, `Exited (1) 5 minutes ago`).
    #[serde(rename = "Status")]
    pub status: String,
}

impl Container {
    /// Returns the container's first name.
    pub fn name(&self) -> &str {
        self.names.split(',').next().unwrap_or("").trim()
    }

    /// Returns true when its logs may grow: running or restarting.
    pub fn is_live(&self) -> bool {
        matches!(self.state.as_str(), "running" | "restarting")
            || (self.state.is_empty() && self.status.starts_with("Up"))
    }
}

/// Parses the lines of `docker ps --format '{{json .}}'`; lines that are not such objects
/// are skipped.
pub fn parse_ps(output: &[u8]) -> Vec<Container> {
    output
        .split(|b| *b == b'\n')
        .filter_map(|l| serde_json::from_slice::<Container>(l).ok())
        .filter(|c| !c.name().is_empty())
        .collect()
}

/// One sample of `docker stats --no-stream --format '{{json .}}'`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Stats {
    /// The container's name.
    #[serde(rename = "Name")]
    pub name: String,
    /// CPU use (`0.25%`).
    #[serde(rename = "CPUPerc")]
    pub cpu: String,
    /// Memory use and limit (`25.3MiB / 7.7GiB`).
    #[serde(rename = "MemUsage")]
    pub mem_usage: String,
    /// Memory use as a share of the limit (`0.32%`).
    #[serde(rename = "MemPerc")]
    pub mem_perc: String,
    /// Network bytes in / out.
    #[serde(rename = "NetIO")]
    pub net_io: String,
    /// Block bytes read / written.
    #[serde(rename = "BlockIO")]
    pub block_io: String,
    /// Processes.
    #[serde(rename = "PIDs")]
    pub pids: String,
}

/// Parses the lines of `docker stats --no-stream --format '{{json .}}'`.
pub fn parse_stats(output: &[u8]) -> Vec<Stats> {
    output
        .split(|b| *b == b'\n')
        .filter_map(|l| serde_json::from_slice::<Stats>(l).ok())
        .filter(|s| !s.name.is_empty())
        .collect()
}

/// The state of a container, from `docker inspect`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inspected {
    /// The name, without Docker's leading `/`.
    pub name: String,
    /// `running`, `exited`, …
    pub status: String,
    /// `healthy`, `unhealthy`, `starting`, or empty without a health check.
    pub health: String,
    /// How often Docker restarted it.
    pub restart_count: u64,
    /// When it last started (RFC 3339).
    pub started_at: String,
    /// The exit code of its last run.
    pub exit_code: i64,
    /// Whether the kernel killed it for memory.
    pub oom_killed: bool,
}

/// Parses the JSON array of `docker inspect`; an output that is not one gives nothing.
pub fn parse_inspect(output: &[u8]) -> Vec<Inspected> {
    let Ok(serde_json::Value::Array(items)) = serde_json::from_slice(output) else {
        return Vec::new();
    };
    items
        .iter()
        .map(|v| {
            let state = &v["State"];
            let s = |x: &serde_json::Value| x.as_str().unwrap_or("").to_string();
            Inspected {
                name: s(&v["Name"]).trim_start_matches('/').to_string(),
                status: s(&state["Status"]),
                health: s(&state["Health"]["Status"]),
                restart_count: v["RestartCount"].as_u64().unwrap_or(0),
                started_at: s(&state["StartedAt"]),
                exit_code: state["ExitCode"].as_i64().unwrap_or(0),
                oom_killed: state["OOMKilled"].as_bool().unwrap_or(false),
            }
        })
        .collect()
}

/// Splits a `docker logs --timestamps` line into its stamp (ns) and the line; `None` when
/// the line does not start with an RFC 3339 stamp and a space.
pub fn split_stamp(line: &[u8]) -> Option<(i64, &[u8])> {
    let space = memchr::memchr(b' ', &line[..line.len().min(40)]).unwrap_or(line.len());
    let stamp = std::str::from_utf8(&line[..space]).ok()?;
    if !stamp.as_bytes().first()?.is_ascii_digit() {
        return None;
    }
    let ns = chrono::DateTime::parse_from_rfc3339(stamp)
        .ok()?
        .timestamp_nanos_opt()?;
    Some((ns, line.get(space + 1..).unwrap_or(b"")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_docker_ps_json_lines() {
        let out = br#"{"Command":"\"/docker-entrypoint.\u2026\"","CreatedAt":"2024-01-15 08:00:00 +0000 UTC","ID":"4f2a","Image":"nginx:1.25","Labels":"","LocalVolumes":"0","Mounts":"","Names":"web-app","Networks":"bridge","Ports":"80/tcp","RunningFor":"2 hours ago","Size":"0B","State":"running","Status":"Up 2 hours"}
{"ID":"9c1b","Image":"postgres:16","Names":"db","State":"exited","Status":"Exited (0) 3 minutes ago"}
garbage
"#;
        let c = parse_ps(out);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].name(), "web-app");
        assert!(c[0].is_live());
        assert!(!c[1].is_live());
    }

    #[test]
    fn reads_docker_inspect_state() {
        let out = br#"[{"Id":"4f2a","Name":"/web-app","RestartCount":3,"State":{"Status":"running","Running":true,"OOMKilled":false,"ExitCode":0,"StartedAt":"2024-01-15T08:00:00.1Z","Health":{"Status":"healthy","FailingStreak":0}}}]"#;
        let i = parse_inspect(out);
        assert_eq!(i[0].name, "web-app");
        assert_eq!(i[0].health, "healthy");
        assert_eq!(i[0].restart_count, 3);
        assert!(parse_inspect(b"Error: No such object").is_empty());
    }

    #[test]
    fn splits_docker_stamps() {
        let (ns, rest) = split_stamp(b"2024-01-15T10:30:00.123456789Z GET / 200").unwrap();
        assert_eq!(ns, 1_705_314_600_123_456_789);
        assert_eq!(rest, b"GET / 200");
        assert_eq!(split_stamp(b"2024-01-15T10:30:00.5Z ").unwrap().1, b"");
        assert!(split_stamp(b"no stamp here").is_none());
        assert!(split_stamp(b"").is_none());
    }
}
