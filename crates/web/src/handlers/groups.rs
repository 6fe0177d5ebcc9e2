//! The permission matrix: groups of users and, per group and table, the rights view, create,
//! edit, delete, import, export and design, the row rule, and fields hidden or read-only. Pages
//! under /admin/groups and the JSON API under /api/v1/groups share the operations here; both
//! need `ManageGroups` (tenant administrators). "What may this user do" is
//! /admin/users/{id}/access and /api/v1/users/{id}/access, computed by the same engine that
//! enforces it.

use std::collections::BTreeMap;

use askama::Template;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use daicho_domain::access::View;
use daicho_domain::table::{FieldKind, Name, TableDef};
use daicho_domain::{
    AuditAction, FieldAccess, FieldErrors, FieldId, Group, GroupId, ManageGroups, ManageUsers, Outcome, Rights,
    RowRule, Scope, TableGrant, TableId, TableRight, UseTables, User, UserId,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ctx::{Ctx, EventExt};
use crate::error::{AppError, AppResult};
use crate::forms::DoneQuery;
use crate::handlers::api::ApiBody;
use crate::middleware::redirect_see_other;
use crate::session::Auth;
use crate::state::AppState;
use crate::views::{Errors, Page, render, render_status};

fn group_id(raw: &str) -> AppResult<GroupId> {
    raw.parse().map_err(|_| AppError::NotFound)
}

fn parse_name(name: &str, description: &str) -> Result<(Name, String), FieldErrors> {
    let mut errs = FieldErrors::new();
    let n = Name::parse(name).map_err(|c| errs.push("name", c)).ok();
    if let Err(c) = daicho_domain::table::check_description(description) {
        errs.push("description", c);
    }
    match n {
        Some(n) if errs.is_empty() => Ok((n, description.trim().to_owned())),
        _ => Err(errs),
    }
}

/// Checks a grant against the table and the group's grant it replaces (`old`): a new field
/// rule must name a field of the table, and a new "user is me" row rule one of its user fields.
/// Rules the old grant already had stand as they are, also where their field is in the trash
/// (or, for a row rule, no longer a user field): the forms and the API only show live fields,
/// so a rule that could not be sent back must not be lost or refused because of it.
fn check_grant(t: &TableDef, old: Option<&TableGrant>, g: &TableGrant) -> Result<(), FieldErrors> {
    let mut errs = FieldErrors::new();
    if let RowRule::UserIsMe { field } = g.rows
        && old.map(|o| o.rows) != Some(g.rows)
        && !t.fields.iter().any(|f| f.id == field && matches!(f.kind, FieldKind::User))
    {
        errs.push("rows", "not_a_user_field");
    }
    for (f, a) in &g.fields {
        if !t.fields.iter().any(|d| d.id == *f) && old.and_then(|o| o.fields.get(f)) != Some(a) {
            errs.push_owned(f.to_string(), "unknown_field");
        }
    }
    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

/// The field rules of `old` for fields the table does not show now (in the trash), carried into
/// the grant that replaces it: they apply again when the field is restored.
fn keep_absent_field_rules(t: &TableDef, old: Option<&TableGrant>, g: &mut TableGrant) {
    for (f, a) in old.map(|o| o.fields.iter()).into_iter().flatten() {
        if !t.fields.iter().any(|d| d.id == *f) {
            g.fields.entry(*f).or_insert(*a);
        }
    }
}

/// A grant given while a field is in the trash (new, or given rights again after it had
/// none) gets that field hidden, unless the old grant had a rule for it: the form cannot show the field, so the
/// admin never chose, and a field hidden from everyone else would otherwise come back visible
/// to this group on its restore. (Shown again from the group's page once restored.) Applied
/// after `check_grant`, which refuses a rule sent for a field in the trash.
fn hide_trashed_in_new_grant(trashed: &[FieldId], old: Option<&TableGrant>, g: &mut TableGrant) {
    // (A grant that had rights keeps what it showed: a right added to it does not hide a
    // field its other rights showed.)
    let new_grant = old.is_none_or(|o| o.rights.is_empty());
    if new_grant && !g.rights.is_empty() {
        for f in trashed {
            g.fields.entry(*f).or_insert(FieldAccess::Hidden);
        }
    }
}

/// The fields of table `t` in the trash (for `keep_absent_field_rules`).
async fn trashed_fields(state: &AppState, auth: &Auth, t: &TableDef) -> AppResult<Vec<FieldId>> {
    // Only a tenant admin manages groups, and may see the trash too.
    let Ok(scope) = auth.principal.authorize::<daicho_domain::ManageDesign>() else { return Ok(Vec::new()) };
    Ok(state
        .store
        .list_trash(&scope)
        .await?
        .into_iter()
        .filter(|i| i.table == t.id)
        .filter_map(|i| i.field.map(|(f, _)| f))
        .collect())
}

fn describe_grant(t: &TableDef, g: &TableGrant) -> String {
    let rights: Vec<&str> = g.rights.iter().map(TableRight::name).collect();
    let fields: Vec<String> = g
        .fields
        .iter()
        .filter_map(|(f, a)| t.fields.iter().find(|d| d.id == *f).map(|d| format!("{}={}", d.name.as_str(), a.name())))
        .collect();
    let rows = match g.rows {
        RowRule::UserIsMe { field } => format!(
            "user_is_me:{}",
            t.fields
                .iter()
                .find(|f| f.id == field)
                .map(|f| f.name.as_str().to_owned())
                .unwrap_or_else(|| field.to_string())
        ),
        other => other.name().to_owned(),
    };
    // Rules on fields in the trash are kept with the grant: named by id.
    let kept = g.fields.keys().filter(|f| !t.fields.iter().any(|d| d.id == **f)).count();
    format!(
        "table={}; rights={}; rows={rows}; fields={}{}",
        t.name.as_str(),
        if rights.is_empty() { "none".into() } else { rights.join(",") },
        if fields.is_empty() { "all editable".into() } else { fields.join(",") },
        if kept > 0 { format!(" (+{kept} on fields in the trash)") } else { String::new() }
    )
}

async fn find_group(state: &AppState, scope: &Scope<ManageGroups>, id: GroupId) -> AppResult<Group> {
    state.store.list_groups(scope).await?.into_iter().find(|g| g.id == id).ok_or(AppError::NotFound)
}

async fn tables_of(state: &AppState, auth: &Auth, ctx: &Ctx) -> AppResult<Vec<TableDef>> {
    let uses = auth.authorize::<UseTables>(state, ctx).await?;
    Ok(state.store.list_tables(&uses).await?)
}

async fn create(state: &AppState, ctx: &Ctx, auth: &Auth, name: &str, description: &str) -> AppResult<GroupId> {
    let scope = auth.authorize::<ManageGroups>(state, ctx).await?;
    let (name, description) = parse_name(name, description).map_err(AppError::Invalid)?;
    let id = GroupId::new_random();
    let ev = ctx
        .event_by(&auth.principal, AuditAction::GroupCreate, Outcome::Success)
        .target(format!("group:{id}"))
        .details(format!("name={}", name.as_str()));
    state.store.create_group(&scope, id, name, description, ctx.now, ev).await?;
    Ok(id)
}

async fn rename(state: &AppState, ctx: &Ctx, auth: &Auth, id: GroupId, name: &str, description: &str) -> AppResult<()> {
    let scope = auth.authorize::<ManageGroups>(state, ctx).await?;
    let (name, description) = parse_name(name, description).map_err(AppError::Invalid)?;
    let old = find_group(state, &scope, id).await?;
    let mut changes = vec![format!("name: {} -> {}", old.name.as_str(), name.as_str())];
    if old.description != description {
        changes.push(format!("description: {:?} -> {:?}", old.description, description));
    }
    let ev = ctx
        .event_by(&auth.principal, AuditAction::GroupUpdate, Outcome::Success)
        .target(format!("group:{id}"))
        .details(changes.join("; "));
    Ok(state.store.update_group(&scope, id, name, description, ev).await?)
}

async fn remove(state: &AppState, ctx: &Ctx, auth: &Auth, id: GroupId) -> AppResult<()> {
    let scope = auth.authorize::<ManageGroups>(state, ctx).await?;
    let g = find_group(state, &scope, id).await?;
    // What went with it: who was in it and what it granted.
    let tables = tables_of(state, auth, ctx).await?;
    let grants: Vec<String> = g
        .grants
        .iter()
        .map(|gr| match tables.iter().find(|t| t.id == gr.table) {
            Some(t) => describe_grant(t, gr),
            None => format!("table:{}; rights={}", gr.table, gr.rights.bits()),
        })
        .collect();
    let members: Vec<String> = g.members.iter().map(ToString::to_string).collect();
    let ev = ctx
        .event_by(&auth.principal, AuditAction::GroupDelete, Outcome::Success)
        .target(format!("group:{id}"))
        .details(format!("name={}; members={}; grants=[{}]", g.name.as_str(), members.join(","), grants.join(" | ")));
    Ok(state.store.delete_group(&scope, id, ev).await?)
}

/// Sets a group's members: all of them (the API), or, with `shown` (the members the page's
/// form showed), the changes the form makes (see `Store::set_group_members`).
async fn set_members(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    id: GroupId,
    members: Vec<UserId>,
    shown: Option<Vec<UserId>>,
) -> AppResult<()> {
    let scope = auth.authorize::<ManageGroups>(state, ctx).await?;
    let users = auth.directory(state, ctx).await?;
    let logins = |list: &mut dyn Iterator<Item = &UserId>| -> String {
        list.map(|m| {
            users.iter().find(|p| p.id == *m).map(|p| p.login.as_str().to_owned()).unwrap_or_else(|| m.to_string())
        })
        .collect::<Vec<_>>()
        .join(",")
    };
    let details = match &shown {
        None => format!("members={}", logins(&mut members.iter())),
        Some(shown) => format!(
            "asked to add={}; asked to remove={}",
            logins(&mut members.iter().filter(|m| !shown.contains(m))),
            logins(&mut shown.iter().filter(|m| !members.contains(m)))
        ),
    };
    let ev = ctx
        .event_by(&auth.principal, AuditAction::GroupMembers, Outcome::Success)
        .target(format!("group:{id}"))
        .details(details);
    Ok(state.store.set_group_members(&scope, id, members, shown, ev).await?)
}

/// Sets one group's grant on one table. With `was` (a page's [`grant_digest`] of the grant it
/// showed), only while the stored grant still reads so, compared again inside the transaction:
/// otherwise nothing is saved (409 `matrix` `changed_meanwhile`).
async fn set_grant(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    mut grant: TableGrant,
    was: Option<&str>,
) -> AppResult<()> {
    let scope = auth.authorize::<ManageGroups>(state, ctx).await?;
    let tables = tables_of(state, auth, ctx).await?;
    let t = tables.iter().find(|t| t.id == grant.table).ok_or(AppError::NotFound)?;
    let group = find_group(state, &scope, grant.group).await?;
    let old = group.grants.iter().find(|g| g.table == grant.table);
    if was.is_some_and(|was| was != grant_digest(old)) {
        return Err(AppError::Conflict(FieldErrors::single("matrix", "changed_meanwhile")));
    }
    keep_absent_field_rules(t, old, &mut grant);
    check_grant(t, old, &grant).map_err(AppError::Invalid)?;
    hide_trashed_in_new_grant(&trashed_fields(state, auth, t).await?, old, &mut grant);
    let ev = grant_event(ctx, auth, t, &grant);
    let change = daicho_store::GrantChange { grant, expected: was.map(|_| old.cloned()), event: ev };
    Ok(state.store.set_table_grants(&scope, vec![change]).await?)
}

/// A grant as a page shows it, whole (rights, records and every field rule, those of fields
/// in the trash included), as a short digest the page's form sends back: a save from a page
/// showing another grant than the stored one is refused rather than undoing that change.
fn grant_digest(grant: Option<&TableGrant>) -> String {
    let Some(g) = grant else { return "none".to_owned() };
    let rows = match g.rows {
        RowRule::UserIsMe { field } => format!("user_is_me:{field}"),
        r => r.name().to_owned(),
    };
    // (`fields` is a BTreeMap: the same rules give the same text.)
    let fields: Vec<String> = g.fields.iter().map(|(f, a)| format!("{f}={}", a.name())).collect();
    let text = format!("{}|{rows}|{}", g.rights.bits(), fields.join(","));
    format!("{:016x}", crate::handlers::tables::fnv1a(text.as_bytes()))
}

/// The operation history's entry for setting a grant: which group and table, and the grant.
fn grant_event(ctx: &Ctx, auth: &Auth, t: &TableDef, grant: &TableGrant) -> daicho_domain::NewAuditEvent {
    ctx.event_by(&auth.principal, AuditAction::GroupGrant, Outcome::Success)
        .target(format!("group:{} table:{}", grant.group, grant.table))
        .details(describe_grant(t, grant))
}

/// One table in "what may this user do".
pub struct AccessRow {
    pub table_id: String,
    pub table: String,
    pub rights: Vec<(&'static str, bool)>,
    /// View's records ("all", "created_by_me", "user_is_me:<field>", alternatives joined by
    /// " | ", rules all of which apply by " & ").
    pub rows: String,
    /// Each right held with the records it covers (a right may cover fewer than view).
    pub rows_by_right: Vec<(&'static str, String)>,
    /// The same in words of the reader's language.
    pub rows_words_by_right: Vec<(&'static str, String)>,
    pub hidden: Vec<String>,
    /// Edit's read-only fields.
    pub read_only: Vec<String>,
    /// Each writing right held (create, edit, import) with the fields it may not write.
    pub read_only_by_right: Vec<(&'static str, Vec<String>)>,
    /// Fields create, edit or import offers but writes on some records only (a group over
    /// fewer records allows them, another keeps them read-only), per right.
    pub some_records_by_right: Vec<(&'static str, Vec<String>)>,
    /// Fields view shows but export, delete or design hides (a CSV without them; a designer
    /// who does not see them), per right.
    pub hidden_by_right: Vec<(&'static str, Vec<String>)>,
}

/// Records a row scope covers, as `AccessRow::rows` writes them.
fn rows_text(t: &TableDef, rows: &daicho_domain::RowScope) -> String {
    if rows.is_all() {
        return "all".into();
    }
    rows.all_of
        .iter()
        .map(|any| {
            any.iter()
                .map(|r| match r {
                    RowRule::UserIsMe { field } => format!(
                        "user_is_me:{}",
                        t.fields.iter().find(|f| f.id == *field).map(|f| f.name.as_str()).unwrap_or("?")
                    ),
                    other => other.name().to_owned(),
                })
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .collect::<Vec<_>>()
        .join(" & ")
}

/// The records a row scope covers, in words of the page's language (alternatives joined by
/// " / ", rules that all apply by " + ").
fn rows_words(lang: daicho_domain::Lang, t: &TableDef, rows: &daicho_domain::RowScope) -> String {
    if rows.is_all() {
        return crate::i18n::t(lang, "rows.all").to_owned();
    }
    let word = |r: &RowRule| match r {
        RowRule::UserIsMe { field } => format!(
            "{} ({})",
            crate::i18n::t(lang, "rows.user_is_me"),
            t.fields.iter().find(|f| f.id == *field).map(|f| f.name.as_str()).unwrap_or("?")
        ),
        other => crate::i18n::t(lang, &format!("rows.{}", other.name())).to_owned(),
    };
    rows.all_of.iter().map(|any| any.iter().map(word).collect::<Vec<_>>().join(" / ")).collect::<Vec<_>>().join(" + ")
}

async fn access_of(state: &AppState, ctx: &Ctx, auth: &Auth, user: &User) -> AppResult<Vec<AccessRow>> {
    let scope = auth.authorize::<ManageGroups>(state, ctx).await?;
    let grants = state.store.grants_of_user(&scope, user.id).await?;
    let tables = tables_of(state, auth, ctx).await?;
    let who = daicho_domain::Principal {
        tenant_id: user.tenant_id,
        user_id: user.id,
        login_id: user.login_id.clone(),
        role: user.role,
        session_id: auth.principal.session_id,
    };
    let lang = auth.lang;
    let mut out = Vec::new();
    for t in tables {
        let access = who.table_access(t.id, grants.clone());
        let rights = access.rights();
        let view = who.authorize_table::<View>(&access).ok();
        let rows = view.as_ref().map(|v| rows_text(&t, v.rows())).unwrap_or_default();
        // What the engine resolves for each right held: its own rows, and its fields.
        let held: Vec<(TableRight, daicho_domain::RowScope, _)> = TableRight::ALL
            .iter()
            .filter(|r| rights.has(**r))
            .filter_map(|r| access.resolve(*r).map(|(rows, fields)| (*r, rows, fields)))
            .collect();
        let rows_by_right = held.iter().map(|(r, rows, _)| (r.name(), rows_text(&t, rows))).collect();
        let rows_words_by_right = held.iter().map(|(r, rows, _)| (r.name(), rows_words(lang, &t, rows))).collect();
        // The names of the fields view shows (all of them without view) that `pick` picks.
        let visible_names = |pick: &dyn Fn(&daicho_domain::table::FieldDef) -> bool| -> Vec<String> {
            t.fields
                .iter()
                .filter(|f| view.as_ref().is_none_or(|v| v.sees(f.id)) && pick(f))
                .map(|f| f.name.as_str().to_owned())
                .collect()
        };
        let read_only_by_right: Vec<(&'static str, Vec<String>)> = held
            .iter()
            .filter(|(r, _, _)| matches!(r, TableRight::Create | TableRight::Edit | TableRight::Import))
            .map(|(r, _, fields)| {
                // Fields the user sees but this right may not write (read-only, or hidden for
                // this right alone: view's hidden ones are in their own column; without view
                // there is no hidden column, and they are listed here).
                (
                    r.name(),
                    visible_names(&|f| fields.get(&f.id).is_some_and(|a| *a != daicho_domain::FieldAccess::Editable)),
                )
            })
            .collect();
        let some_records_by_right: Vec<(&'static str, Vec<String>)> = held
            .iter()
            .filter(|(r, _, _)| matches!(r, TableRight::Create | TableRight::Edit | TableRight::Import))
            .map(|(r, _, _)| {
                let some = access.writable_on_some_records(*r);
                (r.name(), visible_names(&|f| some.contains(&f.id) && !f.kind.is_generated()))
            })
            .filter(|(_, names)| !names.is_empty())
            .collect();
        let hidden_by_right: Vec<(&'static str, Vec<String>)> = held
            .iter()
            .filter(|(r, _, _)| matches!(r, TableRight::Export | TableRight::Delete | TableRight::Design))
            .map(|(r, _, fields)| {
                let names = visible_names(&|f| fields.get(&f.id) == Some(&daicho_domain::FieldAccess::Hidden));
                (r.name(), names)
            })
            .filter(|(_, names)| !names.is_empty())
            .collect();
        // Edit's, as listed per right.
        let read_only = read_only_by_right
            .iter()
            .find(|(r, _): &&(&str, Vec<String>)| *r == TableRight::Edit.name())
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        out.push(AccessRow {
            table_id: t.id.to_string(),
            table: t.name.as_str().to_owned(),
            rights: TableRight::ALL.iter().map(|r| (r.name(), rights.has(*r))).collect(),
            rows,
            rows_by_right,
            rows_words_by_right,
            read_only_by_right,
            hidden_by_right,
            some_records_by_right,
            hidden: t
                .fields
                .iter()
                .filter(|f| view.as_ref().is_some_and(|v| !v.sees(f.id)))
                .map(|f| f.name.as_str().to_owned())
                .collect(),
            read_only,
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Pages

pub struct GroupRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub members: usize,
    pub tables: usize,
}

#[derive(Template)]
#[template(path = "admin/groups.html")]
struct GroupsPage {
    p: Page,
    groups: Vec<GroupRow>,
    errors: Errors,
    name: String,
    description: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct GroupForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
}

async fn groups_page(state: &AppState, ctx: &Ctx, auth: &Auth, errors: Errors, f: GroupForm) -> AppResult<GroupsPage> {
    let scope = auth.authorize::<ManageGroups>(state, ctx).await?;
    let groups = state.store.list_groups(&scope).await?;
    Ok(GroupsPage {
        p: Page::for_user(auth, "groups.title", "groups", &ctx.request_id),
        groups: groups
            .iter()
            .map(|g| GroupRow {
                id: g.id.to_string(),
                name: g.name.as_str().to_owned(),
                description: g.description.clone(),
                members: g.members.len(),
                // Tables it grants a right on (a grant may keep only rules, without rights).
                tables: g.grants.iter().filter(|gr| !gr.rights.is_empty()).count(),
            })
            .collect(),
        errors,
        name: f.name,
        description: f.description,
    })
}

pub async fn list_page(State(state): State<AppState>, ctx: Ctx, auth: Auth) -> AppResult<Response> {
    Ok(render(&groups_page(&state, &ctx, &auth, Errors::default(), GroupForm::default()).await?))
}

pub async fn create_page(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    crate::forms::Form(f): crate::forms::Form<GroupForm>,
) -> AppResult<Response> {
    match create(&state, &ctx, &auth, &f.name, &f.description).await {
        Ok(id) => Ok(redirect_see_other(&format!("/admin/groups/{id}?done=group_saved"))),
        Err(AppError::Invalid(e) | AppError::Conflict(e)) => {
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &groups_page(&state, &ctx, &auth, Errors(e), f).await?))
        }
        Err(e) => Err(e),
    }
}

pub struct MemberRow {
    pub id: String,
    pub label: String,
    pub member: bool,
}

pub struct MatrixRow {
    pub table_id: String,
    pub table: String,
    pub rights: Vec<(&'static str, bool)>,
    pub rows: String,
    pub restricted: usize,
    /// The grant as the page showed it (`matrix_token`), sent back with the form: a table the
    /// admin left as it was is not saved again, and one changed by someone else meanwhile is
    /// refused rather than overwritten.
    pub was: String,
}

/// A table's rights and records on the matrix page, as one token.
fn matrix_token(rights: Rights, rows: &RowRule) -> String {
    daicho_domain::access::grant_token(rights, rows)
}

#[derive(Template)]
#[template(path = "admin/group.html")]
struct GroupPage {
    p: Page,
    id: String,
    name: String,
    description: String,
    members: Vec<MemberRow>,
    matrix: Vec<MatrixRow>,
    errors: Errors,
    /// The details form's values: as stored, or as sent when they were refused.
    f_name: String,
    f_description: String,
}

async fn group_page(state: &AppState, ctx: &Ctx, auth: &Auth, id: GroupId, errors: Errors) -> AppResult<GroupPage> {
    let scope = auth.authorize::<ManageGroups>(state, ctx).await?;
    let g = find_group(state, &scope, id).await?;
    let users = auth.directory(state, ctx).await?;
    let tables = tables_of(state, auth, ctx).await?;
    Ok(GroupPage {
        p: Page::for_user(auth, "groups.title", "groups", &ctx.request_id).about(g.name.as_str()),
        id: g.id.to_string(),
        name: g.name.as_str().to_owned(),
        description: g.description.clone(),
        f_name: g.name.as_str().to_owned(),
        f_description: g.description.clone(),
        // Active users to choose from; a disabled member stays listed so that they can be taken out.
        members: users
            .iter()
            .filter(|p| p.active || g.members.contains(&p.id))
            .map(|p| MemberRow { id: p.id.to_string(), label: p.label(), member: g.members.contains(&p.id) })
            .collect(),
        matrix: tables
            .iter()
            .map(|t| {
                let grant = g.grants.iter().find(|gr| gr.table == t.id);
                let rights = grant.map(|gr| gr.rights).unwrap_or_default();
                MatrixRow {
                    table_id: t.id.to_string(),
                    table: t.name.as_str().to_owned(),
                    rights: TableRight::ALL.iter().map(|r| (r.name(), rights.has(*r))).collect(),
                    rows: grant.map(|gr| gr.rows.name()).unwrap_or("all").to_owned(),
                    restricted: grant.map(|gr| gr.fields.len()).unwrap_or(0),
                    was: matrix_token(rights, &grant.map(|gr| gr.rows).unwrap_or_default()),
                }
            })
            .collect(),
        errors,
    })
}

pub async fn show_page(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(gid): Path<String>,
    Query(q): Query<DoneQuery>,
) -> AppResult<Response> {
    let _scope = auth.authorize::<ManageGroups>(&state, &ctx).await?;
    let mut page = group_page(&state, &ctx, &auth, group_id(&gid)?, Errors::default()).await?;
    page.p = page.p.with_flash(&ctx, q.done.as_deref());
    Ok(render(&page))
}

pub async fn edit_page(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(gid): Path<String>,
    crate::forms::Form(f): crate::forms::Form<GroupForm>,
) -> AppResult<Response> {
    let _scope = auth.authorize::<ManageGroups>(&state, &ctx).await?;
    let id = group_id(&gid)?;
    match rename(&state, &ctx, &auth, id, &f.name, &f.description).await {
        Ok(()) => Ok(redirect_see_other(&format!("/admin/groups/{id}?done=group_saved"))),
        Err(AppError::Invalid(e) | AppError::Conflict(e)) => {
            let mut page = group_page(&state, &ctx, &auth, id, Errors(e)).await?;
            // What was typed stays in the form, next to what is wrong with it.
            (page.f_name, page.f_description) = (f.name.clone(), f.description.clone());
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(e) => Err(e),
    }
}

pub async fn members_page(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(gid): Path<String>,
    crate::forms::Form(pairs): crate::forms::Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let _scope = auth.authorize::<ManageGroups>(&state, &ctx).await?;
    let id = group_id(&gid)?;
    let (mut members, mut shown) = (Vec::new(), Vec::new());
    for (k, v) in &pairs {
        let list = match k.as_str() {
            "member" => &mut members,
            "shown" => &mut shown,
            _ => continue,
        };
        list.push(v.parse::<UserId>().map_err(|_| AppError::BadRequest("bad_member"))?);
    }
    // The form says which members it showed: only its changes are made (a form without it,
    // from before, sets the members as sent).
    let was_shown = pairs.iter().any(|(k, _)| k == "shown_list");
    set_members(&state, &ctx, &auth, id, members, was_shown.then_some(shown)).await?;
    Ok(redirect_see_other(&format!("/admin/groups/{id}?done=group_saved")))
}

/// The whole matrix of one group in one form: `right.<table id>` = right name (repeated), and
/// `rows.<table id>` = all | created_by_me (a "user is me" rule is set on the table's page).
pub async fn matrix_page(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(gid): Path<String>,
    crate::forms::Form(pairs): crate::forms::Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let scope = auth.authorize::<ManageGroups>(&state, &ctx).await?;
    let id = group_id(&gid)?;
    let g = find_group(&state, &scope, id).await?;
    let tables = tables_of(&state, &auth, &ctx).await?;
    let (mut changes, mut stale) = (Vec::new(), Vec::new());
    // A form from the matrix page carries each shown table's grant as shown (`was.<table>`);
    // a table it did not show (created or restored since) is left alone.
    let from_page = pairs.iter().any(|(k, _)| k.starts_with("was."));
    for t in &tables {
        let key = t.id.to_string();
        let was = pairs.iter().find(|(k, _)| k.strip_prefix("was.") == Some(key.as_str())).map(|(_, v)| v.as_str());
        if from_page && was.is_none() {
            continue;
        }
        let mut rights = Rights::NONE;
        for (k, v) in &pairs {
            if k.strip_prefix("right.") == Some(key.as_str()) {
                rights = rights.with(TableRight::parse(v).ok_or(AppError::BadRequest("bad_right"))?);
            }
        }
        let old = g.grants.iter().find(|gr| gr.table == t.id);
        let rows_sent = pairs.iter().find(|(k, _)| k.strip_prefix("rows.") == Some(key.as_str())).map(|(_, v)| v);
        let rows = match rows_sent {
            Some(v) if v == "created_by_me" => RowRule::CreatedByMe,
            Some(v) if v == "all" => RowRule::All,
            // kept as set on the table's page
            _ => old.map(|gr| gr.rows).unwrap_or_default(),
        };
        let fields = old.map(|gr| gr.fields.clone()).unwrap_or_default();
        let now = matrix_token(old.map(|gr| gr.rights).unwrap_or_default(), &old.map(|gr| gr.rows).unwrap_or_default());
        if let Some(was) = was {
            // What this form asks, in the page's terms: a row rule the form has no choice for
            // ("records assigned to them", set on the table's page) is as the page showed it.
            let shown_rows = was.split_once(':').map(|(_, r)| r).unwrap_or("");
            let asked = match rows_sent {
                Some(_) => matrix_token(rights, &rows),
                None => format!("{}:{shown_rows}", rights.bits()),
            };
            if was == asked {
                // Left as the page showed it: not saved again (someone else may have changed it).
                continue;
            }
            if was != now {
                stale.push(t.name.as_str().to_owned());
                continue;
            }
        }
        let changed =
            old.map(|gr| (gr.rights, gr.rows)) != Some((rights, rows)) && !(old.is_none() && rights.is_empty());
        if changed {
            let mut grant = TableGrant { group: id, table: t.id, rights, rows, fields };
            keep_absent_field_rules(t, old, &mut grant);
            // Every table is checked before any is saved: the matrix is saved whole or not at all.
            check_grant(t, old, &grant).map_err(AppError::Invalid)?;
            hide_trashed_in_new_grant(&trashed_fields(&state, &auth, t).await?, old, &mut grant);
            let ev = grant_event(&ctx, &auth, t, &grant);
            // Saved only while the grant still reads as this page showed it (checked again
            // inside the transaction).
            changes.push(daicho_store::GrantChange { grant, expected: was.map(|_| old.cloned()), event: ev });
        }
    }
    if !stale.is_empty() {
        // Someone changed these tables' rights meanwhile: nothing is saved; the page shows
        // the rights as they are now.
        let mut e = FieldErrors::new();
        e.push("matrix", "changed_meanwhile");
        let page = group_page(&state, &ctx, &auth, id, Errors(e)).await?;
        return Ok(render_status(StatusCode::CONFLICT, &page));
    }
    // One transaction: the matrix is saved whole or not at all.
    match state.store.set_table_grants(&scope, changes).await {
        Ok(()) => Ok(redirect_see_other(&format!("/admin/groups/{id}?done=group_saved"))),
        Err(daicho_store::StoreError::Conflict(e)) if e.code_for("matrix").is_some() => {
            let page = group_page(&state, &ctx, &auth, id, Errors(e)).await?;
            Ok(render_status(StatusCode::CONFLICT, &page))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn delete_page(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(gid): Path<String>,
    crate::forms::Form(f): crate::forms::Form<crate::forms::ConfirmForm>,
) -> AppResult<Response> {
    let _scope = auth.authorize::<ManageGroups>(&state, &ctx).await?;
    let id = group_id(&gid)?;
    if f.confirm != "yes" {
        let page =
            group_page(&state, &ctx, &auth, id, Errors(FieldErrors::single("confirm", "confirm_required"))).await?;
        return Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page));
    }
    remove(&state, &ctx, &auth, id).await?;
    Ok(redirect_see_other("/admin/groups?done=group_deleted"))
}

pub struct FieldRow {
    pub id: String,
    pub name: String,
    pub access: &'static str,
}

#[derive(Template)]
#[template(path = "admin/group_table.html")]
struct GroupTablePage {
    p: Page,
    group_id: String,
    group_name: String,
    table_id: String,
    table_name: String,
    has_grant: bool,
    rows: String,
    user_fields: Vec<(String, String)>,
    fields: Vec<FieldRow>,
    /// The grant as shown ([`grant_digest`]), sent back by the form.
    was: String,
    errors: Errors,
}

async fn group_table(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    gid: &str,
    tid: &str,
) -> AppResult<(Group, TableDef, Option<TableGrant>)> {
    let scope = auth.authorize::<ManageGroups>(state, ctx).await?;
    let g = find_group(state, &scope, group_id(gid)?).await?;
    let tid: TableId = tid.parse().map_err(|_| AppError::NotFound)?;
    let t = tables_of(state, auth, ctx).await?.into_iter().find(|t| t.id == tid).ok_or(AppError::NotFound)?;
    let grant = g.grants.iter().find(|gr| gr.table == tid).cloned();
    Ok((g, t, grant))
}

fn group_table_page(
    auth: &Auth,
    ctx: &Ctx,
    g: &Group,
    t: &TableDef,
    grant: Option<&TableGrant>,
    errors: Errors,
) -> GroupTablePage {
    let rows = match grant.map(|gr| gr.rows) {
        Some(RowRule::UserIsMe { field }) => format!("user_is_me:{field}"),
        Some(r) => r.name().to_owned(),
        None => "all".into(),
    };
    GroupTablePage {
        p: Page::for_user(auth, "groups.title", "groups", &ctx.request_id).about(&format!(
            "{} › {}",
            g.name.as_str(),
            t.name.as_str()
        )),
        group_id: g.id.to_string(),
        group_name: g.name.as_str().to_owned(),
        table_id: t.id.to_string(),
        table_name: t.name.as_str().to_owned(),
        has_grant: grant.is_some(),
        rows: rows.clone(),
        user_fields: {
            let mut choices: Vec<(String, String)> = t
                .fields
                .iter()
                .filter(|f| matches!(f.kind, FieldKind::User))
                .map(|f| (format!("user_is_me:{}", f.id), f.name.as_str().to_owned()))
                .collect();
            // A stored rule on a field that is no longer a user field (changed or in the
            // trash) stays chosen, so that saving the page keeps it rather than widening it.
            if let Some(RowRule::UserIsMe { field }) = grant.map(|gr| gr.rows)
                && !choices.iter().any(|(v, _)| *v == rows)
            {
                let name = t.fields.iter().find(|f| f.id == field).map(|f| f.name.as_str().to_owned());
                choices.push((rows.clone(), name.unwrap_or_else(|| field.to_string())));
            }
            choices
        },
        fields: t
            .fields
            .iter()
            .map(|f| FieldRow {
                id: f.id.to_string(),
                name: f.name.as_str().to_owned(),
                access: grant.map(|gr| gr.field(f.id)).unwrap_or_default().name(),
            })
            .collect(),
        was: grant_digest(grant),
        errors,
    }
}

pub async fn table_page(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path((gid, tid)): Path<(String, String)>,
) -> AppResult<Response> {
    let _scope = auth.authorize::<ManageGroups>(&state, &ctx).await?;
    let (g, t, grant) = group_table(&state, &ctx, &auth, &gid, &tid).await?;
    Ok(render(&group_table_page(&auth, &ctx, &g, &t, grant.as_ref(), Errors::default())))
}

/// Row rule and field access of one group on one table: `rows` = all | created_by_me |
/// user_is_me:<field id>, and `field.<field id>` = editable | read_only | hidden.
pub async fn table_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path((gid, tid)): Path<(String, String)>,
    crate::forms::Form(pairs): crate::forms::Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let _scope = auth.authorize::<ManageGroups>(&state, &ctx).await?;
    let (g, t, grant) = group_table(&state, &ctx, &auth, &gid, &tid).await?;
    let Some(old) = grant else {
        let errs = FieldErrors::single("rights", "grant_rights_first");
        return Ok(render_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &group_table_page(&auth, &ctx, &g, &t, None, Errors(errs)),
        ));
    };
    let rows = match pairs.iter().find(|(k, _)| k == "rows").map(|(_, v)| v.as_str()) {
        None => old.rows,
        Some("all") => RowRule::All,
        Some("created_by_me") => RowRule::CreatedByMe,
        Some(v) => match v.strip_prefix("user_is_me:").and_then(|f| f.parse::<FieldId>().ok()) {
            Some(field) => RowRule::UserIsMe { field },
            None => return Err(AppError::BadRequest("bad_rows")),
        },
    };
    let mut fields = BTreeMap::new();
    let mut sent = std::collections::HashSet::new();
    for (k, v) in &pairs {
        if let Some(f) = k.strip_prefix("field.") {
            let f: FieldId = f.parse().map_err(|_| AppError::BadRequest("bad_field"))?;
            let a = FieldAccess::parse(v).ok_or(AppError::BadRequest("bad_access"))?;
            sent.insert(f);
            if a != FieldAccess::Editable {
                fields.insert(f, a);
            }
        }
    }
    // A field the form did not show (in the trash then, restored since) keeps its rule: its
    // absence is no choice of "editable".
    for (f, a) in &old.fields {
        if !sent.contains(f) {
            fields.entry(*f).or_insert(*a);
        }
    }
    let grant = TableGrant { group: g.id, table: t.id, rights: old.rights, rows, fields };
    let was = pairs.iter().find(|(k, _)| k == "was").map(|(_, v)| v.as_str());
    match set_grant(&state, &ctx, &auth, grant.clone(), was).await {
        Ok(()) => Ok(redirect_see_other(&format!("/admin/groups/{}?done=group_saved", g.id))),
        Err(AppError::Invalid(e)) => {
            // The form as sent, to fix; its digest still that of the grant as stored (which
            // nothing changed), so that saving it fixed is not taken for a stale page.
            let mut page = group_table_page(&auth, &ctx, &g, &t, Some(&grant), Errors(e));
            page.was = grant_digest(Some(&old));
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        // Someone changed this grant meanwhile: nothing saved; the page shows it as it is now.
        Err(AppError::Conflict(e)) => {
            let (g, t, now) = group_table(&state, &ctx, &auth, &gid, &tid).await?;
            Ok(render_status(StatusCode::CONFLICT, &group_table_page(&auth, &ctx, &g, &t, now.as_ref(), Errors(e))))
        }
        Err(e) => Err(e),
    }
}

#[derive(Template)]
#[template(path = "admin/user_access.html")]
struct UserAccessPage {
    p: Page,
    user_id: String,
    login_id: String,
    display_name: String,
    is_admin: bool,
    /// Disabled: nothing is allowed while so, whatever the rights below.
    disabled: bool,
    groups: Vec<(String, String)>,
    rows: Vec<AccessRow>,
    /// Per table (in `rows` order): its records in words, per right where rights differ.
    rows_shown: Vec<Vec<(Option<&'static str>, String)>>,
    /// Per table: read-only fields, per writing right where they differ.
    read_only_shown: Vec<Vec<(Option<&'static str>, String)>>,
    /// Per table: (right, fields it hides that view shows).
    hidden_shown: Vec<Vec<(&'static str, String)>>,
    /// Per table: (right, fields it writes on some records only).
    some_records_shown: Vec<Vec<(&'static str, String)>>,
}

/// Per-right lines of a table's access, or one line without a right when every right held
/// has the same.
fn per_right(items: Vec<(&'static str, String)>) -> Vec<(Option<&'static str>, String)> {
    let same = items.windows(2).all(|w| w[0].1 == w[1].1);
    if same {
        items.into_iter().take(1).map(|(_, v)| (None, v)).collect()
    } else {
        items.into_iter().map(|(r, v)| (Some(r), v)).collect()
    }
}

pub async fn user_access_page(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(uid): Path<String>,
) -> AppResult<Response> {
    let users = auth.authorize::<ManageUsers>(&state, &ctx).await?;
    let scope = auth.authorize::<ManageGroups>(&state, &ctx).await?;
    let u = state.store.get_user(&users, uid.parse().map_err(|_| AppError::NotFound)?).await?;
    let rows = access_of(&state, &ctx, &auth, &u).await?;
    let groups = state
        .store
        .list_groups(&scope)
        .await?
        .into_iter()
        .filter(|g| g.members.contains(&u.id))
        .map(|g| (g.id.to_string(), g.name.as_str().to_owned()))
        .collect();
    Ok(render(&UserAccessPage {
        p: Page::for_user(&auth, "access.title", "users", &ctx.request_id),
        user_id: u.id.to_string(),
        login_id: u.login_id.as_str().to_owned(),
        display_name: u.display_name.as_str().to_owned(),
        is_admin: u.role == daicho_domain::Role::TenantAdmin,
        disabled: u.status != daicho_domain::UserStatus::Active,
        groups,
        rows_shown: rows.iter().map(|r| per_right(r.rows_words_by_right.clone())).collect(),
        some_records_shown: rows
            .iter()
            .map(|r| r.some_records_by_right.iter().map(|(k, v)| (*k, v.join(", "))).collect())
            .collect(),
        hidden_shown: rows
            .iter()
            .map(|r| r.hidden_by_right.iter().map(|(k, v)| (*k, v.join(", "))).collect())
            .collect(),
        read_only_shown: rows
            .iter()
            .map(|r| {
                per_right(r.read_only_by_right.iter().map(|(k, v)| (*k, v.join(", "))).collect())
                    .into_iter()
                    .filter(|(_, v)| !v.is_empty())
                    .collect()
            })
            .collect(),
        rows,
    }))
}

// ---------------------------------------------------------------------------------------------
// JSON API

fn group_json(g: &Group) -> Value {
    json!({
        "id": g.id,
        "name": g.name.as_str(),
        "description": g.description,
        "members": g.members,
        "grants": g.grants.iter().map(|gr| json!({
            "table": gr.table, "rights": gr.rights, "rows": gr.rows, "fields": gr.fields,
        })).collect::<Vec<_>>(),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupBody {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembersBody {
    pub members: Vec<UserId>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantBody {
    pub rights: Rights,
    #[serde(default)]
    pub rows: RowRule,
    #[serde(default)]
    pub fields: BTreeMap<FieldId, FieldAccess>,
}

pub async fn api_list(State(state): State<AppState>, ctx: Ctx, auth: Auth) -> AppResult<Json<Value>> {
    let scope = auth.authorize::<ManageGroups>(&state, &ctx).await?;
    let groups = state.store.list_groups(&scope).await?;
    Ok(Json(json!({"groups": groups.iter().map(group_json).collect::<Vec<_>>()})))
}

pub async fn api_create(State(state): State<AppState>, ctx: Ctx, auth: Auth, body: ApiBody) -> AppResult<Response> {
    let scope = auth.authorize::<ManageGroups>(&state, &ctx).await?;
    let b: GroupBody = body.parse()?;
    let id = create(&state, &ctx, &auth, &b.name, &b.description).await?;
    let g = find_group(&state, &scope, id).await?;
    Ok((StatusCode::CREATED, Json(json!({"group": group_json(&g)}))).into_response())
}

pub async fn api_get(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(gid): Path<String>,
) -> AppResult<Json<Value>> {
    let scope = auth.authorize::<ManageGroups>(&state, &ctx).await?;
    let g = find_group(&state, &scope, group_id(&gid)?).await?;
    Ok(Json(json!({"group": group_json(&g)})))
}

pub async fn api_update(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(gid): Path<String>,
    body: ApiBody,
) -> AppResult<Json<Value>> {
    let scope = auth.authorize::<ManageGroups>(&state, &ctx).await?;
    let b: GroupBody = body.parse()?;
    let id = group_id(&gid)?;
    rename(&state, &ctx, &auth, id, &b.name, &b.description).await?;
    Ok(Json(json!({"group": group_json(&find_group(&state, &scope, id).await?)})))
}

pub async fn api_delete(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(gid): Path<String>,
) -> AppResult<StatusCode> {
    let _scope = auth.authorize::<ManageGroups>(&state, &ctx).await?;
    remove(&state, &ctx, &auth, group_id(&gid)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn api_members(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(gid): Path<String>,
    body: ApiBody,
) -> AppResult<Json<Value>> {
    let scope = auth.authorize::<ManageGroups>(&state, &ctx).await?;
    let b: MembersBody = body.parse()?;
    let id = group_id(&gid)?;
    set_members(&state, &ctx, &auth, id, b.members, None).await?;
    Ok(Json(json!({"group": group_json(&find_group(&state, &scope, id).await?)})))
}

pub async fn api_grant(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path((gid, tid)): Path<(String, String)>,
    body: ApiBody,
) -> AppResult<Json<Value>> {
    let scope = auth.authorize::<ManageGroups>(&state, &ctx).await?;
    let b: GrantBody = body.parse()?;
    let id = group_id(&gid)?;
    find_group(&state, &scope, id).await?;
    let table: TableId = tid.parse().map_err(|_| AppError::NotFound)?;
    set_grant(
        &state,
        &ctx,
        &auth,
        TableGrant { group: id, table, rights: b.rights, rows: b.rows, fields: b.fields },
        None,
    )
    .await?;
    Ok(Json(json!({"group": group_json(&find_group(&state, &scope, id).await?)})))
}

pub async fn api_user_access(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(uid): Path<String>,
) -> AppResult<Json<Value>> {
    let users = auth.authorize::<ManageUsers>(&state, &ctx).await?;
    let u = state.store.get_user(&users, uid.parse().map_err(|_| AppError::NotFound)?).await?;
    let rows = access_of(&state, &ctx, &auth, &u).await?;
    Ok(Json(json!({
        "user": u.id,
        "status": u.status.as_str(),
        "administrator": u.role == daicho_domain::Role::TenantAdmin,
        "tables": rows.iter().map(|r| json!({
            "table": r.table_id,
            "name": r.table,
            "rights": r.rights.iter().filter(|(_, has)| *has).map(|(n, _)| *n).collect::<Vec<_>>(),
            "rows": r.rows,
            "rows_by_right": r.rows_by_right.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "hidden_fields": r.hidden,
            "read_only_fields": r.read_only,
            "read_only_by_right": r.read_only_by_right.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "hidden_by_right": r.hidden_by_right.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "writable_on_some_records_by_right": r.some_records_by_right.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        })).collect::<Vec<_>>(),
    })))
}
