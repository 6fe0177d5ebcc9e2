//! Pages for user tables: the list, a table's grid with the field designer, and the record
//! form. They call the same store operations and domain validation as the JSON API.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use daicho_domain::table::{FieldDef, FieldKind, FieldRules, Name, RecordQuery, TableDef, check_field_count};
use daicho_domain::{AuditAction, FieldErrors, FieldId, ManageDesign, ManageTableData, Outcome, TableId};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::ctx::{Ctx, EventExt};
use crate::error::{AppError, AppResult};
use crate::handlers::tables::{cursor_after, describe, parse_values, record_query};
use crate::middleware::redirect_see_other;
use crate::session::Auth;
use crate::state::AppState;
use crate::views::{Errors, Page, render, render_status};

fn table_id(raw: &str) -> AppResult<TableId> {
    raw.parse().map_err(|_| AppError::NotFound)
}

fn record_id(raw: &str) -> AppResult<i64> {
    raw.parse::<i64>().ok().filter(|n| *n > 0).ok_or(AppError::NotFound)
}

pub struct TableRow {
    pub id: String,
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
}

#[derive(Debug, Default, Deserialize)]
pub struct NewTableForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
}

async fn list_page(state: &AppState, ctx: &Ctx, auth: &Auth, errors: Errors, f: NewTableForm) -> AppResult<ListPage> {
    let scope = auth.authorize::<ManageTableData>(state, ctx).await?;
    let tables = state.store.list_tables(&scope).await?;
    Ok(ListPage {
        p: Page::for_user(auth, "tables.title", "tables", &ctx.request_id),
        tables: tables
            .iter()
            .map(|t| TableRow {
                id: t.id.to_string(),
                name: t.name.as_str().to_owned(),
                description: t.description.clone(),
                fields: t.fields.len(),
            })
            .collect(),
        errors,
        name: f.name,
        description: f.description,
    })
}

pub async fn list_tables(State(state): State<AppState>, ctx: Ctx, auth: Auth) -> AppResult<Response> {
    let _scope = auth.authorize::<ManageTableData>(&state, &ctx).await?;
    Ok(render(&list_page(&state, &ctx, &auth, Errors::default(), NewTableForm::default()).await?))
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
    if f.description.chars().count() > 2000 {
        errs.push("description", "too_long");
    }
    let result = match name.filter(|_| errs.is_empty()) {
        None => Err(AppError::Invalid(errs)),
        Some(name) => {
            let id = TableId::new_random();
            let ev = ctx
                .event_by(&auth.principal, AuditAction::TableCreate, Outcome::Success)
                .target(format!("table:{id}"))
                .details(format!("name={}", name.as_str()));
            state.store.create_table(&scope, id, name, f.description.clone(), ctx.now, ev).await.map_err(AppError::from)
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

pub struct GridRow {
    pub id: i64,
    pub cells: Vec<String>,
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
    rows: Vec<GridRow>,
    older: Option<String>,
    keyword: String,
    sort: String,
    dir: String,
    query_error: Option<&'static str>,
    sort_options: Vec<(String, String)>,
    export_query: String,
    kinds: Vec<(&'static str, &'static str)>,
    errors: Errors,
    f_name: String,
    f_kind: String,
    f_choices: String,
    f_scale: String,
    f_required: bool,
    f_unique: bool,
}

fn display(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
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
    ("email", "kind.email"),
    ("url", "kind.url"),
];

async fn show_page(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    t: &TableDef,
    pairs: &[(String, String)],
    errors: Errors,
    f: NewFieldForm,
) -> AppResult<ShowPage> {
    let scope = auth.authorize::<ManageTableData>(state, ctx).await?;
    let (query, query_error) = match record_query(t, pairs) {
        Ok(q) => (q, None),
        Err(AppError::Invalid(e)) => (RecordQuery::default(), e.0.first().map(|fe| fe.code)),
        Err(e) => return Err(e),
    };
    let records = state.store.list_records(&scope, t, &query).await?;
    let done = pairs.iter().find(|(k, _)| k == "done").map(|(_, v)| v.as_str());
    let keep = |k: &str| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let (keyword, sort, dir) = (keep("q"), keep("sort"), keep("dir"));
    let base_query = {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [("q", &keyword), ("sort", &sort), ("dir", &dir)] {
            if !v.is_empty() {
                s.append_pair(k, v);
            }
        }
        s.finish()
    };
    let rows = records
        .iter()
        .map(|r| GridRow {
            id: r.id,
            cells: t
                .fields
                .iter()
                .map(|f| {
                    r.cells.iter().find(|(id, _)| *id == f.id).map(|(_, c)| display(&f.present(c))).unwrap_or_default()
                })
                .collect(),
        })
        .collect();
    Ok(ShowPage {
        p: Page::for_user(auth, "tables.title", "tables", &ctx.request_id).with_flash(done),
        id: t.id.to_string(),
        name: t.name.as_str().to_owned(),
        description: t.description.clone(),
        has_fields: !t.fields.is_empty(),
        headers: t.fields.iter().map(|f| f.name.as_str().to_owned()).collect(),
        older: (records.len() == query.limit as usize)
            .then(|| records.last().map(|r| format!("{base_query}&after={}", cursor_after(&query, r))))
            .flatten(),
        export_query: base_query.clone(),
        keyword,
        sort,
        dir,
        query_error,
        sort_options: t.fields.iter().map(|f| (f.id.to_string(), f.name.as_str().to_owned())).collect(),
        rows,
        kinds: KINDS.to_vec(),
        errors,
        f_kind: if f.kind.is_empty() { "text".into() } else { f.kind },
        f_name: f.name,
        f_choices: f.choices,
        f_scale: if f.scale.is_empty() { "0".into() } else { f.scale },
        f_required: f.required.is_some(),
        f_unique: f.unique.is_some(),
    })
}

pub async fn show_table(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(tid): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> AppResult<Response> {
    let scope = auth.authorize::<ManageTableData>(&state, &ctx).await?;
    let t = state.store.table(&scope, table_id(&tid)?).await?;
    Ok(render(&show_page(&state, &ctx, &auth, &t, &pairs, Errors::default(), NewFieldForm::default()).await?))
}

fn field_from_form(f: &NewFieldForm) -> Result<(Name, FieldKind, FieldRules), FieldErrors> {
    let mut errs = FieldErrors::new();
    let name = Name::parse(&f.name).map_err(|c| errs.push("name", c)).ok();
    let kind = match f.kind.as_str() {
        "text" => Some(FieldKind::Text),
        "multiline" => Some(FieldKind::Multiline),
        "integer" => Some(FieldKind::Integer),
        "decimal" => match f.scale.trim().parse::<u8>() {
            Ok(scale) => Some(FieldKind::Decimal { scale }),
            Err(_) => {
                errs.push("scale", "not_a_number");
                None
            }
        },
        "date" => Some(FieldKind::Date),
        "date_time" => Some(FieldKind::DateTime),
        "checkbox" => Some(FieldKind::Checkbox),
        "choice" => Some(FieldKind::Choice {
            choices: f.choices.lines().map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned).collect(),
        }),
        "email" => Some(FieldKind::Email),
        "url" => Some(FieldKind::Url),
        _ => {
            errs.push("kind", "choice");
            None
        }
    };
    let rules = FieldRules { required: f.required.is_some(), unique: f.unique.is_some(), ..Default::default() };
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
    let scope = auth.authorize::<ManageDesign>(&state, &ctx).await?;
    let data = auth.authorize::<ManageTableData>(&state, &ctx).await?;
    let t = state.store.table(&data, table_id(&tid)?).await?;
    let parsed = check_field_count(t.fields.len()).and_then(|()| field_from_form(&f));
    let result = match parsed {
        Err(e) => Err(AppError::Invalid(e)),
        Ok((name, kind, rules)) => {
            let field = FieldDef { id: FieldId::new_random(), name, kind, rules, position: 0 };
            let ev = ctx
                .event_by(&auth.principal, AuditAction::FieldCreate, Outcome::Success)
                .target(format!("table:{} field:{}", t.id, field.id))
                .details(format!("name={}; type={}", field.name.as_str(), field.kind.name()));
            state.store.add_field(&scope, t.id, field, ev).await.map_err(AppError::from)
        }
    };
    match result {
        Ok(t) => Ok(redirect_see_other(&format!("/tables/{}", t.id))),
        Err(AppError::Invalid(e) | AppError::Conflict(e)) => {
            let page = show_page(&state, &ctx, &auth, &t, &[], Errors(e), f).await?;
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
    pub choices: Vec<String>,
    pub error: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "tables/record.html")]
struct RecordPage {
    p: Page,
    table_id: String,
    table_name: String,
    record_id: Option<i64>,
    action: String,
    version: i64,
    stale: bool,
    errors: Errors,
    fields: Vec<InputField>,
}

/// The record form page, new (`record: None`) or existing.
#[allow(clippy::too_many_arguments)]
fn record_page(
    auth: &Auth,
    ctx: &Ctx,
    t: &TableDef,
    record: Option<i64>,
    version: i64,
    values: &Map<String, Value>,
    errors: Errors,
    stale: bool,
) -> RecordPage {
    let action = match record {
        Some(id) => format!("/tables/{}/records/{id}", t.id),
        None => format!("/tables/{}/records", t.id),
    };
    RecordPage {
        p: Page::for_user(
            auth,
            if record.is_some() { "records.edit" } else { "records.new" },
            "tables",
            &ctx.request_id,
        ),
        table_id: t.id.to_string(),
        table_name: t.name.as_str().to_owned(),
        record_id: record,
        action,
        version,
        stale,
        fields: input_fields(t, values, &errors),
        errors,
    }
}

fn input_fields(t: &TableDef, values: &Map<String, Value>, errors: &Errors) -> Vec<InputField> {
    t.fields
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
                FieldKind::Choice { .. } => ("select", "text", ""),
                FieldKind::Email => ("email", "text", ""),
                FieldKind::Url => ("url", "text", ""),
                FieldKind::Text => ("text", "text", ""),
            };
            InputField {
                value: values.get(&key).map(display_input).unwrap_or_default(),
                error: errors.get(&key),
                key,
                label: f.name.as_str().to_owned(),
                input,
                inputmode,
                hint,
                required: f.rules.required,
                choices: match &f.kind {
                    FieldKind::Choice { choices } => choices.clone(),
                    _ => Vec::new(),
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

/// The submitted form as values keyed by field id; an unticked checkbox is absent from a form,
/// so every checkbox field is set explicitly.
fn form_values(t: &TableDef, pairs: &[(String, String)]) -> Map<String, Value> {
    let mut m = Map::new();
    for f in &t.fields {
        let key = f.id.to_string();
        let v = pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone());
        let value = match f.kind {
            FieldKind::Checkbox => Value::Bool(v.is_some()),
            _ => v.map(Value::String).unwrap_or(Value::Null),
        };
        m.insert(key, value);
    }
    m
}

pub async fn new_record(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(tid): Path<String>,
) -> AppResult<Response> {
    let scope = auth.authorize::<ManageTableData>(&state, &ctx).await?;
    let t = state.store.table(&scope, table_id(&tid)?).await?;
    Ok(render(&record_page(&auth, &ctx, &t, None, 0, &Map::new(), Errors::default(), false)))
}

pub async fn create_record(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(tid): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let scope = auth.authorize::<ManageTableData>(&state, &ctx).await?;
    let t = state.store.table(&scope, table_id(&tid)?).await?;
    let values = form_values(&t, &pairs);
    let result = match parse_values(&t, &values, true) {
        Err(e) => Err(e),
        Ok(cells) => {
            let ev = ctx
                .event_by(&auth.principal, AuditAction::RecordCreate, Outcome::Success)
                .target(format!("table:{}", t.id))
                .details(describe(&t, &cells, None));
            state.store.insert_record(&scope, &t, cells, ctx.now, ev).await.map_err(AppError::from)
        }
    };
    match result {
        Ok(_) => Ok(redirect_see_other(&format!("/tables/{}", t.id))),
        Err(AppError::Invalid(e) | AppError::Conflict(e)) => Ok(render_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &record_page(&auth, &ctx, &t, None, 0, &values, Errors(e), false),
        )),
        Err(e) => Err(e),
    }
}

pub async fn edit_record(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path((tid, rid)): Path<(String, String)>,
) -> AppResult<Response> {
    let scope = auth.authorize::<ManageTableData>(&state, &ctx).await?;
    let t = state.store.table(&scope, table_id(&tid)?).await?;
    let r = state.store.get_record(&scope, &t, record_id(&rid)?).await?;
    let mut values = Map::new();
    for (fid, c) in &r.cells {
        if let Some(f) = t.fields.iter().find(|f| f.id == *fid) {
            values.insert(fid.to_string(), f.present(c));
        }
    }
    Ok(render(&record_page(&auth, &ctx, &t, Some(r.id), r.version, &values, Errors::default(), false)))
}

pub async fn update_record(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path((tid, rid)): Path<(String, String)>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let scope = auth.authorize::<ManageTableData>(&state, &ctx).await?;
    let t = state.store.table(&scope, table_id(&tid)?).await?;
    let id = record_id(&rid)?;
    let version = pairs.iter().find(|(k, _)| k == "version").and_then(|(_, v)| v.parse::<i64>().ok()).unwrap_or(0);
    let values = form_values(&t, &pairs);
    let old = state.store.get_record(&scope, &t, id).await?;
    let result = match parse_values(&t, &values, true) {
        Err(e) => Err(e),
        Ok(cells) => {
            let ev = ctx
                .event_by(&auth.principal, AuditAction::RecordUpdate, Outcome::Success)
                .target(format!("table:{} record:{id}", t.id))
                .details(describe(&t, &cells, Some(&old)));
            state.store.update_record(&scope, &t, id, version, cells, ctx.now, ev).await.map_err(AppError::from)
        }
    };
    match result {
        Ok(_) => Ok(redirect_see_other(&format!("/tables/{}", t.id))),
        Err(AppError::Invalid(e) | AppError::Conflict(e)) => {
            let stale = e.code_for("version") == Some("stale");
            Ok(render_status(
                if stale { StatusCode::CONFLICT } else { StatusCode::UNPROCESSABLE_ENTITY },
                &record_page(&auth, &ctx, &t, Some(id), version, &values, Errors(e), stale),
            ))
        }
        Err(e) => Err(e),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    pub confirm: String,
}

pub async fn delete_record(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path((tid, rid)): Path<(String, String)>,
    Form(f): Form<ConfirmForm>,
) -> AppResult<Response> {
    let scope = auth.authorize::<ManageTableData>(&state, &ctx).await?;
    let t = state.store.table(&scope, table_id(&tid)?).await?;
    let id = record_id(&rid)?;
    if f.confirm != "yes" {
        return Err(AppError::Invalid(FieldErrors::single("confirm", "confirm_required")));
    }
    let old = state.store.get_record(&scope, &t, id).await?;
    let ev = ctx
        .event_by(&auth.principal, AuditAction::RecordDelete, Outcome::Success)
        .target(format!("table:{} record:{id}", t.id))
        .details(describe(&t, &old.cells, None));
    state.store.delete_record(&scope, &t, id, ev).await?;
    Ok(redirect_see_other(&format!("/tables/{}", t.id)))
}

#[derive(Template)]
#[template(path = "tables/import.html")]
struct ImportPage {
    p: Page,
    table_id: String,
    table_name: String,
    keys: Vec<(String, String)>,
    problems: Vec<(String, &'static str)>,
    max_mib: usize,
}

fn import_page(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    t: &TableDef,
    problems: Vec<(String, &'static str)>,
) -> ImportPage {
    ImportPage {
        p: Page::for_user(auth, "import.title", "tables", &ctx.request_id),
        table_id: t.id.to_string(),
        table_name: t.name.as_str().to_owned(),
        keys: t
            .fields
            .iter()
            .filter(|f| f.rules.unique)
            .map(|f| (f.id.to_string(), f.name.as_str().to_owned()))
            .collect(),
        problems,
        max_mib: state.settings.max_import_bytes / (1024 * 1024),
    }
}

pub async fn import_form(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(tid): Path<String>,
) -> AppResult<Response> {
    let scope = auth.authorize::<ManageTableData>(&state, &ctx).await?;
    let t = state.store.table(&scope, table_id(&tid)?).await?;
    Ok(render(&import_page(&state, &ctx, &auth, &t, Vec::new())))
}

/// "row 3, 従業員数" for an import error's location.
fn where_of(t: &TableDef, field: &str, lang: daicho_domain::Lang) -> String {
    let mut parts = field.splitn(3, ':');
    let (_, row, rest) = (parts.next(), parts.next(), parts.next());
    let row_word = crate::i18n::t(lang, "import.row");
    let name = rest.map(|r| {
        t.fields
            .iter()
            .find(|f| f.id.to_string() == r)
            .map(|f| f.name.as_str().to_owned())
            .unwrap_or_else(|| r.to_owned())
    });
    match (row, name) {
        (Some(r), Some(n)) => format!("{row_word} {r}, {n}"),
        (Some(r), None) => format!("{row_word} {r}"),
        _ => field.to_owned(),
    }
}

pub async fn import_upload(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(tid): Path<String>,
    req: axum::extract::Request,
) -> AppResult<Response> {
    let scope = auth.authorize::<ManageTableData>(&state, &ctx).await?;
    let t = state.store.table(&scope, table_id(&tid)?).await?;
    // Parsed only after the capability check, like every body.
    let mut form = <axum::extract::Multipart as axum::extract::FromRequest<()>>::from_request(req, &())
        .await
        .map_err(|_| AppError::BadRequest("bad_multipart"))?;
    let (mut file, mut encoding, mut key) = (Vec::new(), String::new(), String::new());
    while let Some(field) = form.next_field().await.map_err(|_| AppError::BadRequest("bad_multipart"))? {
        match field.name() {
            Some("file") => file = field.bytes().await.map_err(|_| AppError::PayloadTooLarge)?.to_vec(),
            Some("encoding") => encoding = field.text().await.unwrap_or_default(),
            Some("key") => key = field.text().await.unwrap_or_default(),
            _ => {}
        }
    }
    match crate::handlers::tables::import_csv(&state, &ctx, &auth, &t, &file, &encoding, Some(key.as_str())).await {
        Ok(_) => Ok(redirect_see_other(&format!("/tables/{}?done=imported", t.id))),
        Err(AppError::Invalid(e) | AppError::Conflict(e)) => {
            let problems =
                e.0.iter()
                    .map(|fe| (where_of(&t, &fe.field, auth.lang), crate::i18n::error_message(auth.lang, fe.code)))
                    .collect();
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &import_page(&state, &ctx, &auth, &t, problems)))
        }
        Err(e) => Err(e),
    }
}
