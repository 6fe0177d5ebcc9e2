//! The tenant's security policy page.

use crate::forms::Form;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use daicho_domain::{FieldErrors, ManagePolicy, SecurityPolicy};

use crate::ctx::Ctx;
use crate::error::{AppError, AppResult};
use crate::forms::{DoneQuery, PolicyForm};
use crate::handlers::ops;
use crate::middleware::redirect_see_other;
use crate::session::Auth;
use crate::state::AppState;
use crate::views::{Errors, Page, render, render_status};

pub struct PolicyField {
    pub group: &'static str,
    pub name: &'static str,
    pub label: String,
    pub hint: String,
    pub min: u32,
    pub max: u32,
    pub value: String,
}

/// (group heading, field, min, max) in display order; ranges match `SecurityPolicy::validate`.
const FIELDS: &[(&str, &str, u32, u32)] = &[
    ("policy.group_passwords", "password_min_length", 8, 128),
    ("", "password_history", 0, 24),
    ("", "password_max_age_days", 0, 3650),
    ("", "password_expiry_warning_days", 0, 90),
    ("policy.group_lockout", "lockout_threshold", 1, 100),
    ("", "lockout_minutes", 1, 1440),
    ("policy.group_sessions", "idle_timeout_minutes", 1, 1440),
    ("", "absolute_timeout_hours", 1, 168),
];

fn values(p: &SecurityPolicy) -> [u32; 8] {
    [
        p.password_min_length,
        p.password_history,
        p.password_max_age_days,
        p.password_expiry_warning_days,
        p.lockout_threshold,
        p.lockout_minutes,
        p.idle_timeout_minutes,
        p.absolute_timeout_hours,
    ]
}

fn form_values(f: &PolicyForm) -> [&str; 8] {
    [
        &f.password_min_length,
        &f.password_history,
        &f.password_max_age_days,
        &f.password_expiry_warning_days,
        &f.lockout_threshold,
        &f.lockout_minutes,
        &f.idle_timeout_minutes,
        &f.absolute_timeout_hours,
    ]
}

#[derive(Template)]
#[template(path = "admin/policy.html")]
struct PolicyPage {
    p: Page,
    fields: Vec<PolicyField>,
    /// (minutes, label, chosen) for the time zone's select.
    offsets: Vec<(i32, String, bool)>,
    allowlist: String,
    client_ip: String,
    errors: Errors,
}

/// The offsets offered: every whole hour from UTC−12 to UTC+14, and the half and quarter hours
/// in use (India, Nepal, central Australia, …).
fn offsets(chosen: i32) -> Vec<(i32, String, bool)> {
    let mut all: Vec<i32> = (-12..=14).map(|h| h * 60).collect();
    all.extend([-570, -210, 210, 270, 330, 345, 390, 525, 570, 630, 765, chosen]);
    all.sort_unstable();
    all.dedup();
    all.into_iter().map(|m| (m, crate::views::offset_label(m), m == chosen)).collect()
}

fn page(
    auth: &Auth,
    ctx: &Ctx,
    shown: [String; 8],
    allowlist: String,
    offset: i32,
    errors: Errors,
    done: Option<&str>,
) -> PolicyPage {
    let fields = FIELDS
        .iter()
        .zip(shown)
        .map(|((group, name, min, max), value)| PolicyField {
            group,
            name,
            label: format!("policy.{name}"),
            hint: format!("policy.{name}_hint"),
            min: *min,
            max: *max,
            value,
        })
        .collect();
    PolicyPage {
        p: Page::for_user(auth, "policy.title", "policy", &ctx.request_id).with_flash(ctx, done),
        fields,
        offsets: offsets(offset),
        allowlist,
        client_ip: ctx.ip.clone(),
        errors,
    }
}

pub async fn policy_page(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Query(q): Query<DoneQuery>,
) -> AppResult<Response> {
    let _scope = auth.authorize::<ManagePolicy>(&state, &ctx).await?;
    let shown = values(&auth.tenant.policy).map(|v| v.to_string());
    let allowlist = auth.tenant.policy.ip_allowlist.iter().map(|n| n.to_string()).collect::<Vec<_>>().join("\n");
    let offset = auth.tenant.policy.utc_offset_minutes;
    Ok(render(&page(&auth, &ctx, shown, allowlist, offset, Errors::default(), q.done.as_deref())))
}

/// Parses the form into a policy, collecting a field error for every value that is not a
/// whole number. A form without the time zone (a page opened before it was offered) keeps
/// `offset_now`, the tenant's.
pub fn parse_policy(f: &PolicyForm, offset_now: i32) -> Result<SecurityPolicy, FieldErrors> {
    let mut errs = FieldErrors::new();
    let mut nums = [0u32; 8];
    for (i, ((_, name, _, _), raw)) in FIELDS.iter().zip(form_values(f)).enumerate() {
        match raw.trim().parse::<u32>() {
            Ok(n) => nums[i] = n,
            Err(_) => errs.push(name, "not_a_number"),
        }
    }
    let mut allowlist = Vec::new();
    for line in f.ip_allowlist.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let net = line
            .parse::<ipnet::IpNet>()
            .or_else(|_| line.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            .map(|n| n.trunc());
        match net {
            Ok(n) => allowlist.push(n),
            Err(_) => {
                errs.push("ip_allowlist", "bad_cidr");
                break;
            }
        }
    }
    let utc_offset_minutes = match f.utc_offset_minutes.trim() {
        "" => offset_now,
        v => v.parse::<i32>().unwrap_or_else(|_| {
            errs.push("utc_offset_minutes", "choice");
            0
        }),
    };
    if !errs.is_empty() {
        return Err(errs);
    }
    let p = SecurityPolicy {
        password_min_length: nums[0],
        password_history: nums[1],
        password_max_age_days: nums[2],
        password_expiry_warning_days: nums[3],
        lockout_threshold: nums[4],
        lockout_minutes: nums[5],
        idle_timeout_minutes: nums[6],
        absolute_timeout_hours: nums[7],
        ip_allowlist: allowlist,
        utc_offset_minutes,
    };
    p.validate()?;
    Ok(p)
}

pub async fn update_policy(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Form(f): Form<PolicyForm>,
) -> AppResult<Response> {
    let scope = auth.authorize::<ManagePolicy>(&state, &ctx).await?;
    let result = match parse_policy(&f, auth.tenant.policy.utc_offset_minutes) {
        Ok(p) => ops::update_policy(&state, &ctx, &auth, &scope, p).await,
        Err(e) => Err(AppError::Invalid(e)),
    };
    match result {
        Ok(()) => Ok(redirect_see_other("/admin/policy?done=policy_saved")),
        Err(AppError::Invalid(errs)) => {
            let shown = form_values(&f).map(|s| s.chars().take(12).collect::<String>());
            let allowlist: String = f.ip_allowlist.chars().take(5000).collect();
            Ok(render_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &page(
                    &auth,
                    &ctx,
                    shown,
                    allowlist,
                    // (What was posted only when it is an offset offered.)
                    f.utc_offset_minutes
                        .trim()
                        .parse()
                        .ok()
                        .filter(|m| SecurityPolicy::valid_offset(*m))
                        .unwrap_or(auth.tenant.policy.utc_offset_minutes),
                    Errors(errs),
                    None,
                ),
            ))
        }
        Err(e) => Err(e),
    }
}
