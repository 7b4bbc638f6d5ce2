//! LogHarbour's query functions and web service against 100,000 generated
//! entries (all three types, all eight priorities, 50 apps, a few rare
//! addresses), each answer compared with an independent filter written
//! here over the generated entries.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sealog_server::Config;
use serde_json::{json, Value};

use crate::util::{s, TestServer};

const PRIS: [&str; 8] = [
    "Debug2", "Debug1", "Debug0", "Info", "Warn", "Err", "Crit", "Sec",
];
const FIELDS: [&str; 5] = ["email", "name", "phone", "role", "limit"];
const COMMON_IPS: [&str; 8] = [
    "10.0.0.1",
    "10.0.0.2",
    "10.0.0.3",
    "10.0.0.4",
    "192.168.1.10",
    "192.168.1.11",
    "2001:db8::1",
    "LOCAL",
];
/// Seen once or twice each, in a network the test GeoIP database knows.
const RARE_IPS: [&str; 4] = ["203.0.113.7", "203.0.113.8", "203.0.113.9", "198.51.100.5"];
/// A filter over generated entries.
type EntryFilter = Box<dyn Fn(&Value) -> bool>;
/// The messages a body must get: (msgid, errcode, field).
type Rule = Vec<(u64, &'static str, &'static str)>;

const DAY_NS: i64 = 86_400_000_000_000;

/// A small deterministic generator (xorshift), so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

fn rfc3339(ns: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns)).expect("time");
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

/// `n` LogHarbour entries over the last 30 days, in time order.
fn entries(n: usize) -> Vec<Value> {
    let mut r = Rng(0x5eed_1a6b_0a2d_u64);
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64;
    let start = now - 30 * DAY_NS;
    let step = 30 * DAY_NS / n as i64;
    let mut rare = RARE_IPS
        .iter()
        .flat_map(|ip| [*ip, *ip])
        .take(7)
        .collect::<Vec<_>>();
    (0..n)
        .map(|i| {
            // Letters only: LogHarbour's web service takes alphabetic app names.
            let k = r.next() % 50;
            let app = format!("app{}{}", (b'a' + (k / 10) as u8) as char, (b'a' + (k % 10) as u8) as char);
            let ty = ["C", "A", "D"][(r.next() % 3) as usize];
            let pri = r.pick(&PRIS);
            let mut e = json!({
                "id": format!("id{i:07}"),
                "app": app,
                "system": r.pick(&["web-1", "web-2", "batch"]),
                "module": r.pick(&["auth", "billing", "search", "admin"]),
                "type": ty,
                "pri": pri,
                "when": rfc3339(start + step * i as i64),
                "who": format!("user{}", r.next() % 20),
                "op": r.pick(&["create", "update", "delete", "login"]),
                "class": r.pick(&["account", "invoice"]),
                "instance": format!("i{}", r.next() % 10),
                "msg": format!("entry {i}"),
            });
            // A few rare addresses early on; the rest common.
            let ip = if i % 9_973 == 5 && !rare.is_empty() {
                rare.remove(0)
            } else {
                r.pick(&COMMON_IPS)
            };
            e["remote_ip"] = json!(ip);
            if r.next().is_multiple_of(4) {
                e["status"] = json!(1);
            }
            if r.next().is_multiple_of(50) {
                e["trace_id"] = json!(format!("trace{}", r.next() % 100));
            }
            match ty {
                "C" => {
                    let a = r.pick(&FIELDS);
                    let b = r.pick(&FIELDS);
                    e["data"] = json!({"change_data": {"entity": "account", "op": "update",
                        "changes": [{"field": a, "old_value": "x", "new_value": "y"},
                                    {"field": b, "old_value": "1", "new_value": "2"}]}});
                }
                "A" => e["data"] = json!({"activity_data": "{\"k\":1}"}),
                _ => {
                    e["data"] = json!({"debug_data": {"pid": 7, "runtime": "rust", "file": "/src/x.rs",
                        "line": 3, "func": "x::y", "stackTrace": "", "data": "{}"}})
                }
            }
            e
        })
        .collect()
}

fn pri_rank(p: &str) -> usize {
    PRIS.iter().position(|x| *x == p).expect("priority")
}

fn time_ns(v: &Value) -> i64 {
    let t =
        time::OffsetDateTime::parse(s(v, "when"), &time::format_description::well_known::Rfc3339)
            .expect("when");
    t.unix_timestamp_nanos() as i64
}

fn change_fields(v: &Value) -> Vec<String> {
    v["data"]["change_data"]["changes"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c["field"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The independent filter: LogHarbour's GetLogs semantics as the wiki
/// states them, written from the spec, not from the server's code.
fn expected(all: &[Value], params: &[(&str, &str)], route: &str) -> Vec<String> {
    let get = |k: &str| params.iter().find(|(p, _)| *p == k).map(|(_, v)| *v);
    let parse_t = |v: &str| {
        time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
            .expect("t")
            .unix_timestamp_nanos() as i64
    };
    let from = get("from").map(parse_t).or_else(|| {
        get("ndays").filter(|_| get("to").is_none()).map(|n| {
            let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64;
            now - now.rem_euclid(DAY_NS) - n.parse::<i64>().expect("n") * DAY_NS
        })
    });
    let to = get("to").map(parse_t);
    all.iter()
        .filter(|e| {
            let eq = |k: &str| get(k).is_none_or(|v| e[k].as_str() == Some(v));
            let ty = s(e, "type");
            let type_ok = match (route, get("type"), get("pri")) {
                ("changes", _, _) => ty == "C",
                (_, Some(t), _) => ty == t,
                (_, None, Some(_)) => ty == "A" || ty == "D",
                _ => true,
            };
            type_ok
                && [
                    "app", "module", "who", "class", "instance", "op", "trace_id", "system",
                ]
                .iter()
                .all(|k| eq(k))
                && get("remote_ip")
                    .or(get("ip"))
                    .is_none_or(|v| e["remote_ip"].as_str() == Some(v))
                && get("pri").is_none_or(|p| pri_rank(s(e, "pri")) >= pri_rank(p))
                && get("status").is_none_or(|st| {
                    e.get("status")
                        .and_then(Value::as_u64)
                        .unwrap_or(0)
                        .to_string()
                        == st
                })
                && get("field").is_none_or(|f| change_fields(e).iter().any(|x| x == f))
                && from.is_none_or(|f| time_ns(e) >= f)
                && to.is_none_or(|t| time_ns(e) <= t)
        })
        .map(|e| s(e, "id").to_string())
        .collect()
}

fn query_string(params: &[(&str, &str)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={}", v.replace('+', "%2B").replace(':', "%3A")))
        .collect::<Vec<_>>()
        .join("&")
}

/// Pages through a route with `next`, then back with `prev`, checking
/// each id comes exactly once each way, in the route's order.
async fn page_both_ways(
    srv: &TestServer,
    token: &str,
    route: &str,
    params: &[(&str, &str)],
    limit: u64,
) -> Vec<String> {
    let base = format!("/v1/{route}?{}&limit={limit}", query_string(params));
    let mut forward = Vec::new();
    let mut pages = Vec::new();
    let mut url = base.clone();
    loop {
        let r = srv.get(Some(token), &url).await;
        assert_eq!(r.status(), 200, "{url}");
        let page: Value = r.json().await.expect("json");
        let logs = page["logs"].as_array().expect("logs").clone();
        assert!(logs.len() as u64 <= limit);
        if logs.is_empty() && !pages.is_empty() {
            assert_eq!(page["next"], Value::Null, "an empty page ends the walk");
            break;
        }
        let ids: Vec<String> = logs.iter().map(|e| s(e, "id").to_string()).collect();
        let seqs: Vec<u64> = logs
            .iter()
            .map(|e| e["seq"].as_u64().expect("seq"))
            .collect();
        forward.extend(ids.clone());
        pages.push((seqs, page["prev"].clone()));
        match page["next"].as_str() {
            Some(c) => url = format!("{base}&cursor={c}"),
            None => break,
        }
    }
    let unique: BTreeSet<&String> = forward.iter().collect();
    assert_eq!(
        unique.len(),
        forward.len(),
        "{route} {params:?}: an entry came twice going forward"
    );
    // Back from the last page, with prev, to the first.
    let mut backward: Vec<String> = Vec::new();
    let mut cursor = pages
        .last()
        .and_then(|(_, p)| p.as_str().map(str::to_string));
    while let Some(c) = cursor {
        let r = srv.get(Some(token), &format!("{base}&cursor={c}")).await;
        assert_eq!(r.status(), 200);
        let page: Value = r.json().await.expect("json");
        let ids: Vec<String> = page["logs"]
            .as_array()
            .expect("logs")
            .iter()
            .map(|e| s(e, "id").to_string())
            .collect();
        backward.splice(0..0, ids);
        cursor = page["prev"].as_str().map(str::to_string);
    }
    let last_page = pages.last().map(|p| p.0.len()).unwrap_or(0);
    let mut all_back = backward.clone();
    all_back.extend(forward[forward.len() - last_page..].iter().cloned());
    assert_eq!(
        all_back, forward,
        "{route} {params:?}: paging back gives the same entries in the same order"
    );
    forward
}

async fn seeded_server(n: usize, config: Config) -> (TestServer, String, String, Vec<Value>) {
    let srv = TestServer::start_with(config).await;
    let realm = srv.realm("harbour").await;
    let (w, q) = (
        s(&realm, "write_token").to_string(),
        s(&realm, "query_token").to_string(),
    );
    let all = entries(n);
    for chunk in all.chunks(10_000) {
        let body: String = chunk.iter().map(|e| format!("{e}\n")).collect();
        let r = srv.ingest(&w, body).await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    }
    (srv, w, q, all)
}

/// A GeoIP database in MaxMind's format, built here: 203.0.113.0/24 is
/// "Testville", Testland; the rest is unknown.
fn geoip_db(dir: &std::path::Path) -> std::path::PathBuf {
    #[derive(serde::Serialize)]
    struct Names {
        names: BTreeMap<String, String>,
    }
    #[derive(serde::Serialize)]
    struct Location {
        latitude: f64,
        longitude: f64,
    }
    #[derive(serde::Serialize)]
    struct City {
        city: Names,
        country: Names,
        location: Location,
    }
    let en = |s: &str| Names {
        names: [("en".to_string(), s.to_string())].into(),
    };
    let mut w = mmdb_writer::Writer::new("GeoLite2-City");
    w.insert(
        "203.0.113.0/24".parse::<ipnet::IpNet>().expect("net"),
        &City {
            city: en("Testville"),
            country: en("Testland"),
            location: Location {
                latitude: 51.5,
                longitude: -0.25,
            },
        },
    )
    .expect("insert");
    let path = dir.join("city.mmdb");
    std::fs::write(&path, w.to_bytes().expect("mmdb bytes")).expect("write mmdb");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_functions_equal_an_independent_filter_over_100k_entries() {
    let geo_dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config {
        durability: sealog_journal::Durability::Buffered,
        ..Config::default()
    };
    config.logharbour.geoip_db = Some(geoip_db(geo_dir.path()));
    let (srv, _w, q, all) = seeded_server(100_000, config).await;

    let mid = rfc3339(time_ns(&all[40_000]));
    let late = rfc3339(time_ns(&all[41_500]));
    // GetLogs: each filter alone and in threes; paging both ways.
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![("app", "appah")],
        vec![("app", "appah"), ("type", "A"), ("pri", "Warn")],
        vec![("who", "user3"), ("class", "invoice"), ("instance", "i4")],
        vec![("pri", "Sec"), ("module", "billing"), ("op", "login")],
        vec![
            ("remote_ip", "10.0.0.3"),
            ("system", "batch"),
            ("status", "1"),
        ],
        vec![("trace_id", "trace42")],
        vec![("field", "phone"), ("app", "appbb")],
        vec![("from", &mid), ("to", &late)],
        vec![("ndays", "3"), ("type", "D")],
    ];
    for params in &cases {
        let want = expected(&all, params, "logs");
        assert!(!want.is_empty(), "{params:?} matches something");
        let got = page_both_ways(&srv, &q, "logs", params, 997).await;
        // Newest first: the reverse of generation order (which is seq order).
        let mut want_desc = want.clone();
        want_desc.reverse();
        assert_eq!(got, want_desc, "GetLogs {params:?}");
    }
    // Only `from`: oldest first.
    let p = [("from", late.as_str()), ("app", "appab")];
    let got = page_both_ways(&srv, &q, "logs", &p, 500).await;
    assert_eq!(got, expected(&all, &p, "logs"), "only from: oldest first");
    // count=true gives nrec.
    let page: Value = srv
        .get(Some(&q), "/v1/logs?app=appah&count=true&limit=5")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        page["nrec"].as_u64(),
        Some(expected(&all, &[("app", "appah")], "logs").len() as u64)
    );

    // GetChanges: type C, oldest first, field inside the changes.
    for params in [
        vec![("app", "appad")],
        vec![("field", "role"), ("who", "user5")],
    ] {
        let got = page_both_ways(&srv, &q, "changes", &params, 333).await;
        assert_eq!(
            got,
            expected(&all, &params, "changes"),
            "GetChanges {params:?}"
        );
    }

    // logs-for-ip, including a rare address.
    for ip in ["203.0.113.7", "LOCAL"] {
        let p = [("ip", ip)];
        let got = page_both_ways(&srv, &q, "logs-for-ip", &p, 2_000).await;
        let mut want = expected(&all, &p, "logs");
        want.reverse();
        assert_eq!(got, want, "logs-for-ip {ip}");
    }
    let r = srv.get(Some(&q), "/v1/logs-for-ip?ip=300.1.1.1").await;
    assert_eq!(r.status(), 400);

    // GetSet with counts.
    let count = |attr: &str, filter: &dyn Fn(&Value) -> bool| -> HashMap<String, u64> {
        let mut m = HashMap::new();
        for e in all.iter().filter(|e| filter(e)) {
            let vals: Vec<String> = match attr {
                "field" => {
                    let mut f = change_fields(e);
                    f.sort();
                    f.dedup();
                    f
                }
                "status" => vec![e
                    .get("status")
                    .and_then(Value::as_u64)
                    .unwrap_or(0)
                    .to_string()],
                a => e[a]
                    .as_str()
                    .map(|v| vec![v.to_string()])
                    .unwrap_or_default(),
            };
            for v in vals {
                *m.entry(v).or_insert(0) += 1;
            }
        }
        m
    };
    // Unfiltered counts of low-cardinality attributes come from block
    // summaries after the first: asked twice, each must equal the filter.
    let sets: Vec<(&str, &str, EntryFilter)> = vec![
        ("app", "", Box::new(|_| true)),
        ("app", "", Box::new(|_| true)),
        ("type", "", Box::new(|_| true)),
        ("module", "", Box::new(|_| true)),
        ("pri", "&app=appac", Box::new(|e| s(e, "app") == "appac")),
        ("field", "&type=C", Box::new(|e| s(e, "type") == "C")),
        ("status", "&who=user1", Box::new(|e| s(e, "who") == "user1")),
        (
            "remote_ip",
            "&pri=Warn",
            Box::new(|e| s(e, "type") != "C" && pri_rank(s(e, "pri")) >= pri_rank("Warn")),
        ),
    ];
    for (attr, extra, filter) in &sets {
        let url = format!("/v1/sets?attr={attr}{extra}&limit=100000");
        let got: Value = srv.get(Some(&q), &url).await.json().await.expect("json");
        let got: HashMap<String, u64> = got["counts"]
            .as_array()
            .expect("counts")
            .iter()
            .map(|c| (s(c, "value").to_string(), c["count"].as_u64().expect("n")))
            .collect();
        assert_eq!(got, count(attr, filter.as_ref()), "GetSet {url}");
    }
    let r = srv.get(Some(&q), "/v1/sets?attr=msg").await;
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.expect("json");
    assert!(s(&e, "error").contains("'msg' is not allowed for set retrieval"));

    // GetApps.
    let apps: Value = srv
        .get(Some(&q), "/v1/apps")
        .await
        .json()
        .await
        .expect("json");
    let want: BTreeSet<String> = all.iter().map(|e| s(e, "app").to_string()).collect();
    assert_eq!(want.len(), 50);
    assert_eq!(
        apps["apps"]
            .as_array()
            .expect("apps")
            .iter()
            .map(|a| a.as_str().expect("s").to_string())
            .collect::<Vec<_>>(),
        want.into_iter().collect::<Vec<_>>()
    );

    // GetUnusualIP: the wiki's definition, computed here.
    for pct in ["0.5", "1", "50"] {
        let ips: Value = srv
            .get(Some(&q), &format!("/v1/unusual-ips?pct={pct}"))
            .await
            .json()
            .await
            .expect("json");
        let counts = count("remote_ip", &|_| true);
        let total: u64 = counts.values().sum();
        let threshold =
            ((total as f64 * pct.parse::<f64>().expect("pct") / 100.0).floor() as u64).max(1);
        let mut want: Vec<(u64, String)> = counts
            .iter()
            .filter(|(ip, n)| ip.as_str() != "LOCAL" && **n <= threshold)
            .map(|(ip, n)| (*n, ip.clone()))
            .collect();
        want.sort();
        let got: Vec<(u64, String)> = ips["unusual_ips"]
            .as_array()
            .expect("list")
            .iter()
            .map(|u| (u["count"].as_u64().expect("n"), s(u, "ipaddr").to_string()))
            .collect();
        assert_eq!(got, want, "unusual at {pct}%");
        assert_eq!(ips["threshold"].as_u64(), Some(threshold));
        if pct == "0.5" {
            assert_eq!(got.len(), RARE_IPS.len(), "exactly the rare addresses");
            for u in ips["unusual_ips"].as_array().expect("list") {
                if s(u, "ipaddr").starts_with("203.0.113.") {
                    assert_eq!(u["city"], "Testville");
                    assert_eq!(u["country"], "Testland");
                    assert_eq!(u["lat"], 51.5);
                    assert_eq!(u["long"], -0.25);
                } else {
                    assert_eq!(u["city"], Value::Null, "not in the database");
                }
            }
        }
    }
    for bad in ["0.4", "51", "x", ""] {
        let r = srv
            .get(Some(&q), &format!("/v1/unusual-ips?pct={bad}"))
            .await;
        assert_eq!(r.status(), 400, "pct={bad}");
    }
}

async fn post(srv: &TestServer, token: Option<&str>, route: &str, body: &Value) -> (u16, Value) {
    let mut r = srv
        .http
        .post(srv.url(&format!("/api/v1/{route}")))
        .json(body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let resp = r.send().await.expect("send");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("envelope"))
}

fn messages(v: &Value) -> Vec<(u64, String, String)> {
    assert_eq!(v["status"], "error");
    assert_eq!(v["data"], Value::Null);
    v["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| {
            (
                m["msgid"].as_u64().expect("msgid"),
                s(m, "errcode").to_string(),
                m["field"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_service_routes_envelopes_and_every_validation_rule() {
    let config = Config {
        durability: sealog_journal::Durability::Buffered,
        ..Config::default()
    };
    let (srv, w, q, all) = seeded_server(20_000, config).await;
    let ids = |d: &Value| -> Vec<String> {
        d.as_array()
            .expect("array")
            .iter()
            .map(|e| s(e, "id").to_string())
            .collect()
    };
    let newest = |params: &[(&str, &str)], n: usize| -> Vec<String> {
        let mut v = expected(&all, params, "logs");
        v.reverse();
        v.truncate(n);
        v
    };

    // Valid bodies.
    let (st, v) = post(
        &srv,
        Some(&q),
        "highprilog",
        &json!({"app":"appae","pri":"Sec","days":40}),
    )
    .await;
    assert_eq!((st, &v["status"]), (200, &json!("success")), "{v}");
    assert_eq!(v["messages"], json!([]));
    assert_eq!(
        ids(&v["data"]["logs"]),
        newest(&[("app", "appae"), ("pri", "Sec")], 100)
    );

    let (st, v) = post(
        &srv,
        Some(&q),
        "activitylog",
        &json!({"app":"appae","who":"user2","days":40}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let want = newest(&[("app", "appae"), ("who", "user2"), ("type", "A")], 100);
    assert_eq!(ids(&v["data"]["LogEntery"]), want);
    assert_eq!(v["data"]["Nrec"].as_u64(), Some(want.len() as u64));

    let (st, v) = post(
        &srv,
        Some(&q),
        "debuglog",
        &json!({"app":"appaj","module":"auth","pri":"Info","days":40}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        ids(&v["data"]),
        newest(
            &[
                ("app", "appaj"),
                ("module", "auth"),
                ("pri", "Info"),
                ("type", "D")
            ],
            100
        )
    );

    let (st, v) = post(
        &srv,
        Some(&q),
        "datachange",
        &json!({"app":"appaj","field":"email"}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        ids(&v["data"]["logs"]),
        newest(&[("app", "appaj"), ("field", "email"), ("type", "C")], 100)
    );

    let (st, v) = post(
        &srv,
        Some(&q),
        "getset",
        &json!({"app":"appaj","setAttr":"who"}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let got: BTreeSet<&str> = v["data"]
        .as_array()
        .expect("values")
        .iter()
        .map(|x| x.as_str().expect("s"))
        .collect();
    let want: BTreeSet<&str> = all
        .iter()
        .filter(|e| s(e, "app") == "appaj")
        .map(|e| s(e, "who"))
        .collect();
    assert_eq!(got, want);

    let (st, v) = post(
        &srv,
        Some(&q),
        "getunusualips",
        &json!({"app":"appaj","days":40,"unusualPercent":0.5}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert!(
        v["data"] == json!("No unusual IP") || v["data"]["unusualIPs"].is_array(),
        "{v}"
    );

    let r = srv.get(Some(&q), "/api/v1/getapps").await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["data"].as_array().expect("apps").len(), 50);

    // Every rule, one message each.
    let rules: Vec<(&str, Value, Rule)> = vec![
        (
            "highprilog",
            json!({"pri":"Warn","days":1}),
            vec![(101, "required", "App")],
        ),
        (
            "highprilog",
            json!({"app":"app1","pri":"Warn","days":1}),
            vec![(103, "alphabet", "App")],
        ),
        (
            "highprilog",
            json!({"app":"abcdefghijklmnop","pri":"Warn","days":1}),
            vec![(100, "validation_error", "App")],
        ),
        (
            "highprilog",
            json!({"app":"shop","days":1}),
            vec![(101, "required", "Pri")],
        ),
        (
            "highprilog",
            json!({"app":"shop","pri":"Loud","days":1}),
            vec![(100, "invalid_priority", "Pri")],
        ),
        (
            "highprilog",
            json!({"app":"shop","pri":"Warn"}),
            vec![(101, "required", "Days")],
        ),
        (
            "highprilog",
            json!({"app":"shop","pri":"Warn","days":-1}),
            vec![(102, "greater", "Days")],
        ),
        (
            "highprilog",
            json!({"app":"shop","pri":"Warn","days":1003}),
            vec![(100, "invalid_days", "Days")],
        ),
        (
            "highprilog",
            json!({"app":"shop","pri":"Warn","days":1,"search_after_timestamp":"soon"}),
            vec![(100, "pagination_error", "SearchAfterTimestamp")],
        ),
        (
            "highprilog",
            json!({"app":"shop","pri":"Warn","days":1,"search_after_doc_id":"abc"}),
            vec![(100, "pagination_error", "SearchAfterDocId")],
        ),
        (
            "activitylog",
            json!({"days":1}),
            vec![(101, "required", "App")],
        ),
        (
            "activitylog",
            json!({"app":"shop"}),
            vec![(101, "required", "Days")],
        ),
        (
            "activitylog",
            json!({"app":"shop","days":500}),
            vec![(100, "invalid_days", "Days")],
        ),
        (
            "activitylog",
            json!({"app":"shop","days":1,"instance_id":"i1"}),
            vec![(100, "validation_error", "InstanceId")],
        ),
        (
            "activitylog",
            json!({"app":"shop","days":1,"priority":"Meh"}),
            vec![(100, "invalid_priority", "Priority")],
        ),
        (
            "activitylog",
            json!({"app":7,"days":1}),
            vec![(100, "validation_error", "App")],
        ),
        (
            "debuglog",
            json!({"app":"shop","pri":"Info","days":1}),
            vec![(101, "required", "Module")],
        ),
        (
            "debuglog",
            json!({"app":"shop","module":"auth2","pri":"Info","days":1}),
            vec![(103, "alphabet", "Module")],
        ),
        (
            "debuglog",
            json!({"app":"shop","module":"auth","days":1}),
            vec![(101, "required", "Pri")],
        ),
        (
            "debuglog",
            json!({"app":"shop","module":"auth","pri":"Info"}),
            vec![(101, "required", "Days")],
        ),
        (
            "datachange",
            json!({"field":"email"}),
            vec![(101, "required", "App")],
        ),
        (
            "datachange",
            json!({"app":"shop","days":0}),
            vec![(102, "greater", "Days")],
        ),
        (
            "datachange",
            json!({"app":"shop","instance":"i1"}),
            vec![(100, "validation_error", "Instance")],
        ),
        (
            "getset",
            json!({"setAttr":"who"}),
            vec![(101, "required", "App")],
        ),
        (
            "getset",
            json!({"app":"shop"}),
            vec![(101, "required", "SetAttr")],
        ),
        (
            "getset",
            json!({"app":"shop","setAttr":"msg"}),
            vec![(100, "validation_error", "SetAttr")],
        ),
        (
            "getset",
            json!({"app":"shop","setAttr":"who","ndays":100}),
            vec![(100, "invalid_days", "Ndays")],
        ),
        (
            "getset",
            json!({"app":"shop","setAttr":"who","remoteIP":"nowhere"}),
            vec![(100, "invalid_ip", "RemoteIP")],
        ),
        (
            "getset",
            json!({"app":"shop","setAttr":"who","fromts":"2026-01-02T00:00:00Z","tots":"2026-01-01T00:00:00Z"}),
            vec![(100, "validation_error", "Tots")],
        ),
        (
            "getset",
            json!({"app":"shop","setAttr":"who","type":"Z"}),
            vec![(100, "validation_error", "Type")],
        ),
        (
            "getunusualips",
            json!({"days":1,"unusualPercent":1}),
            vec![(101, "required", "App")],
        ),
        (
            "getunusualips",
            json!({"app":"shop","unusualPercent":1}),
            vec![(101, "required", "Days")],
        ),
        (
            "getunusualips",
            json!({"app":"shop","days":1}),
            vec![(101, "required", "UnusualPercent")],
        ),
        (
            "getunusualips",
            json!({"app":"shop","days":1,"unusualPercent":60}),
            vec![(100, "validation_error", "UnusualPercent")],
        ),
        (
            "highprilog",
            json!({}),
            vec![
                (101, "required", "App"),
                (101, "required", "Pri"),
                (101, "required", "Days"),
            ],
        ),
    ];
    for (route, body, want) in &rules {
        let (st, v) = post(&srv, Some(&q), route, body).await;
        assert_eq!(st, 400, "{route} {body}: {v}");
        let want: Vec<(u64, String, String)> = want
            .iter()
            .map(|(m, c, f)| (*m, c.to_string(), f.to_string()))
            .collect();
        assert_eq!(messages(&v), want, "{route} {body}");
    }
    // Not JSON, not an object.
    for raw in ["{", "[1,2]", ""] {
        let r = srv
            .http
            .post(srv.url("/api/v1/highprilog"))
            .bearer_auth(&q)
            .body(raw)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 400);
        let v: Value = r.json().await.expect("envelope");
        assert_eq!(
            messages(&v),
            vec![(1006, "invalid_request".into(), String::new())]
        );
    }
    // Without a token, with a bad one, with the write token.
    for route in [
        "highprilog",
        "activitylog",
        "debuglog",
        "datachange",
        "getset",
        "getunusualips",
    ] {
        let body = json!({"app":"shop","pri":"Info","days":1,"module":"auth","setAttr":"who","unusualPercent":1});
        let (st, v) = post(&srv, None, route, &body).await;
        assert_eq!(st, 401, "{route}");
        assert_eq!(
            messages(&v),
            vec![(1002, "unauthorized".into(), String::new())]
        );
        let (st, _) = post(&srv, Some("sl_nope"), route, &body).await;
        assert_eq!(st, 401, "{route}");
        let (st, v) = post(&srv, Some(&w), route, &body).await;
        assert_eq!(st, 403, "{route}: a write token cannot read");
        assert_eq!(messages(&v)[0].1, "unauthorized");
    }
    let r = srv.get(None, "/api/v1/getapps").await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    for path in [
        "/v1/logs",
        "/v1/changes",
        "/v1/sets?attr=app",
        "/v1/apps",
        "/v1/unusual-ips?pct=1",
        "/v1/logs-for-ip?ip=LOCAL",
    ] {
        assert_eq!(srv.get(None, path).await.status(), 401, "{path}");
        assert_eq!(srv.get(Some(&w), path).await.status(), 403, "{path}");
    }

    // Paging with search_after_doc_id: the next page starts after the last.
    let (_, first) = post(
        &srv,
        Some(&q),
        "highprilog",
        &json!({"app":"appae","pri":"Debug2","days":40}),
    )
    .await;
    let r = srv
        .http
        .post(srv.url("/api/v1/highprilog"))
        .bearer_auth(&q)
        .json(&json!({"app":"appae","pri":"Debug2","days":40}))
        .send()
        .await
        .expect("send");
    let cursor = r.headers()["x-sealog-next-cursor"]
        .to_str()
        .expect("cursor")
        .to_string();
    let (_, second) = post(
        &srv,
        Some(&q),
        "highprilog",
        &json!({"app":"appae","pri":"Debug2","days":40,"search_after_doc_id":cursor}),
    )
    .await;
    let mut both = ids(&first["data"]["logs"]);
    both.extend(ids(&second["data"]["logs"]));
    assert_eq!(both, newest(&[("app", "appae"), ("pri", "Debug2")], 200));
}

/// Entries with odd fields still answer (a number where text is expected,
/// an array, a repeated key, a numeric `when`, a change list with a
/// non-string field); a count that would outgrow its budget is refused;
/// an empty page still leads back; a far-past `search_after_timestamp` is
/// answered, not a dropped connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_entries_budgets_and_dead_ends() {
    let mut config = Config {
        durability: sealog_journal::Durability::Buffered,
        ..Config::default()
    };
    config.limits.max_page_bytes = 64 * 1024;
    let srv = TestServer::start_with(config).await;
    let realm = srv.realm("odd").await;
    let (w, q) = (s(&realm, "write_token"), s(&realm, "query_token"));
    let odd = [
        r#"{"id":"w1","app":"weird","type":"A","pri":"Info","instance":5,"class":"c","when":"2026-11-10T00:00:00Z"}"#,
        r#"{"id":"w2","app":"weird","type":"A","pri":"Info","when":1795000000}"#,
        r#"{"id":"w3","app":"weird","type":"A","pri":"Info","op":["a"],"when":"2026-11-10T00:00:00Z"}"#,
        r#"{"id":"w4","app":"other","app":"weird","type":"C","pri":"Info","when":"2026-11-10T00:00:00Z","data":{"change_data":{"changes":[{"field":"email"},{"field":3},"x"]}}}"#,
    ];
    let r = srv.ingest(w, odd.join("\n")).await;
    assert_eq!(r.status(), 200);
    let ids = |v: &Value| -> Vec<String> {
        v["logs"]
            .as_array()
            .expect("logs")
            .iter()
            .map(|e| s(e, "id").to_string())
            .collect()
    };
    let v: Value = srv
        .get(Some(q), "/v1/logs?app=weird&order=oldest")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(ids(&v), ["w1", "w2", "w3", "w4"]);
    let v: Value = srv
        .get(Some(q), "/v1/logs?app=weird&instance=5&class=c")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(ids(&v), ["w1"], "a numeric instance compares as its text");
    // w2's own time (2026-11-18) is what the filter sees, as the block index does.
    let v: Value = srv
        .get(
            Some(q),
            "/v1/logs?app=weird&from=2026-11-17T00:00:00Z&to=2026-11-19T00:00:00Z",
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(ids(&v), ["w2"]);
    let v: Value = srv
        .get(Some(q), "/v1/changes?field=email")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        ids(&v),
        ["w4"],
        "one odd element does not hide the change list"
    );

    // An empty page reached from a cursor still has a way back: walking
    // back (newer, `after:`) it is `next`, walking on (older) it is `prev`.
    let v: Value = srv
        .get(Some(q), "/v1/logs?app=weird&cursor=after:3")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(v["logs"], json!([]));
    assert_eq!(
        (v["next"].as_str(), v["prev"].as_str()),
        (Some("before:4"), None)
    );
    let v: Value = srv
        .get(Some(q), "/v1/logs?app=weird&cursor=before:0")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(v["logs"], json!([]));
    assert_eq!(v["next"], Value::Null);
    let v: Value = srv
        .get(Some(q), "/v1/logs?app=weird&cursor=before:4")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(ids(&v), ["w4", "w3", "w2", "w1"]);

    // A far-past search_after_timestamp: an answer, not a panic.
    let (st, v) = post(&srv, Some(q), "highprilog",
        &json!({"app":"weird","pri":"Info","days":40,"search_after_timestamp":"1677-09-21T00:12:43.145224192Z"})).await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = post(
        &srv,
        Some(q),
        "highprilog",
        &json!({"app":"weird","pri":"Info","days":18446744073709551615u64}),
    )
    .await;
    assert_eq!(st, 400);
    assert_eq!(
        messages(&v),
        vec![(100, "invalid_days".into(), "Days".into())]
    );

    // 2,000 distinct 100-byte values do not fit a 64 KiB count: refused.
    let many: String = (0..2_000)
        .map(|i| {
            format!("{{\"app\":\"big\",\"type\":\"A\",\"pri\":\"Info\",\"who\":\"{i:0100}\"}}\n")
        })
        .collect();
    assert_eq!(srv.ingest(w, many).await.status(), 200);
    let r = srv.get(Some(q), "/v1/sets?attr=who").await;
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.expect("json");
    assert!(s(&e, "error").contains("narrow the filters"), "{e}");
    let v: Value = srv
        .get(Some(q), "/v1/sets?attr=app")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(v["total"], 2_004);
    // activitylog's Nrec is every match, not the page.
    let (_, v) = post(
        &srv,
        Some(q),
        "activitylog",
        &json!({"app":"big","days":40}),
    )
    .await;
    assert_eq!(v["data"]["Nrec"], 2_000);
    assert_eq!(v["data"]["LogEntery"].as_array().expect("page").len(), 100);
}

/// A scheduled retention policy (`[[logharbour.retention]]`) runs by
/// itself: old debug entries of one realm lose their bodies, the rest stay,
/// and the verifier reports what it removed; bad policies are refused when
/// the config is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_retention_policy_runs_by_itself() {
    let toml = r#"
        [logharbour]
        retention_interval_secs = 1
        [[logharbour.retention]]
        realm = "shop"
        days = 30
        type = "D"
    "#;
    let config = sealog_server::Config::from_toml(toml, "test.toml").expect("config");
    let srv = TestServer::start_with(config).await;
    let created = srv.realm("shop").await;
    let write = created["write_token"].as_str().expect("write token");
    let query = created["query_token"].as_str().expect("query token");
    let mut body = String::new();
    for i in 0..300 {
        let typ = ["A", "C", "D"][i % 3];
        let when = if i < 150 {
            "2020-01-01T00:00:00Z"
        } else {
            "2099-01-01T00:00:00Z"
        };
        body.push_str(&format!(
            "{{\"app\":\"shop\",\"type\":\"{typ}\",\"pri\":\"Info\",\"when\":\"{when}\",\"msg\":\"e{i}\"}}\n"
        ));
    }
    assert_eq!(srv.ingest(write, body).await.status(), 200);
    // Old debug entries: 50 of the first 150.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let report = loop {
        let v: Value = srv
            .http
            .post(srv.url("/v1/admin/verify"))
            .bearer_auth(&srv.admin)
            .json(&serde_json::json!({"realm": "shop"}))
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        if v["retained"].as_array().is_some_and(|r| !r.is_empty()) {
            break v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the scheduled policy did not run: {v}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["retained"][0]["records"], 50, "{report}");
    assert_eq!(report["retained"][0]["policy"], "days=30 type=D");
    let v: Value = srv
        .get(Some(query), "/v1/sets?attr=type")
        .await
        .json()
        .await
        .expect("json");
    let count = |t: &str| {
        v["counts"]
            .as_array()
            .expect("counts")
            .iter()
            .find(|c| c["value"] == t)
            .and_then(|c| c["count"].as_u64())
    };
    assert_eq!(
        (count("A"), count("C"), count("D")),
        (Some(100), Some(100), Some(50))
    );
    // Bad policies are refused with the config.
    for bad in [
        "[[logharbour.retention]]\nrealm = \"shop\"\ndays = 0\n",
        "[[logharbour.retention]]\nrealm = \"shop\"\ndays = 3\ntype = \"Z\"\n",
        "[[logharbour.retention]]\nrealm = \"../x\"\ndays = 3\n",
        "[logharbour]\nretention_interval_secs = 0\n",
    ] {
        let e = sealog_server::Config::from_toml(bad, "bad.toml").expect_err("refused");
        assert!(e.to_string().contains("bad.toml"), "{e}");
    }
}

/// The background summarizer: a realm named in `summarize_realms` gets a
/// `GetSet` summary of every whole block without a count asking for it,
/// kept in `lh.facets` and kept up as records arrive; a realm nobody named
/// or counted gets none, until it is counted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_summarizer_keeps_up_with_named_and_counted_realms() {
    let toml = r#"
        [logharbour]
        summarize_realms = ["harbour"]
        summarize_records_per_sec = 0
    "#;
    let config = Config::from_toml(toml, "test.toml").expect("config");
    let (mut srv, w, q, mut all) = seeded_server(20_000, config).await;
    let other = srv.realm("other").await;
    let (ow, oq) = (s(&other, "write_token"), s(&other, "query_token"));
    let other_body: String = entries(3_000).iter().map(|e| format!("{e}\n")).collect();
    assert_eq!(srv.ingest(ow, other_body.clone()).await.status(), 200);
    let realm_dir = |r: &str| srv.dir.path().join("realms").join(r);
    let summarized = |text: &str, realm: &str| -> Option<u64> {
        let head = format!("sealog_lh_summarized_through{{realm=\"{realm}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&head))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|v| v as u64)
    };
    let wait_for = |realm: &'static str, n: u64| {
        let srv = &srv;
        async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            loop {
                let text = srv
                    .get(None, "/metrics")
                    .await
                    .text()
                    .await
                    .expect("metrics");
                if summarized(&text, realm) == Some(n) {
                    return text;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "{realm}: summaries did not reach {n}: {:?}",
                    summarized(&text, realm)
                );
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    };
    // Named: summarized with no count asked, every record in a summary.
    let text = wait_for("harbour", 20_000).await;
    assert_eq!(
        summarized(&text, "other"),
        None,
        "nobody named or counted it"
    );
    assert!(!realm_dir("other").join("lh.facets").exists());
    let lines = std::fs::read_to_string(realm_dir("harbour").join("lh.facets")).expect("lh.facets");
    let covered: u64 = lines
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("a summary line");
            v["n"].as_u64().expect("n")
        })
        .sum();
    assert_eq!(covered, 20_000, "one summary a block, every block");
    let check = |all: &[Value], got: &Value| {
        let mut want: std::collections::BTreeMap<String, u64> = Default::default();
        for e in all {
            *want.entry(s(e, "app").to_string()).or_default() += 1;
        }
        let got: std::collections::BTreeMap<String, u64> = got["counts"]
            .as_array()
            .expect("counts")
            .iter()
            .map(|c| {
                (
                    s(c, "value").to_string(),
                    c["count"].as_u64().expect("count"),
                )
            })
            .collect();
        assert_eq!(got, want);
    };
    let v: Value = srv
        .get(Some(&q), "/v1/sets?attr=app")
        .await
        .json()
        .await
        .expect("json");
    check(&all, &v);
    // New records are summarized as they come.
    let more = entries(5_000);
    let body: String = more.iter().map(|e| format!("{e}\n")).collect();
    assert_eq!(srv.ingest(&w, body).await.status(), 200);
    all.extend(more);
    wait_for("harbour", 25_000).await;
    let v: Value = srv
        .get(Some(&q), "/v1/sets?attr=app")
        .await
        .json()
        .await
        .expect("json");
    check(&all, &v);
    // Counted once: from then on the other realm is summarized too.
    let v: Value = srv
        .get(Some(oq), "/v1/sets?attr=app")
        .await
        .json()
        .await
        .expect("json");
    check(&entries(3_000), &v);
    assert_eq!(srv.ingest(ow, other_body).await.status(), 200);
    wait_for("other", 6_000).await;
    srv.shutdown().await;
}
