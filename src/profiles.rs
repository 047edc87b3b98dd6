//! Layer 6: named profiles (`tokportal login`), read by the CLI and by
//! `tokportal-mcp` over stdio, so that neither needs a key in plain text in a
//! shell's history or an MCP client's config.
//!
//! A profile is a name, an optional base URL and a key. The config folder is
//! `$TOKPORTAL_CONFIG_DIR`, else `$XDG_CONFIG_HOME/tokportal`, else the
//! platform's (`~/.config/tokportal` on Linux). It holds `profiles.toml`
//! (names and base URLs, never a key). Keys live in the OS keyring (service
//! `tokportal`, account the profile's name; the kernel's keyutils on Linux,
//! which works headless); where no keyring is usable (or
//! `$TOKPORTAL_NO_KEYRING` is set), or with `--insecure-storage`, in
//! `credentials.toml` beside it, mode 0600, as gh and the Stripe CLI do,
//! with a warning naming the file.
//!
//! Which profile: `--profile NAME`, else `$TOKPORTAL_PROFILE`, else
//! `default`. What each value comes from, first found wins: the flag
//! (`--api-key`, `--base-url`), then the environment (`TOKPORTAL_API_KEY`,
//! `TOKPORTAL_BASE_URL`), then the profile, then the default (no key; the
//! live API).
//!
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! let store = tokportal::profiles::Profiles::at(dir.path());
//! let kept = store
//!     .save("sandbox", Some("http://127.0.0.1:8787"), &tokportal::Secret::new("sk_test_1"), false)
//!     .unwrap();
//! let profile = store.get("sandbox").unwrap().unwrap();
//! assert_eq!(profile.base_url.as_deref(), Some("http://127.0.0.1:8787"));
//! assert_eq!(profile.key.unwrap().expose(), "sk_test_1");
//! # let _ = kept;
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Secret;

/// The environment variable that selects a profile.
pub const PROFILE_ENV: &str = "TOKPORTAL_PROFILE";
/// The environment variable that sets the config folder.
pub const CONFIG_DIR_ENV: &str = "TOKPORTAL_CONFIG_DIR";
/// The profile used when none is named.
pub const DEFAULT_PROFILE: &str = "default";
/// Set (to anything but `0`), no keyring is tried: keys go to the 0600
/// file (for a container whose keyring does not keep what it is given).
pub const NO_KEYRING_ENV: &str = "TOKPORTAL_NO_KEYRING";
/// The keyring's service name.
const SERVICE: &str = "tokportal";

/// The profile to use: `flag`, else `$TOKPORTAL_PROFILE`, else `default`.
pub fn selected(flag: Option<&str>) -> String {
    flag.map(str::to_owned)
        .or_else(|| std::env::var(PROFILE_ENV).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_PROFILE.to_owned())
}

/// Why a profile could not be read or kept. Never holds a key.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// No config folder could be found (no `$HOME` and none set).
    #[error("no config folder: set {CONFIG_DIR_ENV}")]
    NoConfigDir,
    /// A file of the config folder could not be read or written.
    #[error("{path}: {why}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        why: String,
    },
    /// A profile name that cannot be one.
    #[error("`{0}` is not a profile name: letters, digits, `-` and `_`, at most 64")]
    BadName(String),
}

/// Where a profile's key is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeptIn {
    /// The OS keyring.
    Keyring,
    /// The 0600 file, named.
    File(PathBuf),
}

impl std::fmt::Display for KeptIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeptIn::Keyring => f.write_str("the OS keyring"),
            KeptIn::File(path) => write!(f, "{} (a file, mode 0600)", path.display()),
        }
    }
}

/// A profile as read: its base URL and its key, if any.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The profile's name.
    pub name: String,
    /// Its base URL, if it has one.
    pub base_url: Option<String>,
    /// Its key, if one is kept and readable.
    pub key: Option<Secret>,
    /// Where the key is kept (or would be read from).
    pub kept_in: KeptIn,
}

/// What `profiles.toml` holds.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Config {
    #[serde(default)]
    profiles: BTreeMap<String, Entry>,
}

/// One profile in `profiles.toml`.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Entry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    base_url: Option<String>,
    /// `keyring` or `file`.
    #[serde(default)]
    key_in: String,
}

/// The config folder and what it holds.
#[derive(Debug, Clone)]
pub struct Profiles {
    dir: PathBuf,
    /// The keyring's service: `tokportal`, or `tokportal:<dir>` for a
    /// folder set by `$TOKPORTAL_CONFIG_DIR` (so a test's folder never
    /// reads or writes a user's keys).
    service: String,
}

impl Profiles {
    /// The config folder: `$TOKPORTAL_CONFIG_DIR`, else
    /// `$XDG_CONFIG_HOME/tokportal`, else the platform's.
    pub fn open() -> Result<Self, ProfileError> {
        if let Some(dir) = std::env::var_os(CONFIG_DIR_ENV).filter(|d| !d.is_empty()) {
            return Ok(Self::at(Path::new(&dir)));
        }
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(dirs::config_dir)
            .ok_or(ProfileError::NoConfigDir)?;
        Ok(Self {
            dir: base.join("tokportal"),
            service: SERVICE.to_owned(),
        })
    }

    /// The profiles of the folder `dir` (its keys in the keyring under a
    /// service named for the folder).
    pub fn at(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            service: format!("{SERVICE}:{}", dir.display()),
        }
    }

    /// The config folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("profiles.toml")
    }

    fn credentials_path(&self) -> PathBuf {
        self.dir.join("credentials.toml")
    }

    fn read_config(&self) -> Result<Config, ProfileError> {
        read_toml(&self.config_path())
    }

    /// The profile `name`, or `None` when there is none of that name.
    pub fn get(&self, name: &str) -> Result<Option<Profile>, ProfileError> {
        self.read(name, true)
    }

    /// The profile `name`; its key is read (from the keyring or the file)
    /// only `with_key`: a caller whose key came from elsewhere and wants
    /// only the base URL pays no keyring lookup.
    pub fn read(&self, name: &str, with_key: bool) -> Result<Option<Profile>, ProfileError> {
        let config = self.read_config()?;
        let Some(entry) = config.profiles.get(name) else {
            return Ok(None);
        };
        let (key, kept_in) = if entry.key_in == "file" {
            let key = if with_key {
                let credentials: BTreeMap<String, FileKey> = read_toml(&self.credentials_path())?;
                credentials.get(name).map(|k| Secret::new(k.api_key.clone()))
            } else {
                None
            };
            (key, KeptIn::File(self.credentials_path()))
        } else {
            let key = with_key
                .then(|| {
                    keyring::Entry::new(&self.service, name)
                        .and_then(|e| e.get_password())
                        .ok()
                })
                .flatten()
                .map(Secret::new);
            (key, KeptIn::Keyring)
        };
        Ok(Some(Profile {
            name: name.to_owned(),
            base_url: entry.base_url.clone(),
            key,
            kept_in,
        }))
    }

    /// Keeps `key` (and `base_url`) as profile `name`: in the keyring, or
    /// in the 0600 file when no keyring is usable or `insecure_storage`.
    /// Says where.
    pub fn save(
        &self,
        name: &str,
        base_url: Option<&str>,
        key: &Secret,
        insecure_storage: bool,
    ) -> Result<KeptIn, ProfileError> {
        check_name(name)?;
        create_dir(&self.dir)?;
        let in_keyring = !insecure_storage
            && std::env::var_os(NO_KEYRING_ENV).is_none_or(|v| v.is_empty() || v == "0")
            && keyring::Entry::new(&self.service, name)
                .and_then(|e| e.set_password(key.expose()))
                .is_ok();
        let kept_in = if in_keyring {
            // A key kept in the file before is not left behind.
            self.remove_file_key(name)?;
            KeptIn::Keyring
        } else {
            let path = self.credentials_path();
            let mut credentials: BTreeMap<String, FileKey> = read_toml(&path)?;
            credentials.insert(
                name.to_owned(),
                FileKey {
                    api_key: key.expose().to_owned(),
                },
            );
            write_private(&path, &to_toml(&path, &credentials)?)?;
            KeptIn::File(path)
        };
        let mut config = self.read_config()?;
        config.profiles.insert(
            name.to_owned(),
            Entry {
                base_url: base_url.map(str::to_owned),
                key_in: if in_keyring { "keyring" } else { "file" }.to_owned(),
            },
        );
        let path = self.config_path();
        write_private(&path, &to_toml(&path, &config)?)?;
        Ok(kept_in)
    }

    /// Forgets profile `name` and its key; `false` when there was none.
    pub fn forget(&self, name: &str) -> Result<bool, ProfileError> {
        let mut config = self.read_config()?;
        let known = config.profiles.remove(name).is_some();
        if let Ok(entry) = keyring::Entry::new(&self.service, name) {
            let _ = entry.delete_credential();
        }
        let in_file = self.remove_file_key(name)?;
        if known {
            let path = self.config_path();
            write_private(&path, &to_toml(&path, &config)?)?;
        }
        Ok(known || in_file)
    }

    fn remove_file_key(&self, name: &str) -> Result<bool, ProfileError> {
        let path = self.credentials_path();
        let mut credentials: BTreeMap<String, FileKey> = read_toml(&path)?;
        if credentials.remove(name).is_none() {
            return Ok(false);
        }
        write_private(&path, &to_toml(&path, &credentials)?)?;
        Ok(true)
    }
}

/// A key in `credentials.toml`.
#[derive(Serialize, Deserialize)]
struct FileKey {
    api_key: String,
}

fn check_name(name: &str) -> Result<(), ProfileError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ProfileError::BadName(name.to_owned()))
    }
}

fn file_error(path: &Path, why: impl std::fmt::Display) -> ProfileError {
    ProfileError::File {
        path: path.to_owned(),
        why: why.to_string(),
    }
}

/// A TOML file, or its default when there is none. The files are small:
/// one larger than 1 MiB is refused rather than read.
fn read_toml<T: Default + serde::de::DeserializeOwned>(path: &Path) -> Result<T, ProfileError> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(T::default()),
        Err(e) => return Err(file_error(path, e)),
        Ok(m) if m.len() > 1 << 20 => return Err(file_error(path, "is larger than 1 MiB")),
        Ok(_) => {}
    }
    let text = std::fs::read_to_string(path).map_err(|e| file_error(path, e))?;
    // toml's message quotes the offending line, which in credentials.toml
    // may be a key: only its position is kept.
    toml::from_str(&text).map_err(|e| match e.span() {
        Some(span) => file_error(path, format!("is not valid TOML (at byte {})", span.start)),
        None => file_error(path, "is not valid TOML"),
    })
}

fn to_toml<T: Serialize>(path: &Path, value: &T) -> Result<String, ProfileError> {
    toml::to_string(value).map_err(|e| file_error(path, e))
}

fn create_dir(dir: &Path) -> Result<(), ProfileError> {
    std::fs::create_dir_all(dir).map_err(|e| file_error(dir, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    Ok(())
}

/// Writes `text` to `path` readable by its owner only (0600), through a
/// file beside it renamed over it, so a reader never sees half a file.
fn write_private(path: &Path, text: &str) -> Result<(), ProfileError> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(|e| file_error(path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| file_error(path, e))?;
    }
    file.write_all(text.as_bytes()).map_err(|e| file_error(path, e))?;
    file.as_file().sync_all().map_err(|e| file_error(path, e))?;
    file.persist(path).map_err(|e| file_error(path, e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_profile_round_trips_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let store = Profiles::at(dir.path());
        let kept = store.save("live", None, &Secret::new("sk_live_abc"), true).unwrap();
        assert_eq!(kept, KeptIn::File(dir.path().join("credentials.toml")));
        let profile = store.get("live").unwrap().unwrap();
        assert_eq!(profile.key.unwrap().expose(), "sk_live_abc");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("credentials.toml"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let config = std::fs::read_to_string(dir.path().join("profiles.toml")).unwrap();
        assert!(!config.contains("sk_live"), "{config}");
        assert!(store.forget("live").unwrap());
        assert!(store.get("live").unwrap().is_none());
        assert!(
            !std::fs::read_to_string(dir.path().join("credentials.toml"))
                .unwrap()
                .contains("sk_live")
        );
        assert!(!store.forget("live").unwrap());
    }

    #[test]
    fn names_and_bad_files_are_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let store = Profiles::at(dir.path());
        assert!(matches!(
            store.save("a b", None, &Secret::new("k"), true),
            Err(ProfileError::BadName(_))
        ));
        std::fs::write(dir.path().join("profiles.toml"), "[profiles.x\nkey = 'sk_live_leak'").unwrap();
        let e = store.get("x").unwrap_err().to_string();
        assert!(e.contains("profiles.toml") && e.contains("not valid TOML"), "{e}");
        assert!(!e.contains("sk_live_leak"), "{e}");
    }

    #[test]
    fn the_selected_profile() {
        assert_eq!(selected(Some("sandbox")), "sandbox");
        assert_eq!(selected(Some(" ")), DEFAULT_PROFILE);
    }
}
