//! User tables through the JSON API: the designer (tables and typed fields) and records. Creating
//! a table needs `ManageDesign`; everything on a table needs the table right from the user's
//! groups (`crate::tablecap`), which also hides fields and limits rows. Values are validated per field by the domain before anything is
//! written; every change is recorded with the fields it touched.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use daicho_domain::access::{Create, Delete, Design, Edit, Export, Import, View};
use daicho_domain::table::{
    Cell, FieldDef, FieldKind, FieldRules, Name, RecordQuery, TableDef, check_field_count, check_keyword,
};
use daicho_domain::{AuditAction, FieldErrors, FieldId, ManageDesign, Outcome, TableId, TableScope};
use daicho_store::{ImportPart, Record};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::borrow::Cow;

use crate::ctx::{Ctx, EventExt};
use crate::error::{AppError, AppResult};
use crate::handlers::api::ApiBody;
use crate::session::Auth;
use crate::state::AppState;
use crate::tablecap::OpenTable;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTableBody {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewFieldBody {
    pub name: String,
    pub kind: FieldKind,
    #[serde(default)]
    pub rules: FieldRules,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordBody {
    #[serde(default, deserialize_with = "crate::handlers::api::keys_once")]
    pub values: Map<String, Value>,
    /// Required for updates: the version the edit was based on.
    pub version: Option<i64>,
}

/// The most filters one list takes.
const MAX_FILTERS: usize = 20;

/// Builds a record query from query-string pairs, the same for the API and the grid page:
/// `q` (keyword), `sort` (field id or name) and `dir` (`asc`/`desc`), `after` (the cursor a
/// previous page returned), `limit` (1 to 500), and any number of `filter.<op>.<field>=<value>`
/// (ops: eq, contains, starts_with, gt, gte, lt, lte, empty, not_empty, any_of).
pub(crate) fn record_query(t: &TableDef, pairs: &[(String, String)]) -> AppResult<RecordQuery> {
    let mut q = RecordQuery::default();
    let mut errs = FieldErrors::new();
    let mut mark: Option<String> = None;
    let field = |key: &str| find_field(t, key);
    let (mut sorts, mut dirs) = (Vec::new(), Vec::new());
    for (k, v) in pairs {
        match k.as_str() {
            "q" if !v.trim().is_empty() => match check_keyword(v) {
                Ok(k) => q.keyword = Some(k),
                Err(c) => errs.push("q", c),
            },
            "q" => {}
            "sort" => sorts.push(v.as_str()),
            "dir" => match v.as_str() {
                "asc" => dirs.push(Some(false)),
                "desc" => dirs.push(Some(true)),
                "" => dirs.push(None),
                _ => errs.push("dir", "choice"),
            },
            "limit" if !v.is_empty() => match v.parse::<u32>() {
                Ok(n) if (1..=500).contains(&n) => q.limit = n,
                _ => errs.push("limit", "out_of_range"),
            },
            "after" if !v.is_empty() => match decode_cursor(v) {
                Some((c, then, m)) => {
                    q.after = Some(c);
                    q.after_then = then;
                    mark = m;
                }
                None => errs.push("after", "bad_cursor"),
            },
            key if key.starts_with("filter.") => {
                let rest = &key["filter.".len()..];
                let Some((op, name)) = rest.split_once('.') else {
                    errs.push("filter", "bad_operator");
                    continue;
                };
                match field(name) {
                    None => errs
                        .push_owned(format!("filter.{}", name.chars().take(100).collect::<String>()), "unknown_field"),
                    Some(f) => match f.filter(op, v) {
                        Ok(fl) => q.filters.push(fl),
                        Err(c) => errs.push_owned(f.id.to_string(), c),
                    },
                }
            }
            _ => {}
        }
    }
    // The i-th `dir` goes with the i-th `sort`; an empty `sort` (or "id") adds no key.
    let mut keys: Vec<(FieldId, bool)> = Vec::new();
    for (i, name) in sorts.iter().enumerate() {
        let desc = dirs.get(i).copied().flatten();
        if name.is_empty() || *name == "id" {
            if i == 0 && keys.is_empty() {
                q.descending = desc.unwrap_or(true);
            }
            continue;
        }
        match field(name) {
            Some(f) if !keys.iter().any(|(k, _)| *k == f.id) => keys.push((f.id, desc.unwrap_or(false))),
            Some(_) => {}
            None => errs.push("sort", "unknown_field"),
        }
    }
    if sorts.is_empty() {
        q.descending = dirs.first().copied().flatten().unwrap_or(true);
    }
    if keys.len() > daicho_domain::table::MAX_SORT_KEYS {
        errs.push("sort", "too_many");
    }
    if let Some(((first, desc), rest)) = keys.split_first() {
        q.sort = Some(*first);
        q.descending = *desc;
        q.then = rest.to_vec();
    }
    // (The filters as typed are counted against MAX_FILTERS before they get here, by
    // `with_named_ids`, which also makes a date-time's "equals" two: its span's start and end.
    // Here, the bound of what a query holds at most.)
    if q.filters.len() > 2 * MAX_FILTERS {
        errs.push("filter", "too_many");
    }
    if errs.is_empty() && (!cursor_fits(t, &q) || mark.is_some_and(|m| m != order_mark(t.id, &q))) {
        errs.push("after", "bad_cursor");
    }
    if errs.is_empty() { Ok(q) } else { Err(AppError::Invalid(errs)) }
}

/// Whether a cursor was made for this order: one value per sort key, each of the key's stored
/// type (or empty). A cursor from another list, or edited by hand, would otherwise compare a
/// text with a number and start the page at some other place.
fn cursor_fits(t: &TableDef, q: &RecordQuery) -> bool {
    use daicho_domain::table::Storage;
    let fits = |key: Option<FieldId>, c: &Cell| match (key.and_then(|f| find_field(t, &f.to_string())), c) {
        (_, Cell::Null) => true,
        (None, _) => false,
        (Some(f), c) => matches!(
            (f.kind.storage(), c),
            (Storage::Text, Cell::Text(_)) | (Storage::Int, Cell::Int(_)) | (Storage::Bool, Cell::Bool(_))
        ),
    };
    let Some((first, _)) = &q.after else { return true };
    fits(q.sort, first)
        && q.after_then.len() == q.then.len()
        && q.then.iter().zip(&q.after_then).all(|((f, _), c)| fits(Some(*f), c))
}

/// A cell as CSV text: text as stored (a multiple choice is already one choice per line, as
/// Excel shows it), checkboxes as TRUE / FALSE, numbers, dates and the rest as the API presents
/// them. Borrowed where it can be: the export writes millions of these.
fn export_text<'a>(f: &FieldDef, r: &'a Record, local: &ExportLocal) -> std::borrow::Cow<'a, str> {
    // A date-time in the tenant's time zone, as a spreadsheet reads one ("2026-04-01 09:30:00",
    // read back at the same offset by an import); a user as pages name them, "name (login ID)",
    // which an import reads back too.
    let readable = |c: &Cell| match (c, &f.kind) {
        (Cell::Int(ms), FieldKind::DateTime) => daicho_domain::table::local_text(*ms, local.offset, true),
        (Cell::Text(id), FieldKind::User) => local.users.get(id).cloned(),
        _ => None,
    };
    if daicho_domain::table::system_column(f.id).is_some() {
        let c = r.cell(f.id);
        if let Some(s) = c.as_ref().and_then(readable) {
            return Cow::Owned(s);
        }
        return match c.map(|c| f.present(&c)) {
            Some(Value::String(s)) => Cow::Owned(s),
            _ => Cow::Borrowed(""),
        };
    }
    let Some((_, c)) = r.cells.iter().find(|(id, _)| *id == f.id) else { return Cow::Borrowed("") };
    if let Some(s) = readable(c) {
        return Cow::Owned(s);
    }
    match (c, &f.kind) {
        (Cell::Null, _) => Cow::Borrowed(""),
        (Cell::Text(s), _) => Cow::Borrowed(s.as_str()),
        (Cell::Bool(true), _) => Cow::Borrowed("TRUE"),
        (Cell::Bool(false), _) => Cow::Borrowed("FALSE"),
        (Cell::Int(n), FieldKind::Integer | FieldKind::Link { .. }) => Cow::Owned(n.to_string()),
        (c, _) => match f.present(c) {
            Value::String(s) => Cow::Owned(s),
            Value::Null => Cow::Borrowed(""),
            other => Cow::Owned(other.to_string()),
        },
    }
}

/// Whether a cell would run as a formula in a spreadsheet once its leading apostrophes are
/// taken off: each such cell is exported with one more apostrophe, and the import takes one off,
/// so that a value that itself begins with an apostrophe (`'=1+1`) comes back as it was.
/// The full-width forms of `= + - @` count too: a Japanese spreadsheet may take them as the
/// ASCII ones when it reads the cell.
pub(crate) fn formula_like(s: &str) -> bool {
    s.trim_start_matches('\'').starts_with(FORMULA_STARTS)
}

/// The characters a spreadsheet may run a cell as a formula by, when the cell begins with one.
/// (U+2212, the minus sign, too: a Shift_JIS export writes it as the full-width hyphen-minus.)
pub(crate) const FORMULA_STARTS: [char; 11] =
    ['=', '+', '-', '@', '\t', '\r', '\u{FF1D}', '\u{FF0B}', '\u{FF0D}', '\u{FF20}', '\u{2212}'];

/// What an export's first history entry says: its encoding, the query it ran (filters, keyword,
/// sort and the saved view's, as resolved) and the columns it wrote, each cut at 500 characters.
fn export_started(sjis: bool, pairs: &[(String, String)], t: &TableDef) -> String {
    let cut =
        |s: String| if s.chars().count() > 500 { format!("{}…", s.chars().take(500).collect::<String>()) } else { s };
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().filter(|(k, v)| k != "encoding" && !v.is_empty()))
        .finish();
    let columns = t.fields.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ");
    format!(
        "started; encoding={}; query={}; columns={}",
        if sjis { "shift_jis" } else { "utf-8" },
        cut(query),
        cut(columns)
    )
}

/// Refuses a key that a list of records (`export`: the CSV export) does not take, 422
/// `unknown_parameter`: a misspelt filter (`filters.eq.…`) or a paging key of another API
/// (`page`, `offset`) would otherwise be ignored, and the answer would be every record.
/// `count` is `true` or `false`; the export takes `encoding`, and no `limit` or `count`.
fn check_list_keys(pairs: &[(String, String)], export: bool) -> AppResult<()> {
    let known = |k: &str| match k {
        "q" | "sort" | "dir" | "after" | "col" | "view" => true,
        "limit" | "count" => !export,
        "encoding" => export,
        k => k.starts_with("filter."),
    };
    let mut errs = FieldErrors::new();
    for (k, _) in pairs.iter().filter(|(k, _)| !known(k)) {
        errs.push_owned(k.chars().take(100).collect(), "unknown_parameter");
    }
    if pairs.iter().any(|(k, v)| k == "count" && !matches!(v.as_str(), "" | "true" | "false")) {
        errs.push("count", "choice");
    }
    if errs.is_empty() { Ok(()) } else { Err(AppError::Invalid(errs)) }
}

/// A value for a field, as `FieldDef::parse` reads it, except that a date and time without an
/// offset ("2026-04-01 09:30", as a spreadsheet writes it) is the tenant's local time, at
/// `offset` minutes from UTC.
pub(crate) fn parse_at(f: &FieldDef, v: &Value, offset: i32) -> Result<Cell, &'static str> {
    let local = match (&f.kind, v) {
        (FieldKind::DateTime, Value::String(s)) => daicho_domain::table::local_datetime(s, offset).map(Value::String),
        _ => None,
    };
    f.parse(local.as_ref().unwrap_or(v))
}

/// The span a date-time written without an offset covers, at the tenant's `offset`: a day
/// alone its day, a time to the minute its minute, to the second its second (as RFC 3339, the
/// start and the next span's start); `None` for a time with fractions or an offset of its own
/// (an instant), or anything else.
fn time_span(v: &str, offset: i32) -> Option<(String, String)> {
    let v = v.trim();
    let (start, step) = match date_alone(v) {
        Some(day) => (daicho_domain::table::local_datetime(&day.to_string(), offset)?, time::Duration::DAY),
        None if v.contains('.') => return None,
        None => {
            let start = daicho_domain::table::local_datetime(v, offset)?;
            let colons = v.matches(':').count();
            (start, if colons >= 2 { time::Duration::SECOND } else { time::Duration::MINUTE })
        }
    };
    let rfc = &time::format_description::well_known::Rfc3339;
    // (Checked: the span after 9999-12-31 is past what a date-time holds, and `+` panics.)
    let end = time::OffsetDateTime::parse(&start, rfc).ok()?.checked_add(step)?.format(rfc).ok()?;
    Some((start, end))
}

/// A date written alone ("2026-04-01", "2026/4/1"), with no time of day.
fn date_alone(s: &str) -> Option<time::Date> {
    let s = s.trim();
    if s.contains(':') { None } else { daicho_domain::table::parse_date(s).ok() }
}

/// The time a file gives for a record's last update (`at`, as an export writes it, or as a
/// spreadsheet saved it again: to the minute, the second or the millisecond), as ms and the
/// precision it keeps in ms, for `guard::check_unchanged_since`; `None` for a time that does
/// not read (no check).
fn time_given(at: &str, offset: i32) -> Option<(i64, i64)> {
    let at = at.trim();
    let text = daicho_domain::table::local_datetime(at, offset).unwrap_or_else(|| at.to_owned());
    let file = time::OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339).ok()?;
    let precision: i64 = if at.contains('.') {
        1
    } else if at.matches(':').count() >= 2 {
        1_000
    } else if at.contains(':') {
        60_000
    } else {
        // A date alone (a spreadsheet showing only the day): any time that day, in the
        // tenant's time zone; a record changed after the day's end was changed since.
        return Some((daicho_domain::audit::unix_ms(file) + 86_400_000 - 1, 1));
    };
    Some((daicho_domain::audit::unix_ms(file), precision))
}

/// What an export writes dates and users with: the tenant's offset from UTC in minutes, and each
/// user's id as pages name them ("name (login ID)").
pub(crate) struct ExportLocal {
    offset: i32,
    users: std::collections::HashMap<String, String>,
}

/// Whether a field's exported text could be read as a formula: text that people typed. A number,
/// date, checkbox or record number is written by the server and never is: a negative number
/// keeps its minus sign as a number, so that a spreadsheet still adds it up.
fn may_be_formula(f: &FieldDef) -> bool {
    !matches!(
        f.kind,
        FieldKind::Integer
            | FieldKind::Decimal { .. }
            | FieldKind::Date
            | FieldKind::DateTime
            | FieldKind::Checkbox
            | FieldKind::Link { .. }
    )
}

/// A cell that a spreadsheet would run as a formula gets a leading apostrophe.
fn neutralised(s: std::borrow::Cow<'_, str>) -> std::borrow::Cow<'_, str> {
    if formula_like(&s) { std::borrow::Cow::Owned(format!("'{s}")) } else { s }
}

/// A field of the table the reader sees, by id or name; or a system field (created at/by,
/// updated at/by) by id, name or column name.
pub(crate) fn find_field(t: &TableDef, key: &str) -> Option<FieldDef> {
    t.fields.iter().find(|f| f.id.to_string() == key || f.name.as_str() == key).cloned().or_else(|| {
        daicho_domain::table::system_fields().into_iter().find(|f| {
            f.id.to_string() == key || f.name.as_str() == key || daicho_domain::table::system_column(f.id) == Some(key)
        })
    })
}

/// A filter's values as people read them, turned into what is stored (`with_link_filter_ids`
/// for link fields, then users): a filter on a user field (also "created by" and "updated
/// by") may name the user by login ID, else "name (login ID)" as pages show them, else display
/// name. Each such value becomes the user's id; the tenant's directory is read only when a
/// filter needs it. A value that names no one (or several people by name) becomes the nil id,
/// which matches nothing: an error would tell a reader who may not list users which login IDs
/// exist.
pub(crate) async fn with_named_ids(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    t: &TableDef,
    pairs: Vec<(String, String)>,
) -> AppResult<Vec<(String, String)>> {
    let pairs = with_link_filter_ids(state, ctx, auth, t, pairs).await?;
    // A date-time without an offset ("2026-04-01 09:30", or a date alone) is the tenant's.
    let offset = auth.tenant.policy.utc_offset_minutes;
    let pairs: Vec<(String, String)> = pairs
        .into_iter()
        .flat_map(|(k, v)| {
            let date_time = k
                .strip_prefix("filter.")
                .and_then(|rest| rest.split_once('.'))
                .and_then(|(_, name)| find_field(t, name))
                .is_some_and(|f| matches!(f.kind, FieldKind::DateTime));
            if !date_time {
                return vec![(k, v)];
            }
            let local = |p: &str| daicho_domain::table::local_datetime(p, offset).unwrap_or_else(|| p.to_owned());
            // A time given to the day, the minute or the second means all of it (a record made
            // at 09:30:12.110 is "equal" to 09:30:12, to 09:30 and to that day): "equals" is from
            // its start to the next one's, "at most" and "greater than" are taken at the next
            // one's start.
            if let Some((op, name)) = k.strip_prefix("filter.").and_then(|rest| rest.split_once('.'))
                && op != "any_of"
                && let Some((start, end)) = time_span(&v, offset)
            {
                return match op {
                    "eq" => vec![(format!("filter.gte.{name}"), start), (format!("filter.lt.{name}"), end)],
                    "lte" => vec![(format!("filter.lt.{name}"), end)],
                    "gt" => vec![(format!("filter.gte.{name}"), end)],
                    _ => vec![(k, start)],
                };
            }
            let v = if k.starts_with("filter.any_of.") {
                v.split(',').map(local).collect::<Vec<_>>().join(",")
            } else {
                local(&v)
            };
            vec![(k, v)]
        })
        .collect();
    with_user_ids(state, ctx, auth, t, pairs).await
}

/// The user part of `with_named_ids`: a user filter's login IDs and names as the users' ids
/// (the nil id where no one, or several, answer to one).
pub(crate) async fn with_user_ids(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    t: &TableDef,
    pairs: Vec<(String, String)>,
) -> AppResult<Vec<(String, String)>> {
    // The values of a filter: several only for "any of" (a name may hold a comma).
    let values_of = |k: &str, v: &str| -> Option<Vec<String>> {
        let (op, name) = k.strip_prefix("filter.").and_then(|rest| rest.split_once('.'))?;
        find_field(t, name).filter(|f| matches!(f.kind, FieldKind::User))?;
        Some(if op == "any_of" { v.split(',').map(str::to_owned).collect() } else { vec![v.to_owned()] })
    };
    let names_someone = |k: &str, v: &str| {
        values_of(k, v).is_some_and(|vs| {
            vs.iter().any(|p| !p.trim().is_empty() && p.trim().parse::<daicho_domain::UserId>().is_err())
        })
    };
    if !pairs.iter().any(|(k, v)| names_someone(k, v)) {
        return Ok(pairs);
    }
    let people = auth.directory(state, ctx).await?;
    let id_of = |p: &String| -> String {
        let p = p.trim();
        if p.is_empty() || p.parse::<daicho_domain::UserId>().is_ok() {
            return p.to_owned();
        }
        user_named(&people, p).map(|id| id.to_string()).unwrap_or_else(|| uuid::Uuid::nil().to_string())
    };
    Ok(pairs
        .into_iter()
        .map(|(k, v)| match values_of(&k, &v) {
            Some(vs) if names_someone(&k, &v) => (k, vs.iter().map(id_of).collect::<Vec<_>>().join(",")),
            _ => (k, v),
        })
        .collect())
}

/// An "equals" or "any of" filter on a link field may name linked records by the text they
/// show (as the grid shows them): each such value becomes the numbers of the records of the
/// target whose shown field holds it, as the reader may see them (up to `MAX_ANY_OF`), and the
/// filter "any of" them; a text no record shows is refused (`no_link_shows`).
async fn with_link_filter_ids(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    t: &TableDef,
    pairs: Vec<(String, String)>,
) -> AppResult<Vec<(String, String)>> {
    let link_filter = |k: &str| {
        let (op, name) = k.strip_prefix("filter.")?.split_once('.')?;
        let f = find_field(t, name).filter(|f| matches!(f.kind, FieldKind::Link { .. }))?;
        matches!(op, "eq" | "any_of").then_some((op == "any_of", name.to_owned(), f))
    };
    let numeric = |v: &str| v.trim().is_empty() || v.trim().trim_start_matches('#').parse::<i64>().is_ok();
    // The limits of a query are checked before any text is looked up: each text is a query of
    // the target table, so a request of thousands of them would run thousands of queries.
    // (The same limits `record_query` applies afterwards; texts given twice are looked up once,
    // and one request looks up at most `MAX_ANY_OF` texts in all.)
    let too_many = || AppError::Invalid(FieldErrors::single("filter", "too_many"));
    if pairs.iter().filter(|(k, _)| k.starts_with("filter.")).count() > MAX_FILTERS {
        return Err(too_many());
    }
    let mut looked_up = 0usize;
    let mut out = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        let Some((many, name, f)) = link_filter(&k) else {
            out.push((k, v));
            continue;
        };
        let mut parts: Vec<&str> = if many { v.split(',').collect() } else { vec![v.as_str()] };
        if parts.len() > daicho_domain::table::MAX_ANY_OF {
            return Err(too_many());
        }
        if parts.iter().all(|p| numeric(p)) {
            out.push((k, v));
            continue;
        }
        let mut seen = std::collections::HashSet::new();
        parts.retain(|p| seen.insert(p.trim()));
        let mut ids: Vec<String> = Vec::new();
        for p in parts {
            if numeric(p) {
                ids.push(p.trim().trim_start_matches('#').to_owned());
            } else if let Some(n) = link_number(p) {
                ids.push(n.to_string());
            } else {
                looked_up += 1;
                if looked_up > daicho_domain::table::MAX_ANY_OF {
                    return Err(too_many());
                }
                // (One more than a filter takes: more records showing it are refused, not cut.)
                let found =
                    linked_by_text(state, ctx, auth, &f, p, daicho_domain::table::MAX_ANY_OF as u32 + 1).await?;
                // A text no record shows is said so, rather than matching nothing without a
                // word (a name holding a comma, split by "any of", would be lost so).
                if found.is_empty() {
                    let mut e = FieldErrors::new();
                    e.push_owned(f.id.to_string(), "no_link_shows");
                    return Err(AppError::Invalid(e));
                }
                ids.extend(found.iter().map(i64::to_string));
            }
        }
        ids.sort();
        ids.dedup();
        if ids.len() > daicho_domain::table::MAX_ANY_OF {
            return Err(AppError::Invalid(FieldErrors::single("filter", "too_many")));
        }
        out.push((format!("filter.any_of.{name}"), ids.join(",")));
    }
    Ok(out)
}

/// Whether a record read through `view` holds every field the row rules name (a rule on a
/// field view hides cannot be judged on it).
fn judged(rows: &daicho_domain::access::RowScope, view: &TableScope<View>) -> bool {
    rows.all_of.iter().flatten().all(|r| match r {
        daicho_domain::RowRule::UserIsMe { field } => view.sees(*field),
        _ => true,
    })
}

/// The user a person typed: by login ID (any case), else "name (login ID)" as pages show
/// users, else display name; `None` when no one, or more than one, answers to it.
pub(crate) fn user_named(people: &[daicho_store::Person], p: &str) -> Option<daicho_domain::UserId> {
    let p = p.trim();
    let tiers: [&dyn Fn(&daicho_store::Person) -> bool; 3] =
        [&|u| u.login.as_str().eq_ignore_ascii_case(p), &|u| u.label() == p, &|u| u.name == p];
    for tier in tiers {
        let mut found = people.iter().filter(|u| tier(u));
        match (found.next(), found.next()) {
            (Some(u), None) => return Some(u.id),
            (Some(_), Some(_)) => return None,
            _ => {}
        }
    }
    None
}

/// The cursor after a record: its sort values and id, opaque to clients.
/// A short mark of the table and the order a cursor was made for: a cursor from another table
/// or another order (the list by number, the other direction) would start the page at some
/// other place, or read only the records whose sort value is empty, without a word.
fn order_mark(table: daicho_domain::TableId, q: &RecordQuery) -> String {
    // Not a secret (a cursor is the reader's own), only a check of fit.
    let text = format!("{table}|{:?}|{}|{:?}", q.sort, q.descending, q.then);
    format!("{:08x}", fnv1a(text.as_bytes()) >> 32)
}

/// FNV-1a, 64 bits: a hash whose definition does not change with the compiler (the standard
/// library's may), for marks that pass between nodes and releases.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

pub(crate) fn cursor_after(table: daicho_domain::TableId, q: &RecordQuery, r: &Record) -> String {
    use base64::Engine as _;
    let value = |c: Cell| match c {
        Cell::Text(s) => json!({"t": s}),
        Cell::Int(n) => json!({"i": n}),
        Cell::Bool(b) => json!({"b": b}),
        Cell::Null => Value::Null,
    };
    let ((first, id), then) = r.position(q);
    let c =
        vec![value(first), json!(id), Value::Array(then.into_iter().map(value).collect()), json!(order_mark(table, q))];
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Value::Array(c).to_string())
}

/// A cursor as read: the last row's first sort value and id, the further keys' values, and
/// the mark of the order it was made for (`order_mark`; none in a cursor from before marks).
type Cursor = ((Cell, i64), Vec<Cell>, Option<String>);

/// Reads a page cursor (`next_after`); `None` when it is not one.
fn decode_cursor(s: &str) -> Option<Cursor> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s.as_bytes()).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    let id = v.get(1)?.as_i64()?;
    let cell = |o: &Value| -> Option<Cell> {
        Some(match o {
            Value::Null => Cell::Null,
            o => {
                if let Some(t) = o.get("t").and_then(Value::as_str) {
                    // No stored text holds a control character other than a line end or a tab
                    // (NUL, which PostgreSQL refuses as a parameter, least of all).
                    if t.chars().any(daicho_domain::table::is_stray_control) {
                        return None;
                    }
                    Cell::Text(t.to_owned())
                } else if let Some(i) = o.get("i").and_then(Value::as_i64) {
                    Cell::Int(i)
                } else {
                    Cell::Bool(o.get("b")?.as_bool()?)
                }
            }
        })
    };
    let then = match v.get(2) {
        None => Vec::new(),
        Some(Value::Array(a)) if a.len() < daicho_domain::table::MAX_SORT_KEYS => {
            a.iter().map(cell).collect::<Option<Vec<_>>>()?
        }
        Some(_) => return None,
    };
    // (A cursor made before cursors carried their mark has none: taken as before, by its
    // values' types alone, so that a page open across an upgrade still pages on.)
    let mark = match v.get(3) {
        None => None,
        Some(m) => Some(m.as_str()?.to_owned()),
    };
    Some(((cell(v.get(0)?)?, id), then, mark))
}

pub(crate) fn table_json(t: &TableDef) -> Value {
    json!({
        "id": t.id,
        "name": t.name.as_str(),
        "description": t.description,
        "fields": t.fields.iter().map(|f| json!({
            "id": f.id, "name": f.name.as_str(), "kind": f.kind, "rules": f.rules, "position": f.position,
            "token": crate::handlers::design::field_token(f),
        })).collect::<Vec<_>>(),
    })
}

/// A table as this user sees it, with their rights and the fields they may not change.
/// `all`: every table the user may open, to tell which links' targets they may read: a link
/// field whose table (or shown field) the user may not view shows only that it is a link, not
/// the ids of a table whose existence is not theirs to know.
fn table_json_for(auth: &Auth, t: &OpenTable, all: &[OpenTable]) -> Value {
    let seen = t.visible(auth);
    let mut v = table_json(&seen);
    hide_unreadable_links(&mut v, &seen, auth, all);
    v["my_rights"] = json!(t.access.rights());
    let read_only: Vec<String> = match auth.principal.authorize_table::<Edit>(&t.access) {
        Ok(s) => t.def.fields.iter().filter(|f| s.sees(f.id) && !s.writes(f.id)).map(|f| f.id.to_string()).collect(),
        Err(_) => Vec::new(),
    };
    v["read_only_fields"] = json!(read_only);
    v
}

/// In a table's JSON (`table_json(t)`), a link field whose target table (or shown field) the
/// user may not view (`all`: the tables they may open) becomes `{"type": "link"}`: the ids of
/// a table whose existence is not theirs to know are not given.
fn hide_unreadable_links(v: &mut Value, t: &TableDef, auth: &Auth, all: &[OpenTable]) {
    let readable = |f: &FieldDef| match &f.kind {
        FieldKind::Link { table, show } => all.iter().any(|o| {
            o.def.id == *table && auth.principal.authorize_table::<View>(&o.access).is_ok_and(|view| view.sees(*show))
        }),
        _ => true,
    };
    if let Some(fields) = v["fields"].as_array_mut() {
        for (json, f) in fields.iter_mut().zip(&t.fields) {
            if !readable(f) {
                json["kind"] = json!({"type": "link"});
            }
        }
    }
}

/// A table's JSON as an answer to a change of its design gives it (`table_json`, the links the
/// user may not read reduced as `hide_unreadable_links` does).
pub(crate) async fn design_json(state: &AppState, ctx: &Ctx, auth: &Auth, t: &TableDef) -> AppResult<Value> {
    let mut v = table_json(t);
    let all = auth.open_tables(state, ctx).await?;
    hide_unreadable_links(&mut v, t, auth, &all);
    Ok(v)
}

fn record_json(t: &TableDef, r: &Record) -> Value {
    let mut values = Map::new();
    for (fid, cell) in &r.cells {
        if let Some(f) = t.fields.iter().find(|f| f.id == *fid) {
            values.insert(fid.to_string(), f.present(cell));
        }
    }
    let fmt = |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).ok();
    json!({
        "id": r.id, "version": r.version, "values": values,
        "created_at": fmt(r.created_at), "created_by": r.created_by,
        "updated_at": fmt(r.updated_at), "updated_by": r.updated_by,
    })
}

/// Parses submitted values (keyed by field id or name) into cells; every error is reported,
/// keyed by field id. `t` is the design as the user sees it, so a hidden field is unknown; a
/// field the user may not write (`writes`) is refused when submitted and otherwise left alone.
/// `offset`: the tenant's, at which a date and time without one is read. With `all`, writable
/// fields not submitted are parsed as empty (so that required rules apply
/// on create).
pub(crate) fn parse_values(
    t: &TableDef,
    values: &Map<String, Value>,
    all: bool,
    writes: &dyn Fn(FieldId) -> bool,
    offset: i32,
) -> AppResult<Vec<(FieldId, Cell)>> {
    let mut errs = FieldErrors::new();
    let mut cells = Vec::new();
    for key in values.keys() {
        if !t.fields.iter().any(|f| f.id.to_string() == *key || f.name.as_str() == key) {
            errs.push_owned(key.chars().take(100).collect(), "unknown_field");
        }
    }
    for f in &t.fields {
        let v = values.get(&f.id.to_string()).or_else(|| values.get(f.name.as_str()));
        // One field named twice, by its id and by its name: which value was meant is unknown.
        if values.contains_key(&f.id.to_string()) && values.contains_key(f.name.as_str()) {
            errs.push_owned(f.id.to_string(), "named_twice");
            continue;
        }
        if f.kind.is_generated() {
            if v.is_some_and(|v| !v.is_null()) {
                errs.push_owned(f.id.to_string(), "read_only");
            }
            continue;
        }
        if !writes(f.id) {
            if v.is_some() {
                errs.push_owned(f.id.to_string(), "read_only");
            }
            continue;
        }
        // A new record gets a field's default when no value is given for it.
        let default = f.rules.default.clone().map(Value::String);
        let v = match (v, all) {
            (Some(v), _) => v,
            (None, true) => default.as_ref().unwrap_or(&Value::Null),
            (None, false) => continue,
        };
        match parse_at(f, v, offset) {
            Ok(c) => cells.push((f.id, c)),
            Err(code) => errs.push_owned(f.id.to_string(), code),
        }
    }
    if errs.is_empty() { Ok(cells) } else { Err(AppError::Invalid(errs)) }
}

/// A new record needs every required field filled: one the creator may not write (hidden or
/// read-only for them) is filled by its default value in the store; without one, no record of
/// theirs could be complete, so creating is refused, without naming a field they may not see.
pub(crate) fn check_fillable(def: &TableDef, writes: &dyn Fn(FieldId) -> bool) -> AppResult<()> {
    // The defaults the store fills in (a default that gives no value, such as a blank one saved
    // before blank defaults were refused, is none).
    let filled = daicho_store::guard::defaults(def);
    let unfillable = def.fields.iter().any(|f| {
        let has_default = filled.iter().any(|(id, c)| *id == f.id && *c != Cell::Null);
        // A unique field's default fills one record only: the creator's next record would
        // collide with it on a value they can neither see nor change.
        !f.kind.is_generated()
            && !writes(f.id)
            && ((f.rules.required && !has_default) || (f.rules.unique && has_default))
    });
    if unfillable { Err(AppError::Invalid(FieldErrors::single("values", "required_unwritable"))) } else { Ok(()) }
}

/// User fields must name users of the tenant.
pub(crate) async fn check_users(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    t: &TableDef,
    rows: &[&[(FieldId, Cell)]],
) -> AppResult<()> {
    let user_fields: Vec<FieldId> =
        t.fields.iter().filter(|f| matches!(f.kind, FieldKind::User)).map(|f| f.id).collect();
    if user_fields.is_empty() {
        return Ok(());
    }
    let known = known_users(state, ctx, auth).await?;
    let mut errs = FieldErrors::new();
    for cells in rows {
        for (f, c) in cells.iter() {
            if let Cell::Text(s) = c
                && user_fields.contains(f)
                && let Some(code) = user_problem(&known, s)
            {
                errs.push_owned(f.to_string(), code);
            }
        }
    }
    if errs.is_empty() { Ok(()) } else { Err(AppError::Invalid(errs)) }
}

/// The tenant's users by id, and whether each is active.
async fn known_users(state: &AppState, ctx: &Ctx, auth: &Auth) -> AppResult<std::collections::HashMap<String, bool>> {
    Ok(auth.directory(state, ctx).await?.into_iter().map(|p| (p.id.to_string(), p.active)).collect())
}

/// Why a user id may not be written into a user field now: not one of the tenant's users
/// (`unknown_user`), or disabled (`user_disabled`: a leaver is no longer given records, as
/// the form no longer offers them; a value a record already holds is not written again, so
/// it stays).
fn user_problem(known: &std::collections::HashMap<String, bool>, id: &str) -> Option<&'static str> {
    match known.get(id) {
        None => Some("unknown_user"),
        Some(false) => Some("user_disabled"),
        Some(true) => None,
    }
}

/// The distinct record ids a link field holds across some rows of cells.
fn linked_ids<'a>(field: FieldId, rows: impl Iterator<Item = &'a [(FieldId, Cell)]>) -> Vec<i64> {
    let mut ids: Vec<i64> = rows
        .flat_map(|cells| cells.iter())
        .filter(|(fid, _)| *fid == field)
        .filter_map(|(_, c)| if let Cell::Int(n) = c { Some(*n) } else { None })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// A new field as the operation history records it: its name, type, the type's settings
/// (choices, decimals, link target, number prefix) and its rules, so that the history shows
/// what the field started with.
pub(crate) fn field_created(field: &FieldDef) -> String {
    let json = |v: Result<String, serde_json::Error>| v.unwrap_or_default();
    format!(
        "name={}; type={}; settings={}; rules={}",
        field.name.as_str(),
        field.kind.name(),
        json(serde_json::to_string(&field.kind)),
        json(serde_json::to_string(&field.rules))
    )
}

/// User and link fields must name users of the tenant and records the user may see.
/// A limit the store checks in its transaction (`tables` or `fields` `too_many`: 500 tables,
/// 200 fields, those in the trash counted) is refused as invalid, 422, like every other limit.
pub(crate) fn limit_is_invalid(e: daicho_store::StoreError) -> AppError {
    match AppError::from(e) {
        AppError::Conflict(f)
            if f.code_for("tables") == Some("too_many") || f.code_for("fields") == Some("too_many") =>
        {
            AppError::Invalid(f)
        }
        other => other,
    }
}

/// The cells of an edit that change the record: a link or user the record already holds is
/// not checked again (the editor may not see the linked record, or the user may have left).
pub(crate) fn changed(cells: &[(FieldId, Cell)], old: &Record) -> Vec<(FieldId, Cell)> {
    cells.iter().filter(|(f, c)| old.cell(*f).as_ref() != Some(c)).cloned().collect()
}

/// When a new record's values fail to parse, its links and users that did parse are checked
/// as well, so that every problem is told at once rather than one round after another.
pub(crate) async fn and_ref_problems(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    t: &TableDef,
    values: &Map<String, Value>,
    parsed: AppResult<Vec<(FieldId, Cell)>>,
) -> AppResult<Vec<(FieldId, Cell)>> {
    let Err(AppError::Invalid(mut errs)) = parsed else { return parsed };
    let offset = auth.tenant.policy.utc_offset_minutes;
    let cells: Vec<(FieldId, Cell)> = t
        .fields
        .iter()
        .filter(|f| matches!(f.kind, FieldKind::Link { .. } | FieldKind::User))
        .filter(|f| errs.code_for(&f.id.to_string()).is_none())
        .filter_map(|f| {
            let v = values.get(&f.id.to_string()).or_else(|| values.get(f.name.as_str()))?;
            parse_at(f, v, offset).ok().filter(|c| !matches!(c, Cell::Null)).map(|c| (f.id, c))
        })
        .collect();
    if !cells.is_empty()
        && let Err(AppError::Invalid(more)) = check_refs(state, ctx, auth, t, &[&cells]).await
    {
        errs.0.extend(more.0);
    }
    Err(AppError::Invalid(errs))
}

pub(crate) async fn check_refs(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    t: &TableDef,
    rows: &[&[(FieldId, Cell)]],
) -> AppResult<()> {
    check_users(state, ctx, auth, t, rows).await?;
    let mut errs = FieldErrors::new();
    for f in &t.fields {
        let FieldKind::Link { table, .. } = &f.kind else { continue };
        let ids = linked_ids(f.id, rows.iter().copied());
        if ids.is_empty() {
            continue;
        }
        // Linking reads the target: it takes view there, with its row rules.
        let target = match auth.open_table(state, ctx, &table.to_string()).await {
            Ok(o) => o,
            Err(AppError::NotFound) => {
                errs.push_owned(f.id.to_string(), "unknown_record");
                continue;
            }
            Err(e) => return Err(e),
        };
        let view = match auth.table_right::<View>(state, ctx, &target).await {
            Ok(v) => v,
            Err(AppError::Forbidden) => {
                errs.push_owned(f.id.to_string(), "unknown_record");
                continue;
            }
            Err(e) => return Err(e),
        };
        for id in ids {
            match state.store.get_record(&view, &target.def, id).await {
                Ok(_) => {}
                // (Recorded as a record asked for by number is: a link is a way to probe
                // another table's record numbers.)
                Err(daicho_store::StoreError::NotFound) => {
                    let what = format!(
                        "link to record:{id} of table:{}: not found or outside the reader's rows",
                        target.def.id
                    );
                    auth.record_refusal(state, ctx, what).await?;
                    errs.push_owned(f.id.to_string(), "unknown_record");
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    if errs.is_empty() { Ok(()) } else { Err(AppError::Invalid(errs)) }
}

/// An import's rows whose user field names no user of the tenant, or whose link names no
/// record the importer may view: (index in `rows`, field, code). A link target the importer
/// may not open or view at all goes into `refusals` (to be recorded by the caller) instead of
/// being recorded here: an import's transaction may be open, and on SQLite a write now would
/// wait for it.
async fn ref_problems(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    t: &TableDef,
    rows: &[&[(FieldId, Cell)]],
    refusals: &mut Vec<String>,
) -> AppResult<Vec<(usize, FieldId, &'static str)>> {
    let mut out = Vec::new();
    let user_fields: Vec<FieldId> =
        t.fields.iter().filter(|f| matches!(f.kind, FieldKind::User)).map(|f| f.id).collect();
    // (The directory is read only when the rows name users.)
    let names_users =
        rows.iter().any(|cells| cells.iter().any(|(f, c)| user_fields.contains(f) && matches!(c, Cell::Text(_))));
    if names_users {
        let known = known_users(state, ctx, auth).await?;
        for (i, cells) in rows.iter().enumerate() {
            for (f, c) in cells.iter() {
                if let Cell::Text(s) = c
                    && user_fields.contains(f)
                    && let Some(code) = user_problem(&known, s)
                {
                    out.push((i, *f, code));
                }
            }
        }
    }
    for f in &t.fields {
        let FieldKind::Link { table, .. } = &f.kind else { continue };
        let ids = linked_ids(f.id, rows.iter().copied());
        if ids.is_empty() {
            continue;
        }
        // Linking reads the target: it takes view there, with its row rules.
        let target = match auth.peek_table(state, ctx, &table.to_string()).await {
            Ok(o) => auth.principal.authorize_table::<View>(&o.access).ok().map(|v| (o, v)),
            Err(AppError::NotFound) => None,
            Err(e) => return Err(e),
        };
        let missing: std::collections::HashSet<i64> = match target {
            None => {
                refusals.push(format!("import links to table:{table}, which the importer may not view"));
                ids.into_iter().collect()
            }
            Some((target, view)) => {
                let mut missing = std::collections::HashSet::new();
                for id in ids {
                    match state.store.get_record(&view, &target.def, id).await {
                        Ok(_) => {}
                        Err(daicho_store::StoreError::NotFound) => {
                            missing.insert(id);
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                // (Recorded once for the part, as links elsewhere are one by one: a file is a
                // way to probe many record numbers at once.)
                if !missing.is_empty() {
                    let mut some: Vec<i64> = missing.iter().copied().collect();
                    some.sort_unstable();
                    let shown: Vec<String> = some.iter().take(20).map(i64::to_string).collect();
                    refusals.push(format!(
                        "import links to {} records of table:{table} not found or outside the reader's rows: {}{}",
                        some.len(),
                        shown.join(","),
                        if some.len() > 20 { ",…" } else { "" }
                    ));
                }
                missing
            }
        };
        for (i, cells) in rows.iter().enumerate() {
            if cells.iter().any(|(fid, c)| *fid == f.id && matches!(c, Cell::Int(n) if missing.contains(n))) {
                out.push((i, f.id, "unknown_record"));
            }
        }
    }
    out.sort_by_key(|(i, _, _)| *i);
    Ok(out)
}

/// The lookups of link fields: for each (link field, record id) the linked record's shown
/// field, as the user may see it (nothing for targets, rows or fields they may not see). A
/// page passes the tenant's offset from UTC (a date-time label as pages show date-times); the
/// API none (UTC).
pub(crate) async fn lookups(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    t: &TableDef,
    records: &[Record],
    offset: Option<i32>,
) -> AppResult<std::collections::HashMap<(FieldId, i64), String>> {
    let mut out = std::collections::HashMap::new();
    for f in &t.fields {
        let FieldKind::Link { table, show } = &f.kind else { continue };
        let ids = linked_ids(f.id, records.iter().map(|r| r.cells.as_slice()));
        if ids.is_empty() {
            continue;
        }
        let Ok(target) = auth.peek_table(state, ctx, &table.to_string()).await else { continue };
        let Ok(view) = auth.principal.authorize_table::<View>(&target.access) else { continue };
        let Some(show_def) = target.def.fields.iter().find(|d| d.id == *show) else { continue };
        for id in ids {
            if let Ok(r) = state.store.get_record(&view, &target.def, id).await
                && let Some((_, c)) = r.cells.iter().find(|(fid, _)| fid == show)
            {
                // (On pages, a date-time as the grid shows one: "2026-04-01 09:30".)
                let shown = match (offset, c) {
                    (Some(o), Cell::Int(ms)) if matches!(show_def.kind, FieldKind::DateTime) => {
                        daicho_domain::table::local_text(*ms, o, false).map_or(Value::Null, Value::String)
                    }
                    (Some(o), _) => crate::handlers::table_pages::on_page(show_def, c, o),
                    (None, _) => show_def.present(c),
                };
                let label = match shown {
                    Value::String(s) => s,
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                out.insert((f.id, id), label);
            }
        }
    }
    Ok(out)
}

/// Whether a link filter's value holds any text of a linked record (not only record numbers:
/// "12", "#12", blank): "#12 株式会社テスト", as the grid's link input writes it, holds the
/// record's text too.
pub(crate) fn names_link_by_text(value: &str) -> bool {
    value.split(',').any(|p| {
        let p = p.trim();
        !(p.is_empty() || p.trim_start_matches('#').parse::<i64>().is_ok())
    })
}

/// Whether the reader may read the text a link field shows: may view the link's table and
/// sees the field it shows.
pub(crate) async fn reads_link_text(state: &AppState, ctx: &Ctx, auth: &Auth, f: &FieldDef) -> bool {
    let FieldKind::Link { table, show } = &f.kind else { return false };
    let Ok(target) = auth.peek_table(state, ctx, &table.to_string()).await else { return false };
    let Ok(view) = auth.principal.authorize_table::<View>(&target.access) else { return false };
    target.def.fields.iter().any(|d| d.id == *show && view.sees(d.id))
}

/// The records of link field `f`'s target whose shown field holds `text`, as the user may see
/// them (none when they may not view the target or its shown field): at most `limit` ids.
async fn linked_by_text(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    f: &FieldDef,
    text: &str,
    limit: u32,
) -> AppResult<Vec<i64>> {
    let FieldKind::Link { table, show } = &f.kind else { return Ok(Vec::new()) };
    let Ok(target) = auth.peek_table(state, ctx, &table.to_string()).await else { return Ok(Vec::new()) };
    let Ok(view) = auth.principal.authorize_table::<View>(&target.access) else { return Ok(Vec::new()) };
    let Some(show_def) = target.def.fields.iter().find(|d| d.id == *show && view.sees(d.id)) else {
        return Ok(Vec::new());
    };
    let Ok(filter) = show_def.filter("eq", text.trim()) else { return Ok(Vec::new()) };
    let q = RecordQuery { filters: vec![filter], limit, ..Default::default() };
    Ok(state.store.list_records(&view, &target.def, &q).await?.into_iter().map(|r| r.id).collect())
}

/// The record number a link value names when it is written as forms show a link ("#12",
/// "#12 株式会社テスト", or "株式会社テスト (#12)" as the form's list shows it); `None` else.
pub(crate) fn link_number(v: &str) -> Option<i64> {
    let v = v.trim();
    // As the form's list shows a record: "株式会社テスト (#12)".
    if let Some(n) = v.strip_suffix(')').and_then(|r| r.rsplit_once("(#")).and_then(|(_, n)| n.parse().ok()) {
        return Some(n);
    }
    v.strip_prefix('#')?.split_whitespace().next()?.parse().ok()
}

/// Link values written by what their record shows: a value of a link field that is not a
/// record number ("12", "#12", "#12 株式会社テスト" as forms show one) names the record of the
/// target whose shown field holds it (as the writer may see the target), and becomes its
/// number. A text no such record shows, or several do, is reported on the field
/// (`no_link_shows`, `ambiguous_link`) and left as it was; the caller adds those errors to the
/// values' own (`with_errors`).
pub(crate) async fn with_link_ids(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    t: &TableDef,
    values: &Map<String, Value>,
) -> AppResult<(Map<String, Value>, FieldErrors)> {
    let mut out = values.clone();
    let mut errs = FieldErrors::new();
    for f in t.fields.iter().filter(|f| matches!(f.kind, FieldKind::Link { .. })) {
        for key in [f.id.to_string(), f.name.as_str().to_owned()] {
            let Some(Value::String(v)) = out.get(&key) else { continue };
            let v = v.trim().to_owned();
            if v.is_empty() || f.parse(&Value::String(v.clone())).is_ok() {
                continue;
            }
            if let Some(n) = link_number(&v) {
                out.insert(key, Value::String(n.to_string()));
                continue;
            }
            match linked_by_text(state, ctx, auth, f, &v, 2).await?.as_slice() {
                [id] => {
                    out.insert(key, Value::String(id.to_string()));
                }
                [] => errs.push_owned(f.id.to_string(), "no_link_shows"),
                _ => errs.push_owned(f.id.to_string(), "ambiguous_link"),
            }
        }
    }
    Ok((out, errs))
}

/// `parsed` with `extra` errors added, each in place of the value's own error on its field
/// ("not a number" for a text no linked record shows), but not of a refusal of the field
/// itself (read-only, unknown, named twice), which stays, to be recorded as such.
pub(crate) fn with_errors<T>(parsed: AppResult<T>, extra: FieldErrors) -> AppResult<T> {
    if extra.is_empty() {
        return parsed;
    }
    let refusal = |code: &str| matches!(code, "read_only" | "unknown_field" | "named_twice");
    match parsed {
        Ok(_) => Err(AppError::Invalid(extra)),
        Err(AppError::Invalid(mut e)) => {
            let refused: Vec<String> =
                e.0.iter().filter(|fe| refusal(fe.code)).map(|fe| fe.field.to_string()).collect();
            e.0.retain(|fe| refusal(fe.code) || extra.0.iter().all(|x| x.field != fe.field));
            e.0.extend(extra.0.into_iter().filter(|x| !refused.iter().any(|r| *r == x.field)));
            Err(AppError::Invalid(e))
        }
        Err(other) => Err(other),
    }
}

/// Checks a new link field: its target is a table the designer may view, and the shown field
/// one of its fields they see (the same tables and fields [`link_targets`] offers; anything
/// else is an unknown table or field, whether or not it exists).
pub(crate) async fn check_link_kind(state: &AppState, ctx: &Ctx, auth: &Auth, kind: &FieldKind) -> AppResult<()> {
    let FieldKind::Link { table, show } = kind else { return Ok(()) };
    let unknown_table = || AppError::Invalid(FieldErrors::single("kind", "unknown_table"));
    let target = match auth.open_table(state, ctx, &table.to_string()).await {
        Ok(t) => t,
        Err(AppError::NotFound) => return Err(unknown_table()),
        Err(e) => return Err(e),
    };
    let view = match auth.table_right::<View>(state, ctx, &target).await {
        Ok(v) => v,
        Err(AppError::Forbidden) => return Err(unknown_table()),
        Err(e) => return Err(e),
    };
    let seen = target.seen_by(&view);
    match seen.fields.iter().find(|f| f.id == *show) {
        // Not a link (a label of a label) nor a user (its stored value is the user's id, which
        // says nothing to the reader of a link).
        Some(f) if !matches!(f.kind, FieldKind::Link { .. } | FieldKind::User) => Ok(()),
        _ => {
            // A field of the target the designer may not see: recorded as refused.
            let hidden = crate::tablecap::hidden_in_query(&target, &seen, &[("sort".to_owned(), show.to_string())]);
            auth.record_field_refusal(state, ctx, &target, &hidden).await?;
            Err(AppError::Invalid(FieldErrors::single("kind", "unknown_field")))
        }
    }
}

/// What a new link field may point at, as ("table id:field id", "table › field"): the fields
/// (other than links and users) that the designer sees of the tables they may view. A designer of one
/// table learns nothing here of tables and fields they may not see.
pub(crate) async fn link_targets(state: &AppState, ctx: &Ctx, auth: &Auth) -> AppResult<Vec<(String, String)>> {
    let mut out = Vec::new();
    for OpenTable { def, access } in auth.open_tables(state, ctx).await? {
        let Ok(view) = auth.principal.authorize_table::<View>(&access) else { continue };
        out.extend(
            def.fields
                .iter()
                .filter(|f| view.sees(f.id) && !matches!(f.kind, FieldKind::Link { .. } | FieldKind::User))
                .map(|f| (format!("{}:{}", def.id, f.id), format!("{} › {}", def.name.as_str(), f.name.as_str()))),
        );
    }
    Ok(out)
}

fn with_links(v: &mut Value, r: &Record, links: &std::collections::HashMap<(FieldId, i64), String>) {
    let mut m = Map::new();
    for (fid, c) in &r.cells {
        if let Cell::Int(n) = c
            && let Some(label) = links.get(&(*fid, *n))
        {
            m.insert(fid.to_string(), Value::String(label.clone()));
        }
    }
    if !m.is_empty() {
        v["lookups"] = Value::Object(m);
    }
}

pub async fn list_tables(State(state): State<AppState>, ctx: Ctx, auth: Auth) -> AppResult<Json<Value>> {
    let all = auth.open_tables(&state, &ctx).await?;
    let out: Vec<Value> = all.iter().map(|o| table_json_for(&auth, o, &all)).collect();
    Ok(Json(json!({"tables": out})))
}

pub async fn create_table(State(state): State<AppState>, ctx: Ctx, auth: Auth, body: ApiBody) -> AppResult<Response> {
    let scope = auth.authorize::<ManageDesign>(&state, &ctx).await?;
    let b: NewTableBody = body.parse()?;
    let mut errs = FieldErrors::new();
    let name = Name::parse(&b.name).map_err(|c| errs.push("name", c)).ok();
    if let Err(c) = daicho_domain::table::check_description(&b.description) {
        errs.push("description", c);
    }
    let Some(name) = name.filter(|_| errs.is_empty()) else { return Err(AppError::Invalid(errs)) };
    let id = TableId::new_random();
    let ev = ctx
        .event_by(&auth.principal, AuditAction::TableCreate, Outcome::Success)
        .target(format!("table:{id}"))
        .details(format!("name={}", name.as_str()));
    let t = state.store.create_table(&scope, id, name, b.description, ctx.now, ev).await.map_err(limit_is_invalid)?;
    Ok((StatusCode::CREATED, Json(json!({"table": table_json(&t)}))).into_response())
}

pub async fn get_table(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(tid): Path<String>,
) -> AppResult<Json<Value>> {
    let t = auth.open_table(&state, &ctx, &tid).await?;
    let all = auth.open_tables(&state, &ctx).await?;
    Ok(Json(json!({"table": table_json_for(&auth, &t, &all)})))
}

pub async fn add_field(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(tid): Path<String>,
    body: ApiBody,
) -> AppResult<Response> {
    let open = auth.open_table(&state, &ctx, &tid).await?;
    let scope = auth.table_right::<Design>(&state, &ctx, &open).await?;
    let mut b: NewFieldBody = body.parse()?;
    // (A date-time default may be written as the forms write date-times, in the tenant's time.)
    b.rules = crate::handlers::table_pages::local_default(&b.kind, b.rules, auth.tenant.policy.utc_offset_minutes);
    let t = &open.def;
    check_field_count(t.fields.len()).map_err(AppError::Invalid)?;
    let name = Name::parse_field(&b.name).map_err(|c| AppError::Invalid(FieldErrors::single("name", c)))?;
    FieldDef::validate(&b.kind, &b.rules).map_err(AppError::Invalid)?;
    check_link_kind(&state, &ctx, &auth, &b.kind).await?;
    let field = FieldDef { id: FieldId::new_random(), name, kind: b.kind, rules: b.rules, position: 0 };
    let ev = ctx
        .event_by(&auth.principal, AuditAction::FieldCreate, Outcome::Success)
        .target(format!("table:{} field:{}", t.id, field.id))
        .details(field_created(&field));
    let fid = field.id;
    let t = state.store.add_field(&scope, t.id, field, ev).await.map_err(limit_is_invalid)?;
    let empty = empty_in_new_required(&state, &auth, &open, &t, fid).await;
    let mut out = json!({"table": design_json(&state, &ctx, &auth, &crate::tablecap::seen(&scope, t)).await?});
    if let Some((n, capped)) = empty {
        out["records_without_value"] = json!(n);
        out["records_without_value_capped"] = json!(capped);
    }
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

/// For a required field just added: how many records (as the designer may view them, up to
/// `COUNT_CAP`) hold no value in it. A new field is empty in every record made before it, and
/// each must be given a value when it is next saved: the designer is told how many. `None`
/// for a field not required, or a count the designer may not make.
pub(crate) async fn empty_in_new_required(
    state: &AppState,
    auth: &Auth,
    open: &OpenTable,
    t: &TableDef,
    field: FieldId,
) -> Option<(u64, bool)> {
    let f = t.fields.iter().find(|f| f.id == field)?;
    if !f.rules.required || f.kind.is_generated() {
        return None;
    }
    let view = auth.principal.authorize_table::<View>(&open.access).ok()?;
    let q = RecordQuery {
        filters: vec![daicho_domain::table::Filter { field, op: daicho_domain::table::FilterOp::Empty }],
        ..Default::default()
    };
    state.store.count_records(&view, t, &q, COUNT_CAP).await.ok().filter(|(n, _)| *n > 0)
}

pub async fn list_records(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(tid): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> AppResult<Json<Value>> {
    let open = auth.open_table(&state, &ctx, &tid).await?;
    let scope = auth.table_right::<View>(&state, &ctx, &open).await?;
    let t = open.seen_by(&scope);
    check_list_keys(&pairs, false)?;
    auth.note_hidden_in_query(&state, &ctx, &open, &t, &pairs).await?;
    let (pairs, _) = crate::handlers::views::resolve(&state, &ctx, &auth, &scope, &open, &pairs).await?;
    let pairs = with_named_ids(&state, &ctx, &auth, &t, pairs).await?;
    let q = record_query(&t, &pairs)?;
    // `col` chooses the fields answered, as on the grid and in the export (each one the reader
    // sees; an unknown or hidden one is refused the same way).
    let t = crate::handlers::views::narrowed(&t, &crate::handlers::views::columns(&t, &pairs)?);
    let records = state.store.list_records(&scope, &open.def, &q).await?;
    let next = (records.len() == q.limit as usize).then(|| records.last().map(|r| cursor_after(t.id, &q, r))).flatten();
    let links = lookups(&state, &ctx, &auth, &t, &records, None).await?;
    // `count=true` adds how many records match, counted up to COUNT_CAP.
    let count = if pairs.iter().any(|(k, v)| k == "count" && v == "true") {
        let (n, capped) = state.store.count_records(&scope, &open.def, &q, COUNT_CAP).await?;
        Some(json!({"count": n, "count_capped": capped}))
    } else {
        None
    };
    let out: Vec<Value> = records
        .iter()
        .map(|r| {
            let mut v = record_json(&t, r);
            with_links(&mut v, r, &links);
            v
        })
        .collect();
    let mut body = json!({"records": out, "next_after": next});
    if let Some(c) = count {
        body["count"] = c["count"].clone();
        body["count_capped"] = c["count_capped"].clone();
    }
    Ok(Json(body))
}

pub(crate) fn describe(t: &TableDef, cells: &[(FieldId, Cell)], old: Option<&Record>) -> String {
    let mut parts = Vec::new();
    for (fid, c) in cells {
        let Some(f) = t.fields.iter().find(|f| f.id == *fid) else { continue };
        let new = f.present(c);
        match old.and_then(|o| o.cells.iter().find(|(id, _)| id == fid)) {
            Some((_, prev)) if prev == c => {}
            Some((_, prev)) => parts.push(format!("{}: {} -> {}", f.name.as_str(), f.present(prev), new)),
            None => parts.push(format!("{}: {}", f.name.as_str(), new)),
        }
    }
    parts.join("; ")
}

pub async fn create_record(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(tid): Path<String>,
    body: ApiBody,
) -> AppResult<Response> {
    let open = auth.open_table(&state, &ctx, &tid).await?;
    let scope = auth.table_right::<Create>(&state, &ctx, &open).await?;
    let b: RecordBody = body.parse()?;
    let t = open.seen_by(&scope);
    check_fillable(&open.def, &|f| scope.writes(f))?;
    let (values, link_errs) = with_link_ids(&state, &ctx, &auth, &t, &b.values).await?;
    let parsed = parse_values(&t, &values, true, &|f| scope.writes(f), auth.tenant.policy.utc_offset_minutes);
    let cells = auth.noting_refusal(&state, &ctx, &open, &t, with_errors(parsed, link_errs)).await;
    let cells = and_ref_problems(&state, &ctx, &auth, &t, &values, cells).await?;
    check_refs(&state, &ctx, &auth, &t, &[&cells]).await?;
    let ev = ctx
        .event_by(&auth.principal, AuditAction::RecordCreate, Outcome::Success)
        .target(format!("table:{}", t.id))
        .details(describe(&t, &cells, None));
    let r = match state.store.insert_record(&scope, &open.def, cells, ctx.now, ev).await {
        Ok(r) => r,
        Err(e) => return Err(auth.refused(&state, &ctx, e.into(), format!("create in table:{}", t.id)).await),
    };
    Ok((StatusCode::CREATED, Json(json!({"record": record_json(&t, &r)}))).into_response())
}

pub async fn get_record(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path((tid, rid)): Path<(String, String)>,
) -> AppResult<Json<Value>> {
    let open = auth.open_table(&state, &ctx, &tid).await?;
    let scope = auth.table_right::<View>(&state, &ctx, &open).await?;
    let r = auth.record(&state, &ctx, &scope, &open.def, auth.record_id(&state, &ctx, &rid).await?).await?;
    let t = open.seen_by(&scope);
    let links = lookups(&state, &ctx, &auth, &t, std::slice::from_ref(&r), None).await?;
    let mut v = record_json(&t, &r);
    with_links(&mut v, &r, &links);
    Ok(Json(json!({"record": v})))
}

/// A record's change history: each change with who, when and each field's before and after,
/// limited to the fields the caller sees (hidden fields' changes are left out).
pub async fn record_history(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path((tid, rid)): Path<(String, String)>,
) -> AppResult<Json<Value>> {
    let open = auth.open_table(&state, &ctx, &tid).await?;
    let scope = auth.table_right::<View>(&state, &ctx, &open).await?;
    let t = open.seen_by(&scope);
    let id = auth.record_id(&state, &ctx, &rid).await?;
    let r = auth.record(&state, &ctx, &scope, &open.def, id).await?;
    let history = state.store.record_history(&scope, &open.def, id).await?;
    let entries = &history.entries;
    let fmt = |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).ok();
    let present =
        |f: FieldId, c: &Cell| t.fields.iter().find(|d| d.id == f).map(|d| d.present(c)).unwrap_or(Value::Null);
    Ok(Json(json!({
        "record": id,
        // Older changes were left out (for their number, their size or the bound of the work).
        "cut": crate::handlers::table_pages::history_cut(&history),
        "created_at": fmt(r.created_at),
        "created_by": r.created_by,
        "entries": entries.iter().map(|e| json!({
            "version": e.version,
            "at": fmt(e.at),
            "actor_id": e.actor_id,
            "actor_login": e.actor_login,
            "changes": e.changes.iter().map(|(f, b, a)| json!({
                "field": f, "before": present(*f, b), "after": present(*f, a),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })))
}

pub async fn update_record(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path((tid, rid)): Path<(String, String)>,
    body: ApiBody,
) -> AppResult<Json<Value>> {
    let open = auth.open_table(&state, &ctx, &tid).await?;
    let view = auth.table_right::<View>(&state, &ctx, &open).await?;
    let scope = auth.table_right::<Edit>(&state, &ctx, &open).await?;
    let b: RecordBody = body.parse()?;
    let t = open.seen_by(&scope);
    let id = auth.record_id(&state, &ctx, &rid).await?;
    let version = b.version.ok_or_else(|| AppError::Invalid(FieldErrors::single("version", "required")))?;
    let (values, link_errs) = with_link_ids(&state, &ctx, &auth, &t, &b.values).await?;
    let parsed = parse_values(&t, &values, false, &|f| scope.writes(f), auth.tenant.policy.utc_offset_minutes);
    let cells = auth.noting_refusal(&state, &ctx, &open, &t, with_errors(parsed, link_errs)).await?;
    if cells.is_empty() {
        // Nothing to change: not a new version (it would have no history entry).
        return Err(AppError::Invalid(FieldErrors::single("values", "required")));
    }
    let old = auth.record(&state, &ctx, &view, &open.def, id).await?;
    check_refs(&state, &ctx, &auth, &t, &[&changed(&cells, &old)]).await?;
    let ev = ctx
        .event_by(&auth.principal, AuditAction::RecordUpdate, Outcome::Success)
        .target(format!("table:{} record:{id}", t.id))
        .details(describe(&t, &cells, Some(&old)));
    let r = match state.store.update_record(&scope, &open.def, id, version, cells, ctx.now, ev).await {
        Ok(r) => r,
        Err(e) => {
            return Err(auth.refused(&state, &ctx, e.into(), format!("edit of table:{} record:{id}", t.id)).await);
        }
    };
    Ok(Json(json!({"record": record_json(&t, &r)})))
}

/// `DELETE …/records/{id}?version=N`: the version makes the delete conditional (409 `stale` when
/// the record has changed since it was read). Another key is refused as lists refuse one.
fn delete_version(pairs: &[(String, String)]) -> AppResult<Option<i64>> {
    let mut version = None;
    for (k, v) in pairs {
        match k.as_str() {
            "version" if v.trim().is_empty() => {}
            "version" => {
                version = Some(
                    v.trim()
                        .parse::<i64>()
                        .map_err(|_| AppError::Invalid(FieldErrors::single("version", "not_a_number")))?,
                )
            }
            other => {
                let mut e = FieldErrors::new();
                e.push_owned(other.chars().take(100).collect(), "unknown_parameter");
                return Err(AppError::Invalid(e));
            }
        }
    }
    Ok(version)
}

pub async fn delete_record(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path((tid, rid)): Path<(String, String)>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> AppResult<StatusCode> {
    let version = delete_version(&pairs)?;
    let open = auth.open_table(&state, &ctx, &tid).await?;
    let view = auth.table_right::<View>(&state, &ctx, &open).await?;
    let scope = auth.table_right::<Delete>(&state, &ctx, &open).await?;
    let id = auth.record_id(&state, &ctx, &rid).await?;
    auth.record(&state, &ctx, &view, &open.def, id).await?;
    // (Every value the record held, as the delete's transaction read it, for the history.)
    let ev = |old: &Record| {
        ctx.event_by(&auth.principal, AuditAction::RecordDelete, Outcome::Success)
            .target(format!("table:{} record:{id}", open.def.id))
            .details(describe(&open.def, &old.cells, None))
    };
    if let Err(e) = state.store.delete_record(&scope, &open.def, id, version, &ev).await {
        return Err(auth.refused(&state, &ctx, e.into(), format!("delete of table:{} record:{id}", open.def.id)).await);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Lists count matching records up to this many (the grid says "10,000+" beyond).
pub const COUNT_CAP: u64 = 10_000;

/// The most records one bulk edit or delete may touch.
pub const BULK_MAX: usize = 1000;

/// Keys of a grid query that a bulk selection reads past: they shape the page the query came
/// from (its order, columns, paging, a notice), not which records match.
const BULK_IGNORED: &[&str] =
    &["sort", "dir", "col", "after", "back", "limit", "count", "done", "view_error", "encoding"];

/// What a bulk operation applies to: the ids ticked, or the records a grid query selects.
#[derive(Debug, Default)]
pub(crate) struct BulkTarget<'a> {
    pub ids: Vec<i64>,
    /// A grid query (`q=…&filter.eq.<field>=…`, or `view=<id>`) selecting the records.
    pub query: Option<&'a str>,
    /// Said explicitly when the query narrows nothing (every record the right covers).
    pub all: bool,
    /// With a query: how many records it selected when the user chose it (the grid's count).
    /// A different number now is refused: records came or went meanwhile, and "every record
    /// matching" would not be what the user saw.
    pub expect: Option<usize>,
    /// When the records were shown (unix ms): one updated since is refused, inside the write's
    /// transaction (`guard::check_unchanged_for_bulk`). With `expect`, this also tells a swap
    /// (one record left the selection and another came in, the count unchanged): the newcomer
    /// was created or changed since.
    pub shown_at: Option<i64>,
}

/// The records a bulk operation applies to, and how they were chosen (for the operation
/// history): the ids given, or every record the grid query selects among those the acting
/// right covers (`reading`: its rows within view's); at most [`BULK_MAX`]. Ids and a query
/// together, a key the query does not know, or a query that narrows nothing without `all`
/// are refused (a typo must not turn into "every record").
pub(crate) async fn bulk_ids(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    reading: &TableScope<View>,
    open: &OpenTable,
    target: BulkTarget<'_>,
) -> AppResult<(Vec<i64>, String)> {
    let query = match (target.query, target.all) {
        (Some(_), _) if !target.ids.is_empty() => {
            return Err(AppError::Invalid(FieldErrors::single("ids", "ids_or_query")));
        }
        (Some(q), _) => Some(q),
        (None, true) if target.ids.is_empty() => Some(""),
        (None, true) => return Err(AppError::Invalid(FieldErrors::single("ids", "ids_or_query"))),
        (None, false) => None,
    };
    let (mut ids, chosen) = match query {
        Some(qs) => {
            let given: Vec<(String, String)> =
                form_urlencoded::parse(qs.trim_start_matches('?').as_bytes()).into_owned().collect();
            if let Some((k, _)) = given.iter().find(|(k, _)| {
                !(k == "q" || k == "view" || k.starts_with("filter.") || BULK_IGNORED.contains(&k.as_str()))
            }) {
                let mut e = FieldErrors::new();
                e.push_owned(format!("query.{}", k.chars().take(100).collect::<String>()), "unknown_parameter");
                return Err(AppError::Invalid(e));
            }
            // Only what selects goes on (a saved view takes no other keys); every filter stays,
            // "is empty" ones included, whose value is blank.
            let selecting: Vec<(String, String)> =
                given.into_iter().filter(|(k, _)| k == "q" || k == "view" || k.starts_with("filter.")).collect();
            // (Recorded only for fields the user's view hides: a field view shows but this
            // right hides is refused by the query, and is no probe.)
            if let Ok(view) = auth.principal.authorize_table::<View>(&open.access) {
                auth.note_hidden_in_query(state, ctx, open, &open.seen_by(&view), &selecting).await?;
            }
            let (pairs, _) = crate::handlers::views::resolve(state, ctx, auth, reading, open, &selecting).await?;
            let pairs: Vec<(String, String)> =
                pairs.into_iter().filter(|(k, _)| k == "q" || k.starts_with("filter.")).collect();
            let seen = open.seen_by(reading);
            let pairs = with_named_ids(state, ctx, auth, &seen, pairs).await?;
            let mut q = record_query(&seen, &pairs)?;
            if q.filters.is_empty() && q.keyword.is_none() && !target.all {
                return Err(AppError::Invalid(FieldErrors::single("query", "selects_every_record")));
            }
            // The list the user looked at (through view, as the grid counts it) must still hold
            // as many records as it did.
            if let Some(n) = target.expect {
                let view = auth.table_right::<View>(state, ctx, open).await?;
                let (now, capped) = state.store.count_records(&view, &open.def, &q, COUNT_CAP).await?;
                if capped || now != n as u64 {
                    return Err(AppError::Conflict(FieldErrors::single("query", "selection_changed")));
                }
            }
            q.limit = (BULK_MAX + 1) as u32;
            let ids = state.store.list_records(reading, &open.def, &q).await?.iter().map(|r| r.id).collect();
            let narrowing = q.filters.len() + usize::from(q.keyword.is_some());
            let described = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs.iter().filter(|(k, v)| k != "q" || !v.trim().is_empty()))
                .finish();
            (ids, if narrowing == 0 { "every record".to_owned() } else { format!("query {described}") })
        }
        None => (target.ids, "ids".to_owned()),
    };
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Err(AppError::Invalid(FieldErrors::single("ids", "nothing_selected")));
    }
    if ids.len() > BULK_MAX {
        return Err(AppError::Invalid(FieldErrors::single("ids", "too_many_records")));
    }
    // A number no record can have names no record: 404 as for any record not found, recorded.
    if let Some(bad) = ids.iter().find(|i| **i <= 0) {
        auth.record_refusal(state, ctx, format!("record:{bad} of table:{}: not a record number", open.def.id)).await?;
        return Err(AppError::NotFound);
    }
    let chosen = if chosen.chars().count() > 500 {
        format!("{}…", chosen.chars().take(500).collect::<String>())
    } else {
        chosen
    };
    Ok((ids, chosen))
}

/// The ids as ranges ("1-30,45,50-52"), cut (with "…") past about 1,200 characters.
fn id_list(ids: &[i64]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < ids.len() {
        let mut j = i;
        while j + 1 < ids.len() && ids[j + 1] == ids[j] + 1 {
            j += 1;
        }
        let part = if j > i { format!("{}-{}", ids[i], ids[j]) } else { ids[i].to_string() };
        if out.len() + part.len() > 1200 {
            out.push_str(",…");
            break;
        }
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(&part);
        i = j + 1;
    }
    out
}

/// Deletes the given (or selected) records in one transaction, all or none; recorded once
/// with the count and ids.
pub(crate) async fn bulk_delete_op(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    open: &OpenTable,
    target: BulkTarget<'_>,
) -> AppResult<u64> {
    let scope = auth.table_right::<Delete>(state, ctx, open).await?;
    let reading = scope.reading();
    let since = target.shown_at;
    let (ids, chosen) = bulk_ids(state, ctx, auth, &reading, open, target).await?;
    let ev = ctx
        .event_by(&auth.principal, AuditAction::RecordDelete, Outcome::Success)
        .target(format!("table:{} records:{}", open.def.id, ids.len()))
        .details(format!("bulk delete of {} records ({chosen}): {}", ids.len(), id_list(&ids)));
    // Each record deleted is recorded with every value it held, as a single delete is (its
    // history goes with it): what a bulk delete removed can be read back from the operation
    // history, which only administrators read, also of fields hidden from the deleter.
    let each = |r: &daicho_store::Record| {
        ctx.event_by(&auth.principal, AuditAction::RecordDelete, Outcome::Success)
            .target(format!("table:{} record:{}", open.def.id, r.id))
            .details(format!("in a bulk delete: {}", describe(&open.def, &r.cells, None)))
    };
    match state.store.delete_records(&scope, &open.def, &ids, since, ev, Some(&each)).await {
        Ok(n) => Ok(n),
        Err(e) => Err(bulk_refused(state, ctx, auth, open, &ids, e, "bulk delete").await),
    }
}

/// A refused bulk operation answers as one record's would: 404 when a record it names is not
/// one the user may see (so the answer does not tell that it exists), 403 when every record is
/// visible but one is outside the right's rows (or a field outside its writable ones). Only
/// the refusal path looks the records up; the refusal is recorded either way.
async fn bulk_refused(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    open: &OpenTable,
    ids: &[i64],
    e: daicho_store::StoreError,
    what: &str,
) -> AppError {
    let forbidden = matches!(e, daicho_store::StoreError::Forbidden);
    // A record that does not exist, or is outside view's rows, is refused as one record's
    // would be: a 404, recorded (forced browsing through record numbers in a bulk request).
    if matches!(e, daicho_store::StoreError::NotFound) {
        let what = format!("{what} in table:{}: a record not found or outside the reader's rows", open.def.id);
        if let Err(err) = auth.record_refusal(state, ctx, what).await {
            return err;
        }
        return AppError::NotFound;
    }
    let e = auth.refused(state, ctx, e.into(), format!("{what} in table:{}", open.def.id)).await;
    if !forbidden {
        return e;
    }
    let Ok(view) = auth.principal.authorize_table::<View>(&open.access) else { return e };
    for id in ids {
        match state.store.get_record(&view, &open.def, *id).await {
            Ok(_) => {}
            Err(daicho_store::StoreError::NotFound) => return AppError::NotFound,
            Err(other) => return other.into(),
        }
    }
    e
}

/// Sets the same values on the given (or selected) records in one transaction, all or none.
pub(crate) async fn bulk_update_op(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    open: &OpenTable,
    target: BulkTarget<'_>,
    values: &Map<String, Value>,
) -> AppResult<u64> {
    let scope = auth.table_right::<Edit>(state, ctx, open).await?;
    let t = open.seen_by(&scope);
    let (values, link_errs) = with_link_ids(state, ctx, auth, &t, values).await?;
    let parsed = parse_values(&t, &values, false, &|f| scope.writes(f), auth.tenant.policy.utc_offset_minutes);
    let cells = auth.noting_refusal(state, ctx, open, &t, with_errors(parsed, link_errs)).await?;
    if cells.is_empty() {
        return Err(AppError::Invalid(FieldErrors::single("values", "required")));
    }
    check_refs(state, ctx, auth, &t, &[&cells]).await?;
    let since = target.shown_at;
    let (ids, chosen) = bulk_ids(state, ctx, auth, &scope.reading(), open, target).await?;
    let ev = ctx
        .event_by(&auth.principal, AuditAction::RecordUpdate, Outcome::Success)
        .target(format!("table:{} records:{}", t.id, ids.len()))
        .details(format!(
            "bulk edit of {} records ({chosen}): {}; {}",
            ids.len(),
            id_list(&ids),
            describe(&t, &cells, None)
        ));
    match state.store.update_records(&scope, &open.def, &ids, cells, ctx.now, since, ev).await {
        Ok(n) => Ok(n),
        Err(e) => Err(bulk_refused(state, ctx, auth, open, &ids, e, "bulk edit").await),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkBody {
    #[serde(default)]
    pub ids: Vec<i64>,
    /// Instead of ids: a grid query (`q=…&filter.eq.<field>=…`, or `view=<id>`) selecting the
    /// records.
    pub query: Option<String>,
    /// Every record the right covers (with a query that narrows nothing, or none).
    #[serde(default)]
    pub all: bool,
    #[serde(default, deserialize_with = "crate::handlers::api::keys_once")]
    pub values: Map<String, Value>,
    /// With a query: how many records it selected when the caller looked (see `BulkTarget`).
    #[serde(default)]
    pub expect: Option<usize>,
    /// When the caller read the records (RFC 3339): a record updated since is refused (409
    /// `changed_since_shown`) and nothing is changed (see `BulkTarget::shown_at`).
    #[serde(default)]
    pub unchanged_since: Option<String>,
}

impl BulkBody {
    fn target(&self) -> AppResult<BulkTarget<'_>> {
        let shown_at = match &self.unchanged_since {
            None => None,
            Some(s) => {
                let at = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                    .map_err(|_| AppError::Invalid(FieldErrors::single("unchanged_since", "not_a_date_time")))?;
                Some(daicho_domain::audit::unix_ms(at))
            }
        };
        Ok(BulkTarget {
            ids: self.ids.clone(),
            query: self.query.as_deref(),
            all: self.all,
            expect: self.expect,
            shown_at,
        })
    }
}

pub async fn bulk_delete(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(tid): Path<String>,
    body: ApiBody,
) -> AppResult<Json<Value>> {
    let open = auth.open_table(&state, &ctx, &tid).await?;
    let _scope = auth.table_right::<Delete>(&state, &ctx, &open).await?;
    let b: BulkBody = body.parse()?;
    let n = bulk_delete_op(&state, &ctx, &auth, &open, b.target()?).await?;
    Ok(Json(json!({"deleted": n})))
}

pub async fn bulk_update(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(tid): Path<String>,
    body: ApiBody,
) -> AppResult<Json<Value>> {
    let open = auth.open_table(&state, &ctx, &tid).await?;
    let _scope = auth.table_right::<Edit>(&state, &ctx, &open).await?;
    let b: BulkBody = body.parse()?;
    let n = bulk_update_op(&state, &ctx, &auth, &open, b.target()?, &b.values).await?;
    Ok(Json(json!({"updated": n})))
}

/// One of the node's export places, waited for at most `EXPORT_WAIT`, then refused (503).
async fn export_place(
    permits: &std::sync::Arc<tokio::sync::Semaphore>,
) -> AppResult<tokio::sync::OwnedSemaphorePermit> {
    match tokio::time::timeout(crate::state::EXPORT_WAIT, permits.clone().acquire_owned()).await {
        Ok(Ok(p)) => Ok(p),
        _ => Err(AppError::Unavailable("every export place is taken".into())),
    }
}

/// A piece of an export's body.
type Piece = Result<Vec<u8>, std::io::Error>;

/// Queues a piece of an export for its client; false when the client has gone, or has taken
/// nothing for `stall` (it then holds no connection and snapshot of the database any longer).
async fn send_within(tx: &tokio::sync::mpsc::Sender<Piece>, bytes: Vec<u8>, stall: std::time::Duration) -> bool {
    matches!(tokio::time::timeout(stall, tx.send(Ok(bytes))).await, Ok(Ok(())))
}

/// An export's body: its pieces as queued, then, unless `whole` was set before the last sender
/// went, an error, so that an export which did not finish is cut off rather than ended like
/// a whole file: also one whose writer stopped without a word (a panic drops the sender with
/// nothing set).
pub(crate) fn export_body(
    rx: tokio::sync::mpsc::Receiver<Piece>,
    whole: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> impl tokio_stream::Stream<Item = Piece> {
    let mut ended = false;
    let end = tokio_stream::iter(std::iter::from_fn(move || {
        if ended {
            return None;
        }
        ended = true;
        (!whole.load(std::sync::atomic::Ordering::SeqCst)).then(|| Err(std::io::Error::other("export interrupted")))
    }));
    tokio_stream::StreamExt::chain(tokio_stream::wrappers::ReceiverStream::new(rx), end)
}

/// The size of the pieces a CSV export is sent in (each holds whole records).
const EXPORT_CHUNK: usize = 64 * 1024;

/// How often an export under way asks whether its session or token still stands.
pub(crate) const EXPORT_RECHECK: time::Duration = time::Duration::seconds(1);

/// Streams the records a query selects as CSV: the fields as columns (header: field names),
/// values as shown, cells that a spreadsheet would run as a formula neutralised, in UTF-8 with
/// a BOM (`encoding=utf-8`, the default) or Shift_JIS (`encoding=shift_jis`) for Excel. Batches
/// of 1,000 by keyset keep memory flat; the export and its row count are recorded.
pub async fn export_records(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(tid): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> AppResult<Response> {
    let open = auth.open_table(&state, &ctx, &tid).await?;
    let view = auth.table_right::<View>(&state, &ctx, &open).await?;
    // Rows and columns: those the export right covers, within view's (applied by the store).
    // A group may view more than it may download.
    let scope = auth.table_right::<Export>(&state, &ctx, &open).await?.reading();
    let t = open.seen_by(&scope);
    let full = open.def.clone();
    check_list_keys(&pairs, true)?;
    let sjis = match pairs.iter().find(|(k, _)| k == "encoding").map(|(_, v)| v.as_str()) {
        None | Some("") | Some("utf-8") => false,
        Some("shift_jis") => true,
        Some(_) => return Err(AppError::Invalid(FieldErrors::single("encoding", "choice"))),
    };
    // (Recorded only for fields view hides: the grid's own export link may name a field view
    // shows and the export hides, which the query refuses.)
    auth.note_hidden_in_query(&state, &ctx, &open, &open.seen_by(&view), &pairs).await?;
    let (pairs, _) = crate::handlers::views::resolve(&state, &ctx, &auth, &scope, &open, &pairs).await?;
    let pairs = with_named_ids(&state, &ctx, &auth, &t, pairs).await?;
    let mut q = record_query(&t, &pairs)?;
    q.limit = 1000;
    // The view's columns, in its order (filters and sort may use others the user sees).
    let t = crate::handlers::views::narrowed(&t, &crate::handlers::views::columns(&t, &pairs)?);
    let started = ctx
        .event_by(&auth.principal, AuditAction::RecordExport, Outcome::Success)
        .target(format!("table:{}", t.id))
        .details(export_started(sjis, &pairs, &t));
    // The directory only when a column names users (created by, updated by included).
    let users = if t.fields.iter().any(|f| matches!(f.kind, FieldKind::User)) {
        auth.directory(&state, &ctx).await?.into_iter().map(|p| (p.id.to_string(), p.label())).collect()
    } else {
        std::collections::HashMap::new()
    };
    let local_offset = auth.tenant.policy.utc_offset_minutes;
    let local = ExportLocal { offset: local_offset, users };
    // One of the node's export places, held until the export ends (see `EXPORTS`).
    let place = export_place(&state.export_permits).await?;
    state.store.append_audit(started).await?;
    let stall = state.settings.export_stall;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let whole = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let whole_seen = whole.clone();
    let store = state.store.clone();
    let mut finished =
        ctx.event_by(&auth.principal, AuditAction::RecordExport, Outcome::Success).target(format!("table:{}", t.id));
    let clock = state.clock.clone();
    // (The user's access as the export began: a change of it stops the export, see below.)
    let access = open.access.clone();
    let (state, auth) = (state.clone(), auth.clone());
    // Two tasks, so that reading the next batch overlaps writing this one as CSV: the reader
    // pages through the store (keyset), the writer turns batches into bytes. Both channels are
    // bounded, so a slow client holds back the reader: memory stays at a few batches.
    let (batches_tx, mut batches_rx) = tokio::sync::mpsc::channel::<Vec<Record>>(2);
    let reader_store = store.clone();
    let reader = tokio::spawn(async move {
        let read = reader_store.scan_records(&scope, &full, q, batches_tx).await;
        drop(place);
        read
    });
    // The first page is awaited before the answer: a design changed since this request read
    // it (found as the export's snapshot begins) is answered 409, not sent as a file cut off
    // after its header. The writer waits for it and says which (a client gone meanwhile still
    // leaves the export's end in the history, written by the writer).
    let (first_said, first_heard) = tokio::sync::oneshot::channel::<Option<FieldErrors>>();
    tokio::spawn(async move {
        let (mut first_batch, reader) = match batches_rx.recv().await {
            Some(batch) => (Some(batch), futures_util::future::Either::Left(reader)),
            None => {
                let read = reader.await;
                if let Ok(Err(daicho_store::StoreError::Conflict(e))) = &read {
                    finished.at = clock.now();
                    finished.outcome = Outcome::Failure;
                    finished.details = "refused before the first row: the table's design changed".into();
                    if let Err(e) = store.append_audit(finished).await {
                        tracing::error!(error = %e, "could not record the end of an export");
                    }
                    let _ = first_said.send(Some(e.clone()));
                    return;
                }
                (None, futures_util::future::Either::Right(std::future::ready(read)))
            }
        };
        let _ = first_said.send(None);
        // The CSV writer's output is UTF-8 already (every cell is a `str`): only Shift_JIS
        // needs it as text, to convert it.
        // (Characters Shift_JIS cannot hold are written as "?" and counted for the history.)
        let mut replaced = 0u64;
        let mut encode = |bytes: Vec<u8>| -> Vec<u8> {
            if sjis {
                let text = String::from_utf8(bytes).unwrap_or_default();
                to_shift_jis_counting(&text, &mut replaced)
            } else {
                bytes
            }
        };
        let header = {
            let mut w = csv::Writer::from_writer(Vec::new());
            let _ = w.write_record(t.fields.iter().map(|f| neutralised(Cow::Borrowed(f.name.as_str())).into_owned()));
            w.into_inner().unwrap_or_default()
        };
        let mut first = if sjis { Vec::new() } else { vec![0xEF, 0xBB, 0xBF] };
        first.extend(encode(header));
        let mut rows = 0u64;
        // A client that takes nothing for `stall` ends the export (recorded as interrupted):
        // the reader then stops, giving back its connection and snapshot.
        let send = |bytes: Vec<u8>| send_within(&tx, bytes, stall);
        let mut ok = send(first).await;
        // The bytes go out in chunks of about EXPORT_CHUNK, each ended after a whole record and
        // allocated once at its final size: the memory an export holds does not grow with the
        // width of the records (a batch of 1,000 records with long texts would otherwise be
        // megabytes of CSV at once).
        let chunk = || csv::Writer::from_writer(Vec::with_capacity(EXPORT_CHUNK + EXPORT_CHUNK / 4));
        let mut w = chunk();
        let (mut checked, mut stopped) = (clock.now(), None);
        while ok {
            let next = match first_batch.take() {
                Some(batch) => Some(batch),
                None => batches_rx.recv().await,
            };
            let Some(batch) = next else { break };
            // The session or token is asked again as the export goes (at most every
            // EXPORT_RECHECK): disabling the user, ending the session or revoking the token
            // stops a download under way, however slowly its client reads; so does a change
            // of the user's rights on the table (the export right taken away, a field hidden).
            stopped = auth.still_signed_in(&state, clock.now(), &mut checked, EXPORT_RECHECK, Some(&access)).await;
            if stopped.is_some() {
                ok = false;
                break;
            }
            let mut cells: Vec<std::borrow::Cow<'_, str>> = Vec::with_capacity(t.fields.len());
            for r in &batch {
                cells.clear();
                cells.extend(t.fields.iter().map(|f| {
                    let text = export_text(f, r, &local);
                    if may_be_formula(f) { neutralised(text) } else { text }
                }));
                let _ = w.write_record(cells.iter().map(|c| c.as_bytes()));
                rows += 1;
                if w.get_ref().len() >= EXPORT_CHUNK {
                    let full = std::mem::replace(&mut w, chunk()).into_inner().unwrap_or_default();
                    ok = send(encode(full)).await;
                    if !ok {
                        break;
                    }
                }
            }
        }
        let rest = w.into_inner().unwrap_or_default();
        if ok && !rest.is_empty() {
            ok = send(encode(rest)).await;
        }
        // Closing the receiver stops a reader whose client went away.
        drop(batches_rx);
        let failed = match reader.await {
            Ok(Ok(())) => false,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "record export failed mid-stream");
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "record export reader stopped");
                true
            }
        };
        if failed {
            ok = false;
        }
        // Only an export that finished ends like a whole file; any other body ends with an
        // error (the connection is cut, not closed cleanly), even when its client has stopped
        // reading and nothing more can be queued for it.
        if ok {
            whole.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        finished.at = clock.now();
        finished.details = match stopped {
            Some(why) => format!("stopped after {rows} rows: {why}"),
            None => format!("{} {rows} rows", if ok { "finished:" } else { "interrupted after" }),
        };
        if replaced > 0 {
            finished.details.push_str(&format!("; {replaced} characters Shift_JIS cannot hold written as ?"));
        }
        if let Err(e) = store.append_audit(finished).await {
            tracing::error!(error = %e, "could not record the end of an export");
        }
        // The body ends only now, so that a client which has the whole file finds its end in
        // the history.
        drop(tx);
    });
    if let Ok(Some(e)) = first_heard.await {
        return Err(AppError::Conflict(e));
    }
    let mut res = axum::body::Body::from_stream(export_body(rx, whole_seen)).into_response();
    let h = res.headers_mut();
    let ct = if sjis { "text/csv; charset=shift_jis" } else { "text/csv; charset=utf-8" };
    h.insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static(ct));
    if let Ok(v) = axum::http::HeaderValue::from_str(&export_file_name(&open.def, sjis, ctx.now, local_offset)) {
        h.insert(axum::http::header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

/// The export's file name: the table's name and the day in the tenant's time zone, marked when
/// Shift_JIS ("顧客-2026-11-30.csv", "顧客-2026-11-30-sjis.csv"), as RFC 6266 gives a name
/// outside ASCII (`filename*`), after an ASCII one for clients that read only that.
fn export_file_name(t: &TableDef, sjis: bool, now: time::OffsetDateTime, offset: i32) -> String {
    let day = time::UtcOffset::from_whole_seconds(offset * 60)
        .ok()
        .and_then(|o| now.checked_to_offset(o))
        .map_or(now.date(), |t| t.date());
    let mark = if sjis { "-sjis" } else { "" };
    // (Characters a file system or a header may not take become "_".)
    let safe: String =
        t.name.as_str().chars().map(|c| if c.is_control() || "\\/:*?\"<>|;".contains(c) { '_' } else { c }).collect();
    let full = format!("{safe}-{day}{mark}.csv");
    let encoded: String = form_urlencoded::byte_serialize(full.as_bytes()).collect::<String>().replace('+', "%20");
    format!("attachment; filename=\"table-{day}{mark}.csv\"; filename*=UTF-8''{encoded}")
}

/// The most rows one import may hold (written in one transaction); `server.max_import_bytes`
/// bounds the file, which is held in memory as the request body.
pub const IMPORT_MAX_ROWS: usize = 100_000;
const IMPORT_MAX_ERRORS: usize = 100;
/// Columns a file may have: every field a table may hold (200) and some left unmapped. More is
/// refused before any column is looked at, so that neither the error report nor the mapping
/// page grows with a file of empty columns.
pub const IMPORT_MAX_COLUMNS: usize = 300;
/// Validated rows handed to the store at a time: it writes one part while the next is read and
/// validated, and only a few parts are ever held in memory.
const IMPORT_PART_ROWS: usize = 1_000;

/// How many blank lines (LF, CRLF or CR ended) begin at byte `at` of a CSV file, where a
/// record (or the file) starts; the line end of the record before, which the reader leaves
/// there after a CR, is not one of them.
fn blank_lines_at(text: &[u8], at: usize) -> usize {
    let mut p = at;
    if p > 0 && text.get(p - 1) == Some(&b'\r') && text.get(p) == Some(&b'\n') {
        p += 1;
    }
    let mut n = 0;
    loop {
        match (text.get(p), text.get(p + 1)) {
            (Some(b'\r'), Some(b'\n')) => p += 2,
            (Some(b'\r' | b'\n'), _) => p += 1,
            _ => return n,
        }
        n += 1;
    }
}

/// The row (as a spreadsheet numbers them: a record, line breaks in its cells included, or a
/// blank line, is one row) of a quoted cell that is never closed, if the file
/// has one. The CSV reader ends such a cell at the end of the file without an error, so a
/// missing `"` would turn the rest of the file into one cell of the row and lose its rows
/// unseen. Quotes are read as the reader reads them: one opens a cell only at its start,
/// `""` inside is a quote, and anything after the closing quote belongs to the same cell.
fn unclosed_quote_row(text: &[u8]) -> Option<usize> {
    let (mut row, mut opened_at) = (1usize, 0usize);
    let (mut at_start, mut quoted) = (true, false);
    let mut i = 0;
    while let Some(&b) = text.get(i) {
        if quoted {
            match b {
                b'"' if text.get(i + 1) == Some(&b'"') => i += 1,
                b'"' => quoted = false,
                // A line break inside a cell is not a new row.
                _ => {}
            }
        } else {
            match b {
                b'"' if at_start => {
                    quoted = true;
                    opened_at = row;
                }
                b',' => {
                    at_start = true;
                    i += 1;
                    continue;
                }
                b'\r' if text.get(i + 1) == Some(&b'\n') => {
                    i += 2;
                    row += 1;
                    at_start = true;
                    continue;
                }
                b'\r' | b'\n' => {
                    i += 1;
                    row += 1;
                    at_start = true;
                    continue;
                }
                _ => {}
            }
        }
        at_start = false;
        i += 1;
    }
    quoted.then_some(opened_at)
}

/// The most (unique field, value) pairs of one file an import compares for duplicates.
const UNIQUE_SEEN_MAX: usize = 200_000;

/// Decodes an uploaded CSV: UTF-8 with or without BOM, or Shift_JIS (CP932), detected when
/// `encoding` is `auto` or empty.
fn decode_csv<'a>(bytes: &'a [u8], encoding: &str) -> Result<Cow<'a, str>, &'static str> {
    let utf8 = |b: &'a [u8]| std::str::from_utf8(b.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(b)).map(Cow::Borrowed);
    let sjis = |b: &'a [u8]| {
        let (text, _, bad) = encoding_rs::SHIFT_JIS.decode(b);
        if bad { Err("bad_encoding") } else { Ok(text) }
    };
    // A file that reads as UTF-8 up to a bad byte, with characters outside ASCII before it (or
    // a BOM), is a UTF-8 file with a broken byte, not Shift_JIS: decoded as Shift_JIS, its
    // Japanese text would be imported garbled without a word.
    // A file that is not UTF-8 throughout is Shift_JIS, a UTF-8 file with broken bytes, or
    // cannot be told: the bytes of Shift_JIS text (half-width kana, or a kanji after one) often
    // pass for UTF-8 characters, and those of accented UTF-8 text for Shift_JIS. Told apart by
    // how many good UTF-8 characters outside ASCII (`good`) the file holds against its bad byte
    // runs (`bad`): mostly good is a broken UTF-8 file, mostly bad is Shift_JIS, and between
    // the two the user is asked to choose rather than the file read one way and imported
    // garbled without a word.
    let guess = |b: &'a [u8]| {
        let (mut good, mut bad) = (0usize, 0usize);
        for chunk in b.utf8_chunks() {
            good += chunk.valid().chars().filter(|c| !c.is_ascii()).count();
            bad += usize::from(!chunk.invalid().is_empty());
        }
        if b.starts_with(&[0xEF, 0xBB, 0xBF]) || (good > 0 && bad * 4 <= good) {
            Err("broken_utf8")
        } else if bad >= 2 * good {
            sjis(b)
        } else {
            Err("choose_encoding")
        }
    };
    match encoding {
        "" | "auto" => utf8(bytes).or_else(|_| guess(bytes)),
        "utf-8" => utf8(bytes).map_err(|_| "bad_encoding"),
        // (A UTF-8 BOM before Shift_JIS text, as a tool that adds one to every file writes
        // it, is no character of the file.)
        "shift_jis" => sjis(bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes)),
        _ => Err("choice"),
    }
}

/// How many rows of a file the column-mapping page shows as examples.
pub(crate) const PREVIEW_ROWS: usize = 3;

/// Text as Shift_JIS for Excel; a character Shift_JIS cannot hold (an emoji, a rare kanji)
/// becomes "?", as Excel itself writes it (encoding_rs alone would write an HTML character
/// reference such as "&#128512;", which reads as data and would be imported as such).
pub(crate) fn to_shift_jis(text: &str) -> Vec<u8> {
    to_shift_jis_counting(text, &mut 0)
}

/// A text as it reads back from a Shift_JIS export: "?" for what that encoding cannot hold,
/// the Windows spelling of 〜 and its kind.
fn shift_jis_image(text: &str) -> String {
    encoding_rs::SHIFT_JIS.decode(&to_shift_jis(text)).0.into_owned()
}

/// `to_shift_jis`, adding to `replaced` the characters written as "?".
fn to_shift_jis_counting(text: &str, replaced: &mut u64) -> Vec<u8> {
    let mut enc = encoding_rs::SHIFT_JIS.new_encoder();
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text;
    // One buffer for the whole text, refilled (`OutputFull`): a buffer the size of the rest
    // made anew after each character Shift_JIS lacks made a cell of 20,000 emoji cost about
    // 800 MB of zeroing.
    let mut buf =
        vec![0u8; enc.max_buffer_length_from_utf8_without_replacement(text.len()).unwrap_or(8192).clamp(16, 8192)];
    loop {
        let (result, read, written) = enc.encode_from_utf8_without_replacement(rest, &mut buf, true);
        out.extend_from_slice(&buf[..written]);
        rest = &rest[read..];
        match result {
            encoding_rs::EncoderResult::InputEmpty => return out,
            encoding_rs::EncoderResult::Unmappable(c) => match cp932_twin(c) {
                // The character a Mac or JIS text uses where Windows has its own code point:
                // written as Windows writes it, so Excel shows it instead of "?".
                Some(twin) => out.extend_from_slice(&encoding_rs::SHIFT_JIS.encode(twin.encode_utf8(&mut [0; 4])).0),
                None => {
                    out.push(b'?');
                    *replaced += 1;
                }
            },
            encoding_rs::EncoderResult::OutputFull => {}
        }
    }
}

/// The Windows (CP932) code point for a JIS X 0208 character that Unicode spells twice and the
/// WHATWG Shift_JIS encoder knows only in its Windows spelling: 〜 ‖ — − ¢ £ ¬.
fn cp932_twin(c: char) -> Option<char> {
    Some(match c {
        '\u{301C}' => '\u{FF5E}',
        '\u{2016}' => '\u{2225}',
        '\u{2014}' => '\u{2015}',
        '\u{2212}' => '\u{FF0D}',
        '\u{00A2}' => '\u{FFE0}',
        '\u{00A3}' => '\u{FFE1}',
        '\u{00AC}' => '\u{FFE2}',
        _ => return None,
    })
}

/// The texts other than `text` that a Shift_JIS export writes as `text`: each Windows spelling
/// in it (～ ∥ ― － ￠ ￡ ￢) may stand for its JIS twin (〜 ‖ — − ¢ £ ¬, see `cp932_twin`). At
/// most `SJIS_TWINS` of them, the ones changing the fewest characters first; a key with more
/// such characters is found only as written.
fn shift_jis_twins(text: &str) -> Vec<String> {
    let at: Vec<(usize, char)> = text
        .char_indices()
        .filter_map(|(i, c)| {
            ['\u{301C}', '\u{2016}', '\u{2014}', '\u{2212}', '\u{00A2}', '\u{00A3}', '\u{00AC}']
                .into_iter()
                .find(|jis| cp932_twin(*jis) == Some(c))
                .map(|jis| (i, jis))
        })
        .collect();
    if at.is_empty() || at.len() > 3 {
        return Vec::new();
    }
    // Every choice of places to change, fewest first (with three places, seven texts).
    let mut choices: Vec<u32> = (1..(1u32 << at.len())).collect();
    choices.sort_by_key(|m| m.count_ones());
    choices
        .into_iter()
        .take(SJIS_TWINS)
        .map(|m| {
            let mut out = String::with_capacity(text.len() + 3);
            let mut last = 0;
            for (k, (i, jis)) in at.iter().enumerate() {
                if m & (1 << k) != 0 {
                    out.push_str(&text[last..*i]);
                    out.push(*jis);
                    last = i + text[*i..].chars().next().map_or(0, char::len_utf8);
                }
            }
            out.push_str(&text[last..]);
            out
        })
        .collect()
}

/// How many other spellings of a key `shift_jis_twins` gives at most.
const SJIS_TWINS: usize = 7;

/// A file's header and first rows, for the page where its columns are mapped to fields;
/// `None` when it does not decode or has no header (the import then reports why).
pub(crate) fn csv_preview(bytes: &[u8], encoding: &str) -> Option<(Vec<String>, Vec<Vec<String>>)> {
    let text = decode_csv(bytes, encoding).ok()?;
    let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
    let headers: Vec<String> = rdr.headers().ok()?.iter().map(|h| header_name(h).to_owned()).collect();
    if headers.is_empty() || headers.len() > IMPORT_MAX_COLUMNS {
        return None;
    }
    let rows = rdr
        .records()
        .take(PREVIEW_ROWS)
        .filter_map(Result::ok)
        .map(|r| r.iter().map(|v| unneutralise(v).chars().take(100).collect()).collect())
        .collect();
    Some((headers, rows))
}

/// The field a column of an import goes to, by the name or id its header (or the mapping)
/// gives: one of the table's, or a system field (read, never written).
fn import_field<'a>(t: &'a TableDef, system: &'a [FieldDef], target: &str) -> Option<&'a FieldDef> {
    t.fields.iter().find(|f| f.name.as_str() == target || f.id.to_string() == target).or_else(|| {
        system.iter().find(|f| {
            f.name.as_str() == target
                || f.id.to_string() == target
                || daicho_domain::table::system_column(f.id) == Some(target)
        })
    })
}

/// The field a file's header names, as an import reads it (`import_field`, after undoing the
/// export's neutralisation of the header): the import page sends a file whose headers all
/// name fields straight to the import, and preselects these on its mapping of columns.
pub(crate) fn header_field(t: &TableDef, header: &str) -> Option<FieldDef> {
    let system = daicho_domain::table::system_fields();
    import_field(t, &system, header_name(header)).cloned()
}

/// A column's name as the file's header holds it: without the spaces and invisible characters
/// around it (a second BOM, a zero-width space copied along: no field name holds them, and
/// the column would be "no such field" with a name that looks right), and without the
/// export's formula neutralisation.
fn header_name(h: &str) -> &str {
    unneutralise(
        h.trim_matches(|c: char| c.is_whitespace() || matches!(c, '\u{FEFF}' | '\u{200B}'..='\u{200D}' | '\u{2060}')),
    )
}

/// Undoes the export's formula neutralisation, so that an exported file imports unchanged.
fn unneutralise(s: &str) -> &str {
    match s.strip_prefix('\'') {
        Some(rest) if formula_like(rest) => rest,
        _ => s,
    }
}

/// Validates a whole CSV file against the table and writes it in one transaction, or writes
/// nothing and reports every problem by row and column (rows numbered as in a spreadsheet, the
/// header being row 1). With `key`, rows whose key value exists update that record.
///
/// The file's columns go to the fields their header names; with `mapping` (one entry per
/// column: a field's id or name, or empty to leave the column out) to the fields it names.
///
/// The store writes the rows part by part in a task of its own while the rest of the file is
/// validated here; the first problem ends the parts, and the store's transaction is rolled back
/// (see `Store::import_records`).
/// What an import wrote: records added, updated, and found already as the file has them; and
/// the file's columns read but not written because Daicho fills them itself (auto-numbers,
/// created and updated at and by), by name, so that the importer is told.
#[derive(Debug)]
pub(crate) struct Imported {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub not_written: Vec<String>,
}

pub(crate) async fn import_csv(
    state: &AppState,
    ctx: &Ctx,
    auth: &Auth,
    open: &OpenTable,
    bytes: &[u8],
    encoding: &str,
    key: Option<&str>,
    mapping: Option<&[String]>,
    staged: Option<&str>,
) -> AppResult<Imported> {
    let scope = auth.table_right::<Import>(state, ctx, open).await?;
    let t = &open.seen_by(&scope);
    // New rows are complete only if every required field this user may not write has a default.
    let fillable = check_fillable(&open.def, &|f| scope.writes(f)).is_ok();
    let bad = |field: &str, code: &'static str| {
        let mut e = FieldErrors::new();
        e.push_owned(field.to_owned(), code);
        AppError::Invalid(e)
    };
    let text = decode_csv(bytes, encoding).map_err(|c| bad("file", c))?;
    // A file of nothing (or of its BOM, or blank lines) is said to be empty, not told to map
    // columns it does not have.
    if text.trim().is_empty() {
        return Err(bad("file", "empty_file"));
    }
    // Whether the file may have been exported as Shift_JIS (read as it, or plain ASCII): a
    // character that encoding cannot hold came out as "?", and 〜 or − as their Windows twins.
    let maybe_shift_jis = encoding == "shift_jis"
        || bytes.is_ascii()
        || std::str::from_utf8(bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes)).is_err();
    if let Some(row) = unclosed_quote_row(text.as_bytes()) {
        return Err(bad(&format!("row:{row}"), "unclosed_quote"));
    }
    let key_field = match key.filter(|k| !k.is_empty()) {
        None => None,
        Some(k) => {
            let Some(f) = t.fields.iter().find(|f| f.id.to_string() == k || f.name.as_str() == k) else {
                // A key the import right hides: unknown, as one that does not exist, and recorded.
                let hidden = crate::tablecap::hidden_in_query(open, t, &[("sort".to_owned(), k.to_owned())]);
                auth.record_field_refusal(state, ctx, open, &hidden).await?;
                return Err(bad("key", "unknown_field"));
            };
            if !f.rules.unique && !f.kind.is_generated() {
                return Err(bad("key", "key_not_unique"));
            }
            // Finding the records to update means reading them: that takes view; changing them
            // takes edit, within edit's rows and fields, as an edit by the form or API would.
            let view = auth.table_right::<View>(state, ctx, open).await?;
            if !view.sees(f.id) {
                auth.record_field_refusal(state, ctx, open, &[f.name.as_str().to_owned()]).await?;
                return Err(bad("key", "unknown_field"));
            }
            let edit = auth.table_right::<Edit>(state, ctx, open).await?;
            Some((f, view, edit))
        }
    };
    let mut rdr = csv::ReaderBuilder::new().flexible(false).from_reader(text.as_bytes());
    // The header's row: after any blank lines the file starts with.
    let header_row = format!("row:{}", 1 + blank_lines_at(text.as_bytes(), 0));
    let headers = rdr.headers().map_err(|_| bad(&header_row, "bad_csv"))?.clone();
    if headers.len() > IMPORT_MAX_COLUMNS {
        return Err(bad("file", "too_many_columns"));
    }
    // Each column's field, or none for a column the mapping leaves out. The system fields an
    // export can hold (created and updated at and by) are read, never written: "updated at"
    // guards against undoing a later edit (see `changed_since`).
    let system = daicho_domain::table::system_fields();
    let mut columns: Vec<Option<&FieldDef>> = Vec::new();
    let mut errs = FieldErrors::new();
    if mapping.is_some_and(|m| m.len() != headers.len()) {
        return Err(bad("mapping", "mapping_mismatch"));
    }
    for (i, h) in headers.iter().enumerate() {
        // A header written by the export ("'@担当" for a field named "@担当") names its field.
        let h = header_name(h);
        let target = match mapping {
            Some(m) => m[i].trim(),
            None => h,
        };
        if mapping.is_some() && target.is_empty() {
            columns.push(None);
            continue;
        }
        let found = import_field(t, &system, target);
        match found {
            Some(f) if columns.iter().flatten().any(|c| c.id == f.id) => {
                errs.push_owned(format!("{header_row}:{}", h.chars().take(100).collect::<String>()), "duplicate_column")
            }
            Some(f) => columns.push(Some(f)),
            None => {
                errs.push_owned(format!("{header_row}:{}", h.chars().take(100).collect::<String>()), "unknown_field")
            }
        }
        if errs.0.len() >= IMPORT_MAX_ERRORS {
            break;
        }
    }
    if errs.is_empty() && columns.iter().all(|c| c.is_none_or(|f| daicho_domain::table::system_column(f.id).is_some()))
    {
        errs.push("mapping", "nothing_mapped");
    }
    // A file of new records without a column for a required field (one the importer may write,
    // with no default) is told so once, by the field, rather than on every row.
    if errs.is_empty() && key_field.is_none() {
        let defaults = daicho_store::guard::defaults(&open.def);
        for f in t.fields.iter().filter(|f| {
            f.rules.required
                && !f.kind.is_generated()
                && scope.writes(f.id)
                && !defaults.iter().any(|(d, c)| *d == f.id && *c != Cell::Null)
                && !columns.iter().flatten().any(|c| c.id == f.id)
        }) {
            errs.push_owned(f.id.to_string(), "no_column_for_required");
        }
    }
    // Updating by a key the file does not hold would find no record and insert every row.
    if let Some((kf, _, _)) = &key_field
        && errs.is_empty()
        && !columns.iter().flatten().any(|c| c.id == kf.id)
    {
        errs.push("key", "key_not_in_file");
    }
    if !errs.is_empty() {
        return auth.noting_refusal(state, ctx, open, t, Err(AppError::Invalid(errs))).await;
    }
    // A user field's cells may name the user as a person writes them in a spreadsheet (login
    // ID, "name (login ID)", name) or by id as an export writes them: the tenant's directory
    // is read once when the file has such a column.
    let user_columns: Vec<String> =
        columns.iter().flatten().filter(|f| matches!(f.kind, FieldKind::User)).map(|f| f.id.to_string()).collect();
    let people = if user_columns.is_empty() { Vec::new() } else { auth.directory(state, ctx).await? };
    let import_defaults = daicho_store::guard::defaults(&open.def);
    // The file's "updated at" column, if it has one (see `changed_since`).
    let updated_column = columns
        .iter()
        .flatten()
        .find(|f| daicho_domain::table::system_column(f.id) == Some("updated_at"))
        .map(|f| f.id.to_string());
    // The fields the row rules an update is judged by name (see `writes` below).
    let edit_rules = key_field.as_ref().map(|(_, _, edit)| edit.rule_fields()).unwrap_or_default();
    let import_rules = scope.rule_fields();
    let ev =
        ctx.event_by(&auth.principal, AuditAction::RecordImport, Outcome::Success).target(format!("table:{}", t.id));
    let (sender, parts) = tokio::sync::mpsc::channel(2);
    let writer = {
        let (store, scope, def, now) = (state.store.clone(), scope.clone(), open.def.clone(), ctx.now);
        tokio::spawn(async move { store.import_records(&scope, &def, parts, now, ev).await })
    };
    // Dropped at the first problem (the writer then rolls back) or when the writer has failed.
    let mut sender = Some(sender);
    let mut part = ImportBatch { staged: staged.map(str::to_owned), ..ImportBatch::default() };
    let mut seen_keys = std::collections::HashSet::new();
    // Unique fields other than the key (whose duplicates `seen_keys` finds), and the values
    // the file has given them so far.
    let unique_fields: Vec<FieldId> = t
        .fields
        .iter()
        .filter(|f| f.rules.unique && key_field.as_ref().is_none_or(|(kf, _, _)| kf.id != f.id))
        .map(|f| f.id)
        .collect();
    // Kept as 128-bit digests of (field, value), at most UNIQUE_SEEN_MAX of them (about 5 MB):
    // past that, the database's refusal (by field) still keeps the import all or nothing.
    let mut seen_unique: std::collections::HashSet<u128> = std::collections::HashSet::new();
    let digest = {
        use std::hash::BuildHasher as _;
        let (a, b) = (std::collections::hash_map::RandomState::new(), std::collections::hash_map::RandomState::new());
        move |f: FieldId, c: &Cell| {
            let text = format!("{c:?}");
            (u128::from(a.hash_one((f, &text))) << 64) | u128::from(b.hash_one((f, &text)))
        }
    };
    // Rows are numbered as a spreadsheet numbers them: a record is one row (line breaks in
    // its cells included), and so is a blank line, which the reader skips: counted from the
    // bytes before each record (the reader's line count is off after CRLF line ends).
    let mut blank = blank_lines_at(text.as_bytes(), 0);
    // The records the file's keys name, found ahead of the rows in batches (see `KeysAhead`).
    // (Not for a date-time key: one written to the minute names a span, looked up by row.)
    let mut ahead = match &key_field {
        Some((kf, _, _)) if !kf.kind.is_generated() && !matches!(kf.kind, FieldKind::DateTime) => columns
            .iter()
            .position(|c| c.is_some_and(|c| c.id == kf.id))
            .map(|col| KeysAhead::new(text.as_bytes(), col, maybe_shift_jis)),
        _ => None,
    };
    for (i, rec) in rdr.records().enumerate() {
        if i >= IMPORT_MAX_ROWS {
            // (With the problems found so far, and the refusals noted so far recorded.)
            errs.push("file", "too_many_rows");
            sender = None;
            break;
        }
        let at = match &rec {
            Ok(r) => r.position(),
            Err(e) => e.position(),
        };
        if let Some(p) = at {
            blank += blank_lines_at(text.as_bytes(), usize::try_from(p.byte()).unwrap_or(usize::MAX));
        }
        let row = i + 2 + blank;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let code =
                    if matches!(e.kind(), csv::ErrorKind::UnequalLengths { .. }) { "ragged_row" } else { "bad_csv" };
                errs.push_owned(format!("row:{row}"), code);
                break;
            }
        };
        // A row of empty cells (",,," as Excel saves rows it has formatted but not filled) is
        // no record: skipped as a blank line is.
        if rec.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let values: Map<String, Value> = columns
            .iter()
            .zip(rec.iter())
            .filter_map(|(f, v)| f.map(|f| (f.id.to_string(), Value::String(unneutralise(v).to_owned()))))
            .collect();
        let mut values = values;
        for k in &user_columns {
            if let Some(Value::String(v)) = values.get_mut(k)
                && !v.trim().is_empty()
                && v.trim().parse::<daicho_domain::UserId>().is_err()
                && let Some(id) = user_named(&people, v)
            {
                *v = id.to_string();
            }
        }
        // The record an update changes, as view shows it.
        let mut found_record: Option<Record> = None;
        let existing = match &key_field {
            Some((kf, view, edit)) => {
                let v = values.get(&kf.id.to_string()).and_then(Value::as_str).unwrap_or("").trim().to_owned();
                // The value as stored: "１２３" and "123", or "0123" and "123", are one key; so
                // are a record number with and without its prefix ("INQ-000042" and "42").
                let as_stored = || match &kf.kind {
                    FieldKind::AutoNumber { .. } => kf.filter("eq", &v).map(|f| format!("{:?}", f.op)).ok(),
                    _ => parse_at(kf, &Value::String(v.clone()), auth.tenant.policy.utc_offset_minutes)
                        .map(|c| format!("{c:?}"))
                        .ok(),
                };
                if v.is_empty() {
                    Ok(None)
                } else if !seen_keys.insert(as_stored().unwrap_or_else(|| v.clone())) {
                    errs.push_owned(format!("row:{row}:{}", kf.id), "duplicate_key");
                    Err(())
                } else {
                    let key = parse_at(kf, &Value::String(v.clone()), auth.tenant.policy.utc_offset_minutes);
                    let prefetched = match (&mut ahead, &key) {
                        (Some(a), Ok(c)) => a.find(state, view, &open.def, kf, i, c).await?,
                        _ => None,
                    };
                    // A date-time key as the file writes it, without offset, is the tenant's time;
                    // written to the minute or the second (a spreadsheet saved it so), it names
                    // the one record within that minute or second, as filters read it: taken as
                    // the minute's start, it found none, and every row became a new record.
                    let span = match (&kf.kind, &key) {
                        (FieldKind::DateTime, Ok(_)) => time_span(&v, auth.tenant.policy.utc_offset_minutes),
                        _ => None,
                    };
                    let exact = match (&kf.kind, &key) {
                        (FieldKind::DateTime, Ok(Cell::Int(ms))) => {
                            daicho_domain::table::local_text(*ms, 0, true).map(|t| t.replace(' ', "T") + "Z")
                        }
                        _ => None,
                    };
                    let filters = match &span {
                        Some((start, end)) => kf.filter("gte", start).and_then(|a| Ok(vec![a, kf.filter("lt", end)?])),
                        None => kf.filter("eq", exact.as_deref().unwrap_or(&v)).map(|f| vec![f]),
                    };
                    let looked = match prefetched {
                        Some(found) => Ok(found),
                        None => match filters {
                            Ok(filters) => {
                                let q = RecordQuery { filters, limit: 2, ..Default::default() };
                                let mut found = state.store.list_records(view, &open.def, &q).await?;
                                if found.len() > 1 { Err("key_matches_several") } else { Ok(found.pop()) }
                            }
                            Err(code) => Err(code),
                        },
                    };
                    match looked {
                        // A key that does not read is this row's problem, reported with the
                        // others (it ended the whole report, and the refusals noted so far).
                        Err(code) => {
                            errs.push_owned(format!("row:{row}:{}", kf.id), code);
                            Err(())
                        }
                        Ok(looked) => match looked.as_ref() {
                            // Within the rows of edit and of import alike, as the store will check.
                            // (Judged here only when the record read through view holds the
                            // fields the rules name; else the store judges the whole record.)
                            Some(r)
                                if (judged(edit.rows(), view) && !daicho_store::guard::covers(edit, r))
                                    || (judged(scope.rows(), view) && !daicho_store::guard::covers(&scope, r)) =>
                            {
                                errs.push_owned(format!("row:{row}:{}", kf.id), "not_editable");
                                Err(())
                            }
                            // A record number is the server's: one the table does not have (deleted,
                            // or never made) names no record to update, and is not made anew.
                            None if kf.kind.is_generated() => {
                                errs.push_owned(format!("row:{row}:{}", kf.id), "no_such_record");
                                Err(())
                            }
                            found => {
                                found_record = found.cloned();
                                Ok(found.map(|r| r.id))
                            }
                        },
                    }
                }
            }
            None => Ok(None),
        };
        // A file that holds the records' "updated at" (an export read back, that column chosen)
        // refuses a row whose record was changed after it: written, the row would undo that
        // change without a word. Checked here by row (on the record as read), and again by the
        // store on the record inside the import's transaction (a change made meanwhile).
        let since = updated_column
            .as_ref()
            .and_then(|col| values.get(col))
            .and_then(Value::as_str)
            .and_then(|at| time_given(at, auth.tenant.policy.utc_offset_minutes));
        let changed = match (&found_record, since) {
            (Some(r), Some(since)) => daicho_store::guard::check_unchanged_since(r, Some(since)).is_err(),
            _ => false,
        };
        if changed {
            errs.push_owned(
                format!("row:{row}:{}", updated_column.as_deref().unwrap_or_default()),
                "changed_since_export",
            );
        }
        let (Ok(existing), false) = (existing, changed) else {
            // As for any other problem: nothing more is written (the rows read so far are still
            // checked, see below), and the report stops at the cap.
            sender = None;
            if errs.0.len() >= IMPORT_MAX_ERRORS {
                break;
            }
            continue;
        };
        // Auto-numbers and system fields in the file (an export read back) are not written: they
        // are the record's.
        for f in columns
            .iter()
            .flatten()
            .filter(|f| f.kind.is_generated() || daicho_domain::table::system_column(f.id).is_some())
        {
            values.remove(&f.id.to_string());
        }
        // An update leaves the key as it is (the record was found by it): a key field that edit
        // may not write does not stop the update of the others.
        if let (Some(_), Some((kf, _, _))) = (existing, &key_field) {
            values.remove(&kf.id.to_string());
        }
        // A value the record already holds is no change (a file exported, edited in places and
        // imported back): it is not written, and not judged against a rule that keeps the
        // field read-only, as a record form does with a value sent back unchanged.
        if let Some(r) = &found_record {
            values.retain(|k, v| {
                let Some(f) = t.fields.iter().find(|f| f.id.to_string() == *k) else { return true };
                // (A field view hides is not in the record as read: kept, and judged.)
                let Some(stored) = r.cells.iter().find(|(id, _)| *id == f.id).map(|(_, c)| c.clone()) else {
                    return true;
                };
                // A text a Shift_JIS export could not hold as stored ("𠮷田" written "?田", "10〜20"
                // "10～20") comes back as that export wrote it: no change, not a new value
                // that would overwrite the record's.
                // A date-time the file shows less precisely than it is stored (a spreadsheet
                // shows and saves "2026/4/1 9:30" for 09:30:12.110, or the day only) is no
                // change while the stored time falls within what it shows (that minute, second
                // or day, in the tenant's time zone), as filters read it: read as the minute's
                // start, it would overwrite every row's seconds.
                if let (FieldKind::DateTime, Cell::Int(ms), Some((start, end))) =
                    (&f.kind, &stored, v.as_str().and_then(|v| time_span(v, auth.tenant.policy.utc_offset_minutes)))
                {
                    let rfc = &time::format_description::well_known::Rfc3339;
                    let at = |t: &str| time::OffsetDateTime::parse(t, rfc).ok().map(daicho_domain::audit::unix_ms);
                    if let (Some(start), Some(end)) = (at(&start), at(&end))
                        && (start..end).contains(ms)
                    {
                        return false;
                    }
                }
                if maybe_shift_jis
                    && !f.kind.is_generated()
                    && !matches!(f.kind, FieldKind::User)
                    && let (Cell::Text(was), Some(now)) = (&stored, v.as_str())
                    && !was.is_ascii()
                    && shift_jis_image(was) == now
                {
                    return false;
                }
                f.kind.is_generated()
                    || parse_at(f, v, auth.tenant.policy.utc_offset_minutes).map_or(true, |c| c != stored)
            });
        }
        // An update writes only what edit may write too, on this record: a group of each right
        // covering it must let the field be written (judged here when the record as view shows
        // it holds the fields the rules name; else by the store on the stored record).
        // (Whether the record as read holds the fields the rules name: once per row.)
        let holds = |r: &Record, rules: &[FieldId]| rules.iter().all(|rf| r.cells.iter().any(|(id, _)| id == rf));
        let judged = found_record.as_ref().map(|r| (holds(r, &edit_rules), holds(r, &import_rules)));
        let writes = |f: FieldId| {
            let (Some(r), Some((edit_judged, import_judged))) = (&found_record, judged) else {
                return scope.writes(f)
                    && (existing.is_none() || key_field.as_ref().is_some_and(|(_, _, edit)| edit.writes(f)));
            };
            let cell = |g: FieldId| r.cells.iter().find(|(id, _)| *id == g).map(|(_, c)| c.clone());
            let edit_ok = key_field.as_ref().is_some_and(|(_, _, edit)| {
                if edit_judged { edit.writes_on(f, &r.created_by, cell) } else { edit.writes(f) }
            });
            edit_ok && if import_judged { scope.writes_on(f, &r.created_by, cell) } else { scope.writes(f) }
        };
        let parsed = if existing.is_none() && !fillable {
            Err(AppError::Invalid(FieldErrors::single("", "required_unwritable")))
        } else {
            parse_values(t, &values, existing.is_none(), &writes, auth.tenant.policy.utc_offset_minutes)
        };
        // Two rows of the file with the same value in a unique field: named by row here (the
        // database would refuse the second without saying which row it was).
        let parsed = parsed.and_then(|cells| {
            let mut dup = FieldErrors::new();
            for (f, c) in &cells {
                if !matches!(c, Cell::Null)
                    && unique_fields.contains(f)
                    && seen_unique.len() < UNIQUE_SEEN_MAX
                    && !seen_unique.insert(digest(*f, c))
                {
                    dup.push_owned(f.to_string(), "duplicate_in_file");
                }
            }
            if dup.is_empty() { Ok(cells) } else { Err(AppError::Invalid(dup)) }
        });
        match parsed {
            Ok(cells) => match existing {
                // A row that holds what its record holds changes nothing: counted, not written.
                Some(_) if cells.is_empty() => part.unchanged += 1,
                Some(id) => {
                    part.updates.push((id, cells));
                    // The store checks again, inside the import's transaction, that the record
                    // holds the key it was found by (another user may have changed it, or given
                    // it to another record, meanwhile) and was not updated after the file's time.
                    let key = key_field
                        .as_ref()
                        .and_then(|(kf, _, _)| found_record.as_ref().and_then(|r| r.cell(kf.id)).map(|c| (kf.id, c)));
                    part.update_expects.push(daicho_store::RowExpects { since, key });
                    part.update_rows.push(row);
                }
                // A new record within the import right's rows (the store checks again, with the
                // defaults filled in, but could not name the row).
                None => match daicho_store::guard::check_new_covered(
                    &scope,
                    &daicho_store::guard::set_by_writer(&import_defaults, &cells),
                    &cells,
                ) {
                    Ok(()) => {
                        part.inserts.push(cells);
                        part.insert_rows.push(row);
                    }
                    Err(daicho_store::StoreError::Invalid(e)) => {
                        for fe in e.0 {
                            let at = if fe.field.is_empty() {
                                format!("row:{row}")
                            } else {
                                format!("row:{row}:{}", fe.field)
                            };
                            errs.push_owned(at, fe.code);
                        }
                    }
                    Err(e) => return Err(e.into()),
                },
            },
            Err(AppError::Invalid(e)) => {
                for fe in e.0 {
                    let at = if fe.field.is_empty() { format!("row:{row}") } else { format!("row:{row}:{}", fe.field) };
                    errs.push_owned(at, fe.code);
                }
            }
            Err(other) => return Err(other),
        }
        if !errs.is_empty() {
            // Nothing more is written: the writer sees the parts end and rolls back. The rows
            // that read well are still checked, part by part, for what only the database can
            // tell (links, values other records hold), so that one report lists every problem.
            sender = None;
        }
        if part.len() >= IMPORT_PART_ROWS {
            let edit = key_field.as_ref().map(|(_, _, e)| e);
            match part.send(state, ctx, auth, open, t, edit, &mut sender).await {
                Ok(()) => {}
                Err(AppError::Invalid(more)) => {
                    errs.0.extend(more.0);
                    sender = None;
                    part = part.checked_only();
                }
                Err(e) => {
                    drop(sender);
                    let _ = writer.await;
                    for why in &part.refusals {
                        auth.record_refusal(state, ctx, why.clone()).await?;
                    }
                    return Err(e);
                }
            }
        }
        if errs.0.len() >= IMPORT_MAX_ERRORS {
            break;
        }
    }
    if !errs.is_empty() && errs.0.len() < IMPORT_MAX_ERRORS && part.len() > 0 {
        // The last part's rows, checked as the others were.
        sender = None;
        if let Err(AppError::Invalid(more)) =
            part.send(state, ctx, auth, open, t, key_field.as_ref().map(|(_, _, e)| e), &mut sender).await
        {
            errs.0.extend(more.0);
        }
    }
    if !errs.is_empty() {
        // In the file's order (a part's links are checked after the rows that follow it).
        let row_of = |f: &str| f.strip_prefix("row:").and_then(|r| r.split(':').next()?.parse::<usize>().ok());
        errs.0.sort_by_key(|e| row_of(&e.field).unwrap_or(0));
        errs.0.truncate(IMPORT_MAX_ERRORS);
        drop(sender);
        for why in &part.refusals {
            auth.record_refusal(state, ctx, why.clone()).await?;
        }
        // The writer has rolled back (or never began); its "abandoned" error is not the news.
        let _ = writer.await;
        // Rows that would have made records outside the import right's rows, or changed records
        // outside edit's rows, are refusals too: recorded.
        for (code, what) in [
            ("must_be_you", "import of {n} records outside the import right's rows"),
            ("not_editable", "import update of {n} records outside edit's rows"),
        ] {
            let n = errs.0.iter().filter(|e| e.code == code).count();
            if n > 0 {
                let why = format!("{} in table:{}", what.replace("{n}", &n.to_string()), open.def.id);
                auth.record_refusal(state, ctx, why).await?;
            }
        }
        return auth.noting_refusal(state, ctx, open, t, Err(AppError::Invalid(errs))).await;
    }
    let updated = part.updated + part.updates.len();
    if let Err(e) = part.send(state, ctx, auth, open, t, key_field.as_ref().map(|(_, _, e)| e), &mut sender).await {
        drop(sender);
        let _ = writer.await;
        for why in &part.refusals {
            auth.record_refusal(state, ctx, why.clone()).await?;
        }
        return Err(e);
    }
    if let Some(s) = sender.take() {
        // (The store writes the counts, as written: a row sent may change nothing.)
        let done = ImportPart::Done { details: String::new(), unchanged: Some(part.unchanged as u64) };
        // A failed send means the writer has already ended with its error, awaited below.
        // (The staged file is taken first, also when the file held no rows.)
        let mut last = vec![done];
        if let Some(id) = part.staged.take() {
            last.insert(0, ImportPart::Staged(id));
        }
        for p in last {
            if s.send(p).await.is_err() {
                break;
            }
        }
    }
    let written = writer.await.map_err(|e| AppError::Internal(format!("the import's writer failed: {e}")))?;
    // (Rows the store found equal to their records, a field view hides among them, are
    // unchanged too.)
    let sent = updated as u64;
    match written {
        Ok((inserted, written)) => Ok(Imported {
            inserted,
            updated: written,
            unchanged: part.unchanged as u64 + sent.saturating_sub(written),
            not_written: columns
                .iter()
                .flatten()
                .filter(|f| f.kind.is_generated() || daicho_domain::table::system_column(f.id).is_some())
                .map(|f| f.name.as_str().to_owned())
                .collect(),
        }),
        Err(e) => Err(auth.refused(state, ctx, e.into(), format!("import into table:{}", t.id)).await),
    }
}

/// An update import's records, found by key ahead of the rows that name them: a second reader
/// of the file runs up to `KEYS_AHEAD` rows ahead, and their keys are looked up through view
/// in "any of" queries of `MAX_ANY_OF` values (one query for a hundred rows instead of one a
/// row). At most a window of records is held; each is taken out when its row comes.
struct KeysAhead<'t> {
    rows: csv::StringRecordsIntoIter<&'t [u8]>,
    col: usize,
    /// Rows the second reader has read.
    read: usize,
    /// Each key looked up (its stored value, as `Debug` text): the record, or none.
    found: std::collections::HashMap<String, Option<Record>>,
    /// The file may be a Shift_JIS export: a key is also looked for as it may be stored (see
    /// `shift_jis_twins`), its own spelling first.
    twins: bool,
}

/// How many rows `KeysAhead` reads ahead at a time.
const KEYS_AHEAD: usize = 500;

impl<'t> KeysAhead<'t> {
    fn new(text: &'t [u8], col: usize, twins: bool) -> Self {
        let rows = csv::ReaderBuilder::new().flexible(true).from_reader(text).into_records();
        Self { rows, col, read: 0, found: std::collections::HashMap::new(), twins }
    }

    /// The record whose key is `key` (row `i` of the file): `Some(found)` once looked up
    /// ahead, `None` when it could not be (the caller then looks it up itself).
    async fn find(
        &mut self,
        state: &AppState,
        view: &TableScope<View>,
        def: &TableDef,
        kf: &FieldDef,
        i: usize,
        key: &Cell,
    ) -> AppResult<Option<Option<Record>>> {
        let text = format!("{key:?}");
        if !self.found.contains_key(&text) && self.read <= i {
            // Read on past row `i`, then look the new keys up: (the key as the file gives it,
            // a spelling it is looked for by, that spelling as a cell).
            let mut keys: Vec<(String, String, Cell)> = Vec::new();
            while self.read <= i || (keys.len() < KEYS_AHEAD && self.read < i + KEYS_AHEAD) {
                let Some(rec) = self.rows.next() else { break };
                self.read += 1;
                let Some(v) = rec.ok().and_then(|r| r.get(self.col).map(|v| unneutralise(v).trim().to_owned())) else {
                    continue;
                };
                if let Ok(c) = kf.parse(&Value::String(v.clone()))
                    && !matches!(c, Cell::Null)
                {
                    let t = format!("{c:?}");
                    if !self.found.contains_key(&t) && !keys.iter().any(|(k, _, _)| *k == t) {
                        let twins = if self.twins { shift_jis_twins(&v) } else { Vec::new() };
                        keys.push((t.clone(), t.clone(), c));
                        for twin in twins {
                            if let Ok(c) = kf.parse(&Value::String(twin))
                                && !matches!(c, Cell::Null)
                            {
                                keys.push((t.clone(), format!("{c:?}"), c));
                            }
                        }
                    }
                }
            }
            for chunk in keys.chunks(daicho_domain::table::MAX_ANY_OF) {
                let filter = daicho_domain::table::Filter {
                    field: kf.id,
                    op: daicho_domain::table::FilterOp::AnyOf(chunk.iter().map(|(_, _, c)| c.clone()).collect()),
                };
                let q = RecordQuery { filters: vec![filter], limit: chunk.len() as u32 + 1, ..Default::default() };
                let mut records = state.store.list_records(view, def, &q).await?;
                for (t, spelled, _) in chunk {
                    // (A key found in its own spelling, or an earlier twin's, stays found.)
                    if self.found.get(t).is_some_and(Option::is_some) {
                        continue;
                    }
                    let at = records.iter().position(|r| r.cell(kf.id).is_some_and(|c| format!("{c:?}") == *spelled));
                    self.found.insert(t.clone(), at.map(|p| records.swap_remove(p)));
                }
            }
        }
        Ok(self.found.remove(&text))
    }
}

/// The validated rows of an import not yet handed to the store, and how many were.
#[derive(Default)]
struct ImportBatch {
    inserts: Vec<Vec<(FieldId, Cell)>>,
    updates: Vec<(i64, Vec<(FieldId, Cell)>)>,
    /// For each update, what its record must be as stored: the key it was found by, and not
    /// updated after the time the file gives (see `time_given`), if it has that column.
    update_expects: Vec<daicho_store::RowExpects>,
    /// The file's row number of each insert, then of each update, in order.
    insert_rows: Vec<usize>,
    update_rows: Vec<usize>,
    inserted: usize,
    updated: usize,
    /// Refusals met while checking links (a target the importer may not view), recorded
    /// once the import's transaction is over: on SQLite, writing them while it is open would
    /// wait for its lock.
    refusals: Vec<String>,
    /// Records updated by the parts already sent: a unique value one of them held may have
    /// been changed by the file before a later row takes it.
    updated_before: std::collections::HashSet<i64>,
    /// Rows whose record already held every value they give (not written).
    unchanged: usize,
    /// The staged file the import reads, until it is sent ahead of the first part (the store
    /// takes it first, in the import's transaction).
    staged: Option<String>,
}

impl ImportBatch {
    /// The rows of this part whose value of a unique field another record of the table
    /// already holds, as (file row, field): the database would refuse them too, but without
    /// saying which row. Looked up through view (a record outside the importer's rows, or a
    /// field view hides, is left to the database's refusal, which names only the field).
    async fn taken(&self, state: &AppState, auth: &Auth, open: &OpenTable) -> AppResult<Vec<(usize, FieldId)>> {
        let Ok(view) = auth.principal.authorize_table::<View>(&open.access) else { return Ok(Vec::new()) };
        // (file row, the record an update changes, its cells)
        type Row<'a> = (usize, Option<i64>, &'a [(FieldId, Cell)]);
        let rows: Vec<Row> = self
            .inserts
            .iter()
            .zip(&self.insert_rows)
            .map(|(c, r)| (*r, None, c.as_slice()))
            .chain(self.updates.iter().zip(&self.update_rows).map(|((id, c), r)| (*r, Some(*id), c.as_slice())))
            .collect();
        let mut out = Vec::new();
        for f in open.def.fields.iter().filter(|f| f.rules.unique && view.sees(f.id)) {
            let given: Vec<(usize, Option<i64>, &Cell)> = rows
                .iter()
                .filter_map(|(row, id, cells)| {
                    let (_, c) = cells.iter().find(|(fid, c)| *fid == f.id && !matches!(c, Cell::Null))?;
                    Some((*row, *id, c))
                })
                .collect();
            for chunk in given.chunks(daicho_domain::table::MAX_ANY_OF) {
                let filter = daicho_domain::table::Filter {
                    field: f.id,
                    op: daicho_domain::table::FilterOp::AnyOf(chunk.iter().map(|(_, _, c)| (*c).clone()).collect()),
                };
                let q = RecordQuery { filters: vec![filter], limit: chunk.len() as u32 + 1, ..Default::default() };
                for rec in state.store.list_records(&view, &open.def, &q).await? {
                    let held = rec.cell(f.id);
                    for (row, id, c) in chunk {
                        // Not a clash: an update keeping its own record's value, or a record
                        // the file changes before this row is written (an earlier part; in
                        // this part, an earlier update, as a part's inserts go first).
                        let freed = self.updated_before.contains(&rec.id)
                            || (id.is_some() && rows.iter().any(|(r, u, _)| *u == Some(rec.id) && r < row));
                        if held.as_ref() == Some(*c) && *id != Some(rec.id) && !freed {
                            out.push((*row, f.id));
                        }
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn len(&self) -> usize {
        self.inserts.len() + self.updates.len()
    }

    /// The batch emptied of rows after a check found problems in them (they are reported, not
    /// sent), keeping the refusals to record.
    fn checked_only(&mut self) -> ImportBatch {
        ImportBatch {
            refusals: std::mem::take(&mut self.refusals),
            // (Records an earlier part updated: a value one gave up may be taken by a later row.)
            updated_before: std::mem::take(&mut self.updated_before),
            ..ImportBatch::default()
        }
    }

    /// Checks the part's links and users, then hands it to the writer; when the writer has
    /// ended (with an error it reports), `sender` becomes `None` and the rest is only validated.
    #[allow(clippy::too_many_arguments)]
    async fn send(
        &mut self,
        state: &AppState,
        ctx: &Ctx,
        auth: &Auth,
        open: &OpenTable,
        t: &TableDef,
        edit: Option<&TableScope<Edit>>,
        sender: &mut Option<tokio::sync::mpsc::Sender<ImportPart>>,
    ) -> AppResult<()> {
        let all: Vec<&[(FieldId, Cell)]> =
            self.inserts.iter().map(Vec::as_slice).chain(self.updates.iter().map(|(_, c)| c.as_slice())).collect();
        let problems = ref_problems(state, ctx, auth, t, &all, &mut self.refusals).await?;
        if !problems.is_empty() {
            let rows: Vec<usize> = self.insert_rows.iter().chain(&self.update_rows).copied().collect();
            let mut errs = FieldErrors::new();
            for (i, f, code) in problems.into_iter().take(IMPORT_MAX_ERRORS) {
                errs.push_owned(format!("row:{}:{f}", rows.get(i).copied().unwrap_or_default()), code);
            }
            return Err(AppError::Invalid(errs));
        }
        let taken = self.taken(state, auth, open).await?;
        if !taken.is_empty() {
            let mut errs = FieldErrors::new();
            for (row, f) in taken.into_iter().take(IMPORT_MAX_ERRORS) {
                errs.push_owned(format!("row:{row}:{f}"), "taken");
            }
            return Err(AppError::Invalid(errs));
        }
        self.insert_rows.clear();
        self.update_rows.clear();
        self.updated_before.extend(self.updates.iter().map(|(id, _)| *id));
        self.inserted += self.inserts.len();
        self.updated += self.updates.len();
        let inserts = std::mem::take(&mut self.inserts);
        let updates = std::mem::take(&mut self.updates);
        let expects = std::mem::take(&mut self.update_expects);
        // Updates come only with a key field, found and changed under the edit right.
        let update = match (updates.is_empty(), edit) {
            (true, _) => None,
            (false, Some(edit)) => Some(ImportPart::Update { edit: edit.clone(), rows: updates, expects }),
            (false, None) => return Err(AppError::Internal("an import update without the edit right".into())),
        };
        if let Some(s) = sender.as_ref() {
            let staged = self.staged.take().map(ImportPart::Staged);
            let parts = [staged, (!inserts.is_empty()).then_some(ImportPart::Insert(inserts)), update];
            for p in parts.into_iter().flatten() {
                if s.send(p).await.is_err() {
                    *sender = None;
                    break;
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
pub struct ImportQuery {
    pub encoding: String,
    pub key: String,
    /// The file's columns mapped to fields: for each column in order, a field's id or name or
    /// nothing (the column is left out), separated by tabs. Without it, each column's header
    /// names its field.
    pub columns: String,
}

impl ImportQuery {
    /// Reads the import's query. Another key is refused (422 `unknown_parameter`), as lists
    /// refuse one: a misspelt `key` (`Key=`, `kye=`) would otherwise import every row of an
    /// exported file as a new record, the whole table twice.
    fn read(pairs: &[(String, String)]) -> AppResult<Self> {
        let mut q = ImportQuery::default();
        let mut errs = FieldErrors::new();
        for (k, v) in pairs {
            match k.as_str() {
                "encoding" => q.encoding = v.clone(),
                "key" => q.key = v.clone(),
                "columns" => q.columns = v.clone(),
                other => errs.push_owned(other.chars().take(100).collect(), "unknown_parameter"),
            }
        }
        if errs.is_empty() { Ok(q) } else { Err(AppError::Invalid(errs)) }
    }
}

pub async fn import_records(
    State(state): State<AppState>,
    ctx: Ctx,
    auth: Auth,
    Path(tid): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
    body: axum::body::Bytes,
) -> AppResult<Json<Value>> {
    let open = auth.open_table(&state, &ctx, &tid).await?;
    let _scope = auth.table_right::<Import>(&state, &ctx, &open).await?;
    let q = ImportQuery::read(&pairs)?;
    let mapping = (!q.columns.is_empty()).then(|| q.columns.split('\t').map(str::to_owned).collect::<Vec<_>>());
    let done =
        import_csv(&state, &ctx, &auth, &open, &body, &q.encoding, Some(q.key.as_str()), mapping.as_deref(), None)
            .await?;
    Ok(Json(json!({
        "inserted": done.inserted,
        "updated": done.updated,
        "unchanged": done.unchanged,
        "not_written": done.not_written,
    })))
}

#[cfg(test)]
mod sjis_tests {
    #[test]
    fn a_key_read_from_a_shift_jis_file_is_also_looked_for_in_its_jis_spellings() {
        use super::{shift_jis_image, shift_jis_twins};
        assert!(shift_jis_twins("ABC-123").is_empty());
        assert_eq!(shift_jis_twins("10～20"), ["10〜20"]);
        // Each twin is what the export wrote as the key in the file.
        for stored in ["10〜20", "A−B‖C", "〜〜"] {
            let file = shift_jis_image(stored);
            assert_ne!(file, stored);
            assert!(shift_jis_twins(&file).contains(&stored.to_owned()), "{stored}: {:?}", shift_jis_twins(&file));
        }
        // Fewest changes first; at most seven; four such characters are looked for as written.
        assert_eq!(shift_jis_twins("～－")[..2], ["〜－", "～−"]);
        assert_eq!(shift_jis_twins("～－～").len(), 7);
        assert!(shift_jis_twins("～～～～").is_empty());
    }

    #[test]
    fn a_header_is_read_without_the_invisible_characters_around_it() {
        use super::header_name;
        assert_eq!(header_name("\u{FEFF}名前"), "名前", "a second BOM");
        assert_eq!(header_name(" \u{200B}名前\u{2060} "), "名前");
        assert_eq!(header_name("'@担当"), "@担当", "the export's neutralisation");
        assert_eq!(header_name("名\u{200B}前"), "名\u{200B}前", "only around the name");
    }

    #[test]
    fn a_formula_cell_is_neutralised_on_export_and_read_back_as_it_was() {
        use super::{neutralised, unneutralise};
        for v in [
            "=1+1", "'=1+1", "''=1+1", "-5", "'-5", "@x", "\tx", "'", "''", "'plain", "plain", "", "a=b", "＝1+1",
            "＋81", "－5", "＠x", "'＝1",
        ] {
            let out = neutralised(std::borrow::Cow::Borrowed(v));
            assert!(!out.starts_with(['=', '+', '-', '@', '\t', '\r', '＝', '＋', '－', '＠']), "{v:?} -> {out:?}");
            assert_eq!(unneutralise(&out), v, "{v:?} -> {out:?}");
        }
        assert_eq!(neutralised(std::borrow::Cow::Borrowed("'=1+1")), "''=1+1");
        assert_eq!(neutralised(std::borrow::Cow::Borrowed("'plain")), "'plain");
    }

    #[test]
    fn a_utf8_file_with_a_broken_byte_is_not_taken_for_shift_jis() {
        use super::decode_csv;
        let sjis = encoding_rs::SHIFT_JIS.encode("会社名\n株式会社\n").0.into_owned();
        assert_eq!(decode_csv(&sjis, "auto").as_deref(), Ok("会社名\n株式会社\n"));
        let mut broken = "会社名\n株式会社 ".as_bytes().to_vec();
        broken.push(0xE9); // a Windows-1252 "é" in a UTF-8 file
        broken.extend_from_slice("\n".as_bytes());
        assert_eq!(decode_csv(&broken, "auto"), Err("broken_utf8"));
        assert_eq!(decode_csv(&broken, "utf-8"), Err("bad_encoding"));
        // Shift_JIS with half-width kana after an ASCII header (whose bytes pass for UTF-8).
        let kana = encoding_rs::SHIFT_JIS.encode("name,kana\nA,ﾄｳｷｮｳ\nB,ﾃｽﾄ\n").0.into_owned();
        assert_eq!(decode_csv(&kana, "auto").as_deref(), Ok("name,kana\nA,ﾄｳｷｮｳ\nB,ﾃｽﾄ\n"));
        let mut bom = vec![0xEF, 0xBB, 0xBF, b'a', 0xFF];
        assert_eq!(decode_csv(&bom, "auto"), Err("broken_utf8"));
        bom.truncate(4);
        assert_eq!(decode_csv(&bom, "auto").as_deref(), Ok("a"));
        // Accented UTF-8 with a stray byte, or Shift_JIS this short: too close to tell.
        assert_eq!(decode_csv(b"name\nCaf\xc3\xa9\nRen\xe9e\n", "auto"), Err("choose_encoding"));
        let short = encoding_rs::SHIFT_JIS.encode("a\nﾃｽﾄ\n").0.into_owned();
        assert_eq!(decode_csv(&short, "auto"), Err("choose_encoding"));
        assert_eq!(decode_csv(&short, "shift_jis").as_deref(), Ok("a\nﾃｽﾄ\n"), "chosen, it reads");
    }

    #[test]
    fn a_span_past_the_last_day_a_date_time_holds_is_none_not_a_panic() {
        for v in ["9999-12-31", "9999-12-31 23:59", "9999-12-31 23:59:59"] {
            assert_eq!(super::time_span(v, 0), None, "{v}");
        }
        assert!(super::time_span("9999-12-30", 540).is_some());
    }

    #[test]
    fn shift_jis_export_writes_a_question_mark_for_what_it_cannot_hold() {
        let bytes = super::to_shift_jis("顧客,emoji 😀 ①\n𠮷野家");
        let (back, _, bad) = encoding_rs::SHIFT_JIS.decode(&bytes);
        assert!(!bad);
        assert_eq!(back, "顧客,emoji ? ①\n?野家");
    }

    #[test]
    fn shift_jis_export_writes_mac_spellings_of_jis_characters_as_windows_does() {
        // 〜 ‖ — − ¢ £ ¬ as a Mac types them: the bytes Windows (CP932) writes for them.
        let bytes = super::to_shift_jis("10\u{301C}20件 \u{2016}\u{2014}\u{2212}\u{A2}\u{A3}\u{AC}");
        assert_eq!(&bytes[2..4], &[0x81, 0x60], "〜");
        let (back, _, bad) = encoding_rs::SHIFT_JIS.decode(&bytes);
        assert!(!bad);
        assert_eq!(back, "10～20件 ∥―－￠￡￢");
    }

    #[test]
    fn shift_jis_export_of_a_long_text_is_whole_and_of_many_unmappable_characters_is_linear() {
        // Longer than the encoder's buffer: written whole, as one encode of it would be.
        let long = "顧客名 Customer ①〒".repeat(2_000);
        assert_eq!(super::to_shift_jis(&long), encoding_rs::SHIFT_JIS.encode(&long).0.into_owned());
        // 200,000 characters Shift_JIS lacks (about 800 KB): each a "?", counted, without
        // a buffer made anew for each (that took minutes).
        let started = std::time::Instant::now();
        let mut replaced = 0;
        let bytes = super::to_shift_jis_counting(&"😀".repeat(200_000), &mut replaced);
        assert_eq!((bytes.len(), replaced), (200_000, 200_000));
        assert!(bytes.iter().all(|b| *b == b'?'));
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());
    }
}

#[cfg(test)]
mod export_tests {
    use super::*;
    use tokio_stream::StreamExt as _;

    #[tokio::test(start_paused = true)]
    async fn an_export_whose_client_takes_nothing_stops_after_the_stall() {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Piece>(1);
        let stall = std::time::Duration::from_secs(60);
        assert!(send_within(&tx, b"a".to_vec(), stall).await, "room in the channel");
        let started = tokio::time::Instant::now();
        assert!(!send_within(&tx, b"b".to_vec(), stall).await, "nobody took the first piece");
        assert_eq!(started.elapsed(), stall);
        assert!(rx.recv().await.is_some_and(|p| p.is_ok()));
        drop(rx);
        assert!(!send_within(&tx, b"c".to_vec(), stall).await, "the client has gone");
    }

    #[tokio::test(start_paused = true)]
    async fn a_node_runs_two_exports_and_a_third_waits_for_a_place_then_is_refused() {
        let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(crate::state::EXPORTS));
        let first = export_place(&permits).await;
        let second = export_place(&permits).await;
        assert!(first.is_ok() && second.is_ok());
        let started = tokio::time::Instant::now();
        assert!(matches!(export_place(&permits).await, Err(AppError::Unavailable(_))));
        assert_eq!(started.elapsed(), crate::state::EXPORT_WAIT);
        // A place given back within the wait is taken.
        let waiting = tokio::spawn({
            let permits = permits.clone();
            async move { export_place(&permits).await.is_ok() }
        });
        tokio::time::sleep(crate::state::EXPORT_WAIT / 2).await;
        drop(first);
        assert!(waiting.await.unwrap_or(false));
    }

    #[tokio::test]
    async fn an_unfinished_export_ends_with_an_error_and_a_finished_one_cleanly() {
        for cut in [false, true] {
            let (tx, rx) = tokio::sync::mpsc::channel::<Piece>(2);
            let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let body = export_body(rx, flag.clone());
            tx.send(Ok(b"head".to_vec())).await.unwrap_or_default();
            // (A writer that ends without saying the file is whole, a panic among them, cuts it.)
            flag.store(!cut, std::sync::atomic::Ordering::SeqCst);
            drop(tx);
            let pieces: Vec<Piece> = body.collect().await;
            assert_eq!(pieces.len(), if cut { 2 } else { 1 });
            assert!(pieces[0].is_ok());
            assert_eq!(pieces.last().is_some_and(Result::is_err), cut);
        }
    }
}
