//! The file sandbox: an agent's `file_path` must resolve, after following
//! symlinks, to a regular file inside an allowed folder. Anything else is
//! refused before a request is made, so a prompt-injected agent cannot send
//! `~/.ssh/id_rsa` to the API.

use std::path::{Path, PathBuf};

/// The folders uploads may come from (canonical paths); none: uploads are off.
#[derive(Debug, Clone, Default)]
pub struct FileSandbox {
    dirs: Vec<PathBuf>,
}

impl FileSandbox {
    /// Uploads from these folders (and their subfolders) only. Each must exist.
    pub fn new(dirs: &[PathBuf]) -> Result<Self, String> {
        let dirs = dirs
            .iter()
            .map(|d| {
                std::fs::canonicalize(d)
                    .ok()
                    .filter(|c| c.is_dir())
                    .ok_or_else(|| format!("--allow-dir {}: not an existing folder", d.display()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { dirs })
    }

    /// No uploads at all.
    pub fn off() -> Self {
        Self::default()
    }

    /// The allowed folders.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// The canonical path of `file_path` when it is a regular file inside an
    /// allowed folder, symlinks followed; otherwise why not.
    pub fn check(&self, file_path: &str) -> Result<PathBuf, String> {
        let checked = self.resolve(file_path);
        if checked.is_err() {
            super::metrics::refused("file_sandbox");
        }
        checked
    }

    fn resolve(&self, file_path: &str) -> Result<PathBuf, String> {
        if self.dirs.is_empty() {
            return Err("uploads are off on this server (start it with --allow-dir DIR to allow a folder)".into());
        }
        let resolved =
            std::fs::canonicalize(Path::new(file_path)).map_err(|e| format!("`{file_path}` cannot be read: {e}"))?;
        if !self.dirs.iter().any(|d| resolved.starts_with(d)) {
            return Err(format!(
                "`{file_path}` is outside the folders this server may upload from ({})",
                self.dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if !resolved.is_file() {
            return Err(format!("`{file_path}` is not a regular file"));
        }
        Ok(resolved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_inside_the_allowed_folders_pass() {
        let root = std::env::temp_dir().join(format!("tokportal-files-{}", std::process::id()));
        let allowed = root.join("allowed");
        let outside = root.join("outside");
        std::fs::create_dir_all(&allowed).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(allowed.join("v.mp4"), b"v").unwrap();
        std::fs::write(outside.join("secret"), b"s").unwrap();
        let sandbox = FileSandbox::new(std::slice::from_ref(&allowed)).unwrap();
        assert!(sandbox.check(allowed.join("v.mp4").to_str().unwrap()).is_ok());
        assert!(sandbox.check(outside.join("secret").to_str().unwrap()).is_err());
        let dotted = allowed.join("../outside/secret");
        assert!(
            sandbox.check(dotted.to_str().unwrap()).is_err(),
            "`..` cannot climb out"
        );
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(outside.join("secret"), allowed.join("link")).unwrap();
            assert!(
                sandbox.check(allowed.join("link").to_str().unwrap()).is_err(),
                "a symlink out is refused"
            );
        }
        assert!(
            sandbox.check(allowed.to_str().unwrap()).is_err(),
            "a folder is not a file"
        );
        assert!(
            FileSandbox::off()
                .check(allowed.join("v.mp4").to_str().unwrap())
                .is_err()
        );
        assert!(FileSandbox::new(&[root.join("missing")]).is_err());
        let _ = std::fs::remove_dir_all(&root);
    }
}
