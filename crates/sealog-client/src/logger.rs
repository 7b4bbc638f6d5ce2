//! The logger, its context, and the entry format.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;

use serde::Serialize;

use crate::Writer;

/// LogHarbour's priorities, lowest first.
///
/// ```
/// use sealog_client::Priority;
/// assert!(Priority::Sec > Priority::Warn);
/// assert_eq!(Priority::Err.as_str(), "Err");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Finest debug.
    Debug2 = 1,
    /// Debug.
    Debug1,
    /// Coarsest debug.
    Debug0,
    /// Informational (the default).
    Info,
    /// Warning.
    Warn,
    /// Error.
    Err,
    /// Critical.
    Crit,
    /// Security.
    Sec,
}

impl Priority {
    /// The name written in `pri`.
    ///
    /// ```
    /// assert_eq!(sealog_client::Priority::Debug0.as_str(), "Debug0");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Debug2 => "Debug2",
            Priority::Debug1 => "Debug1",
            Priority::Debug0 => "Debug0",
            Priority::Info => "Info",
            Priority::Warn => "Warn",
            Priority::Err => "Err",
            Priority::Crit => "Crit",
            Priority::Sec => "Sec",
        }
    }

    fn from_u8(n: u8) -> Priority {
        match n {
            1 => Priority::Debug2,
            2 => Priority::Debug1,
            3 => Priority::Debug0,
            4 => Priority::Info,
            5 => Priority::Warn,
            6 => Priority::Err,
            7 => Priority::Crit,
            _ => Priority::Sec,
        }
    }
}

/// Whether an operation succeeded (LogHarbour writes only failures).
///
/// ```
/// use sealog_client::Status;
/// assert_ne!(Status::Success, Status::Failure);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Succeeded (`status` is left out, as LogHarbour does).
    Success,
    /// Failed (`"status":1`).
    Failure,
}

/// What every logger made from it shares: the minimum priority written
/// and the debug mode, both changeable at run time from any thread.
///
/// ```
/// use sealog_client::{LoggerContext, Priority};
/// let ctx = LoggerContext::new(Priority::Warn);
/// ctx.change_min_priority(Priority::Info);
/// ctx.set_debug_mode(true);
/// assert!(ctx.is_debug_mode());
/// assert_eq!(ctx.min_priority(), Priority::Info);
/// ```
#[derive(Debug)]
pub struct LoggerContext {
    min: AtomicU8,
    debug: AtomicBool,
}

impl LoggerContext {
    /// A context writing entries of at least `min`, debug mode off.
    ///
    /// ```
    /// let ctx = sealog_client::LoggerContext::new(sealog_client::Priority::Info);
    /// assert!(!ctx.is_debug_mode());
    /// ```
    pub fn new(min: Priority) -> Arc<LoggerContext> {
        Arc::new(LoggerContext {
            min: AtomicU8::new(min as u8),
            debug: AtomicBool::new(false),
        })
    }

    /// Changes the minimum priority for every logger of this context.
    ///
    /// ```
    /// use sealog_client::{LoggerContext, Priority};
    /// let ctx = LoggerContext::new(Priority::Info);
    /// ctx.change_min_priority(Priority::Err);
    /// assert_eq!(ctx.min_priority(), Priority::Err);
    /// ```
    pub fn change_min_priority(&self, p: Priority) {
        self.min.store(p as u8, Ordering::Relaxed);
    }

    /// The minimum priority written.
    ///
    /// ```
    /// let ctx = sealog_client::LoggerContext::new(sealog_client::Priority::Crit);
    /// assert_eq!(ctx.min_priority(), sealog_client::Priority::Crit);
    /// ```
    pub fn min_priority(&self) -> Priority {
        Priority::from_u8(self.min.load(Ordering::Relaxed))
    }

    /// Turns debug entries on or off.
    ///
    /// ```
    /// let ctx = sealog_client::LoggerContext::new(sealog_client::Priority::Info);
    /// ctx.set_debug_mode(true);
    /// assert!(ctx.is_debug_mode());
    /// ```
    pub fn set_debug_mode(&self, on: bool) {
        self.debug.store(on, Ordering::Relaxed);
    }

    /// Whether debug entries are written.
    ///
    /// ```
    /// let ctx = sealog_client::LoggerContext::new(sealog_client::Priority::Info);
    /// assert!(!ctx.is_debug_mode());
    /// ```
    pub fn is_debug_mode(&self) -> bool {
        self.debug.load(Ordering::Relaxed)
    }
}

/// A data change: the entity, the operation and each field changed, with
/// its old and new value (written as text: a string as it is, anything
/// else as its JSON).
///
/// ```
/// use sealog_client::ChangeInfo;
/// let c = ChangeInfo::new("user", "update")
///     .add_change("email", "a@x", "b@x")
///     .add_change("age", 30, 31);
/// assert_eq!(c.changes().len(), 2);
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct ChangeInfo {
    entity: String,
    op: String,
    changes: Vec<ChangeDetail>,
}

/// One changed field.
///
/// ```
/// let c = sealog_client::ChangeInfo::new("user", "update").add_change("age", 30, 31);
/// let d: &sealog_client::ChangeDetail = &c.changes()[0];
/// assert_eq!((d.field.as_str(), d.old_value.as_str(), d.new_value.as_str()), ("age", "30", "31"));
/// ```
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ChangeDetail {
    /// The field.
    pub field: String,
    /// Its value before, as text.
    pub old_value: String,
    /// Its value after, as text.
    pub new_value: String,
}

fn as_text<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(e) => format!("serialize error: {e}"),
    }
}

impl ChangeInfo {
    /// A change of `entity` by `op`.
    ///
    /// ```
    /// let c = sealog_client::ChangeInfo::new("invoice", "delete");
    /// assert!(c.changes().is_empty());
    /// ```
    pub fn new(entity: impl Into<String>, op: impl Into<String>) -> ChangeInfo {
        ChangeInfo {
            entity: entity.into(),
            op: op.into(),
            changes: Vec::new(),
        }
    }

    /// Adds a changed field.
    ///
    /// ```
    /// let c = sealog_client::ChangeInfo::new("user", "update").add_change("n", 1, 2);
    /// assert_eq!(c.changes()[0].old_value, "1");
    /// ```
    pub fn add_change<O: Serialize, N: Serialize>(
        mut self,
        field: impl Into<String>,
        old: O,
        new: N,
    ) -> ChangeInfo {
        self.changes.push(ChangeDetail {
            field: field.into(),
            old_value: as_text(&old),
            new_value: as_text(&new),
        });
        self
    }

    /// The fields changed.
    ///
    /// ```
    /// let c = sealog_client::ChangeInfo::new("user", "update").add_change("a", "x", "y");
    /// assert_eq!(c.changes()[0].new_value, "y");
    /// ```
    pub fn changes(&self) -> &[ChangeDetail] {
        &self.changes
    }
}

/// The per-logger fields, shared until a setter copies them.
#[derive(Debug, Clone)]
struct Fields {
    app: String,
    system: String,
    module: Option<String>,
    who: Option<String>,
    op: Option<String>,
    class: Option<String>,
    instance: Option<String>,
    status: Option<Status>,
    error: Option<String>,
    remote_ip: Option<String>,
    trace_id: Option<String>,
    pri: Priority,
}

/// A logger for one application. Cheap to clone; every `with_*` setter
/// returns a new logger and leaves this one as it was.
///
/// ```
/// use std::sync::Arc;
/// use sealog_client::{Logger, LoggerContext, Priority, VecWriter};
/// let out = Arc::new(VecWriter::default());
/// let base = Logger::new(&LoggerContext::new(Priority::Info), "shop", out.clone());
/// let alice = base.with_who("alice");
/// alice.warn().log("cart emptied");
/// base.log("no who here");
/// let lines = out.lines();
/// assert!(lines[0].contains(r#""who":"alice""#) && lines[0].contains(r#""pri":"Warn""#));
/// assert!(!lines[1].contains(r#""who""#));
/// ```
#[derive(Debug, Clone)]
pub struct Logger {
    ctx: Arc<LoggerContext>,
    fields: Arc<Fields>,
    out: Arc<dyn Writer>,
}

#[derive(Serialize)]
struct Entry<'a> {
    id: String,
    app: &'a str,
    system: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    module: Option<&'a str>,
    #[serde(rename = "type")]
    typ: &'static str,
    pri: &'static str,
    when: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    who: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    op: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    class: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    instance: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remote_ip: Option<&'a str>,
    #[serde(skip_serializing_if = "str::is_empty")]
    msg: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace_id: Option<&'a str>,
}

/// The host name (`/proc/sys/kernel/hostname`, then `$HOSTNAME`), else
/// `unknown`, as LogHarbour's `getSystemName`.
fn system_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// A KSUID (27 base-62 characters: 4 bytes of seconds since 2014-05-13,
/// then 16 random bytes), the id LogHarbour gives every entry. Written
/// here because it is twenty lines; the crates that offer it pull in more.
pub(crate) fn ksuid() -> String {
    const EPOCH: i64 = 1_400_000_000;
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let secs = time::OffsetDateTime::now_utc().unix_timestamp() - EPOCH;
    let mut bytes = [0u8; 20];
    bytes[..4].copy_from_slice(&(secs.clamp(0, i64::from(u32::MAX)) as u32).to_be_bytes());
    rand::Rng::fill(&mut rand::thread_rng(), &mut bytes[4..]);
    let mut out = [b'0'; 27];
    // Repeated division of the 160-bit big-endian number by 62.
    for slot in out.iter_mut().rev() {
        let mut rem = 0u32;
        for b in bytes.iter_mut() {
            let acc = (rem << 8) | u32::from(*b);
            *b = (acc / 62) as u8;
            rem = acc % 62;
        }
        *slot = ALPHABET[rem as usize];
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident, $field:ident) => {
        $(#[$doc])*
        pub fn $name(&self, v: impl Into<String>) -> Logger {
            self.with(|f| f.$field = Some(v.into()))
        }
    };
}

macro_rules! priority {
    ($(#[$doc:meta])* $name:ident, $p:ident) => {
        $(#[$doc])*
        pub fn $name(&self) -> Logger {
            self.with_priority(Priority::$p)
        }
    };
}

impl Logger {
    /// A logger for `app` writing to `out`, at priority `Info`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sealog_client::{Logger, LoggerContext, Priority, VecWriter};
    /// let l = Logger::new(&LoggerContext::new(Priority::Info), "shop", Arc::new(VecWriter::default()));
    /// l.log("started");
    /// ```
    pub fn new(ctx: &Arc<LoggerContext>, app: impl Into<String>, out: Arc<dyn Writer>) -> Logger {
        Logger {
            ctx: ctx.clone(),
            fields: Arc::new(Fields {
                app: app.into(),
                system: system_name(),
                module: None,
                who: None,
                op: None,
                class: None,
                instance: None,
                status: None,
                error: None,
                remote_ip: None,
                trace_id: None,
                pri: Priority::Info,
            }),
            out,
        }
    }

    fn with(&self, f: impl FnOnce(&mut Fields)) -> Logger {
        let mut fields = (*self.fields).clone();
        f(&mut fields);
        Logger {
            ctx: self.ctx.clone(),
            fields: Arc::new(fields),
            out: self.out.clone(),
        }
    }

    setter!(
        /// Who acted.
        ///
        /// ```
        /// # let l = sealog_client::Logger::new(&sealog_client::LoggerContext::new(sealog_client::Priority::Info), "a", std::sync::Arc::new(sealog_client::VecWriter::default()));
        /// let l = l.with_who("alice");
        /// ```
        with_who,
        who
    );
    setter!(
        /// The module.
        ///
        /// ```
        /// # let l = sealog_client::Logger::new(&sealog_client::LoggerContext::new(sealog_client::Priority::Info), "a", std::sync::Arc::new(sealog_client::VecWriter::default()));
        /// let l = l.with_module("billing");
        /// ```
        with_module,
        module
    );
    setter!(
        /// The operation.
        ///
        /// ```
        /// # let l = sealog_client::Logger::new(&sealog_client::LoggerContext::new(sealog_client::Priority::Info), "a", std::sync::Arc::new(sealog_client::VecWriter::default()));
        /// let l = l.with_op("refund");
        /// ```
        with_op,
        op
    );
    setter!(
        /// The class of the object acted on.
        ///
        /// ```
        /// # let l = sealog_client::Logger::new(&sealog_client::LoggerContext::new(sealog_client::Priority::Info), "a", std::sync::Arc::new(sealog_client::VecWriter::default()));
        /// let l = l.with_class("invoice");
        /// ```
        with_class,
        class
    );
    setter!(
        /// The instance of the object acted on.
        ///
        /// ```
        /// # let l = sealog_client::Logger::new(&sealog_client::LoggerContext::new(sealog_client::Priority::Info), "a", std::sync::Arc::new(sealog_client::VecWriter::default()));
        /// let l = l.with_class("invoice").with_instance("inv-42");
        /// ```
        with_instance,
        instance
    );
    setter!(
        /// The client's address.
        ///
        /// ```
        /// # let l = sealog_client::Logger::new(&sealog_client::LoggerContext::new(sealog_client::Priority::Info), "a", std::sync::Arc::new(sealog_client::VecWriter::default()));
        /// let l = l.with_remote_ip("203.0.113.7");
        /// ```
        with_remote_ip,
        remote_ip
    );
    setter!(
        /// The trace id.
        ///
        /// ```
        /// # let l = sealog_client::Logger::new(&sealog_client::LoggerContext::new(sealog_client::Priority::Info), "a", std::sync::Arc::new(sealog_client::VecWriter::default()));
        /// let l = l.with_trace_id("4bf92f3577b34da6");
        /// ```
        with_trace_id,
        trace_id
    );

    /// The outcome: `Failure` writes `"status":1`.
    ///
    /// ```
    /// # let l = sealog_client::Logger::new(&sealog_client::LoggerContext::new(sealog_client::Priority::Info), "a", std::sync::Arc::new(sealog_client::VecWriter::default()));
    /// let l = l.with_status(sealog_client::Status::Failure);
    /// ```
    pub fn with_status(&self, s: Status) -> Logger {
        self.with(|f| f.status = Some(s))
    }

    /// The error, as its text (LogHarbour's `Error(err)`).
    ///
    /// ```
    /// # let l = sealog_client::Logger::new(&sealog_client::LoggerContext::new(sealog_client::Priority::Info), "a", std::sync::Arc::new(sealog_client::VecWriter::default()));
    /// let e = std::io::Error::other("disk full");
    /// let l = l.with_error(&e);
    /// ```
    pub fn with_error(&self, e: &dyn std::fmt::Display) -> Logger {
        let text = e.to_string();
        self.with(|f| f.error = Some(text))
    }

    /// The priority of what this logger writes.
    ///
    /// ```
    /// # let l = sealog_client::Logger::new(&sealog_client::LoggerContext::new(sealog_client::Priority::Info), "a", std::sync::Arc::new(sealog_client::VecWriter::default()));
    /// let l = l.with_priority(sealog_client::Priority::Crit);
    /// ```
    pub fn with_priority(&self, p: Priority) -> Logger {
        self.with(|f| f.pri = p)
    }

    /// The trace id and client address of an HTTP request: the trace id
    /// from `X-Trace-ID` (a new KSUID without one); the address from the
    /// first `X-Forwarded-For` entry, else `X-Real-IP`, else a
    /// `SocketAddr` in the request's extensions.
    ///
    /// ```
    /// # let l = sealog_client::Logger::new(&sealog_client::LoggerContext::new(sealog_client::Priority::Info), "a", std::sync::Arc::new(sealog_client::VecWriter::default()));
    /// let req = http::Request::builder()
    ///     .header("X-Forwarded-For", "203.0.113.7, 10.0.0.1")
    ///     .header("X-Trace-ID", "t-1")
    ///     .body(())
    ///     .unwrap();
    /// let l = l.with_http_request(&req);
    /// ```
    pub fn with_http_request<B>(&self, req: &http::Request<B>) -> Logger {
        let h = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let trace = h("x-trace-id").unwrap_or_else(ksuid);
        let ip = h("x-forwarded-for")
            .and_then(|v| {
                v.split(',')
                    .map(str::trim)
                    .find(|s| !s.is_empty())
                    .map(str::to_string)
            })
            .or_else(|| h("x-real-ip"))
            .or_else(|| {
                req.extensions()
                    .get::<std::net::SocketAddr>()
                    .map(|a| a.ip().to_string())
            });
        self.with(|f| {
            f.trace_id = Some(trace);
            if ip.is_some() {
                f.remote_ip = ip;
            }
        })
    }

    priority!(
        /// At `Debug2`.
        ///
        /// ```
        /// # let l = sealog_client::Logger::new(&sealog_client::LoggerContext::new(sealog_client::Priority::Info), "a", std::sync::Arc::new(sealog_client::VecWriter::default()));
        /// let l = l.debug2();
        /// ```
        debug2,
        Debug2
    );
    priority!(
        /// At `Debug1`.
        ///
        /// ```
        /// # let l = sealog_client::Logger::new(&sealog_client::LoggerContext::new(sealog_client::Priority::Info), "a", std::sync::Arc::new(sealog_client::VecWriter::default()));
        /// let l = l.debug1();
        /// ```
        debug1,
        Debug1
    );
    priority!(
        /// At `Debug0`.
        ///
        /// ```
        /// # let l = sealog_client::Logger::new(&sealog_client::LoggerContext::new(sealog_client::Priority::Info), "a", std::sync::Arc::new(sealog_client::VecWriter::default()));
        /// let l = l.debug0();
        /// ```
        debug0,
        Debug0
    );
    priority!(
        /// At `Info`.
        ///
        /// ```
        /// # let l = sealog_client::Logger::new(&sealog_client::LoggerContext::new(sealog_client::Priority::Info), "a", std::sync::Arc::new(sealog_client::VecWriter::default()));
        /// let l = l.info();
        /// ```
        info,
        Info
    );
    priority!(
        /// At `Warn`.
        ///
        /// ```
        /// # let l = sealog_client::Logger::new(&sealog_client::LoggerContext::new(sealog_client::Priority::Info), "a", std::sync::Arc::new(sealog_client::VecWriter::default()));
        /// let l = l.warn();
        /// ```
        warn,
        Warn
    );
    priority!(
        /// At `Err`.
        ///
        /// ```
        /// # let l = sealog_client::Logger::new(&sealog_client::LoggerContext::new(sealog_client::Priority::Info), "a", std::sync::Arc::new(sealog_client::VecWriter::default()));
        /// let l = l.err();
        /// ```
        err,
        Err
    );
    priority!(
        /// At `Crit`.
        ///
        /// ```
        /// # let l = sealog_client::Logger::new(&sealog_client::LoggerContext::new(sealog_client::Priority::Info), "a", std::sync::Arc::new(sealog_client::VecWriter::default()));
        /// let l = l.crit();
        /// ```
        crit,
        Crit
    );
    priority!(
        /// At `Sec`.
        ///
        /// ```
        /// # let l = sealog_client::Logger::new(&sealog_client::LoggerContext::new(sealog_client::Priority::Info), "a", std::sync::Arc::new(sealog_client::VecWriter::default()));
        /// let l = l.sec();
        /// ```
        sec,
        Sec
    );

    fn emit(&self, typ: &'static str, msg: &str, data: Option<serde_json::Value>) {
        let f = &*self.fields;
        let entry = Entry {
            id: ksuid(),
            app: &f.app,
            system: &f.system,
            module: f.module.as_deref(),
            typ,
            pri: f.pri.as_str(),
            when: now_rfc3339(),
            who: f.who.as_deref(),
            op: f.op.as_deref(),
            class: f.class.as_deref(),
            instance: f.instance.as_deref(),
            status: (f.status == Some(Status::Failure)).then_some(1),
            error: f.error.as_deref(),
            remote_ip: f.remote_ip.as_deref(),
            msg,
            data,
            trace_id: f.trace_id.as_deref(),
        };
        match serde_json::to_vec(&entry) {
            Ok(mut line) => {
                line.push(b'\n');
                self.out.write(&line);
            }
            Err(e) => eprintln!("sealog-client: entry not written: {e}"),
        }
    }

    fn passes(&self) -> bool {
        self.fields.pri >= self.ctx.min_priority()
    }

    /// An activity with no data.
    ///
    /// ```
    /// # let l = sealog_client::Logger::new(&sealog_client::LoggerContext::new(sealog_client::Priority::Info), "a", std::sync::Arc::new(sealog_client::VecWriter::default()));
    /// l.log("user signed in");
    /// ```
    pub fn log(&self, msg: &str) {
        if self.passes() {
            self.emit("A", msg, None);
        }
    }

    /// An activity; `data` is written as `activity_data`, as text.
    ///
    /// ```
    /// # let l = sealog_client::Logger::new(&sealog_client::LoggerContext::new(sealog_client::Priority::Info), "a", std::sync::Arc::new(sealog_client::VecWriter::default()));
    /// l.log_activity("order placed", &serde_json::json!({"order": 7}));
    /// ```
    pub fn log_activity<T: Serialize + ?Sized>(&self, msg: &str, data: &T) {
        if self.passes() {
            let data = serde_json::json!({ "activity_data": as_text(&data) });
            self.emit("A", msg, Some(data));
        }
    }

    /// A data change.
    ///
    /// ```
    /// # let l = sealog_client::Logger::new(&sealog_client::LoggerContext::new(sealog_client::Priority::Info), "a", std::sync::Arc::new(sealog_client::VecWriter::default()));
    /// l.log_data_change("renamed", sealog_client::ChangeInfo::new("user", "update").add_change("name", "a", "b"));
    /// ```
    pub fn log_data_change(&self, msg: &str, change: ChangeInfo) {
        if self.passes() {
            let data = serde_json::json!({ "change_data": change });
            self.emit("C", msg, Some(data));
        }
    }

    /// A debug entry, written only in debug mode: the caller's file and
    /// line (and function, through [`log_debug!`](crate::log_debug)), the
    /// process id, and `data` as JSON text.
    ///
    /// ```
    /// # let l = sealog_client::Logger::new(&sealog_client::LoggerContext::new(sealog_client::Priority::Info), "a", std::sync::Arc::new(sealog_client::VecWriter::default()));
    /// l.debug0().log_debug("cache state", &serde_json::json!({"hits": 3}));
    /// ```
    #[track_caller]
    pub fn log_debug<T: Serialize + ?Sized>(&self, msg: &str, data: &T) {
        let at = std::panic::Location::caller();
        self.debug_at(msg, data, at.file(), at.line(), "");
    }

    #[doc(hidden)]
    pub fn debug_at<T: Serialize + ?Sized>(
        &self,
        msg: &str,
        data: &T,
        file: &str,
        line: u32,
        func: &str,
    ) {
        if !(self.ctx.is_debug_mode() && self.passes()) {
            return;
        }
        let data = serde_json::json!({ "debug_data": {
            "pid": std::process::id(),
            "runtime": "rust",
            "file": file,
            "line": line,
            "func": func,
            "stackTrace": "",
            "data": serde_json::to_string(data).unwrap_or_default(),
        }});
        self.emit("D", msg, Some(data));
    }
}

/// [`Logger::log_debug`] that also records the calling function's name.
///
/// ```
/// use std::sync::Arc;
/// use sealog_client::{log_debug, Logger, LoggerContext, Priority, VecWriter};
/// let ctx = LoggerContext::new(Priority::Debug2);
/// ctx.set_debug_mode(true);
/// let out = Arc::new(VecWriter::default());
/// let l = Logger::new(&ctx, "shop", out.clone());
/// fn handler(l: &Logger) {
///     log_debug!(l, "in the handler", &1);
/// }
/// handler(&l);
/// assert!(out.lines()[0].contains("handler"));
/// ```
#[macro_export]
macro_rules! log_debug {
    ($logger:expr, $msg:expr, $data:expr) => {{
        fn __here() {}
        let name = ::std::any::type_name_of_val(&__here);
        let name = name.strip_suffix("::__here").unwrap_or(name);
        $logger.debug_at($msg, $data, file!(), line!(), name)
    }};
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VecWriter;

    fn parse(line: &str) -> serde_json::Value {
        serde_json::from_str(line).expect("json")
    }

    #[test]
    fn entries_are_logharbours_format() {
        let ctx = LoggerContext::new(Priority::Info);
        let out = Arc::new(VecWriter::default());
        let l = Logger::new(&ctx, "shop", out.clone())
            .with_module("billing")
            .with_who("alice")
            .with_op("refund")
            .with_class("invoice")
            .with_instance("inv-1")
            .with_status(Status::Failure)
            .with_error(&"card declined")
            .with_remote_ip("203.0.113.7");
        l.err()
            .log_activity("refund failed", &serde_json::json!({"amount": 5}));
        l.log_data_change(
            "limit",
            ChangeInfo::new("account", "update").add_change("limit", 1, "two"),
        );
        let lines = out.lines();
        let a = parse(&lines[0]);
        for (k, v) in [
            ("app", "shop"),
            ("module", "billing"),
            ("type", "A"),
            ("pri", "Err"),
            ("who", "alice"),
            ("op", "refund"),
            ("class", "invoice"),
            ("instance", "inv-1"),
            ("error", "card declined"),
            ("remote_ip", "203.0.113.7"),
            ("msg", "refund failed"),
        ] {
            assert_eq!(a[k], v, "{k}");
        }
        assert_eq!(a["status"], 1);
        assert_eq!(a["data"]["activity_data"], r#"{"amount":5}"#);
        assert_eq!(a["id"].as_str().expect("id").len(), 27);
        assert!(a["when"].as_str().expect("when").ends_with('Z'));
        let c = parse(&lines[1]);
        assert_eq!(c["type"], "C");
        assert_eq!(c["data"]["change_data"]["changes"][0]["old_value"], "1");
        assert_eq!(c["data"]["change_data"]["changes"][0]["new_value"], "two");
        assert_ne!(a["id"], c["id"]);
    }

    #[test]
    fn sealogs_logharbour_reader_reads_what_is_written() {
        use sealog_query::logharbour::{LhType, LogsQuery, Pri};
        use sealog_query::Matcher;
        let out = Arc::new(VecWriter::default());
        let l =
            Logger::new(&LoggerContext::new(Priority::Info), "shop", out.clone()).with_who("bob");
        l.sec().log_data_change(
            "m",
            ChangeInfo::new("user", "update").add_change("email", "a", "b"),
        );
        let line = out.lines()[0].clone();
        let q = LogsQuery {
            app: Some("shop".into()),
            who: Some("bob".into()),
            min_pri: Some(Pri::Sec),
            types: vec![LhType::Change],
            field: Some("email".into()),
            ..LogsQuery::default()
        };
        assert!(q.matches(line.as_bytes()), "{line}");
    }

    #[test]
    fn priorities_and_debug_mode_filter() {
        let ctx = LoggerContext::new(Priority::Warn);
        let out = Arc::new(VecWriter::default());
        let l = Logger::new(&ctx, "shop", out.clone());
        l.log("info: dropped");
        l.warn().log("warn: kept");
        l.sec().log("sec: kept");
        l.warn().log_debug("debug mode off: dropped", &());
        ctx.set_debug_mode(true);
        l.warn().log_debug("kept", &());
        l.debug0().log_debug("below the minimum: dropped", &());
        ctx.change_min_priority(Priority::Debug2);
        l.debug2().log_debug("now kept", &());
        let msgs: Vec<String> = out
            .lines()
            .iter()
            .map(|l| parse(l)["msg"].as_str().unwrap_or("").to_string())
            .collect();
        assert_eq!(msgs, ["warn: kept", "sec: kept", "kept", "now kept"]);
        let d = parse(&out.lines()[2]);
        assert_eq!(d["type"], "D");
        assert!(d["data"]["debug_data"]["file"]
            .as_str()
            .expect("file")
            .ends_with("logger.rs"));
    }

    #[test]
    fn http_requests_give_trace_and_address() {
        let out = Arc::new(VecWriter::default());
        let l = Logger::new(&LoggerContext::new(Priority::Info), "shop", out.clone());
        let req = http::Request::builder()
            .header("X-Real-IP", "198.51.100.4")
            .body(())
            .expect("request");
        l.with_http_request(&req).log("x");
        let e = parse(&out.lines()[0]);
        assert_eq!(e["remote_ip"], "198.51.100.4");
        assert_eq!(
            e["trace_id"].as_str().expect("trace").len(),
            27,
            "a new KSUID"
        );
        let mut req = http::Request::builder().body(()).expect("request");
        req.extensions_mut()
            .insert(std::net::SocketAddr::from(([192, 0, 2, 1], 4000)));
        l.with_http_request(&req).log("y");
        assert_eq!(parse(&out.lines()[1])["remote_ip"], "192.0.2.1");
    }

    #[test]
    fn ksuids_are_distinct_base62() {
        let a = ksuid();
        let b = ksuid();
        assert_ne!(a, b);
        assert_eq!(a.len(), 27);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
    }
}
