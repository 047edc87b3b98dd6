//! Reading a body from a file or stdin.

use std::io::Read;
use std::path::PathBuf;

use super::exit::Failure;

pub(crate) fn read_input(path: Option<&PathBuf>) -> Result<Vec<u8>, Failure> {
    let mut buf = Vec::new();
    match path {
        Some(p) if p.as_os_str() != "-" => {
            buf = std::fs::read(p).map_err(|e| Failure::usage(format!("cannot read {}: {e}", p.display())))?
        }
        _ => {
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(|e| Failure::usage(format!("cannot read stdin: {e}")))?;
        }
    }
    Ok(buf)
}
