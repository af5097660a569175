//! Log setup: tracing to stderr in the foreground, to `-o log=PATH` when given, and nowhere
//! for a daemon without one (its start-up failures reach the launcher through the ready pipe).
//! `RUST_LOG` filters; `-o debug` raises the default level to debug.

use std::fs::OpenOptions;
use std::sync::Mutex;

use anyhow::Context;
use tracing_subscriber::EnvFilter;

use crate::config::MountOptions;

pub fn init(options: &MountOptions, foreground: bool) -> anyhow::Result<()> {
    // fuser's session warns when its own unmount-on-drop finds the mount already gone (an
    // external `umount`, the normal way to stop): expected, so only its errors are shown.
    let default = if options.debug {
        "debug"
    } else {
        "info,fuser::session=error"
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = match (&options.log, foreground) {
        (Some(path), _) => {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open log file {}", path.display()))?;
            builder.with_ansi(false).with_writer(Mutex::new(file)).try_init()
        }
        (None, true) => builder.with_writer(std::io::stderr).try_init(),
        (None, false) => builder.with_writer(std::io::sink).try_init(),
    };
    // Already initialised (tests): keep the existing subscriber.
    let _ = result;
    Ok(())
}
