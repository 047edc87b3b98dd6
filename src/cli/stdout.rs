//! Writing to stdout, where a reader that went away is a quiet end.
//!
//! `tokportal list-bundles --all-pages | head -1` closes the pipe after one
//! line. As `gh` and ripgrep do, the program then stops at once, prints
//! nothing on stderr and exits 0: the reader had what it wanted. Rust
//! ignores `SIGPIPE`, so a write fails with `BrokenPipe` instead of killing
//! the process; every write of the CLI to stdout goes through here, which
//! turns that error into [`Failure::closed_pipe`]. Where no error can be
//! handed back (a line printed inside a feed that never ends), [`line_or_exit`]
//! exits 0 itself. [`quiet_on_closed_pipe`] is the net below both: a panic
//! of `println!` on a closed pipe, from code that did not come through here,
//! also ends with 0 and nothing on stderr.

use std::io::{ErrorKind, Write};

use super::exit::{EXIT_API, Failure};

/// Writes all of `bytes` to stdout and flushes it; a closed pipe is
/// [`Failure::closed_pipe`], any other failure an error naming stdout.
pub(crate) fn write(bytes: &[u8]) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes).and_then(|()| out.flush()).map_err(failure)
}

/// `text` and a newline on stdout, as [`write`].
pub(crate) fn line(text: &str) -> Result<(), Failure> {
    let mut bytes = Vec::with_capacity(text.len() + 1);
    bytes.extend_from_slice(text.as_bytes());
    bytes.push(b'\n');
    write(&bytes)
}

/// `text` and a newline on stdout, for a loop that cannot hand an error
/// back (`logs tail`, `listen`): a closed pipe ends the process with 0.
pub(crate) fn line_or_exit(text: &str) {
    if let Err(f) = line(text) {
        if f.is_closed_pipe() {
            std::process::exit(0);
        }
        let _ = writeln!(std::io::stderr(), "{}", f.message);
    }
}

/// The failure of a write to stdout.
pub(crate) fn failure(e: std::io::Error) -> Failure {
    if e.kind() == ErrorKind::BrokenPipe {
        Failure::closed_pipe()
    } else {
        Failure {
            code: EXIT_API,
            message: format!("error: stdout: {e}"),
        }
    }
}

/// Installs a panic hook that ends the process quietly with 0 when the
/// panic is `println!`'s on a closed stdout, and leaves every other panic
/// to the hook that was there.
pub(crate) fn quiet_on_closed_pipe() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if text.contains("Broken pipe") || text.contains("os error 32") {
            std::process::exit(0);
        }
        previous(info);
    }));
}
