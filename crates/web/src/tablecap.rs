//! Opening a user table for a request: every table route goes through here. The table comes
//! from the tenant of the signed-in user; the user's rights on it come from their groups'
//! grants, decided by the permission engine (`daicho_domain::access`). A table the user holds
//! no right on is answered like a table that does not exist (404), so its existence does not
//! leak; a missing right on a table they can see is 403. Every refusal is recorded.

use daicho_domain::access::{Right, TableAccess, TableGrant, TableScope};
use daicho_domain::table::TableDef;
use daicho_domain::{AuditAction, Outcome, Scope, TableId, UseTables};

use crate::ctx::{Ctx, EventExt};
use crate::error::{AppError, AppResult};
use crate::session::Auth;
use crate::state::AppState;

/// A table the user holds at least one right on, with those rights.
#[derive(Debug, Clone)]
pub struct OpenTable {
    /// The whole design, hidden fields included: use [`OpenTable::seen_by`] for what a user sees.
    pub def: TableDef,
    pub access: TableAccess,
}

impl OpenTable {
    /// The design as a scope sees it: hidden fields removed, so that everything built from it
    /// (grid columns, forms, filters, sorting, CSV columns, JSON) leaves them out.
    pub fn seen_by<R: Right>(&self, scope: &TableScope<R>) -> TableDef {
        seen(scope, self.def.clone())
    }
}

/// A design (e.g. as a store method returns it after a change) as a scope sees it.
pub fn seen<R: Right>(scope: &TableScope<R>, mut t: TableDef) -> TableDef {
    t.fields.retain(|f| scope.sees(f.id));
    t
}

impl OpenTable {
    /// The design as this user sees it at all: through view if they hold it, else through the
    /// right they do hold (a designer sees the fields their design grant does not hide).
    pub fn visible(&self, auth: &Auth) -> TableDef {
        use daicho_domain::access::{Create, Design, Import, View};
        let p = &auth.principal;
        if let Ok(s) = p.authorize_table::<View>(&self.access) {
            self.seen_by(&s)
        } else if let Ok(s) = p.authorize_table::<Design>(&self.access) {
            self.seen_by(&s)
        } else if let Ok(s) = p.authorize_table::<Create>(&self.access) {
            self.seen_by(&s)
        } else if let Ok(s) = p.authorize_table::<Import>(&self.access) {
            self.seen_by(&s)
        } else {
            TableDef { fields: Vec::new(), ..self.def.clone() }
        }
    }
}

/// The fields of the table, by id or name, that a query's parameters name (as a filter, a sort
/// key or a column) but `seen` (the table as the right sees it) leaves out: fields the right
/// hides. Such a query is answered 422 "unknown field", as for a field that does not exist;
/// naming a field that does exist is also a refused attempt, for the operation history.
pub fn hidden_in_query(open: &OpenTable, seen: &TableDef, pairs: &[(String, String)]) -> Vec<String> {
    let named = pairs.iter().filter_map(|(k, v)| match k.as_str() {
        "sort" | "col" => Some(v.as_str()),
        k => k.strip_prefix("filter.").and_then(|r| r.split_once('.')).map(|(_, name)| name),
    });
    hidden_among(open, seen, named)
}

/// The fields a refusal of written values names that exist but the right hides ("unknown
/// field") or keeps read-only: for the operation history. Record numbers and other fields only
/// the server writes are not a right's matter and are left out.
pub fn refused_fields(open: &OpenTable, seen: &TableDef, err: &AppError) -> Vec<String> {
    let AppError::Invalid(errs) = err else { return Vec::new() };
    let key = |k: &str| -> String {
        // An import's "row:N:field".
        match k.strip_prefix("row:").and_then(|r| r.split_once(':')) {
            Some((_, f)) => f.to_owned(),
            None => k.to_owned(),
        }
    };
    let mut out = hidden_among(
        open,
        seen,
        errs.0
            .iter()
            .filter(|e| e.code == "unknown_field")
            .map(|e| key(&e.field))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str),
    );
    for e in errs.0.iter().filter(|e| e.code == "read_only") {
        let k = key(&e.field);
        if let Some(f) = open.def.fields.iter().find(|f| f.id.to_string() == k)
            && !f.kind.is_generated()
            && !out.iter().any(|n| n == f.name.as_str())
        {
            out.push(f.name.as_str().to_owned());
        }
    }
    out
}

fn hidden_among<'a>(open: &OpenTable, seen: &TableDef, named: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in named {
        if let Some(f) = open.def.fields.iter().find(|f| f.id.to_string() == n || f.name.as_str() == n)
            && !seen.fields.iter().any(|s| s.id == f.id)
            && !out.iter().any(|o| o == f.name.as_str())
        {
            out.push(f.name.as_str().to_owned());
        }
    }
    out
}

/// Whether the store refused a write on the record itself: a field no group covering that
/// record lets the user write (`read_only`), or a new record outside the right's rows
/// (`must_be_you`). Answered 422 by field, and recorded as a refusal.
fn judged_on_record(e: &AppError) -> bool {
    matches!(e, AppError::Invalid(errs) if errs.0.iter().any(|f| f.code == "read_only" || f.code == "must_be_you"))
}

impl Auth {
    /// Records, when `fields` is not empty, that the request named fields of the table its
    /// right hides or keeps read-only (see [`hidden_in_query`], [`refused_fields`]).
    pub async fn record_field_refusal(
        &self,
        state: &AppState,
        ctx: &Ctx,
        open: &OpenTable,
        fields: &[String],
    ) -> AppResult<()> {
        if fields.is_empty() {
            return Ok(());
        }
        self.record_refusal(
            state,
            ctx,
            format!("fields hidden or read-only for this right in table:{}: {}", open.def.id, fields.join(", ")),
        )
        .await
    }

    /// `r` as it is, having recorded the fields its refusal names that the right hides or keeps
    /// read-only.
    pub async fn noting_refusal<T>(
        &self,
        state: &AppState,
        ctx: &Ctx,
        open: &OpenTable,
        seen: &TableDef,
        r: AppResult<T>,
    ) -> AppResult<T> {
        if let Err(e) = &r {
            self.record_field_refusal(state, ctx, open, &refused_fields(open, seen, e)).await?;
        }
        r
    }

    /// A query's parameters checked for fields the right hides (recorded as a refusal when
    /// named), before the query is built.
    pub async fn note_hidden_in_query(
        &self,
        state: &AppState,
        ctx: &Ctx,
        open: &OpenTable,
        seen: &TableDef,
        pairs: &[(String, String)],
    ) -> AppResult<()> {
        self.record_field_refusal(state, ctx, open, &hidden_in_query(open, seen, pairs)).await
    }

    pub async fn open_table(&self, state: &AppState, ctx: &Ctx, raw_id: &str) -> AppResult<OpenTable> {
        self.open_table_with(state, ctx, raw_id, true, true).await
    }

    /// `open_table` for what a page shows beside the table asked for (the records a link field
    /// points at): a table the user may not open is left out without recording a refusal, as
    /// the user asked for nothing there; the operation history would otherwise fill with
    /// refusals at every look at a grid.
    pub async fn peek_table(&self, state: &AppState, ctx: &Ctx, raw_id: &str) -> AppResult<OpenTable> {
        self.open_table_with(state, ctx, raw_id, true, false).await
    }

    /// `open_table` for a request that has just changed the table's design: the design is read
    /// from the database, as the request's design version predates its own change.
    pub async fn reopen_table(&self, state: &AppState, ctx: &Ctx, raw_id: &str) -> AppResult<OpenTable> {
        self.open_table_with(state, ctx, raw_id, false, true).await
    }

    async fn open_table_with(
        &self,
        state: &AppState,
        ctx: &Ctx,
        raw_id: &str,
        cache: bool,
        record: bool,
    ) -> AppResult<OpenTable> {
        let uses = self.authorize::<UseTables>(state, ctx).await?;
        let Ok(id) = raw_id.parse::<TableId>() else {
            if record {
                let shown = crate::ctx::shown_id(raw_id);
                self.record_refusal(state, ctx, format!("table:{shown}: not a table id")).await?;
            }
            return Err(AppError::NotFound);
        };
        // The design comes from this node's cache when the tenant's design version has not
        // moved since it was read. Administrators hold every right whatever the grants; for
        // others the grants are read (at the same time as the design, when that is read).
        let tenant = uses.tenant_id();
        let cached = if cache { state.designs.get(tenant, id, self.design_version) } else { None };
        let admin = self.principal.role == daicho_domain::Role::TenantAdmin;
        let (def, grants) = match cached {
            Some(def) if admin => (def, Vec::new()),
            Some(def) => (def, self.my_grants(state, &uses).await?),
            None => {
                let (def, grants) = if admin {
                    (state.store.table(&uses, id).await, Vec::new())
                } else {
                    let (def, grants) = tokio::join!(state.store.table(&uses, id), self.my_grants(state, &uses));
                    (def, grants?)
                };
                // A table that is not the tenant's (another tenant's, or none at all) is 404
                // like any other; asking for one is recorded, as forced browsing is.
                let def = match def {
                    Err(daicho_store::StoreError::NotFound) if record => {
                        self.record_refusal(state, ctx, format!("no table:{id} in this tenant")).await?;
                        return Err(AppError::NotFound);
                    }
                    other => other?,
                };
                if cache {
                    state.designs.put(tenant, id, self.design_version, &def);
                }
                (def, grants)
            }
        };
        let access = self.principal.table_access(id, grants);
        if access.rights().is_empty() {
            if record {
                self.record_refusal(state, ctx, format!("no right on table:{id}")).await?;
            }
            return Err(AppError::NotFound);
        }
        Ok(OpenTable { def, access })
    }

    /// Every table of the tenant this user holds a right on, with their access to it (the
    /// grants read once): for lists of tables, which leave the others out.
    pub async fn open_tables(&self, state: &AppState, ctx: &Ctx) -> AppResult<Vec<OpenTable>> {
        let uses = self.authorize::<UseTables>(state, ctx).await?;
        let tables = state.store.list_tables(&uses).await?;
        let grants = self.my_grants(state, &uses).await?;
        Ok(tables
            .into_iter()
            .map(|def| {
                let access = self.principal.table_access(def.id, grants.clone());
                OpenTable { def, access }
            })
            .filter(|o| !o.access.rights().is_empty())
            .collect())
    }

    /// The grants this user holds through their groups: kept by this node while the tenant's
    /// design version (which every change to groups, members and grants raises) has not moved
    /// since the session was read, else read from the store.
    pub async fn my_grants(&self, state: &AppState, uses: &Scope<UseTables>) -> AppResult<Vec<TableGrant>> {
        let (tenant, user) = (uses.tenant_id(), uses.actor());
        if let Some(grants) = state.designs.grants(tenant, user, self.design_version) {
            return Ok(grants);
        }
        let grants = state.store.my_grants(uses).await?;
        state.designs.put_grants(tenant, user, self.design_version, &grants);
        Ok(grants)
    }

    /// The capability for right `R` on an open table, or 403 (recorded).
    pub async fn table_right<R: Right>(&self, state: &AppState, ctx: &Ctx, t: &OpenTable) -> AppResult<TableScope<R>> {
        match self.principal.authorize_table::<R>(&t.access) {
            Ok(s) => Ok(s),
            Err(_) => {
                let what = format!("needs {} on table:{}", R::RIGHT.name(), t.def.id);
                self.record_refusal(state, ctx, what).await?;
                Err(AppError::Forbidden)
            }
        }
    }

    /// Records a refusal (also one the store made: a row or field the capability does not
    /// cover) and passes other errors through.
    pub async fn refused(&self, state: &AppState, ctx: &Ctx, e: AppError, what: impl Into<String>) -> AppError {
        if (matches!(e, AppError::Forbidden) || judged_on_record(&e))
            && let Err(err) = self.record_refusal(state, ctx, what.into()).await
        {
            return err;
        }
        e
    }

    /// A store write's result for a page that answers its own refusals (403 through
    /// [`Auth::refused`], 422 on the form): only a refusal on the record is recorded here.
    pub async fn noting_judged<T>(
        &self,
        state: &AppState,
        ctx: &Ctx,
        what: impl Into<String>,
        r: Result<T, daicho_store::StoreError>,
    ) -> AppResult<T> {
        let r = r.map_err(AppError::from);
        if let Err(e) = &r
            && judged_on_record(e)
        {
            self.record_refusal(state, ctx, what.into()).await?;
        }
        r
    }

    /// Records a refusal that the handler answers in its own way (e.g. a 422 naming the rows or
    /// the rule): the operation history shows every refusal, whatever its status code.
    pub async fn record_refusal(&self, state: &AppState, ctx: &Ctx, what: String) -> AppResult<()> {
        let ev = ctx
            .event_by(&self.principal, AuditAction::PermissionDenied, Outcome::Denied)
            .target(ctx.path.clone())
            .details(ctx.refusal(what));
        state.store.append_audit(ev).await?;
        Ok(())
    }

    /// The record number a route names: a positive whole number, or a 404 recorded as a
    /// refusal (as a number that names no record is, see [`Auth::record`]).
    pub async fn record_id(&self, state: &AppState, ctx: &Ctx, raw: &str) -> AppResult<i64> {
        if let Some(id) = raw.parse::<i64>().ok().filter(|n| *n > 0) {
            return Ok(id);
        }
        let shown = crate::ctx::shown_id(raw);
        self.record_refusal(state, ctx, format!("record:{shown}: not a record number")).await?;
        Err(AppError::NotFound)
    }

    /// The record a route names, read within `view`'s rows. One the reader may not see and one
    /// that does not exist are the same 404, and both are recorded as a refusal: forced browsing
    /// through record numbers shows in the operation history.
    pub async fn record(
        &self,
        state: &AppState,
        ctx: &Ctx,
        view: &daicho_domain::access::TableScope<daicho_domain::access::View>,
        def: &daicho_domain::table::TableDef,
        id: i64,
    ) -> AppResult<daicho_store::Record> {
        match state.store.get_record(view, def, id).await {
            Err(daicho_store::StoreError::NotFound) => {
                let what = format!("record:{id} of table:{}: not found or outside the reader's rows", def.id);
                self.record_refusal(state, ctx, what).await?;
                Err(AppError::NotFound)
            }
            other => Ok(other?),
        }
    }

    /// The tenant's users, disabled ones included, for user fields, history and groups.
    pub async fn directory(&self, state: &AppState, ctx: &Ctx) -> AppResult<Vec<daicho_store::Person>> {
        let uses = self.authorize::<UseTables>(state, ctx).await?;
        Ok(state.store.directory(&uses).await?)
    }
}
