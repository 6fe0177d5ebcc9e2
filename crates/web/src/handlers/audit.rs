//! The operation history: search, page, verify and export.

use askama::Template;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use daicho_domain::{AuditAction, AuditEvent, Outcome, ReadAudit};

use crate::ctx::{Ctx, EventExt};
use crate::error::{AppError, AppResult};
use crate::forms::AuditQuery;
use crate::handlers::ops;
use crate::session::Auth;
use crate::state::AppState;
use crate::views::{Page, fmt_time, render};

pub struct EventRow {
    pub at: String,
    pub login: String,
    pub ip: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub details: String,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    p: Page,
    events: Vec<EventRow>,
    actions: Vec<&'static str>,
    outcomes: Vec<&'static str>,
    f_login: String,
    f_action: String,
    f_outcome: String,
    f_ip: String,
    f_from: String,
    f_to: String,
    filter_error: Option<&'static str>,
    next_query: Option<String>,
    export_query: String,
    /// Whether the chain was checked for this page (asked for with `verify=1`).
    chain_verified: bool,
    chain_ok: bool,
    chain_broken_at: i64,
    chain_checked: u64,
}

/// The query string for the same filter, optionally from an older position.
fn query_string(q: &AuditQuery, before: Option<i64>) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("login", &q.login),
        ("action", &q.action),
        ("outcome", &q.outcome),
        ("ip", &q.ip),
        ("from", &q.from),
        ("to", &q.to),
    ] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            s.append_pair(k, v);
        }
    }
    if let Some(b) = before {
        s.append_pair("before", &b.to_string());
    }
    let out = s.finish();
    if out.is_empty() { out } else { format!("?{out}") }
}

pub async fn audit_page(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Query(q): Query<AuditQuery>,
) -> AppResult<Response> {
    let scope = auth.authorize::<ReadAudit>(&state, &ctx).await?;
    const PAGE: u32 = 50;
    let (events, filter_error) = match ops::audit_filter(&q, auth.tenant.policy.utc_offset_minutes) {
        Ok(f) => (ops::search_audit(&state, &scope, &f, PAGE).await?, None),
        Err(e) => (Vec::new(), e.0.first().map(|fe| fe.code)),
    };
    let chain = match q.verify.as_deref() {
        Some("1") => Some(state.store.verify_audit_chain(&scope).await?),
        _ => None,
    };
    let next_query = (events.len() == PAGE as usize).then(|| query_string(&q, events.last().map(|e| e.seq)));
    let s = |o: &Option<String>| o.clone().unwrap_or_default().chars().take(128).collect::<String>();
    let page = AuditPage {
        p: Page::for_user(&auth, "audit.title", "audit", &ctx.request_id),
        events: events
            .into_iter()
            .map(|e| EventRow {
                at: fmt_time(e.at, auth.tenant.policy.utc_offset_minutes),
                login: e.actor_login,
                ip: e.ip,
                action: e.action,
                target: e.target,
                outcome: e.outcome,
                details: e.details,
            })
            .collect(),
        actions: AuditAction::ALL.iter().map(|a| a.as_str()).collect(),
        outcomes: vec!["success", "failure", "denied"],
        f_login: s(&q.login),
        f_action: s(&q.action),
        f_outcome: s(&q.outcome),
        f_ip: s(&q.ip),
        f_from: s(&q.from),
        f_to: s(&q.to),
        filter_error,
        next_query,
        export_query: query_string(&q, None),
        chain_verified: chain.is_some(),
        chain_ok: chain.as_ref().is_some_and(|c| c.intact()),
        chain_broken_at: chain.as_ref().and_then(|c| c.first_broken_seq).unwrap_or(0),
        chain_checked: chain.as_ref().map_or(0, |c| c.events_checked),
    };
    Ok(render(&page))
}

/// Neutralises cells that a spreadsheet would run as a formula (OWASP CSV injection).
pub fn csv_cell(s: &str) -> String {
    if s.starts_with(super::tables::FORMULA_STARTS) { format!("'{s}") } else { s.to_owned() }
}

const EXPORT_BATCH: u32 = 1000;
/// The most events one export returns; narrow the filter for more.
pub const EXPORT_MAX: usize = 1_000_000;

pub fn csv_header() -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record([
        "seq",
        "at_utc",
        "login_id",
        "user_id",
        "ip",
        "user_agent",
        "action",
        "target",
        "outcome",
        "details",
        "hash",
    ]);
    let mut out = vec![0xEF, 0xBB, 0xBF];
    out.extend(w.into_inner().unwrap_or_default());
    out
}

/// The last row of an export cut at [`EXPORT_MAX`]: no event, a note in the details column.
fn truncated_row(sent: usize) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let note = format!("cut at {sent} events (the most one export holds): narrow the filter for the rest");
    let _ = w.write_record(["", "", "", "", "", "", "", "", "", note.as_str(), ""]);
    w.into_inner().unwrap_or_default()
}

pub fn csv_rows(events: &[AuditEvent]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for e in events {
        let _ = w.write_record([
            e.seq.to_string(),
            e.at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            csv_cell(&e.actor_login),
            e.actor_id.map(|a| a.to_string()).unwrap_or_default(),
            csv_cell(&e.ip),
            csv_cell(&e.user_agent),
            e.action.clone(),
            csv_cell(&e.target),
            e.outcome.clone(),
            csv_cell(&e.details),
            e.hash.clone(),
        ]);
    }
    w.into_inner().unwrap_or_default()
}

/// Streams the filtered history as CSV (UTF-8 with BOM, for Excel), in batches, so memory
/// stays flat however long the history is. The export itself is recorded first.
pub async fn export_audit(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Query(q): Query<AuditQuery>,
) -> AppResult<Response> {
    let scope = auth.authorize::<ReadAudit>(&state, &ctx).await?;
    let filter = ops::audit_filter(&q, auth.tenant.policy.utc_offset_minutes).map_err(AppError::Invalid)?;
    let ev = ctx
        .event_by(&auth.principal, AuditAction::AuditExport, Outcome::Success)
        .target("audit_log")
        // (The days of `from` and `to` are the tenant's, at this offset.)
        .details(format!(
            "filter: {}; utc_offset_minutes={}",
            query_string(&q, None),
            auth.tenant.policy.utc_offset_minutes
        ));
    state.store.append_audit(ev).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let store = state.store.clone();
    let mut finished = ctx.event_by(&auth.principal, AuditAction::AuditExport, Outcome::Success).target("audit_log");
    let clock = state.clock.clone();
    let (state, auth) = (state.clone(), auth.clone());
    // Set when the file is whole (see `export_body`): a writer that stops otherwise, a panic
    // among the ways, cuts the body off.
    let whole = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let whole_seen = whole.clone();
    tokio::spawn(async move {
        let mut f = filter;
        let mut sent = 0usize;
        let (mut checked, mut stopped) = (clock.now(), None);
        // How it ended, for the closing entry.
        let end = 'export: {
            if tx.send(Ok(csv_header())).await.is_err() {
                break 'export "interrupted after";
            }
            loop {
                // As a record export does: the session or token is asked again as the export
                // goes, so that ending it stops a download under way (the file is cut).
                stopped =
                    auth.still_signed_in(&state, clock.now(), &mut checked, super::tables::EXPORT_RECHECK, None).await;
                if stopped.is_some() {
                    let _ = tx.send(Err(std::io::Error::other("export stopped"))).await;
                    break 'export "stopped after";
                }
                match store.search_audit(&scope, &f, EXPORT_BATCH).await {
                    Ok(batch) if !batch.is_empty() => {
                        sent += batch.len();
                        f.before_seq = batch.last().map(|e| e.seq);
                        let mut more = batch.len() == EXPORT_BATCH as usize;
                        let mut bytes = csv_rows(&batch);
                        // At the limit with a full batch: is there an event beyond it?
                        if more && sent >= EXPORT_MAX {
                            more = store.search_audit(&scope, &f, 1).await.map(|b| !b.is_empty()).unwrap_or(true);
                        }
                        // Cut at the limit: the file says so in a last row of its own.
                        let cut = more && sent >= EXPORT_MAX;
                        if cut {
                            bytes.extend(truncated_row(sent));
                        }
                        if tx.send(Ok(bytes)).await.is_err() {
                            break 'export "interrupted after";
                        }
                        if cut {
                            break 'export "cut at the limit after";
                        }
                        if !more {
                            break 'export "finished:";
                        }
                    }
                    Ok(_) => break 'export "finished:",
                    Err(e) => {
                        tracing::error!(error = %e, "audit export failed mid-stream");
                        let _ = tx.send(Err(std::io::Error::other("export failed"))).await;
                        break 'export "failed after";
                    }
                }
            }
        };
        if matches!(end, "finished:" | "cut at the limit after") {
            whole.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        finished.at = clock.now();
        finished.details = match stopped {
            Some(why) => format!("{end} {sent} events: {why}"),
            None => format!("{end} {sent} events"),
        };
        if let Err(e) = store.append_audit(finished).await {
            tracing::error!(error = %e, "could not record the end of a history export");
        }
        // The body ends only now, so that a client which has the whole file finds its end in
        // the history.
        drop(tx);
    });
    let mut res = Body::from_stream(super::tables::export_body(rx, whole_seen)).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    let name = format!("attachment; filename=\"daicho-audit-{}.csv\"", ctx.now.date());
    if let Ok(v) = HeaderValue::from_str(&name) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_neutralised() {
        assert_eq!(csv_cell("=1+1"), "'=1+1");
        assert_eq!(csv_cell("+81 3"), "'+81 3");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("alice"), "alice");
        assert_eq!(csv_cell("＝1+1"), "'＝1+1");
    }

    #[test]
    fn an_export_cut_at_the_limit_says_so_in_a_row_of_the_same_width() {
        let text = String::from_utf8(truncated_row(EXPORT_MAX)).unwrap_or_default();
        let header = String::from_utf8(csv_header()[3..].to_vec()).unwrap_or_default();
        let width = |t: &str| {
            csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(t.as_bytes())
                .records()
                .next()
                .and_then(Result::ok)
                .map(|r| r.len())
        };
        assert_eq!(width(&text), width(&header));
        assert!(text.contains("cut at 1000000 events"), "{text}");
    }
}
