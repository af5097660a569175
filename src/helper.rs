//! Being mount(8)'s helper: `contrib/install` links `/sbin/mount.fuse.zarrmount` and
//! `/sbin/mount.zarrmount` to the binary, and mount(8) (for `mount -t fuse.zarrmount`, an
//! fstab line, or a systemd `.mount` unit) runs
//!
//! ```text
//! mount.fuse.zarrmount SOURCE MOUNTPOINT [-s] [-f] [-n] [-v] [-o OPTIONS]
//! ```
//!
//! The flags are mount(8)'s: `-s` sloppy (unknown options are tolerated anyway), `-f` fake
//! (check everything, mount nothing), `-n` no mtab (there is none to write), `-v` verbose.
//! mount(8) has already decoded fstab's `\040` escapes, so SOURCE and MOUNTPOINT arrive as
//! they are. The mount itself is the ordinary background mount: this returns once the mount
//! is live, or fails with the reason on stderr.

use std::ffi::OsString;
use std::path::Path;

/// Whether the program was invoked under a helper's name (`mount.fuse.zarrmount`,
/// `mount.zarrmount`, or any `mount.*` link to it).
pub fn invoked_as_helper(argv0: &OsString) -> bool {
    Path::new(argv0)
        .file_name()
        .is_some_and(|name| name.to_string_lossy().starts_with("mount."))
}

/// A helper command line, parsed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct HelperArgs {
    pub source: String,
    pub mountpoint: String,
    pub options: Vec<String>,
    pub fake: bool,
    pub verbose: bool,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum HelperError {
    #[error("usage: mount.fuse.zarrmount SOURCE MOUNTPOINT [-sfnv] [-o OPTIONS]")]
    Usage,
    #[error("unknown flag -{0} (mount helper flags are -s, -f, -n, -v, -o OPTIONS)")]
    UnknownFlag(char),
    #[error("-{0} needs a value")]
    MissingValue(char),
    #[error("arguments must be valid UTF-8: {0:?}")]
    NotUtf8(OsString),
}

impl HelperArgs {
    /// Parses the arguments after `argv[0]`. Flags may come anywhere and be grouped (`-nv`);
    /// `-oOPTS` and `-o OPTS` are both accepted, `-t TYPE` is ignored, `--` ends the flags.
    pub fn parse<I: IntoIterator<Item = OsString>>(args: I) -> Result<Self, HelperError> {
        let mut parsed = HelperArgs::default();
        let mut positional = Vec::new();
        let mut args = args
            .into_iter()
            .map(|a| a.into_string().map_err(HelperError::NotUtf8));
        let mut flags_done = false;
        while let Some(arg) = args.next() {
            let arg = arg?;
            if flags_done || !arg.starts_with('-') || arg == "-" {
                positional.push(arg);
                continue;
            }
            if arg == "--" {
                flags_done = true;
                continue;
            }
            for (i, flag) in arg[1..].char_indices() {
                match flag {
                    's' | 'n' => {}
                    'f' => parsed.fake = true,
                    'v' => parsed.verbose = true,
                    'o' | 't' => {
                        let rest = &arg[1 + i + 1..];
                        let value = if rest.is_empty() {
                            args.next().ok_or(HelperError::MissingValue(flag))??
                        } else {
                            rest.to_string()
                        };
                        if flag == 'o' {
                            parsed.options.push(value);
                        }
                        break;
                    }
                    other => return Err(HelperError::UnknownFlag(other)),
                }
            }
        }
        let [source, mountpoint] = <[String; 2]>::try_from(positional).map_err(|_| HelperError::Usage)?;
        parsed.source = source;
        parsed.mountpoint = mountpoint;
        Ok(parsed)
    }
}

/// Runs as mount(8)'s helper.
pub fn run<I: IntoIterator<Item = OsString>>(args: I) -> anyhow::Result<()> {
    let args = HelperArgs::parse(args)?;
    let sources = std::slice::from_ref(&args.source);
    if args.fake {
        return crate::mount::check(sources, &args.mountpoint, &args.options);
    }
    crate::mount::run(sources, &args.mountpoint, &args.options, false)?;
    if args.verbose {
        println!("zarrmount: {} mounted on {}", args.source, args.mountpoint);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<HelperArgs, HelperError> {
        HelperArgs::parse(args.iter().map(OsString::from))
    }

    #[test]
    fn helper_names_are_recognised() {
        for name in [
            "/sbin/mount.fuse.zarrmount",
            "mount.zarrmount",
            "/usr/sbin/mount.zarrmount",
        ] {
            assert!(invoked_as_helper(&name.into()), "{name}");
        }
        for name in ["zarrmount", "/usr/local/bin/zarrmount", "/mount.d/zarrmount"] {
            assert!(!invoked_as_helper(&name.into()), "{name}");
        }
    }

    #[test]
    fn mount_8_command_lines_parse() {
        let args = parse(&["/data/run 42", "/mnt/run42", "-o", "ro,allow_other,nofail"]).unwrap();
        assert_eq!(
            args,
            HelperArgs {
                source: "/data/run 42".into(),
                mountpoint: "/mnt/run42".into(),
                options: vec!["ro,allow_other,nofail".into()],
                fake: false,
                verbose: false,
            }
        );
        let args = parse(&["src", "mnt", "-s", "-n", "-v", "-f", "-o", "ro"]).unwrap();
        assert!(args.fake && args.verbose);
        assert_eq!(args.options, vec!["ro"]);
        let args = parse(&[
            "-nvoro,debug",
            "-t",
            "fuse.zarrmount",
            "src",
            "mnt",
            "-o",
            "uid=7",
        ])
        .unwrap();
        assert_eq!(args.options, vec!["ro,debug", "uid=7"]);
        assert!(args.verbose && !args.fake);
        assert_eq!((args.source.as_str(), args.mountpoint.as_str()), ("src", "mnt"));
    }

    #[test]
    fn sources_pass_through_intact() {
        let wds = "wds:///data/train-{000000..000099}.tar";
        assert_eq!(parse(&[wds, "/mnt/x"]).unwrap().source, wds);
        let args = parse(&["-o", "ro", "--", "-odd source", "/mnt/x"]).unwrap();
        assert_eq!(args.source, "-odd source");
    }

    #[test]
    fn bad_command_lines_are_refused() {
        assert_eq!(parse(&["only-one"]), Err(HelperError::Usage));
        assert_eq!(parse(&["a", "b", "c"]), Err(HelperError::Usage));
        assert_eq!(parse(&["a", "b", "-x"]), Err(HelperError::UnknownFlag('x')));
        assert_eq!(parse(&["a", "b", "-o"]), Err(HelperError::MissingValue('o')));
    }
}
