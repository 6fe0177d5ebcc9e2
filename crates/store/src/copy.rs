//! Copying an installation between stores (`daicho migrate-store`): the statements that read
//! the catalogue (the same SQL on every backend) and the mapping of their rows, shared by the
//! backends. Values are copied as stored, so a copy is exact.

use crate::rows::Columns;
use crate::{
    ApiTokenRow, GroupMemberRow, RecordHistoryRow, SavedViewRow, StoreResult, TableGrantRow, UserFieldRow,
    UserGroupRow, UserTableRow,
};

pub const SELECT_TABLES: &str = "SELECT id, tenant_id, name, description, created_at, deleted_at, deleted_by, \
     trashed_name FROM user_tables ORDER BY id";
pub const SELECT_FIELDS: &str = "SELECT id, table_id, position, name, kind, rules, created_at, deleted_at, deleted_by, \
     trashed_name FROM user_fields ORDER BY table_id, position";
pub const SELECT_GROUPS: &str = "SELECT id, tenant_id, name, description, created_at FROM user_groups ORDER BY id";
pub const SELECT_MEMBERS: &str = "SELECT group_id, user_id FROM group_members ORDER BY group_id, user_id";
pub const SELECT_GRANTS: &str =
    "SELECT group_id, table_id, rights, rows, fields FROM table_grants ORDER BY group_id, table_id";
pub const SELECT_VIEWS: &str =
    "SELECT id, tenant_id, table_id, owner_id, name, spec, created_at, created_by FROM saved_views ORDER BY id";
pub const SELECT_TOKENS: &str = "SELECT id, tenant_id, user_id, name, token_hash, read_only, created_at, expires_at, \
     last_used_at, revoked_at FROM api_tokens ORDER BY id";

/// A catalogue table without its `last_id`, which each backend reads from its own sequence.
pub fn table(r: &impl Columns) -> StoreResult<UserTableRow> {
    Ok(UserTableRow {
        id: r.text("id")?,
        tenant_id: r.text("tenant_id")?,
        name: r.text("name")?,
        description: r.text("description")?,
        created_at: r.int("created_at")?,
        last_id: 0,
        deleted_at: r.opt_int("deleted_at")?,
        deleted_by: r.opt_text("deleted_by")?,
        trashed_name: r.opt_text("trashed_name")?,
    })
}

pub fn field(r: &impl Columns) -> StoreResult<UserFieldRow> {
    Ok(UserFieldRow {
        id: r.text("id")?,
        table_id: r.text("table_id")?,
        position: r.int("position")?,
        name: r.text("name")?,
        kind: r.text("kind")?,
        rules: r.text("rules")?,
        created_at: r.int("created_at")?,
        deleted_at: r.opt_int("deleted_at")?,
        deleted_by: r.opt_text("deleted_by")?,
        trashed_name: r.opt_text("trashed_name")?,
    })
}

pub fn group(r: &impl Columns) -> StoreResult<UserGroupRow> {
    Ok(UserGroupRow {
        id: r.text("id")?,
        tenant_id: r.text("tenant_id")?,
        name: r.text("name")?,
        description: r.text("description")?,
        created_at: r.int("created_at")?,
    })
}

pub fn member(r: &impl Columns) -> StoreResult<GroupMemberRow> {
    Ok(GroupMemberRow { group_id: r.text("group_id")?, user_id: r.text("user_id")? })
}

pub fn grant(r: &impl Columns) -> StoreResult<TableGrantRow> {
    Ok(TableGrantRow {
        group_id: r.text("group_id")?,
        table_id: r.text("table_id")?,
        rights: r.int("rights")?,
        rows: r.text("rows")?,
        fields: r.text("fields")?,
    })
}

pub fn token(r: &impl Columns) -> StoreResult<ApiTokenRow> {
    Ok(ApiTokenRow {
        id: r.text("id")?,
        tenant_id: r.text("tenant_id")?,
        user_id: r.text("user_id")?,
        name: r.text("name")?,
        token_hash: r.text("token_hash")?,
        read_only: r.flag("read_only")?,
        created_at: r.int("created_at")?,
        expires_at: r.int("expires_at")?,
        last_used_at: r.opt_int("last_used_at")?,
        revoked_at: r.opt_int("revoked_at")?,
    })
}

pub fn history(r: &impl Columns) -> StoreResult<RecordHistoryRow> {
    Ok(RecordHistoryRow {
        id: r.int("id")?,
        table_id: r.text("table_id")?,
        record_id: r.int("record_id")?,
        version: r.int("version")?,
        at: r.int("at")?,
        actor_id: r.opt_text("actor_id")?,
        actor_login: r.text("actor_login")?,
        changes: r.text("changes")?,
    })
}

/// The table a stored field belongs to and its definition, parsed from the catalogue row.
pub fn field_def(f: &UserFieldRow) -> StoreResult<(daicho_domain::TableId, daicho_domain::table::FieldDef)> {
    let bad = |what: &str| crate::StoreError::Internal(format!("catalogue value does not parse: {what}"));
    Ok((
        f.table_id.parse().map_err(|_| bad("table id"))?,
        daicho_domain::table::FieldDef {
            id: f.id.parse().map_err(|_| bad("field id"))?,
            name: daicho_domain::table::Name::stored(f.trashed_name.as_deref().unwrap_or(&f.name))
                .map_err(|_| bad("field name"))?,
            kind: serde_json::from_str(&f.kind).map_err(|_| bad("field kind"))?,
            rules: serde_json::from_str(&f.rules).map_err(|_| bad("field rules"))?,
            position: u32::try_from(f.position).unwrap_or(0),
        },
    ))
}

pub fn view(r: &impl Columns) -> StoreResult<SavedViewRow> {
    Ok(SavedViewRow {
        id: r.text("id")?,
        tenant_id: r.text("tenant_id")?,
        table_id: r.text("table_id")?,
        owner_id: r.opt_text("owner_id")?,
        name: r.text("name")?,
        spec: r.text("spec")?,
        created_at: r.int("created_at")?,
        created_by: r.text("created_by")?,
    })
}
