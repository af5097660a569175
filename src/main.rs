use std::process::ExitCode;

use clap::Parser;
use zarrmount::cli::{Cli, Command};

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_default();
    let result = if zarrmount::helper::invoked_as_helper(&argv0) {
        zarrmount::helper::run(args)
    } else {
        command(Cli::parse())
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

fn command(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
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
    }
}
