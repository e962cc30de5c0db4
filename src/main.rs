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
mod node_link;
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
mod token_cmd;

use clap::Parser;

use cli::{Cli, Command, TokenCommand};

/// mimalloc instead of the system allocator: ingest allocates and frees many small strings
/// from several threads, where glibc's allocator was a tenth of the profile and left the
/// heap fragmented (a higher peak RSS for the same data). Built with `no_thp`: mimalloc does
/// not ask for transparent huge pages, whose 2 MiB zeroing on first touch took half the CPU
/// of a search filling the column cache and a sixth of ingest's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LOGYARD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs a parsed command line.
fn run(cli: Cli) -> anyhow::Result<()> {
    cli::set_token(cli.token);
    if let Command::Token(TokenCommand::New {
        name,
        role,
        scope,
        labels,
        argon2,
    }) = &cli.command
    {
        return token_cmd::run(name, role, scope.as_deref(), labels, *argon2);
    }
    // The server reads its own file: a broken local one (the case a reload reports) must
    // not stop the request.
    if let Command::Reload(args) = cli.command {
        return serve::reload_remote(args);
    }
    let path = config_path(cli.config);
    let config = config::RawConfig::load(path.as_deref())?;
    match cli.command {
        Command::Serve(args) => serve::run(config, path, args),
        Command::Ingest(args) => ingest_cmd::run(config, args),
        Command::Parse(args) => parse_cmd::run(config, args),
        Command::Query(args) => query_cmd::run(config, args),
        Command::Tail(args) => analysis_cmd::tail(args),
        Command::Export(args) => analysis_cmd::export(config, args),
        Command::Errors(args) => analysis_cmd::errors(config, args),
        Command::Report(args) => report_cmd::run(config, args),
        Command::Sql(args) => sql_cmd::run(config, args),
        Command::Slow(args) => analyze_cmd::slow(config, args),
        Command::Auth(args) => analyze_cmd::auth(config, args),
        Command::DbErrors(args) => analyze_cmd::db(config, args),
        Command::Rotate(args) => rotate_cmd::run_once(config, args),
        Command::Reload(_) => unreachable!("handled before the configuration is read"),
        Command::Alerts(args) => alerts_cmd::run(args),
        Command::Remote(args) => remote_cmd::run(config, args),
        Command::Backup(args) => backup_cmd::backup(args),
        Command::Restore(args) => backup_cmd::restore(args),
        Command::Token(_) => unreachable!("answered before the configuration is read"),
        Command::CheckConfig => {
            match &path {
                Some(p) => println!("{}: configuration is valid", p.display()),
                None => println!("no configuration file; the defaults apply"),
            }
            Ok(())
        }
        Command::Version => {
            println!("logyard {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    }
}

/// Returns the configuration file to read: the flag, else `./logyard.toml` if present.
fn config_path(flag: Option<std::path::PathBuf>) -> Option<std::path::PathBuf> {
    flag.or_else(|| {
        let default = std::path::Path::new("logyard.toml");
        default.is_file().then(|| default.to_path_buf())
    })
}
