//! Saved views: a name for what the grid shows (keyword, filters, sort keys, columns), personal
//! or shared. Anyone who may view a table keeps personal views of it; sharing a view with
//! everyone who may view the table needs the design right. A view is only a query: the grid,
//! the API (`?view=`) and the export run it under the reader's own rights. A shared view that
//! uses a field the reader may not see is not offered to them at all (the store leaves it out:
//! not listed, 404 when asked for), so neither that field nor its filter values reach them.

use crate::forms::Form;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use daicho_domain::access::{Design, View};
use daicho_domain::table::{FieldKind, Name, TableDef};
use daicho_domain::view::{FilterSpec, SavedView, SortSpec, ViewSpec};
use daicho_domain::{AuditAction, FieldErrors, FieldId, Outcome, TableScope, ViewId};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ctx::{Ctx, EventExt};
use crate::error::{AppError, AppResult};
use crate::handlers::api::ApiBody;
use crate::handlers::tables::record_query;
use crate::middleware::redirect_see_other;
use crate::session::Auth;
use crate::state::AppState;
use crate::tablecap::OpenTable;

/// Query keys a request may add to a saved view (`?view=…&after=…`); anything else that shapes
/// the list would silently change the view, so it is refused.
const WITH_VIEW: &[&str] = &["view", "after", "back", "limit", "encoding", "done", "count"];

/// The list parameters to run: the saved view's, when `view` names one the reader may use
/// (404 otherwise), followed by the paging keys given with it; else the parameters as given.
pub(crate) async fn resolve(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    scope: &TableScope<View>,
    open: &OpenTable,
    pairs: &[(String, String)],
) -> AppResult<(Vec<(String, String)>, Option<SavedView>)> {
    let Some((_, vid)) = pairs.iter().find(|(k, v)| k == "view" && !v.is_empty()) else {
        return Ok((pairs.to_vec(), None));
    };
    if let Some((k, _)) = pairs.iter().find(|(k, _)| !WITH_VIEW.contains(&k.as_str())) {
        let mut e = FieldErrors::new();
        e.push_owned(k.chars().take(100).collect(), "not_with_view");
        return Err(AppError::Invalid(e));
    }
    let found = match vid.parse::<ViewId>() {
        Ok(id) => offered(state, ctx, auth, scope, open).await?.into_iter().find(|v| v.id == id),
        Err(_) => None,
    };
    // A view one may not use (another's own, one using a field hidden from one) and one that
    // does not exist are the same 404, and both are recorded: guessing view ids shows in the
    // operation history as guessing record numbers does.
    let Some(view) = found else {
        auth.record_refusal(state, ctx, not_offered(vid, scope.table())).await?;
        return Err(AppError::NotFound);
    };
    // A filter on a field deleted since cannot run, nor be left out (the view would show more
    // than it says): the view is out of date, and said so.
    // So is one whose filter no longer fits its field, whose type or choices changed since
    // ("at least 10" on a field made text, "equals 東京" once that choice went): refused as
    // out of date, with the way to delete it, rather than as a mistake in the reader's query.
    let offset = auth.tenant.policy.utc_offset_minutes;
    if view.spec.filters.iter().any(|f| !is_live(&open.def, f.field) || !still_fits(&open.def, f, offset)) {
        return Err(AppError::Invalid(FieldErrors::single("view", "view_outdated")));
    }
    let mut out = view.spec.to_pairs();
    out.extend(pairs.iter().filter(|(k, _)| k != "view").cloned());
    Ok((out, Some(view)))
}

/// Whether a saved filter still reads as its field now takes filters. A date-time's value is
/// read as the query reads it (in the tenant's time, `offset` minutes from UTC); of fields
/// whose filter values are looked up before (a link's record text, a user's login ID or name)
/// only the operator is judged here, their values when the query is read, as typed ones are.
fn still_fits(def: &TableDef, f: &daicho_domain::view::FilterSpec, offset: i32) -> bool {
    use daicho_domain::table::FieldKind;
    match def.fields.iter().find(|d| d.id == f.field) {
        Some(d) if matches!(d.kind, FieldKind::Link { .. } | FieldKind::User) => {
            d.filter_ops().contains(&f.op.as_str())
        }
        Some(d) if matches!(d.kind, FieldKind::DateTime) => {
            let value = daicho_domain::table::local_datetime(&f.value, offset).unwrap_or_else(|| f.value.clone());
            d.filter(&f.op, &value).is_ok()
        }
        Some(d) => d.filter(&f.op, &f.value).is_ok(),
        None => true,
    }
}

/// Whether a field is one of the table's now (or a system field): not deleted, nor purged.
fn is_live(def: &TableDef, f: FieldId) -> bool {
    def.fields.iter().any(|d| d.id == f) || daicho_domain::table::system_column(f).is_some()
}

/// The saved views offered to the reader of `open` (the store's, `guard::offered_views`),
/// further narrowed here, where the other tables and the live design are known:
/// - sort keys and columns on a field no longer in the table (deleted, purged) are left out,
///   as those on a hidden field are (the view used to fail whole for a column it named);
/// - a shared view someone else saved whose filter names a linked record by the text it shows
///   is offered only to a reader who may read that text (may view the link's table and sees
///   its shown field): the text is a value of that other table, which the list of views would
///   otherwise show to anyone who may view this one.
pub(crate) async fn offered(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    scope: &TableScope<View>,
    open: &OpenTable,
) -> AppResult<Vec<SavedView>> {
    let mut views = state.store.list_views(scope).await?;
    for v in &mut views {
        v.spec.sort.retain(|s| is_live(&open.def, s.field));
        v.spec.columns.retain(|c| is_live(&open.def, *c));
    }
    let mut out = Vec::with_capacity(views.len());
    for v in views {
        if v.owner.is_none() && v.created_by != scope.actor() {
            let mut readable = true;
            for f in &v.spec.filters {
                let Some(def) = open.def.fields.iter().find(|d| d.id == f.field) else { continue };
                if matches!(def.kind, FieldKind::Link { .. })
                    && crate::handlers::tables::names_link_by_text(&f.value)
                    && !crate::handlers::tables::reads_link_text(state, ctx, auth, def).await
                {
                    readable = false;
                    break;
                }
            }
            if !readable {
                continue;
            }
        }
        out.push(v);
    }
    Ok(out)
}

/// What a refusal of a view id records (the id as given, cut short: it comes from the address).
fn not_offered(vid: &str, table: daicho_domain::TableId) -> String {
    let shown = crate::ctx::shown_id(vid);
    format!("view:{shown} of table:{table}: not found or not offered to the reader")
}

/// The columns to show: the `col` parameters (field ids or names, each a field the reader
/// sees), in order; every field when there are none.
pub(crate) fn columns(t: &TableDef, pairs: &[(String, String)]) -> AppResult<Vec<FieldId>> {
    let mut out: Vec<FieldId> = Vec::new();
    for (k, v) in pairs {
        if k != "col" || v.is_empty() {
            continue;
        }
        match crate::handlers::tables::find_field(t, v) {
            Some(f) if !out.contains(&f.id) => out.push(f.id),
            Some(_) => {}
            None => return Err(AppError::Invalid(FieldErrors::single("col", "unknown_field"))),
        }
    }
    if out.is_empty() {
        out = t.fields.iter().map(|f| f.id).collect();
    }
    Ok(out)
}

/// The table with only the given fields, in the given order.
pub(crate) fn narrowed(t: &TableDef, cols: &[FieldId]) -> TableDef {
    TableDef { fields: cols.iter().filter_map(|c| t.field(*c)).collect(), ..t.clone() }
}

/// A view's spec: keyword and sort from the checked query `q`, filters and columns from the
/// list parameters as they are to be kept (`pairs`).
fn spec_of(t: &TableDef, q: &daicho_domain::table::RecordQuery, pairs: &[(String, String)]) -> AppResult<ViewSpec> {
    let mut spec = ViewSpec {
        keyword: q.keyword.clone().unwrap_or_default(),
        sort: q.sort_keys().into_iter().map(|(field, desc)| SortSpec { field, desc }).collect(),
        oldest_first: q.sort.is_none() && !q.descending,
        ..ViewSpec::default()
    };
    for (k, v) in pairs {
        let Some(rest) = k.strip_prefix("filter.") else { continue };
        let Some((op, name)) = rest.split_once('.') else { continue };
        if let Some(f) = crate::handlers::tables::find_field(t, name) {
            spec.filters.push(FilterSpec { field: f.id, op: op.to_owned(), value: v.clone() });
        }
    }
    if pairs.iter().any(|(k, v)| k == "col" && !v.is_empty()) {
        spec.columns = columns(t, pairs)?;
    }
    Ok(spec)
}

/// The longest filter value a view keeps as typed (the grid's filter input takes as much).
const FILTER_VALUE_MAX: usize = 1000;

/// Saves a view of the table as the reader sees it; shared views need the design right.
async fn save(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    open: &OpenTable,
    name: &str,
    shared: bool,
    pairs: &[(String, String)],
) -> AppResult<SavedView> {
    let scope = auth.table_right::<View>(state, ctx, open).await?;
    let t = open.seen_by(&scope);
    auth.note_hidden_in_query(state, ctx, open, &t, pairs).await?;
    let name = Name::parse(name).map_err(|c| AppError::Invalid(FieldErrors::single("name", c)))?;
    // A user named by login ID or name is kept as the user (a later rename changes nothing); a
    // value that names no one is kept as typed: it matches no one when the view runs, until
    // someone with that login ID or name exists.
    // The query must run as it would now (every name found, every value read) ...
    let by_id = crate::handlers::tables::with_named_ids(state, ctx, auth, &t, pairs.to_vec()).await?;
    let q = record_query(&t, &by_id)?;
    // ... but is kept as typed, to be read again at each run (a link's text finds the records
    // showing it then; a date-time without offset is the tenant's then), except that a user
    // named by login ID or name is kept as the user (a later rename changes nothing). A value
    // that names no one is kept as typed: it matches no one when the view runs, until someone
    // with that login ID or name exists.
    let users = crate::handlers::tables::with_user_ids(state, ctx, auth, &t, pairs.to_vec()).await?;
    let nil = uuid::Uuid::nil().to_string();
    let stored: Vec<(String, String)> = pairs
        .iter()
        .zip(&users)
        .map(|(typed, resolved)| {
            if typed.1 == resolved.1 || !typed.0.starts_with("filter.") {
                return typed.clone();
            }
            let many = typed.0.starts_with("filter.any_of.");
            let typed_parts: Vec<&str> = if many { typed.1.split(',').collect() } else { vec![typed.1.as_str()] };
            let parts: Vec<&str> = if many { resolved.1.split(',').collect() } else { vec![resolved.1.as_str()] };
            let value = parts
                .iter()
                .zip(typed_parts.iter().chain(std::iter::repeat(&"")))
                .map(|(r, t)| if *r == nil { t.trim() } else { r })
                .collect::<Vec<_>>()
                .join(",");
            (typed.0.clone(), value)
        })
        .collect();
    // Kept as typed, so held to what the grid's filter input takes (as typed: users named by
    // login ID are kept by their longer ids).
    for (_, v) in pairs.iter().filter(|(k, _)| k.starts_with("filter.")) {
        if v.chars().count() > FILTER_VALUE_MAX {
            return Err(AppError::Invalid(FieldErrors::single("filter", "out_of_range")));
        }
        if v.chars().any(char::is_control) {
            return Err(AppError::Invalid(FieldErrors::single("filter", "control_chars")));
        }
    }
    let spec = spec_of(&t, &q, &stored)?;
    let view = SavedView {
        id: ViewId::new_random(),
        table_id: open.def.id,
        owner: (!shared).then_some(auth.principal.user_id),
        name,
        spec,
        created_at: ctx.now,
        created_by: auth.principal.user_id,
    };
    let ev = ctx
        .event_by(&auth.principal, AuditAction::ViewCreate, Outcome::Success)
        .target(format!("table:{} view:{}", open.def.id, view.id))
        .details(format!("{} ({})", view.name.as_str(), if shared { "shared" } else { "personal" }));
    if shared {
        let design = auth.table_right::<Design>(state, ctx, open).await?;
        state.store.create_shared_view(&design, view.clone(), ev).await?;
    } else {
        state.store.create_view(&scope, view.clone(), ev).await?;
    }
    Ok(view)
}

/// Deletes a view: one's own personal view, or a shared one with the design right.
async fn remove(state: &AppState, ctx: &Ctx, auth: &Auth, open: &OpenTable, vid: &str) -> AppResult<()> {
    let scope = auth.table_right::<View>(state, ctx, open).await?;
    let Ok(id) = vid.parse::<ViewId>() else {
        auth.record_refusal(state, ctx, not_offered(vid, open.def.id)).await?;
        return Err(AppError::NotFound);
    };
    let Some(view) = offered(state, ctx, auth, &scope, open).await?.into_iter().find(|v| v.id == id) else {
        // One's own view that uses a field since hidden from one is not offered any more, but
        // stays one's own to delete (the store deletes only a view the actor owns); so does a
        // shared one for a designer (whose name it holds, and whose place among the table's).
        let ev = || {
            ctx.event_by(&auth.principal, AuditAction::ViewDelete, Outcome::Success)
                .target(format!("table:{} view:{id}", open.def.id))
        };
        let r = match state.store.delete_view(&scope, id, ev()).await {
            Err(daicho_store::StoreError::NotFound) if open.access.has(daicho_domain::TableRight::Design) => {
                let design = auth.table_right::<Design>(state, ctx, open).await?;
                state.store.delete_shared_view(&design, id, ev()).await
            }
            other => other,
        };
        if let Err(daicho_store::StoreError::NotFound) = r {
            auth.record_refusal(state, ctx, not_offered(vid, open.def.id)).await?;
        }
        return Ok(r?);
    };
    let ev = ctx
        .event_by(&auth.principal, AuditAction::ViewDelete, Outcome::Success)
        .target(format!("table:{} view:{id}", open.def.id))
        .details(view.name.as_str().to_owned());
    if view.owner.is_none() {
        let design = auth.table_right::<Design>(state, ctx, open).await?;
        state.store.delete_shared_view(&design, id, ev).await?;
    } else {
        state.store.delete_view(&scope, id, ev).await?;
    }
    Ok(())
}

pub(crate) fn view_json(v: &SavedView, me: daicho_domain::UserId) -> Value {
    json!({
        "id": v.id,
        "name": v.name.as_str(),
        "shared": v.owner.is_none(),
        "mine": v.owner == Some(me) || (v.owner.is_none() && v.created_by == me),
        "keyword": v.spec.keyword,
        // Oldest first with no sort field reads back as what the API takes for it.
        "sort": if v.spec.oldest_first && v.spec.sort.is_empty() {
            vec![json!({"field": "id", "dir": "asc"})]
        } else {
            v.spec.sort.iter().map(|s| json!({"field": s.field, "dir": if s.desc { "desc" } else { "asc" }})).collect::<Vec<_>>()
        },
        "filters": v.spec.filters.iter().map(|f| json!({"field": f.field, "op": f.op, "value": f.value})).collect::<Vec<_>>(),
        "columns": v.spec.columns,
        "created_at": v.created_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
    })
}

pub async fn api_list(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(tid): Path<String>,
) -> AppResult<Json<Value>> {
    let open = auth.open_table(&state, &ctx, &tid).await?;
    let scope = auth.table_right::<View>(&state, &ctx, &open).await?;
    let views = offered(&state, &ctx, &auth, &scope, &open).await?;
    Ok(Json(json!({"views": views.iter().map(|v| view_json(v, auth.principal.user_id)).collect::<Vec<_>>()})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ViewBody {
    name: String,
    #[serde(default)]
    shared: bool,
    #[serde(default)]
    keyword: String,
    #[serde(default)]
    sort: Vec<SortBody>,
    #[serde(default)]
    filters: Vec<FilterBody>,
    #[serde(default)]
    columns: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SortBody {
    field: String,
    #[serde(default)]
    dir: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilterBody {
    field: String,
    op: String,
    #[serde(default)]
    value: String,
}

pub async fn api_create(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(tid): Path<String>,
    body: ApiBody,
) -> AppResult<Response> {
    let open = auth.open_table(&state, &ctx, &tid).await?;
    auth.table_right::<View>(&state, &ctx, &open).await?;
    let b: ViewBody = body.parse()?;
    let mut pairs = Vec::new();
    if !b.keyword.is_empty() {
        pairs.push(("q".to_owned(), b.keyword));
    }
    for s in b.sort {
        pairs.push(("sort".to_owned(), s.field));
        pairs.push(("dir".to_owned(), s.dir));
    }
    for f in b.filters {
        if f.op.contains('.') {
            return Err(AppError::Invalid(FieldErrors::single("filter", "bad_operator")));
        }
        pairs.push((format!("filter.{}.{}", f.op, f.field), f.value));
    }
    for c in b.columns {
        pairs.push(("col".to_owned(), c));
    }
    let view = save(&state, &ctx, &auth, &open, &b.name, b.shared, &pairs).await?;
    Ok((StatusCode::CREATED, Json(json!({"view": view_json(&view, auth.principal.user_id)}))).into_response())
}

pub async fn api_delete(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path((tid, vid)): Path<(String, String)>,
) -> AppResult<StatusCode> {
    let open = auth.open_table(&state, &ctx, &tid).await?;
    remove(&state, &ctx, &auth, &open, &vid).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The grid's "save this view" form: a name, shared or not, and the grid's current query.
pub async fn create_page(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(tid): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let open = auth.open_table(&state, &ctx, &tid).await?;
    let get = |k: &str| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str()).unwrap_or("");
    // The grid's query string, as the form sent it back: re-encoded, so that whatever it holds
    // goes into the redirect's Location as a valid header value.
    let query = crate::middleware::reencode_query(get("query"));
    let grid: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .filter(|(k, _)| !WITH_VIEW.contains(&k.as_str()))
        .collect();
    match save(&state, &ctx, &auth, &open, get("view_name"), get("shared") == "on", &grid).await {
        Ok(v) => Ok(redirect_see_other(&format!("/tables/{}?view={}&done=view_saved", open.def.id, v.id))),
        Err(AppError::Invalid(e) | AppError::Conflict(e)) => {
            let code = e.0.first().map(|fe| fe.code).unwrap_or("invalid");
            let sep = if query.is_empty() { "" } else { "&" };
            // (The name typed comes back to the form, to be corrected rather than typed again.)
            let name: String = get("view_name").chars().take(100).collect();
            let name: String = form_urlencoded::byte_serialize(name.as_bytes()).collect();
            Ok(redirect_see_other(&format!("/tables/{}?{query}{sep}view_error={code}&view_name={name}", open.def.id)))
        }
        Err(e) => Err(e),
    }
}

pub async fn delete_page(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path((tid, vid)): Path<(String, String)>,
) -> AppResult<Response> {
    let open = auth.open_table(&state, &ctx, &tid).await?;
    remove(&state, &ctx, &auth, &open, &vid).await?;
    Ok(redirect_see_other(&format!("/tables/{}?done=view_deleted", open.def.id)))
}
