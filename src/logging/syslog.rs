//! A tracing writer that sends each event to the local syslog daemon as one datagram, in the
//! RFC 3164 form glibc's syslog(3) uses: `<PRI>Mmm dd hh:mm:ss zarrmount[PID]: message`,
//! facility `daemon`, severity from the event's level.
//!
//! The socket is non-blocking and unconnected: a syslog daemon that is slow or restarting
//! loses lines rather than stalling FUSE threads, and the next line reaches the new one.
//! (The `syslog` crate writes through the `log` facade and connects once, so it fits neither
//! tracing nor restarts; `tracing-journald` needs journald.)

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// Where syslog(3) sends its lines.
pub const DEV_LOG: &str = "/dev/log";

/// `LOG_DAEMON`, shifted as RFC 3164 wants it.
const FACILITY_DAEMON: u8 = 3 << 3;

/// The longest message sent; longer ones are cut (rsyslog's default limit is 8 KiB).
const MAX_MESSAGE: usize = 8 << 10;

#[derive(Debug)]
pub struct Syslog {
    socket: UnixDatagram,
    path: PathBuf,
    ident: String,
}

impl Syslog {
    /// A writer to the socket at `path`, if something listens there.
    pub fn open(path: &Path, ident: &str) -> Option<Self> {
        let socket = UnixDatagram::unbound().ok()?;
        socket.set_nonblocking(true).ok()?;
        let syslog = Syslog {
            socket,
            path: path.to_path_buf(),
            ident: format!("{ident}[{}]", std::process::id()),
        };
        syslog.probe().then_some(syslog)
    }

    /// Whether a datagram can be sent to the path (a listening datagram socket).
    fn probe(&self) -> bool {
        self.socket.connect(&self.path).is_ok()
    }

    fn message(&self, level: &Level) -> Message<'_> {
        Message {
            syslog: self,
            severity: severity(level),
            buffer: Vec::new(),
        }
    }

    fn send(&self, severity: u8, message: &[u8]) {
        let text = String::from_utf8_lossy(message);
        let text = text.trim_end();
        let mut line = format!("<{}>{} {}: ", FACILITY_DAEMON | severity, timestamp(), self.ident);
        let room = MAX_MESSAGE.saturating_sub(line.len());
        line.push_str(&text[..floor_char_boundary(text, room)]);
        // Reconnects each time the daemon behind the path changes; errors drop the line.
        if self.socket.send(line.as_bytes()).is_err() && self.socket.connect(&self.path).is_ok() {
            let _ = self.socket.send(line.as_bytes());
        }
    }
}

/// Syslog severity (RFC 5424 §6.2.1) of a tracing level.
fn severity(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

fn floor_char_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Local time as `Mmm dd hh:mm:ss` (day padded with a space), as RFC 3164 writes it.
fn timestamp() -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // SAFETY: time(NULL) only returns the time; localtime_r writes into our zeroed struct.
    let tm = unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&now, &mut tm);
        tm
    };
    format!(
        "{} {:>2} {:02}:{:02}:{:02}",
        MONTHS[tm.tm_mon.clamp(0, 11) as usize],
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// One event's text, sent when the formatter is done with it.
pub struct Message<'a> {
    syslog: &'a Syslog,
    severity: u8,
    buffer: Vec<u8>,
}

impl Write for Message<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Message<'_> {
    fn drop(&mut self) {
        if !self.buffer.is_empty() {
            self.syslog.send(self.severity, &self.buffer);
        }
    }
}

impl<'a> MakeWriter<'a> for Syslog {
    type Writer = Message<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        self.message(&Level::INFO)
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        self.message(meta.level())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener() -> (tempfile::TempDir, PathBuf, UnixDatagram) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        (dir, path, socket)
    }

    fn receive(socket: &UnixDatagram) -> String {
        let mut buffer = vec![0; 16 << 10];
        let n = socket.recv(&mut buffer).unwrap();
        String::from_utf8(buffer[..n].to_vec()).unwrap()
    }

    #[test]
    fn events_arrive_as_rfc3164_lines_with_their_severity() {
        let (_dir, path, socket) = listener();
        let syslog = Syslog::open(&path, "zarrmount").expect("the socket listens");
        let subscriber = tracing_subscriber::fmt()
            .with_writer(syslog)
            .with_ansi(false)
            .without_time()
            .with_max_level(Level::DEBUG)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!("chunk c/0/1 is corrupt");
            tracing::info!(mountpoint = "/mnt/x", "mounted");
            tracing::debug!("details");
        });
        let ident = format!(" zarrmount[{}]: ", std::process::id());
        for (pri, text) in [
            ("<27>", "chunk c/0/1 is corrupt"),
            ("<30>", "mounted mountpoint=\"/mnt/x\""),
            ("<31>", "details"),
        ] {
            let line = receive(&socket);
            assert!(line.starts_with(pri), "{line}");
            assert!(line.contains(&ident) && line.contains(text), "{line}");
            assert!(!line.ends_with('\n'), "{line:?}");
            // `<PRI>Mmm dd hh:mm:ss `: the timestamp is 15 characters.
            let stamp = &line[pri.len()..pri.len() + 15];
            assert_eq!(stamp.as_bytes()[9], b':', "{line}");
        }
    }

    #[test]
    fn long_messages_are_cut_and_nothing_listening_means_no_writer() {
        let (_dir, path, socket) = listener();
        let syslog = Syslog::open(&path, "zarrmount").unwrap();
        syslog.send(6, "é".repeat(MAX_MESSAGE).as_bytes());
        let line = receive(&socket);
        assert!(line.len() <= MAX_MESSAGE && line.ends_with('é'), "{}", line.len());
        drop(socket);
        std::fs::remove_file(&path).unwrap();
        assert!(Syslog::open(&path, "zarrmount").is_none());
        let file = path.with_file_name("plain");
        std::fs::write(&file, b"").unwrap();
        assert!(Syslog::open(&file, "zarrmount").is_none());
    }
}
