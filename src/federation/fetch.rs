//! Outbound fetches of JWKS and issuer metadata: HTTPS only (plain HTTP for loopback),
//! short timeouts, a size cap, and no redirect to another host.

use reqwest::redirect::Policy;
use std::time::Duration;

const MAX_BODY: usize = 512 * 1024;

#[derive(Clone)]
pub struct Fetcher {
    http: reqwest::Client,
}

pub fn is_allowed_url(url: &reqwest::Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => is_loopback(url),
        _ => false,
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

impl Fetcher {
    pub fn new(extra_roots: Vec<reqwest::Certificate>) -> Self {
        let policy = Policy::custom(|attempt| {
            let same_host = attempt
                .previous()
                .first()
                .map(|first| first.host_str() == attempt.url().host_str())
                .unwrap_or(false);
            if attempt.previous().len() >= 3 || !same_host || !is_allowed_url(attempt.url()) {
                attempt.stop()
            } else {
                attempt.follow()
            }
        });
        let mut builder = reqwest::Client::builder()
            .redirect(policy)
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(5))
            .user_agent(concat!("agentauth/", env!("CARGO_PKG_VERSION")));
        for c in extra_roots {
            builder = builder.add_root_certificate(c);
        }
        let http = builder.build().unwrap_or_else(|_| reqwest::Client::new());
        Self { http }
    }

    /// GETs a JSON document within the limits.
    pub async fn json(&self, url: &str) -> Result<serde_json::Value, String> {
        let parsed = reqwest::Url::parse(url).map_err(|_| format!("{url} is not a URL"))?;
        if !is_allowed_url(&parsed) {
            return Err(format!(
                "{url} must use https (http only for loopback addresses)"
            ));
        }
        let mut res = self
            .http
            .get(parsed)
            .send()
            .await
            .map_err(|e| format!("fetching {url}: {e}"))?;
        if !res.status().is_success() {
            return Err(format!("fetching {url}: HTTP {}", res.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = res
            .chunk()
            .await
            .map_err(|e| format!("reading {url}: {e}"))?
        {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(format!("{url} answered more than {MAX_BODY} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| format!("{url} is not JSON: {e}"))
    }
}
