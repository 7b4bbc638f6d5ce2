//! Drains: where a realm's records are delivered, kept in
//! `<data>/drains.meta` (the metadata envelope, kind `sealog-drains`).
//!
//! A drain belongs to one realm and selects its records by logshuttle's
//! keys (an app in a space, or a site) or by a query filter. Its
//! destination is checked when it is created ([`parse_destination`]), not
//! when delivery first fails as in logshuttle. A drain's id is a random
//! UUID (version 4, as logshuttle's), unguessable; a realm can only see
//! and remove its own drains, and an id of another realm's drain is
//! answered exactly like an unknown one.
//!
//! Body of the file:
//!
//! ```text
//! {"drains": [{"id", "realm", "select": {"kind": "app", "app", "space"}
//!   | {"kind": "site", "site"} | {"kind": "filter", "where": [..], "q"},
//!   "url", "framing": "newline" | "octet-counting", "created_at",
//!   "updated_at"}, ...]}
//! ```

use rand::RngCore;
use sealog_codec::drain::{parse_destination, redacted, Framing};
use serde::{Deserialize, Serialize};

use crate::{meta, now, DataDir, Result, StoreError};

/// Drains one realm may have.
pub const MAX_DRAINS_PER_REALM: usize = 100;

/// Which of the realm's records a drain delivers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Select {
    /// Records of `app` in `space` (logshuttle's `/apps/{app}-{space}`).
    App {
        /// The app.
        app: String,
        /// The space.
        space: String,
    },
    /// Records of a site (logshuttle's `/sites/{site}`).
    Site {
        /// The site's domain.
        site: String,
    },
    /// Records matching a query filter (`where` terms and `q` text, as the
    /// query API takes them).
    Filter {
        /// `field:value` terms, all of which must match.
        #[serde(rename = "where", default)]
        terms: Vec<String>,
        /// Text the record must contain.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        q: Option<String>,
    },
}

/// How a drain frames its records on a syslog stream, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoredFraming {
    /// One packet per line.
    #[default]
    Newline,
    /// RFC 6587 octet counting.
    OctetCounting,
}

impl From<StoredFraming> for Framing {
    fn from(f: StoredFraming) -> Self {
        match f {
            StoredFraming::Newline => Framing::Newline,
            StoredFraming::OctetCounting => Framing::OctetCounting,
        }
    }
}

/// A stored drain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrainInfo {
    /// Random UUID.
    pub id: String,
    /// The realm whose records it delivers.
    pub realm: String,
    /// Which records.
    pub select: Select,
    /// The destination, as given (checked).
    pub url: String,
    /// Stream framing for syslog destinations.
    #[serde(default)]
    pub framing: StoredFraming,
    /// When it was created.
    pub created_at: String,
    /// When it was last changed.
    pub updated_at: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DrainFile {
    drains: Vec<DrainInfo>,
}

/// A random version 4 UUID (drain ids, log session ids).
pub fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Where a drain's delivery stands, kept in `<data>/drains/<id>.cursor`
/// (kind `sealog-drain-cursor`). Written after deliveries at most about
/// once a second and at shutdown; the cursor only moves past records the
/// destination confirmed, so after a crash delivery resumes at or before
/// where it stopped (at least once, never a gap).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrainCursor {
    /// The next seq to deliver: every record before it was delivered.
    pub cursor: u64,
    /// Records delivered over the drain's life (repeats after an outage
    /// counted again).
    pub delivered: u64,
    /// Set while the destination refuses the records (an HTTP 4xx other
    /// than 408/429): the reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing: Option<String>,
}

fn cursor_path(root: &std::path::Path, id: &str) -> std::path::PathBuf {
    root.join("drains").join(format!("{id}.cursor"))
}

/// Reads drain `id`'s cursor under data directory `root`; none yet is the
/// start of the realm.
///
/// # Errors
/// I/O and format errors (a damaged cursor file is named, not guessed at).
pub fn load_cursor(
    fs: &dyn sealog_journal::fs::Vfs,
    root: &std::path::Path,
    id: &str,
) -> Result<DrainCursor> {
    let path = cursor_path(root, id);
    if !fs.exists(&path) {
        return Ok(DrainCursor::default());
    }
    meta::read(fs, &path, "sealog-drain-cursor")
}

/// Writes drain `id`'s cursor atomically (temporary file, fsync, rename).
///
/// # Errors
/// I/O errors.
pub fn save_cursor(
    fs: &dyn sealog_journal::fs::Vfs,
    root: &std::path::Path,
    id: &str,
    c: &DrainCursor,
) -> Result<()> {
    let dir = root.join("drains");
    if !fs.is_dir(&dir) {
        fs.create_dir_all(&dir)
            .map_err(StoreError::io("create", &dir))?;
    }
    meta::write(fs, &cursor_path(root, id), "sealog-drain-cursor", c, 0o600)
}

/// Longest app, space, site or filter term accepted.
const MAX_KEY_BYTES: usize = 256;

fn check_select(s: &Select) -> Result<()> {
    let bad = |why: String| Err(StoreError::InvalidDrain(why));
    let field = |name: &str, v: &str| -> Result<()> {
        if v.is_empty() {
            return bad(format!("{name} is empty"));
        }
        if v.len() > MAX_KEY_BYTES || v.chars().any(char::is_control) {
            return bad(format!(
                "{name} must be at most {MAX_KEY_BYTES} bytes without control characters"
            ));
        }
        Ok(())
    };
    match s {
        Select::App { app, space } => {
            field("app", app)?;
            field("space", space)
        }
        Select::Site { site } => field("site", site),
        Select::Filter { terms, q } => {
            if terms.is_empty() && q.is_none() {
                return bad("a filter drain needs a where term or q".into());
            }
            for t in terms {
                field("where term", t)?;
                // As the query API takes them: `field=value` or `field:value`.
                if t.find(['=', ':']).is_none_or(|at| at == 0) {
                    return bad(format!("where term {t:?} is not field=value"));
                }
            }
            if let Some(q) = q {
                field("q", q)?;
            }
            Ok(())
        }
    }
}

/// Checks a new drain's destination and selection, whatever keeps it.
///
/// # Errors
/// [`StoreError::InvalidDrain`] naming the problem.
pub fn check_destination(select: &Select, url: &str) -> Result<()> {
    parse_destination(url).map_err(|e| StoreError::InvalidDrain(e.to_string()))?;
    check_select(select)
}

/// Checks that `realm`, which has drains `mine`, may take one more for
/// `select` to `url`: at most [`MAX_DRAINS_PER_REALM`], and not the same url
/// for the same selection twice.
///
/// # Errors
/// [`StoreError::InvalidDrain`] at the cap; [`StoreError::DrainExists`].
pub fn check_room(realm: &str, mine: &[&DrainInfo], select: &Select, url: &str) -> Result<()> {
    if mine.len() >= MAX_DRAINS_PER_REALM {
        return Err(StoreError::InvalidDrain(format!(
            "realm {realm} has {MAX_DRAINS_PER_REALM} drains, the most allowed"
        )));
    }
    if mine.iter().any(|d| d.url == url && d.select == *select) {
        return Err(StoreError::DrainExists(redacted(url)));
    }
    Ok(())
}

/// A new drain with a fresh id, created now.
pub fn new_drain(realm: String, select: Select, url: &str, framing: StoredFraming) -> DrainInfo {
    let at = now();
    DrainInfo {
        id: uuid_v4(),
        realm,
        select,
        url: url.to_string(),
        framing,
        created_at: at.clone(),
        updated_at: at,
    }
}

/// Drains and their delivery cursors, whatever keeps them: the data
/// directory (`drains.meta`, `drains/<id>.cursor`) or PostgreSQL
/// (`sealog-pg`). Both pass [`crate::realm_store::conformance::drains`].
pub trait DrainStore {
    /// Drains, of one realm or all, oldest first.
    ///
    /// # Errors
    /// Storage errors.
    fn drains(&self, realm: Option<&str>) -> Result<Vec<DrainInfo>>;
    /// Adds a drain to `realm` (checked as [`check_destination`] and
    /// [`check_room`] say).
    ///
    /// # Errors
    /// [`StoreError::InvalidDrain`]; [`StoreError::DrainExists`];
    /// [`StoreError::UnknownRealm`]; storage errors.
    fn add_drain(
        &mut self,
        realm: &str,
        select: Select,
        url: &str,
        framing: StoredFraming,
    ) -> Result<DrainInfo>;
    /// Removes drain `id` of `realm`, and its cursor; another realm's drain
    /// is not found.
    ///
    /// # Errors
    /// [`StoreError::UnknownDrain`]; storage errors.
    fn remove_drain(&mut self, realm: &str, id: &str) -> Result<DrainInfo>;
    /// Drain `id`'s cursor; none saved yet is the start of the realm.
    ///
    /// # Errors
    /// Storage errors; a damaged cursor is named, not guessed at.
    fn drain_cursor(&self, id: &str) -> Result<DrainCursor>;
    /// Saves drain `id`'s cursor, durably.
    ///
    /// # Errors
    /// [`StoreError::UnknownDrain`] where the store knows the drain is gone;
    /// storage errors.
    fn save_drain_cursor(&self, id: &str, c: &DrainCursor) -> Result<()>;
}

/// Whether `id` can be a drain's id (a UUID as [`uuid_v4`] makes them):
/// anything else names no drain, and never a path.
pub fn is_drain_id(id: &str) -> bool {
    id.len() == 36
        && id.bytes().enumerate().all(|(i, b)| {
            matches!(i, 8 | 13 | 18 | 23) == (b == b'-') && (b == b'-' || b.is_ascii_hexdigit())
        })
}

/// A cursor as every store keeps it: a NUL in the failure reason (which
/// quotes a destination's answer) becomes U+FFFD, since PostgreSQL text
/// cannot hold it.
pub fn clean_cursor(c: &DrainCursor) -> DrainCursor {
    DrainCursor {
        failing: c.failing.as_ref().map(|f| f.replace('\0', "\u{fffd}")),
        ..c.clone()
    }
}

impl DrainStore for DataDir {
    fn drains(&self, realm: Option<&str>) -> Result<Vec<DrainInfo>> {
        DataDir::drains(self, realm)
    }

    fn add_drain(
        &mut self,
        realm: &str,
        select: Select,
        url: &str,
        framing: StoredFraming,
    ) -> Result<DrainInfo> {
        DataDir::add_drain(self, realm, select, url, framing)
    }

    fn remove_drain(&mut self, realm: &str, id: &str) -> Result<DrainInfo> {
        DataDir::remove_drain(self, realm, id)
    }

    fn drain_cursor(&self, id: &str) -> Result<DrainCursor> {
        if !is_drain_id(id) {
            return Ok(DrainCursor::default());
        }
        load_cursor(&*self.fs, &self.root, id)
    }

    fn save_drain_cursor(&self, id: &str, c: &DrainCursor) -> Result<()> {
        // A drain removed meanwhile gets no cursor file back.
        if !is_drain_id(id) || !self.load_drains()?.drains.iter().any(|d| d.id == id) {
            return Err(StoreError::UnknownDrain(id.to_string()));
        }
        save_cursor(&*self.fs, &self.root, id, &clean_cursor(c))
    }
}

impl DataDir {
    fn load_drains(&self) -> Result<DrainFile> {
        let path = self.root.join("drains.meta");
        if !self.fs.exists(&path) {
            return Ok(DrainFile::default());
        }
        meta::read(&*self.fs, &path, "sealog-drains")
    }

    fn save_drains(&self, f: &DrainFile) -> Result<()> {
        meta::write(
            &*self.fs,
            &self.root.join("drains.meta"),
            "sealog-drains",
            f,
            0o600,
        )
    }

    /// Drains, of one realm or all, oldest first.
    ///
    /// # Errors
    /// I/O and format errors.
    pub fn drains(&self, realm: Option<&str>) -> Result<Vec<DrainInfo>> {
        Ok(self
            .load_drains()?
            .drains
            .into_iter()
            .filter(|d| realm.is_none_or(|r| d.realm == r))
            .collect())
    }

    /// Adds a drain to `realm` after checking its destination and
    /// selection. The same url for the same selection of a realm is
    /// refused, as logshuttle skipped it.
    ///
    /// # Errors
    /// [`StoreError::InvalidDrain`] naming the problem;
    /// [`StoreError::DrainExists`]; unknown realm; I/O errors.
    pub fn add_drain(
        &mut self,
        realm: &str,
        select: Select,
        url: &str,
        framing: StoredFraming,
    ) -> Result<DrainInfo> {
        let realm = self
            .realm(
                &sealog_event::RealmName::new(realm)
                    .map_err(|_| StoreError::UnknownRealm(realm.to_string()))?,
            )?
            .name;
        check_destination(&select, url)?;
        let mut f = self.load_drains()?;
        let mine: Vec<&DrainInfo> = f.drains.iter().filter(|d| d.realm == realm).collect();
        check_room(&realm, &mine, &select, url)?;
        let d = new_drain(realm, select, url, framing);
        f.drains.push(d.clone());
        self.save_drains(&f)?;
        Ok(d)
    }

    /// Removes drain `id` of `realm`; another realm's drain is not found.
    ///
    /// # Errors
    /// [`StoreError::UnknownDrain`]; I/O errors.
    pub fn remove_drain(&mut self, realm: &str, id: &str) -> Result<DrainInfo> {
        let mut f = self.load_drains()?;
        let at = f
            .drains
            .iter()
            .position(|d| d.id == id && d.realm == realm)
            .ok_or_else(|| StoreError::UnknownDrain(id.to_string()))?;
        let d = f.drains.remove(at);
        self.save_drains(&f)?;
        let cursor = cursor_path(&self.root, id);
        if self.fs.exists(&cursor) {
            // The drain is gone; a cursor left behind is only clutter.
            let _ = self.fs.remove_file(&cursor);
        }
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Listing, ownership, cursors, the cap and reopening are checked by
    // `realm_store::conformance::drains`, on this store and PostgreSQL's.

    #[test]
    fn every_refusal_names_the_problem() {
        let t = tempfile::tempdir().expect("tempdir");
        let mut dd = DataDir::open(t.path(), "test").expect("open");
        dd.create_realm(&"acme".parse().expect("name"))
            .expect("realm");
        let app = || Select::App {
            app: "api".into(),
            space: "prod".into(),
        };
        for (url, select, want) in [
            ("syslog://:514", app(), "no host"),
            ("syslog://h:99999", app(), "bad port"),
            (
                "syslog://h:514",
                Select::App {
                    app: String::new(),
                    space: "s".into(),
                },
                "app is empty",
            ),
            (
                "syslog://h:514",
                Select::App {
                    app: "a".repeat(MAX_KEY_BYTES + 1),
                    space: "s".into(),
                },
                "at most 256 bytes",
            ),
            (
                "syslog://h:514",
                Select::Filter {
                    terms: vec![],
                    q: None,
                },
                "needs a where term",
            ),
            (
                "syslog://h:514",
                Select::Filter {
                    terms: vec!["=v".into()],
                    q: None,
                },
                "field=value",
            ),
        ] {
            let e = dd
                .add_drain("acme", select, url, StoredFraming::Newline)
                .expect_err(url);
            assert!(e.to_string().contains(want), "{url}: {e}");
        }
        assert!(dd.drains(None).expect("list").is_empty());
    }
}
