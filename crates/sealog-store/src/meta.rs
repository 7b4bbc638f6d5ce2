//! The envelope for sealog's small metadata files.
//!
//! ```text
//! sealog-<kind> v1 sha256=<64 hex digits of the body>\n
//! <JSON body>
//! ```
//!
//! The first line says what the file is, its format version and the
//! checksum of the rest, so a damaged or foreign file is named precisely
//! instead of half-parsed. Files are replaced atomically: write a temp file,
//! fsync it, rename over the old one, fsync the directory.

use std::path::Path;

use sealog_journal::fs::{OpenHow, Vfs};

use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{Result, StoreError};

/// The format version this build writes and reads.
pub const VERSION: u32 = 1;

/// The largest metadata file read (tokens of 10,000 realms take ~6 MB).
pub const MAX_META_BYTES: u64 = 64 * 1024 * 1024;

/// Reads a metadata file of `kind`.
///
/// # Errors
/// I/O errors; [`StoreError::Format`] naming what is wrong.
pub fn read<T: DeserializeOwned>(fs: &dyn Vfs, path: &Path, kind: &str) -> Result<T> {
    let f = fs
        .open(path, OpenHow::Read)
        .map_err(StoreError::io("read", path))?;
    let len = f.len().map_err(StoreError::io("stat", path))?;
    if len > MAX_META_BYTES {
        return Err(StoreError::Format {
            path: path.to_path_buf(),
            reason: format!("{len} bytes; a {kind} file is never over {MAX_META_BYTES} bytes"),
        });
    }
    let bytes = f.read_to_end_at(0).map_err(StoreError::io("read", path))?;
    let bad = |reason: String| StoreError::Format {
        path: path.to_path_buf(),
        reason,
    };
    let nl = bytes
        .iter()
        .position(|b| *b == b'\n')
        .ok_or_else(|| bad(format!("not a {kind} file (no header line)")))?;
    let head = std::str::from_utf8(&bytes[..nl]).map_err(|_| bad(format!("not a {kind} file")))?;
    let mut parts = head.split(' ');
    let (Some(k), Some(v), Some(sum), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad(format!("not a {kind} file (bad header line)")));
    };
    if k != kind {
        return Err(bad(format!("is a {k} file, expected {kind}")));
    }
    if v != format!("v{VERSION}") {
        return Err(bad(format!("format {v}; this build reads v{VERSION}")));
    }
    let body = &bytes[nl + 1..];
    if sum.strip_prefix("sha256=") != Some(hex::encode(Sha256::digest(body)).as_str()) {
        return Err(bad(
            "checksum mismatch: the file is damaged or was edited".into()
        ));
    }
    serde_json::from_slice(body).map_err(|e| bad(format!("bad content: {e}")))
}

/// Writes `value` as a metadata file of `kind`, atomically, with `mode`.
///
/// # Errors
/// I/O errors.
pub fn write<T: Serialize>(
    fs: &dyn Vfs,
    path: &Path,
    kind: &str,
    value: &T,
    mode: u32,
) -> Result<()> {
    let mut body = serde_json::to_vec_pretty(value).map_err(|e| StoreError::Format {
        path: path.to_path_buf(),
        reason: format!("cannot encode: {e}"),
    })?;
    body.push(b'\n');
    let head = format!(
        "{kind} v{VERSION} sha256={}\n",
        hex::encode(Sha256::digest(&body))
    );
    let tmp = path.with_extension("tmp");
    let f = fs
        .open(&tmp, OpenHow::CreateTruncate { mode })
        .map_err(StoreError::io("create", &tmp))?;
    let mut all = head.into_bytes();
    all.extend_from_slice(&body);
    f.write_at(&all, 0)
        .and_then(|_| f.sync_all())
        .map_err(StoreError::io("write", &tmp))?;
    fs.rename(&tmp, path)
        .map_err(StoreError::io("rename", path))?;
    if let Some(dir) = path.parent() {
        fs.sync_dir(dir)
            .map_err(StoreError::io("fsync directory", dir))?;
    }
    Ok(())
}
