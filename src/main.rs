//! `logyard`: log management in one binary. This is the composition root: it parses the
//! command line, loads the configuration, and wires the crates together.

mod alerts_cmd;
mod analysis_cmd;
mod analyze_cmd;
mod backup_cmd;
mod cli;
mod collect;
mod config;
mod ingest_cmd;
mod lines;
mod notify;
mod parse_cmd;
mod query_cmd;
mod remote_cmd;
mod remote_json;
mod report_cmd;
mod rotate_cmd;
mod serve;
mod sql_cmd;
mod system_alerts;
mod table;

use clap::Parser;

/// mimalloc instead of the system allocator: ingest allocates and frees many small strings
/// from several threads, where glibc's allocator was a tenth of the profile and left the
/// heap fragmented (a higher peak RSS for the same data). Built with `no_thp`: mimalloc does
/// not ask for transparent huge pages, whose 2 MiB zeroing on first touch took half the CPU
/// of a search filling the column cache and a sixth of ingest's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LOGYARD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
