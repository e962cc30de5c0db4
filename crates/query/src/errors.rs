//! The error summary: who logged errors lately, the critical entries, and the error kinds.

use logyard_model::{Level, Record};
use logyard_store::Snapshot;

use crate::pipes::{Patterns, Pipe};
use crate::{agents, run, search, summary, Answer, Filter, LabelColumn, LevelOp, Page, Query};
use crate::{QueryError, Settings};

/// Most agents whose recent errors a summary lists.
pub const SUMMARY_AGENTS: usize = 100;
/// Recent errors listed per agent.
pub const RECENT_ERRORS: usize = 5;
/// Critical entries and top patterns listed.
pub const SUMMARY_TOP: usize = 10;

/// One agent's errors.
#[derive(Debug, Clone)]
pub struct AgentErrors {
    /// The agent.
    pub name: String,
    /// Its entries at ERROR and above.
    pub count: u64,
    /// Its newest ones (only for the 100 agents with the most errors).
    pub recent: Vec<Record>,
}

/// The errors of a period, as `GET /api/errors/summary` and `logyard errors` show them.
#[derive(Debug, Clone)]
pub struct ErrorSummary {
    /// Agents with any entry in the period.
    pub total_agents: usize,
    /// Agents with errors, most errors first.
    pub agents: Vec<AgentErrors>,
    /// Entries at ERROR and above.
    pub total_error_entries: u64,
    /// The newest CRITICAL entries.
    pub critical: Vec<Record>,
    /// The most frequent message templates of the errors: template, count, newest example.
    pub top_patterns: Vec<(String, u64, String)>,
}

/// Summarises the entries at ERROR and above since a time, among those of `within`
/// (`Filter::All` for every entry; a token's scope).
pub fn error_summary(
    snapshot: &Snapshot,
    since: i64,
    within: &Filter,
    settings: &Settings,
) -> Result<ErrorSummary, QueryError> {
    let range = Filter::and(vec![
        Filter::Time {
            start: Some(since),
            end: None,
        },
        within.clone(),
    ]);
    let total_agents = summary(snapshot, &range)?.by_agent.len();
    let errors = Filter::and(vec![
        range.clone(),
        Filter::Level(LevelOp::Ge, Level::Error),
    ]);
    let mut out = Vec::new();
    for (i, a) in agents(snapshot, &errors)?.into_iter().enumerate() {
        let recent = if i < SUMMARY_AGENTS {
            let mine = Filter::and(vec![
                errors.clone(),
                Filter::Label {
                    column: LabelColumn::Agent,
                    value: a.name.clone(),
                    prefix: false,
                },
            ]);
            search(
                snapshot,
                &mine,
                Page {
                    offset: 0,
                    limit: RECENT_ERRORS,
                },
            )?
            .records
        } else {
            Vec::new()
        };
        out.push(AgentErrors {
            name: a.name,
            count: a.count,
            recent,
        });
    }
    let critical = Filter::and(vec![range, Filter::Level(LevelOp::Ge, Level::Critical)]);
    let critical = search(
        snapshot,
        &critical,
        Page {
            offset: 0,
            limit: SUMMARY_TOP,
        },
    )?
    .records;
    let mut patterns = Query::of_filter(errors);
    patterns.pipes.push(Pipe::Patterns(Patterns));
    let mut top_patterns = Vec::new();
    if let Answer::Table(t) = run(snapshot, &patterns, settings, SUMMARY_TOP)?.answer {
        for row in t.rows.into_iter().take(SUMMARY_TOP) {
            if let [pattern, count, example] = &row[..] {
                top_patterns.push((
                    pattern.to_string(),
                    count.as_f64().unwrap_or(0.0) as u64,
                    example.to_string(),
                ));
            }
        }
    }
    Ok(ErrorSummary {
        total_agents,
        total_error_entries: out.iter().map(|a| a.count).sum(),
        agents: out,
        critical,
        top_patterns,
    })
}
