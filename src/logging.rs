//! Log setup: tracing to stderr in the foreground, to `-o log=PATH` when given, and to syslog
//! (facility daemon, ident `zarrmount`) for a daemon without one; with no syslog daemon
//! listening on /dev/log, nowhere. Start-up failures never depend on this: they reach the
//! launcher, and its stderr, through the ready pipe. `RUST_LOG` filters; `-o debug` raises
//! the default level to debug.

mod syslog;

use std::fs::OpenOptions;
use std::path::Path;
use std::sync::Mutex;

use anyhow::Context;
use tracing_subscriber::EnvFilter;

use crate::config::MountOptions;

/// Where the logs of a mount go.
#[derive(Debug)]
enum Destination {
    Stderr,
    File(std::fs::File),
    Syslog(syslog::Syslog),
    Nowhere,
}

pub fn init(options: &MountOptions, foreground: bool) -> anyhow::Result<()> {
    let destination = destination(options, foreground, Path::new(syslog::DEV_LOG))?;
    // fuser's session warns when its own unmount-on-drop finds the mount already gone (an
    // external `umount`, the normal way to stop): expected, so only its errors are shown.
    let default = if options.debug {
        "debug"
    } else {
        "info,fuser::session=error"
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let background = !matches!(destination, Destination::Stderr);
    let result = match destination {
        Destination::Stderr => builder.with_writer(std::io::stderr).try_init(),
        Destination::File(file) => builder.with_ansi(false).with_writer(Mutex::new(file)).try_init(),
        // syslog stamps lines itself.
        Destination::Syslog(syslog) => builder
            .with_ansi(false)
            .without_time()
            .with_writer(syslog)
            .try_init(),
        Destination::Nowhere => builder.with_writer(std::io::sink).try_init(),
    };
    // Already initialised (tests): keep the existing subscriber.
    if result.is_ok() && background {
        log_panics();
    }
    Ok(())
}

fn destination(options: &MountOptions, foreground: bool, dev_log: &Path) -> anyhow::Result<Destination> {
    Ok(match (&options.log, foreground) {
        (Some(path), _) => Destination::File(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open log file {}", path.display()))?,
        ),
        (None, true) => Destination::Stderr,
        (None, false) => {
            syslog::Syslog::open(dev_log, "zarrmount").map_or(Destination::Nowhere, Destination::Syslog)
        }
    })
}

/// A daemon's stderr is /dev/null: a panic is logged where its other lines go, then handled
/// as before.
fn log_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        tracing::error!("panic: {info}");
        previous(info);
    }));
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixDatagram;
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn logs_go_to_the_file_stderr_syslog_or_nowhere() {
        let dir = tempfile::tempdir().unwrap();
        let dev_log = dir.path().join("log");
        let file = MountOptions {
            log: Some(dir.path().join("z.log")),
            ..MountOptions::default()
        };
        let plain = MountOptions::default();
        assert!(matches!(
            destination(&file, false, &dev_log),
            Ok(Destination::File(_))
        ));
        assert!(matches!(
            destination(&plain, true, &dev_log),
            Ok(Destination::Stderr)
        ));
        assert!(matches!(
            destination(&plain, false, &dev_log),
            Ok(Destination::Nowhere)
        ));
        let _listener = UnixDatagram::bind(&dev_log).unwrap();
        assert!(matches!(
            destination(&plain, false, &dev_log),
            Ok(Destination::Syslog(_))
        ));
        let unwritable = MountOptions {
            log: Some(PathBuf::from("/nonexistent/dir/z.log")),
            ..MountOptions::default()
        };
        let err = destination(&unwritable, false, &dev_log).unwrap_err();
        assert!(format!("{err:#}").contains("/nonexistent/dir/z.log"), "{err:#}");
    }
}
