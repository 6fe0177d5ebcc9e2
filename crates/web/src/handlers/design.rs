//! The design of a table after it is built: rename and describe the table, rename and reorder
//! its fields, delete fields (design right on the table) and tables (administrators), and the
//! trash from which deleted tables and fields are restored, or purged, within
//! [`TRASH_DAYS`](daicho_domain::table::TRASH_DAYS) days. A deleted field disappears from every
//! page, list, search and export at once; its values stay in its column until it is purged.

use crate::forms::Form;
use askama::Template;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use daicho_domain::access::{Design, TableScope};
use daicho_domain::table::{Name, TRASH_DAYS, TableDef};
use daicho_domain::{AuditAction, FieldErrors, FieldId, ManageDesign, Outcome, TableId};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ctx::{Ctx, EventExt};
use crate::error::{AppError, AppResult};
use crate::handlers::api::ApiBody;
use crate::handlers::tables::design_json;
use crate::middleware::redirect_see_other;
use crate::session::Auth;
use crate::state::AppState;
use crate::tablecap::{OpenTable, seen};
use crate::views::{Errors, Page, render, render_status};

fn field_of(t: &TableDef, key: &str) -> AppResult<FieldId> {
    t.fields.iter().find(|f| f.id.to_string() == key || f.name.as_str() == key).map(|f| f.id).ok_or(AppError::NotFound)
}

/// The design right on an open table, and the table as that right sees it. A field the
/// designer's groups hide is not theirs to see, rename, move, change or delete: it answers 404
/// like a field that does not exist (the store refuses it too).
async fn designing(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    open: &OpenTable,
) -> AppResult<(TableScope<Design>, TableDef)> {
    let scope = auth.table_right::<Design>(state, ctx, open).await?;
    let t = open.seen_by(&scope);
    Ok((scope, t))
}

fn invalid(field: &'static str, code: &'static str) -> AppError {
    AppError::Invalid(FieldErrors::single(field, code))
}

async fn update_table_op(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    open: &OpenTable,
    name: Option<&str>,
    description: Option<&str>,
) -> AppResult<TableDef> {
    let (scope, _) = designing(state, ctx, auth, open).await?;
    let name = name.map(Name::parse).transpose().map_err(|c| invalid("name", c))?;
    if let Some(Err(c)) = description.map(daicho_domain::table::check_description) {
        return Err(invalid("description", c));
    }
    // (Only what changes: the settings form sends both every time.)
    let mut details = Vec::new();
    if let Some(n) = name.as_ref().filter(|n| n.as_str() != open.def.name.as_str()) {
        details.push(format!("name: {} -> {}", open.def.name.as_str(), n.as_str()));
    }
    if description.is_some_and(|d| d != open.def.description) {
        details.push("description changed".to_owned());
    }
    if details.is_empty() {
        details.push("no change".to_owned());
    }
    let ev = ctx
        .event_by(&auth.principal, AuditAction::TableUpdate, Outcome::Success)
        .target(format!("table:{}", open.def.id))
        .details(details.join("; "));
    let t = state.store.update_table(&scope, name, description.map(str::to_owned), ev).await?;
    Ok(seen(&scope, t))
}

async fn rename_field_op(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    open: &OpenTable,
    field: &str,
    name: &str,
) -> AppResult<TableDef> {
    let (scope, t) = designing(state, ctx, auth, open).await?;
    let id = field_of(&t, field)?;
    let name = Name::parse_field(name).map_err(|c| invalid("name", c))?;
    let old = t.fields.iter().find(|f| f.id == id).map(|f| f.name.as_str().to_owned()).unwrap_or_default();
    let ev = ctx
        .event_by(&auth.principal, AuditAction::FieldUpdate, Outcome::Success)
        .target(format!("table:{} field:{id}", open.def.id))
        .details(format!("name: {old} -> {}", name.as_str()));
    let t = state.store.rename_field(&scope, id, name, ev).await?;
    Ok(seen(&scope, t))
}

async fn reorder_op(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    open: &OpenTable,
    order: Vec<FieldId>,
) -> AppResult<TableDef> {
    let (scope, t) = designing(state, ctx, auth, open).await?;
    // The order names the fields the designer sees; hidden ones keep their places.
    let Some(whole) = daicho_store::guard::order_with_hidden(&scope, &open.def, &order) else {
        return Err(invalid("fields", "not_every_field"));
    };
    let names: Vec<&str> =
        order.iter().filter_map(|id| t.fields.iter().find(|f| f.id == *id).map(|f| f.name.as_str())).collect();
    let ev = ctx
        .event_by(&auth.principal, AuditAction::FieldReorder, Outcome::Success)
        .target(format!("table:{}", open.def.id))
        .details(names.join(", "));
    let t = state.store.reorder_fields(&scope, whole, ev).await?;
    Ok(seen(&scope, t))
}

/// The field's rules that still apply to the new kind; the ones that do not are named.
fn carry_rules(
    from: &daicho_domain::table::FieldKind,
    kind: &daicho_domain::table::FieldKind,
    rules: &daicho_domain::table::FieldRules,
    offset: i32,
) -> AppResult<(daicho_domain::table::FieldRules, Vec<&'static str>)> {
    let mut rules = rules.clone();
    // A default keeps its value in the new kind when it has one there (a date's default
    // becomes the start of that day as a date-time, and back).
    if let Some(d) = rules.default.take() {
        rules.default = Some(daicho_domain::table::retyped_text(from, kind, d, offset));
    }
    // A bound or default written with more decimals than the new kind takes keeps its value
    // when that fits ("0.50" for one decimal is 0.5; "3.00" for an integer is 3).
    let fits = |v: &str| match kind {
        daicho_domain::table::FieldKind::Integer => v.trim().parse::<i64>().is_ok(),
        daicho_domain::table::FieldKind::Decimal { scale } => daicho_domain::table::parse_decimal(v, *scale).is_ok(),
        _ => true,
    };
    for v in [&mut rules.min, &mut rules.max, &mut rules.default].into_iter().flatten() {
        let trimmed = daicho_domain::table::trim_decimal_zeros(v);
        if !fits(v) && fits(&trimmed) {
            *v = trimmed;
        }
    }
    let mut dropped = Vec::new();
    for _ in 0..6 {
        let Err(e) = daicho_domain::table::FieldDef::validate(kind, &rules) else { return Ok((rules, dropped)) };
        let mut progressed = false;
        for fe in &e.0 {
            let gone = match fe.field.as_ref() {
                "max_length" => rules.max_length.take().is_some(),
                "min" => rules.min.take().is_some(),
                "max" => rules.max.take().is_some(),
                "default" => rules.default.take().is_some(),
                "unique" => std::mem::take(&mut rules.unique),
                // (A checkbox takes no "required": dropped like the rules other kinds refuse.)
                "required" => std::mem::take(&mut rules.required),
                "rules" => {
                    let any = rules.required || rules.unique || rules.default.is_some();
                    rules.required = false;
                    rules.unique = false;
                    rules.default = None;
                    any
                }
                _ => return Err(AppError::Invalid(e)),
            };
            if gone {
                dropped.push(match fe.field.as_ref() {
                    "max_length" => "max_length",
                    "min" => "min",
                    "max" => "max",
                    "default" => "default",
                    "unique" => "unique",
                    _ => "required",
                });
                progressed = true;
            }
        }
        if !progressed {
            return Err(AppError::Invalid(e));
        }
    }
    Err(invalid("kind", "choice"))
}

/// Changes a field's type and rules: checks (and converts) every value or, if any does not
/// fit, changes nothing and reports which (record, value, why). With `apply` false it only
/// checks. Without `rules`, the field keeps the rules that still apply to the new kind (the
/// others are named); with them, they replace the field's rules.
pub(crate) async fn retype_op(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    open: &OpenTable,
    field: &str,
    kind: daicho_domain::table::FieldKind,
    rules: Option<daicho_domain::table::FieldRules>,
    apply: bool,
    accept_altered: bool,
) -> AppResult<(daicho_store::RetypeReport, Vec<&'static str>)> {
    let (scope, t) = designing(state, ctx, auth, open).await?;
    let id = field_of(&t, field)?;
    let old = t.fields.iter().find(|f| f.id == id).cloned().ok_or(AppError::NotFound)?;
    // Dates and date-times convert in the tenant's time zone, the one its pages show.
    let offset = auth.tenant.policy.utc_offset_minutes;
    // The report shows values: only of a field the designer may see.
    let view = auth.table_right::<daicho_domain::access::View>(state, ctx, open).await?;
    if !view.sees(id) {
        auth.record_refusal(
            state,
            ctx,
            format!("field change of a field view hides: table:{} field:{id}", open.def.id),
        )
        .await?;
        return Err(invalid("field", "unknown_field"));
    }
    // The check reads every record and reports values: only for a designer who may see every
    // record (a row rule on view or design would otherwise let values of other rows through).
    if !view.rows().is_all() || !scope.rows().is_all() {
        auth.record_refusal(state, ctx, format!("field change needs every record: table:{} field:{id}", open.def.id))
            .await?;
        return Err(invalid("kind", "needs_all_records"));
    }
    if !daicho_domain::table::retype_allowed(&old.kind, &kind) {
        return Err(invalid("kind", "not_for_this_type"));
    }
    // A link made to show another field: that field is checked as for a new link (one the
    // designer may see of a table they may view).
    if kind != old.kind {
        crate::handlers::tables::check_link_kind(state, ctx, auth, &kind).await?;
    }
    let (rules, dropped) = match rules {
        Some(rules) => {
            daicho_domain::table::FieldDef::validate(&kind, &rules).map_err(AppError::Invalid)?;
            (rules, Vec::new())
        }
        None => carry_rules(&old.kind, &kind, &old.rules, offset)?,
    };
    let new = daicho_domain::table::FieldDef { kind, rules, ..old.clone() };
    let rules_change = if new.rules == old.rules {
        String::new()
    } else {
        format!("; rules: {} -> {}", rules_text(&old.rules), rules_text(&new.rules))
    };
    let ev = ctx
        .event_by(&auth.principal, AuditAction::FieldRetype, Outcome::Success)
        .target(format!("table:{} field:{id}", open.def.id))
        .details(format!(
            "{}: {} -> {}{rules_change}{}",
            old.name.as_str(),
            old.kind.name(),
            new.kind.name(),
            if dropped.is_empty() { String::new() } else { format!("; rules dropped: {}", dropped.join(", ")) }
        ));
    let report = state.store.retype_field(&scope, &old, new, offset, apply, accept_altered, ev).await?;
    Ok((report, dropped))
}

/// A field's rules in a line, for the operation history: "required, unique, max_length=20, …"
/// or "none".
fn rules_text(r: &daicho_domain::table::FieldRules) -> String {
    let mut parts: Vec<String> = Vec::new();
    if r.required {
        parts.push("required".into());
    }
    if r.unique {
        parts.push("unique".into());
    }
    if let Some(n) = r.max_length {
        parts.push(format!("max_length={n}"));
    }
    if let Some(v) = &r.min {
        parts.push(format!("min={v}"));
    }
    if let Some(v) = &r.max {
        parts.push(format!("max={v}"));
    }
    if let Some(v) = &r.default {
        parts.push(format!("default={v:?}"));
    }
    if parts.is_empty() { "none".into() } else { parts.join(", ") }
}

/// A short digest of a field's kind and rules, for a form to say which settings it showed.
pub(crate) fn field_token(f: &daicho_domain::table::FieldDef) -> String {
    // (A hash defined once for all releases: nodes of two builds in a rolling upgrade, and an
    // API client holding a token across one, agree.)
    let text = format!(
        "{}\n{}",
        serde_json::to_string(&f.kind).unwrap_or_default(),
        serde_json::to_string(&f.rules).unwrap_or_default()
    );
    format!("{:016x}", crate::handlers::tables::fnv1a(text.as_bytes()))
}

/// A field's rules as the settings page shows them, in the reader's language ("必須, 最大値 100").
fn rules_shown(lang: daicho_domain::Lang, r: &daicho_domain::table::FieldRules) -> String {
    let t = |k| crate::i18n::t(lang, k);
    let mut parts: Vec<String> = Vec::new();
    if r.required {
        parts.push(t("rules.required").into());
    }
    if r.unique {
        parts.push(t("rules.unique").into());
    }
    for (key, v) in [
        ("fields.max_length", r.max_length.map(|n| n.to_string())),
        ("fields.min", r.min.clone()),
        ("fields.max", r.max.clone()),
        ("fields.default", r.default.as_ref().map(|d| format!("\u{201C}{d}\u{201D}"))),
    ] {
        if let Some(v) = v {
            parts.push(format!("{} {v}", t(key)));
        }
    }
    if parts.is_empty() { t("retype.no_rules").into() } else { parts.join(", ") }
}

pub(crate) fn report_json(r: &daicho_store::RetypeReport, dropped: &[&'static str]) -> Value {
    json!({
        "applied": r.applied,
        "records": r.records,
        "failed": r.failed,
        "failures": r.failures.iter().map(|(id, v, code)| json!({"record": id, "value": v, "code": code})).collect::<Vec<_>>(),
        "altered": r.altered,
        "alterations": r
            .alterations
            .iter()
            .map(|(id, before, after)| json!({"record": id, "before": before, "after": after}))
            .collect::<Vec<_>>(),
        "rules_dropped": dropped,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetypeBody {
    kind: daicho_domain::table::FieldKind,
    /// The field's new rules; without them, the rules that still apply to the kind are kept.
    #[serde(default)]
    rules: Option<daicho_domain::table::FieldRules>,
    #[serde(default = "yes")]
    apply: bool,
    /// Said when the change loses part of every value (see `retype_loses`), or changes what
    /// some values say (`altered`, "00123" made 123): without it, such a change is refused
    /// (422, the code naming the loss, `values_change` for the second) and a check reports it.
    #[serde(default)]
    accept_loss: bool,
    /// The field's `token` as the caller read it (from the table): when given, a field changed
    /// since (its kind or rules) is refused, 409 `design_changed`, rather than changed back
    /// unseen, as the settings page's form is.
    #[serde(default)]
    was: Option<String>,
}

fn yes() -> bool {
    true
}

pub async fn api_retype(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path((tid, fid)): Path<(String, String)>,
    body: ApiBody,
) -> AppResult<Response> {
    use axum::response::IntoResponse as _;
    let open = auth.open_table(&state, &ctx, &tid).await?;
    designing(&state, &ctx, &auth, &open).await?;
    let b: RetypeBody = body.parse()?;
    let (_, t) = designing(&state, &ctx, &auth, &open).await?;
    let own = field_of(&t, &fid).ok().and_then(|id| t.fields.iter().find(|f| f.id == id));
    if let (Some(was), Some(f)) = (&b.was, own)
        && *was != field_token(f)
    {
        return Err(AppError::Conflict(FieldErrors::single("values", "design_changed")));
    }
    let loses = own.and_then(|own| daicho_domain::table::retype_loses(&own.kind, &b.kind));
    if let Some(code) = loses
        && b.apply
        && !b.accept_loss
    {
        return Err(AppError::Invalid(FieldErrors::single("accept_loss", code)));
    }
    let (report, dropped) =
        retype_op(&state, &ctx, &auth, &open, &fid, b.kind, b.rules, b.apply, b.accept_loss).await?;
    let unaccepted = b.apply && report.failed == 0 && report.altered > 0 && !report.applied;
    let status = if report.failed > 0 || unaccepted { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let mut out = report_json(&report, &dropped);
    out["loses"] = json!(loses);
    if report.failed > 0 {
        // The error object every other refusal has (request id, fields), beside the report.
        out["error"] = json!({
            "code": "values_do_not_convert",
            "message": "Some values do not convert; nothing was changed.",
            "request_id": ctx.request_id,
            "fields": [{"field": fid, "code": "values_do_not_convert"}],
            "detail": null,
        });
    } else if unaccepted {
        out["error"] = json!({
            "code": "values_change",
            "message": "Some values would say something else once converted (listed in alterations); nothing was changed. Send accept_loss to apply the change all the same.",
            "request_id": ctx.request_id,
            "fields": [{"field": "accept_loss", "code": "values_change"}],
            "detail": null,
        });
    } else if report.applied {
        let open = auth.reopen_table(&state, &ctx, &tid).await?;
        out["table"] = design_json(&state, &ctx, &auth, &designing(&state, &ctx, &auth, &open).await?.1).await?;
    }
    Ok((status, Json(out)).into_response())
}

/// The link fields that would break if `field` of `table` (or, without a field, the whole
/// table) went to the trash: those linking to the table and showing the field (or, for the
/// table, every link into it from another table). Named "table › field" where the user may view
/// that table and sees the link field, else without a name (a design must not tell what one
/// may not see).
async fn links_into(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    table: TableId,
    field: Option<FieldId>,
) -> AppResult<FieldErrors> {
    let uses = auth.authorize::<daicho_domain::UseTables>(state, ctx).await?;
    let mut out = FieldErrors::new();
    for t in state.store.list_tables(&uses).await? {
        if field.is_none() && t.id == table {
            continue;
        }
        let linking: Vec<(FieldId, &str)> = t
            .fields
            .iter()
            .filter(|f| match &f.kind {
                daicho_domain::table::FieldKind::Link { table: to, show } => {
                    *to == table && field.is_none_or(|x| x == *show)
                }
                _ => false,
            })
            .map(|f| (f.id, f.name.as_str()))
            .collect();
        if linking.is_empty() {
            continue;
        }
        // Named only where the user may view that table and sees the link field there.
        let seen = match auth.peek_table(state, ctx, &t.id.to_string()).await {
            Ok(open) => match auth.principal.authorize_table::<daicho_domain::access::View>(&open.access) {
                Ok(view) => open.seen_by(&view).fields.iter().map(|f| f.id).collect(),
                Err(_) => Vec::new(),
            },
            Err(_) => Vec::new(),
        };
        let code = if field.is_some() { "shown_by_link" } else { "linked_to" };
        for (id, name) in linking {
            let label =
                if seen.contains(&id) { format!("link:{} › {name}", t.name.as_str()) } else { "link:".to_owned() };
            out.push_owned(label, code);
        }
    }
    Ok(out)
}

async fn delete_field_op(state: &AppState, ctx: &Ctx, auth: &Auth, open: &OpenTable, field: &str) -> AppResult<()> {
    let (scope, t) = designing(state, ctx, auth, open).await?;
    let id = field_of(&t, field)?;
    // A field a link shows cannot go: the link would show nothing, and could not be pointed at
    // another field. The link is deleted or changed first.
    let links = links_into(state, ctx, auth, open.def.id, Some(id)).await?;
    if !links.is_empty() {
        return Err(AppError::Conflict(links));
    }
    let name = t.fields.iter().find(|f| f.id == id).map(|f| f.name.as_str().to_owned()).unwrap_or_default();
    let ev = ctx
        .event_by(&auth.principal, AuditAction::FieldDelete, Outcome::Success)
        .target(format!("table:{} field:{id}", open.def.id))
        .details(format!("{name} (to the trash for {TRASH_DAYS} days)"));
    let trashed = state.store.trash_field(&scope, id, ev).await;
    named_as_seen(state, ctx, auth, open.def.id, Some(id), trashed).await
}

/// A refusal of the store's own link check (a link made after the check above, inside the
/// trash's transaction), named as `links_into` names links: only those the user may see.
async fn named_as_seen(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    table: TableId,
    field: Option<FieldId>,
    result: daicho_store::StoreResult<()>,
) -> AppResult<()> {
    match result {
        Err(daicho_store::StoreError::Conflict(e)) if e.0.iter().any(|x| x.field.starts_with("link:")) => {
            let seen = links_into(state, ctx, auth, table, field).await?;
            if !seen.is_empty() {
                return Err(AppError::Conflict(seen));
            }
            let mut unnamed = FieldErrors::new();
            for x in &e.0 {
                unnamed.push("link:", x.code);
            }
            Err(AppError::Conflict(unnamed))
        }
        r => Ok(r?),
    }
}

async fn delete_table_op(state: &AppState, ctx: &Ctx, auth: &Auth, open: &OpenTable) -> AppResult<()> {
    let scope = auth.authorize::<ManageDesign>(state, ctx).await?;
    // Nor can a table that other tables link to (their links would point at nothing).
    let links = links_into(state, ctx, auth, open.def.id, None).await?;
    if !links.is_empty() {
        return Err(AppError::Conflict(links));
    }
    let ev = ctx
        .event_by(&auth.principal, AuditAction::TableDelete, Outcome::Success)
        .target(format!("table:{}", open.def.id))
        .details(format!("{} (to the trash for {TRASH_DAYS} days)", open.def.name.as_str()));
    let trashed = state.store.trash_table(&scope, open.def.id, ev).await;
    named_as_seen(state, ctx, auth, open.def.id, None, trashed).await
}

/// A trash entry named by its table id and, for a field, its field id.
fn trash_target(table: &str, field: Option<&str>) -> AppResult<(TableId, Option<FieldId>)> {
    let t = table.parse::<TableId>().map_err(|_| AppError::NotFound)?;
    let f =
        field.filter(|f| !f.is_empty()).map(|f| f.parse::<FieldId>().map_err(|_| AppError::NotFound)).transpose()?;
    Ok((t, f))
}

/// The links of what was just restored (table `t`, or its field `f`) whose target is no longer
/// there: a table or shown field deleted while they were in the trash (deleting them was not
/// refused then, as the link was not live). Named "table › field".
async fn broken_links(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    t: TableId,
    f: Option<FieldId>,
) -> AppResult<Vec<String>> {
    let uses = auth.authorize::<daicho_domain::UseTables>(state, ctx).await?;
    let live = state.store.list_tables(&uses).await?;
    let Some(restored) = live.iter().find(|x| x.id == t) else { return Ok(Vec::new()) };
    Ok(restored
        .fields
        .iter()
        .filter(|d| f.is_none_or(|f| f == d.id))
        .filter(|d| match &d.kind {
            daicho_domain::table::FieldKind::Link { table, show } => {
                !live.iter().any(|x| x.id == *table && x.fields.iter().any(|s| s.id == *show))
            }
            _ => false,
        })
        .map(|d| format!("{} › {}", restored.name.as_str(), d.name.as_str()))
        .collect())
}

/// Restores a table or field from the trash; answers the links in it that now point at nothing
/// (see `broken_links`), to be said to the user.
async fn restore_op(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    table: &str,
    field: Option<&str>,
) -> AppResult<Vec<String>> {
    let scope = auth.authorize::<ManageDesign>(state, ctx).await?;
    let (t, f) = trash_target(table, field)?;
    let (action, target) = match f {
        Some(f) => (AuditAction::FieldRestore, format!("table:{t} field:{f}")),
        None => (AuditAction::TableRestore, format!("table:{t}")),
    };
    let ev = ctx
        .event_by(&auth.principal, action, Outcome::Success)
        .target(target)
        .details(trashed_name(state, &scope, t, f).await?);
    match state.store.restore(&scope, t, f, ev).await {
        // Its name was given to another table or field meanwhile: the trash page says which
        // to rename (the name alone would read as if the restore itself were misnamed).
        Err(daicho_store::StoreError::Conflict(e)) if e.code_for("name") == Some("taken") => {
            let code = if f.is_some() { "restore_field_name_taken" } else { "restore_table_name_taken" };
            Err(AppError::Conflict(FieldErrors::single("name", code)))
        }
        Err(e) => Err(e.into()),
        Ok(()) => broken_links(state, ctx, auth, t, f).await,
    }
}

/// The name of a trash entry (the table's, or "table › field"), for the operation history: once
/// an entry is purged its catalogue row is gone, and the event is all that says what it was.
async fn trashed_name(
    state: &AppState,
    scope: &daicho_domain::Scope<ManageDesign>,
    t: TableId,
    f: Option<FieldId>,
) -> AppResult<String> {
    let items = state.store.list_trash(scope).await?;
    let item = items.iter().find(|i| i.table == t && i.field.as_ref().map(|(id, _)| *id) == f);
    Ok(match item {
        Some(i) => match &i.field {
            Some((_, name)) => format!("{} › {name}", i.table_name),
            None => i.table_name.clone(),
        },
        None => String::new(),
    })
}

async fn purge_op(state: &AppState, ctx: &Ctx, auth: &Auth, table: &str, field: Option<&str>) -> AppResult<()> {
    let scope = auth.authorize::<ManageDesign>(state, ctx).await?;
    let (t, f) = trash_target(table, field)?;
    let (action, target) = match f {
        Some(f) => (AuditAction::FieldPurge, format!("table:{t} field:{f}")),
        None => (AuditAction::TablePurge, format!("table:{t}")),
    };
    let name = trashed_name(state, &scope, t, f).await?;
    let ev = ctx
        .event_by(&auth.principal, action, Outcome::Success)
        .target(target)
        .details(format!("{name} (deleted for good)"));
    Ok(state.store.purge(&scope, t, f, ev).await?)
}

fn trash_json(items: &[daicho_store::TrashItem]) -> Value {
    let fmt = |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    json!({
        "days": TRASH_DAYS,
        "items": items.iter().map(|i| json!({
            "table": i.table,
            "table_name": i.table_name,
            "field": i.field.as_ref().map(|(id, _)| id),
            "field_name": i.field.as_ref().map(|(_, n)| n),
            "deleted_at": fmt(i.deleted_at),
            "deleted_by": i.deleted_by,
            "purge_after": fmt(i.deleted_at + time::Duration::days(TRASH_DAYS)),
        })).collect::<Vec<_>>(),
    })
}

// --- JSON API ---

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TableUpdateBody {
    name: Option<String>,
    description: Option<String>,
}

pub async fn api_update_table(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(tid): Path<String>,
    body: ApiBody,
) -> AppResult<Json<Value>> {
    let open = auth.open_table(&state, &ctx, &tid).await?;
    designing(&state, &ctx, &auth, &open).await?;
    let b: TableUpdateBody = body.parse()?;
    let t = update_table_op(&state, &ctx, &auth, &open, b.name.as_deref(), b.description.as_deref()).await?;
    Ok(Json(json!({"table": design_json(&state, &ctx, &auth, &t).await?})))
}

pub async fn api_delete_table(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(tid): Path<String>,
) -> AppResult<StatusCode> {
    let open = auth.open_table(&state, &ctx, &tid).await?;
    delete_table_op(&state, &ctx, &auth, &open).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldUpdateBody {
    name: String,
}

pub async fn api_update_field(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path((tid, fid)): Path<(String, String)>,
    body: ApiBody,
) -> AppResult<Json<Value>> {
    let open = auth.open_table(&state, &ctx, &tid).await?;
    designing(&state, &ctx, &auth, &open).await?;
    let b: FieldUpdateBody = body.parse()?;
    let t = rename_field_op(&state, &ctx, &auth, &open, &fid, &b.name).await?;
    Ok(Json(json!({"table": design_json(&state, &ctx, &auth, &t).await?})))
}

pub async fn api_delete_field(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path((tid, fid)): Path<(String, String)>,
) -> AppResult<StatusCode> {
    let open = auth.open_table(&state, &ctx, &tid).await?;
    delete_field_op(&state, &ctx, &auth, &open, &fid).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderBody {
    fields: Vec<String>,
}

pub async fn api_reorder(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(tid): Path<String>,
    body: ApiBody,
) -> AppResult<Json<Value>> {
    let open = auth.open_table(&state, &ctx, &tid).await?;
    // The right first: the names are looked up among the fields the designer sees, so that
    // nobody learns from the answer whether a hidden field of that name exists.
    let (_, t) = designing(&state, &ctx, &auth, &open).await?;
    let b: OrderBody = body.parse()?;
    let mut order = Vec::new();
    for f in &b.fields {
        order.push(field_of(&t, f).map_err(|_| invalid("fields", "unknown_field"))?);
    }
    let t = reorder_op(&state, &ctx, &auth, &open, order).await?;
    Ok(Json(json!({"table": design_json(&state, &ctx, &auth, &t).await?})))
}

pub async fn api_trash(State(state): State<AppState>, ctx: Ctx, auth: Auth) -> AppResult<Json<Value>> {
    let scope = auth.authorize::<ManageDesign>(&state, &ctx).await?;
    Ok(Json(trash_json(&state.store.list_trash(&scope).await?)))
}

/// 204, or 200 naming the restored links that point at nothing (`broken_links`).
fn restored(broken: Vec<String>) -> Response {
    use axum::response::IntoResponse as _;
    if broken.is_empty() {
        StatusCode::NO_CONTENT.into_response()
    } else {
        (StatusCode::OK, Json(json!({"broken_links": broken}))).into_response()
    }
}

pub async fn api_restore_table(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(tid): Path<String>,
) -> AppResult<Response> {
    Ok(restored(restore_op(&state, &ctx, &auth, &tid, None).await?))
}

pub async fn api_restore_field(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path((tid, fid)): Path<(String, String)>,
) -> AppResult<Response> {
    Ok(restored(restore_op(&state, &ctx, &auth, &tid, Some(&fid)).await?))
}

pub async fn api_purge_table(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(tid): Path<String>,
) -> AppResult<StatusCode> {
    purge_op(&state, &ctx, &auth, &tid, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn api_purge_field(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path((tid, fid)): Path<(String, String)>,
) -> AppResult<StatusCode> {
    purge_op(&state, &ctx, &auth, &tid, Some(&fid)).await?;
    Ok(StatusCode::NO_CONTENT)
}

// --- pages ---

pub struct FieldRow {
    pub id: String,
    pub name: String,
    pub kind: &'static str,
    /// For a link: the table it points to and the field it shows ("顧客 · 会社名").
    pub target: Option<String>,
    pub required: bool,
    pub unique: bool,
    pub first: bool,
    pub last: bool,
}

/// For each link field of `t`, the table it points to and the field it shows, as the designer
/// may see them ("顧客 · 会社名"; a table they may not view, or one gone, is not named).
async fn link_targets(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    t: &TableDef,
) -> std::collections::HashMap<FieldId, String> {
    let mut out = std::collections::HashMap::new();
    for f in &t.fields {
        let daicho_domain::table::FieldKind::Link { table, show } = &f.kind else { continue };
        let Ok(target) = auth.peek_table(state, ctx, &table.to_string()).await else { continue };
        let Ok(view) = auth.principal.authorize_table::<daicho_domain::access::View>(&target.access) else { continue };
        let seen = target.seen_by(&view);
        let shown = seen.fields.iter().find(|d| d.id == *show).map(|d| format!(" · {}", d.name.as_str()));
        out.insert(f.id, format!("{}{}", seen.name.as_str(), shown.unwrap_or_default()));
    }
    out
}

#[derive(Template)]
#[template(path = "tables/design.html")]
struct DesignPage {
    p: Page,
    id: String,
    name: String,
    description: String,
    fields: Vec<FieldRow>,
    errors: Errors,
    can_delete_table: bool,
    trash_days: i64,
}

impl DesignPage {
    /// Whether field `id`'s delete was asked for without its box ticked (its row says so).
    fn unconfirmed(&self, id: &str) -> bool {
        self.errors.0.0.iter().any(|e| e.code == "confirm_required" && e.field.strip_prefix("confirm_") == Some(id))
    }
}

fn design_page(
    auth: &Auth,
    ctx: &Ctx,
    t: &TableDef,
    errors: Errors,
    done: Option<&str>,
    targets: &std::collections::HashMap<FieldId, String>,
) -> DesignPage {
    let n = t.fields.len();
    DesignPage {
        p: Page::for_user(auth, "design.title", "tables", &ctx.request_id).with_flash(ctx, done).about(t.name.as_str()),
        id: t.id.to_string(),
        name: t.name.as_str().to_owned(),
        description: t.description.clone(),
        fields: t
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| FieldRow {
                id: f.id.to_string(),
                name: f.name.as_str().to_owned(),
                kind: crate::handlers::table_pages::kind_label(&f.kind),
                target: targets.get(&f.id).cloned(),
                required: f.rules.required,
                unique: f.rules.unique,
                first: i == 0,
                last: i + 1 == n,
            })
            .collect(),
        errors,
        can_delete_table: auth.principal.authorize::<ManageDesign>().is_ok(),
        trash_days: TRASH_DAYS,
    }
}

pub async fn page(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(tid): Path<String>,
    axum::extract::Query(pairs): axum::extract::Query<Vec<(String, String)>>,
) -> AppResult<Response> {
    let open = auth.open_table(&state, &ctx, &tid).await?;
    let (_, t) = designing(&state, &ctx, &auth, &open).await?;
    let done = pairs.iter().find(|(k, _)| k == "done").map(|(_, v)| v.as_str());
    let targets = link_targets(&state, &ctx, &auth, &t).await;
    Ok(render(&design_page(&auth, &ctx, &t, Errors::default(), done, &targets)))
}

/// One form for every design action: `action` = settings (name, description), rename (field,
/// name), up / down (field), delete_field (field, confirm), delete_table (confirm).
pub async fn submit(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(tid): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let open = auth.open_table(&state, &ctx, &tid).await?;
    let (_, seen_def) = designing(&state, &ctx, &auth, &open).await?;
    let get = |k: &str| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str()).unwrap_or("");
    let back = |done: &str| redirect_see_other(&format!("/tables/{}/design?done={done}", open.def.id));
    let confirmed = get("confirm") == "yes";
    let result = match get("action") {
        "settings" => update_table_op(&state, &ctx, &auth, &open, Some(get("name")), Some(get("description")))
            .await
            .map(|_| "saved"),
        "rename" => {
            let field = get("field");
            let name = pairs.iter().find(|(k, _)| *k == format!("name_{field}")).map(|(_, v)| v.as_str()).unwrap_or("");
            // A field's name is not the table's: its errors are not shown beside the table's name.
            rename_field_op(&state, &ctx, &auth, &open, field, name).await.map(|_| "field_renamed").map_err(|e| match e
            {
                AppError::Invalid(mut f) | AppError::Conflict(mut f) => {
                    for fe in f.0.iter_mut().filter(|fe| fe.field == "name") {
                        fe.field = "field_name".into();
                    }
                    AppError::Invalid(f)
                }
                other => other,
            })
        }
        dir @ ("up" | "down") => {
            let mut order: Vec<FieldId> = seen_def.fields.iter().map(|f| f.id).collect();
            let at = order.iter().position(|f| f.to_string() == get("field")).ok_or(AppError::NotFound)?;
            let to = if dir == "up" { at.checked_sub(1) } else { Some(at + 1).filter(|t| *t < order.len()) };
            match to {
                Some(to) => {
                    order.swap(at, to);
                    reorder_op(&state, &ctx, &auth, &open, order).await.map(|_| "fields_reordered")
                }
                None => Ok("fields_reordered"),
            }
        }
        // (Named by the field, so that its row says which box to tick.)
        "delete_field" if !confirmed => {
            let mut e = FieldErrors::new();
            e.push_owned(format!("confirm_{}", get("field").chars().take(40).collect::<String>()), "confirm_required");
            Err(AppError::Invalid(e))
        }
        "delete_field" => delete_field_op(&state, &ctx, &auth, &open, get("field")).await.map(|_| "field_deleted"),
        "delete_table" if !confirmed => Err(invalid("confirm", "confirm_required")),
        // (Refused while links point into it: said on the design page, as other refusals are.)
        "delete_table" => match delete_table_op(&state, &ctx, &auth, &open).await {
            Ok(()) => return Ok(redirect_see_other("/tables?done=table_deleted")),
            Err(e) => Err(e),
        },
        _ => Err(AppError::BadRequest("bad_action")),
    };
    match result {
        Ok(done) => Ok(back(done)),
        Err(AppError::Invalid(e) | AppError::Conflict(e)) => {
            let open = auth.open_table(&state, &ctx, &tid).await?;
            let (_, t) = designing(&state, &ctx, &auth, &open).await?;
            let targets = link_targets(&state, &ctx, &auth, &t).await;
            let page = design_page(&auth, &ctx, &t, Errors(e), None, &targets);
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(e) => Err(e),
    }
}

pub struct TrashRow {
    pub table: String,
    pub table_name: String,
    pub field: String,
    pub field_name: String,
    pub deleted_at: String,
    pub deleted_by: String,
    pub purge_after: String,
}

#[derive(Template)]
#[template(path = "tables/trash.html")]
struct TrashPage {
    p: Page,
    rows: Vec<TrashRow>,
    trash_days: i64,
    errors: Errors,
}

async fn trash_page_for(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    errors: Errors,
    done: Option<&str>,
) -> AppResult<TrashPage> {
    let scope = auth.authorize::<ManageDesign>(state, ctx).await?;
    let items = state.store.list_trash(&scope).await?;
    let uses = auth.authorize::<daicho_domain::UseTables>(state, ctx).await?;
    let people = state.store.directory(&uses).await?;
    let who = |id: &str| {
        people.iter().find(|p| p.id.to_string() == id).map(daicho_store::Person::label).unwrap_or_else(|| id.to_owned())
    };
    let fmt = |t| crate::views::fmt_time(t, auth.tenant.policy.utc_offset_minutes);
    Ok(TrashPage {
        p: Page::for_user(auth, "trash.title", "tables", &ctx.request_id).with_flash(ctx, done),
        rows: items
            .iter()
            .map(|i| TrashRow {
                table: i.table.to_string(),
                table_name: i.table_name.clone(),
                field: i.field.as_ref().map(|(f, _)| f.to_string()).unwrap_or_default(),
                field_name: i.field.as_ref().map(|(_, n)| n.clone()).unwrap_or_default(),
                deleted_at: fmt(i.deleted_at),
                deleted_by: who(&i.deleted_by),
                purge_after: fmt(i.deleted_at + time::Duration::days(TRASH_DAYS)),
            })
            .collect(),
        trash_days: TRASH_DAYS,
        errors,
    })
}

pub async fn trash_page(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    axum::extract::Query(pairs): axum::extract::Query<Vec<(String, String)>>,
) -> AppResult<Response> {
    let done = pairs.iter().find(|(k, _)| k == "done").map(|(_, v)| v.as_str());
    Ok(render(&trash_page_for(&state, &ctx, &auth, Errors::default(), done).await?))
}

/// `action` = restore or purge (with `confirm=yes`), for `table` and optionally `field`.
pub async fn trash_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Form(pairs): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let _scope = auth.authorize::<ManageDesign>(&state, &ctx).await?;
    let get = |k: &str| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str()).unwrap_or("");
    let field = Some(get("field")).filter(|f| !f.is_empty());
    let result = match get("action") {
        "restore" => restore_op(&state, &ctx, &auth, get("table"), field)
            .await
            .map(|broken| if broken.is_empty() { "restored" } else { "restored_broken_link" }),
        "purge" if get("confirm") != "yes" => Err(invalid("confirm", "confirm_required")),
        "purge" => purge_op(&state, &ctx, &auth, get("table"), field).await.map(|_| "purged"),
        _ => Err(AppError::BadRequest("bad_action")),
    };
    match result {
        Ok(done) => Ok(redirect_see_other(&format!("/tables/trash?done={done}"))),
        Err(AppError::Invalid(e) | AppError::Conflict(e)) => {
            let page = trash_page_for(&state, &ctx, &auth, Errors(e), None).await?;
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(e) => Err(e),
    }
}

// --- the change-of-type page ---

/// A value that does not convert: record id, the value as it was, why.
type Failure = (i64, String, &'static str);

#[derive(Template)]
#[template(path = "tables/retype.html")]
struct RetypePage {
    p: Page,
    /// The field's kind and rules as the page first showed them (`field_token`), sent back.
    was: String,
    id: String,
    table_name: String,
    field_id: String,
    field_name: String,
    current: &'static str,
    /// For a link: the table it points to and the field it shows (`link_targets`).
    target: Option<String>,
    kinds: Vec<(&'static str, &'static str)>,
    kind: String,
    choices: String,
    scale: String,
    /// The current rules in a line (for "Now: …").
    current_rules: String,
    required: bool,
    unique: bool,
    max_length: String,
    min: String,
    max: String,
    default: String,
    errors: Errors,
    /// After a check or a refused change: records read, values that do not convert, and the
    /// first of them (record, value, reason).
    report: Option<(u64, u64, Vec<Failure>)>,
    dropped: Vec<&'static str>,
    checked_ok: bool,
    /// What the change checked loses of every value (`retype_loses`): said, and applied only
    /// with the box that accepts it ticked.
    loses: Option<&'static str>,
    /// Values that would read differently once converted, and the first of them (record,
    /// before, after): applied only with the box that accepts them ticked.
    altered: u64,
    alterations: Vec<(i64, String, String)>,
}

fn retype_page(
    auth: &Auth,
    ctx: &Ctx,
    t: &TableDef,
    fid: FieldId,
    form: &[(String, String)],
    errors: Errors,
) -> AppResult<RetypePage> {
    let f = t.fields.iter().find(|f| f.id == fid).ok_or(AppError::NotFound)?;
    let get = |k: &str| form.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    // After a submission the form shows what was submitted (an unticked box is absent).
    let submitted = !form.is_empty();
    let ticked = |k: &str, now: bool| if submitted { get(k).is_some() } else { now };
    let choices = match &f.kind {
        daicho_domain::table::FieldKind::Choice { choices }
        | daicho_domain::table::FieldKind::MultiChoice { choices } => choices.join("\n"),
        _ => String::new(),
    };
    let scale = match &f.kind {
        daicho_domain::table::FieldKind::Decimal { scale } => scale.to_string(),
        _ => "0".into(),
    };
    let r = &f.rules;
    let text = |k: &str, now: Option<String>| get(k).unwrap_or_else(|| now.unwrap_or_default());
    Ok(RetypePage {
        p: Page::for_user(auth, "retype.title", "tables", &ctx.request_id).about(&format!(
            "{} › {}",
            t.name.as_str(),
            f.name.as_str()
        )),
        id: t.id.to_string(),
        table_name: t.name.as_str().to_owned(),
        field_id: f.id.to_string(),
        field_name: f.name.as_str().to_owned(),
        current: crate::handlers::table_pages::kind_label(&f.kind),
        target: None,
        kinds: {
            // (A user field becomes nothing else: see `retype_allowed`.)
            let mut kinds = if matches!(f.kind, daicho_domain::table::FieldKind::User) {
                Vec::new()
            } else {
                crate::handlers::table_pages::retype_kinds()
            };
            if !crate::handlers::table_pages::offered_kind(f.kind.name()) {
                kinds.insert(0, (f.kind.name(), crate::handlers::table_pages::kind_label(&f.kind)));
            }
            kinds
        },
        kind: get("kind").unwrap_or_else(|| f.kind.name().to_owned()),
        choices: get("choices").unwrap_or(choices),
        scale: get("scale").unwrap_or(scale),
        current_rules: rules_shown(auth.lang, r),
        required: ticked("required", r.required),
        unique: ticked("unique", r.unique),
        max_length: text("max_length", r.max_length.map(|n| n.to_string())),
        min: text("min", r.min.clone()),
        max: text("max", r.max.clone()),
        default: text(
            "default",
            crate::handlers::table_pages::shown_default(
                &f.kind,
                r.default.clone(),
                auth.tenant.policy.utc_offset_minutes,
            ),
        ),
        errors,
        report: None,
        loses: None,
        altered: 0,
        alterations: Vec::new(),
        dropped: Vec::new(),
        checked_ok: false,
        // Kept from the first showing through "check only", so that a change made meanwhile
        // by someone else is noticed when the settings are saved.
        was: get("was").filter(|w| !w.is_empty()).unwrap_or_else(|| field_token(f)),
    })
}

pub async fn retype_form(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path((tid, fid)): Path<(String, String)>,
) -> AppResult<Response> {
    let open = auth.open_table(&state, &ctx, &tid).await?;
    let (_, t) = designing(&state, &ctx, &auth, &open).await?;
    let id = field_of(&t, &fid)?;
    let mut page = retype_page(&auth, &ctx, &t, id, &[], Errors::default())?;
    page.target = link_targets(&state, &ctx, &auth, &t).await.remove(&id);
    Ok(render(&page))
}

/// `action` = check (report only) or apply; `kind`, and `choices` / `scale` where the kind
/// needs them; the rules (`required`, `unique`, `max_length`, `min`, `max`, `default`).
pub async fn retype_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path((tid, fid)): Path<(String, String)>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let open = auth.open_table(&state, &ctx, &tid).await?;
    let (_, t) = designing(&state, &ctx, &auth, &open).await?;
    let id = field_of(&t, &fid)?;
    let get = |k: &str| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str()).unwrap_or("");
    let ticked = |k: &str| pairs.iter().any(|(key, _)| key == k);
    let mut apply = get("action") == "apply";
    // The field's own kind may be one the form does not offer (a link or a user field, whose
    // rules are changed here): then it stays as it is.
    let own = t.fields.iter().find(|f| f.id == id).map(|f| f.kind.clone()).ok_or(AppError::NotFound)?;
    let kind = if get("kind") == own.name() && !crate::handlers::table_pages::offered_kind(own.name()) {
        Ok(own)
    } else {
        crate::handlers::table_pages::kind_from_form(get("kind"), get("choices"), get("scale"))
    };
    let rules = crate::handlers::table_pages::rules_from_form(
        ticked("required"),
        ticked("unique"),
        get("max_length"),
        get("min"),
        get("max"),
        get("default"),
    )
    .map(|r| match &kind {
        Ok(k) => crate::handlers::table_pages::local_default(k, r, auth.tenant.policy.utc_offset_minutes),
        Err(_) => r,
    });
    // A change that loses part of every value is applied only once that is accepted: until
    // then it is checked, and the page says what it loses.
    let loses = kind.as_ref().ok().and_then(|k| {
        t.fields.iter().find(|f| f.id == id).and_then(|f| daicho_domain::table::retype_loses(&f.kind, k))
    });
    if loses.is_some() && !ticked("accept_loss") {
        apply = false;
    }
    // The form holds the rules as they were shown: if someone changed the field since, saving
    // them would undo that change unseen.
    let seen = t.fields.iter().find(|f| f.id == id).map(field_token).unwrap_or_default();
    let result = match (kind, rules) {
        _ if !get("was").is_empty() && get("was") != seen => {
            Err(AppError::Conflict(FieldErrors::single("values", "design_changed")))
        }
        (Ok(k), Ok(r)) => {
            retype_op(&state, &ctx, &auth, &open, &id.to_string(), k, Some(r), apply, ticked("accept_loss")).await
        }
        (Err(e), _) | (_, Err(e)) => Err(AppError::Invalid(e)),
    };
    match result {
        Ok((r, _)) if r.applied => {
            Ok(redirect_see_other(&format!("/tables/{}/design?done=field_retyped", open.def.id)))
        }
        Ok((r, dropped)) => {
            let mut page = retype_page(&auth, &ctx, &t, id, &pairs, Errors::default())?;
            page.target = link_targets(&state, &ctx, &auth, &t).await.remove(&id);
            page.checked_ok = r.failed == 0;
            page.loses = loses;
            // (Asked to apply, and not applied for values it would change: refused until accepted.)
            let unaccepted = apply && r.failed == 0 && r.altered > 0;
            page.altered = r.altered;
            page.alterations = r.alterations;
            page.report = Some((r.records, r.failed, r.failures));
            page.dropped = dropped;
            let status = if page.checked_ok && !unaccepted { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
            Ok(render_status(status, &page))
        }
        Err(AppError::Invalid(e) | AppError::Conflict(e)) => {
            // Changed meanwhile: the page shows the field as it is now (and says why).
            let shown: &[(String, String)] = if e.code_for("values") == Some("design_changed") { &[] } else { &pairs };
            let mut page = retype_page(&auth, &ctx, &t, id, shown, Errors(e))?;
            page.target = link_targets(&state, &ctx, &auth, &t).await.remove(&id);
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(e) => Err(e),
    }
}
