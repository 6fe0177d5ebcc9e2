//! Column readers for postgres rows; the mapping to domain values is shared
//! (`daicho_store::rows`).

use daicho_domain::{AuditEvent, Tenant, User};
use daicho_store::rows::{self, Columns, column_error};
use daicho_store::{Session, StoreResult};
use sqlx::Row;
use sqlx::postgres::PgRow;

pub(crate) struct Cols<'a>(pub(crate) &'a PgRow);

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

pub(crate) fn user_from_row(r: &PgRow) -> StoreResult<User> {
    rows::user(&Cols(r))
}

pub(crate) fn tenant_from_row(r: &PgRow) -> StoreResult<Tenant> {
    rows::tenant(&Cols(r), "")
}

pub(crate) fn tenant_from_prefixed(r: &PgRow) -> StoreResult<Tenant> {
    rows::tenant(&Cols(r), "t_")
}

pub(crate) fn session_from_row(r: &PgRow, prefix: &str) -> StoreResult<Session> {
    rows::session(&Cols(r), prefix)
}

pub(crate) fn audit_from_row(r: &PgRow) -> StoreResult<AuditEvent> {
    rows::audit(&Cols(r))
}

pub(crate) fn directory_from_row(r: &PgRow) -> StoreResult<daicho_store::Person> {
    rows::directory_entry(&Cols(r))
}

pub(crate) fn grant_from_row(r: &PgRow) -> StoreResult<daicho_domain::TableGrant> {
    rows::grant(&Cols(r))
}

pub(crate) fn group_from_row(r: &PgRow) -> StoreResult<daicho_domain::Group> {
    rows::group(&Cols(r))
}

pub(crate) fn token_from_row(r: &PgRow, prefix: &str) -> StoreResult<daicho_store::ApiToken> {
    rows::api_token(&Cols(r), prefix)
}
