use std::process::ExitCode;

use clap::Parser;
use zarrmount::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Some(Command::Inspect { json, sources }) => zarrmount::inspect::tree(sources).map(|tree| {
            if *json {
                println!("{}", serde_json::to_string_pretty(&tree).unwrap_or_default());
            } else {
                print!("{}", zarrmount::inspect::text(&tree));
            }
        }),
        Some(Command::Stats { json, mountpoint }) => zarrmount::stats::query(mountpoint).map(|stats| {
            if *json {
                println!("{}", serde_json::to_string_pretty(&stats).unwrap_or_default());
            } else {
                print!("{}", stats.text());
            }
        }),
        None => {
            let (sources, mountpoint) = cli.mount_args();
            zarrmount::mount::run(sources, mountpoint, &cli.options, cli.foreground)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the error and its causes, as mount helpers and scripts expect.
            eprintln!("zarrmount: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}
