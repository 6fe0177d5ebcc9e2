//! Column readers for sqlite rows; the mapping to domain values is shared
//! (`daicho_store::rows`).

use daicho_domain::{AuditEvent, Tenant, User};
use daicho_store::rows::{self, Columns, column_error};
use daicho_store::{Session, StoreResult};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

pub(crate) struct Cols<'a>(pub(crate) &'a SqliteRow);

impl Columns for Cols<'_> {
    fn text(&self, col: &str) -> StoreResult<String> {
        self.0.try_get(col).map_err(|e| column_error(col, e))
    }
    fn opt_text(&self, col: &str) -> StoreResult<Option<String>> {
        self.0.try_get(col).map_err(|e| column_error(col, e))
    }
    fn int(&self, col: &str) -> StoreResult<i64> {
        self.0.try_get(col).map_err(|e| column_error(col, e))
    }
    fn opt_int(&self, col: &str) -> StoreResult<Option<i64>> {
        self.0.try_get(col).map_err(|e| column_error(col, e))
    }
    fn flag(&self, col: &str) -> StoreResult<bool> {
        self.0.try_get(col).map_err(|e| column_error(col, e))
    }
}

impl rows::ColumnsAt for Cols<'_> {
    fn int_at(&self, at: usize) -> StoreResult<i64> {
        self.0.try_get(at).map_err(|e| column_error(&format!("#{at}"), e))
    }
    fn text_at(&self, at: usize) -> StoreResult<String> {
        self.0.try_get(at).map_err(|e| column_error(&format!("#{at}"), e))
    }
    fn opt_text_at(&self, at: usize) -> StoreResult<Option<String>> {
        self.0.try_get(at).map_err(|e| column_error(&format!("#{at}"), e))
    }
    fn opt_int_at(&self, at: usize) -> StoreResult<Option<i64>> {
        self.0.try_get(at).map_err(|e| column_error(&format!("#{at}"), e))
    }
    fn opt_flag_at(&self, at: usize) -> StoreResult<Option<bool>> {
        self.0.try_get(at).map_err(|e| column_error(&format!("#{at}"), e))
    }
}

/// One row of a page that SQLite returned as JSON (`json_array` of the record's columns, see
/// `list_records`), read by position; each cell is taken out once.
pub(crate) struct JsonCols(pub(crate) std::cell::RefCell<Vec<serde_json::Value>>);

impl JsonCols {
    fn take(&self, at: usize) -> serde_json::Value {
        self.0.borrow_mut().get_mut(at).map(std::mem::take).unwrap_or_default()
    }
}

fn json_error(at: usize, v: &serde_json::Value) -> daicho_store::StoreError {
    column_error(&format!("#{at}"), format!("unexpected value {v}"))
}

impl rows::ColumnsAt for JsonCols {
    fn int_at(&self, at: usize) -> StoreResult<i64> {
        self.opt_int_at(at)?.ok_or_else(|| column_error(&format!("#{at}"), "NULL"))
    }
    fn text_at(&self, at: usize) -> StoreResult<String> {
        self.opt_text_at(at)?.ok_or_else(|| column_error(&format!("#{at}"), "NULL"))
    }
    fn opt_text_at(&self, at: usize) -> StoreResult<Option<String>> {
        // As SQLite reads a TEXT column: a number stored there is its text.
        match self.take(at) {
            serde_json::Value::Null => Ok(None),
            serde_json::Value::String(s) => Ok(Some(s)),
            serde_json::Value::Number(n) => Ok(Some(n.to_string())),
            v => Err(json_error(at, &v)),
        }
    }
    fn opt_int_at(&self, at: usize) -> StoreResult<Option<i64>> {
        match self.take(at) {
            serde_json::Value::Null => Ok(None),
            serde_json::Value::Number(n) if n.is_i64() => Ok(n.as_i64()),
            serde_json::Value::String(s) if s.parse::<i64>().is_ok() => Ok(s.parse().ok()),
            v => Err(json_error(at, &v)),
        }
    }
    fn opt_flag_at(&self, at: usize) -> StoreResult<Option<bool>> {
        Ok(self.opt_int_at(at)?.map(|n| n != 0))
    }
}

pub(crate) fn user_from_row(r: &SqliteRow) -> StoreResult<User> {
    rows::user(&Cols(r))
}

pub(crate) fn tenant_from_row(r: &SqliteRow) -> StoreResult<Tenant> {
    rows::tenant(&Cols(r), "")
}

pub(crate) fn tenant_from_prefixed(r: &SqliteRow) -> StoreResult<Tenant> {
    rows::tenant(&Cols(r), "t_")
}

pub(crate) fn session_from_row(r: &SqliteRow, prefix: &str) -> StoreResult<Session> {
    rows::session(&Cols(r), prefix)
}

pub(crate) fn audit_from_row(r: &SqliteRow) -> StoreResult<AuditEvent> {
    rows::audit(&Cols(r))
}

pub(crate) fn directory_from_row(r: &SqliteRow) -> StoreResult<daicho_store::Person> {
    rows::directory_entry(&Cols(r))
}

pub(crate) fn grant_from_row(r: &SqliteRow) -> StoreResult<daicho_domain::TableGrant> {
    rows::grant(&Cols(r))
}

pub(crate) fn group_from_row(r: &SqliteRow) -> StoreResult<daicho_domain::Group> {
    rows::group(&Cols(r))
}

pub(crate) fn token_from_row(r: &SqliteRow, prefix: &str) -> StoreResult<daicho_store::ApiToken> {
    rows::api_token(&Cols(r), prefix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use daicho_store::rows::ColumnsAt as _;

    fn row(v: serde_json::Value) -> JsonCols {
        JsonCols(v.as_array().cloned().unwrap_or_default().into())
    }

    #[test]
    fn json_columns_read_as_sqlite_reads_them_and_refuse_what_does_not_fit() {
        let r = row(serde_json::json!([7, null, "text", 12, "34", 1, 0, null, 1.5, "x"]));
        assert_eq!(r.int_at(0).ok(), Some(7));
        assert_eq!(r.opt_text_at(1).ok(), Some(None));
        assert_eq!(r.text_at(2).ok().as_deref(), Some("text"));
        assert_eq!(r.opt_text_at(3).ok(), Some(Some("12".to_owned())), "a number in a TEXT column is its text");
        assert_eq!(r.opt_int_at(4).ok(), Some(Some(34)), "an integer stored as text");
        assert_eq!((r.opt_flag_at(5).ok(), r.opt_flag_at(6).ok()), (Some(Some(true)), Some(Some(false))));
        assert!(r.int_at(7).is_err(), "NULL where a value must be");
        assert!(r.opt_int_at(8).is_err(), "a real is not an integer");
        assert!(r.opt_int_at(9).is_err(), "text that is no number");
        assert_eq!(r.opt_text_at(10).ok(), Some(None), "past the end reads as NULL");
    }
}
