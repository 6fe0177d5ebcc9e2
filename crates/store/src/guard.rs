//! What every backend does with a table capability before and after its SQL: the checks are the
//! same in every dialect, so they live here once. Rows a scope does not cover are filtered in
//! each backend's SQL (listing) or checked here (single records); hidden fields never leave
//! the store; fields the scope may not write are refused.

use daicho_domain::access::{Right, TableScope, View};
use daicho_domain::table::{Cell, FieldDef, RecordQuery, TableDef};
use daicho_domain::view::SavedView;
use daicho_domain::{FieldErrors, FieldId, NewAuditEvent, RowRule};

use crate::{Record, StoreError, StoreResult};

/// A record about to be deleted, as the delete's transaction read it: refused as stale when the
/// caller named another version, else its event, when the caller makes one per record.
pub fn deleting(
    old: &Record,
    expected: Option<i64>,
    since: Option<i64>,
    each: Option<&crate::RecordEvent<'_>>,
) -> StoreResult<Option<NewAuditEvent>> {
    if expected.is_some_and(|v| v != old.version) {
        return Err(StoreError::Conflict(FieldErrors::single("version", "stale")));
    }
    check_unchanged_for_bulk(old, since)?;
    Ok(each.map(|each| each(old)))
}

/// Refuses a bulk edit or delete of a record, as stored (read inside the write's transaction),
/// updated after `since` (unix ms): the time of the page the records were chosen on, which
/// showed them (or counted them) as they were then. Without this, a record changed meanwhile
/// (its value now other than the one the user saw, or its way into the filter new) would be
/// overwritten or deleted unseen. Refused as 409 `changed_since_shown` on `ids`.
pub fn check_unchanged_for_bulk(old: &Record, since: Option<i64>) -> StoreResult<()> {
    if since.is_some_and(|at| daicho_domain::audit::unix_ms(old.updated_at) > at) {
        return Err(StoreError::Conflict(FieldErrors::single("ids", "changed_since_shown")));
    }
    Ok(())
}

/// A saved view's spec once field `f` is purged (deleted for good): without its sort keys and
/// columns; `None` when a filter names it (the view cannot run, nor be widened unseen: it is
/// deleted with the field, so that no filter value on a field deleted for good stays behind).
pub fn spec_without_field(
    spec: &daicho_domain::view::ViewSpec,
    f: daicho_domain::FieldId,
) -> Option<daicho_domain::view::ViewSpec> {
    if spec.filters.iter().any(|x| x.field == f) {
        return None;
    }
    let mut out = spec.clone();
    out.sort.retain(|s| s.field != f);
    out.columns.retain(|c| *c != f);
    Some(out)
}

/// The details of a record update's event when the values sent were those stored (no new
/// version is made).
pub const NO_CHANGE: &str = "no change: every value sent was the one stored";

/// The table must be the scope's table, in the scope's tenant.
pub fn check_table<R: Right>(scope: &TableScope<R>, table: &TableDef) -> StoreResult<()> {
    if table.tenant_id != scope.tenant_id() || table.id != scope.table() {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// The saved views a reader is offered: those whose filters name only fields the reader sees,
/// each without the sort keys and columns on fields hidden from the reader (the view then
/// shows the same records, in the order of its other keys, with the columns the reader may
/// see; a view used to vanish when a field it sorted by became hidden). A filter on a hidden
/// field cannot be run for the reader (it would tell them about the field's values) nor left
/// out (the view would show more than it says), so such a view is not offered; offering it
/// would show them that field's id and the filter values its author chose on it.
/// (A field since deleted is not hidden: such a view is offered and refused when run, so that
/// its owner or a designer can still delete it.)
/// Likewise a shared view with a keyword is offered to a reader from whom fields are hidden
/// only if they wrote it: its author may have searched for a value the reader may not see.
pub fn offered_views(scope: &TableScope<View>, mut views: Vec<SavedView>) -> Vec<SavedView> {
    views.retain(|v| {
        v.spec.filters.iter().all(|f| scope.sees(f.field))
            && (v.spec.keyword.is_empty() || !scope.hides_any() || v.created_by == scope.actor())
    });
    for v in &mut views {
        v.spec.sort.retain(|s| scope.sees(s.field));
        v.spec.columns.retain(|c| scope.sees(*c));
    }
    views
}

/// A new record must fall within the rows of the right that makes it: a grant over "records
/// whose 担当 is them" creates (or imports) only records with the creator as 担当, so that
/// nobody plants records in someone else's rows or makes records they may then not see.
/// ("Records they created" holds for every new record.) Checked after the defaults are filled.
/// `given`: the fields the writer set (the others hold defaults), each of which one of the
/// groups covering the new record must leave editable ([`TableScope::writes_on`]).
pub fn check_new_covered<R: Right>(
    scope: &TableScope<R>,
    given: &[FieldId],
    cells: &[(FieldId, Cell)],
) -> StoreResult<()> {
    let me = scope.actor().to_string();
    let cell = |f| cells.iter().find(|(id, _)| *id == f).map(|(_, c)| c.clone());
    if scope.covers(&me, cell) {
        let mut errs = daicho_domain::FieldErrors::new();
        for f in given.iter().filter(|f| !scope.writes_on(**f, &me, cell)) {
            errs.push_owned(f.to_string(), "read_only");
        }
        return if errs.is_empty() { Ok(()) } else { Err(StoreError::Invalid(errs)) };
    }
    // (Named only when the writer sees it: a hidden field's id is not told.)
    let field = scope.rows().all_of.iter().flatten().find_map(|r| match r {
        RowRule::UserIsMe { field } if scope.sees(*field) => Some(field.to_string()),
        _ => None,
    });
    let mut errs = daicho_domain::FieldErrors::new();
    errs.push_owned(field.unwrap_or_default(), "must_be_you");
    Err(StoreError::Invalid(errs))
}

/// Inside a write, on the record as stored: each cell that changes it must be one the scope
/// may write on this record (one of the groups covering it leaves the field editable), else
/// 422 `read_only` by field.
pub fn check_writes_on<R: Right>(scope: &TableScope<R>, old: &Record, cells: &[(FieldId, Cell)]) -> StoreResult<()> {
    let cell = |f: FieldId| old.cells.iter().find(|(id, _)| *id == f).map(|(_, c)| c.clone());
    let mut errs = daicho_domain::FieldErrors::new();
    for (f, c) in cells {
        if cell(*f).unwrap_or(Cell::Null) == *c {
            continue;
        }
        if !scope.writes_on(*f, &old.created_by, cell) {
            errs.push_owned(f.to_string(), "read_only");
        }
    }
    if errs.is_empty() { Ok(()) } else { Err(StoreError::Invalid(errs)) }
}

/// Every cell must be one the scope may write.
pub fn check_writes<R: Right>(scope: &TableScope<R>, cells: &[(FieldId, Cell)]) -> StoreResult<()> {
    if cells.iter().all(|(f, _)| scope.writes(*f)) { Ok(()) } else { Err(StoreError::Forbidden) }
}

/// Whether the scope's row rules cover a record.
pub fn covers<R: Right>(scope: &TableScope<R>, r: &Record) -> bool {
    scope.covers(&r.created_by, |f| r.cells.iter().find(|(id, _)| *id == f).map(|(_, c)| c.clone()))
}

/// Drops the cells of hidden fields.
pub fn redact<R: Right>(scope: &TableScope<R>, r: &mut Record) {
    r.cells.retain(|(f, _)| scope.sees(*f));
}

/// Filters and sorting may use visible fields only (else one could probe hidden values).
pub fn check_query(scope: &TableScope<View>, q: &RecordQuery) -> StoreResult<()> {
    let hidden = |f: FieldId| !scope.sees(f);
    if q.filters.iter().any(|fl| hidden(fl.field)) || q.sort_keys().iter().any(|(f, _)| hidden(*f)) {
        return Err(StoreError::Forbidden);
    }
    Ok(())
}

/// When the scope hides fields that the keyword index covers, the visible searchable fields
/// the keyword must also be found in (so a hidden value cannot be found by searching);
/// `None` when nothing searchable is hidden.
pub fn visible_search_fields(scope: &TableScope<View>, table: &TableDef) -> Option<Vec<FieldId>> {
    let searchable = table.fields.iter().filter(|f| f.searchable());
    if !scope.hides_any() || searchable.clone().all(|f| scope.sees(f.id)) {
        return None;
    }
    Some(searchable.filter(|f| scope.sees(f.id)).map(|f| f.id).collect())
}

/// One condition of a row scope, for a backend to render in its dialect.
#[derive(Debug)]
pub enum RowCond {
    True,
    CreatedBy(String),
    FieldIs(FieldId, String),
    False,
}

/// The scope's rows as SQL-ready conditions: all outer entries must hold, any inner one.
pub fn row_conditions<R: Right>(scope: &TableScope<R>, table: &TableDef) -> Vec<Vec<RowCond>> {
    let me = scope.actor().to_string();
    scope
        .rows()
        .all_of
        .iter()
        .map(|any| {
            any.iter()
                .map(|r| match r {
                    RowRule::All => RowCond::True,
                    RowRule::CreatedByMe => RowCond::CreatedBy(me.clone()),
                    RowRule::UserIsMe { field } if table.fields.iter().any(|f| f.id == *field) => {
                        RowCond::FieldIs(*field, me.clone())
                    }
                    RowRule::UserIsMe { .. } => RowCond::False,
                })
                .collect()
        })
        .collect()
}

/// Refuses the write of a row whose record, as stored (read inside the write's transaction),
/// was updated after the time the row's file gives for it: `since` is (ms, the precision the
/// file keeps in ms), compared at that precision. The row would undo that later change.
pub fn check_unchanged_since(old: &Record, since: Option<(i64, i64)>) -> StoreResult<()> {
    let Some((at, precision)) = since else { return Ok(()) };
    let precision = precision.max(1);
    if daicho_domain::audit::unix_ms(old.updated_at).div_euclid(precision) > at.div_euclid(precision) {
        let mut e = daicho_domain::FieldErrors::new();
        e.push("updated_at", "changed_since_export");
        return Err(StoreError::Conflict(e));
    }
    Ok(())
}

/// Refuses the write of an import's update row whose record, as stored (read inside the
/// import's transaction), is not as the row expects: updated after the file's time
/// (`check_unchanged_since`), or no longer holding the key the row found it by (its key was
/// changed, or given to another record, after the lookup): the row's values would land on a
/// record the file does not mean. Refused as 409 `key_changed` on the key field.
pub fn check_expected(old: &Record, expects: Option<&crate::RowExpects>) -> StoreResult<()> {
    let Some(e) = expects else { return Ok(()) };
    check_unchanged_since(old, e.since)?;
    if let Some((field, key)) = &e.key
        && old.cell(*field).as_ref() != Some(key)
    {
        let mut errs = daicho_domain::FieldErrors::new();
        errs.push_owned(field.to_string(), "key_changed");
        return Err(StoreError::Conflict(errs));
    }
    Ok(())
}

/// An import's update row checked on its record as stored (read inside the import's
/// transaction): the scope must cover it, and it must be as the row expects
/// (`check_expected`); the time the file gives only on the record's `first` row in the part
/// (the next finds it changed by the first), the key on every row.
pub fn check_update_row<R: Right>(
    scope: &TableScope<R>,
    r: &Record,
    expects: Option<&crate::RowExpects>,
    first: bool,
) -> StoreResult<()> {
    if !covers(scope, r) {
        return Err(StoreError::Forbidden);
    }
    let e = expects.map(|e| crate::RowExpects { since: if first { e.since } else { None }, key: e.key.clone() });
    check_expected(r, e.as_ref())
}

/// Rows of an update: a record's id and the cells written on it.
pub type UpdateRows = Vec<(i64, Vec<(FieldId, Cell)>)>;

/// An import's part of updates, checked on the records as stored (read inside its
/// transaction, `old` by id): each record must exist, be covered by the scope, not be updated
/// be as its row expects (`check_expected`), and let the fields that change be
/// written on it. Returns the rows that change something, with only those cells (a row that
/// holds what its record holds is not written). Both stores' multi-row update runs this.
pub fn planned_updates<R: Right>(
    scope: &TableScope<R>,
    old: &std::collections::HashMap<i64, Record>,
    rows: &[(i64, Vec<(FieldId, Cell)>)],
    expects: &[crate::RowExpects],
) -> StoreResult<UpdateRows> {
    let mut changed = Vec::with_capacity(rows.len());
    for (i, (id, cells)) in rows.iter().enumerate() {
        let r = old.get(id).ok_or(StoreError::NotFound)?;
        check_update_row(scope, r, expects.get(i), true)?;
        let cells = changed_cells(r, cells);
        if !cells.is_empty() {
            check_writes_on(scope, r, &cells)?;
            changed.push((*id, cells));
        }
    }
    Ok(changed)
}

/// The history entries (record id, version, changes as JSON) of records written, from each
/// record before (`old`) and after (`now`); a record whose fields did not change has none.
pub fn history_entries(
    ids: &[i64],
    old: &std::collections::HashMap<i64, Record>,
    now: &std::collections::HashMap<i64, Record>,
) -> StoreResult<Vec<(i64, i64, String)>> {
    let mut entries = Vec::new();
    for id in ids {
        let (Some(o), Some(n)) = (old.get(id), now.get(id)) else { return Err(StoreError::NotFound) };
        let changes = changes(o, n);
        if !changes.is_empty() {
            entries.push((n.id, n.version, changes_json(&changes)));
        }
    }
    Ok(entries)
}

/// The cells of a write that change the stored record: a value it already holds is no change,
/// and a write left with none is not made (no new version, no history entry).
pub fn changed_cells(old: &Record, cells: &[(FieldId, Cell)]) -> Vec<(FieldId, Cell)> {
    cells
        .iter()
        .filter(|(f, c)| {
            old.cells.iter().find(|(id, _)| id == f).map_or(!matches!(c, Cell::Null), |(_, held)| held != c)
        })
        .cloned()
        .collect()
}

pub fn changes(old: &Record, new: &Record) -> Vec<(FieldId, Cell, Cell)> {
    new.cells
        .iter()
        .filter_map(|(f, after)| {
            let before = old.cells.iter().find(|(id, _)| id == f).map(|(_, c)| c.clone()).unwrap_or(Cell::Null);
            (before != *after).then(|| (*f, before, after.clone()))
        })
        .collect()
}

fn cell_json(c: &Cell) -> serde_json::Value {
    match c {
        Cell::Null => serde_json::Value::Null,
        Cell::Text(s) => serde_json::Value::String(s.clone()),
        Cell::Int(n) => serde_json::Value::from(*n),
        Cell::Bool(b) => serde_json::Value::Bool(*b),
    }
}

fn json_cell(v: &serde_json::Value) -> Cell {
    match v {
        serde_json::Value::String(s) => Cell::Text(s.clone()),
        serde_json::Value::Number(n) => n.as_i64().map(Cell::Int).unwrap_or(Cell::Null),
        serde_json::Value::Bool(b) => Cell::Bool(*b),
        _ => Cell::Null,
    }
}

/// The stored form of a history entry's changes.
pub fn changes_json(changes: &[(FieldId, Cell, Cell)]) -> String {
    serde_json::Value::Array(
        changes.iter().map(|(f, b, a)| serde_json::json!([f.to_string(), cell_json(b), cell_json(a)])).collect(),
    )
    .to_string()
}

/// The catalogue query that [`check_no_links_into`] reads: the live link fields of a tenant
/// (their table's id and name, their name, their kind as stored), `?`/`$1` for the tenant id.
pub fn live_links_sql(placeholder: &str) -> String {
    format!(
        "SELECT t.id, t.name, f.name, f.kind FROM user_fields f JOIN user_tables t ON t.id = f.table_id \
         WHERE t.tenant_id = {placeholder} AND t.deleted_at IS NULL AND f.deleted_at IS NULL \
         AND f.kind LIKE '%\"link\"%'"
    )
}

/// Refuses (409, naming the links as the web's own check does: `link:table › field`,
/// `linked_to` for a table, `shown_by_link` for a field) to take table `table`, or its field
/// `field`, away (to the trash, or for good) while a live link field of another table (or, for
/// a field, any table) points at it: it would point at nothing, and for good once purged (it
/// could not be pointed elsewhere). `rows` come from [`live_links_sql`], read in the change's
/// own transaction, so a link added at the same moment is either seen or finds no table. A
/// link restored from the trash after its table went there (said to the user as broken) is
/// such a link: the trash keeps the table until the link goes or the table is restored.
pub fn check_no_links_into(
    rows: &[(String, String, String, String)],
    table: daicho_domain::TableId,
    field: Option<FieldId>,
) -> StoreResult<()> {
    use daicho_domain::table::FieldKind;
    let own = table.to_string();
    let mut e = FieldErrors::new();
    for (from, table_name, field_name, kind) in rows {
        if field.is_none() && *from == own {
            continue;
        }
        let Ok(FieldKind::Link { table: to, show }) = serde_json::from_str::<FieldKind>(kind) else { continue };
        if to == table && field.is_none_or(|f| f == show) {
            let code = if field.is_some() { "shown_by_link" } else { "linked_to" };
            e.push_owned(format!("link:{table_name} › {field_name}"), code);
        }
    }
    if e.is_empty() { Ok(()) } else { Err(StoreError::Conflict(e)) }
}

/// What a change of type applied wrote, for its event in the operation history: the records
/// read, the values written again, those that now read differently (accepted), the history
/// entries converted with them.
pub fn retype_counts(records: u64, rewritten: u64, altered: u64, histories: u64) -> String {
    let mut out = format!("; {records} records, {rewritten} values written again");
    if altered > 0 {
        out.push_str(&format!(" ({altered} reading differently, accepted)"));
    }
    out.push_str(&format!(", {histories} history entries converted"));
    out
}

/// Pass one of a change of type, for one record's value: counts it, and a value that does not
/// convert (`failed`, the first [`crate::RETYPE_REPORT_MAX`] listed) or would say something else
/// once converted (`altered`, listed alike, before and after: see
/// `daicho_domain::table::conversion_alters`).
pub fn judge_conversion(
    report: &mut crate::RetypeReport,
    old: &FieldDef,
    new: &FieldDef,
    id: i64,
    cell: &Cell,
    offset: i32,
) {
    use daicho_domain::table::{conversion_alters, convert, shown_text};
    report.records += 1;
    match convert(old, new, cell, offset) {
        Err(code) => {
            report.failed += 1;
            if report.failures.len() < crate::RETYPE_REPORT_MAX {
                report.failures.push((id, shown_text(old, cell, offset), code));
            }
        }
        Ok(converted) if conversion_alters(old, new, cell, &converted, offset) => {
            report.altered += 1;
            if report.alterations.len() < crate::RETYPE_REPORT_MAX {
                report.alterations.push((id, shown_text(old, cell, offset), shown_text(new, &converted, offset)));
            }
        }
        Ok(_) => {}
    }
}

/// A history entry's stored changes after field `old` became `new` (a change of type or of its
/// stored form): its before and after values converted as the records' values were, so that the
/// history keeps reading as it was written. A past value that would not convert is kept as the
/// text it showed. `None` when the entry holds nothing of this field.
pub fn converted_changes(
    stored: &str,
    old: &daicho_domain::table::FieldDef,
    new: &daicho_domain::table::FieldDef,
    offset: i32,
) -> StoreResult<Option<String>> {
    let v: Vec<(String, serde_json::Value, serde_json::Value)> =
        serde_json::from_str(stored).map_err(|e| StoreError::Internal(format!("history: {e}")))?;
    let id = old.id.to_string();
    if !v.iter().any(|(f, _, _)| *f == id) {
        return Ok(None);
    }
    let convert = |j: &serde_json::Value| {
        let c = json_cell(j);
        daicho_domain::table::convert(old, new, &c, offset).unwrap_or_else(|_| match (&c, old.present(&c)) {
            // A text as stored (a multiple choice: one choice per line, as in an export).
            (Cell::Text(s), _) => Cell::Text(s.clone()),
            (_, serde_json::Value::Null) => Cell::Null,
            (_, serde_json::Value::String(s)) => Cell::Text(s),
            (_, other) => Cell::Text(other.to_string()),
        })
    };
    let changes: Vec<(FieldId, Cell, Cell)> = v
        .iter()
        .filter_map(|(f, b, a)| {
            let fid = f.parse::<FieldId>().ok()?;
            Some(if *f == id { (fid, convert(b), convert(a)) } else { (fid, json_cell(b), json_cell(a)) })
        })
        .collect();
    Ok(Some(changes_json(&changes)))
}

/// Reads stored changes, keeping only the fields the scope sees and the table still has (a
/// field in the trash leaves the history with its values, and comes back with them).
pub fn visible_changes<R: Right>(
    scope: &TableScope<R>,
    table: &TableDef,
    stored: &str,
) -> StoreResult<Vec<(FieldId, Cell, Cell)>> {
    let v: Vec<(String, serde_json::Value, serde_json::Value)> =
        serde_json::from_str(stored).map_err(|e| StoreError::Internal(format!("history: {e}")))?;
    Ok(v.into_iter()
        .filter_map(|(f, b, a)| f.parse::<FieldId>().ok().map(|f| (f, json_cell(&b), json_cell(&a))))
        .filter(|(f, _, _)| scope.sees(*f) && table.fields.iter().any(|d| d.id == *f))
        .collect())
}

/// Whether `order` names every field of the table exactly once.
pub fn is_permutation(def: &TableDef, order: &[FieldId]) -> bool {
    let mut a: Vec<FieldId> = def.fields.iter().map(|f| f.id).collect();
    let mut b = order.to_vec();
    a.sort();
    b.sort();
    a == b
}

/// The default values of a table's fields as cells: a new record gets each one it was not
/// given. Generated fields have none; a default that no longer parses is left out. A checkbox
/// without one is unticked (never empty, so that "is unticked" finds every record that shows
/// unticked, also those made by someone who may not write or see it).
pub fn defaults(table: &TableDef) -> Vec<(FieldId, Cell)> {
    table
        .fields
        .iter()
        .filter(|f| !f.kind.is_generated())
        .filter_map(|f| match f.rules.default.as_ref() {
            Some(d) => f.parse(&serde_json::Value::String(d.clone())).ok().map(|c| (f.id, c)),
            None if matches!(f.kind, daicho_domain::table::FieldKind::Checkbox) => Some((f.id, Cell::Bool(false))),
            None => None,
        })
        .collect()
}

/// The fields a new record's writer set: those not at what the record gets anyway, its
/// default, or empty for a field without one (a form or an import sends every field it could
/// write). Emptying a field that has a default is setting it.
pub fn set_by_writer(defaults: &[(FieldId, Cell)], cells: &[(FieldId, Cell)]) -> Vec<FieldId> {
    cells
        .iter()
        .filter(|(f, c)| match defaults.iter().find(|(d, _)| d == f) {
            Some((_, dc)) => dc != c,
            None => !matches!(c, Cell::Null),
        })
        .map(|(f, _)| *f)
        .collect()
}

/// A new record's cells with the default of every field it was not given, also of fields the
/// creator may not write or see: the designer set that value, not the creator (checked by
/// [`check_writes`] before).
pub fn fill_defaults(defaults: &[(FieldId, Cell)], cells: &mut Vec<(FieldId, Cell)>) {
    for (f, c) in defaults {
        if !cells.iter().any(|(g, _)| g == f) {
            cells.push((*f, c.clone()));
        }
    }
}

/// A change of a field's type or rules, judged (allowed, its rules carried) from `seen`, the
/// field as the request saw it, against `old`, the field as the change's transaction reads it:
/// a kind changed since could make it one the rule forbids (an integer into a link), and rules
/// changed since would be undone; either is refused as `design_changed`.
pub fn check_retype(old: &FieldDef, seen: &FieldDef, new: &FieldDef) -> StoreResult<()> {
    if old.kind != seen.kind || old.rules != seen.rules || !daicho_domain::table::retype_allowed(&old.kind, &new.kind) {
        return Err(crate::design_changed());
    }
    Ok(())
}

/// A field the scope hides is not there for it: a designer may not rename, change or delete
/// a field their groups hide from them (NotFound, as for a field that does not exist).
pub fn check_field_seen<R: Right>(scope: &TableScope<R>, field: FieldId) -> StoreResult<()> {
    if scope.sees(field) { Ok(()) } else { Err(StoreError::NotFound) }
}

/// A whole field order from the order of the fields the scope sees: each hidden field keeps
/// its place and the seen ones fill the other places in the given order. `None` when the
/// given order is not every seen field exactly once.
pub fn order_with_hidden<R: Right>(
    scope: &TableScope<R>,
    def: &TableDef,
    seen_order: &[FieldId],
) -> Option<Vec<FieldId>> {
    let mut seen: Vec<FieldId> = def.fields.iter().filter(|f| scope.sees(f.id)).map(|f| f.id).collect();
    let mut given = seen_order.to_vec();
    seen.sort();
    given.sort();
    if seen != given {
        return None;
    }
    let mut next = seen_order.iter();
    Some(def.fields.iter().map(|f| if scope.sees(f.id) { *next.next().unwrap_or(&f.id) } else { f.id }).collect())
}

/// Whether a new field order leaves every field the scope hides where it was.
pub fn keeps_hidden_in_place<R: Right>(scope: &TableScope<R>, def: &TableDef, order: &[FieldId]) -> bool {
    def.fields.iter().enumerate().all(|(i, f)| scope.sees(f.id) || order.get(i) == Some(&f.id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use daicho_domain::access::{Design, FieldAccess, Rights, TableGrant, TableRight};
    use daicho_domain::table::{FieldKind, FieldRules, Name};
    use daicho_domain::{GroupId, LoginId, Principal, Role, SessionId, TableId, TenantId, UserId};

    #[test]
    fn a_row_is_refused_when_its_record_was_updated_after_the_time_its_file_gives() {
        let at = time::macros::datetime!(2026-04-01 09:30:15.250 UTC);
        let r = Record {
            id: 1,
            version: 2,
            cells: Vec::new(),
            created_at: at,
            created_by: String::new(),
            updated_at: at,
            updated_by: String::new(),
        };
        let ms = daicho_domain::audit::unix_ms(at);
        let refused = |since| matches!(check_unchanged_since(&r, since), Err(StoreError::Conflict(_)));
        assert!(!refused(None));
        assert!(!refused(Some((ms, 1))), "the same time");
        assert!(refused(Some((ms - 1, 1))), "a millisecond later");
        // The file keeps seconds, or minutes (a spreadsheet saved it again): compared so.
        assert!(!refused(Some((ms - 250, 1_000))));
        assert!(refused(Some((ms - 1_250, 1_000))));
        assert!(!refused(Some((ms - 15_250, 60_000))));
        assert!(refused(Some((ms - 75_250, 60_000))));
    }

    #[test]
    fn a_row_is_refused_when_its_record_no_longer_holds_the_key_it_was_found_by() {
        let at = time::macros::datetime!(2026-04-01 09:30:15 UTC);
        let key = FieldId::new_random();
        let r = Record {
            id: 1,
            version: 2,
            cells: vec![(key, Cell::Text("C-200".into()))],
            created_at: at,
            created_by: String::new(),
            updated_at: at,
            updated_by: String::new(),
        };
        let expects = |k: &str| crate::RowExpects { since: None, key: Some((key, Cell::Text(k.into()))) };
        assert!(check_expected(&r, Some(&expects("C-200"))).is_ok());
        assert!(check_expected(&r, None).is_ok());
        match check_expected(&r, Some(&expects("C-100"))) {
            Err(StoreError::Conflict(e)) => assert_eq!(e.code_for(&key.to_string()), Some("key_changed")),
            other => panic!("{other:?}"),
        }
        let gone = Record { cells: Vec::new(), ..r.clone() };
        assert!(matches!(check_expected(&gone, Some(&expects("C-200"))), Err(StoreError::Conflict(_))), "emptied");
        // The time is checked too.
        let ms = daicho_domain::audit::unix_ms(at);
        let late = crate::RowExpects { since: Some((ms - 1_000, 1_000)), key: None };
        assert!(matches!(check_expected(&r, Some(&late)), Err(StoreError::Conflict(_))));
    }

    #[test]
    fn a_type_change_judged_from_a_field_that_changed_since_is_refused() {
        let seen = FieldDef {
            id: FieldId::new_random(),
            name: Name::parse("数量").unwrap(),
            kind: FieldKind::Integer,
            rules: FieldRules::default(),
            position: 0,
        };
        let decimal = FieldDef { kind: FieldKind::Decimal { scale: 2 }, ..seen.clone() };
        assert!(check_retype(&seen, &seen, &decimal).is_ok());
        let required = FieldDef { rules: FieldRules { required: true, ..FieldRules::default() }, ..seen.clone() };
        let refused = |r: StoreResult<()>| matches!(r, Err(StoreError::Conflict(ref f)) if f.code_for("values") == Some("design_changed"));
        assert!(refused(check_retype(&required, &seen, &decimal)), "rules changed meanwhile would be undone");
        let text = FieldDef { kind: FieldKind::Text, ..seen.clone() };
        assert!(refused(check_retype(&text, &seen, &decimal)), "kind changed meanwhile");
        let link = FieldDef {
            kind: FieldKind::Link { table: TableId::new_random(), show: FieldId::new_random() },
            ..seen.clone()
        };
        assert!(refused(check_retype(&seen, &seen, &link)), "an integer never becomes a link");
    }

    #[test]
    fn history_values_of_a_changed_field_are_converted_like_the_records() {
        let field = |kind: FieldKind| FieldDef {
            id: FieldId::new_random(),
            name: Name::parse("数量").unwrap(),
            kind,
            rules: FieldRules::default(),
            position: 0,
        };
        let old = field(FieldKind::Integer);
        let new = FieldDef { kind: FieldKind::Decimal { scale: 2 }, ..old.clone() };
        let other = FieldId::new_random();
        let stored =
            changes_json(&[(old.id, Cell::Int(5), Cell::Int(7)), (other, Cell::Int(5), Cell::Text("x".into()))]);
        let back = converted_changes(&stored, &old, &new, 0).unwrap().unwrap();
        let expected =
            changes_json(&[(old.id, Cell::Int(500), Cell::Int(700)), (other, Cell::Int(5), Cell::Text("x".into()))]);
        assert_eq!(back, expected, "only this field's values change");
        assert_eq!(
            converted_changes(&changes_json(&[(other, Cell::Null, Cell::Int(1))]), &old, &new, 0).unwrap(),
            None
        );
        // A past text that would not become a number is kept as it read.
        let text = field(FieldKind::Text);
        let int = FieldDef { kind: FieldKind::Integer, ..text.clone() };
        let stored = changes_json(&[(text.id, Cell::Text("abc".into()), Cell::Text("12".into()))]);
        let back = converted_changes(&stored, &text, &int, 0).unwrap().unwrap();
        assert_eq!(back, changes_json(&[(text.id, Cell::Text("abc".into()), Cell::Int(12))]));
        // A multiple choice whose past choice is no longer offered keeps its text, not JSON.
        let multi = FieldDef { kind: FieldKind::MultiChoice { choices: vec!["a".into(), "c".into()] }, ..text.clone() };
        let fewer = FieldDef { kind: FieldKind::MultiChoice { choices: vec!["a".into()] }, ..text.clone() };
        let stored = changes_json(&[(text.id, Cell::Text("a\nc".into()), Cell::Text("a".into()))]);
        let back = converted_changes(&stored, &multi, &fewer, 0).unwrap().unwrap();
        assert_eq!(back, changes_json(&[(text.id, Cell::Text("a\nc".into()), Cell::Text("a".into()))]));
    }

    #[test]
    fn a_designer_orders_the_fields_they_see_and_hidden_ones_keep_their_place() {
        let p = Principal {
            tenant_id: TenantId::new_random(),
            user_id: UserId::new_random(),
            login_id: LoginId::parse("taro").unwrap(),
            role: Role::Member,
            session_id: SessionId::new_random(),
        };
        let table = TableId::new_random();
        let f: Vec<FieldDef> = (0..4)
            .map(|i| FieldDef {
                id: FieldId::new_random(),
                name: Name::parse(&format!("f{i}")).unwrap(),
                kind: FieldKind::Text,
                rules: FieldRules::default(),
                position: i,
            })
            .collect();
        let ids: Vec<FieldId> = f.iter().map(|f| f.id).collect();
        let def = TableDef {
            id: table,
            tenant_id: p.tenant_id,
            name: Name::parse("t").unwrap(),
            description: String::new(),
            fields: f,
            created_at: time::OffsetDateTime::UNIX_EPOCH,
        };
        let grant = TableGrant {
            group: GroupId::new_random(),
            table,
            rights: Rights::of([TableRight::Design]),
            rows: RowRule::All,
            fields: [(ids[1], FieldAccess::Hidden)].into_iter().collect(),
        };
        let scope = p.authorize_table::<Design>(&p.table_access(table, vec![grant])).unwrap();
        assert!(check_field_seen(&scope, ids[0]).is_ok());
        assert!(matches!(check_field_seen(&scope, ids[1]), Err(StoreError::NotFound)));
        // The seen fields 0, 2, 3 reversed: the hidden field 1 stays second.
        let order = order_with_hidden(&scope, &def, &[ids[3], ids[2], ids[0]]).unwrap();
        assert_eq!(order, [ids[3], ids[1], ids[2], ids[0]]);
        assert!(keeps_hidden_in_place(&scope, &def, &order));
        assert!(!keeps_hidden_in_place(&scope, &def, &[ids[1], ids[3], ids[2], ids[0]]));
        // Naming the hidden field, leaving one out or naming one twice is refused.
        assert!(order_with_hidden(&scope, &def, &[ids[3], ids[1], ids[2], ids[0]]).is_none());
        assert!(order_with_hidden(&scope, &def, &[ids[3], ids[2]]).is_none());
        assert!(order_with_hidden(&scope, &def, &[ids[3], ids[3], ids[0]]).is_none());
    }
}
