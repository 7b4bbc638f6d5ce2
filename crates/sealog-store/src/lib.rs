//! The sealog data directory: one process at a time, realms with their
//! signing keys, hashed tokens, and each realm's journal.
//!
//! ```text
//! <data>/
//!   LOCK                         flock held by the owning process; says who
//!   sealog.meta                  marks the directory and its format version
//!   tokens.meta          (0600)  token ids, realms, scopes, SHA-256 hashes
//!   drains.meta          (0600)  drains: realm, selection, destination
//!   drains/<id>.cursor   (0600)  where each drain's delivery stands
//!   realms/<name>/realm.meta     name, creation time, public verifier key
//!   realms/<name>/signing.key    (0600) the realm's Ed25519 seed
//!   realms/<name>/journal/       segments and tree hashes (sealog-journal)
//! ```
//!
//! Small files use the [`meta`] envelope: a first line naming the kind,
//! version and SHA-256 of the JSON body that follows; they are replaced by
//! write-to-temp, fsync, rename, fsync-directory. Tokens are never stored,
//! only their SHA-256, and are compared in constant time.
//!
//! A realm is created whole or not at all: its key, `realm.meta` and an
//! empty journal (with its high-water mark) are written and synced in
//! `realms/.creating-<name>-<random>/`, which is then renamed into place
//! and the rename synced. A crash leaves either no realm or a complete one;
//! leftovers of an interrupted creation are removed on open, with a log
//! line. A realm that is damaged (a missing or edited `realm.meta`, a bad
//! key) is reported alone by [`DataDir::realm_entries`]; the others stay
//! usable.
//!
//! All file operations go through a [`Vfs`], so tests can run the store on
//! a simulated filesystem that loses unsynced writes.

mod drains;
pub mod meta;
pub mod realm_store;
mod tokens;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::SigningKey;
use sealog_event::RealmName;
use sealog_journal::checkpoint::{origin_for, Signer, VerifierKey};
use sealog_journal::fs::{OpenHow, VFile, Vfs};
use sealog_journal::{Journal, JournalError, JournalOptions};
use serde::{Deserialize, Serialize};

pub use drains::{
    check_destination, check_room, clean_cursor, is_drain_id, load_cursor, new_drain, save_cursor,
    uuid_v4, DrainCursor, DrainInfo, DrainStore, Select, StoredFraming, MAX_DRAINS_PER_REALM,
};
pub use realm_store::RealmStore;
pub use tokens::{mint, IssuedToken, Scope, TokenInfo};

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
    /// A drain's destination or selection is not acceptable.
    #[error("{0}")]
    InvalidDrain(String),
    /// The realm has a drain with that url and selection already.
    #[error("a drain to {0} with this selection exists already")]
    DrainExists(String),
    /// No drain with that id in this realm.
    #[error("no such log drain {0:?}")]
    UnknownDrain(String),
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
    /// True when the journal was created with the realm (every realm made
    /// by this version): a missing journal directory is then damage, not
    /// a realm that was never written to.
    #[serde(default)]
    pub journal_created: bool,
}

/// What `realm create` hands out, once.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    fs: Arc<dyn Vfs>,
    root: PathBuf,
    _lock: Arc<dyn VFile>,
}

/// Prefix of a realm directory being created.
const CREATING: &str = ".creating-";

impl DataDir {
    /// Opens `root` on the real filesystem. See [`DataDir::open_in`].
    ///
    /// # Errors
    /// As [`DataDir::open_in`].
    pub fn open(root: &Path, holder: &str) -> Result<Self> {
        Self::open_in(sealog_journal::fs::real(), root, holder)
    }

    /// Opens `root` on `fs` (creating it, mode 0700, if missing) and takes
    /// its lock. `holder` says who holds it (e.g. `sealog ingest`), for the
    /// error a second process gets. Leftovers of an interrupted realm
    /// creation are removed.
    ///
    /// # Errors
    /// [`StoreError::Locked`] when another process holds it; I/O and
    /// format errors.
    pub fn open_in(fs: Arc<dyn Vfs>, root: &Path, holder: &str) -> Result<Self> {
        if !fs.exists(root) {
            // Durably: a realm created in it must not vanish with it.
            sealog_journal::fs::create_dir_all_durable(&*fs, root)
                .map_err(StoreError::io("create", root))?;
        }
        let lock_path = root.join("LOCK");
        let lock = fs
            .open(&lock_path, OpenHow::Create { mode: 0o600 })
            .map_err(StoreError::io("open", &lock_path))?;
        if lock.try_lock().is_err() {
            let mut b = vec![0u8; 512];
            let n = lock.read_at(&mut b, 0).unwrap_or(0);
            let who = String::from_utf8_lossy(&b[..n]).trim().to_string();
            return Err(StoreError::Locked {
                path: root.to_path_buf(),
                holder: if who.is_empty() {
                    "holder unknown".into()
                } else {
                    who
                },
            });
        }
        let info = format!(
            "pid {} ({holder}) since {}",
            std::process::id(),
            sealog_event::format_rfc3339_nanos(sealog_event::now_ns())
        );
        lock.set_len(0)
            .and_then(|_| lock.write_at(info.as_bytes(), 0))
            .map_err(StoreError::io("write", &lock_path))?;
        let dir = Self {
            fs: fs.clone(),
            root: root.to_path_buf(),
            _lock: lock,
        };
        let marker = root.join("sealog.meta");
        if fs.exists(&marker) {
            let _: DirMarker = meta::read(&*fs, &marker, "sealog-data")?;
        } else {
            let entries = fs.list(root).map_err(StoreError::io("list", root))?;
            // The lock and the marker's temporary file are what a power
            // loss during the directory's own creation can leave.
            let leftover = marker.with_extension("tmp");
            let leftover = leftover.file_name().and_then(|n| n.to_str());
            if entries
                .iter()
                .any(|e| e != "LOCK" && Some(e.as_str()) != leftover)
            {
                return Err(StoreError::Format {
                    path: root.to_path_buf(),
                    reason: "directory is not empty and is not a sealog data directory".into(),
                });
            }
            meta::write(
                &*fs,
                &marker,
                "sealog-data",
                &DirMarker { created_at: now() },
                0o644,
            )?;
        }
        let realms = root.join("realms");
        if !fs.is_dir(&realms) {
            fs.create_dir(&realms)
                .map_err(StoreError::io("create", &realms))?;
            fs.sync_dir(root)
                .map_err(StoreError::io("fsync directory", root))?;
        }
        let mut removed = false;
        for name in fs.list(&realms).map_err(StoreError::io("list", &realms))? {
            if name.starts_with(CREATING) {
                let p = realms.join(&name);
                tracing::warn!(path = %p.display(), "removing an interrupted realm creation");
                let gone = if fs.is_dir(&p) {
                    fs.remove_dir_all(&p)
                } else {
                    fs.remove_file(&p)
                };
                // Not a reason to refuse every realm: say so and go on.
                match gone {
                    Ok(()) => removed = true,
                    Err(e) => {
                        tracing::error!(path = %p.display(), cause = %e, "cannot remove a leftover of an interrupted realm creation; remove it by hand")
                    }
                }
            }
        }
        if removed {
            fs.sync_dir(&realms)
                .map_err(StoreError::io("fsync directory", &realms))?;
        }
        Ok(dir)
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The filesystem it lives on.
    pub fn vfs(&self) -> &Arc<dyn Vfs> {
        &self.fs
    }

    /// The only place a realm name becomes a path: a [`RealmName`] is a
    /// single safe path component.
    fn realm_dir(&self, name: &RealmName) -> PathBuf {
        self.root.join("realms").join(name.as_str())
    }

    /// Creates a realm with a fresh Ed25519 key, an empty journal and one
    /// write and one query token. The realm appears whole or not at all.
    ///
    /// # Errors
    /// A bad or taken name; I/O errors (then no realm exists).
    pub fn create_realm(&mut self, name: &RealmName) -> Result<CreatedRealm> {
        let mut created = self.create_realms(std::slice::from_ref(name))?;
        Ok(created.remove(0))
    }

    /// Creates several realms as [`DataDir::create_realm`] does, with one
    /// directory sync and one write of the token file for all of them
    /// (thousands of realms at once would otherwise rewrite the token file
    /// once per realm). All of them appear, or none.
    ///
    /// # Errors
    /// A bad, taken or repeated name; I/O errors (then none of them exist).
    pub fn create_realms(&mut self, names: &[RealmName]) -> Result<Vec<CreatedRealm>> {
        self.create_realms_keyed(names, &[])
    }

    /// Creates a realm as [`DataDir::create_realm`] does, but signed with
    /// `key` (a realm brought back from another store keeps its key, so its
    /// checkpoints stay valid).
    ///
    /// # Errors
    /// As [`DataDir::create_realm`].
    pub fn create_realm_with_key(
        &mut self,
        name: &RealmName,
        key: SigningKey,
    ) -> Result<CreatedRealm> {
        let mut created = self.create_realms_keyed(std::slice::from_ref(name), &[key])?;
        Ok(created.remove(0))
    }

    /// Creates `names`, the first `keys.len()` of them with those keys.
    fn create_realms_keyed(
        &mut self,
        names: &[RealmName],
        keys: &[SigningKey],
    ) -> Result<Vec<CreatedRealm>> {
        let realms = self.root.join("realms");
        let mut seen = std::collections::HashSet::new();
        for name in names {
            if !seen.insert(name.as_str()) || self.fs.exists(&self.realm_dir(name)) {
                return Err(StoreError::RealmExists(name.to_string()));
            }
        }
        let mut done: Vec<(PathBuf, RealmInfo)> = Vec::with_capacity(names.len());
        let undo = |fs: &Arc<dyn Vfs>, done: &[(PathBuf, RealmInfo)]| {
            for (dir, _) in done {
                if let Err(e) = fs.remove_dir_all(dir) {
                    tracing::error!(dir = %dir.display(), cause = %e, "realm created without tokens and not removed; issue tokens with `sealog token issue`");
                }
            }
            let _ = fs.sync_dir(&realms);
        };
        for (i, name) in names.iter().enumerate() {
            let dir = self.realm_dir(name);
            let mut nonce = [0u8; 6];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
            let tmp = realms.join(format!("{CREATING}{name}-{}", hex::encode(nonce)));
            let built = self.build_realm(&tmp, name, keys.get(i)).and_then(|info| {
                self.fs
                    .rename(&tmp, &dir)
                    .map_err(StoreError::io("rename", &dir))?;
                Ok(info)
            });
            match built {
                Ok(info) => done.push((dir, info)),
                Err(e) => {
                    let _ = self.fs.remove_dir_all(&tmp);
                    undo(&self.fs, &done);
                    return Err(e);
                }
            }
        }
        let scopes: Vec<(&str, Scope)> = names
            .iter()
            .flat_map(|n| [(n.as_str(), Scope::Write), (n.as_str(), Scope::Query)])
            .collect();
        let tokens = self
            .fs
            .sync_dir(&realms)
            .map_err(StoreError::io("fsync directory", &realms))
            .and_then(|_| self.issue_tokens_for(&scopes));
        let tokens = match tokens {
            Ok(t) => t,
            Err(e) => {
                // No tokens were stored (one write for all): take the realms
                // back, so a retry can create them (nothing was written to them).
                undo(&self.fs, &done);
                return Err(e);
            }
        };
        Ok(done
            .into_iter()
            .zip(tokens.chunks_exact(2))
            .map(|((_, info), t)| CreatedRealm {
                realm: info.name,
                write_token: t[0].token.clone(),
                query_token: t[1].token.clone(),
                public_key: info.public_key,
            })
            .collect())
    }

    /// Writes a complete realm into `tmp`, everything synced.
    fn build_realm(
        &self,
        tmp: &Path,
        name: &RealmName,
        key: Option<&SigningKey>,
    ) -> Result<RealmInfo> {
        self.fs
            .create_dir(tmp)
            .map_err(StoreError::io("create", tmp))?;
        let key = key
            .cloned()
            .unwrap_or_else(|| SigningKey::generate(&mut rand::rngs::OsRng));
        let signer = Signer::new(origin_for(name), key.clone());
        meta::write(
            &*self.fs,
            &tmp.join("signing.key"),
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
            journal_created: true,
        };
        meta::write(
            &*self.fs,
            &tmp.join("realm.meta"),
            "sealog-realm",
            &info,
            0o644,
        )?;
        let jdir = tmp.join("journal");
        self.fs
            .create_dir(&jdir)
            .map_err(StoreError::io("create", &jdir))?;
        self.fs
            .sync_dir(tmp)
            .map_err(StoreError::io("fsync directory", tmp))?;
        drop(Journal::open_in(
            self.fs.clone(),
            &jdir,
            name,
            signer,
            JournalOptions::default(),
        )?);
        Ok(info)
    }

    /// Every realm directory with its description or what is wrong with
    /// it, by name: one damaged realm does not hide the others.
    ///
    /// # Errors
    /// Only when the realms directory cannot be listed.
    pub fn realm_entries(&self) -> Result<Vec<(RealmName, Result<RealmInfo>)>> {
        let dir = self.root.join("realms");
        let mut out = Vec::new();
        for name in self.fs.list(&dir).map_err(StoreError::io("list", &dir))? {
            // Anything else in `realms/` (a leftover, a planted file) is not a realm.
            let Ok(name) = RealmName::try_from(name) else {
                continue;
            };
            if self.fs.is_dir(&self.realm_dir(&name)) {
                let r = self.realm(&name).and_then(|info| {
                    self.verifier_key(&name)?;
                    Ok(info)
                });
                out.push((name, r));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// All healthy realms, by name (see [`DataDir::realm_entries`] for the
    /// damaged ones too).
    ///
    /// # Errors
    /// I/O errors listing the realms.
    pub fn realms(&self) -> Result<Vec<RealmInfo>> {
        Ok(self
            .realm_entries()?
            .into_iter()
            .filter_map(|(_, r)| r.ok())
            .collect())
    }

    /// One realm's description.
    ///
    /// # Errors
    /// [`StoreError::UnknownRealm`] when there is no such realm directory;
    /// [`StoreError::Format`] when its `realm.meta` is missing or damaged.
    pub fn realm(&self, name: &RealmName) -> Result<RealmInfo> {
        let dir = self.realm_dir(name);
        if !self.fs.is_dir(&dir) {
            return Err(StoreError::UnknownRealm(name.to_string()));
        }
        let path = dir.join("realm.meta");
        if !self.fs.exists(&path) {
            return Err(StoreError::Format {
                path,
                reason: "realm.meta is missing: the realm's description and public key are gone"
                    .into(),
            });
        }
        let info: RealmInfo = meta::read(&*self.fs, &path, "sealog-realm")?;
        if info.name != name.as_str() {
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
    pub fn verifier_key(&self, name: &RealmName) -> Result<VerifierKey> {
        let info = self.realm(name)?;
        info.public_key.parse().map_err(|e| StoreError::Format {
            path: self.realm_dir(name).join("realm.meta"),
            reason: format!("public key: {e}"),
        })
    }

    /// The realm's signing key, for `sealog migrate` (which signs nothing
    /// new with it: the PostgreSQL store it opens checks it against the
    /// realm and keeps the checkpoints as they were signed).
    ///
    /// # Errors
    /// Unknown realm; a damaged or mismatched key file.
    pub fn realm_signer(&self, name: &RealmName) -> Result<Signer> {
        self.signer(name)
    }

    /// The realm's Ed25519 signing key, for `sealog migrate`, which keeps
    /// it with the realm in the other store.
    ///
    /// # Errors
    /// As [`DataDir::realm_signer`].
    pub fn realm_signing_key(&self, name: &RealmName) -> Result<SigningKey> {
        // The same checks as for signing.
        self.signer(name)?;
        self.seed(name)
    }

    /// The seed in the realm's `signing.key`.
    fn seed(&self, name: &RealmName) -> Result<SigningKey> {
        let path = self.realm_dir(name).join("signing.key");
        let kf: KeyFile = meta::read(&*self.fs, &path, "sealog-key")?;
        let seed: [u8; 32] = B64
            .decode(&kf.ed25519_seed)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| StoreError::Format {
                path: path.clone(),
                reason: "seed is not base64 of 32 bytes".into(),
            })?;
        Ok(SigningKey::from_bytes(&seed))
    }

    fn signer(&self, name: &RealmName) -> Result<Signer> {
        let vk = self.verifier_key(name)?;
        let signer = Signer::new(origin_for(name), self.seed(name)?);
        if signer.verifier() != vk {
            return Err(StoreError::Format {
                path: self.realm_dir(name).join("signing.key"),
                reason: "signing key does not match the realm's public key".into(),
            });
        }
        Ok(signer)
    }

    /// Opens a realm's journal.
    ///
    /// # Errors
    /// Unknown realm; key and journal errors; a realm created with its
    /// journal whose journal directory is gone.
    pub fn open_journal(&self, name: &RealmName, opts: JournalOptions) -> Result<Journal> {
        self.open_journal_on(self.fs.clone(), name, opts)
    }

    /// [`DataDir::open_journal`] with the journal's files on `fs`, which
    /// must be a view of this directory's filesystem (the server passes
    /// one that bounds open descriptors,
    /// [`sealog_journal::fs_pool::PooledFs`]).
    ///
    /// # Errors
    /// As [`DataDir::open_journal`].
    pub fn open_journal_on(
        &self,
        fs: Arc<dyn Vfs>,
        name: &RealmName,
        opts: JournalOptions,
    ) -> Result<Journal> {
        let info = self.realm(name)?;
        let signer = self.signer(name)?;
        let jdir = self.journal_dir(name);
        if info.journal_created && !self.fs.is_dir(&jdir) {
            return Err(StoreError::Journal(JournalError::Missing {
                what: "the realm's journal directory",
                path: jdir,
            }));
        }
        let opts = JournalOptions {
            require_mark: opts.require_mark || info.journal_created,
            ..opts
        };
        Ok(Journal::open_in(fs, &jdir, name, signer, opts)?)
    }

    /// Where a realm's journal lives (whether or not the realm exists).
    pub fn journal_dir(&self, name: &RealmName) -> PathBuf {
        self.realm_dir(name).join("journal")
    }
}

fn now() -> String {
    sealog_event::format_rfc3339_nanos(sealog_event::now_ns())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rn(name: &str) -> RealmName {
        RealmName::new(name).expect("a valid realm name")
    }

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
        let c = dd.create_realm(&rn("acme")).expect("create");
        assert!(c.public_key.starts_with("sealog/acme+"));
        assert!(matches!(
            dd.create_realm(&rn("acme")),
            Err(StoreError::RealmExists(_))
        ));
        // A name that could leave `realms/` cannot even be made.
        assert!(RealmName::new("../x").is_err());
        // The token API takes plain names: a bad one names no realm.
        assert!(matches!(
            dd.issue_token("../x", Scope::Write),
            Err(StoreError::UnknownRealm(_))
        ));
        assert!(matches!(
            dd.realm(&rn("nope")),
            Err(StoreError::UnknownRealm(_))
        ));
        assert_eq!(dd.realms().expect("list").len(), 1);
        let j = dd
            .open_journal(&rn("acme"), JournalOptions::default())
            .expect("journal");
        assert_eq!(j.verifier().to_string(), c.public_key);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.path().join("realms/acme/signing.key"))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn foreign_directory_is_refused() {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::write(d.path().join("important.txt"), b"x").expect("write");
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
        dd.create_realm(&rn("acme")).expect("create");
        let p = d.path().join("realms/acme/signing.key");
        let mut bytes = std::fs::read(&p).expect("read");
        let n = bytes.len();
        bytes[n - 5] ^= 1;
        std::fs::write(&p, bytes).expect("write");
        let err = dd
            .open_journal(&rn("acme"), JournalOptions::default())
            .expect_err("refuse");
        assert!(err.to_string().contains("checksum"), "{err}");
    }
}
