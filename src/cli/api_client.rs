//! A small client of the admin API, authenticated with the bootstrap admin's credentials.

use super::ApiArgs;
use crate::bootstrap::AdminCredentials;
use reqwest::Method;
use serde_json::Value;

pub struct AdminClient {
    http: reqwest::Client,
    base: String,
    token: String,
}

pub fn http_client(ca: Option<&std::path::Path>) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30));
    if let Some(ca) = ca {
        let pem = std::fs::read(ca).map_err(|e| format!("reading {}: {e}", ca.display()))?;
        let cert =
            reqwest::Certificate::from_pem(&pem).map_err(|e| format!("{}: {e}", ca.display()))?;
        builder = builder.add_root_certificate(cert);
    }
    builder.build().map_err(|e| e.to_string())
}

/// Client credentials against a token endpoint; returns the whole token response.
pub async fn client_credentials(
    http: &reqwest::Client,
    token_endpoint: &str,
    client_id: &str,
    secret: &str,
    scope: &str,
) -> Result<Value, String> {
    let res = http
        .post(token_endpoint)
        .basic_auth(enc(client_id), Some(enc(secret)))
        .form(&[("grant_type", "client_credentials"), ("scope", scope)])
        .send()
        .await
        .map_err(|e| format!("cannot reach {token_endpoint}: {e}"))?;
    let status = res.status();
    let body: Value = res.json().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!(
            "token request refused ({status}): {} {}",
            body["error"].as_str().unwrap_or(""),
            body["error_description"].as_str().unwrap_or("")
        ));
    }
    Ok(body)
}

/// RFC 6749 §2.3.1: Basic credentials are form-encoded first.
fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl AdminClient {
    pub async fn connect(args: &ApiArgs) -> Result<Self, String> {
        let text = std::fs::read_to_string(&args.credentials).map_err(|e| {
            format!(
                "reading {} (use --credentials): {e}",
                args.credentials.display()
            )
        })?;
        let creds: AdminCredentials = serde_json::from_str(&text)
            .map_err(|e| format!("{}: {e}", args.credentials.display()))?;
        let base = match &args.url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => creds
                .token_endpoint
                .trim_end_matches("/oauth2/token")
                .to_owned(),
        };
        let http = http_client(args.ca.as_deref())?;
        let token_endpoint = format!("{base}/oauth2/token");
        let answer = client_credentials(
            &http,
            &token_endpoint,
            &creds.client_id,
            &creds.client_secret,
            &creds.scope,
        )
        .await?;
        let token = answer["access_token"]
            .as_str()
            .ok_or("the token response has no access_token")?
            .to_owned();
        Ok(Self { http, base, token })
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let url = format!("{}/admin/v1{path}", self.base);
        let mut req = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req
            .send()
            .await
            .map_err(|e| format!("cannot reach {url}: {e}"))?;
        let status = res.status();
        let text = res.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            let detail = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["detail"].as_str().map(str::to_owned))
                .unwrap_or(text);
            return Err(format!("{status}: {detail}"));
        }
        if text.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| e.to_string())
    }

    pub async fn get(&self, path: &str) -> Result<Value, String> {
        self.call(Method::GET, path, None).await
    }

    /// Every item of a paginated list.
    pub async fn get_all(&self, path: &str) -> Result<Vec<Value>, String> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let url = match &cursor {
                Some(c) => format!("{path}{sep}limit=500&cursor={c}"),
                None => format!("{path}{sep}limit=500"),
            };
            let page = self.get(&url).await?;
            items.extend(page["items"].as_array().cloned().unwrap_or_default());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return Ok(items),
            }
        }
    }
}
