//! Mapping stored rows to domain values, shared by every backend. A backend supplies the
//! column readers ([`Columns`]); the parsing of stored values into validated domain types lives
//! here once. A stored value that no longer parses is reported as an internal error (it means
//! the database was changed outside Daicho), never silently replaced.

use std::str::FromStr;

use daicho_domain::{
    AuditEvent, DisplayName, Email, LanguagePref, LoginId, Role, SecurityPolicy, SessionId, Tenant, TenantCode,
    TenantId, TenantName, User, UserId, UserStatus,
};
use time::OffsetDateTime;

use crate::{Session, StoreError, StoreResult};

/// Typed access to one row's columns by name.
pub trait Columns {
    fn text(&self, col: &str) -> StoreResult<String>;
    fn opt_text(&self, col: &str) -> StoreResult<Option<String>>;
    fn int(&self, col: &str) -> StoreResult<i64>;
    fn opt_int(&self, col: &str) -> StoreResult<Option<i64>>;
    fn flag(&self, col: &str) -> StoreResult<bool>;
}

/// Typed access to one row's columns by position (for rows whose column order is known, such
/// as those selected with a table's record columns).
pub trait ColumnsAt {
    fn int_at(&self, at: usize) -> StoreResult<i64>;
    fn text_at(&self, at: usize) -> StoreResult<String>;
    fn opt_text_at(&self, at: usize) -> StoreResult<Option<String>>;
    fn opt_int_at(&self, at: usize) -> StoreResult<Option<i64>>;
    fn opt_flag_at(&self, at: usize) -> StoreResult<Option<bool>>;
}

/// The record's own columns, in the order a record's SELECT lists them before the fields (each
/// store's `record_columns`).
pub const RECORD_COLUMNS: [&str; 6] = ["id", "version", "created_at", "created_by", "updated_at", "updated_by"];

/// A record from a row selected as `RECORD_COLUMNS` then the table's fields in their order,
/// read by position (no column name is formatted or looked up per cell).
pub fn record(r: &impl ColumnsAt, table: &daicho_domain::table::TableDef) -> StoreResult<crate::Record> {
    use daicho_domain::table::{Cell, Storage};
    let named = |at: usize, e: StoreError| match (RECORD_COLUMNS.get(at), e) {
        (Some(c), StoreError::Internal(m)) => StoreError::Internal(format!("{c}: {m}")),
        (_, e) => e,
    };
    let mut cells = Vec::with_capacity(table.fields.len());
    for (i, f) in table.fields.iter().enumerate() {
        let at = RECORD_COLUMNS.len() + i;
        let cell = match f.kind.storage() {
            Storage::Text => r.opt_text_at(at)?.map(Cell::Text),
            Storage::Int => r.opt_int_at(at)?.map(Cell::Int),
            Storage::Bool => r.opt_flag_at(at)?.map(Cell::Bool),
        };
        cells.push((f.id, cell.unwrap_or(Cell::Null)));
    }
    Ok(crate::Record {
        id: r.int_at(0).map_err(|e| named(0, e))?,
        version: r.int_at(1).map_err(|e| named(1, e))?,
        cells,
        created_at: time_ms(r.int_at(2).map_err(|e| named(2, e))?)?,
        created_by: r.text_at(3).map_err(|e| named(3, e))?,
        updated_at: time_ms(r.int_at(4).map_err(|e| named(4, e))?)?,
        updated_by: r.text_at(5).map_err(|e| named(5, e))?,
    })
}

/// The error for a column that cannot be read.
pub fn column_error(col: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(format!("column {col}: {e}"))
}

fn bad(what: &str) -> StoreError {
    StoreError::Internal(format!("stored value does not parse: {what}"))
}

pub fn time_ms(v: i64) -> StoreResult<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(v) * 1_000_000).map_err(|_| bad("time"))
}

fn id<T: FromStr>(r: &impl Columns, col: &str) -> StoreResult<T> {
    T::from_str(&r.text(col)?).map_err(|_| bad(col))
}

fn opt_id<T: FromStr>(r: &impl Columns, col: &str) -> StoreResult<Option<T>> {
    r.opt_text(col)?.map(|s| T::from_str(&s).map_err(|_| bad(col))).transpose()
}

pub fn user(r: &impl Columns) -> StoreResult<User> {
    Ok(User {
        id: id::<UserId>(r, "id")?,
        tenant_id: id::<TenantId>(r, "tenant_id")?,
        login_id: LoginId::parse(&r.text("login_id")?).map_err(|_| bad("login_id"))?,
        display_name: DisplayName::parse(&r.text("display_name")?).map_err(|_| bad("display_name"))?,
        email: Email::parse(&r.text("email")?).map_err(|_| bad("email"))?,
        role: Role::parse(&r.text("role")?).map_err(|_| bad("role"))?,
        status: UserStatus::parse(&r.text("status")?).map_err(|_| bad("status"))?,
        language: LanguagePref::parse(&r.text("language")?).map_err(|_| bad("language"))?,
        must_change_password: r.flag("must_change_password")?,
        password_changed_at: time_ms(r.int("password_changed_at")?)?,
        failed_logins: u32::try_from(r.int("failed_logins")?).unwrap_or(u32::MAX),
        locked_until: r.opt_int("locked_until")?.map(time_ms).transpose()?,
        created_at: time_ms(r.int("created_at")?)?,
        updated_at: time_ms(r.int("updated_at")?)?,
    })
}

/// A tenant from columns named with `prefix` (`""`, or `"t_"` in a join).
pub fn tenant(r: &impl Columns, prefix: &str) -> StoreResult<Tenant> {
    let col = |c: &str| format!("{prefix}{c}");
    let policy = r.text(&col("policy"))?;
    Ok(Tenant {
        id: id::<TenantId>(r, &col("id"))?,
        code: TenantCode::parse(&r.text(&col("code"))?).map_err(|_| bad("code"))?,
        name: TenantName::parse(&r.text(&col("name"))?).map_err(|_| bad("name"))?,
        policy: serde_json::from_str::<SecurityPolicy>(&policy).map_err(|_| bad("policy"))?,
        created_at: time_ms(r.int(&col("created_at"))?)?,
    })
}

/// A session from columns named with `prefix`.
pub fn session(r: &impl Columns, prefix: &str) -> StoreResult<Session> {
    let col = |c: &str| format!("{prefix}{c}");
    Ok(Session {
        id: id::<SessionId>(r, &col("id"))?,
        tenant_id: id::<TenantId>(r, &col("tenant_id"))?,
        user_id: id::<UserId>(r, &col("user_id"))?,
        created_at: time_ms(r.int(&col("created_at"))?)?,
        last_seen_at: time_ms(r.int(&col("last_seen_at"))?)?,
        csrf_token: r.text(&col("csrf_token"))?,
        ip: r.text(&col("ip"))?,
        user_agent: r.text(&col("user_agent"))?,
    })
}

pub fn audit(r: &impl Columns) -> StoreResult<AuditEvent> {
    Ok(AuditEvent {
        seq: r.int("seq")?,
        at: time_ms(r.int("at")?)?,
        tenant_id: opt_id(r, "tenant_id")?,
        actor_id: opt_id(r, "actor_id")?,
        actor_login: r.text("actor_login")?,
        ip: r.text("ip")?,
        user_agent: r.text("user_agent")?,
        action: r.text("action")?,
        target: r.text("target")?,
        outcome: r.text("outcome")?,
        details: r.text("details")?,
        prev_hash: r.text("prev_hash")?,
        hash: r.text("hash")?,
    })
}

/// One entry of the tenant's user directory from columns id, login_id, display_name, status.
pub fn directory_entry(r: &impl Columns) -> StoreResult<crate::Person> {
    Ok(crate::Person {
        id: id::<UserId>(r, "id")?,
        login: LoginId::parse(&r.text("login_id")?).map_err(|_| bad("login_id"))?,
        name: r.text("display_name")?,
        active: r.text("status")? == "active",
    })
}

/// A table grant from columns group_id, table_id, rights, rows, fields.
pub fn grant(r: &impl Columns) -> StoreResult<daicho_domain::TableGrant> {
    Ok(daicho_domain::TableGrant {
        group: id(r, "group_id")?,
        table: id(r, "table_id")?,
        rights: daicho_domain::Rights::from_bits(r.int("rights")?),
        rows: serde_json::from_str(&r.text("rows")?).map_err(|_| bad("grant rows"))?,
        fields: serde_json::from_str(&r.text("fields")?).map_err(|_| bad("grant fields"))?,
    })
}

/// A group from columns id, tenant_id, name, description (members and grants added after).
pub fn group(r: &impl Columns) -> StoreResult<daicho_domain::Group> {
    Ok(daicho_domain::Group {
        id: id(r, "id")?,
        tenant_id: id(r, "tenant_id")?,
        name: daicho_domain::table::Name::stored(&r.text("name")?).map_err(|_| bad("group name"))?,
        description: r.text("description")?,
        members: Vec::new(),
        grants: Vec::new(),
    })
}

/// The JSON stored for a grant's row rule and field rules.
pub fn grant_json(g: &daicho_domain::TableGrant) -> StoreResult<(String, String)> {
    let e = |e: serde_json::Error| StoreError::Internal(e.to_string());
    let fields: std::collections::BTreeMap<_, _> =
        g.fields.iter().filter(|(_, a)| **a != daicho_domain::FieldAccess::Editable).collect();
    Ok((serde_json::to_string(&g.rows).map_err(e)?, serde_json::to_string(&fields).map_err(e)?))
}

/// A personal API token from columns with the given prefix.
pub fn api_token(r: &impl Columns, p: &str) -> StoreResult<crate::ApiToken> {
    let c = |n: &str| format!("{p}{n}");
    Ok(crate::ApiToken {
        id: id(r, &c("id"))?,
        tenant_id: id(r, &c("tenant_id"))?,
        user_id: id(r, &c("user_id"))?,
        name: r.text(&c("name"))?,
        read_only: r.flag(&c("read_only"))?,
        created_at: time_ms(r.int(&c("created_at"))?)?,
        expires_at: time_ms(r.int(&c("expires_at"))?)?,
        last_used_at: r.opt_int(&c("last_used_at"))?.map(time_ms).transpose()?,
        revoked_at: r.opt_int(&c("revoked_at"))?.map(time_ms).transpose()?,
    })
}

/// A saved view from columns id, table_id, owner_id, name, spec, created_at, created_by.
pub fn saved_view(r: &impl Columns) -> StoreResult<daicho_domain::view::SavedView> {
    Ok(daicho_domain::view::SavedView {
        id: id(r, "id")?,
        table_id: id(r, "table_id")?,
        owner: opt_id(r, "owner_id")?,
        name: daicho_domain::table::Name::stored(&r.text("name")?).map_err(|_| bad("view name"))?,
        spec: serde_json::from_str(&r.text("spec")?).map_err(|_| bad("view spec"))?,
        created_at: time_ms(r.int("created_at")?)?,
        created_by: id(r, "created_by")?,
    })
}

/// A trash entry: columns id (table), trashed_name (table name), deleted_at, deleted_by, and
/// for a field field_id and field_name.
pub fn trash_item(r: &impl Columns, is_field: bool) -> StoreResult<crate::TrashItem> {
    Ok(crate::TrashItem {
        table: id(r, "id")?,
        table_name: r.opt_text("trashed_name")?.unwrap_or_default(),
        field: if is_field { Some((id(r, "field_id")?, r.opt_text("field_name")?.unwrap_or_default())) } else { None },
        deleted_at: time_ms(r.opt_int("deleted_at")?.unwrap_or(0))?,
        deleted_by: r.opt_text("deleted_by")?.unwrap_or_default(),
    })
}

/// What the trash purge takes: columns tenant_id, table_id and field_id (NULL for a table).
pub fn purge_target(
    r: &impl Columns,
) -> StoreResult<(TenantId, daicho_domain::TableId, Option<daicho_domain::FieldId>)> {
    Ok((id(r, "tenant_id")?, id(r, "table_id")?, opt_id(r, "field_id")?))
}

#[cfg(test)]
mod record_tests {
    use super::*;
    use daicho_domain::ids::{FieldId, TableId};
    use daicho_domain::table::{Cell, FieldDef, FieldKind, FieldRules, Name, TableDef};

    /// A row as a list of optional values, each a text, an integer or a flag.
    struct Row(Vec<Option<&'static str>>);

    impl ColumnsAt for Row {
        fn int_at(&self, at: usize) -> StoreResult<i64> {
            self.opt_int_at(at)?.ok_or_else(|| StoreError::Internal("null".into()))
        }
        fn text_at(&self, at: usize) -> StoreResult<String> {
            self.opt_text_at(at)?.ok_or_else(|| StoreError::Internal("null".into()))
        }
        fn opt_text_at(&self, at: usize) -> StoreResult<Option<String>> {
            Ok(self.0.get(at).copied().flatten().map(str::to_owned))
        }
        fn opt_int_at(&self, at: usize) -> StoreResult<Option<i64>> {
            self.0
                .get(at)
                .copied()
                .flatten()
                .map(|v| v.parse().map_err(|_| StoreError::Internal("not a number".into())))
                .transpose()
        }
        fn opt_flag_at(&self, at: usize) -> StoreResult<Option<bool>> {
            Ok(self.0.get(at).copied().flatten().map(|v| v == "true"))
        }
    }

    fn field(name: &str, kind: FieldKind, position: u32) -> FieldDef {
        let name = Name::parse(name).expect("a name");
        FieldDef { id: FieldId::new_random(), name, kind, rules: FieldRules::default(), position }
    }

    #[test]
    fn a_record_is_read_by_position_record_columns_first_then_the_fields_in_order() {
        let table = TableDef {
            id: TableId::new_random(),
            tenant_id: daicho_domain::TenantId::new_random(),
            name: Name::parse("t").expect("a name"),
            description: String::new(),
            fields: vec![
                field("name", FieldKind::Text, 0),
                field("qty", FieldKind::Integer, 1),
                field("done", FieldKind::Checkbox, 2),
            ],
            created_at: time::OffsetDateTime::UNIX_EPOCH,
        };
        let row = Row(vec![
            Some("7"),
            Some("3"),
            Some("1000"),
            Some("a"),
            Some("2000"),
            Some("b"),
            Some("x"),
            None,
            Some("true"),
        ]);
        let r = record(&row, &table).expect("a record");
        assert_eq!((r.id, r.version, r.created_by.as_str(), r.updated_by.as_str()), (7, 3, "a", "b"));
        assert_eq!(r.updated_at.unix_timestamp(), 2);
        let cells: Vec<Cell> = r.cells.iter().map(|(_, c)| c.clone()).collect();
        assert_eq!(cells, [Cell::Text("x".into()), Cell::Null, Cell::Bool(true)]);
        assert_eq!(r.cells[1].0, table.fields[1].id);
        // A record column that does not read names itself in the error.
        let bad = Row(vec![Some("7"), Some("three")]);
        let Err(StoreError::Internal(m)) = record(&bad, &table) else { panic!("an error") };
        assert!(m.starts_with("version:"), "{m}");
    }
}
