//! Where entries go.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Takes each entry, one JSON line with its newline. A writer never
/// blocks the application for long and never panics: what it cannot
/// deliver it keeps (a fallback file) or reports on stderr, as LogHarbour's
/// library does.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use sealog_client::{Logger, LoggerContext, Priority, Writer};
/// #[derive(Debug, Default)]
/// struct Count(Mutex<usize>);
/// impl Writer for Count {
///     fn write(&self, _line: &[u8]) {
///         *self.0.lock().unwrap() += 1;
///     }
/// }
/// let c = Arc::new(Count::default());
/// Logger::new(&LoggerContext::new(Priority::Info), "shop", c.clone()).log("x");
/// assert_eq!(*c.0.lock().unwrap(), 1);
/// ```
pub trait Writer: Send + Sync + std::fmt::Debug {
    /// Writes one entry.
    fn write(&self, line: &[u8]);
}

/// Keeps entries in memory (for tests and examples).
///
/// ```
/// use sealog_client::{VecWriter, Writer};
/// let w = VecWriter::default();
/// w.write(b"{\"a\":1}\n");
/// assert_eq!(w.lines(), vec!["{\"a\":1}".to_string()]);
/// ```
#[derive(Debug, Default)]
pub struct VecWriter {
    lines: Mutex<Vec<String>>,
}

impl VecWriter {
    /// The entries written, without their newlines.
    ///
    /// ```
    /// assert!(sealog_client::VecWriter::default().lines().is_empty());
    /// ```
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Writer for VecWriter {
    fn write(&self, line: &[u8]) {
        let text = String::from_utf8_lossy(line.strip_suffix(b"\n").unwrap_or(line)).into_owned();
        if let Ok(mut l) = self.lines.lock() {
            l.push(text);
        }
    }
}

/// Appends entries to a file (NDJSON), e.g. as a fallback to read or
/// replay later with `sealog ingest`.
///
/// ```
/// use sealog_client::{FileWriter, Writer};
/// let dir = tempfile::tempdir().unwrap();
/// let w = FileWriter::open(dir.path().join("app.ndjson")).unwrap();
/// w.write(b"{\"a\":1}\n");
/// assert_eq!(std::fs::read_to_string(w.path()).unwrap(), "{\"a\":1}\n");
/// ```
#[derive(Debug)]
pub struct FileWriter {
    path: PathBuf,
    file: Mutex<std::fs::File>,
}

impl FileWriter {
    /// Opens (creating) `path` for appending.
    ///
    /// # Errors
    /// The file cannot be opened.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// assert!(sealog_client::FileWriter::open(dir.path().join("x")).is_ok());
    /// ```
    pub fn open(path: impl AsRef<Path>) -> std::io::Result<FileWriter> {
        let path = path.as_ref().to_path_buf();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        Ok(FileWriter {
            path,
            file: Mutex::new(file),
        })
    }

    /// The file written.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let w = sealog_client::FileWriter::open(dir.path().join("x")).unwrap();
    /// assert!(w.path().ends_with("x"));
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Writer for FileWriter {
    fn write(&self, line: &[u8]) {
        // One write call per entry, so concurrent appenders never interleave.
        let r = match self.file.lock() {
            Ok(mut f) => f.write_all(line),
            Err(_) => Err(std::io::Error::other("file lock poisoned")),
        };
        if let Err(e) = r {
            eprintln!(
                "sealog-client: entry not written to {}: {e}",
                self.path.display()
            );
        }
    }
}
