//! The sealog data directory: one process at a time, realms with their
//! signing keys, hashed tokens, and each realm's journal.
//!
//! ```text
//! <data>/
//!   LOCK                         flock held by the owning process; says who
//!   sealog.meta                  marks the directory and its format version
//!   tokens.meta          (0600)  token ids, realms, scopes, SHA-256 hashes
//!   realms/<name>/realm.meta     name, creation time, public verifier key
//!   realms/<name>/signing.key    (0600) the realm's Ed25519 seed
//!   realms/<name>/journal/       segments and tree hashes (sealog-journal)
//! ```
//!
//! Small files use the [`meta`] envelope: a first line naming the kind,
//! version and SHA-256 of the JSON body that follows; they are replaced by
//! write-to-temp, fsync, rename, fsync-directory. Tokens are never stored,
//! only their SHA-256, and are compared in constant time.

pub mod meta;
mod tokens;

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::SigningKey;
use sealog_journal::checkpoint::{origin_for, Signer, VerifierKey};
use sealog_journal::{Journal, JournalError, JournalOptions};
use serde::{Deserialize, Serialize};

pub use tokens::{IssuedToken, Scope, TokenInfo};

/// Errors of the data directory.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the directory.
    #[error("data directory {path} is in use by another process ({holder})")]
    Locked {
        /// The data directory.
        path: PathBuf,
        /// What the holder wrote in the lock file.
        holder: String,
    },
    /// An I/O error.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file is damaged, foreign or of an unknown version.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// No such realm.
    #[error("unknown realm {0:?}")]
    UnknownRealm(String),
    /// The realm exists already.
    #[error("realm {0:?} already exists")]
    RealmExists(String),
    /// The realm name is not acceptable.
    #[error(transparent)]
    RealmName(#[from] sealog_event::RealmNameError),
    /// No token with that id.
    #[error("unknown token id {0:?}")]
    UnknownToken(String),
    /// The token is unknown or revoked (deliberately not saying which).
    #[error("token is not valid (unknown or revoked)")]
    BadToken,
    /// A journal error.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

impl StoreError {
    pub(crate) fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| StoreError::Io { op, path, source }
    }
}

/// Result with [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A realm's public description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealmInfo {
    /// The realm's name.
    pub name: String,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// Its checkpoint verifier key (`sealog/<realm>+<id>+<key>`).
    pub public_key: String,
}

/// What `realm create` hands out, once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreatedRealm {
    /// The realm.
    pub realm: String,
    /// A write token (shown only now).
    pub write_token: String,
    /// A query token (shown only now).
    pub query_token: String,
    /// The verifier key.
    pub public_key: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    ed25519_seed: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DirMarker {
    created_at: String,
}

/// An open, locked data directory.
#[derive(Debug)]
pub struct DataDir {
    root: PathBuf,
    _lock: File,
}

impl DataDir {
    /// Opens `root` (creating it, mode 0700, if missing) and takes its lock.
    /// `holder` says who holds it (e.g. `sealog ingest`), for the error a
    /// second process gets.
    ///
    /// # Errors
    /// [`StoreError::Locked`] when another process holds it; I/O and
    /// format errors.
    pub fn open(root: &Path, holder: &str) -> Result<Self> {
        if !root.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(root)
                .map_err(StoreError::io("create", root))?;
        }
        let lock_path = root.join("LOCK");
        let mut lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(StoreError::io("open", &lock_path))?;
        if lock.try_lock().is_err() {
            let mut who = String::new();
            let _ = lock.read_to_string(&mut who);
            let who = who.trim();
            return Err(StoreError::Locked {
                path: root.to_path_buf(),
                holder: if who.is_empty() {
                    "holder unknown".into()
                } else {
                    who.to_string()
                },
            });
        }
        let info = format!(
            "pid {} ({holder}) since {}",
            std::process::id(),
            sealog_event::format_rfc3339_nanos(sealog_event::now_ns())
        );
        lock.set_len(0)
            .and_then(|_| lock.write_all(info.as_bytes()))
            .map_err(StoreError::io("write", &lock_path))?;
        let dir = Self {
            root: root.to_path_buf(),
            _lock: lock,
        };
        let marker = root.join("sealog.meta");
        if marker.exists() {
            let _: DirMarker = meta::read(&marker, "sealog-data")?;
        } else {
            if fs::read_dir(root)
                .map_err(StoreError::io("list", root))?
                .count()
                > 1
            {
                return Err(StoreError::Format {
                    path: root.to_path_buf(),
                    reason: "directory is not empty and is not a sealog data directory".into(),
                });
            }
            meta::write(
                &marker,
                "sealog-data",
                &DirMarker { created_at: now() },
                0o644,
            )?;
        }
        fs::create_dir_all(root.join("realms")).map_err(StoreError::io("create", root))?;
        Ok(dir)
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn realm_dir(&self, name: &str) -> PathBuf {
        self.root.join("realms").join(name)
    }

    /// Creates a realm with a fresh Ed25519 key and one write and one query
    /// token.
    ///
    /// # Errors
    /// A bad or taken name; I/O errors.
    pub fn create_realm(&mut self, name: &str) -> Result<CreatedRealm> {
        sealog_event::validate_realm_name(name)?;
        let dir = self.realm_dir(name);
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(StoreError::RealmExists(name.to_string()))
            }
            Err(e) => return Err(StoreError::io("create", &dir)(e)),
        }
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let signer = Signer::new(origin_for(name), key.clone());
        meta::write(
            &dir.join("signing.key"),
            "sealog-key",
            &KeyFile {
                ed25519_seed: B64.encode(key.to_bytes()),
            },
            0o600,
        )?;
        let info = RealmInfo {
            name: name.to_string(),
            created_at: now(),
            public_key: signer.verifier().to_string(),
        };
        meta::write(&dir.join("realm.meta"), "sealog-realm", &info, 0o644)?;
        sealog_journal::segment::sync_dir(&self.root.join("realms"))?;
        let write = self.issue_token(name, Scope::Write)?;
        let query = self.issue_token(name, Scope::Query)?;
        Ok(CreatedRealm {
            realm: name.to_string(),
            write_token: write.token,
            query_token: query.token,
            public_key: info.public_key,
        })
    }

    /// All realms, by name.
    ///
    /// # Errors
    /// I/O and format errors.
    pub fn realms(&self) -> Result<Vec<RealmInfo>> {
        let dir = self.root.join("realms");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(StoreError::io("list", &dir))? {
            let e = e.map_err(StoreError::io("list", &dir))?;
            if let Some(name) = e.file_name().to_str() {
                if sealog_event::validate_realm_name(name).is_ok() {
                    out.push(self.realm(name)?);
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// One realm's description.
    ///
    /// # Errors
    /// [`StoreError::UnknownRealm`]; format errors.
    pub fn realm(&self, name: &str) -> Result<RealmInfo> {
        sealog_event::validate_realm_name(name)
            .map_err(|_| StoreError::UnknownRealm(name.into()))?;
        let path = self.realm_dir(name).join("realm.meta");
        if !path.exists() {
            return Err(StoreError::UnknownRealm(name.to_string()));
        }
        let info: RealmInfo = meta::read(&path, "sealog-realm")?;
        if info.name != name {
            return Err(StoreError::Format {
                path,
                reason: format!("realm file names realm {:?}", info.name),
            });
        }
        Ok(info)
    }

    /// The realm's verifier key.
    ///
    /// # Errors
    /// Unknown realm; a damaged key in `realm.meta`.
    pub fn verifier_key(&self, name: &str) -> Result<VerifierKey> {
        let info = self.realm(name)?;
        info.public_key.parse().map_err(|e| StoreError::Format {
            path: self.realm_dir(name).join("realm.meta"),
            reason: format!("public key: {e}"),
        })
    }

    fn signer(&self, name: &str) -> Result<Signer> {
        let vk = self.verifier_key(name)?;
        let path = self.realm_dir(name).join("signing.key");
        let kf: KeyFile = meta::read(&path, "sealog-key")?;
        let seed: [u8; 32] = B64
            .decode(&kf.ed25519_seed)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| StoreError::Format {
                path: path.clone(),
                reason: "seed is not base64 of 32 bytes".into(),
            })?;
        let signer = Signer::new(origin_for(name), SigningKey::from_bytes(&seed));
        if signer.verifier() != vk {
            return Err(StoreError::Format {
                path,
                reason: "signing key does not match the realm's public key".into(),
            });
        }
        Ok(signer)
    }

    /// Opens a realm's journal.
    ///
    /// # Errors
    /// Unknown realm; key and journal errors.
    pub fn open_journal(&self, name: &str, opts: JournalOptions) -> Result<Journal> {
        let signer = self.signer(name)?;
        Ok(Journal::open(&self.journal_dir(name), name, signer, opts)?)
    }

    /// Where a realm's journal lives.
    pub fn journal_dir(&self, name: &str) -> PathBuf {
        self.realm_dir(name).join("journal")
    }
}

fn now() -> String {
    sealog_event::format_rfc3339_nanos(sealog_event::now_ns())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_process_gets_a_clear_error() {
        let d = tempfile::tempdir().expect("tempdir");
        let _a = DataDir::open(d.path(), "sealog test").expect("first");
        let err = DataDir::open(d.path(), "sealog other").expect_err("second");
        let msg = err.to_string();
        assert!(msg.contains("in use by another process"), "{msg}");
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
    }

    #[test]
    fn realms_keys_and_journals() {
        let d = tempfile::tempdir().expect("tempdir");
        let mut dd = DataDir::open(d.path(), "test").expect("open");
        let c = dd.create_realm("acme").expect("create");
        assert!(c.public_key.starts_with("sealog/acme+"));
        assert!(matches!(
            dd.create_realm("acme"),
            Err(StoreError::RealmExists(_))
        ));
        assert!(matches!(
            dd.create_realm("../x"),
            Err(StoreError::RealmName(_))
        ));
        assert!(matches!(dd.realm("nope"), Err(StoreError::UnknownRealm(_))));
        assert_eq!(dd.realms().expect("list").len(), 1);
        let j = dd
            .open_journal("acme", JournalOptions::default())
            .expect("journal");
        assert_eq!(j.verifier().to_string(), c.public_key);
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(d.path().join("realms/acme/signing.key"))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn foreign_directory_is_refused() {
        let d = tempfile::tempdir().expect("tempdir");
        fs::write(d.path().join("important.txt"), b"x").expect("write");
        let err = DataDir::open(d.path(), "test").expect_err("refuse");
        assert!(
            err.to_string().contains("not a sealog data directory"),
            "{err}"
        );
    }

    #[test]
    fn damaged_key_file_is_a_precise_error() {
        let d = tempfile::tempdir().expect("tempdir");
        let mut dd = DataDir::open(d.path(), "test").expect("open");
        dd.create_realm("acme").expect("create");
        let p = d.path().join("realms/acme/signing.key");
        let mut bytes = fs::read(&p).expect("read");
        let n = bytes.len();
        bytes[n - 5] ^= 1;
        fs::write(&p, bytes).expect("write");
        let err = dd
            .open_journal("acme", JournalOptions::default())
            .expect_err("refuse");
        assert!(err.to_string().contains("checksum"), "{err}");
    }
}
