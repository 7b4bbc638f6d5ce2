//! The web console at `/ui`: a page, a script and a style sheet embedded in
//! the binary (no CDN, nothing fetched at run time, no JavaScript build
//! step: the files under `console/` are what the browser runs).
//!
//! The assets answer without a token, as `/health` does: they hold no data.
//! Everything the console shows it fetches from the API with the token the
//! user signed in with, which it keeps in the tab's session storage and
//! sends only in the `Authorization` header. The console checks proofs
//! itself (WebCrypto), so it need not trust the server's answers; it does
//! run the code the server sent, which the README says plainly.
//!
//! Each asset is sent gzip-compressed to a browser that accepts it (made
//! once, on first use), with a content security policy that allows only
//! this origin's script, style and API.

use std::io::Write as _;
use std::sync::OnceLock;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// One embedded file: its name under `/ui/`, type and bytes.
struct Asset {
    name: &'static str,
    mime: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        mime: "text/html; charset=utf-8",
        body: include_bytes!("../console/index.html"),
    },
    Asset {
        name: "console.js",
        mime: "text/javascript; charset=utf-8",
        body: include_bytes!("../console/console.js"),
    },
    Asset {
        name: "console.css",
        mime: "text/css; charset=utf-8",
        body: include_bytes!("../console/console.css"),
    },
];

/// The policy every console response carries: nothing from elsewhere, no
/// inline script, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The assets' gzip bodies, by position in [`ASSETS`].
fn gzipped(i: usize) -> &'static [u8] {
    static GZ: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    &GZ.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                // Writing to a Vec cannot fail.
                let _ = e.write_all(a.body);
                e.finish().unwrap_or_default()
            })
            .collect()
    })[i]
}

/// The console's total size compressed as it is sent (for the size check).
pub fn compressed_bytes() -> usize {
    (0..ASSETS.len()).map(|i| gzipped(i).len()).sum()
}

fn asset(name: &str, headers: &HeaderMap) -> Response {
    let Some(i) = ASSETS.iter().position(|a| a.name == name) else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "console file missing\n").into_response();
    };
    let a = &ASSETS[i];
    let gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let mut r = if gzip {
        gzipped(i).into_response()
    } else {
        a.body.into_response()
    };
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(a.mime));
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

/// `GET /ui`: the console's page.
pub async fn index(h: HeaderMap) -> Response {
    asset("index.html", &h)
}

/// `GET /ui/console.js`: the console's script.
pub async fn script(h: HeaderMap) -> Response {
    asset("console.js", &h)
}

/// `GET /ui/console.css`: the console's style sheet.
pub async fn style(h: HeaderMap) -> Response {
    asset("console.css", &h)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_assets_are_small_and_reference_only_each_other() {
        let n = super::compressed_bytes();
        assert!(n > 1000 && n < 300 * 1024, "{n} bytes compressed");
        let html = std::str::from_utf8(super::ASSETS[0].body).expect("utf-8");
        assert!(
            html.contains("src=\"/ui/console.js\"") && html.contains("href=\"/ui/console.css\"")
        );
        for a in super::ASSETS {
            // The SVG namespace is a name, not an address fetched.
            let text = std::str::from_utf8(a.body)
                .expect("utf-8")
                .replace("\"http://www.w3.org/2000/svg\"", "");
            assert!(
                !text.contains("http://") && !text.contains("https://"),
                "{} fetches nothing from elsewhere",
                a.name
            );
        }
    }
}
