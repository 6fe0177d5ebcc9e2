//! Pages for user tables: the list, a table's grid with the field designer, and the record
//! form. They call the same store operations and domain validation as the JSON API.

use crate::forms::Form;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use daicho_domain::access::{Create, Delete, Design, Edit, Import, TableRight, View};
use daicho_domain::table::{FieldDef, FieldKind, FieldRules, Name, RecordQuery, TableDef, check_field_count};
use daicho_domain::{AuditAction, FieldErrors, FieldId, ManageDesign, Outcome, TableId};
use daicho_store::Person;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::ctx::{Ctx, EventExt};
use crate::error::{AppError, AppResult};
use crate::handlers::tables::{
    changed, check_fillable, check_link_kind, check_refs, cursor_after, describe, lookups, parse_values, record_query,
};
use crate::middleware::redirect_see_other;
use crate::session::Auth;
use crate::state::AppState;
use crate::tablecap::OpenTable;
use crate::views::{Errors, Page, render, render_status};

pub struct TableRow {
    pub id: String,
    /// The grid for users who may view, else the new-record form (or import) they may use.
    pub href: String,
    pub name: String,
    pub description: String,
    pub fields: usize,
}

#[derive(Template)]
#[template(path = "tables/list.html")]
struct ListPage {
    p: Page,
    tables: Vec<TableRow>,
    errors: Errors,
    name: String,
    description: String,
    can_create_tables: bool,
}

#[derive(Debug, Default, Deserialize)]
pub struct NewTableForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
}

async fn list_page(state: &AppState, ctx: &Ctx, auth: &Auth, errors: Errors, f: NewTableForm) -> AppResult<ListPage> {
    let mut rows = Vec::new();
    for open in auth.open_tables(state, ctx).await? {
        let rights = open.access.rights();
        let t = open.visible(auth);
        let href = if rights.has(TableRight::View) || rights.has(TableRight::Design) {
            format!("/tables/{}", t.id)
        } else if rights.has(TableRight::Create) {
            format!("/tables/{}/records/new", t.id)
        } else {
            format!("/tables/{}/import", t.id)
        };
        rows.push(TableRow {
            id: t.id.to_string(),
            href,
            name: t.name.as_str().to_owned(),
            description: t.description.clone(),
            fields: t.fields.len(),
        });
    }
    Ok(ListPage {
        p: Page::for_user(auth, "tables.title", "tables", &ctx.request_id),
        tables: rows,
        errors,
        name: f.name,
        description: f.description,
        can_create_tables: auth.principal.may::<ManageDesign>(),
    })
}

pub async fn list_tables(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Query(pairs): Query<Vec<(String, String)>>,
) -> AppResult<Response> {
    let mut page = list_page(&state, &ctx, &auth, Errors::default(), NewTableForm::default()).await?;
    let done = pairs.iter().find(|(k, _)| k == "done").map(|(_, v)| v.as_str());
    if done.is_some() {
        page.p = Page::for_user(&auth, "tables.title", "tables", &ctx.request_id).with_flash(&ctx, done);
    }
    Ok(render(&page))
}

pub async fn create_table(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Form(f): Form<NewTableForm>,
) -> AppResult<Response> {
    let scope = auth.authorize::<ManageDesign>(&state, &ctx).await?;
    let mut errs = FieldErrors::new();
    let name = Name::parse(&f.name).map_err(|c| errs.push("name", c)).ok();
    if let Err(c) = daicho_domain::table::check_description(&f.description) {
        errs.push("description", c);
    }
    let result = match name.filter(|_| errs.is_empty()) {
        None => Err(AppError::Invalid(errs)),
        Some(name) => {
            let id = TableId::new_random();
            let ev = ctx
                .event_by(&auth.principal, AuditAction::TableCreate, Outcome::Success)
                .target(format!("table:{id}"))
                .details(format!("name={}", name.as_str()));
            state
                .store
                .create_table(&scope, id, name, f.description.clone(), ctx.now, ev)
                .await
                .map_err(crate::handlers::tables::limit_is_invalid)
        }
    };
    match result {
        Ok(t) => Ok(redirect_see_other(&format!("/tables/{}", t.id))),
        Err(AppError::Invalid(e) | AppError::Conflict(e)) => {
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &list_page(&state, &ctx, &auth, Errors(e), f).await?))
        }
        Err(e) => Err(e),
    }
}

pub struct FilterRow {
    pub field: String,
    pub op: String,
    pub value: String,
}

pub struct ViewLink {
    pub id: String,
    pub name: String,
    pub shared: bool,
    pub active: bool,
    pub deletable: bool,
}

/// The grid's filter operators and their labels.
const FILTER_OPS: &[(&str, &str)] = &[
    ("contains", "op.contains"),
    ("eq", "op.eq"),
    ("starts_with", "op.starts_with"),
    ("gte", "op.gte"),
    ("lte", "op.lte"),
    ("gt", "op.gt"),
    ("lt", "op.lt"),
    ("any_of", "op.any_of"),
    ("empty", "op.empty"),
    ("not_empty", "op.not_empty"),
];

/// The grid form's filter rows (`ff`, `fo`, `fv`, repeated in order) as `filter.<op>.<field>`
/// parameters; rows without a field, or without a value where the operator needs one, are
/// dropped. Other parameters pass through.
fn grid_pairs(pairs: &[(String, String)]) -> Vec<(String, String)> {
    let pick = |key: &str| pairs.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect::<Vec<_>>();
    let (ff, fo, fv) = (pick("ff"), pick("fo"), pick("fv"));
    let mut out: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "ff" | "fo" | "fv" | "view_error" | "view_name" | "back"))
        .cloned()
        .collect();
    for (i, field) in ff.iter().enumerate() {
        let op = fo.get(i).copied().unwrap_or("contains");
        let value = fv.get(i).copied().unwrap_or("");
        let needs_value = !matches!(op, "empty" | "not_empty");
        if field.is_empty() || (needs_value && value.is_empty()) || op.contains('.') {
            continue;
        }
        out.push((format!("filter.{op}.{field}"), if needs_value { value.to_owned() } else { String::new() }));
    }
    out
}

/// A saved view's error code from the redirect, if it is one this page explains.
fn view_error_code(v: &str) -> Option<&'static str> {
    ["required", "too_long", "control_chars", "taken", "too_many", "unknown_field", "view_outdated"]
        .into_iter()
        .find(|c| *c == v)
}

pub struct GridRow {
    pub id: i64,
    pub cells: Vec<String>,
}

/// The most characters of `back` cursors a grid link carries (see `pager`).
const BACK_CHARS: usize = 3000;

/// The grid's "Previous page" and "Next page" links (their query strings). A keyset page knows
/// only where it starts, so the links carry the way back: `back`, the `after` cursors of the
/// pages before this one, oldest first (an empty one is the first page). At most
/// `BACK_CHARS` of them are carried; past that the oldest are dropped, and a page that far
/// in has "First page" but no "Previous page".
fn pager(base: &str, back: &[&str], after: Option<&str>, next: Option<String>) -> (Option<String>, Option<String>) {
    let with = |after: &str, back: &[&str]| {
        let mut s = form_urlencoded::Serializer::new(String::new());
        if !after.is_empty() {
            s.append_pair("after", after);
        }
        for b in back {
            s.append_pair("back", b);
        }
        let rest = s.finish();
        match (base.is_empty(), rest.is_empty()) {
            (_, true) => base.to_owned(),
            (true, false) => rest,
            (false, false) => format!("{base}&{rest}"),
        }
    };
    let previous = match (after, back.split_last()) {
        (Some(_), Some((to, rest))) => Some(with(to, rest)),
        _ => None,
    };
    let next = next.map(|n| {
        let mut stack: Vec<&str> = back.to_vec();
        stack.push(after.unwrap_or(""));
        while stack.iter().map(|b| b.len() + 6).sum::<usize>() > BACK_CHARS && !stack.is_empty() {
            stack.remove(0);
        }
        with(&n, &stack)
    });
    (previous, next)
}

#[derive(Template)]
#[template(path = "tables/show.html")]
struct ShowPage {
    p: Page,
    id: String,
    name: String,
    description: String,
    has_fields: bool,
    headers: Vec<String>,
    /// For each column, the class of its cells: values that keep to one line (numbers, dates,
    /// codes, phone numbers: a date broken over two lines on a phone reads as two values),
    /// numbers also right-aligned, and long texts given room (`column_class`).
    col_class: Vec<&'static str>,
    rows: Vec<GridRow>,
    older: Option<String>,
    /// The page before this one, where the links that led here tell it (`pager`).
    previous: Option<String>,
    /// The same query from its start, on a later page.
    first: Option<String>,
    keyword: String,
    /// The sort keys (field id, "asc"/"desc"), padded with empty rows to the most allowed.
    sort_rows: Vec<(String, String)>,
    /// The filters, then one empty row to add another.
    filter_rows: Vec<FilterRow>,
    ops: Vec<(&'static str, &'static str)>,
    /// Every field the user sees: (id, name, chosen as a column).
    column_options: Vec<(String, String, bool)>,
    views: Vec<ViewLink>,
    /// How many records match, with thousands separators; `count_capped` when more than the cap.
    count: String,
    count_capped: bool,
    count_cap: String,
    any_deletable: bool,
    /// "All records" is the current list (no view asked for, or none shown as current).
    all_active: bool,
    /// The view refused as out of date, when the reader may delete it (offered beside the
    /// refusal).
    outdated_view: Option<String>,
    columns_chosen: bool,
    refine_active: usize,
    view_error: Option<&'static str>,
    /// The name a refused "save view" was sent with.
    view_name: String,
    query_error: Option<&'static str>,
    query_error_field: String,
    /// The conditions the field of a refused filter takes (their labels' keys).
    query_error_ops: Vec<&'static str>,
    sort_options: Vec<(String, String)>,
    /// The fields a filter row offers: (id, name, the operators it takes, space-separated),
    /// for the page's script to offer only those.
    filter_fields: Vec<(String, String, String)>,
    export_query: String,
    kinds: Vec<(&'static str, &'static str)>,
    errors: Errors,
    f_name: String,
    f_kind: String,
    f_choices: String,
    f_scale: String,
    f_required: bool,
    f_unique: bool,
    can: Can,
    /// Fields a bulk edit may set (the user's writable fields).
    /// The fields a bulk edit may set: (id, name, the values it takes when they are few, one
    /// per line, which the page's script offers as suggestions).
    bulk_fields: Vec<(String, String, String)>,
    /// The values the field of a refused bulk edit takes, when it was refused for the value.
    bulk_error_values: Vec<String>,
    bulk_error: Option<&'static str>,
    /// The field a refused bulk edit's value did not fit (its name).
    bulk_error_field: Option<String>,
    /// A refused bulk action's form as it was sent: the records ticked, "every record
    /// matching", the field and the value (so that fixing one thing does not mean redoing all).
    bulk_kept: BulkKept,
    bulk_max: usize,
    /// The grid's count when exact, sent back by the bulk form (see `BulkTarget::expect`).
    expect: Option<u64>,
    /// When the page was shown (unix ms), sent back by the bulk form (`BulkTarget::shown_at`).
    shown_at: i64,
    /// `?from=…` for the links to records: this page of the grid, to come back to.
    from: String,
    /// For a new link field: every (table, field) it may show, as "table id:field id".
    link_targets: Vec<(String, String)>,
    f_link: String,
    f_prefix: String,
    f_default: String,
    f_max_length: String,
    f_min: String,
    f_max: String,
}

/// Which actions a page offers (each is checked again, by the engine, when used).
#[derive(Debug, Clone, Copy, Default)]
pub struct Can {
    pub create: bool,
    pub edit: bool,
    pub delete: bool,
    pub import: bool,
    pub export: bool,
    pub design: bool,
}

impl Can {
    fn of(open: &OpenTable, auth: &Auth) -> Self {
        let a = &open.access;
        // "New record" only where one can be made: not when a required field the user may not
        // fill has no default (the form would only say so once filled in).
        let fillable = auth
            .principal
            .authorize_table::<Create>(a)
            .is_ok_and(|s| crate::handlers::tables::check_fillable(&open.def, &|f| s.writes(f)).is_ok());
        Can {
            create: fillable,
            edit: a.has(TableRight::Edit),
            delete: a.has(TableRight::Delete),
            import: a.has(TableRight::Import),
            export: a.has(TableRight::Export),
            design: a.has(TableRight::Design),
        }
    }
}

/// How a cell shows on a page: user fields by name, from the tenant's directory; date-times
/// at `offset` minutes from UTC (the tenant's), see `on_page`.
fn shown(f: &FieldDef, c: &daicho_domain::table::Cell, users: &[Person], offset: i32) -> String {
    if let (FieldKind::User, daicho_domain::table::Cell::Text(id)) = (&f.kind, c)
        && let Some(p) = users.iter().find(|p| p.id.to_string() == *id)
    {
        return p.label();
    }
    // A date-time as people read it, in the tenant's time zone: "2026-04-01 09:30".
    if let (FieldKind::DateTime, daicho_domain::table::Cell::Int(ms)) = (&f.kind, c)
        && let Some(s) = daicho_domain::table::local_text(*ms, offset, false)
    {
        return s;
    }
    display(&on_page(f, c, offset))
}

/// A cell's value as a page shows it (a record form shows it as `on_form` does): a date-time in RFC 3339 at
/// `offset` minutes from UTC, the tenant's (the same instant; the API and CSV files keep UTC);
/// one that cannot be written there (past the year 9999) in UTC; anything else as the API has it.
pub(crate) fn on_page(f: &FieldDef, c: &daicho_domain::table::Cell, offset: i32) -> Value {
    if let (FieldKind::DateTime, daicho_domain::table::Cell::Int(ms)) = (&f.kind, c)
        && let Ok(t) = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(*ms) * 1_000_000)
        && let Some(local) = t.checked_to_offset(crate::views::utc_offset(offset))
        && let Ok(s) = local.format(&time::format_description::well_known::Rfc3339)
    {
        return Value::String(s);
    }
    f.present(c)
}

/// The values a bulk edit of field `f` takes, when they are few (a choice's choices, a
/// checkbox's two states): offered as suggestions, and listed when a value is refused.
fn bulk_values(f: &FieldDef) -> Vec<String> {
    match &f.kind {
        FieldKind::Choice { choices } | FieldKind::MultiChoice { choices } => {
            choices.iter().map(|c| c.trim().to_owned()).collect()
        }
        FieldKind::Checkbox => vec!["TRUE".into(), "FALSE".into()],
        _ => Vec::new(),
    }
}

/// What a form offers for each link field: up to 500 records of its target the user may see,
/// as (id, label), to choose from; for a target with more, a text input, and the label of the
/// record the form's value names (`values`), shown in it as "#12 株式会社テスト".
async fn link_choices(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    t: &TableDef,
    values: &Map<String, Value>,
) -> AppResult<(std::collections::HashMap<FieldId, Vec<(String, String)>>, std::collections::HashMap<FieldId, String>)>
{
    let mut out = std::collections::HashMap::new();
    let mut typed = Vec::new();
    for f in &t.fields {
        let FieldKind::Link { table, show } = &f.kind else { continue };
        let Ok(target) = auth.peek_table(state, ctx, &table.to_string()).await else { continue };
        let Ok(view) = auth.principal.authorize_table::<View>(&target.access) else { continue };
        let q = RecordQuery { limit: 500, ..Default::default() };
        let rows = state.store.list_records(&view, &target.def, &q).await?;
        if rows.len() == 500 {
            // Too many for a list: the form takes the number or the shown text instead.
            let value = values.get(&f.id.to_string()).map(display_input).unwrap_or_default();
            if let Some(n) = value.trim().parse::<i64>().ok().or_else(|| crate::handlers::tables::link_number(&value)) {
                typed.push((f.id, daicho_domain::table::Cell::Int(n)));
            }
            continue;
        }
        let show_def = target.def.fields.iter().find(|d| d.id == *show);
        let users = users_for(state, ctx, auth, &target.def).await?;
        let offset = auth.tenant.policy.utc_offset_minutes;
        // By what they show, then by number (#2 before #10), each as "label (#n)".
        let mut labelled: Vec<(String, i64)> = rows
            .iter()
            .map(|r| {
                let label = show_def
                    .and_then(|d| r.cells.iter().find(|(id, _)| *id == d.id).map(|(_, c)| shown(d, c, &users, offset)))
                    .unwrap_or_default();
                (label, r.id)
            })
            .collect();
        labelled.sort();
        let choices = labelled
            .into_iter()
            .map(|(label, id)| {
                let text = if label.is_empty() { format!("#{id}") } else { format!("{label} (#{id})") };
                (id.to_string(), text)
            })
            .collect();
        out.insert(f.id, choices);
    }
    let mut labels = std::collections::HashMap::new();
    if !typed.is_empty() {
        let pseudo = daicho_store::Record {
            id: 0,
            version: 0,
            cells: typed,
            created_at: ctx.now,
            created_by: String::new(),
            updated_at: ctx.now,
            updated_by: String::new(),
        };
        let offset = Some(auth.tenant.policy.utc_offset_minutes);
        let found =
            crate::handlers::tables::lookups(state, ctx, auth, t, std::slice::from_ref(&pseudo), offset).await?;
        for (f, c) in &pseudo.cells {
            if let daicho_domain::table::Cell::Int(n) = c
                && let Some(label) = found.get(&(*f, *n))
            {
                labels.insert(*f, format!("#{n} {label}"));
            }
        }
    }
    Ok((out, labels))
}

async fn users_for(state: &AppState, ctx: &Ctx, auth: &Auth, t: &TableDef) -> AppResult<Vec<Person>> {
    if t.fields.iter().any(|f| matches!(f.kind, FieldKind::User)) {
        auth.directory(state, ctx).await
    } else {
        Ok(Vec::new())
    }
}

fn display(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(display).collect::<Vec<_>>().join(", "),
        Value::Bool(true) => "✓".into(),
        Value::Bool(false) => String::new(),
        other => other.to_string(),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct NewFieldForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub choices: String,
    #[serde(default)]
    pub scale: String,
    #[serde(default)]
    pub required: Option<String>,
    #[serde(default)]
    pub unique: Option<String>,
    /// For link fields: "table id:field id" of the record field to show.
    #[serde(default)]
    pub link: String,
    /// For auto-numbers: the text before the number.
    #[serde(default)]
    pub prefix: String,
    /// The value a new record gets when none is given.
    #[serde(default)]
    pub default: String,
    /// Characters at most, for text fields.
    #[serde(default)]
    pub max_length: String,
    /// Bounds, for integer and decimal fields.
    #[serde(default)]
    pub min: String,
    #[serde(default)]
    pub max: String,
}

const KINDS: &[(&str, &str)] = &[
    ("text", "kind.text"),
    ("multiline", "kind.multiline"),
    ("integer", "kind.integer"),
    ("decimal", "kind.decimal"),
    ("date", "kind.date"),
    ("date_time", "kind.date_time"),
    ("checkbox", "kind.checkbox"),
    ("choice", "kind.choice"),
    ("multi_choice", "kind.multi_choice"),
    ("email", "kind.email"),
    ("url", "kind.url"),
    ("phone", "kind.phone"),
    ("user", "kind.user"),
    ("link", "kind.link"),
    ("auto_number", "kind.auto_number"),
];

/// The kinds a field may be changed into (see `daicho_domain::table::retype_allowed`).
pub(crate) fn retype_kinds() -> Vec<(&'static str, &'static str)> {
    KINDS.iter().filter(|(k, _)| !matches!(*k, "link" | "user" | "auto_number")).copied().collect()
}

/// The class of a grid column's cells (see `GridPage::col_class`).
fn column_class(kind: &FieldKind) -> &'static str {
    match kind {
        FieldKind::Integer | FieldKind::Decimal { .. } => "nowrap number",
        FieldKind::Date | FieldKind::DateTime | FieldKind::AutoNumber { .. } | FieldKind::Phone => "nowrap",
        FieldKind::Multiline => "long",
        _ => "",
    }
}

/// Whether the field settings page offers this kind to change into (a link or user field keeps
/// its own kind, which the page then adds to the list).
pub(crate) fn offered_kind(name: &str) -> bool {
    retype_kinds().iter().any(|(k, _)| *k == name)
}

/// A field kind from the designer's form fields (kind, choices one per line, decimal scale).
pub(crate) fn kind_from_form(kind: &str, choices: &str, scale: &str) -> Result<FieldKind, FieldErrors> {
    let list = || choices.lines().map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned).collect();
    let k = match kind {
        "text" => FieldKind::Text,
        "multiline" => FieldKind::Multiline,
        "integer" => FieldKind::Integer,
        "decimal" => match scale.trim().parse::<u8>() {
            Ok(scale) => FieldKind::Decimal { scale },
            Err(_) => return Err(FieldErrors::single("scale", "not_a_number")),
        },
        "date" => FieldKind::Date,
        "date_time" => FieldKind::DateTime,
        "checkbox" => FieldKind::Checkbox,
        "choice" => FieldKind::Choice { choices: list() },
        "multi_choice" => FieldKind::MultiChoice { choices: list() },
        "email" => FieldKind::Email,
        "url" => FieldKind::Url,
        "phone" => FieldKind::Phone,
        _ => return Err(FieldErrors::single("kind", "choice")),
    };
    FieldDef::validate(&k, &FieldRules::default())?;
    Ok(k)
}

/// A field's rules from the designer's form (the add-field form and the field settings page):
/// ticked boxes, and text inputs where empty means no such rule. Whether the rules suit the
/// field's kind is checked by `FieldDef::validate`.
pub(crate) fn rules_from_form(
    required: bool,
    unique: bool,
    max_length: &str,
    min: &str,
    max: &str,
    default: &str,
) -> Result<FieldRules, FieldErrors> {
    let given = |v: &str| Some(v.trim().to_owned()).filter(|v| !v.is_empty());
    let max_length = match given(max_length) {
        None => None,
        Some(n) => match n.parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => return Err(FieldErrors::single("max_length", "not_a_number")),
        },
    };
    Ok(FieldRules { required, unique, max_length, min: given(min), max: given(max), default: given(default) })
}

/// A date-time field's default as the forms write date-times ("2026-04-01 09:30", the
/// tenant's time), made into the instant the field keeps (RFC 3339); a default with an offset
/// of its own, or of any other kind, as given (the field's rules judge it).
pub(crate) fn local_default(kind: &FieldKind, mut rules: FieldRules, offset: i32) -> FieldRules {
    if matches!(kind, FieldKind::DateTime)
        && let Some(at) = rules.default.as_deref().and_then(|d| daicho_domain::table::local_datetime(d, offset))
    {
        rules.default = Some(at);
    }
    rules
}

/// A date-time field's default as the forms show date-times (the tenant's time, as
/// `local_default` reads it back); any other as kept.
pub(crate) fn shown_default(kind: &FieldKind, default: Option<String>, offset: i32) -> Option<String> {
    match (kind, &default) {
        (FieldKind::DateTime, Some(d)) => {
            time::OffsetDateTime::parse(d, &time::format_description::well_known::Rfc3339)
                .ok()
                .and_then(|t| daicho_domain::table::local_text(daicho_domain::audit::unix_ms(t), offset, false))
                .or(default)
        }
        _ => default,
    }
}

/// 12345 as "12,345".
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The i18n key of a field type's label.
pub(crate) fn kind_label(kind: &FieldKind) -> &'static str {
    KINDS.iter().find(|(k, _)| *k == kind.name()).map(|(_, l)| *l).unwrap_or("kind.text")
}

async fn show_page(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    open: &OpenTable,
    pairs: &[(String, String)],
    errors: Errors,
    f: NewFieldForm,
) -> AppResult<ShowPage> {
    let scope = auth.table_right::<View>(state, ctx, open).await?;
    let t = &open.seen_by(&scope);

    let view_error = pairs.iter().find(|(k, _)| k == "view_error").and_then(|(_, v)| view_error_code(v));
    let saved = crate::handlers::views::offered(state, ctx, auth, &scope, open).await?;
    let grid = grid_pairs(pairs);
    // A saved view with other list parameters is refused as the API refuses it (the grid
    // would otherwise show the wider list under "All").
    let (resolved, current, view_refused) =
        match crate::handlers::views::resolve(state, ctx, auth, &scope, open, &grid).await {
            Ok((r, c)) => (r, c, None),
            Err(AppError::Invalid(e)) => (grid.clone(), None, e.0.first().map(|fe| fe.code)),
            Err(e) => return Err(e),
        };
    // The first problem of a query that cannot run, and the name of its field when that is a
    // field this reader sees (`t` holds only those: a saved view's filter on a hidden field
    // must not name it).
    let mut query_error_field = String::new();
    let mut query_error_ops: Vec<&'static str> = Vec::new();
    // (Users named by login ID or name are found for the query; the form keeps what was typed.)
    // (A link's text that more records show than a filter takes is the query's problem too.)
    let by_id = match crate::handlers::tables::with_named_ids(state, ctx, auth, t, resolved.clone()).await {
        Ok(p) => Ok(p),
        Err(AppError::Invalid(e)) => Err(e),
        Err(other) => return Err(other),
    };
    // Fields the reader may not see, named in the address (not by a saved view), are recorded.
    auth.note_hidden_in_query(state, ctx, open, t, &grid).await?;
    let (query, mut query_error) = match by_id.map_err(AppError::Invalid).and_then(|p| record_query(t, &p)) {
        Ok(q) if view_refused.is_some() => (q, view_refused),
        Ok(q) => (q, None),
        Err(AppError::Invalid(e)) => {
            if let Some(f) = e.0.first().and_then(|fe| crate::handlers::tables::find_field(t, &fe.field)) {
                query_error_field = f.name.as_str().to_owned();
                // A condition the field does not take: the page lists those it does.
                if e.0[0].code == "bad_operator" {
                    let taken = f.filter_ops();
                    query_error_ops =
                        FILTER_OPS.iter().filter(|(op, _)| taken.contains(op)).map(|(_, label)| *label).collect();
                }
            }
            (RecordQuery::default(), e.0.first().map(|fe| fe.code))
        }
        Err(e) => return Err(e),
    };
    let cols = match crate::handlers::views::columns(t, &resolved) {
        Ok(c) => c,
        Err(AppError::Invalid(e)) => {
            query_error = query_error.or(e.0.first().map(|fe| fe.code));
            t.fields.iter().map(|f| f.id).collect()
        }
        Err(e) => return Err(e),
    };
    let shown_t = crate::handlers::views::narrowed(t, &cols);
    let users = users_for(state, ctx, auth, &shown_t).await?;
    // A query that cannot run (an unknown or hidden field, a bad operator or value, a saved
    // view this reader may not run) shows nothing and says why: never a wider list that the
    // reader could take for the one they asked for.
    let refused = query_error.is_some();
    let records = if refused { Vec::new() } else { state.store.list_records(&scope, &open.def, &query).await? };
    // The number of matching records, counted up to a cap so that it never costs a full scan.
    let (count, capped) = if refused {
        (0, false)
    } else {
        state.store.count_records(&scope, &open.def, &query, crate::handlers::tables::COUNT_CAP).await?
    };
    let links = lookups(state, ctx, auth, t, &records, Some(auth.tenant.policy.utc_offset_minutes)).await?;
    // The grid's query as canonical parameters (keyword, sort keys, filters, columns): for the
    // export link, the next page, the bulk form and "save this view".
    let mut canonical: Vec<(String, String)> =
        resolved.iter().filter(|(k, v)| k == "q" && !v.is_empty()).cloned().collect();
    if query_error.is_none() {
        for (f, desc) in query.sort_keys() {
            canonical.push(("sort".into(), f.to_string()));
            canonical.push(("dir".into(), if desc { "desc" } else { "asc" }.into()));
        }
        if query.sort.is_none() && !query.descending {
            canonical.push(("dir".into(), "asc".into()));
        }
    }
    canonical
        .extend(resolved.iter().filter(|(k, v)| k.starts_with("filter.") || (k == "col" && !v.is_empty())).cloned());
    let base_query = {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &canonical {
            s.append_pair(k, v);
        }
        s.finish()
    };
    // The paging links' query: the saved view by its id (so that it stays the current one) or
    // the canonical parameters, with the page size asked for.
    let page_base = {
        let mut s = form_urlencoded::Serializer::new(String::new());
        match &current {
            Some(v) => {
                s.append_pair("view", &v.id.to_string());
            }
            None => {
                s.extend_pairs(canonical.iter());
            }
        }
        if let Some((_, l)) = resolved.iter().find(|(k, v)| k == "limit" && !v.is_empty()) {
            s.append_pair("limit", l);
        }
        s.finish()
    };
    let keep = |k: &str| resolved.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let keyword = keep("q");
    let mut sort_rows: Vec<(String, String)> = if query_error.is_some() {
        // The query was refused: the form keeps the sort keys as asked (those it knows), so
        // that fixing the one wrong value does not lose them.
        let dirs: Vec<&String> = resolved.iter().filter(|(k, _)| k == "dir").map(|(_, v)| v).collect();
        resolved
            .iter()
            .filter(|(k, _)| k == "sort")
            .enumerate()
            .map(|(i, (_, v))| {
                let f = crate::handlers::tables::find_field(t, v).map(|f| f.id.to_string()).unwrap_or_default();
                let d = dirs.get(i).map(|d| d.as_str()).filter(|d| *d == "asc" || *d == "desc").unwrap_or_default();
                (f, d.to_owned())
            })
            .take(daicho_domain::table::MAX_SORT_KEYS)
            .collect()
    } else {
        query.sort_keys().iter().map(|(f, d)| (f.to_string(), if *d { "desc" } else { "asc" }.to_owned())).collect()
    };
    if query.sort.is_none() && query_error.is_none() && keep("dir") == "asc" {
        sort_rows.push((String::new(), "asc".into()));
    }
    sort_rows.resize(daicho_domain::table::MAX_SORT_KEYS, (String::new(), String::new()));
    let mut filter_rows: Vec<FilterRow> = resolved
        .iter()
        .filter_map(|(k, v)| {
            let (op, name) = k.strip_prefix("filter.")?.split_once('.')?;
            let f = crate::handlers::tables::find_field(t, name)?;
            Some(FilterRow { field: f.id.to_string(), op: op.to_owned(), value: v.clone() })
        })
        .collect();
    let chosen: Vec<FieldId> =
        if resolved.iter().any(|(k, v)| k == "col" && !v.is_empty()) { cols.clone() } else { Vec::new() };
    // How many sort keys, filters and column choices the list holds: the "sort and filter"
    // panel says so (a narrow screen folds it).
    // (The default order reversed, "oldest first", counts as a sort.)
    let refine_active = sort_rows.iter().filter(|(f, d)| !f.is_empty() || d == "asc").count()
        + filter_rows.len()
        + usize::from(!chosen.is_empty());
    filter_rows.push(FilterRow { field: String::new(), op: "contains".into(), value: String::new() });
    let me = auth.principal.user_id;
    let can_design = open.access.has(TableRight::Design);
    // A view refused as out of date is still the one asked for: shown as the current one, and
    // offered for deletion beside the refusal, which asks for that.
    let outdated = (query_error == Some("view_outdated"))
        .then(|| grid.iter().find(|(k, _)| k == "view").and_then(|(_, v)| v.parse::<daicho_domain::ViewId>().ok()))
        .flatten();
    let views: Vec<ViewLink> = saved
        .iter()
        .map(|v| ViewLink {
            id: v.id.to_string(),
            name: v.name.as_str().to_owned(),
            shared: v.owner.is_none(),
            active: current.as_ref().is_some_and(|c| c.id == v.id) || outdated == Some(v.id),
            deletable: v.owner == Some(me) || (v.owner.is_none() && can_design),
        })
        .collect();
    let outdated_view = views.iter().find(|v| v.active && outdated.is_some() && v.deletable).map(|v| v.id.clone());
    let next = (records.len() == query.limit as usize)
        .then(|| records.last().map(|r| cursor_after(t.id, &query, r)))
        .flatten();
    let back: Vec<&str> = pairs.iter().filter(|(k, _)| k == "back").map(|(_, v)| v.as_str()).collect();
    let after = query.after.is_some().then(|| keep("after"));
    let (previous, older) = pager(&page_base, &back, after.as_deref(), next);
    let t_all = t;
    let system = daicho_domain::table::system_fields();
    let t = &shown_t;
    let rows = records
        .iter()
        .map(|r| GridRow {
            id: r.id,
            cells: t
                .fields
                .iter()
                .map(|f| {
                    r.cell(f.id)
                        .map(|c| match (&c, &f.kind) {
                            (daicho_domain::table::Cell::Int(n), FieldKind::Link { .. }) => {
                                links.get(&(f.id, *n)).cloned().unwrap_or_else(|| format!("#{n}"))
                            }
                            _ => shown(f, &c, &users, auth.tenant.policy.utc_offset_minutes),
                        })
                        .unwrap_or_default()
                })
                .collect(),
        })
        .collect();
    Ok(ShowPage {
        p: Page {
            named: Some(t.name.as_str().to_owned()),
            ..imported(ctx, Page::for_user(auth, "tables.title", "tables", &ctx.request_id), pairs)
        },
        id: t.id.to_string(),
        name: t.name.as_str().to_owned(),
        description: t.description.clone(),
        has_fields: !t.fields.is_empty(),
        headers: t.fields.iter().map(|f| f.name.as_str().to_owned()).collect(),
        col_class: t.fields.iter().map(|f| column_class(&f.kind)).collect(),
        older,
        previous,
        first: query.after.is_some().then(|| page_base.clone()),
        export_query: base_query.clone(),
        keyword,
        sort_rows,
        filter_rows,
        ops: FILTER_OPS.to_vec(),
        column_options: t_all
            .fields
            .iter()
            .chain(system.iter())
            .map(|f| (f.id.to_string(), f.name.as_str().to_owned(), chosen.contains(&f.id)))
            .collect(),
        count: grouped(count),
        count_capped: capped,
        count_cap: grouped(crate::handlers::tables::COUNT_CAP),
        any_deletable: views.iter().any(|v| v.deletable),
        all_active: current.is_none() && !views.iter().any(|v| v.active),
        outdated_view,
        columns_chosen: !chosen.is_empty(),
        refine_active,
        views,
        view_error,
        view_name: if view_error.is_some() {
            pairs.iter().find(|(k, _)| k == "view_name").map(|(_, v)| v.chars().take(100).collect()).unwrap_or_default()
        } else {
            String::new()
        },
        query_error,
        query_error_field,
        query_error_ops,
        sort_options: t_all
            .fields
            .iter()
            .chain(system.iter())
            .map(|f| (f.id.to_string(), f.name.as_str().to_owned()))
            .collect(),
        filter_fields: t_all
            .fields
            .iter()
            .chain(system.iter())
            .map(|f| (f.id.to_string(), f.name.as_str().to_owned(), f.filter_ops().join(" ")))
            .collect(),
        rows,
        kinds: KINDS.to_vec(),
        errors,
        f_kind: if f.kind.is_empty() { "text".into() } else { f.kind },
        f_name: f.name,
        f_choices: f.choices,
        f_scale: if f.scale.is_empty() { "0".into() } else { f.scale },
        f_required: f.required.is_some(),
        f_unique: f.unique.is_some(),
        can: Can::of(open, auth),
        bulk_fields: match auth.principal.authorize_table::<Edit>(&open.access) {
            Ok(e) => open
                .def
                .fields
                .iter()
                // An auto-number is the server's to write, never a user's.
                .filter(|f| e.writes(f.id) && !f.kind.is_generated())
                .map(|f| (f.id.to_string(), f.name.as_str().to_owned(), bulk_values(f).join("\n")))
                .collect(),
            Err(_) => Vec::new(),
        },
        bulk_error_values: Vec::new(),
        bulk_error: None,
        bulk_error_field: None,
        bulk_kept: BulkKept::default(),
        bulk_max: crate::handlers::tables::BULK_MAX,
        expect: (!capped).then_some(count),
        shown_at: daicho_domain::audit::unix_ms(ctx.now),
        from: {
            let here = match (&query.after, keep("after")) {
                (Some(_), after) if !after.is_empty() => {
                    let mut s = form_urlencoded::Serializer::new(page_base.clone());
                    s.append_pair("after", &after);
                    s.finish()
                }
                _ => page_base.clone(),
            };
            if here.is_empty() {
                String::new()
            } else {
                format!("?from={}", form_urlencoded::byte_serialize(here.as_bytes()).collect::<String>())
            }
        },
        link_targets: if open.access.has(TableRight::Design) {
            crate::handlers::tables::link_targets(state, ctx, auth).await?
        } else {
            Vec::new()
        },
        f_link: f.link,
        f_prefix: f.prefix,
        f_default: f.default,
        f_max_length: f.max_length,
        f_min: f.min,
        f_max: f.max,
    })
}

/// A bulk action's form as sent (see `ShowPage::bulk_kept`).
#[derive(Debug, Default)]
struct BulkKept {
    ids: Vec<i64>,
    all_matching: bool,
    field: String,
    value: String,
}

/// The grid's bulk form: the ticked records (`id`, repeated) or, with `all_matching`, every
/// record the grid's query selects; `action` = delete (with `confirm=yes`) or set (`field`,
/// `value`).
pub async fn bulk(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(tid): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    use crate::handlers::tables::{BulkTarget, bulk_delete_op, bulk_update_op};
    let open = auth.open_table(&state, &ctx, &tid).await?;
    let get = |k: &str| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str()).unwrap_or("");
    let mut ids = Vec::new();
    for (k, v) in &pairs {
        if k == "id" {
            ids.push(v.parse::<i64>().map_err(|_| AppError::BadRequest("bad_id"))?);
        }
    }
    // The grid's query string, as the form sent it back: re-encoded, so that whatever it holds
    // goes into the redirect's Location as a valid header value.
    let query = crate::middleware::reencode_query(get("query"));
    // "Every record matching" (the box ticked, which says so) instead of the records ticked.
    // (The grid's count as the page showed it, when it was exact.)
    let expect = get("expect").parse::<usize>().ok();
    // (When the page was shown: a record changed since is not touched. A form without it, or
    // with one altered, only takes from its sender a check made for them.)
    let shown_at = get("shown_at").parse::<i64>().ok();
    let target = || match get("all_matching") == "on" {
        true => BulkTarget { ids: Vec::new(), query: Some(query.as_str()), all: true, expect, shown_at },
        false => BulkTarget { ids: ids.clone(), query: None, all: false, expect: None, shown_at },
    };
    let nothing = ids.is_empty() && get("all_matching") != "on";
    let result = match get("action") {
        // First what the user can fix on the page: no record ticked.
        "delete" | "set" if nothing => Err(AppError::Invalid(FieldErrors::single("ids", "nothing_selected"))),
        "delete" if get("confirm") != "yes" => {
            // The right first: someone who may not delete is told so, not asked to confirm.
            auth.table_right::<Delete>(&state, &ctx, &open).await?;
            Err(AppError::Invalid(FieldErrors::single("confirm", "confirm_required")))
        }
        "delete" => bulk_delete_op(&state, &ctx, &auth, &open, target()).await.map(|n| format!("bulk_deleted&n={n}")),
        "set" => {
            let field = get("field");
            // (A checkbox's value as typed, too: "✓" or "はい", "false" or "いいえ"; anything else is
            // refused by the field, not taken as unticked.)
            let value = Value::String(get("value").to_owned());
            let mut values = Map::new();
            values.insert(field.to_owned(), value);
            bulk_update_op(&state, &ctx, &auth, &open, target(), &values).await.map(|n| format!("bulk_updated&n={n}"))
        }
        _ => Err(AppError::BadRequest("bad_action")),
    };
    let back = |extra: &str| {
        let sep = if query.is_empty() { "" } else { "&" };
        format!("/tables/{}?{query}{sep}{extra}", open.def.id)
    };
    match result {
        Ok(done) => Ok(redirect_see_other(&back(&format!("done={done}")))),
        Err(AppError::Invalid(e) | AppError::Conflict(e)) => {
            let grid_pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
            let mut page =
                show_page(&state, &ctx, &auth, &open, &grid_pairs, Errors::default(), NewFieldForm::default()).await?;
            page.bulk_error = e.0.first().map(|fe| fe.code);
            // (Named only when the user sees the field: a refusal of a hidden field's id must
            // not tell its name.)
            let seen = auth.principal.authorize_table::<View>(&open.access).ok().map(|v| open.seen_by(&v));
            let refused_field =
                e.0.first().and_then(|fe| seen.as_ref()?.fields.iter().find(|f| f.id.to_string() == fe.field).cloned());
            page.bulk_error_field = refused_field.as_ref().map(|f| f.name.as_str().to_owned());
            if matches!(page.bulk_error, Some("choice" | "not_a_checkbox")) {
                page.bulk_error_values = refused_field.as_ref().map(bulk_values).unwrap_or_default();
            }
            page.bulk_kept = BulkKept {
                ids,
                all_matching: get("all_matching") == "on",
                field: get("field").to_owned(),
                value: get("value").to_owned(),
            };
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(e) => Err(e),
    }
}

pub async fn show_table(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(tid): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> AppResult<Response> {
    let open = auth.open_table(&state, &ctx, &tid).await?;
    let page = show_page(&state, &ctx, &auth, &open, &pairs, Errors::default(), NewFieldForm::default()).await?;
    // The grid's query is refused as the API refuses it (422), with the page saying why.
    if page.query_error.is_some() {
        return Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page));
    }
    Ok(render(&page))
}

/// `offset`: the tenant's, for a date-time default written as the forms write date-times.
fn field_from_form(f: &NewFieldForm, offset: i32) -> Result<(Name, FieldKind, FieldRules), FieldErrors> {
    let mut errs = FieldErrors::new();
    let name = Name::parse_field(&f.name).map_err(|c| errs.push("name", c)).ok();
    let kind = match f.kind.as_str() {
        "user" => Some(FieldKind::User),
        "auto_number" => Some(FieldKind::AutoNumber { prefix: f.prefix.trim().to_owned(), digits: 6 }),
        "link" => match f.link.split_once(':').map(|(t, s)| (t.parse(), s.parse())) {
            Some((Ok(table), Ok(show))) => Some(FieldKind::Link { table, show }),
            _ => {
                errs.push("link", "required");
                None
            }
        },
        other => match kind_from_form(other, &f.choices, &f.scale) {
            Ok(k) => Some(k),
            Err(e) => {
                errs.0.extend(e.0);
                None
            }
        },
    };
    let rules =
        match rules_from_form(f.required.is_some(), f.unique.is_some(), &f.max_length, &f.min, &f.max, &f.default) {
            Ok(r) => match &kind {
                Some(k) => local_default(k, r, offset),
                None => r,
            },
            Err(e) => {
                errs.0.extend(e.0);
                FieldRules::default()
            }
        };
    if let Some(k) = &kind
        && let Err(e) = FieldDef::validate(k, &rules)
    {
        errs.0.extend(e.0);
    }
    match (name, kind) {
        (Some(n), Some(k)) if errs.is_empty() => Ok((n, k, rules)),
        _ => Err(errs),
    }
}

pub async fn add_field(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(tid): Path<String>,
    Form(f): Form<NewFieldForm>,
) -> AppResult<Response> {
    let open = auth.open_table(&state, &ctx, &tid).await?;
    let scope = auth.table_right::<Design>(&state, &ctx, &open).await?;
    let t = &open.def;
    let parsed =
        check_field_count(t.fields.len()).and_then(|()| field_from_form(&f, auth.tenant.policy.utc_offset_minutes));
    let parsed = match parsed {
        Ok((n, k, r)) => match check_link_kind(&state, &ctx, &auth, &k).await {
            Ok(()) => Ok((n, k, r)),
            Err(AppError::Invalid(e)) => Err(e),
            Err(e) => return Err(e),
        },
        Err(e) => Err(e),
    };
    let result = match parsed {
        Err(e) => Err(AppError::Invalid(e)),
        Ok((name, kind, rules)) => {
            let field = FieldDef { id: FieldId::new_random(), name, kind, rules, position: 0 };
            let ev = ctx
                .event_by(&auth.principal, AuditAction::FieldCreate, Outcome::Success)
                .target(format!("table:{} field:{}", t.id, field.id))
                .details(crate::handlers::tables::field_created(&field));
            let fid = field.id;
            state
                .store
                .add_field(&scope, t.id, field, ev)
                .await
                .map_err(crate::handlers::tables::limit_is_invalid)
                .map(|t| (t, fid))
        }
    };
    match result {
        // (A required field added to records: the notice says how many hold no value in it.)
        Ok((t, fid)) => match crate::handlers::tables::empty_in_new_required(&state, &auth, &open, &t, fid).await {
            // (A count that reached the cap is the cap: the notice says "or more".)
            Some((n, capped)) => {
                let more = if capped { "&more=1" } else { "" };
                Ok(redirect_see_other(&format!("/tables/{}?done=field_added&n={n}{more}", t.id)))
            }
            None => Ok(redirect_see_other(&format!("/tables/{}?done=field_added", t.id))),
        },
        Err(AppError::Invalid(e) | AppError::Conflict(e)) => {
            let page = show_page(&state, &ctx, &auth, &open, &[], Errors(e), f).await?;
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(e) => Err(e),
    }
}

pub struct InputField {
    pub key: String,
    pub label: String,
    pub input: &'static str,
    pub inputmode: &'static str,
    pub hint: &'static str,
    pub value: String,
    pub required: bool,
    /// (value, label) for selects.
    pub choices: Vec<(String, String)>,
    pub error: Option<&'static str>,
    /// Shown as text, not as an input: the user may see but not change it.
    pub read_only: bool,
    pub shown: String,
    /// Where a value shown read-only leads (a linked record the reader may view).
    pub href: Option<String>,
    /// The ticked choices of a multiple choice.
    pub selected: Vec<String>,
    /// The field's rules a value must keep, shown under the input (so that "above the
    /// maximum" does not leave the user to guess the maximum).
    pub limits: Vec<(&'static str, String)>,
}

impl InputField {
    /// The ids of what describes the input (its hint, its limits, its error), for
    /// `aria-describedby`; empty when nothing does.
    pub fn described_by(&self) -> String {
        let mut ids = Vec::new();
        if !self.hint.is_empty() {
            ids.push(format!("{}-hint", self.key));
        }
        if !self.limits.is_empty() {
            ids.push(format!("{}-limits", self.key));
        }
        if self.error.is_some() {
            ids.push(format!("{}-err", self.key));
        }
        ids.join(" ")
    }
}

#[derive(Template)]
#[template(path = "tables/record.html")]
struct RecordPage {
    p: Page,
    /// A problem the page reports above the form (an error code), such as a delete refused
    /// because the record changed since it was shown.
    notice: Option<&'static str>,
    table_id: String,
    table_name: String,
    record_id: Option<i64>,
    action: String,
    version: i64,
    /// The offset from UTC (minutes) the form's date-times are written in, sent back with it.
    tz: i32,
    stale: bool,
    errors: Errors,
    fields: Vec<InputField>,
    can_save: bool,
    can_delete: bool,
    /// Created at, created by, updated at, updated by (an existing record).
    meta: Option<(String, String, String, String)>,
    /// The grid's query the record was opened from (its search, filters, sort, view and page),
    /// where the form goes back to after saving.
    from: String,
}

/// The grid query a record page was opened from (`from`), as a valid query string (it goes
/// into links and a redirect's Location, always under its table's grid).
fn from_of(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .find(|(k, _)| k == "from")
        // (Without notice keys: the way back must not announce what the link's maker wrote.)
        .map(|(_, v)| crate::middleware::without_notices(v))
        // (Whole or not at all: a query cut short could name half a field. The request's
        // limits bound it anyway.)
        .filter(|q| q.len() <= 8_000)
        .unwrap_or_default()
}

impl RecordPage {
    /// Whether the form has a required field the user may fill in (its label's "*" is then
    /// explained above the form).
    fn any_required(&self) -> bool {
        self.fields.iter().any(|f| f.required && !f.read_only)
    }

    /// Whether the summary has anything to list.
    fn has_summary(&self) -> bool {
        self.fields.iter().any(|f| f.error.is_some()) || !self.other_errors().is_empty()
    }

    /// The codes of errors the summary names without a field of the form (a field's own error
    /// is listed with its name; "values" and a stale version have their own messages).
    fn other_errors(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for fe in &self.errors.0.0 {
            let shown = fe.field == "values"
                || fe.field == "version"
                || self.fields.iter().any(|f| f.key == fe.field && f.error.is_some());
            if !shown && !out.contains(&fe.code) {
                out.push(fe.code);
            }
        }
        out
    }
}

/// What a record form shows: the fields the user sees, which of them they may write, and the
/// tenant's users for user fields.
struct FormSpec<'a> {
    t: &'a TableDef,
    writes: &'a (dyn Fn(FieldId) -> bool + Sync),
    users: Vec<Person>,
    /// Choices for link fields: (record id, label), when the target can be listed.
    links: std::collections::HashMap<FieldId, Vec<(String, String)>>,
    /// Else the value shown in the link field's text input ("#12 株式会社テスト").
    link_labels: std::collections::HashMap<FieldId, String>,
    can_save: bool,
    can_delete: bool,
}

/// The record form page, new (`record: None`) or existing.
fn record_page(
    auth: &Auth,
    ctx: &Ctx,
    spec: &FormSpec<'_>,
    record: Option<(i64, i64)>,
    values: &Map<String, Value>,
    errors: Errors,
    stale: bool,
) -> RecordPage {
    let t = spec.t;
    let action = match record {
        Some((id, _)) => format!("/tables/{}/records/{id}", t.id),
        None => format!("/tables/{}/records", t.id),
    };
    let p =
        Page::for_user(auth, if record.is_some() { "records.edit" } else { "records.new" }, "tables", &ctx.request_id);
    // The tab names the table and the record ("顧客 #12"), not only "Record".
    let named = match record {
        Some((id, _)) => format!("{} #{id}", t.name.as_str()),
        None => format!("{} · {}", t.name.as_str(), crate::i18n::t(p.lang, "records.new")),
    };
    RecordPage {
        notice: None,
        p: Page { named: Some(named), ..p },
        table_id: t.id.to_string(),
        table_name: t.name.as_str().to_owned(),
        record_id: record.map(|(id, _)| id),
        action,
        version: record.map(|(_, v)| v).unwrap_or(0),
        tz: auth.tenant.policy.utc_offset_minutes,
        stale,
        fields: input_fields(spec, values, &errors, auth.tenant.policy.utc_offset_minutes),
        errors,
        can_save: spec.can_save,
        can_delete: spec.can_delete,
        meta: None,
        from: String::new(),
    }
}

fn input_fields(spec: &FormSpec<'_>, values: &Map<String, Value>, errors: &Errors, offset: i32) -> Vec<InputField> {
    spec.t
        .fields
        .iter()
        .map(|f| {
            let key = f.id.to_string();
            let (input, inputmode, hint) = match f.kind {
                FieldKind::Multiline => ("textarea", "text", ""),
                FieldKind::Integer => ("text", "numeric", ""),
                FieldKind::Decimal { .. } => ("text", "decimal", ""),
                FieldKind::Date => ("date", "text", ""),
                FieldKind::DateTime => ("text", "text", "hint.date_time"),
                FieldKind::Checkbox => ("checkbox", "text", ""),
                FieldKind::Choice { .. } | FieldKind::User => ("select", "text", ""),
                FieldKind::MultiChoice { .. } => ("checkboxes", "text", ""),
                FieldKind::AutoNumber { .. } => ("text", "numeric", ""),
                FieldKind::Link { .. } if spec.links.contains_key(&f.id) => ("select", "text", ""),
                FieldKind::Link { .. } => ("text", "numeric", "hint.link"),
                FieldKind::Email => ("email", "text", ""),
                FieldKind::Url => ("url", "text", ""),
                FieldKind::Phone => ("tel", "text", ""),
                FieldKind::Text => ("text", "text", ""),
            };
            let value = values.get(&key).map(display_input).unwrap_or_default();
            // A link typed as a number shows the record it names ("#12 株式会社テスト").
            let value = match spec.link_labels.get(&f.id) {
                Some(label) if input == "text" && (value.trim().parse::<i64>().is_ok() || value.starts_with('#')) => {
                    label.clone()
                }
                _ => value,
            };
            // A browser empties a date input whose value is not a date: what the user typed
            // (and the form refused) comes back in a text input, to be corrected, not retyped.
            let (input, hint) =
                if input == "date" && !value.is_empty() && f.parse(&Value::String(value.clone())).is_err() {
                    ("text", "hint.date")
                } else {
                    (input, hint)
                };
            let selected = match values.get(&key) {
                Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
                _ => Vec::new(),
            };
            let shown = match values.get(&key) {
                Some(v) => f.parse(v).map(|c| shown(f, &c, &spec.users, offset)).unwrap_or_else(|_| display(v)),
                None => String::new(),
            };
            // A link shown read-only reads as the grid shows it ("株式会社テスト (#12)"), and
            // leads to its record where the reader may view the target (whose records were
            // then listed or looked up for the form); else its number alone ("#12").
            let (shown, href) = match &f.kind {
                FieldKind::Link { table, .. } if !shown.is_empty() => {
                    let n = values.get(&key).map(display_input).unwrap_or_default().trim().to_owned();
                    let listed =
                        spec.links.get(&f.id).and_then(|l| l.iter().find(|(v, _)| *v == n)).map(|(_, l)| l.clone());
                    let label = listed.or_else(|| spec.link_labels.get(&f.id).cloned());
                    // (Only to a record the reader was shown: one outside their rows, or gone,
                    // would answer 404 and record a refusal the page itself caused.)
                    let href =
                        (label.is_some() && n.parse::<i64>().is_ok()).then(|| format!("/tables/{table}/records/{n}"));
                    (label.unwrap_or_else(|| format!("#{n}")), href)
                }
                _ => (shown, None),
            };
            let mut choices: Vec<(String, String)> = match &f.kind {
                FieldKind::Choice { choices } | FieldKind::MultiChoice { choices } => {
                    choices.iter().map(|c| (c.trim().to_owned(), c.clone())).collect()
                }
                // Active users; a disabled one only where the record already names them,
                // so that saving the form keeps the value.
                FieldKind::User => spec
                    .users
                    .iter()
                    .filter(|p| p.active || values.get(&key).and_then(Value::as_str) == Some(&p.id.to_string()))
                    .map(|p| (p.id.to_string(), p.label()))
                    .collect(),
                FieldKind::Link { .. } => spec.links.get(&f.id).cloned().unwrap_or_default(),
                _ => Vec::new(),
            };
            // The value the record holds is always among the choices, also where it is not
            // offered (a linked record outside the editor's view or beyond the list, a user
            // no longer in the directory, a choice taken off the list): the browser would
            // otherwise send nothing for it and saving the form would erase it.
            if input == "select" && !value.is_empty() && !choices.iter().any(|(v, _)| *v == value) {
                let label = if matches!(f.kind, FieldKind::Link { .. }) { format!("#{value}") } else { shown.clone() };
                choices.push((value.clone(), label));
            }
            if input == "checkboxes" {
                for v in &selected {
                    if !choices.iter().any(|(c, _)| c == v) {
                        choices.push((v.clone(), v.clone()));
                    }
                }
            }
            InputField {
                value,
                shown,
                href,
                error: errors.get(&key),
                read_only: !(spec.writes)(f.id) || f.kind.is_generated(),
                selected,
                key,
                label: f.name.as_str().to_owned(),
                input,
                inputmode,
                hint,
                required: f.rules.required,
                choices,
                limits: {
                    let r = &f.rules;
                    let mut l: Vec<(&'static str, String)> = Vec::new();
                    if let Some(n) = &r.min {
                        l.push(("limit.min", n.clone()));
                    }
                    if let Some(n) = &r.max {
                        l.push(("limit.max", n.clone()));
                    }
                    if let Some(n) = r.max_length {
                        l.push(("limit.max_length", n.to_string()));
                    }
                    if let FieldKind::Decimal { scale } = f.kind {
                        l.push(("limit.decimals", scale.to_string()));
                    }
                    l
                },
            }
        })
        .collect()
}

fn display_input(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The submitted form as values keyed by field id, for the fields the user may write; an
/// unticked checkbox is absent from a form, so every writable checkbox field is set explicitly.
///
/// A form lists the fields it shows as inputs (`fields`, one per field): only those are
/// written, so a field that was not on the page when it was loaded (in the trash then, or
/// read-only then) is not erased by saving it. A post without the list writes every field.
/// `empty_changes(f)`: whether an empty value for a field the user may not write would change
/// something (a record's stored value, or a new record's default), and so is refused by name.
fn form_values(
    t: &TableDef,
    pairs: &[(String, String)],
    writes: &dyn Fn(FieldId) -> bool,
    empty_changes: &dyn Fn(FieldId) -> bool,
) -> Map<String, Value> {
    let mut m = Map::new();
    let listed: Vec<&str> = pairs.iter().filter(|(k, _)| k == "fields").map(|(_, v)| v.as_str()).collect();
    let on_form = |f: &FieldDef| listed.is_empty() || listed.contains(&f.id.to_string().as_str());
    // A field's value as the form sends it (an unticked checkbox and an empty multiple choice
    // send nothing).
    let value_of = |f: &FieldDef| {
        let key = f.id.to_string();
        let v = pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone());
        match f.kind {
            FieldKind::Checkbox => Value::Bool(v.is_some()),
            // One checkbox per choice: every ticked one arrives under the field's key.
            FieldKind::MultiChoice { .. } => {
                Value::Array(pairs.iter().filter(|(k, _)| *k == key).map(|(_, v)| Value::String(v.clone())).collect())
            }
            // (A browser sends a text area's line breaks as CRLF; stored text has LF.)
            _ => v.map(|v| Value::String(v.replace("\r\n", "\n"))).unwrap_or(Value::Null),
        }
    };
    for f in t.fields.iter().filter(|f| writes(f.id) && !f.kind.is_generated() && on_form(f)) {
        m.insert(f.id.to_string(), value_of(f));
    }
    // A field the user may not write, which the form offered (it became read-only since the
    // page was shown) or which was sent all the same, is passed on so that it is refused by
    // name, unless it is empty and that changes nothing (`empty_changes`). An unchanged value
    // is dropped by the caller.
    let empty = |v: &Value| match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    };
    for f in t.fields.iter().filter(|f| !writes(f.id) && !f.kind.is_generated()) {
        let key = f.id.to_string();
        let offered = listed.contains(&key.as_str());
        if !offered && !pairs.iter().any(|(k, _)| *k == key) {
            continue;
        }
        let v = value_of(f);
        if !empty(&v) || empty_changes(f.id) {
            m.insert(key, v);
        }
    }
    m
}

fn values_of(t: &TableDef, r: &daicho_store::Record, offset: i32) -> Map<String, Value> {
    let mut values = Map::new();
    for (fid, c) in &r.cells {
        if let Some(f) = t.fields.iter().find(|f| f.id == *fid) {
            values.insert(fid.to_string(), on_form(f, c, offset));
        }
    }
    values
}

/// A cell's value as a form holds it: a date-time as its hint asks for it ("2026-04-01 09:30",
/// with seconds and milliseconds when it has them, in the tenant's time zone, which the form
/// reads back as the same instant); anything else as `on_page`.
fn on_form(f: &FieldDef, c: &daicho_domain::table::Cell, offset: i32) -> Value {
    if let (FieldKind::DateTime, daicho_domain::table::Cell::Int(ms)) = (&f.kind, c)
        && let Some(s) = daicho_domain::table::local_text(*ms, offset, false)
    {
        return Value::String(s);
    }
    on_page(f, c, offset)
}

/// A record form's spec for table `t` (the fields `writes` lets the user write, the form's
/// `values` naming its links' records): the users and link choices read for it; it may save
/// and not delete (the caller sets otherwise).
async fn form_spec<'a>(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    t: &'a TableDef,
    writes: &'a (dyn Fn(FieldId) -> bool + Sync),
    values: &Map<String, Value>,
) -> AppResult<FormSpec<'a>> {
    let users = users_for(state, ctx, auth, t).await?;
    let (links, link_labels) = link_choices(state, ctx, auth, t, values).await?;
    Ok(FormSpec { t, writes, users, links, link_labels, can_save: true, can_delete: false })
}

pub async fn new_record(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(tid): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> AppResult<Response> {
    let open = auth.open_table(&state, &ctx, &tid).await?;
    let scope = auth.table_right::<Create>(&state, &ctx, &open).await?;
    let t = open.seen_by(&scope);
    let done = pairs.iter().find(|(k, _)| k == "done").map(|(_, v)| v.as_str());
    let writes = |f| scope.writes(f);
    let spec = form_spec(&state, &ctx, &auth, &t, &writes, &Map::new()).await?;
    // The form starts with each field's default value.
    let mut defaults = Map::new();
    for f in &t.fields {
        if let Some(d) = &f.rules.default
            && let Ok(c) = f.parse(&Value::String(d.clone()))
        {
            defaults.insert(f.id.to_string(), on_form(f, &c, auth.tenant.policy.utc_offset_minutes));
        }
    }
    // A right over "records whose <user field> is them" makes only such records: the form
    // starts with the user there.
    for r in scope.rows().all_of.iter().flatten() {
        if let daicho_domain::RowRule::UserIsMe { field } = r
            && scope.writes(*field)
        {
            defaults.entry(field.to_string()).or_insert_with(|| Value::String(auth.principal.user_id.to_string()));
        }
    }
    let mut page = record_page(&auth, &ctx, &spec, None, &defaults, Errors::default(), false);
    // (Someone who may add records but not view them comes back here after each one.)
    page.p = page.p.with_flash(&ctx, done);
    Ok(render(&page))
}

/// The offset from UTC (minutes) a record form's date-times were written in: the one the form
/// was shown with (`tz`, sent back with it), so that a change of the tenant's time zone while
/// the form was open does not move every date-time on it; else the tenant's.
fn form_offset(pairs: &[(String, String)], auth: &Auth) -> i32 {
    pairs
        .iter()
        .find(|(k, _)| k == "tz")
        .and_then(|(_, v)| v.trim().parse::<i32>().ok())
        .filter(|m| m.abs() < 24 * 60)
        .unwrap_or(auth.tenant.policy.utc_offset_minutes)
}

pub async fn create_record(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(tid): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let open = auth.open_table(&state, &ctx, &tid).await?;
    let scope = auth.table_right::<Create>(&state, &ctx, &open).await?;
    let t = open.seen_by(&scope);
    let writes = |f| scope.writes(f);
    let defaults = daicho_store::guard::defaults(&open.def);
    let has_default = |f: FieldId| {
        defaults.iter().any(|(d, c)| {
            *d == f && !matches!(c, daicho_domain::table::Cell::Null | daicho_domain::table::Cell::Bool(false))
        })
    };
    let mut values = form_values(&t, &pairs, &writes, &has_default);
    let offset = form_offset(&pairs, &auth);
    // A field now read-only that a form shown before sends back at its default (the new
    // record's form starts with the defaults) is no change.
    values.retain(|k, v| {
        let Some(f) = t.fields.iter().find(|f| f.id.to_string() == *k && !writes(f.id)) else { return true };
        let default = defaults.iter().find(|(d, _)| *d == f.id).map(|(_, c)| c);
        crate::handlers::tables::parse_at(f, v, offset).map_or(true, |c| Some(&c) != default)
    });
    let (resolved, link_errs) = crate::handlers::tables::with_link_ids(&state, &ctx, &auth, &t, &values).await?;
    let parsed = check_fillable(&open.def, &writes).and_then(|()| parse_values(&t, &resolved, true, &writes, offset));
    let parsed = crate::handlers::tables::with_errors(parsed, link_errs);
    // (A field the form did not offer, sent all the same, is refused by name and recorded.)
    let parsed = auth.noting_refusal(&state, &ctx, &open, &t, parsed).await;
    let parsed = crate::handlers::tables::and_ref_problems(&state, &ctx, &auth, &t, &values, parsed).await;
    let result = match parsed {
        Err(e) => Err(e),
        Ok(cells) => match check_refs(&state, &ctx, &auth, &t, &[&cells]).await {
            Err(e) => Err(e),
            Ok(()) => {
                let ev = ctx
                    .event_by(&auth.principal, AuditAction::RecordCreate, Outcome::Success)
                    .target(format!("table:{}", t.id))
                    .details(describe(&t, &cells, None));
                let r = state.store.insert_record(&scope, &open.def, cells, ctx.now, ev).await;
                auth.noting_judged(&state, &ctx, format!("create in table:{}", t.id), r).await
            }
        },
    };
    let after = if open.access.has(TableRight::View) {
        format!("/tables/{}?done=record_created", t.id)
    } else {
        format!("/tables/{}/records/new?done=record_created", t.id)
    };
    match result {
        Ok(_) => Ok(redirect_see_other(&after)),
        Err(AppError::Invalid(e) | AppError::Conflict(e)) => {
            let spec = form_spec(&state, &ctx, &auth, &t, &writes, &values).await?;
            Ok(render_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &record_page(&auth, &ctx, &spec, None, &values, Errors(e), false),
            ))
        }
        Err(e) => Err(auth.refused(&state, &ctx, e, format!("create in table:{}", t.id)).await),
    }
}

pub async fn edit_record(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path((tid, rid)): Path<(String, String)>,
    Query(query): Query<Vec<(String, String)>>,
) -> AppResult<Response> {
    let open = auth.open_table(&state, &ctx, &tid).await?;
    let id = auth.record_id(&state, &ctx, &rid).await?;
    Ok(render(&shown_record(&state, &ctx, &auth, &open, id, &query).await?))
}

/// The record page of record `id` as it is now: its form (read-only where the user may not
/// edit it), when and by whom it was made and last changed, its delete form where allowed.
async fn shown_record(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    open: &OpenTable,
    id: i64,
    query: &[(String, String)],
) -> AppResult<RecordPage> {
    let (state, ctx, auth) = (state.clone(), ctx.clone(), auth.clone());
    let view = auth.table_right::<View>(&state, &ctx, open).await?;
    let t = open.seen_by(&view);
    let r = auth.record(&state, &ctx, &view, &open.def, id).await?;
    // Whether this record may be edited or deleted (rights and row rules); the page shows the
    // form read-only otherwise.
    // The store judges the rows on the whole record: `r` lacks the fields view hides, which a
    // row rule may name.
    let edit = auth.principal.authorize_table::<Edit>(&open.access).ok();
    let covered = |scope: Option<daicho_domain::access::TableScope<View>>| {
        let (state, def, id) = (&state, &open.def, r.id);
        async move {
            match scope {
                None => Ok(false),
                Some(s) => match state.store.get_record(&s, def, id).await {
                    Ok(_) => Ok(true),
                    Err(daicho_store::StoreError::NotFound) => Ok(false),
                    Err(e) => Err(AppError::from(e)),
                },
            }
        }
    };
    let can_save = covered(edit.as_ref().map(|e| e.reading())).await?;
    let can_delete = covered(auth.principal.authorize_table::<Delete>(&open.access).ok().map(|d| d.reading())).await?;
    // A field is offered for writing where a group covering this record lets it be written
    // (judged here when the record, as view shows it, holds the fields the rules name; else
    // as the right allows, and the store judges the stored record).
    let cell = |f: FieldId| r.cells.iter().find(|(id, _)| *id == f).map(|(_, c)| c.clone());
    let writes = |f| {
        can_save
            && edit.as_ref().is_some_and(|e| {
                if e.rule_fields().iter().all(|rf| cell(*rf).is_some()) {
                    e.writes_on(f, &r.created_by, cell)
                } else {
                    e.writes_everywhere(f)
                }
            })
    };
    let values = values_of(&t, &r, auth.tenant.policy.utc_offset_minutes);
    let spec = FormSpec { can_save, can_delete, ..form_spec(&state, &ctx, &auth, &t, &writes, &values).await? };
    // The system fields: when and by whom the record was created and last updated.
    let people = auth.directory(&state, &ctx).await?;
    let mut page = record_page(&auth, &ctx, &spec, Some((r.id, r.version)), &values, Errors::default(), false);
    let who =
        |id: &str| people.iter().find(|p| p.id.to_string() == id).map(Person::label).unwrap_or_else(|| id.to_owned());
    page.meta = Some((
        crate::views::fmt_time(r.created_at, auth.tenant.policy.utc_offset_minutes),
        who(&r.created_by),
        crate::views::fmt_time(r.updated_at, auth.tenant.policy.utc_offset_minutes),
        who(&r.updated_by),
    ));
    page.from = from_of(query);
    Ok(page)
}

pub async fn update_record(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path((tid, rid)): Path<(String, String)>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let open = auth.open_table(&state, &ctx, &tid).await?;
    let view = auth.table_right::<View>(&state, &ctx, &open).await?;
    let scope = auth.table_right::<Edit>(&state, &ctx, &open).await?;
    let t = open.seen_by(&scope);
    let id = auth.record_id(&state, &ctx, &rid).await?;
    let version = pairs.iter().find(|(k, _)| k == "version").and_then(|(_, v)| v.parse::<i64>().ok()).unwrap_or(0);
    let old = auth.record(&state, &ctx, &view, &open.def, id).await?;
    // As the form offered them: the fields a group covering this record lets be written.
    let cell = |f: FieldId| old.cells.iter().find(|(id, _)| *id == f).map(|(_, c)| c.clone());
    let judged = scope.rule_fields().iter().all(|rf| cell(*rf).is_some());
    // A record view shows but edit's rows do not cover: refused as the API refuses it.
    if judged && !scope.covers(&old.created_by, cell) {
        return Err(auth
            .refused(&state, &ctx, AppError::Forbidden, format!("edit of table:{} record:{id}", t.id))
            .await);
    }
    let writes = |f| if judged { scope.writes_on(f, &old.created_by, cell) } else { scope.writes_everywhere(f) };
    let stored_some = |f: FieldId| cell(f).is_some_and(|c| !matches!(c, daicho_domain::table::Cell::Null));
    let mut values = form_values(&t, &pairs, &writes, &stored_some);
    // The form sends every field it showed: a value sent back as it is stored is not a change,
    // and is not checked again (a value stored under an older, wider rule stays editable
    // around).
    let offset = form_offset(&pairs, &auth);
    let stored = values_of(&t, &old, offset);
    values.retain(|k, v| {
        if stored.get(k) == Some(v) {
            return false;
        }
        // (The form sends text: "100" for a stored 100, "on" for a ticked box, a text area's
        // line breaks as LF whatever the stored text holds.)
        let Some(f) = t.fields.iter().find(|f| f.id.to_string() == *k) else { return true };
        let lf = |c: daicho_domain::table::Cell| match c {
            daicho_domain::table::Cell::Text(s) => daicho_domain::table::Cell::Text(s.replace("\r\n", "\n")),
            c => c,
        };
        // (A link as the form shows it, "#12 株式会社テスト", is record 12.)
        let v = match v.as_str().and_then(crate::handlers::tables::link_number) {
            Some(n) if matches!(f.kind, FieldKind::Link { .. }) => &Value::String(n.to_string()),
            _ => v,
        };
        crate::handlers::tables::parse_at(f, v, offset)
            .map_or(true, |c| lf(c) != lf(cell(f.id).unwrap_or(daicho_domain::table::Cell::Null)))
    });
    // Back to the grid as it was left (search, filters, sort, view, page).
    let from = from_of(&pairs);
    let sep = if from.is_empty() { "" } else { "&" };
    // Only what the form holds is written (`form_values` sets every field it showed).
    let (resolved, link_errs) = crate::handlers::tables::with_link_ids(&state, &ctx, &auth, &t, &values).await?;
    let parsed = parse_values(&t, &resolved, false, &writes, offset);
    let parsed = crate::handlers::tables::with_errors(parsed, link_errs);
    let result = match auth.noting_refusal(&state, &ctx, &open, &t, parsed).await {
        // A form with nothing to write (nothing changed, or every field it showed is gone):
        // nothing to save.
        Ok(cells) if cells.is_empty() => {
            return Ok(redirect_see_other(&format!("/tables/{}?{from}{sep}done=record_saved", t.id)));
        }
        Err(e) => Err(e),
        Ok(cells) => match check_refs(&state, &ctx, &auth, &t, &[&changed(&cells, &old)]).await {
            Err(e) => Err(e),
            Ok(()) => {
                let ev = ctx
                    .event_by(&auth.principal, AuditAction::RecordUpdate, Outcome::Success)
                    .target(format!("table:{} record:{id}", t.id))
                    .details(describe(&t, &cells, Some(&old)));
                let r = state.store.update_record(&scope, &open.def, id, version, cells, ctx.now, ev).await;
                auth.noting_judged(&state, &ctx, format!("edit of table:{} record:{id}", t.id), r).await
            }
        },
    };
    match result {
        Ok(_) => Ok(redirect_see_other(&format!("/tables/{}?{from}{sep}done=record_saved", t.id))),
        Err(AppError::Invalid(e) | AppError::Conflict(e)) => {
            let stale = e.code_for("version") == Some("stale");
            let spec = form_spec(&state, &ctx, &auth, &t, &writes, &values).await?;
            // Read-only fields show their stored values.
            let mut shown = values_of(&t, &old, auth.tenant.policy.utc_offset_minutes);
            shown.extend(
                values.into_iter().filter(|(k, _)| t.fields.iter().any(|f| f.id.to_string() == *k && writes(f.id))),
            );
            let mut page = record_page(&auth, &ctx, &spec, Some((id, version)), &shown, Errors(e), stale);
            page.from = from;
            Ok(render_status(if stale { StatusCode::CONFLICT } else { StatusCode::UNPROCESSABLE_ENTITY }, &page))
        }
        Err(e) => Err(auth.refused(&state, &ctx, e, format!("edit of table:{} record:{id}", t.id)).await),
    }
}

pub struct HistoryRow {
    pub at: String,
    pub who: String,
    pub version: i64,
    pub changes: Vec<(String, String, String)>,
}

#[derive(Template)]
#[template(path = "tables/history.html")]
struct HistoryPage {
    p: Page,
    table_id: String,
    table_name: String,
    record_id: i64,
    created_at: String,
    created_by: String,
    entries: Vec<HistoryRow>,
    /// Whether older changes were left out (`history_cut`).
    cut: bool,
}

/// `r` without its values, to carry others (the history's link values to look up).
fn bare(r: &daicho_store::Record) -> daicho_store::Record {
    daicho_store::Record {
        id: r.id,
        version: r.version,
        created_at: r.created_at,
        created_by: r.created_by.clone(),
        updated_at: r.updated_at,
        updated_by: r.updated_by.clone(),
        cells: Vec::new(),
    }
}

/// Whether a history was given whole: the store says whether older entries exist than those
/// it read (`older_left`), so a history of exactly the most it reads is whole, and one whose
/// entries went with a deleted field is not taken for cut.
pub(crate) fn history_cut(h: &daicho_store::RecordHistory) -> bool {
    h.older_left
}

pub async fn record_history(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path((tid, rid)): Path<(String, String)>,
) -> AppResult<Response> {
    let open = auth.open_table(&state, &ctx, &tid).await?;
    let view = auth.table_right::<View>(&state, &ctx, &open).await?;
    let t = open.seen_by(&view);
    let id = auth.record_id(&state, &ctx, &rid).await?;
    let r = auth.record(&state, &ctx, &view, &open.def, id).await?;
    let history = state.store.record_history(&view, &open.def, id).await?;
    let entries = &history.entries;
    let users = auth.directory(&state, &ctx).await?;
    let name_of =
        |uid: &str| users.iter().find(|p| p.id.to_string() == uid).map(Person::label).unwrap_or_else(|| uid.to_owned());
    let field = |f: FieldId| t.fields.iter().find(|d| d.id == f);
    // Link values show their linked record as the reader may see it.
    // (Only link values, each in a bare record: a copy of the whole record for every value
    // changed cost its size a thousand times over.)
    let is_link = |f: &FieldId| field(*f).is_some_and(|d| matches!(d.kind, FieldKind::Link { .. }));
    let base = bare(&r);
    let pseudo: Vec<daicho_store::Record> = entries
        .iter()
        .flat_map(|e| e.changes.iter())
        .filter(|(f, _, _)| is_link(f))
        .flat_map(|(f, b, a)| [(*f, b.clone()), (*f, a.clone())])
        .map(|cell| daicho_store::Record { cells: vec![cell], ..base.clone() })
        .collect();
    let links = lookups(&state, &ctx, &auth, &t, &pseudo, Some(auth.tenant.policy.utc_offset_minutes)).await?;
    let shown_h = |d: &FieldDef, c: &daicho_domain::table::Cell| match (c, &d.kind) {
        (daicho_domain::table::Cell::Int(n), FieldKind::Link { .. }) => {
            links.get(&(d.id, *n)).map(|l| format!("#{n} {l}")).unwrap_or_else(|| format!("#{n}"))
        }
        _ => shown(d, c, &users, auth.tenant.policy.utc_offset_minutes),
    };
    let cut = history_cut(&history);
    Ok(render(&HistoryPage {
        cut,
        p: Page::for_user(&auth, "history.title", "tables", &ctx.request_id)
            .about(&format!("{} #{id}", t.name.as_str())),
        table_id: t.id.to_string(),
        table_name: t.name.as_str().to_owned(),
        record_id: id,
        created_at: crate::views::fmt_time(r.created_at, auth.tenant.policy.utc_offset_minutes),
        created_by: name_of(&r.created_by),
        entries: entries
            .iter()
            .map(|e| HistoryRow {
                at: crate::views::fmt_time(e.at, auth.tenant.policy.utc_offset_minutes),
                // Named as the record's maker is: "name (login ID)".
                // (By id: a login ID freed by a deleted user may be someone else's now. Entries
                // written before the id was kept are named by their login ID.)
                who: users
                    .iter()
                    .find(|p| match &e.actor_id {
                        Some(id) => p.id.to_string() == *id,
                        None => p.login.as_str() == e.actor_login,
                    })
                    .map(Person::label)
                    .unwrap_or_else(|| match e.actor_id {
                        Some(_) => format!("{} ({})", e.actor_login, crate::i18n::t(auth.lang, "history.deleted_user")),
                        None => e.actor_login.clone(),
                    }),
                version: e.version,
                changes: e
                    .changes
                    .iter()
                    .filter_map(|(f, b, a)| {
                        field(*f).map(|d| (d.name.as_str().to_owned(), shown_h(d, b), shown_h(d, a)))
                    })
                    .collect(),
            })
            .collect(),
    }))
}

#[derive(Debug, Default, Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    pub confirm: String,
    /// The record's version the page showed: a record changed since is not deleted.
    #[serde(default)]
    pub version: Option<String>,
}

pub async fn delete_record(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path((tid, rid)): Path<(String, String)>,
    Form(f): Form<ConfirmForm>,
) -> AppResult<Response> {
    let open = auth.open_table(&state, &ctx, &tid).await?;
    let view = auth.table_right::<View>(&state, &ctx, &open).await?;
    let scope = auth.table_right::<Delete>(&state, &ctx, &open).await?;
    let t = &open.def;
    let id = auth.record_id(&state, &ctx, &rid).await?;
    if f.confirm != "yes" {
        return Err(AppError::Invalid(FieldErrors::single("confirm", "confirm_required")));
    }
    let expected = match f.version.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => Some(v.parse::<i64>().map_err(|_| AppError::Invalid(FieldErrors::single("version", "stale")))?),
    };
    auth.record(&state, &ctx, &view, t, id).await?;
    let ev = |old: &daicho_store::Record| {
        ctx.event_by(&auth.principal, AuditAction::RecordDelete, Outcome::Success)
            .target(format!("table:{} record:{id}", t.id))
            .details(describe(t, &old.cells, None))
    };
    match state.store.delete_record(&scope, t, id, expected, &ev).await {
        Ok(()) => {}
        // Changed since the page showed it: the page shows it as it is now, and says so.
        Err(daicho_store::StoreError::Conflict(e)) if e.code_for("version") == Some("stale") => {
            let mut page = shown_record(&state, &ctx, &auth, &open, id, &[]).await?;
            page.notice = Some("delete_stale");
            return Ok(render_status(StatusCode::CONFLICT, &page));
        }
        Err(e) => {
            return Err(auth.refused(&state, &ctx, e.into(), format!("delete of table:{} record:{id}", t.id)).await);
        }
    }
    Ok(redirect_see_other(&format!("/tables/{}?done=record_deleted", t.id)))
}

#[derive(Template)]
#[template(path = "tables/import.html")]
struct ImportPage {
    p: Page,
    table_id: String,
    table_name: String,
    keys: Vec<(String, String)>,
    problems: Vec<(String, String)>,
    max_mib: usize,
}

fn import_page(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    open: &OpenTable,
    t: &TableDef,
    problems: Vec<(String, String)>,
) -> ImportPage {
    // The keys an update may use: unique fields and record numbers the importer may view (an
    // update finds its records by reading them); none without view and edit.
    let view = auth
        .principal
        .authorize_table::<View>(&open.access)
        .ok()
        .filter(|_| auth.principal.authorize_table::<Edit>(&open.access).is_ok());
    ImportPage {
        p: Page::for_user(auth, "import.title", "tables", &ctx.request_id).about(t.name.as_str()),
        table_id: t.id.to_string(),
        table_name: t.name.as_str().to_owned(),
        keys: t
            .fields
            .iter()
            .filter(|f| (f.rules.unique || f.kind.is_generated()) && view.as_ref().is_some_and(|v| v.sees(f.id)))
            .map(|f| (f.id.to_string(), f.name.as_str().to_owned()))
            .collect(),
        problems,
        // The whole upload's limit, in MiB as enforced (whole MiB shown rounded down).
        max_mib: state.settings.body_limit_for(&format!("/tables/{}/import", t.id)) / (1024 * 1024),
    }
}

pub async fn import_form(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(tid): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> AppResult<Response> {
    let open = auth.open_table(&state, &ctx, &tid).await?;
    let scope = auth.table_right::<Import>(&state, &ctx, &open).await?;
    let mut page = import_page(&state, &ctx, &auth, &open, &open.seen_by(&scope), Vec::new());
    page.p = imported(&ctx, page.p, &pairs);
    Ok(render(&page))
}

/// A page told that an import was written (`done=imported`), with its counts.
pub(crate) fn imported(ctx: &Ctx, p: Page, pairs: &[(String, String)]) -> Page {
    let get = |k: &str| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let done = get("done");
    let mut p = p.with_flash(ctx, done);
    // (Counts only with the notice: not for an address opened from elsewhere.)
    let shown = p.flash.is_some();
    let count = |k: &str| get(k).filter(|_| shown).and_then(|v| v.parse::<u64>().ok());
    if done == Some("imported")
        && let (Some(inserted), Some(updated)) = (count("inserted"), count("updated"))
    {
        let mut detail = crate::i18n::t(p.lang, "flash.import_counts")
            .replace("{inserted}", &grouped(inserted))
            .replace("{updated}", &grouped(updated));
        if let Some(n) = count("unchanged").filter(|n| *n > 0) {
            detail.push(' ');
            detail.push_str(&crate::i18n::t(p.lang, "flash.import_unchanged").replace("{unchanged}", &grouped(n)));
        }
        if let Some(n) = count("not_written").filter(|n| *n > 0) {
            detail.push(' ');
            detail.push_str(&crate::i18n::t(p.lang, "flash.import_not_written").replace("{n}", &grouped(n)));
        }
        p.flash_detail = Some(detail);
    }
    // A bulk action says how many records it changed.
    if matches!(done, Some("bulk_updated" | "bulk_deleted"))
        && let Some(n) = count("n")
    {
        p.flash_detail = Some(crate::i18n::t(p.lang, "flash.bulk_count").replace("{n}", &grouped(n)));
    }
    // A required field added to records: how many hold no value in it yet.
    if done == Some("field_added")
        && let Some(n) = count("n")
    {
        // (Exactly the cap is a count; "+" only where counting stopped there.)
        let shown = if count("more") == Some(1) { format!("{}+", grouped(n)) } else { grouped(n) };
        p.flash_detail = Some(crate::i18n::t(p.lang, "flash.required_empty").replace("{n}", &shown));
    }
    p
}

/// The rule an import's value broke, when its message alone does not say it: " (at most
/// 100)", " (A, B, C)" for a choice; empty otherwise. `field` as the import names it
/// (`row:4:<field id>`).
fn limit_of(t: &TableDef, field: &str, code: &str, lang: daicho_domain::Lang) -> String {
    let Some(f) = field.rsplit(':').next().and_then(|id| t.fields.iter().find(|f| f.id.to_string() == id)) else {
        return String::new();
    };
    let tr = |k| crate::i18n::t(lang, k);
    let (label, value) = match code {
        "above_max" => (tr("limit.max"), f.rules.max.clone()),
        "below_min" => (tr("limit.min"), f.rules.min.clone()),
        "too_long" => (tr("limit.max_length"), f.rules.max_length.map(|n| n.to_string())),
        "choice" => match &f.kind {
            FieldKind::Choice { choices } | FieldKind::MultiChoice { choices } => {
                let mut shown: Vec<&str> = choices.iter().take(10).map(String::as_str).collect();
                if choices.len() > 10 {
                    shown.push("…");
                }
                ("", Some(shown.join(tr("list.sep"))))
            }
            _ => return String::new(),
        },
        _ => return String::new(),
    };
    match value {
        Some(v) if label.is_empty() => format!(" ({v})"),
        Some(v) => format!(" ({label} {v})"),
        None => String::new(),
    }
}

/// "row 3, 従業員数" for an import error's location.
fn where_of(t: &TableDef, field: &str, lang: daicho_domain::Lang) -> String {
    let mut parts = field.splitn(3, ':');
    let (_, row, rest) = (parts.next(), parts.next(), parts.next());
    let name = rest.map(|r| {
        t.fields
            .iter()
            .find(|f| f.id.to_string() == r)
            .map(|f| f.name.as_str().to_owned())
            .unwrap_or_else(|| r.to_owned())
    });
    match (row, name) {
        (Some(r), Some(n)) => crate::i18n::t(lang, "import.at_row_field").replace("{r}", r).replace("{f}", &n),
        (Some(r), None) => crate::i18n::t(lang, "import.at_row").replace("{r}", r),
        _ if field == "mapping" => crate::i18n::t(lang, "import.columns").to_owned(),
        // A field of no one row (a value the database already holds, for a unique field).
        _ => t.fields.iter().find(|f| f.id.to_string() == field).map(|f| f.name.as_str().to_owned()).unwrap_or_else(
            || match field {
                // (A system field by its column: "updated_at" as "更新日時 Updated at".)
                f if daicho_domain::table::system_fields()
                    .iter()
                    .any(|s| daicho_domain::table::system_column(s.id) == Some(f)) =>
                {
                    daicho_domain::table::system_fields()
                        .into_iter()
                        .find(|s| daicho_domain::table::system_column(s.id) == Some(f))
                        .map(|s| s.name.as_str().to_owned())
                        .unwrap_or_default()
                }
                "file" => crate::i18n::t(lang, "import.file").to_owned(),
                "key" => crate::i18n::t(lang, "import.key").to_owned(),
                _ => field.to_owned(),
            },
        ),
    }
}

/// How long a file waits for the mapping of its columns (see `Store::stage_import`; the
/// "imports.purge" job removes it after this).
const STAGED_FOR: time::Duration = time::Duration::hours(1);

/// One column of an uploaded file on the mapping page.
pub struct MapColumn {
    pub header: String,
    /// The column's values in the file's first rows.
    pub examples: Vec<String>,
    /// The field chosen (its id), or empty to leave the column out.
    pub chosen: String,
}

#[derive(Template)]
#[template(path = "tables/import_map.html")]
struct ImportMapPage {
    p: Page,
    table_id: String,
    table_name: String,
    staged: String,
    encoding: String,
    key: String,
    key_name: String,
    columns: Vec<MapColumn>,
    /// (id, name) of the fields a column may go to.
    fields: Vec<(String, String)>,
    problems: Vec<(String, String)>,
}

/// The page where the columns of a staged file are mapped to fields: each column preselects
/// the field its header names, or what the user chose before.
#[allow(clippy::too_many_arguments)]
fn import_map_page(
    ctx: &Ctx,
    auth: &Auth,
    t: &TableDef,
    staged: &str,
    (encoding, key): (&str, &str),
    preview: (Vec<String>, Vec<Vec<String>>),
    chosen: &[String],
    problems: Vec<(String, String)>,
) -> ImportMapPage {
    let (headers, rows) = preview;
    let named = |h: &str| crate::handlers::tables::header_field(t, h).map(|f| f.id.to_string()).unwrap_or_default();
    ImportMapPage {
        p: Page::for_user(auth, "import.map_title", "tables", &ctx.request_id),
        table_id: t.id.to_string(),
        table_name: t.name.as_str().to_owned(),
        staged: staged.to_owned(),
        encoding: encoding.to_owned(),
        key: key.to_owned(),
        key_name: t
            .fields
            .iter()
            .find(|f| f.id.to_string() == key)
            .map(|f| f.name.as_str().to_owned())
            .unwrap_or_default(),
        columns: headers
            .iter()
            .enumerate()
            .map(|(i, h)| MapColumn {
                // (Shown cut, as the examples are: the page does not grow with the file.)
                header: if h.chars().count() > 100 {
                    format!("{}…", h.chars().take(100).collect::<String>())
                } else {
                    h.clone()
                },
                examples: rows.iter().filter_map(|r| r.get(i)).filter(|v| !v.is_empty()).cloned().collect(),
                chosen: if chosen.len() == headers.len() { chosen[i].clone() } else { named(h) },
            })
            .collect(),
        fields: t
            .fields
            .iter()
            // A record number is never written, but it is what finds the records to update
            // when it is the key: offered then.
            .filter(|f| !f.kind.is_generated() || f.id.to_string() == key)
            .map(|f| (f.id.to_string(), f.name.as_str().to_owned()))
            // The system fields an export holds are read, never written: "updated at" keeps
            // an import from undoing an edit made after the export.
            .chain(daicho_domain::table::system_fields().into_iter().map(|f| {
                (
                    f.id.to_string(),
                    format!("{} {}", f.name.as_str(), crate::i18n::t(auth.lang, "import.read_not_written")),
                )
            }))
            .collect(),
        problems,
    }
}

pub async fn import_upload(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(tid): Path<String>,
    req: axum::extract::Request,
) -> AppResult<Response> {
    let open = auth.open_table(&state, &ctx, &tid).await?;
    let scope = auth.table_right::<Import>(&state, &ctx, &open).await?;
    let t = open.seen_by(&scope);
    // Parsed only after the capability check, like every body.
    let mut form = <axum::extract::Multipart as axum::extract::FromRequest<()>>::from_request(req, &())
        .await
        .map_err(|_| AppError::BadRequest("bad_multipart"))?;
    let (mut file, mut encoding, mut key) = (Vec::new(), String::new(), String::new());
    // The second step: the staged file's id and, per column, the field chosen (or nothing).
    let (mut staged, mut chosen) = (String::new(), Vec::new());
    while let Some(field) = form.next_field().await.map_err(|_| AppError::BadRequest("bad_multipart"))? {
        match field.name() {
            Some("file") => file = field.bytes().await.map_err(|_| AppError::PayloadTooLarge)?.to_vec(),
            Some("encoding") => encoding = field.text().await.unwrap_or_default(),
            Some("key") => key = field.text().await.unwrap_or_default(),
            Some("staged") => staged = field.text().await.unwrap_or_default(),
            Some("col") => chosen.push(field.text().await.unwrap_or_default()),
            _ => {}
        }
    }
    let problems_of = |e: FieldErrors| -> Vec<(String, String)> {
        e.0.iter()
            .map(|fe| {
                let message = crate::i18n::error_message(auth.lang, fe.code);
                (
                    where_of(&t, &fe.field, auth.lang),
                    format!("{message}{}", limit_of(&t, &fe.field, fe.code, auth.lang)),
                )
            })
            .collect()
    };
    if staged.is_empty() {
        // A file whose headers do not all name fields goes to the mapping of its columns first,
        // kept in the database meanwhile. (A file that does not decode is reported below.)
        if let Some((headers, rows)) = crate::handlers::tables::csv_preview(&file, &encoding)
            && !headers.iter().all(|h| crate::handlers::tables::header_field(&t, h).is_some())
        {
            // Time-ordered, so that the oldest of a user's waiting files is known (they go first,
            // `STAGED_PER_USER`); only its uploader may use it, for this table.
            let id = uuid::Uuid::now_v7().simple().to_string();
            // Recorded: the file (the tenant's data) stays in the database until it is imported,
            // replaced or expires.
            let ev = ctx
                .event_by(&auth.principal, AuditAction::ImportStaged, Outcome::Success)
                .target(format!("table:{}", t.id))
                .details(format!(
                    "staged={id}; bytes={}; columns={}; encoding={}",
                    file.len(),
                    headers.len(),
                    encoding.chars().take(20).collect::<String>()
                ));
            state.store.stage_import(&scope, &id, &file, ctx.now, ev).await?;
            let page = import_map_page(&ctx, &auth, &t, &id, (&encoding, &key), (headers, rows), &[], Vec::new());
            return Ok(render(&page));
        }
    } else {
        file = match state.store.staged_import(&scope, &staged, ctx.now - STAGED_FOR).await {
            Ok(f) => f,
            Err(daicho_store::StoreError::NotFound) => {
                let problems = problems_of(FieldErrors::single("file", "staged_expired"));
                return Ok(render_status(StatusCode::GONE, &import_page(&state, &ctx, &auth, &open, &t, problems)));
            }
            Err(e) => return Err(e.into()),
        };
    }
    let mapping = (!staged.is_empty()).then_some(chosen.as_slice());
    // (The staged file is taken in the import's transaction: posted twice, the form imports
    // it once, and the second post is told so.)
    let from = (!staged.is_empty()).then_some(staged.as_str());
    let result = crate::handlers::tables::import_csv(
        &state,
        &ctx,
        &auth,
        &open,
        &file,
        &encoding,
        Some(key.as_str()),
        mapping,
        from,
    )
    .await;
    match result {
        // (Someone who may import but not view comes back to the import page, told so there.)
        Ok(done) => {
            let page = if open.access.has(TableRight::View) { "" } else { "/import" };
            Ok(redirect_see_other(&format!(
                "/tables/{}{page}?done=imported&inserted={}&updated={}&unchanged={}&not_written={}",
                t.id,
                done.inserted,
                done.updated,
                done.unchanged,
                done.not_written.len()
            )))
        }
        // Imported already, by the same form posted twice: the file is gone, and nothing more
        // was written.
        Err(AppError::Conflict(e)) if e.0.iter().any(|f| f.code == "staged_taken") => {
            let page = import_page(&state, &ctx, &auth, &open, &t, problems_of(e));
            Ok(render_status(StatusCode::CONFLICT, &page))
        }
        // The staged file stays for another try at its mapping (or until it expires).
        Err(AppError::Invalid(e) | AppError::Conflict(e)) if !staged.is_empty() => {
            let preview = crate::handlers::tables::csv_preview(&file, &encoding).unwrap_or_default();
            let page = import_map_page(&ctx, &auth, &t, &staged, (&encoding, &key), preview, &chosen, problems_of(e));
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(AppError::Invalid(e) | AppError::Conflict(e)) => {
            let page = import_page(&state, &ctx, &auth, &open, &t, problems_of(e));
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(e) => Err(e),
    }
}
