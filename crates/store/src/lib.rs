//! The storage interface. Its methods are shaped by use cases, not tables, and each one takes the
//! capability that allows it (a [`Scope`] from the permission engine, the [`LoginFlow`], or the
//! operator's [`OperatorScope`]): the tenant a query is limited to always comes from that
//! capability. Every method that changes something takes the audit event that records it, and a
//! backend writes both in one transaction. Backends own their SQL dialect and migrations:
//! `daicho-store-sqlite` now, PostgreSQL later.

pub mod copy;
pub mod guard;
pub mod rows;
pub mod ut;
pub mod warm;

use async_trait::async_trait;
use daicho_domain::GroupId;
use daicho_domain::access::{Create, Delete, Design, Edit, Group, Import, TableGrant, View};
use daicho_domain::audit::ChainReport;
use daicho_domain::table::{Cell, FieldDef, Name, RecordQuery, TableDef};
use daicho_domain::user::UserProfile;
use daicho_domain::view::SavedView;
use daicho_domain::{
    AuditEvent, AuditFilter, FieldErrors, FieldId, LanguagePref, LoginFlow, LoginId, ManageDesign, ManageGroups,
    ManagePolicy, ManageUsers, NewAuditEvent, OperatorScope, OwnAccount, ReadAudit, Scope, SecurityPolicy, SessionId,
    SystemScope, TableId, TableScope, Tenant, TenantCode, TenantId, TenantName, TokenId, UseTables, User, UserId,
    UserStatus, ViewId,
};
use time::OffsetDateTime;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// The capability does not cover this row or field.
    #[error("forbidden")]
    Forbidden,
    /// A uniqueness rule was violated; the field errors name the field.
    #[error("conflict")]
    Conflict(FieldErrors),
    /// A value the database itself refuses (PostgreSQL: NUL in text, an index entry over its
    /// size limit) that the checks before it did not catch: the request's fault, not the store's.
    #[error("invalid")]
    Invalid(FieldErrors),
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("storage error: {0}")]
    Internal(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// One part of an import (see [`Store::import_records`]).
#[derive(Debug)]
pub enum ImportPart {
    /// New records.
    Insert(Vec<Vec<(FieldId, Cell)>>),
    /// Existing records, overwritten in the given fields, within the import's scope and the
    /// edit right's (rows and fields both cover, checked on the record inside the transaction).
    /// `expects`, one for each row: what the row expects of its record as stored, read inside
    /// the import's transaction (see [`guard::check_expected`]).
    Update { edit: TableScope<Edit>, rows: Vec<(i64, Vec<(FieldId, Cell)>)>, expects: Vec<RowExpects> },
    /// The staged file the import is read from (the import page's), taken in the import's
    /// transaction before its rows are written: a second import of the same file (the form
    /// posted twice) finds it gone and writes nothing.
    Staged(String),
    /// Every part was sent: commit, with these details in the import's audit event. With
    /// `unchanged` (the rows the caller found equal to their records and did not send), the
    /// details are the row counts as written (inserted, updated, unchanged: the rows sent that
    /// the store found no change in among them), then `details` when not empty.
    Done { details: String, unchanged: Option<u64> },
}

/// What an import's update row expects of its record as stored, read inside the import's
/// transaction (see [`guard::check_expected`]).
#[derive(Debug, Clone, Default)]
pub struct RowExpects {
    /// The time the file gives for the record's last update (ms, and the precision it keeps in
    /// ms): the row is refused when the record was updated later.
    pub since: Option<(i64, i64)>,
    /// The key field and value the row found its record by: the row is refused when the record
    /// no longer holds it (its key changed, or it went to another record, after it was found).
    pub key: Option<(FieldId, Cell)>,
}

/// One grant to set (see [`Store::set_table_grants`]).
#[derive(Debug, Clone)]
pub struct GrantChange {
    pub grant: TableGrant,
    /// The grant as its editor saw it (`Some(None)`: none stored), compared whole (rights,
    /// records and field rules) with the stored one inside the transaction; `None` sets it
    /// whatever it is now.
    pub expected: Option<Option<TableGrant>>,
    pub event: NewAuditEvent,
}

/// The refusal of a change to grants made meanwhile by someone else.
pub fn grants_changed_meanwhile() -> StoreError {
    StoreError::Conflict(FieldErrors::single("matrix", "changed_meanwhile"))
}

/// Makes the audit event of one record of a bulk operation, from the record itself.
pub type RecordEvent<'a> = dyn Fn(&Record) -> NewAuditEvent + Send + Sync + 'a;

/// The parts of one import, in order.
pub type ImportParts = tokio::sync::mpsc::Receiver<ImportPart>;

/// The most CSV files one user may have waiting for their columns to be mapped; a new one
/// replaces the oldest.
pub const STAGED_PER_USER: i64 = 3;

/// The members a group's form sets (see `Store::set_group_members`): `members` as sent, or,
/// with `shown` (the members the form showed), the group's `current` members with the form's
/// changes made on them.
pub fn members_after(current: &[UserId], members: Vec<UserId>, shown: Option<&[UserId]>) -> Vec<UserId> {
    let Some(shown) = shown else { return members };
    let mut out: Vec<UserId> = current.iter().filter(|u| !shown.contains(u) || members.contains(u)).copied().collect();
    for u in members {
        if !shown.contains(&u) && !out.contains(&u) {
            out.push(u);
        }
    }
    out
}

/// The most API tokens in use (neither revoked nor expired) one user may hold: each is a way
/// in, and a leaked script making them without end would fill the table.
pub const TOKENS_PER_USER: i64 = 20;

/// The refusal of a new API token beyond [`TOKENS_PER_USER`] (409 on `name`).
pub fn too_many_tokens() -> StoreError {
    StoreError::Conflict(FieldErrors::single("name", "too_many_tokens"))
}

/// The refusal of a change to a user (role, status, deletion) that would leave the tenant
/// without an active administrator: two administrators demoting or disabling each other at
/// once each passed the "not yourself" check. 409 on `user`.
pub fn last_admin() -> StoreError {
    StoreError::Conflict(FieldErrors::single("user", "last_admin"))
}

/// A write of records refused because the table's design changed after the request read it
/// (409 on `values`): its values were checked against the old one. Nothing was written.
pub fn design_changed() -> StoreError {
    StoreError::Conflict(daicho_domain::FieldErrors::single("values", "design_changed"))
}

/// The design check of a write of records (`check_design` in each store), from the catalogue
/// rows of the table joined to its live fields (id, kind, rules as stored; one row of NULLs for
/// a table without fields; no row when the table is gone or in the trash): Ok while they are
/// those of `table`, the design its values were checked against, else 409 `design_changed`.
/// Names and places may differ (they do not change what a value may be).
pub fn design_stands(table: &TableDef, rows: &[(Option<String>, Option<String>, Option<String>)]) -> StoreResult<()> {
    let stored: Vec<(&str, &str, &str)> =
        rows.iter().filter_map(|(a, b, c)| Some((a.as_deref()?, b.as_deref()?, c.as_deref()?))).collect();
    let same = !rows.is_empty()
        && stored.len() == table.fields.len()
        && stored.iter().all(|(id, kind, rules)| {
            let (Ok(id), Ok(kind), Ok(rules)) = (
                id.parse::<daicho_domain::FieldId>(),
                serde_json::from_str::<daicho_domain::table::FieldKind>(kind),
                serde_json::from_str::<daicho_domain::table::FieldRules>(rules),
            ) else {
                return false;
            };
            table.fields.iter().any(|f| f.id == id && f.kind == kind && f.rules == rules)
        });
    if same { Ok(()) } else { Err(design_changed()) }
}

/// A limit counted in the store's transaction (500 tables, 200 fields, the trash included):
/// `what` `too_many` once `count` has reached `max`.
pub fn room_left(count: i64, max: usize, what: &'static str) -> StoreResult<()> {
    if usize::try_from(count).unwrap_or(usize::MAX) >= max {
        Err(StoreError::Conflict(daicho_domain::FieldErrors::single(what, "too_many")))
    } else {
        Ok(())
    }
}

/// The error of an import whose parts ended without [`ImportPart::Done`].
pub fn import_abandoned() -> StoreError {
    StoreError::Internal("the import was abandoned before its end; nothing was written".into())
}

/// What every part of one import is written with: its scope, table, actor (as stored in the
/// records' created/updated by), time and audit event (whose actor the history records).
pub struct ImportWrite<'a> {
    pub scope: &'a TableScope<Import>,
    pub table: &'a TableDef,
    pub who: &'a str,
    pub at: OffsetDateTime,
    pub event: &'a NewAuditEvent,
}

/// Where a store writes an import's parts: its open transaction (see [`write_parts`]).
#[async_trait]
pub trait ImportSink: Send {
    /// New records, in one or more multi-row statements.
    async fn insert(&mut self, w: &ImportWrite<'_>, rows: &[Vec<(FieldId, Cell)>]) -> StoreResult<()>;
    /// Existing records (id, cells) overwritten in the given fields, with their history and
    /// search text, if `scope` (the import's within the edit right's) covers each and lets it
    /// write those fields on it, and each is as its row expects (`expects`); all or none (the
    /// import's transaction). Returns how many records changed (a row that holds what its
    /// record holds is not written).
    async fn update(
        &mut self,
        w: &ImportWrite<'_>,
        scope: &TableScope<Import>,
        rows: &[(i64, Vec<(FieldId, Cell)>)],
        expects: &[RowExpects],
    ) -> StoreResult<u64>;
    /// Deletes the staged file `id` of the scope's user and table; `false` when there is none
    /// (imported already, or expired).
    async fn take_staged(&mut self, scope: &TableScope<Import>, id: &str) -> StoreResult<bool>;
}

/// Writes an import's parts into `sink` as they arrive, each checked against the scope, until
/// [`ImportPart::Done`]; returns (inserted, updated, the event's details). When the parts end
/// without it, an error: the store's transaction is then dropped, and rolled back.
pub async fn write_parts(
    w: &ImportWrite<'_>,
    first: ImportPart,
    parts: &mut ImportParts,
    sink: &mut dyn ImportSink,
) -> StoreResult<(u64, u64, String)> {
    let (mut inserted, mut updated, mut sent) = (0u64, 0u64, 0u64);
    let defaults = guard::defaults(w.table);
    let mut next = Some(first);
    loop {
        let part = match next.take() {
            Some(p) => p,
            None => parts.recv().await.ok_or_else(import_abandoned)?,
        };
        match part {
            ImportPart::Insert(mut rows) => {
                for cells in &mut rows {
                    guard::check_writes(w.scope, cells)?;
                    let given = guard::set_by_writer(&defaults, cells);
                    guard::fill_defaults(&defaults, cells);
                    guard::check_new_covered(w.scope, &given, cells)?;
                }
                sink.insert(w, &rows).await?;
                inserted += rows.len() as u64;
            }
            ImportPart::Update { edit, rows, expects } => {
                guard::check_table(&edit, w.table)?;
                let both = w.scope.within(&edit);
                for (_, cells) in &rows {
                    guard::check_writes(&both, cells)?;
                }
                updated += sink.update(w, &both, &rows, &expects).await?;
                sent += rows.len() as u64;
            }
            ImportPart::Staged(id) => {
                if !sink.take_staged(w.scope, &id).await? {
                    return Err(StoreError::Conflict(FieldErrors::single("file", "staged_taken")));
                }
            }
            ImportPart::Done { details, unchanged: None } => return Ok((inserted, updated, details)),
            // The counts as written: a row the store found no change in (its values those
            // stored, a field view hides among them) is not counted as updated.
            ImportPart::Done { details, unchanged: Some(n) } => {
                let mut counted = format!("{inserted} rows inserted, {updated} updated");
                let unchanged = n + sent.saturating_sub(updated);
                if unchanged > 0 {
                    counted.push_str(&format!(", {unchanged} unchanged"));
                }
                if !details.is_empty() {
                    counted.push_str("; ");
                    counted.push_str(&details);
                }
                return Ok((inserted, updated, counted));
            }
        }
    }
}

/// An import of rows already in memory (the demo data, tests): one part and its end.
pub async fn import_all(
    store: &dyn Store,
    scope: &TableScope<Import>,
    table: &TableDef,
    inserts: Vec<Vec<(FieldId, Cell)>>,
    at: OffsetDateTime,
    event: NewAuditEvent,
) -> StoreResult<(u64, u64)> {
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let details = event.details.clone();
    // Both fit in the channel: neither send waits.
    for part in [ImportPart::Insert(inserts), ImportPart::Done { details, unchanged: None }] {
        tx.try_send(part).map_err(|_| import_abandoned())?;
    }
    drop(tx);
    store.import_records(scope, table, rx, at, event).await
}

/// A personal API token (its plain value is never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: TokenId,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub name: String,
    pub read_only: bool,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone)]
pub struct NewApiToken {
    pub id: TokenId,
    pub name: String,
    pub token_hash: String,
    pub read_only: bool,
    pub at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// A token with its user and tenant, as loaded on every token-authenticated request.
#[derive(Debug, Clone)]
pub struct TokenContext {
    pub token: ApiToken,
    pub user: User,
    pub tenant: Tenant,
    /// The tenant's design version, read with the session: the database raises it with every
    /// change to the tenant's tables or fields, so a design read at this version or later is
    /// current (see the web crate's design cache).
    pub design_version: i64,
}

/// The most entries of a record's history read at once (the newest).
pub const HISTORY_MAX: usize = 500;

/// The most bytes of changes a record's history gives at once, counted on what the reader
/// sees (the newest entries that fit, at least one): 500 entries of long texts saved again and
/// again would otherwise be read, held and sent whole (a gigabyte for a record of fifty
/// 20,000-character fields). Counted on the visible changes only, so that where the history is
/// cut tells nothing of fields hidden from the reader (but past [`HISTORY_READ_BYTES`]).
pub const HISTORY_BYTES: usize = 4 * 1024 * 1024;

/// The most bytes of stored changes a history reads, hidden ones included, however few it
/// gives (entries of hidden fields only are read and left out): the bound of the work.
pub const HISTORY_READ_BYTES: usize = 64 * 1024 * 1024;

/// A record's history as a store reads it, row by row from a stream of the newest
/// [`HISTORY_MAX`] + 1 entries, newest first: [`HistoryTaker::take`] each row while not `done`;
/// a row left once it is done means older entries were left out (`older_left`).
#[derive(Debug, Default)]
pub struct HistoryTaker {
    pub out: RecordHistory,
    pub done: bool,
    shown: usize,
    read_bytes: usize,
}

impl HistoryTaker {
    /// Takes one stored entry (the next older one) as `scope` sees it.
    #[allow(clippy::too_many_arguments)]
    pub fn take<R: daicho_domain::access::Right>(
        &mut self,
        scope: &TableScope<R>,
        table: &TableDef,
        version: i64,
        at_ms: i64,
        actor_id: Option<String>,
        actor_login: String,
        stored: &str,
    ) -> StoreResult<()> {
        self.read_bytes = self.read_bytes.saturating_add(stored.len());
        let changes = guard::visible_changes(scope, table, stored)?;
        let size: usize = changes.iter().map(|(_, b, a)| cell_bytes(b) + cell_bytes(a)).sum();
        if !changes.is_empty() && !self.out.entries.is_empty() && self.shown.saturating_add(size) > HISTORY_BYTES {
            // (This entry is older than those given, and left out.)
            self.out.older_left = true;
            self.done = true;
            return Ok(());
        }
        self.out.read += 1;
        self.out.oldest_read = Some(version);
        if !changes.is_empty() {
            self.shown = self.shown.saturating_add(size);
            self.out.entries.push(HistoryEntry { version, at: rows::time_ms(at_ms)?, actor_id, actor_login, changes });
        }
        if self.out.read >= HISTORY_MAX || self.read_bytes > HISTORY_READ_BYTES {
            self.done = true;
        }
        Ok(())
    }

    /// A row read after it was done: an older entry left out.
    pub fn left(&mut self) {
        self.out.older_left = true;
    }
}

/// About how many bytes a value takes in a history's answer.
fn cell_bytes(c: &daicho_domain::table::Cell) -> usize {
    match c {
        daicho_domain::table::Cell::Text(s) => s.len(),
        _ => 8,
    }
}

/// One change to a record, with the fields the reader may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub version: i64,
    pub at: OffsetDateTime,
    /// Who made the change: their id (none in entries written before it was kept) and their
    /// login ID at the time (a login ID may later pass to someone else; the id does not).
    pub actor_id: Option<String>,
    pub actor_login: String,
    pub changes: Vec<(FieldId, Cell, Cell)>,
}

/// A record's history as read for a scope: the entries it sees, and how far back the read
/// went, entries left out as changing only hidden fields included (so that a history whose
/// newest entries are all hidden is still known to be cut).
#[derive(Debug, Clone, Default)]
pub struct RecordHistory {
    pub entries: Vec<HistoryEntry>,
    /// How many entries were read (at most [`HISTORY_MAX`]).
    pub read: usize,
    /// Whether older entries exist than those read (left out for their number, their size
    /// or the bound of the work): the history the reader is given is not whole.
    pub older_left: bool,
    /// The version of the oldest entry read.
    pub oldest_read: Option<i64>,
}

/// A user about to be created.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: UserId,
    pub login_id: LoginId,
    pub profile: UserProfile,
    pub password_hash: String,
    pub must_change_password: bool,
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub struct NewTenant {
    pub id: TenantId,
    pub code: TenantCode,
    pub name: TenantName,
    pub policy: SecurityPolicy,
    pub at: OffsetDateTime,
}

/// What the login path needs to check a password.
#[derive(Debug, Clone)]
pub struct Credential {
    pub user: User,
    pub password_hash: String,
}

#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: SessionId,
    pub token_hash: String,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub at: OffsetDateTime,
    pub csrf_token: String,
    pub ip: String,
    pub user_agent: String,
    /// The password hash the sign-in verified against (see `Store::start_session`).
    pub verified_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    pub csrf_token: String,
    pub ip: String,
    pub user_agent: String,
}

/// A session with the user and tenant it belongs to, as loaded on every request.
#[derive(Debug, Clone)]
pub struct SessionContext {
    pub session: Session,
    pub user: User,
    pub tenant: Tenant,
    /// The tenant's design version, read with the session: the database raises it with every
    /// change to the tenant's tables or fields, so a design read at this version or later is
    /// current (see the web crate's design cache).
    pub design_version: i64,
}

/// A failed password check against an existing user.
#[derive(Debug, Clone)]
pub struct LoginFailure {
    pub tenant_id: TenantId,
    pub user_id: UserId,
    /// Failures at or beyond this count lock the account.
    pub threshold: u32,
    pub lock_until: OffsetDateTime,
    pub failure_event: NewAuditEvent,
    /// Written only if this failure locks the account.
    pub lockout_event: NewAuditEvent,
}

/// Whole rows, for copying an installation between stores (`daicho migrate-store`). Values are
/// as stored (times in Unix milliseconds, the policy as JSON), so a copy is exact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRow {
    pub id: String,
    pub code: String,
    pub name: String,
    pub policy: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub id: String,
    pub tenant_id: String,
    pub login_id: String,
    pub display_name: String,
    pub email: String,
    pub role: String,
    pub status: String,
    pub language: String,
    pub password_hash: String,
    pub must_change_password: bool,
    pub password_changed_at: i64,
    pub failed_logins: i64,
    pub locked_until: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordHistoryRow {
    pub user_id: String,
    pub password_hash: String,
    pub replaced_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id: String,
    pub token_hash: String,
    pub tenant_id: String,
    pub user_id: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub csrf_token: String,
    pub ip: String,
    pub user_agent: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    pub name: String,
    pub next_due_at: i64,
    pub last_run_at: Option<i64>,
    pub last_node: Option<String>,
}

/// Everything but the operation history, which is copied in batches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BaseDump {
    pub tenants: Vec<TenantRow>,
    pub users: Vec<UserRow>,
    pub password_history: Vec<PasswordHistoryRow>,
    pub sessions: Vec<SessionRow>,
    pub jobs: Vec<JobRow>,
}

/// A user table in the catalogue; `last_id` is the highest record id ever handed out (so that a
/// copy never reuses the id of a deleted record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserTableRow {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub description: String,
    pub created_at: i64,
    pub last_id: i64,
    pub deleted_at: Option<i64>,
    pub deleted_by: Option<String>,
    pub trashed_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserFieldRow {
    pub id: String,
    pub table_id: String,
    pub position: i64,
    pub name: String,
    /// FieldKind as JSON.
    pub kind: String,
    /// FieldRules as JSON.
    pub rules: String,
    pub created_at: i64,
    pub deleted_at: Option<i64>,
    pub deleted_by: Option<String>,
    pub trashed_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserGroupRow {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub description: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMemberRow {
    pub group_id: String,
    pub user_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableGrantRow {
    pub group_id: String,
    pub table_id: String,
    pub rights: i64,
    pub rows: String,
    pub fields: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenRow {
    pub id: String,
    pub tenant_id: String,
    pub user_id: String,
    pub name: String,
    pub token_hash: String,
    pub read_only: bool,
    pub created_at: i64,
    pub expires_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// The catalogue of user tables and everything that hangs off it but the records and their
/// history, which are copied in batches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatalogueDump {
    pub tables: Vec<UserTableRow>,
    pub fields: Vec<UserFieldRow>,
    pub groups: Vec<UserGroupRow>,
    pub members: Vec<GroupMemberRow>,
    pub grants: Vec<TableGrantRow>,
    pub tokens: Vec<ApiTokenRow>,
    pub views: Vec<SavedViewRow>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedViewRow {
    pub id: String,
    pub tenant_id: String,
    pub table_id: String,
    pub owner_id: Option<String>,
    pub name: String,
    pub spec: String,
    pub created_at: i64,
    pub created_by: String,
}

/// One entry of a record's change history, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHistoryRow {
    pub id: i64,
    pub table_id: String,
    pub record_id: i64,
    pub version: i64,
    pub at: i64,
    pub actor_id: Option<String>,
    pub actor_login: String,
    pub changes: String,
}

/// What a change of type found: how many records were read and, for the first
/// [`RETYPE_REPORT_MAX`] values that do not convert, the record id, the value as it was and why;
/// and those that convert but would then say something else (`altered`: "00123" made 123),
/// with the value before and after, which the change applies only when told to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetypeReport {
    pub records: u64,
    pub failed: u64,
    pub failures: Vec<(i64, String, &'static str)>,
    pub altered: u64,
    pub alterations: Vec<(i64, String, String)>,
    pub applied: bool,
}

pub const RETYPE_REPORT_MAX: usize = 100;

/// How a store keeps its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// Connections the pool opens at most.
    pub max_connections: u32,
    /// A pooled connection is checked (pinged) before use only when it has been idle at least
    /// this long; zero checks before every use.
    ///
    /// sqlx pings every connection when it goes back to its pool, and by default once more when
    /// it is taken out: each ping is a round trip to SQLite's worker thread or to the PostgreSQL
    /// backend, so a statement cost three round trips instead of one. The ping on return has
    /// just proved a connection that is taken again soon after. One idle for longer may have been
    /// closed on the other side (a database restart, a proxy's idle timeout), so it is checked
    /// again and a dead one is replaced before a request sees it. Within the window, a
    /// connection the database ended costs one request a 503, and is then replaced.
    pub recheck_idle_after: std::time::Duration,
}

impl PoolSettings {
    /// The default `recheck_idle_after`.
    pub const RECHECK_IDLE_AFTER: std::time::Duration = std::time::Duration::from_secs(5);

    /// `max_connections` connections, with the default recheck window.
    pub fn new(max_connections: u32) -> Self {
        Self { max_connections, recheck_idle_after: Self::RECHECK_IDLE_AFTER }
    }
}

/// A table or field in the trash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrashItem {
    pub table: TableId,
    /// The table's name (its name before deletion, when the table itself is trashed).
    pub table_name: String,
    /// Set for a trashed field of a table.
    pub field: Option<(FieldId, String)>,
    pub deleted_at: OffsetDateTime,
    /// The user id of whoever deleted it.
    pub deleted_by: String,
}

/// A user of the tenant as other users see them: in user fields, a record's history and the
/// members of a group. A disabled user stays in the directory (records and history still name
/// them) but is no longer offered as a choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub id: UserId,
    pub login: LoginId,
    pub name: String,
    pub active: bool,
}

impl Person {
    /// How a page names them: "display name (login ID)".
    pub fn label(&self) -> String {
        format!("{} ({})", self.name, self.login.as_str())
    }
}

/// A record of a user table: its id, version (for optimistic concurrency) and cells, in the
/// order of the table's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub id: i64,
    pub version: i64,
    pub cells: Vec<(daicho_domain::FieldId, daicho_domain::table::Cell)>,
    pub created_at: OffsetDateTime,
    pub created_by: String,
    pub updated_at: OffsetDateTime,
    pub updated_by: String,
}

impl Record {
    /// The value of a field, or of a system field (created at/by, updated at/by), as stored.
    pub fn cell(&self, id: daicho_domain::FieldId) -> Option<daicho_domain::table::Cell> {
        use daicho_domain::table::Cell;
        match daicho_domain::table::system_column(id) {
            Some("created_at") => Some(Cell::Int(daicho_domain::audit::unix_ms(self.created_at))),
            Some("updated_at") => Some(Cell::Int(daicho_domain::audit::unix_ms(self.updated_at))),
            Some("created_by") => Some(Cell::Text(self.created_by.clone())),
            Some(_) => Some(Cell::Text(self.updated_by.clone())),
            None => self.cells.iter().find(|(f, _)| *f == id).map(|(_, c)| c.clone()),
        }
    }

    /// Where this record stands in the query's order: its first sort value (empty when the
    /// list is sorted by id) and id, and its values of the further sort keys. A page that ends
    /// with this record is continued from here (a keyset cursor).
    pub fn position(&self, query: &RecordQuery) -> ((Cell, i64), Vec<Cell>) {
        let value = |f: Option<FieldId>| f.and_then(|f| self.cell(f)).unwrap_or(Cell::Null);
        ((value(query.sort), self.id), query.then.iter().map(|(f, _)| value(Some(*f))).collect())
    }

    /// Moves the query on to the page after this record.
    pub fn resume(&self, query: &mut RecordQuery) {
        let (after, then) = self.position(query);
        query.after = Some(after);
        query.after_then = then;
    }
}

/// One index range of a list, in the order the list reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListPart {
    /// Records by id (no sort field).
    ById,
    /// Records with a value in the sort field, by (value, further keys, id).
    Values(FieldId),
    /// Records without one, by (further keys, id): empty values sort last.
    Empty(FieldId),
}

/// The parts a page of the query reads. A sorted list reads records with a value first, then
/// the empty ones, as two index range scans on (field, id): one ORDER BY that puts NULLs last
/// would be an expression no index serves (every matching row read and sorted: 140-330 ms at
/// a million rows). A page that continues after an empty value reads only the empty ones.
/// NotFound when a sort key is not a field of the table.
pub fn list_parts(table: &TableDef, query: &RecordQuery) -> StoreResult<Vec<ListPart>> {
    if query.sort_keys().iter().any(|(f, _)| table.field(*f).is_none()) {
        return Err(StoreError::NotFound);
    }
    Ok(match (query.sort, &query.after) {
        (None, _) => vec![ListPart::ById],
        (Some(f), Some((Cell::Null, _))) => vec![ListPart::Empty(f)],
        (Some(f), _) => vec![ListPart::Values(f), ListPart::Empty(f)],
    })
}

/// The tables a store holds, for counting before and after a copy.
pub const TABLES: &[&str] = &[
    "tenants",
    "users",
    "password_history",
    "sessions",
    "audit_events",
    "jobs",
    "user_tables",
    "user_fields",
    "user_groups",
    "group_members",
    "table_grants",
    "api_tokens",
    "record_history",
    "saved_views",
];

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Answers when the database does (health checks).
    async fn ping(&self) -> StoreResult<()>;

    // --- operator (local command line only) ---
    async fn create_tenant(
        &self,
        op: &OperatorScope,
        tenant: NewTenant,
        admin: NewUser,
        events: Vec<NewAuditEvent>,
    ) -> StoreResult<(Tenant, User)>;
    async fn operator_create_user(
        &self,
        op: &OperatorScope,
        tenant: TenantId,
        user: NewUser,
        event: NewAuditEvent,
    ) -> StoreResult<User>;
    /// Sets a user's password from the command line (demo accounts, operator resets).
    async fn operator_set_password(
        &self,
        op: &OperatorScope,
        tenant: TenantId,
        user: UserId,
        hash: String,
        must_change: bool,
        at: OffsetDateTime,
        event: NewAuditEvent,
    ) -> StoreResult<()>;
    async fn list_tenants(&self, op: &OperatorScope) -> StoreResult<Vec<Tenant>>;
    /// Checks every chain (one per tenant, and the operator's own).
    async fn verify_all_audit_chains(&self, op: &OperatorScope) -> StoreResult<Vec<(Option<TenantId>, ChainReport)>>;

    // --- user tables: catalogue and records (each table is a real SQL table) ---
    /// Creates the table in the catalogue and as an SQL table, in one transaction.
    async fn create_table(
        &self,
        scope: &Scope<ManageDesign>,
        id: TableId,
        name: Name,
        description: String,
        at: OffsetDateTime,
        event: NewAuditEvent,
    ) -> StoreResult<TableDef>;
    /// Every table of the tenant; which of them a user may use is the engine's decision
    /// ([`daicho_domain::Principal::table_access`]) from [`Store::my_grants`].
    async fn list_tables(&self, scope: &Scope<UseTables>) -> StoreResult<Vec<TableDef>>;
    async fn table(&self, scope: &Scope<UseTables>, id: TableId) -> StoreResult<TableDef>;
    /// The table grants of the groups the principal belongs to.
    async fn my_grants(&self, scope: &Scope<UseTables>) -> StoreResult<Vec<TableGrant>>;
    /// The tenant's users as others may see them (for user fields, history and groups), by
    /// login ID, disabled ones included (records still name them).
    async fn directory(&self, scope: &Scope<UseTables>) -> StoreResult<Vec<Person>>;
    /// Adds a typed column (and a unique index when the rule asks for one).
    async fn add_field(
        &self,
        scope: &TableScope<Design>,
        table: TableId,
        field: FieldDef,
        event: NewAuditEvent,
    ) -> StoreResult<TableDef>;
    /// Inserts a record; the event's target gets the new record's id appended.
    async fn insert_record(
        &self,
        scope: &TableScope<Create>,
        table: &TableDef,
        cells: Vec<(FieldId, Cell)>,
        at: OffsetDateTime,
        event: NewAuditEvent,
    ) -> StoreResult<Record>;
    /// A record the scope covers, without the fields it hides (NotFound otherwise).
    async fn get_record(&self, scope: &TableScope<View>, table: &TableDef, id: i64) -> StoreResult<Record>;
    /// Updates the given cells if the record is still at `expected_version`; otherwise Conflict
    /// with the code `stale`.
    #[allow(clippy::too_many_arguments)]
    async fn update_record(
        &self,
        scope: &TableScope<Edit>,
        table: &TableDef,
        id: i64,
        expected_version: i64,
        cells: Vec<(FieldId, Cell)>,
        at: OffsetDateTime,
        event: NewAuditEvent,
    ) -> StoreResult<Record>;
    /// Deletes a record, if it is still at `expected_version` when one is given (Conflict with
    /// the code `stale` otherwise). `event` makes the audit event from the record as the
    /// transaction read it: every value, those the deleter may not see included (the record
    /// and its history are gone after this; the operation history is the administrators').
    async fn delete_record(
        &self,
        scope: &TableScope<Delete>,
        table: &TableDef,
        id: i64,
        expected_version: Option<i64>,
        event: &RecordEvent<'_>,
    ) -> StoreResult<()>;
    /// Deletes several records in one transaction, all or none (NotFound or Forbidden if any is
    /// missing or not covered). Returns how many. `each`, when given, makes an event for every
    /// record deleted, from the record as the transaction read it (its values, which its
    /// history no longer holds), recorded with `event`. With `unchanged_since` (unix ms), a
    /// record updated after it is refused (409 `changed_since_shown`: the page the user chose
    /// them on showed them as they were then), checked inside the transaction.
    async fn delete_records(
        &self,
        scope: &TableScope<Delete>,
        table: &TableDef,
        ids: &[i64],
        unchanged_since: Option<i64>,
        event: NewAuditEvent,
        each: Option<&RecordEvent<'_>>,
    ) -> StoreResult<u64>;
    /// Sets the same cells on several records in one transaction, all or none, each change in
    /// the record's history. Returns how many changed (a record that held the values already
    /// is left as it is). `unchanged_since` as for `delete_records`.
    #[allow(clippy::too_many_arguments)]
    async fn update_records(
        &self,
        scope: &TableScope<Edit>,
        table: &TableDef,
        ids: &[i64],
        cells: Vec<(FieldId, Cell)>,
        at: OffsetDateTime,
        unchanged_since: Option<i64>,
        event: NewAuditEvent,
    ) -> StoreResult<u64>;
    /// Writes an import in one transaction, all rows or none, part by part as the caller sends
    /// them (it validates the rest of the file meanwhile): new records, and existing ones (found
    /// by the caller through a unique key field) overwritten in the given fields. Commits on
    /// [`ImportPart::Done`], recorded by `event` with the details given there. When the parts
    /// end without it (the caller found the file invalid) or a part fails, nothing is written
    /// and an error returned. Nothing is locked before the first part arrives.
    /// Returns (inserted, updated).
    async fn import_records(
        &self,
        scope: &TableScope<Import>,
        table: &TableDef,
        parts: ImportParts,
        at: OffsetDateTime,
        event: NewAuditEvent,
    ) -> StoreResult<(u64, u64)>;
    /// Keeps an uploaded import file between the import page's two steps (upload, then the
    /// mapping of its columns to fields), under the caller's random `id`, for the scope's user
    /// and table only; `event` is recorded with it (the file holds the tenant's data).
    async fn stage_import(
        &self,
        scope: &TableScope<Import>,
        id: &str,
        file: &[u8],
        at: OffsetDateTime,
        event: NewAuditEvent,
    ) -> StoreResult<()>;
    /// The file this user staged for this table under `id` at or after `since`; `NotFound`
    /// for anyone else's, another table's, an older or an unknown one.
    async fn staged_import(&self, scope: &TableScope<Import>, id: &str, since: OffsetDateTime) -> StoreResult<Vec<u8>>;
    /// Forgets a staged file (after its import).
    async fn drop_staged_import(&self, scope: &TableScope<Import>, id: &str) -> StoreResult<()>;
    /// How many records the query selects (its filters, keyword and the scope's rows), counted up
    /// to `cap`; `true` when there are more than `cap`.
    async fn count_records(
        &self,
        scope: &TableScope<View>,
        table: &TableDef,
        query: &RecordQuery,
        cap: u64,
    ) -> StoreResult<(u64, bool)>;
    /// A record's changes, newest first, limited to the fields the scope sees (entries that
    /// changed only hidden fields are left out), as far back as [`HistoryTaker`] reads: at most
    /// [`HISTORY_MAX`] entries, [`HISTORY_BYTES`] of what the scope sees, [`HISTORY_READ_BYTES`]
    /// read; `older_left` says whether older entries were left out.
    /// NotFound unless the scope covers the record.
    async fn record_history(&self, scope: &TableScope<View>, table: &TableDef, id: i64) -> StoreResult<RecordHistory>;
    /// Records matching the query's filters and keyword, in its order, keyset-paged.
    async fn list_records(
        &self,
        scope: &TableScope<View>,
        table: &TableDef,
        query: &RecordQuery,
    ) -> StoreResult<Vec<Record>>;
    /// Every record the query selects from its position on, in its order, as pages of
    /// `query.limit` records sent to `pages` (a bounded channel: a slow receiver holds the scan
    /// back). Stops early, without error, when the receiver is dropped. What a page holds is
    /// exactly what `list_records` returns for it; a store may read the next page while the
    /// receiver is still busy with this one.
    async fn scan_records(
        &self,
        scope: &TableScope<View>,
        table: &TableDef,
        mut query: RecordQuery,
        pages: tokio::sync::mpsc::Sender<Vec<Record>>,
    ) -> StoreResult<()> {
        loop {
            let page = self.list_records(scope, table, &query).await?;
            let full = page.len() >= query.limit as usize;
            let Some(last) = page.last() else { return Ok(()) };
            last.resume(&mut query);
            if pages.send(page).await.is_err() || !full {
                return Ok(());
            }
        }
    }

    // --- groups and the permission matrix ---
    /// Every group of the tenant with its members and table grants.
    async fn list_groups(&self, scope: &Scope<ManageGroups>) -> StoreResult<Vec<Group>>;
    async fn create_group(
        &self,
        scope: &Scope<ManageGroups>,
        id: GroupId,
        name: Name,
        description: String,
        at: OffsetDateTime,
        event: NewAuditEvent,
    ) -> StoreResult<()>;
    async fn update_group(
        &self,
        scope: &Scope<ManageGroups>,
        id: GroupId,
        name: Name,
        description: String,
        event: NewAuditEvent,
    ) -> StoreResult<()>;
    async fn delete_group(&self, scope: &Scope<ManageGroups>, id: GroupId, event: NewAuditEvent) -> StoreResult<()>;
    /// Replaces the group's members (users of the tenant only; others are NotFound). With
    /// `shown`, the members the editor's form showed, only the editor's changes are made (those
    /// added, those taken out), on the members as they are in the transaction: a change made
    /// meanwhile by someone else (a leaver taken out) is not undone by a form shown before it.
    async fn set_group_members(
        &self,
        scope: &Scope<ManageGroups>,
        id: GroupId,
        members: Vec<UserId>,
        shown: Option<Vec<UserId>>,
        event: NewAuditEvent,
    ) -> StoreResult<()>;
    /// Sets one group's grant on one table; a grant without rights (and without rules) is
    /// removed.
    async fn set_table_grant(
        &self,
        scope: &Scope<ManageGroups>,
        grant: TableGrant,
        event: NewAuditEvent,
    ) -> StoreResult<()> {
        self.set_table_grants(scope, vec![GrantChange { grant, expected: None, event }]).await
    }
    /// Sets several grants (each with its event) in one transaction: all or none. A change
    /// with `expected` is made only while the stored grant is still that one, compared inside
    /// the transaction; otherwise nothing is saved (Conflict `matrix` `changed_meanwhile`).
    async fn set_table_grants(&self, scope: &Scope<ManageGroups>, grants: Vec<GrantChange>) -> StoreResult<()>;
    /// The grants that reach a user through their groups, for "what may this user do".
    async fn grants_of_user(&self, scope: &Scope<ManageGroups>, user: UserId) -> StoreResult<Vec<TableGrant>>;

    // --- the design of a table, and the trash ---
    /// Renames a table and/or changes its description.
    async fn update_table(
        &self,
        scope: &TableScope<Design>,
        name: Option<Name>,
        description: Option<String>,
        event: NewAuditEvent,
    ) -> StoreResult<TableDef>;
    /// Renames a field.
    async fn rename_field(
        &self,
        scope: &TableScope<Design>,
        field: FieldId,
        name: Name,
        event: NewAuditEvent,
    ) -> StoreResult<TableDef>;
    /// Puts the fields in the given order (every field of the table exactly once).
    async fn reorder_fields(
        &self,
        scope: &TableScope<Design>,
        order: Vec<FieldId>,
        event: NewAuditEvent,
    ) -> StoreResult<TableDef>;
    /// Changes a field's type and rules, converting every record's value with
    /// `daicho_domain::table::convert`, in one transaction. With `apply` false, or when any
    /// value does not convert, nothing changes and the report lists what would not convert;
    /// nor when a value would say something else once converted (the report lists those too)
    /// unless `accept_altered`.
    /// `seen` is the field as the request saw it: a field whose kind or rules changed since is
    /// refused (`design_changed`), as the change was judged (and its rules carried) from them,
    /// and would otherwise undo another designer's change of rules.
    async fn retype_field(
        &self,
        scope: &TableScope<Design>,
        seen: &FieldDef,
        field: FieldDef,
        utc_offset_minutes: i32,
        apply: bool,
        accept_altered: bool,
        event: NewAuditEvent,
    ) -> StoreResult<RetypeReport>;
    /// Moves a field to the trash: it disappears from every page, list, search and export, its
    /// values are kept until it is restored or purged.
    async fn trash_field(&self, scope: &TableScope<Design>, field: FieldId, event: NewAuditEvent) -> StoreResult<()>;
    /// Moves a table to the trash with its records.
    async fn trash_table(&self, scope: &Scope<ManageDesign>, table: TableId, event: NewAuditEvent) -> StoreResult<()>;
    /// The tenant's trashed tables and fields, newest first.
    async fn list_trash(&self, scope: &Scope<ManageDesign>) -> StoreResult<Vec<TrashItem>>;
    /// Restores a trashed table, or a trashed field (`field` set) of a live table. A name taken
    /// meanwhile is a Conflict.
    async fn restore(
        &self,
        scope: &Scope<ManageDesign>,
        table: TableId,
        field: Option<FieldId>,
        event: NewAuditEvent,
    ) -> StoreResult<()>;
    /// Deletes a trashed table (its SQL table, records, grants, views and history) or a
    /// trashed field (its column and values) for good.
    async fn purge(
        &self,
        scope: &Scope<ManageDesign>,
        table: TableId,
        field: Option<FieldId>,
        event: NewAuditEvent,
    ) -> StoreResult<()>;
    /// Purges everything trashed before `before`, in every tenant, recording each purge in its
    /// tenant's history (from `template`); returns how many items went.
    async fn purge_trash(&self, sys: &SystemScope, before: OffsetDateTime, template: NewAuditEvent)
    -> StoreResult<u64>;

    // --- saved views ---
    /// The table's shared views, then the reader's own, each by name: only those whose every
    /// field the reader sees ([`guard::offered_views`]).
    async fn list_views(&self, scope: &TableScope<View>) -> StoreResult<Vec<SavedView>>;
    /// Saves a personal view; its owner must be the reader. A name taken by another of the
    /// reader's views on the table is a Conflict.
    async fn create_view(&self, scope: &TableScope<View>, view: SavedView, event: NewAuditEvent) -> StoreResult<()>;
    /// Saves a view shared with everyone who may view the table (no owner).
    async fn create_shared_view(
        &self,
        scope: &TableScope<Design>,
        view: SavedView,
        event: NewAuditEvent,
    ) -> StoreResult<()>;
    /// Deletes one of the reader's own views (NotFound for any other).
    async fn delete_view(&self, scope: &TableScope<View>, id: ViewId, event: NewAuditEvent) -> StoreResult<()>;
    /// Deletes a shared view of the table.
    async fn delete_shared_view(&self, scope: &TableScope<Design>, id: ViewId, event: NewAuditEvent)
    -> StoreResult<()>;

    // --- copying an installation between stores (operator) ---
    async fn export_base(&self, op: &OperatorScope) -> StoreResult<BaseDump>;
    /// Up to `limit` events with a sequence number above `after_seq`, in order.
    async fn export_audit(&self, op: &OperatorScope, after_seq: i64, limit: u32) -> StoreResult<Vec<AuditEvent>>;
    /// Writes the dump into an empty store (refuses with Conflict otherwise), in one transaction.
    async fn import_base(&self, op: &OperatorScope, dump: BaseDump) -> StoreResult<()>;
    /// Appends events verbatim (sequence numbers and hashes included).
    async fn import_audit(&self, op: &OperatorScope, events: Vec<AuditEvent>) -> StoreResult<()>;
    /// Row counts of every table in [`TABLES`], in that order.
    async fn table_counts(&self, op: &OperatorScope) -> StoreResult<Vec<(&'static str, i64)>>;
    /// The catalogue of user tables, groups, grants and API tokens.
    async fn export_catalogue(&self, op: &OperatorScope) -> StoreResult<CatalogueDump>;
    /// Writes the catalogue into a store that holds no user tables yet (Conflict otherwise) and
    /// creates each table's SQL table, indexes and keyword index, in one transaction.
    async fn import_catalogue(&self, op: &OperatorScope, dump: CatalogueDump) -> StoreResult<()>;
    /// Up to `limit` records of a table with an id above `after_id`, in id order, unredacted.
    async fn export_table_records(
        &self,
        op: &OperatorScope,
        tenant: TenantId,
        table: TableId,
        after_id: i64,
        limit: u32,
    ) -> StoreResult<Vec<Record>>;
    /// Inserts records verbatim (ids, versions, authors and times included) with their search
    /// text, in one transaction.
    async fn import_table_records(
        &self,
        op: &OperatorScope,
        tenant: TenantId,
        table: TableId,
        records: Vec<Record>,
    ) -> StoreResult<()>;
    /// Up to `limit` history entries with an id above `after_id`, in id order.
    async fn export_record_history(
        &self,
        op: &OperatorScope,
        after_id: i64,
        limit: u32,
    ) -> StoreResult<Vec<RecordHistoryRow>>;
    /// Inserts history entries verbatim, in one transaction.
    async fn import_record_history(&self, op: &OperatorScope, rows: Vec<RecordHistoryRow>) -> StoreResult<()>;
    /// The number of records in each user table.
    async fn record_counts(&self, op: &OperatorScope) -> StoreResult<Vec<(TableId, i64)>>;

    // --- scheduled jobs, leased through the database so that one node runs each due job ---
    /// Registers a job if it is not known yet, first due at `first_due`.
    async fn ensure_job(&self, sys: &SystemScope, name: &str, first_due: OffsetDateTime) -> StoreResult<()>;
    /// Takes the lease on a due job whose lease is free or expired; true if this node got it.
    async fn claim_job(
        &self,
        sys: &SystemScope,
        name: &str,
        node: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// Records the run, schedules the next and releases the lease (only if this node holds it).
    async fn finish_job(
        &self,
        sys: &SystemScope,
        name: &str,
        node: &str,
        next_due: OffsetDateTime,
        event: NewAuditEvent,
    ) -> StoreResult<bool>;
    /// Removes staged import files kept since before `before`, in every tenant.
    async fn purge_staged_imports(&self, sys: &SystemScope, before: OffsetDateTime) -> StoreResult<u64>;
    /// Removes sessions unused since `idle_before` or started before `started_before`.
    async fn purge_sessions(
        &self,
        sys: &SystemScope,
        idle_before: OffsetDateTime,
        started_before: OffsetDateTime,
    ) -> StoreResult<u64>;

    // --- login and session lookup ---
    async fn tenant_by_code(&self, flow: &LoginFlow, code: &TenantCode) -> StoreResult<Option<Tenant>>;
    async fn credential(&self, flow: &LoginFlow, tenant: TenantId, login: &LoginId) -> StoreResult<Option<Credential>>;
    /// Failed logins recorded from `ip` since `since`, across all tenants.
    async fn login_failures_from_ip(&self, flow: &LoginFlow, ip: &str, since: OffsetDateTime) -> StoreResult<u64>;
    /// Counts a failure against the user; locks the account when the count reaches the
    /// threshold. Returns true when this failure locked it.
    async fn record_login_failure(&self, flow: &LoginFlow, failure: LoginFailure) -> StoreResult<bool>;
    /// Creates the session, clears the failure count and records the login, if the user is
    /// still as the sign-in found them (active, with the password hash it verified against);
    /// `false`, writing nothing, when the user was changed meanwhile (a password changed or
    /// reset, disabled or deleted while the password was being verified).
    async fn start_session(&self, flow: &LoginFlow, session: NewSession, event: NewAuditEvent) -> StoreResult<bool>;
    async fn session_by_token_hash(&self, flow: &LoginFlow, token_hash: &str) -> StoreResult<Option<SessionContext>>;
    async fn touch_session(&self, flow: &LoginFlow, id: SessionId, at: OffsetDateTime) -> StoreResult<()>;
    /// Ends a session (logout, timeout) and records why.
    async fn end_session(&self, flow: &LoginFlow, id: SessionId, event: NewAuditEvent) -> StoreResult<()>;
    /// Appends an event that records no change of state (failed attempt, refusal, export).
    async fn append_audit(&self, event: NewAuditEvent) -> StoreResult<()>;
    /// A personal API token by the hash of its value, with its user and tenant.
    async fn token_by_hash(&self, flow: &LoginFlow, token_hash: &str) -> StoreResult<Option<TokenContext>>;
    /// Records use (at most once a minute per token).
    async fn touch_token(&self, flow: &LoginFlow, id: TokenId, at: OffsetDateTime) -> StoreResult<()>;

    // --- one's own account ---
    async fn own_user(&self, scope: &Scope<OwnAccount>) -> StoreResult<User>;
    /// The current password hash followed by up to `history` earlier ones, newest first.
    async fn password_hashes(&self, scope: &Scope<OwnAccount>, history: u32) -> StoreResult<Vec<String>>;
    async fn own_password_hash(&self, scope: &Scope<OwnAccount>) -> StoreResult<String>;
    /// Sets a new password, keeps `history` earlier ones, and ends every other session.
    async fn change_password(
        &self,
        scope: &Scope<OwnAccount>,
        new_hash: String,
        history: u32,
        at: OffsetDateTime,
        event: NewAuditEvent,
    ) -> StoreResult<()>;
    async fn create_token(
        &self,
        scope: &Scope<OwnAccount>,
        token: NewApiToken,
        event: NewAuditEvent,
    ) -> StoreResult<ApiToken>;
    async fn list_own_tokens(&self, scope: &Scope<OwnAccount>) -> StoreResult<Vec<ApiToken>>;
    async fn revoke_own_token(
        &self,
        scope: &Scope<OwnAccount>,
        id: TokenId,
        at: OffsetDateTime,
        event: NewAuditEvent,
    ) -> StoreResult<()>;
    async fn list_own_sessions(&self, scope: &Scope<OwnAccount>) -> StoreResult<Vec<Session>>;
    async fn revoke_own_session(
        &self,
        scope: &Scope<OwnAccount>,
        id: SessionId,
        event: NewAuditEvent,
    ) -> StoreResult<()>;
    async fn set_language(
        &self,
        scope: &Scope<OwnAccount>,
        lang: LanguagePref,
        event: NewAuditEvent,
    ) -> StoreResult<()>;

    // --- user administration ---
    async fn list_users(&self, scope: &Scope<ManageUsers>) -> StoreResult<Vec<User>>;
    async fn get_user(&self, scope: &Scope<ManageUsers>, id: UserId) -> StoreResult<User>;
    async fn create_user(&self, scope: &Scope<ManageUsers>, user: NewUser, event: NewAuditEvent) -> StoreResult<User>;
    /// Updates the profile; a role change ends the user's sessions so it applies from a fresh login.
    async fn update_user(
        &self,
        scope: &Scope<ManageUsers>,
        id: UserId,
        profile: UserProfile,
        at: OffsetDateTime,
        event: NewAuditEvent,
    ) -> StoreResult<User>;
    /// Disabling ends all of the user's sessions in the same transaction.
    async fn set_user_status(
        &self,
        scope: &Scope<ManageUsers>,
        id: UserId,
        status: UserStatus,
        at: OffsetDateTime,
        event: NewAuditEvent,
    ) -> StoreResult<()>;
    async fn delete_user(&self, scope: &Scope<ManageUsers>, id: UserId, event: NewAuditEvent) -> StoreResult<()>;
    /// Sets a one-time password that must be changed at next login; ends the user's sessions.
    async fn reset_password(
        &self,
        scope: &Scope<ManageUsers>,
        id: UserId,
        new_hash: String,
        at: OffsetDateTime,
        event: NewAuditEvent,
    ) -> StoreResult<()>;
    async fn unlock_user(&self, scope: &Scope<ManageUsers>, id: UserId, event: NewAuditEvent) -> StoreResult<()>;

    // --- policy ---
    async fn update_policy(
        &self,
        scope: &Scope<ManagePolicy>,
        policy: SecurityPolicy,
        event: NewAuditEvent,
    ) -> StoreResult<()>;

    // --- operation history ---
    /// Newest first, at most `limit`.
    async fn search_audit(
        &self,
        scope: &Scope<ReadAudit>,
        filter: &AuditFilter,
        limit: u32,
    ) -> StoreResult<Vec<AuditEvent>>;
    async fn verify_audit_chain(&self, scope: &Scope<ReadAudit>) -> StoreResult<ChainReport>;
}

#[cfg(test)]
mod list_tests {
    use super::*;
    use daicho_domain::table::{FieldKind, FieldRules};

    fn table() -> TableDef {
        let field = |name: &str, kind: FieldKind, position: u32| FieldDef {
            id: FieldId::new_random(),
            name: Name::parse(name).expect("a name"),
            kind,
            rules: FieldRules::default(),
            position,
        };
        TableDef {
            id: TableId::new_random(),
            tenant_id: TenantId::new_random(),
            name: Name::parse("t").expect("a name"),
            description: String::new(),
            fields: vec![field("name", FieldKind::Text, 0), field("qty", FieldKind::Integer, 1)],
            created_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_write_stands_only_while_the_fields_it_was_checked_against_do() {
        let t = table();
        let row = |f: &FieldDef| {
            (
                Some(f.id.to_string()),
                Some(serde_json::to_string(&f.kind).expect("a kind")),
                Some(serde_json::to_string(&f.rules).expect("rules")),
            )
        };
        let rows: Vec<_> = t.fields.iter().map(row).collect();
        assert!(design_stands(&t, &rows).is_ok());
        // Another order, or other names, change nothing a value may be.
        let reversed: Vec<_> = rows.iter().rev().cloned().collect();
        assert!(design_stands(&t, &reversed).is_ok());
        // A changed type, a field gone to the trash, one more field, or the table gone: refused.
        let mut retyped = rows.clone();
        retyped[1].1 = Some(serde_json::to_string(&FieldKind::Decimal { scale: 2 }).expect("a kind"));
        for changed in [retyped, rows[..1].to_vec(), [rows.clone(), rows[..1].to_vec()].concat(), Vec::new()] {
            let e = design_stands(&t, &changed).expect_err("changed");
            assert!(
                matches!(e, StoreError::Conflict(ref f) if f.code_for("values") == Some("design_changed")),
                "{e:?}"
            );
        }
        // A table without fields: one row of NULLs.
        let empty = TableDef { fields: Vec::new(), ..t.clone() };
        assert!(design_stands(&empty, &[(None, None, None)]).is_ok());
        assert!(design_stands(&empty, &[]).is_err(), "gone");
        assert!(room_left(199, 200, "fields").is_ok());
        assert!(room_left(200, 200, "fields").is_err());
    }

    fn query(sort: Option<FieldId>, then: Vec<(FieldId, bool)>) -> RecordQuery {
        RecordQuery {
            filters: Vec::new(),
            keyword: None,
            sort,
            descending: false,
            then,
            after: None,
            after_then: Vec::new(),
            limit: 50,
        }
    }

    #[test]
    fn a_list_reads_values_then_empty_ones_and_refuses_a_sort_key_that_is_no_field() {
        let t = table();
        let (name, qty) = (t.fields[0].id, t.fields[1].id);
        assert_eq!(list_parts(&t, &query(None, Vec::new())).ok(), Some(vec![ListPart::ById]));
        let mut q = query(Some(qty), vec![(name, true)]);
        assert_eq!(list_parts(&t, &q).ok(), Some(vec![ListPart::Values(qty), ListPart::Empty(qty)]));
        q.after = Some((Cell::Int(3), 10));
        assert_eq!(list_parts(&t, &q).ok(), Some(vec![ListPart::Values(qty), ListPart::Empty(qty)]));
        // A page that ended among the empty values goes on with them only.
        q.after = Some((Cell::Null, 10));
        assert_eq!(list_parts(&t, &q).ok(), Some(vec![ListPart::Empty(qty)]));
        let created_at = daicho_domain::table::system_fields()[0].id;
        assert!(list_parts(&t, &query(Some(created_at), Vec::new())).is_ok(), "a system field sorts");
        assert!(matches!(list_parts(&t, &query(Some(FieldId::new_random()), Vec::new())), Err(StoreError::NotFound)));
        assert!(matches!(
            list_parts(&t, &query(Some(qty), vec![(FieldId::new_random(), false)])),
            Err(StoreError::NotFound)
        ));
    }

    #[test]
    fn a_record_resumes_a_query_at_its_sort_values_and_id() {
        let t = table();
        let (name, qty) = (t.fields[0].id, t.fields[1].id);
        let at = OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(5);
        let r = Record {
            id: 42,
            version: 1,
            cells: vec![(name, Cell::Text("A社".into())), (qty, Cell::Null)],
            created_at: at,
            created_by: "u1".into(),
            updated_at: at,
            updated_by: "u2".into(),
        };
        let mut q = query(None, Vec::new());
        r.resume(&mut q);
        assert_eq!((q.after, q.after_then), (Some((Cell::Null, 42)), Vec::new()), "by id: the id alone");
        let created_at = daicho_domain::table::system_fields()[0].id;
        let mut q = query(Some(name), vec![(qty, false), (created_at, true)]);
        r.resume(&mut q);
        assert_eq!(q.after, Some((Cell::Text("A社".into()), 42)));
        assert_eq!(q.after_then, vec![Cell::Null, Cell::Int(5_000)], "an empty key stays empty; times in ms");
    }
}
