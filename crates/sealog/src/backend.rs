//! What a CLI command needs from wherever the realms are: the data
//! directory itself ([`crate::local::Local`]) or a running server's API
//! ([`crate::remote::Remote`]).
//!
//! Each command is written once in [`crate::cmd`] (arguments, validation,
//! batching, receipts files, paging, output) over a [`Backend`]; a backend
//! only moves requests and answers.

use sealog_event::RealmName;
use sealog_journal::checkpoint::VerifierKey;
use sealog_journal::verify::Evidence;
use sealog_journal::{EventRef, Receipt};
use sealog_query::{Filter, Order};
use sealog_store::{CreatedRealm, IssuedToken, Scope, TokenInfo};

use crate::Failure;

/// A query's terms, both as given (a server gets them as parameters) and
/// as a filter (checked before anything is asked).
#[derive(Debug)]
pub struct QuerySpec {
    /// `--from`, RFC 3339.
    pub from: Option<String>,
    /// `--to`, RFC 3339.
    pub to: Option<String>,
    /// `--q`.
    pub q: Option<String>,
    /// `--where key=value` terms.
    pub wheres: Vec<String>,
    /// Oldest or newest first.
    pub order: Order,
    /// The same terms, parsed.
    pub filter: Filter,
}

impl QuerySpec {
    /// Parses the terms.
    ///
    /// # Errors
    /// A bad time or `--where` term (exit 2).
    pub fn new(
        from: Option<String>,
        to: Option<String>,
        q: Option<String>,
        wheres: Vec<String>,
        newest: bool,
    ) -> Result<Self, Failure> {
        let mut filter = Filter::default();
        if let Some(f) = &from {
            filter = filter.with_from(f)?;
        }
        if let Some(t) = &to {
            filter = filter.with_to(t)?;
        }
        if let Some(q) = &q {
            filter = filter.with_text(q);
        }
        for w in &wheres {
            filter = filter.with_where(w)?;
        }
        Ok(Self {
            from,
            to,
            q,
            wheres,
            order: if newest { Order::Newest } else { Order::Oldest },
            filter,
        })
    }
}

/// One page of a query: where to start and how many matches at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// Where the previous page stopped (`None`: the start, in the order asked).
    pub cursor: Option<u64>,
    /// At most this many matches (`None`: as many as the backend gives
    /// in one page).
    pub limit: Option<u64>,
}

/// How `sealog grep` runs over a realm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrepOptions {
    /// At most this many matches.
    pub limit: Option<u64>,
    /// Only the number is wanted: a backend may count without the lines.
    pub count_only: bool,
    /// A local realm may use (and extend) its message index.
    pub index: bool,
}

/// Receives each matching line (without its newline).
pub type Emit<'a> = dyn FnMut(&[u8]) -> std::io::Result<()> + 'a;

/// Fetches one page: emits its lines, returns the next page's cursor.
pub type FetchPage<'a> = dyn FnMut(PageRequest, &mut Emit<'_>) -> Result<Option<u64>, Failure> + 'a;

/// A verification's result, from either backend.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Records covered by the last valid checkpoint.
    pub committed: u64,
    /// Checkpoints checked.
    pub checkpoints: u64,
    /// Client checkpoints and receipts checked.
    pub evidence: u64,
    /// What is wrong, first bad seq first.
    pub findings: Vec<String>,
    /// Remarks that are not failures.
    pub notes: Vec<String>,
    /// The key the journal was verified with.
    pub key: String,
    /// Damage found besides the journal (a damaged `realm.meta` when a
    /// kept key was given): a failure even when the journal verifies.
    pub damage: Option<String>,
}

/// `sealog tail`'s terms.
#[derive(Debug)]
pub struct TailSpec {
    /// `--q`.
    pub q: Option<String>,
    /// `--where key=value` terms.
    pub wheres: Vec<String>,
    /// `--since-seq`.
    pub since_seq: Option<u64>,
}

/// The operations the commands are written over.
/// `sealog retention`'s options.
#[derive(Debug, Clone)]
pub struct RetentionArgs {
    /// Age limit.
    pub days: u32,
    /// Only this app.
    pub app: Option<String>,
    /// Only this type.
    pub typ: Option<String>,
    /// Only this priority.
    pub priority: Option<String>,
}

impl RetentionArgs {
    /// The spec, its words checked.
    ///
    /// # Errors
    /// A usage error naming the bad value.
    pub fn spec(&self) -> Result<sealog_server::retention::Spec, Failure> {
        sealog_server::retention::Spec::new(
            self.days,
            self.app.as_deref(),
            self.typ.as_deref(),
            self.priority.as_deref(),
        )
        .map_err(Failure::from)
    }
}

pub trait Backend {
    /// Creates a realm; its tokens are shown only now.
    ///
    /// # Errors
    /// A taken name; I/O or API errors.
    fn create_realm(&self, name: &RealmName) -> Result<CreatedRealm, Failure>;

    /// Every realm as a JSON object; a damaged one says what is wrong
    /// (`"status": "failed"`, `"error"`) instead of being left out.
    ///
    /// # Errors
    /// I/O or API errors.
    fn realms(&self) -> Result<Vec<serde_json::Value>, Failure>;

    /// A realm's checkpoint verifier key.
    ///
    /// # Errors
    /// Unknown realm; I/O or API errors.
    fn realm_key(&self, name: &RealmName) -> Result<String, Failure>;

    /// Issues a token.
    ///
    /// # Errors
    /// Unknown realm; I/O or API errors.
    fn issue_token(&self, realm: &RealmName, scope: Scope) -> Result<IssuedToken, Failure>;

    /// Tokens, optionally of one realm.
    ///
    /// # Errors
    /// Unknown realm; I/O or API errors.
    fn tokens(&self, realm: Option<&RealmName>) -> Result<Vec<TokenInfo>, Failure>;

    /// Revokes a token by id.
    ///
    /// # Errors
    /// Unknown id; I/O or API errors.
    fn revoke_token(&self, id: &str) -> Result<TokenInfo, Failure>;

    /// Appends `events` (all valid) to `realm` in commits of at most
    /// `batch` records, in order, calling `on_commit` with each receipt as
    /// soon as its commit is durable.
    ///
    /// # Errors
    /// The first failed commit; receipts already handed out stay valid.
    fn ingest(
        &self,
        realm: &RealmName,
        events: &[EventRef<'_>],
        batch: usize,
        on_commit: &mut dyn FnMut(&Receipt),
    ) -> Result<(), Failure>;

    /// One page of a query: emits the matching lines, and returns where
    /// the next page starts when the page stopped before the end.
    ///
    /// # Errors
    /// Journal or API errors; the first error `emit` returned.
    fn query_page(
        &self,
        realm: &RealmName,
        spec: &QuerySpec,
        page: PageRequest,
        emit: &mut Emit<'_>,
    ) -> Result<Option<u64>, Failure>;

    /// [`Backend::query_page`] with `extra` applied to every line too
    /// (`sealog grep`). The default filters the page's lines here; a
    /// backend that scans the journal itself applies `extra` in the scan.
    ///
    /// # Errors
    /// As [`Backend::query_page`].
    fn query_page_matching(
        &self,
        realm: &RealmName,
        spec: &QuerySpec,
        extra: &dyn sealog_query::Matcher,
        page: PageRequest,
        emit: &mut Emit<'_>,
    ) -> Result<Option<u64>, Failure> {
        // The page's limit counts lines the server matched, most of which
        // `extra` may drop: ask for full pages (the caller stops early).
        let page = PageRequest {
            limit: None,
            ..page
        };
        self.query_page(realm, spec, page, &mut |line| {
            if extra.matches(line) {
                emit(line)
            } else {
                Ok(())
            }
        })
    }

    /// `sealog grep` over a realm: emits the lines `matcher` (with
    /// `spec`'s prefilter) selects, in `spec`'s order, and returns how many
    /// matched (with [`GrepOptions::count_only`] a backend may return the
    /// number without emitting). The default follows query pages.
    ///
    /// # Errors
    /// As [`Backend::query_page`].
    fn grep(
        &self,
        realm: &RealmName,
        spec: &QuerySpec,
        matcher: &sealog_query::grep::GrepMatcher,
        opts: GrepOptions,
        emit: &mut Emit<'_>,
    ) -> Result<u64, Failure> {
        grep_by_pages(self, realm, spec, matcher, opts.limit, emit)
    }

    /// The realm's latest signed checkpoint note.
    ///
    /// # Errors
    /// No records yet; I/O or API errors.
    fn checkpoint(&self, realm: &RealmName) -> Result<String, Failure>;

    /// The newest checkpoint of `realm` that a quorum of the server's
    /// witnesses cosigned, with the cosignatures; `None` when none is.
    ///
    /// # Errors
    /// I/O or API errors; a store that does not run witnessing.
    fn witnessed(&self, realm: &RealmName) -> Result<Option<String>, Failure> {
        Err(format!(
            "this store keeps no cosigned checkpoints of realm {realm} (witnessing runs on `sealog serve` over a data directory); give one kept from GET /v1/checkpoint with --checkpoint"
        )
        .into())
    }

    /// Verifies every record and checkpoint of `realm`, and the evidence a
    /// client kept; with `key`, trusts that key instead of the stored one.
    ///
    /// # Errors
    /// No such realm (exit 2); damage that stops verification (exit 1).
    fn verify(
        &self,
        realm: &RealmName,
        evidence: Evidence,
        key: Option<&VerifierKey>,
    ) -> Result<Verdict, Failure>;

    /// Runs retention on `realm` (or, with `dry_run`, counts).
    ///
    /// # Errors
    /// Bad arguments or no such realm (exit 2); I/O or API errors.
    fn retention(
        &self,
        realm: &RealmName,
        args: &RetentionArgs,
        dry_run: bool,
    ) -> Result<sealog_server::retention::Report, Failure>;

    /// Prints the realm's new records as they are committed, until the
    /// server closes the stream.
    ///
    /// # Errors
    /// Without a server; API errors.
    fn tail(&self, realm: &RealmName, spec: &TailSpec) -> Result<(), Failure>;
}

/// Runs a query over as many pages as it takes: follows each page's
/// cursor until `limit` lines were emitted or a page says it reached the
/// end. A server caps each page (by count, perhaps by bytes), so a short
/// page with a cursor is not the end. Returns the lines emitted.
///
/// # Errors
/// A page's error; a cursor that does not move (a server bug that would
/// otherwise loop forever).
/// `sealog grep` as pages of [`Backend::query_page_matching`].
///
/// # Errors
/// As [`Backend::query_page`].
pub fn grep_by_pages<B: Backend + ?Sized>(
    b: &B,
    realm: &RealmName,
    spec: &QuerySpec,
    matcher: &sealog_query::grep::GrepMatcher,
    limit: Option<u64>,
    emit: &mut Emit<'_>,
) -> Result<u64, Failure> {
    follow_pages(
        limit,
        &mut |page, emit| b.query_page_matching(realm, spec, matcher, page, emit),
        emit,
    )
}

pub fn follow_pages(
    limit: Option<u64>,
    page: &mut FetchPage<'_>,
    emit: &mut Emit<'_>,
) -> Result<u64, Failure> {
    let mut emitted = 0u64;
    let mut cursor = None;
    loop {
        let want = limit.map(|l| l - emitted);
        if want == Some(0) {
            return Ok(emitted);
        }
        let mut this_page = 0u64;
        let next = page(
            PageRequest {
                cursor,
                limit: want,
            },
            &mut |line| {
                // Never more than asked, whatever a page holds.
                if want.is_some_and(|w| this_page >= w) {
                    return Ok(());
                }
                this_page += 1;
                emit(line)
            },
        )?;
        emitted += this_page;
        match next {
            None => return Ok(emitted),
            Some(c) if Some(c) == cursor => {
                return Err(format!(
                    "the server returned the same cursor {c} twice; stopped after {emitted} records"
                )
                .into())
            }
            Some(c) => cursor = Some(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log of `n` records served oldest first in pages of at most `cap`
    /// (a server's own cap), each page honouring the requested limit.
    fn pager(
        n: u64,
        cap: u64,
        asked: &mut Vec<PageRequest>,
    ) -> impl FnMut(PageRequest, &mut Emit<'_>) -> Result<Option<u64>, Failure> + '_ {
        move |req, emit| {
            asked.push(req);
            let from = req.cursor.unwrap_or(0);
            let take = req.limit.unwrap_or(u64::MAX).min(cap);
            let to = (from + take).min(n);
            for seq in from..to {
                emit(format!("{{\"seq\":{seq}}}").as_bytes())?;
            }
            Ok((to < n).then_some(to))
        }
    }

    fn run(n: u64, cap: u64, limit: Option<u64>) -> (Vec<String>, Vec<PageRequest>) {
        let mut asked = Vec::new();
        let mut lines = Vec::new();
        let got = follow_pages(limit, &mut pager(n, cap, &mut asked), &mut |l| {
            lines.push(String::from_utf8_lossy(l).into_owned());
            Ok(())
        })
        .expect("query");
        assert_eq!(got, lines.len() as u64);
        (lines, asked)
    }

    #[test]
    fn follows_the_cursor_to_the_end() {
        // No limit: every page, in order, each one once.
        let (lines, asked) = run(10, 3, None);
        let want: Vec<String> = (0..10).map(|s| format!("{{\"seq\":{s}}}")).collect();
        assert_eq!(lines, want);
        assert_eq!(
            asked.iter().map(|r| r.cursor).collect::<Vec<_>>(),
            [None, Some(3), Some(6), Some(9)]
        );
    }

    #[test]
    fn stops_at_the_limit_across_pages() {
        let (lines, asked) = run(10, 3, Some(7));
        assert_eq!(lines.len(), 7);
        assert_eq!(lines[6], "{\"seq\":6}");
        // Each page asks only for what is still wanted.
        assert_eq!(
            asked.iter().map(|r| r.limit).collect::<Vec<_>>(),
            [Some(7), Some(4), Some(1)]
        );
        // A limit beyond the records returns them all and stops at the end.
        assert_eq!(run(10, 3, Some(1_000)).0.len(), 10);
        // A limit the first page covers needs one request.
        assert_eq!(run(10, 100, Some(5)).1.len(), 1);
        assert!(run(10, 3, Some(0)).0.is_empty());
    }

    #[test]
    fn a_page_larger_than_asked_is_cut_and_a_stuck_cursor_is_an_error() {
        let mut greedy = |_: PageRequest, emit: &mut Emit<'_>| -> Result<Option<u64>, Failure> {
            for _ in 0..5 {
                emit(b"{}")?;
            }
            Ok(None)
        };
        let mut n = 0;
        let got = follow_pages(Some(2), &mut greedy, &mut |_| {
            n += 1;
            Ok(())
        })
        .expect("query");
        assert_eq!((got, n), (2, 2));

        let mut stuck =
            |_: PageRequest, _: &mut Emit<'_>| -> Result<Option<u64>, Failure> { Ok(Some(4)) };
        let e = follow_pages(None, &mut stuck, &mut |_| Ok(())).expect_err("loops");
        assert!(e.message.contains("same cursor"), "{}", e.message);
    }
}
