//! Daicho's JSON API as a client sees it: HTTPS to the generated certificate, one keep-alive
//! connection, the session cookie and the CSRF header on every request.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use reqwest::header::{CONTENT_TYPE, COOKIE, HeaderMap, HeaderValue, SET_COOKIE};
use reqwest::{Certificate, Client, StatusCode};
use serde_json::{Value, json};

use crate::data::{CsvCounter, FIELDS};

pub const PASSWORD: &str = "Bench-Ledger-Passphrase-2026";

fn client_builder(cert_pem: &[u8]) -> anyhow::Result<reqwest::ClientBuilder> {
    Ok(Client::builder()
        .tls_certs_only([Certificate::from_pem(cert_pem)?])
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(600)))
}

pub struct Api {
    pub client: Client,
    pub base: String,
    /// `Cookie: ...` value, for wrk.
    pub cookie: String,
}

async fn check(r: reqwest::Response, want: StatusCode, what: &str) -> anyhow::Result<reqwest::Response> {
    if r.status() != want {
        let s = r.status();
        let body = r.text().await.unwrap_or_default();
        bail!("{what}: expected {want}, got {s}: {}", body.chars().take(2000).collect::<String>());
    }
    Ok(r)
}

impl Api {
    /// Signs in as the tenant's administrator with the one-time password, changes it as the
    /// server demands, and keeps the session.
    pub async fn login(base: &str, cert_pem: &[u8], tenant: &str, one_time: &str) -> anyhow::Result<Self> {
        Self::login_as(base, cert_pem, tenant, "admin", one_time).await
    }

    /// As [`Api::login`], for user `login_id`.
    pub async fn login_as(
        base: &str,
        cert_pem: &[u8],
        tenant: &str,
        login_id: &str,
        one_time: &str,
    ) -> anyhow::Result<Self> {
        let anon = client_builder(cert_pem)?.build()?;
        let r = anon
            .post(format!("{base}/api/v1/session"))
            .json(&json!({"tenant": tenant, "login_id": login_id, "password": one_time}))
            .send()
            .await?;
        let r = check(r, StatusCode::CREATED, "sign-in").await?;
        let set = r.headers().get(SET_COOKIE).context("no session cookie")?.to_str()?;
        let cookie = set.split(';').next().unwrap_or_default().trim().to_owned();
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_str(&cookie)?);
        let client = client_builder(cert_pem)?.default_headers(headers.clone()).build()?;
        let me: Value =
            check(client.get(format!("{base}/api/v1/me")).send().await?, StatusCode::OK, "me").await?.json().await?;
        let csrf = me["csrf_token"].as_str().context("no csrf_token")?.to_owned();
        let r = client
            .post(format!("{base}/api/v1/me/password"))
            .header("x-csrf-token", &csrf)
            .json(&json!({"current_password": one_time, "new_password": PASSWORD}))
            .send()
            .await?;
        check(r, StatusCode::NO_CONTENT, "password change").await?;
        headers.insert("x-csrf-token", HeaderValue::from_str(&csrf)?);
        let client = client_builder(cert_pem)?.default_headers(headers).build()?;
        Ok(Self { client, base: base.to_owned(), cookie })
    }

    /// Creates the table and its eight fields; returns the table id and the field ids in
    /// [`FIELDS`] order.
    pub async fn create_table(&self) -> anyhow::Result<(String, Vec<String>)> {
        let r = self
            .client
            .post(format!("{}/api/v1/tables", self.base))
            .json(&json!({"name": "受注台帳", "description": "daicho-bench"}))
            .send()
            .await?;
        let t: Value = check(r, StatusCode::CREATED, "create table").await?.json().await?;
        let tid = t["table"]["id"].as_str().context("no table id")?.to_owned();
        let mut ids = Vec::new();
        for f in &FIELDS {
            let r = self
                .client
                .post(format!("{}/api/v1/tables/{tid}/fields", self.base))
                .json(&json!({"name": f.name, "kind": (f.kind)()}))
                .send()
                .await?;
            let t: Value = check(r, StatusCode::CREATED, "add field").await?.json().await?;
            let id = t["table"]["fields"]
                .as_array()
                .and_then(|a| a.iter().find(|x| x["name"] == f.name))
                .and_then(|x| x["id"].as_str())
                .context("field id")?;
            ids.push(id.to_owned());
        }
        Ok((tid, ids))
    }

    /// Adds staff member `login_id` (not an administrator) in a group of their own that may
    /// view table `tid`, as most of a tenant's users are; returns their one-time password.
    pub async fn add_viewer(&self, tid: &str, login_id: &str) -> anyhow::Result<String> {
        let post = |path: &str, body: Value| self.client.post(format!("{}{path}", self.base)).json(&body).send();
        let put = |path: &str, body: Value| self.client.put(format!("{}{path}", self.base)).json(&body).send();
        let user =
            json!({"login_id": login_id, "display_name": "Staff", "email": "staff@example.jp", "role": "member"});
        let u: Value = check(post("/api/v1/users", user).await?, StatusCode::CREATED, "add user").await?.json().await?;
        let uid = u["user"]["id"].as_str().context("user id")?.to_owned();
        let otp = u["one_time_password"].as_str().context("one-time password")?.to_owned();
        let group = json!({"name": format!("viewers of {tid}"), "description": "daicho-bench"});
        let g: Value =
            check(post("/api/v1/groups", group).await?, StatusCode::CREATED, "add group").await?.json().await?;
        let gid = g["group"]["id"].as_str().context("group id")?.to_owned();
        check(
            put(&format!("/api/v1/groups/{gid}/members"), json!({"members": [uid]})).await?,
            StatusCode::OK,
            "members",
        )
        .await?;
        check(
            put(&format!("/api/v1/groups/{gid}/grants/{tid}"), json!({"rights": ["view"]})).await?,
            StatusCode::OK,
            "grant",
        )
        .await?;
        Ok(otp)
    }

    /// Posts one CSV file; returns the rows inserted and the time the request took.
    pub async fn import(&self, tid: &str, csv: String) -> anyhow::Result<(u64, Duration)> {
        let t = Instant::now();
        let r = self
            .client
            .post(format!("{}/api/v1/tables/{tid}/import", self.base))
            .header(CONTENT_TYPE, "text/csv; charset=utf-8")
            .body(csv)
            .send()
            .await?;
        let v: Value = check(r, StatusCode::OK, "import").await?.json().await?;
        Ok((v["inserted"].as_u64().context("inserted")?, t.elapsed()))
    }

    /// A GET whose whole body is read; returns the time and the body.
    pub async fn get(&self, path_and_query: &str) -> anyhow::Result<(Duration, Vec<u8>)> {
        let t = Instant::now();
        let r = self.client.get(format!("{}{path_and_query}", self.base)).send().await?;
        let r = check(r, StatusCode::OK, path_and_query).await?;
        let body = r.bytes().await?;
        Ok((t.elapsed(), body.to_vec()))
    }

    pub async fn list(&self, tid: &str, pairs: &[(String, String)]) -> anyhow::Result<(Duration, Value)> {
        let t = Instant::now();
        let r = self.client.get(format!("{}/api/v1/tables/{tid}/records", self.base)).query(pairs).send().await?;
        let r = check(r, StatusCode::OK, "list").await?;
        let body = r.bytes().await?;
        let elapsed = t.elapsed();
        Ok((elapsed, serde_json::from_slice(&body)?))
    }

    pub async fn patch(&self, tid: &str, rid: i64, values: Value, version: i64) -> anyhow::Result<Duration> {
        let t = Instant::now();
        let r = self
            .client
            .patch(format!("{}/api/v1/tables/{tid}/records/{rid}", self.base))
            .json(&json!({"values": values, "version": version}))
            .send()
            .await?;
        let r = check(r, StatusCode::OK, "update").await?;
        let _ = r.bytes().await?;
        Ok(t.elapsed())
    }

    /// Streams the whole CSV export; returns the data rows, bytes and time.
    pub async fn export(&self, tid: &str) -> anyhow::Result<(u64, u64, Duration)> {
        let t = Instant::now();
        let r = self.client.get(format!("{}/api/v1/tables/{tid}/export.csv", self.base)).send().await?;
        let mut r = check(r, StatusCode::OK, "export").await?;
        let mut counter = CsvCounter::default();
        let mut bytes = 0u64;
        while let Some(chunk) = r.chunk().await? {
            bytes += chunk.len() as u64;
            counter.feed(&chunk);
        }
        Ok((counter.lines.saturating_sub(1), bytes, t.elapsed()))
    }
}
