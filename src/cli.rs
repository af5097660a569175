//! The command line, parsed and validated but not yet interpreted (that is `config`).

use clap::{Parser, Subcommand};

/// Mount scientific datasets (AMReX plotfiles, RPN standard files, WebDataset shards) and
/// in-memory stores as a Zarr v3 tree.
#[derive(Debug, Parser)]
#[command(
    name = "zarrmount",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "SOURCE is memory://NAME (a writable store in RAM), FORMAT://PATH, or a path \
                  (a dataset, detected by content, or a directory to mirror).\n\
                  OPTIONS (-o, comma-separated): ro, allow_other, uid=USER, gid=GROUP, umask=MASK, \
                  cache_size=SIZE, memory_limit=SIZE, log=PATH, debug, … (see the README); generic fstab \
                  options (rw, nofail, _netdev, x-systemd.*, …) are ignored. Installed as \
                  mount.fuse.zarrmount (contrib/install), it is mount(8)'s helper."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// One or more sources, then the mountpoint.
    #[arg(value_name = "SOURCE... MOUNTPOINT", num_args = 2.., required = true)]
    pub args: Vec<String>,

    /// Mount options, comma-separated (may be repeated).
    #[arg(short = 'o', value_name = "OPTIONS")]
    pub options: Vec<String>,

    /// Stay in the foreground and log to stderr.
    #[arg(short, long)]
    pub foreground: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the tree the sources would mount as, without mounting.
    Inspect {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[arg(value_name = "SOURCE", required = true)]
        sources: Vec<String>,
    },
    /// Print a running mount's counters (cache, I/O, bytes served) without touching the mount.
    Stats {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        mountpoint: String,
    },
}

impl Cli {
    /// (sources, mountpoint) of a mount command.
    pub fn mount_args(&self) -> (&[String], &str) {
        let (mountpoint, sources) = self
            .args
            .split_last()
            .expect("clap requires two or more arguments");
        (sources, mountpoint)
    }
}
