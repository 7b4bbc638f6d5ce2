//! LogHarbour's query functions, as a client of the server's `/v1/logs`
//! family (the realm comes from the query token).

use serde::Deserialize;

/// The filters of `GetLogs` and its siblings; `None` fields are not sent.
///
/// ```
/// let p = sealog_client::LogsParams { app: Some("shop".into()), pri: Some("Warn".into()), ..Default::default() };
/// assert_eq!(p.app.as_deref(), Some("shop"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct LogsParams {
    /// `app` equals.
    pub app: Option<String>,
    /// `C`, `A`, `D` or `U`.
    pub typ: Option<String>,
    /// `module` equals.
    pub module: Option<String>,
    /// `who` equals.
    pub who: Option<String>,
    /// `class` equals.
    pub class: Option<String>,
    /// `instance` equals (needs `class`).
    pub instance: Option<String>,
    /// `op` equals.
    pub op: Option<String>,
    /// At or after (RFC 3339).
    pub from: Option<String>,
    /// At or before (RFC 3339).
    pub to: Option<String>,
    /// Since the start of the UTC day this many days ago.
    pub ndays: Option<u32>,
    /// `remote_ip` equals.
    pub remote_ip: Option<String>,
    /// At least this priority.
    pub pri: Option<String>,
    /// `trace_id` equals.
    pub trace_id: Option<String>,
    /// A field named in the change list.
    pub field: Option<String>,
    /// Entries per page (1..10000; the server's default is 100).
    pub limit: Option<u32>,
    /// A page's `next` or `prev`.
    pub cursor: Option<String>,
}

impl LogsParams {
    /// The filters alone (counts take no page parameters).
    fn filter_pairs(&self) -> Vec<(&'static str, String)> {
        self.pairs()
            .into_iter()
            .filter(|(k, _)| !matches!(*k, "cursor" | "limit"))
            .collect()
    }

    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let mut put = |k: &'static str, v: &Option<String>| {
            if let Some(v) = v {
                out.push((k, v.clone()));
            }
        };
        put("app", &self.app);
        put("type", &self.typ);
        put("module", &self.module);
        put("who", &self.who);
        put("class", &self.class);
        put("instance", &self.instance);
        put("op", &self.op);
        put("from", &self.from);
        put("to", &self.to);
        put("remote_ip", &self.remote_ip);
        put("pri", &self.pri);
        put("trace_id", &self.trace_id);
        put("field", &self.field);
        put("cursor", &self.cursor);
        if let Some(n) = self.ndays {
            out.push(("ndays", n.to_string()));
        }
        if let Some(n) = self.limit {
            out.push(("limit", n.to_string()));
        }
        out
    }
}

/// One page of entries.
///
/// ```
/// let p: sealog_client::LogsPage = serde_json::from_str(
///     r#"{"logs":[{"id":"x"}],"next":"before:4","prev":null,"tree_size":9}"#).unwrap();
/// assert_eq!(p.next.as_deref(), Some("before:4"));
/// ```
#[derive(Debug, Clone, Deserialize)]
pub struct LogsPage {
    /// The entries, as stored (with `realm`, `seq`, `received_at`).
    pub logs: Vec<serde_json::Value>,
    /// Continue in the same order.
    pub next: Option<String>,
    /// Go back.
    pub prev: Option<String>,
    /// The realm's size the page was read at.
    pub tree_size: u64,
}

/// Why a query failed: the server's answer or the transport's error.
///
/// ```
/// let e = sealog_client::QueryError("GET /v1/logs: 400".into());
/// assert!(e.to_string().contains("400"));
/// ```
#[derive(Debug)]
pub struct QueryError(pub String);

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for QueryError {}

/// LogHarbour's query functions against a sealog server.
///
/// ```no_run
/// # async fn f() -> Result<(), sealog_client::QueryError> {
/// let q = sealog_client::QueryClient::new("http://127.0.0.1:7700", "slq_...");
/// let page = q.get_logs(&sealog_client::LogsParams { app: Some("shop".into()), ..Default::default() }).await?;
/// for e in &page.logs { println!("{e}"); }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct QueryClient {
    url: String,
    token: String,
    http: reqwest::Client,
}

impl QueryClient {
    /// A client for the server at `url` with a realm's query token.
    ///
    /// ```
    /// let q = sealog_client::QueryClient::new("http://127.0.0.1:7700", "slq_...");
    /// ```
    pub fn new(url: impl Into<String>, query_token: impl Into<String>) -> QueryClient {
        QueryClient {
            url: url.into().trim_end_matches('/').to_string(),
            token: query_token.into(),
            http: reqwest::Client::new(),
        }
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        pairs: &[(&str, String)],
    ) -> Result<T, QueryError> {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .query(pairs)
            .send()
            .await
            .map_err(|e| QueryError(format!("GET {path}: {e}")))?;
        let status = r.status();
        if !status.is_success() {
            let body = r.text().await.unwrap_or_default();
            return Err(QueryError(format!("GET {path}: {status}: {body}")));
        }
        r.json()
            .await
            .map_err(|e| QueryError(format!("GET {path}: {e}")))
    }

    /// `GetLogs`: newest first (oldest first when only `from` is given).
    ///
    /// # Errors
    /// The server refused the filters, or could not be reached.
    ///
    /// ```no_run
    /// # async fn f(q: sealog_client::QueryClient) {
    /// let p = q.get_logs(&Default::default()).await.unwrap();
    /// # }
    /// ```
    pub async fn get_logs(&self, p: &LogsParams) -> Result<LogsPage, QueryError> {
        self.get("/v1/logs", &p.pairs()).await
    }

    /// `GetChanges`: data changes, oldest first.
    ///
    /// # Errors
    /// As [`QueryClient::get_logs`].
    ///
    /// ```no_run
    /// # async fn f(q: sealog_client::QueryClient) {
    /// let p = q.get_changes(&Default::default()).await.unwrap();
    /// # }
    /// ```
    pub async fn get_changes(&self, p: &LogsParams) -> Result<LogsPage, QueryError> {
        self.get("/v1/changes", &p.pairs()).await
    }

    /// Every entry from one address (`LOCAL` or an IP).
    ///
    /// # Errors
    /// As [`QueryClient::get_logs`].
    ///
    /// ```no_run
    /// # async fn f(q: sealog_client::QueryClient) {
    /// let p = q.get_logs_for_ip("203.0.113.7", &Default::default()).await.unwrap();
    /// # }
    /// ```
    pub async fn get_logs_for_ip(&self, ip: &str, p: &LogsParams) -> Result<LogsPage, QueryError> {
        let mut pairs = p.pairs();
        pairs.push(("ip", ip.to_string()));
        self.get("/v1/logs-for-ip", &pairs).await
    }

    /// `GetSet`: how many matching entries have each value of `attr`,
    /// rarest first.
    ///
    /// # Errors
    /// As [`QueryClient::get_logs`].
    ///
    /// ```no_run
    /// # async fn f(q: sealog_client::QueryClient) {
    /// let counts = q.get_set("who", &Default::default()).await.unwrap();
    /// # }
    /// ```
    pub async fn get_set(
        &self,
        attr: &str,
        p: &LogsParams,
    ) -> Result<Vec<(String, u64)>, QueryError> {
        #[derive(Deserialize)]
        struct Count {
            value: String,
            count: u64,
        }
        #[derive(Deserialize)]
        struct Answer {
            counts: Vec<Count>,
        }
        let mut pairs = p.filter_pairs();
        pairs.push(("attr", attr.to_string()));
        let a: Answer = self.get("/v1/sets", &pairs).await?;
        Ok(a.counts.into_iter().map(|c| (c.value, c.count)).collect())
    }

    /// `GetApps`: every application with entries.
    ///
    /// # Errors
    /// As [`QueryClient::get_logs`].
    ///
    /// ```no_run
    /// # async fn f(q: sealog_client::QueryClient) {
    /// let apps = q.get_apps().await.unwrap();
    /// # }
    /// ```
    pub async fn get_apps(&self) -> Result<Vec<String>, QueryError> {
        #[derive(Deserialize)]
        struct Answer {
            apps: Vec<String>,
        }
        let a: Answer = self.get("/v1/apps", &[]).await?;
        Ok(a.apps)
    }

    /// `GetUnusualIP`: addresses seen in at most `pct` percent of the
    /// matching entries (at least once), with their places when the server
    /// has a GeoIP database. Each is `{"ipaddr","count","city","country","lat","long"}`.
    ///
    /// # Errors
    /// As [`QueryClient::get_logs`]; `pct` outside 0.5..50.
    ///
    /// ```no_run
    /// # async fn f(q: sealog_client::QueryClient) {
    /// let ips = q.get_unusual_ips(1.0, &Default::default()).await.unwrap();
    /// # }
    /// ```
    pub async fn get_unusual_ips(
        &self,
        pct: f64,
        p: &LogsParams,
    ) -> Result<Vec<serde_json::Value>, QueryError> {
        #[derive(Deserialize)]
        struct Answer {
            unusual_ips: Vec<serde_json::Value>,
        }
        let mut pairs = p.filter_pairs();
        pairs.push(("pct", pct.to_string()));
        let a: Answer = self.get("/v1/unusual-ips", &pairs).await?;
        Ok(a.unusual_ips)
    }
}
