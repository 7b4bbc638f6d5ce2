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
        parse_destination(url).map_err(|e| StoreError::InvalidDrain(e.to_string()))?;
        check_select(&select)?;
        let mut f = self.load_drains()?;
        let mine = f.drains.iter().filter(|d| d.realm == realm);
        if mine.clone().count() >= MAX_DRAINS_PER_REALM {
            return Err(StoreError::InvalidDrain(format!(
                "realm {realm} has {MAX_DRAINS_PER_REALM} drains, the most allowed"
            )));
        }
        if mine.clone().any(|d| d.url == url && d.select == select) {
            return Err(StoreError::DrainExists(redacted(url)));
        }
        let at = now();
        let d = DrainInfo {
            id: uuid_v4(),
            realm,
            select,
            url: url.to_string(),
            framing,
            created_at: at.clone(),
            updated_at: at,
        };
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

    fn dir() -> (tempfile::TempDir, DataDir) {
        let t = tempfile::tempdir().expect("tempdir");
        let mut dd = DataDir::open(t.path(), "test").expect("open");
        for r in ["acme", "other"] {
            dd.create_realm(&r.parse().expect("name")).expect("realm");
        }
        (t, dd)
    }

    fn app() -> Select {
        Select::App {
            app: "api".into(),
            space: "prod".into(),
        }
    }

    #[test]
    fn drains_are_checked_kept_and_owned_by_their_realm() {
        let (t, mut dd) = dir();
        let d = dd
            .add_drain(
                "acme",
                app(),
                "syslog+tls://logs.example.com:6514",
                StoredFraming::Newline,
            )
            .expect("add");
        assert_eq!(d.id.len(), 36);
        assert_eq!(&d.id[14..15], "4", "version 4 uuid: {}", d.id);
        let site = dd
            .add_drain(
                "acme",
                Select::Site {
                    site: "www.example.com".into(),
                },
                "https://u:p@h.example.com/logs",
                StoredFraming::OctetCounting,
            )
            .expect("site");
        // The same url for the same selection is refused, for another
        // selection it is a new drain.
        let again = dd.add_drain(
            "acme",
            app(),
            "syslog+tls://logs.example.com:6514",
            StoredFraming::Newline,
        );
        assert!(
            matches!(again, Err(StoreError::DrainExists(_))),
            "{again:?}"
        );
        // Refusals name the problem.
        for (url, select, want) in [
            ("gopher://h:70", app(), "not supported"),
            ("syslog://h", app(), "explicit port"),
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
                Select::Filter {
                    terms: vec!["nocolon".into()],
                    q: None,
                },
                "field=value",
            ),
            (
                "syslog://h:514",
                Select::Filter {
                    terms: vec![],
                    q: None,
                },
                "needs a where term",
            ),
        ] {
            let e = dd
                .add_drain("acme", select, url, StoredFraming::Newline)
                .expect_err(url);
            assert!(e.to_string().contains(want), "{url}: {e}");
        }
        assert!(matches!(
            dd.add_drain("nope", app(), "syslog://h:514", StoredFraming::Newline),
            Err(StoreError::UnknownRealm(_))
        ));
        // Another realm neither sees nor removes acme's drains.
        assert!(dd.drains(Some("other")).expect("list").is_empty());
        assert!(matches!(
            dd.remove_drain("other", &d.id),
            Err(StoreError::UnknownDrain(_))
        ));
        // Kept across a reopen of the directory.
        drop(dd);
        let mut dd = DataDir::open(t.path(), "test").expect("reopen");
        assert_eq!(
            dd.drains(Some("acme")).expect("list"),
            vec![d.clone(), site.clone()]
        );
        assert_eq!(dd.remove_drain("acme", &d.id).expect("remove"), d);
        assert_eq!(dd.drains(None).expect("list"), vec![site]);
    }

    #[test]
    fn a_realm_has_a_bounded_number_of_drains() {
        let (_t, mut dd) = dir();
        for i in 0..MAX_DRAINS_PER_REALM {
            dd.add_drain(
                "acme",
                app(),
                &format!("syslog://h:{}", 1000 + i),
                StoredFraming::Newline,
            )
            .expect("add");
        }
        let e = dd
            .add_drain("acme", app(), "syslog://h:9999", StoredFraming::Newline)
            .expect_err("over the cap");
        assert!(e.to_string().contains("the most allowed"), "{e}");
        dd.add_drain("other", app(), "syslog://h:9999", StoredFraming::Newline)
            .expect("another realm has its own");
    }
}
