//! Measures parsing speed: reads files into memory and parses every line, detection
//! included, several times; prints lines per second for each file.
//!
//! `cargo run --release --example parse_bench -- FILE... [--format F] [--rounds N] [--multiline] [--no-redact]`

use std::time::Instant;

use logyard_parse::{LineContext, Parser, ParserConfig};

/// The allocator of the `logyard` binary, so that the figures are the product's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Returns the CPU time this process has used, in seconds (Linux; 0 elsewhere). Wall time
/// on a shared machine counts the time other processes ran; CPU time does not.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let f: Vec<f64> = after
        .split(' ')
        .skip(11)
        .take(2)
        .filter_map(|x| x.parse().ok())
        .collect();
    f.iter().sum::<f64>() / 100.0
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let format = opt("--format").map_or(Default::default(), |f| f.parse().expect("format"));
    let rounds: usize = opt("--rounds").map_or(3, |r| r.parse().expect("rounds"));
    let multiline = args.iter().any(|a| a == "--multiline");
    let redact = logyard_parse::RedactConfig {
        builtin: !args.iter().any(|a| a == "--no-redact"),
        ..Default::default()
    };
    let files = args.iter().enumerate().filter(|(i, a)| {
        !a.starts_with("--")
            && (*i == 0 || !args[i - 1].starts_with("--f") && !args[i - 1].starts_with("--r"))
    });
    for (_, path) in files {
        let data = std::fs::read(path).expect("read");
        let lines: Vec<&[u8]> = data
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        let ctx = LineContext {
            source: "file:bench",
            agent_hint: "bench",
            host: "localhost",
            received_ns: 1_705_400_000_000_000_000,
        };
        let mut best = f64::MAX;
        let mut best_cpu = f64::MAX;
        let mut checksum = 0usize;
        for _ in 0..rounds {
            let mut parser = Parser::new(ParserConfig {
                format,
                redact: redact.clone(),
                ..ParserConfig::default()
            })
            .expect("config");
            let mut out = Vec::new();
            let start = Instant::now();
            let cpu = cpu_seconds();
            for line in &lines {
                if multiline {
                    parser.push(line, &ctx, 0, &mut out);
                    checksum += out.drain(..).map(|r| r.fields.len()).sum::<usize>();
                } else {
                    checksum += parser.parse(line, &ctx).map_or(0, |r| r.fields.len());
                }
            }
            best = best.min(start.elapsed().as_secs_f64());
            best_cpu = best_cpu.min(cpu_seconds() - cpu);
        }
        let mb = data.len() as f64 / 1e6;
        println!(
            "{path}: {} lines, {:.1} MB, format={format}{}: best of {rounds}: {:.3} s wall, {:.0} lines/s, {:.0} MB/s; {:.2} s CPU, {:.0} lines/s per CPU second (checksum {checksum})",
            lines.len(),
            mb,
            if multiline { " +multiline" } else { "" },
            best,
            lines.len() as f64 / best,
            mb / best,
            best_cpu,
            lines.len() as f64 / best_cpu
        );
    }
}
