//! The read-only client of the Docker Engine API: the only code of logyard that speaks to a
//! Docker daemon.
//!
//! It offers three operations, each one `GET` request and nothing else: list the containers
//! (`GET /containers/json?all=true`), inspect one (`GET /containers/{id}/json`) and read
//! its logs (`GET /containers/{id}/logs?follow=true&stdout=true&stderr=true&timestamps=true&since=…`).
//! Nothing that starts, stops, creates, removes, execs
//! or changes anything is ever sent: the rest of the source can only call these methods.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use bollard::query_parameters::{
    InspectContainerOptions, ListContainersOptionsBuilder, LogsOptionsBuilder,
};
use bollard::Docker;
use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt};

use super::container::{clean_name, ContainerInfo};

/// A failed request to the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EngineError {
    /// The container does not exist (any more).
    NotFound,
    /// Anything else: the socket is missing or refused, the daemon answered an error, the
    /// answer could not be read.
    Other(String),
}

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EngineError::NotFound => write!(f, "no such container"),
            EngineError::Other(text) => write!(f, "{text}"),
        }
    }
}

impl From<bollard::errors::Error> for EngineError {
    fn from(e: bollard::errors::Error) -> Self {
        match e {
            bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            } => EngineError::NotFound,
            other => EngineError::Other(other.to_string()),
        }
    }
}

/// A container as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    /// The full id.
    pub id: String,
    /// The name, without the leading `/`.
    pub name: String,
    /// True while it runs (or is paused or restarting: its log may still grow).
    pub running: bool,
}

/// A container as inspected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Inspected {
    /// Its identity and labels.
    pub info: ContainerInfo,
    /// True when it has a TTY: its log is one raw stream, not stdout and stderr frames.
    pub tty: bool,
    /// True while it runs.
    pub running: bool,
}

/// One piece of a container's log, as the daemon sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Chunk {
    /// A frame of standard output.
    Stdout(Bytes),
    /// A frame of standard error.
    Stderr(Bytes),
    /// Raw bytes of a TTY container (no frames: pieces may cut lines anywhere).
    Console(Bytes),
}

/// The read-only client; see the module documentation.
#[derive(Debug, Clone)]
pub(crate) struct Engine {
    docker: Docker,
}

impl Engine {
    /// Prepares a client of the daemon at `socket` (no request is sent yet); fails when the
    /// socket does not exist.
    pub fn connect(socket: &Path, timeout: Duration) -> Result<Engine, EngineError> {
        let path = socket.to_string_lossy();
        let docker = Docker::connect_with_unix(
            &path,
            timeout.as_secs().max(1),
            bollard::API_DEFAULT_VERSION,
        )
        .map_err(|e| EngineError::Other(format!("cannot use {path}: {e}")))?;
        Ok(Engine { docker })
    }

    /// Lists every container, running or not (`GET /containers/json?all=true`).
    pub async fn list(&self) -> Result<Vec<Listed>, EngineError> {
        let opts = ListContainersOptionsBuilder::new().all(true).build();
        let list = self.docker.list_containers(Some(opts)).await?;
        Ok(list
            .into_iter()
            .filter_map(|c| {
                let id = c.id?;
                let name = c
                    .names
                    .and_then(|n| n.into_iter().next())
                    .map(|n| clean_name(&n))
                    .unwrap_or_default();
                let running = matches!(
                    c.state,
                    Some(
                        bollard::models::ContainerSummaryStateEnum::RUNNING
                            | bollard::models::ContainerSummaryStateEnum::PAUSED
                            | bollard::models::ContainerSummaryStateEnum::RESTARTING
                    )
                );
                Some(Listed { id, name, running })
            })
            .collect())
    }

    /// Inspects a container (`GET /containers/{id}/json`).
    pub async fn inspect(&self, id: &str) -> Result<Inspected, EngineError> {
        let c = self
            .docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await?;
        let config = c.config.unwrap_or_default();
        let labels: BTreeMap<String, String> =
            config.labels.unwrap_or_default().into_iter().collect();
        let state = c.state.unwrap_or_default();
        Ok(Inspected {
            info: ContainerInfo {
                id: c.id.unwrap_or_else(|| id.to_string()),
                name: c.name.map(|n| clean_name(&n)).unwrap_or_default(),
                image: config.image.unwrap_or_default(),
                labels,
            },
            tty: config.tty.unwrap_or(false),
            running: state.running.unwrap_or(false)
                || state.restarting.unwrap_or(false)
                || state.paused.unwrap_or(false),
        })
    }

    /// Follows a container's log from `since` (epoch seconds), stdout and stderr, each line
    /// prefixed with the daemon's RFC 3339 time (`GET /containers/{id}/logs`). The stream
    /// ends when the container stops.
    pub fn logs(
        &self,
        id: &str,
        since_secs: i64,
    ) -> BoxStream<'static, Result<Chunk, EngineError>> {
        let since = i32::try_from(since_secs.max(0)).unwrap_or(i32::MAX);
        let opts = LogsOptionsBuilder::new()
            .follow(true)
            .stdout(true)
            .stderr(true)
            .timestamps(true)
            .since(since)
            .build();
        self.docker
            .logs(id, Some(opts))
            .map(|item| {
                item.map_err(EngineError::from).map(|out| match out {
                    bollard::container::LogOutput::StdOut { message } => Chunk::Stdout(message),
                    bollard::container::LogOutput::StdErr { message } => Chunk::Stderr(message),
                    bollard::container::LogOutput::StdIn { message }
                    | bollard::container::LogOutput::Console { message } => Chunk::Console(message),
                })
            })
            .boxed()
    }
}
