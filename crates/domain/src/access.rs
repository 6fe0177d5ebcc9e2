//! Table rights: the part of the permission engine that decides, per table, what a user may do
//! with its records and fields. Rights are granted to groups of users, per table:
//! view, create, edit, delete, import, export and design; per group, table and field a field
//! may be hidden or read-only; and a grant may cover only some rows ("records they created", or
//! "records whose user field is them").
//!
//! A user holds a right on a table when any of their groups grants it (tenant administrators
//! hold every right). For that right, the rows covered are the union of the covering groups'
//! row rules. A field is hidden unless a covering group whose rows reach every covered row (a
//! group with every row; or all of them when they share one row rule) shows it; when the
//! groups' row rules differ and none covers every row, it is hidden if any of them hides it.
//! A field is written on a record only when one of the right's groups whose rows cover that
//! record leaves it editable, and so does one of view's groups covering it, if any does
//! ([`TableScope::writes_on`], checked by the store on the stored record).
//! So one group's freedom over a field never applies on rows only another group covers. Edit, delete and export also need view, and see only rows and fields
//! that view covers. Deny by default: no group, no right.
//!
//! [`Principal::authorize_table`] is the only way to obtain a [`TableScope`]; the store's
//! record methods take one and apply its rows and fields in their queries.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::ids::{FieldId, GroupId, TableId, TenantId, UserId};
use crate::perm::Principal;
use crate::table::{Cell, Name};
use crate::user::Role;

/// One right on a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TableRight {
    View,
    Create,
    Edit,
    Delete,
    Import,
    Export,
    Design,
}

impl TableRight {
    pub const ALL: [TableRight; 7] = [
        TableRight::View,
        TableRight::Create,
        TableRight::Edit,
        TableRight::Delete,
        TableRight::Import,
        TableRight::Export,
        TableRight::Design,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TableRight::View => "view",
            TableRight::Create => "create",
            TableRight::Edit => "edit",
            TableRight::Delete => "delete",
            TableRight::Import => "import",
            TableRight::Export => "export",
            TableRight::Design => "design",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.name() == s)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }

    /// Rights that only make sense on records the user can see, and so also need view.
    fn needs_view(self) -> bool {
        matches!(self, TableRight::Edit | TableRight::Delete | TableRight::Export)
    }
}

/// A set of table rights, stored as a bit mask.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Rights(u8);

impl Rights {
    pub const NONE: Rights = Rights(0);
    pub const ALL: Rights = Rights(0b111_1111);

    pub fn from_bits(bits: i64) -> Self {
        Rights((bits & i64::from(Self::ALL.0)) as u8)
    }
    pub fn bits(self) -> i64 {
        i64::from(self.0)
    }
    pub fn has(self, r: TableRight) -> bool {
        self.0 & r.bit() != 0
    }
    pub fn with(self, r: TableRight) -> Self {
        Rights(self.0 | r.bit())
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn iter(self) -> impl Iterator<Item = TableRight> {
        TableRight::ALL.into_iter().filter(move |r| self.has(*r))
    }
    pub fn of(rights: impl IntoIterator<Item = TableRight>) -> Self {
        rights.into_iter().fold(Rights::NONE, Rights::with)
    }
}

impl Serialize for Rights {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Rights {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Rights::of(Vec::<TableRight>::deserialize(d)?))
    }
}

/// Which records a grant covers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum RowRule {
    #[default]
    All,
    /// Records the user created.
    CreatedByMe,
    /// Records whose user field `field` holds the user.
    UserIsMe { field: FieldId },
}

/// A group's rights and records on a table as one short token ("<rights bits>:<rows rule>"),
/// as the matrix page shows a grant: a save compares it with the grant it is about to change.
pub fn grant_token(rights: Rights, rows: &RowRule) -> String {
    format!("{}:{}", rights.bits(), rows.name())
}

impl RowRule {
    pub fn name(&self) -> &'static str {
        match self {
            RowRule::All => "all",
            RowRule::CreatedByMe => "created_by_me",
            RowRule::UserIsMe { .. } => "user_is_me",
        }
    }
}

/// What a group may do with one field. Ordered from least to most: the most a user's covering
/// groups allow is what the user gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldAccess {
    Hidden,
    ReadOnly,
    #[default]
    Editable,
}

impl FieldAccess {
    pub fn name(self) -> &'static str {
        match self {
            FieldAccess::Hidden => "hidden",
            FieldAccess::ReadOnly => "read_only",
            FieldAccess::Editable => "editable",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [FieldAccess::Hidden, FieldAccess::ReadOnly, FieldAccess::Editable].into_iter().find(|a| a.name() == s)
    }
}

/// One group's rights on one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableGrant {
    pub group: GroupId,
    pub table: TableId,
    pub rights: Rights,
    pub rows: RowRule,
    /// Fields that are not editable for this group (absent: editable).
    pub fields: BTreeMap<FieldId, FieldAccess>,
}

impl TableGrant {
    pub fn field(&self, f: FieldId) -> FieldAccess {
        self.fields.get(&f).copied().unwrap_or_default()
    }
}

/// A group of users in a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: GroupId,
    pub tenant_id: TenantId,
    pub name: Name,
    pub description: String,
    pub members: Vec<UserId>,
    pub grants: Vec<TableGrant>,
}

/// The rows a scope covers: every row, or rows matching all of the listed conditions, each of
/// which is a set of rules of which any may match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowScope {
    /// Conjunction of disjunctions; empty means every row.
    pub all_of: Vec<Vec<RowRule>>,
}

impl RowScope {
    pub fn is_all(&self) -> bool {
        self.all_of.is_empty()
    }

    /// Whether a record (who created it, and its cells) is covered, for `me`.
    pub fn covers(&self, me: UserId, created_by: &str, cell: impl Fn(FieldId) -> Option<Cell>) -> bool {
        let me_s = me.to_string();
        self.all_of.iter().all(|any| any.iter().any(|r| r.covers(&me_s, created_by, &cell)))
    }
}

impl RowRule {
    /// Whether this rule covers a record (who created it, and its cells) for the user `me`.
    fn covers(&self, me: &str, created_by: &str, cell: &dyn Fn(FieldId) -> Option<Cell>) -> bool {
        match self {
            RowRule::All => true,
            RowRule::CreatedByMe => created_by == me,
            RowRule::UserIsMe { field } => matches!(cell(*field), Some(Cell::Text(s)) if s == me),
        }
    }
}

/// Markers for the table rights, so that a store method states the right it needs in its type.
pub trait Right: Send + Sync + 'static {
    const RIGHT: TableRight;
}

macro_rules! right {
    ($name:ident, $r:expr) => {
        #[derive(Debug, Clone, Copy)]
        pub struct $name;
        impl Right for $name {
            const RIGHT: TableRight = $r;
        }
    };
}

right!(View, TableRight::View);
right!(Create, TableRight::Create);
right!(Edit, TableRight::Edit);
right!(Delete, TableRight::Delete);
right!(Import, TableRight::Import);
right!(Export, TableRight::Export);
right!(Design, TableRight::Design);

/// What one user may do on one table, computed from their groups' grants on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableAccess {
    pub table: TableId,
    pub admin: bool,
    /// The grants on this table of the groups the user belongs to.
    pub grants: Vec<TableGrant>,
}

/// Proof that `actor` holds right `R` on `table`, with the rows and fields it covers. Only
/// [`Principal::authorize_table`] makes one.
#[derive(Debug, Clone)]
pub struct TableScope<R: Right> {
    tenant_id: TenantId,
    actor: UserId,
    table: TableId,
    rows: RowScope,
    /// Field access for this right; fields absent are editable.
    fields: BTreeMap<FieldId, FieldAccess>,
    /// What a write is judged by on its record: for each right this scope stands for (two
    /// after [`TableScope::within`]), the covering groups' own rows and field access, and
    /// view's groups; empty for an administrator. See [`TableScope::writes_on`].
    by_group: Vec<GroupList>,
    _r: PhantomData<R>,
}

/// One group's rows and field access for a right.
pub type GroupEffect = (RowRule, BTreeMap<FieldId, FieldAccess>);

/// The groups a write is judged by for one right: `required`, one of them must cover the
/// record (the right's own groups); else (view's groups) only those that cover it judge, and a
/// record none of them covers is left to the right's own groups (a user may create records
/// they will not see).
#[derive(Debug, Clone)]
pub struct GroupList {
    required: bool,
    groups: Vec<GroupEffect>,
}

impl GroupList {
    fn allows(&self, me: &str, f: FieldId, created_by: &str, cell: &dyn Fn(FieldId) -> Option<Cell>) -> bool {
        let mut covering = self.groups.iter().filter(|(rule, _)| rule.covers(me, created_by, cell)).peekable();
        if covering.peek().is_none() {
            return !self.required;
        }
        covering.any(|(_, fields)| editable(fields, f))
    }

    /// Whether every record the list is asked about gets `f` written: a group over every
    /// record (for new records, also one over "records they created", or over the one row
    /// rule `new_rule` every new record meets) leaves it editable, or every group does.
    fn allows_everywhere(&self, f: FieldId, new_records: bool, new_rule: Option<RowRule>) -> bool {
        let over_all = |rule: &RowRule| {
            *rule == RowRule::All || (new_records && (*rule == RowRule::CreatedByMe || Some(*rule) == new_rule))
        };
        self.groups.iter().any(|(rule, fields)| over_all(rule) && editable(fields, f))
            || self.groups.iter().all(|(_, fields)| editable(fields, f))
    }
}

fn editable(fields: &BTreeMap<FieldId, FieldAccess>, f: FieldId) -> bool {
    fields.get(&f).copied().unwrap_or_default() == FieldAccess::Editable
}

impl<R: Right> TableScope<R> {
    pub fn tenant_id(&self) -> TenantId {
        self.tenant_id
    }
    pub fn actor(&self) -> UserId {
        self.actor
    }
    pub fn table(&self) -> TableId {
        self.table
    }
    pub fn rows(&self) -> &RowScope {
        &self.rows
    }
    pub fn field(&self, f: FieldId) -> FieldAccess {
        self.fields.get(&f).copied().unwrap_or_default()
    }
    pub fn sees(&self, f: FieldId) -> bool {
        self.field(f) != FieldAccess::Hidden
    }
    pub fn writes(&self, f: FieldId) -> bool {
        self.field(f) == FieldAccess::Editable
    }
    /// Whether this scope covers a record.
    pub fn covers(&self, created_by: &str, cell: impl Fn(FieldId) -> Option<Cell>) -> bool {
        self.rows.covers(self.actor, created_by, cell)
    }
    /// Whether field `f` may be written on a record (who created it, and its cells): the right
    /// writes it ([`TableScope::writes`]), one of the right's groups whose rows cover this
    /// record leaves it editable, and so does one of view's groups covering it, if any does. A
    /// group over "records whose 担当 is them" that lets its members change 担当 beside one
    /// over every record that keeps 担当 read-only: 担当 is written on their own records only.
    pub fn writes_on(&self, f: FieldId, created_by: &str, cell: impl Fn(FieldId) -> Option<Cell>) -> bool {
        if !self.writes(f) {
            return false;
        }
        let me = self.actor.to_string();
        self.by_group.iter().all(|l| l.allows(&me, f, created_by, &cell))
    }
    /// Whether field `f` may be written on any record the right covers: every group it is
    /// judged by leaves it editable. What a page offers when it cannot judge the record itself.
    pub fn writes_everywhere(&self, f: FieldId) -> bool {
        self.writes(f) && self.by_group.iter().all(|l| l.groups.iter().all(|(_, fields)| editable(fields, f)))
    }
    /// The fields the row rules a write is judged by name ("records whose 担当 is them"): a
    /// record read without one of them (view hides it) cannot be judged here, only by the
    /// store on the stored record.
    pub fn rule_fields(&self) -> Vec<FieldId> {
        self.by_group
            .iter()
            .flat_map(|l| &l.groups)
            .map(|(r, _)| r)
            .chain(self.rows.all_of.iter().flatten())
            .filter_map(|r| match r {
                RowRule::UserIsMe { field } => Some(*field),
                _ => None,
            })
            .collect()
    }
    /// Whether any field is hidden (the keyword search then looks only in visible fields).
    pub fn hides_any(&self) -> bool {
        self.fields.values().any(|a| *a == FieldAccess::Hidden)
    }
}

impl<R: Right> TableScope<R> {
    /// This right narrowed to what `other` (of the same user and table) also covers: the rows
    /// both rules cover, each field as the stricter of the two. An update by an import's key
    /// takes both the import right and the edit right.
    pub fn within<O: Right>(&self, other: &TableScope<O>) -> TableScope<R> {
        let mut rows = self.rows.clone();
        for r in &other.rows.all_of {
            if !rows.all_of.contains(r) {
                rows.all_of.push(r.clone());
            }
        }
        let mut fields = self.fields.clone();
        for (f, a) in &other.fields {
            if *a < fields.get(f).copied().unwrap_or_default() {
                fields.insert(*f, *a);
            }
        }
        let by_group = self.by_group.iter().chain(&other.by_group).cloned().collect();
        TableScope {
            tenant_id: self.tenant_id,
            actor: self.actor,
            table: self.table,
            rows,
            fields,
            by_group,
            _r: PhantomData,
        }
    }
}

/// A right that needs view (export, edit, delete): what it reads is within what view shows.
pub trait ReadsWithinView: Right {}
impl ReadsWithinView for Export {}
impl ReadsWithinView for Edit {}
impl ReadsWithinView for Delete {}

impl<R: ReadsWithinView> TableScope<R> {
    /// What this right reads, as the view scope the store's reading methods take: the right's
    /// own rows and hidden fields. [`TableAccess::resolve`] has already narrowed them to within
    /// view's (rows both rules cover, fields either hides), so this never shows more than view
    /// does: a group whose export covers fewer rows or fields than its view exports only those,
    /// and a bulk edit or delete by a query selects only the records it may change.
    pub fn reading(&self) -> TableScope<View> {
        TableScope {
            tenant_id: self.tenant_id,
            actor: self.actor,
            table: self.table,
            rows: self.rows.clone(),
            fields: self.fields.iter().filter(|(_, a)| **a == FieldAccess::Hidden).map(|(f, a)| (*f, *a)).collect(),
            by_group: Vec::new(),
            _r: PhantomData,
        }
    }
}

/// The effect of a set of covering grants: their rows (union), fields, and each covering
/// group's own rows and fields (what a write is judged by on its record).
struct Effect {
    rows: Vec<RowRule>,
    fields: BTreeMap<FieldId, FieldAccess>,
    groups: Vec<(RowRule, BTreeMap<FieldId, FieldAccess>)>,
}

impl TableAccess {
    fn effect(&self, r: TableRight) -> Option<Effect> {
        let covering: Vec<&TableGrant> = self.grants.iter().filter(|g| g.rights.has(r)).collect();
        if covering.is_empty() {
            return None;
        }
        let rows = if covering.iter().any(|g| g.rows == RowRule::All) {
            Vec::new()
        } else {
            let mut rows: Vec<RowRule> = covering.iter().map(|g| g.rows).collect();
            rows.sort_by_key(|r| format!("{r:?}"));
            rows.dedup();
            rows
        };
        // Hidden or shown: one answer for every row the right covers (a list, a filter or a sort
        // cannot show a field on some rows only), so it is taken from the groups whose rows
        // reach all of them: those covering every row, or, when no group does, all the groups
        // if they share one row rule; shown if any of those shows it (HR's group shows salaries
        // beside one that hides them from everyone). When the groups' rows differ and none
        // covers every row, hidden if any of them hides it: one group's freedom must not show
        // a field on rows only another group covers, which hides it.
        let reach_all: Vec<&&TableGrant> = if rows.is_empty() {
            covering.iter().filter(|g| g.rows == RowRule::All).collect()
        } else if rows.len() == 1 {
            covering.iter().collect()
        } else {
            Vec::new()
        };
        let mut fields = BTreeMap::new();
        let restricted: std::collections::BTreeSet<FieldId> =
            covering.iter().flat_map(|g| g.fields.keys().copied()).collect();
        for f in restricted {
            let hidden = if reach_all.is_empty() {
                covering.iter().any(|g| g.field(f) == FieldAccess::Hidden)
            } else {
                reach_all.iter().all(|g| g.field(f) == FieldAccess::Hidden)
            };
            // Writing: the freest of the groups here; each write is then judged on its record
            // against the groups that cover that record ([`TableScope::writes_on`]).
            let access = if hidden {
                FieldAccess::Hidden
            } else if covering.iter().any(|g| g.field(f) == FieldAccess::Editable) {
                FieldAccess::Editable
            } else {
                FieldAccess::ReadOnly
            };
            if access != FieldAccess::Editable {
                fields.insert(f, access);
            }
        }
        let groups = covering.iter().map(|g| (g.rows, g.fields.clone())).collect();
        Some(Effect { rows, fields, groups })
    }

    /// The groups a write with right `r` is judged by on its record (see
    /// [`TableScope::writes_on`]): the right's own, and view's (what view keeps read-only on a
    /// record is not written there). None for an administrator.
    fn judged_by(&self, r: TableRight) -> Vec<GroupList> {
        if self.admin {
            return Vec::new();
        }
        let mut v: Vec<GroupList> =
            self.effect(r).map(|e| GroupList { required: true, groups: e.groups }).into_iter().collect();
        if r != TableRight::View
            && let Some(view) = self.effect(TableRight::View)
        {
            v.push(GroupList { required: false, groups: view.groups });
        }
        v
    }

    /// The fields right `r` offers for writing that some of the groups it is judged by keep
    /// read-only or hidden: written on some of its records only (for "what may this user do").
    pub fn writable_on_some_records(&self, r: TableRight) -> Vec<FieldId> {
        let Some((_, fields)) = self.resolve(r) else { return Vec::new() };
        let lists = self.judged_by(r);
        let named: std::collections::BTreeSet<FieldId> =
            lists.iter().flat_map(|l| &l.groups).flat_map(|(_, f)| f.keys().copied()).collect();
        let new_records = r == TableRight::Create;
        // (A right over one "records whose 担当 is them" rule makes only such records.)
        let new_rule = self.effect(r).and_then(|e| if e.rows.len() == 1 { e.rows.first().copied() } else { None });
        named
            .into_iter()
            .filter(|f| editable(&fields, *f) && !lists.iter().all(|l| l.allows_everywhere(*f, new_records, new_rule)))
            .collect()
    }

    /// Whether the user holds right `r` (for showing links and buttons; enforcement goes
    /// through [`Principal::authorize_table`]).
    pub fn has(&self, r: TableRight) -> bool {
        self.admin || (self.effect(r).is_some() && (!r.needs_view() || self.effect(TableRight::View).is_some()))
    }

    /// The rights held, for "what may this user do".
    pub fn rights(&self) -> Rights {
        Rights::of(TableRight::ALL.into_iter().filter(|r| self.has(*r)))
    }

    /// Field access and rows for right `r`, or `None` when it is not held.
    pub fn resolve(&self, r: TableRight) -> Option<(RowScope, BTreeMap<FieldId, FieldAccess>)> {
        if self.admin {
            return Some((RowScope::default(), BTreeMap::new()));
        }
        let own = self.effect(r)?;
        let view = self.effect(TableRight::View);
        if r.needs_view() && view.is_none() {
            return None;
        }
        // The right makes only records whose <user field> is the user (see below).
        let own_rule = if own.rows.len() == 1 { own.rows.first().copied() } else { None };
        let mut all_of = Vec::new();
        if !own.rows.is_empty() {
            all_of.push(own.rows);
        }
        let mut fields = own.fields;
        if r != TableRight::View
            && let Some(v) = view
        {
            if r.needs_view() && !v.rows.is_empty() && !all_of.contains(&v.rows) {
                all_of.push(v.rows);
            }
            // What view hides stays hidden. What no view group leaves editable cannot be
            // written on any record view covers: for the rights within view, anywhere; for
            // creating and importing, only when a view group covers every record (a record no
            // view group covers is the creating groups' to judge). Where some view group
            // leaves it editable, each write is judged on its record (`writes_on`).
            // (A view group over "records they created" covers every record they make; one over
            // "records whose 担当 is them" does when the right makes only such records.)
            let view_everywhere = v.groups.iter().any(|(rule, _)| match rule {
                RowRule::All | RowRule::CreatedByMe => true,
                RowRule::UserIsMe { .. } => own_rule == Some(*rule),
            });
            for (f, a) in v.fields {
                let cur = fields.get(&f).copied().unwrap_or_default();
                if a < cur && (a == FieldAccess::Hidden || r.needs_view() || view_everywhere) {
                    fields.insert(f, a);
                }
            }
        }
        if r == TableRight::View {
            // Viewing does not write; "read-only" is meaningful for the writing rights only.
            fields.retain(|_, a| *a == FieldAccess::Hidden);
        }
        Some((RowScope { all_of }, fields))
    }
}

impl Principal {
    /// The user's access to a table from their groups' grants on it (which the store loads for
    /// the principal's own groups). Administrators hold every right.
    pub fn table_access(&self, table: TableId, grants: Vec<TableGrant>) -> TableAccess {
        let grants = grants.into_iter().filter(|g| g.table == table).collect();
        TableAccess { table, admin: self.role == Role::TenantAdmin, grants }
    }

    /// Grants right `R` on the table, with the rows and fields it covers, or refuses.
    pub fn authorize_table<R: Right>(&self, access: &TableAccess) -> Result<TableScope<R>, DomainError> {
        let (rows, fields) = access.resolve(R::RIGHT).ok_or(DomainError::Forbidden)?;
        let by_group = access.judged_by(R::RIGHT);
        Ok(TableScope {
            tenant_id: self.tenant_id,
            actor: self.user_id,
            table: access.table,
            rows,
            fields,
            by_group,
            _r: PhantomData,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::SessionId;
    use crate::user::LoginId;

    fn member() -> Principal {
        Principal {
            tenant_id: TenantId::new_random(),
            user_id: UserId::new_random(),
            login_id: LoginId::parse("taro").unwrap(),
            role: Role::Member,
            session_id: SessionId::new_random(),
        }
    }

    fn grant(t: TableId, rights: &[TableRight], rows: RowRule, fields: &[(FieldId, FieldAccess)]) -> TableGrant {
        TableGrant {
            group: GroupId::new_random(),
            table: t,
            rights: Rights::of(rights.iter().copied()),
            rows,
            fields: fields.iter().copied().collect(),
        }
    }

    #[test]
    fn no_group_no_right_and_administrators_hold_every_right() {
        let p = member();
        let t = TableId::new_random();
        let a = p.table_access(t, Vec::new());
        for r in TableRight::ALL {
            assert!(!a.has(r));
        }
        assert!(p.authorize_table::<View>(&a).is_err());
        let admin = Principal { role: Role::TenantAdmin, ..p };
        let a = admin.table_access(t, Vec::new());
        assert_eq!(a.rights(), Rights::ALL);
        let s = admin.authorize_table::<Edit>(&a).unwrap();
        assert!(s.rows().is_all());
    }

    #[test]
    fn grants_for_other_tables_do_not_count() {
        let p = member();
        let (t, other) = (TableId::new_random(), TableId::new_random());
        let a = p.table_access(t, vec![grant(other, &[TableRight::View], RowRule::All, &[])]);
        assert!(!a.has(TableRight::View));
    }

    #[test]
    fn edit_delete_and_export_need_view_but_create_and_import_do_not() {
        let p = member();
        let t = TableId::new_random();
        let all_but_view: Vec<TableRight> = TableRight::ALL.into_iter().filter(|r| *r != TableRight::View).collect();
        let a = p.table_access(t, vec![grant(t, &all_but_view, RowRule::All, &[])]);
        assert!(a.has(TableRight::Create) && a.has(TableRight::Import) && a.has(TableRight::Design));
        assert!(!a.has(TableRight::Edit) && !a.has(TableRight::Delete) && !a.has(TableRight::Export));
        assert!(p.authorize_table::<Edit>(&a).is_err());
        assert!(p.authorize_table::<Create>(&a).is_ok());
    }

    #[test]
    fn rights_rows_and_fields_are_the_union_of_the_groups() {
        let p = member();
        let t = TableId::new_random();
        let (salary, memo, owner) = (FieldId::new_random(), FieldId::new_random(), FieldId::new_random());
        let staff = grant(
            t,
            &[TableRight::View, TableRight::Edit],
            RowRule::CreatedByMe,
            &[(salary, FieldAccess::Hidden), (memo, FieldAccess::ReadOnly)],
        );
        let a = p.table_access(t, vec![staff.clone()]);
        let v = p.authorize_table::<View>(&a).unwrap();
        assert!(!v.sees(salary) && v.sees(memo));
        assert_eq!(v.field(memo), FieldAccess::Editable, "read-only is about writing");
        let e = p.authorize_table::<Edit>(&a).unwrap();
        assert!(!e.sees(salary) && e.sees(memo) && !e.writes(memo) && e.writes(owner));
        let me = p.user_id.to_string();
        assert!(e.covers(&me, |_| None));
        assert!(!e.covers("someone-else", |_| None));
        // A second group that sees salaries and owns rows by a user field widens the rows, but
        // not the fields: the staff group's rows would otherwise show the salary it hides, and
        // the managers' rows the memo they hide.
        let managers =
            grant(t, &[TableRight::View], RowRule::UserIsMe { field: owner }, &[(memo, FieldAccess::Hidden)]);
        let a = p.table_access(t, vec![staff.clone(), managers.clone()]);
        let v = p.authorize_table::<View>(&a).unwrap();
        assert!(!v.sees(salary) && !v.sees(memo));
        assert!(v.covers("someone-else", |f| (f == owner).then(|| Cell::Text(me.clone()))));
        assert!(!v.covers("someone-else", |_| None));
        // Edit keeps its own (narrower) rows and its field rules.
        let e = p.authorize_table::<Edit>(&a).unwrap();
        assert!(!e.covers("someone-else", |f| (f == owner).then(|| Cell::Text(me.clone()))));
        assert!(e.covers(&me, |_| None));
        assert!(!e.sees(salary), "edit's own grant hides salary");
        // A group over every row decides the fields: one that sees salaries everywhere shows
        // them, beside one that hides them on its rows.
        let hr = grant(t, &[TableRight::View], RowRule::All, &[]);
        let a = p.table_access(t, vec![staff.clone(), managers.clone(), hr]);
        let v = p.authorize_table::<View>(&a).unwrap();
        assert!(v.sees(salary) && v.sees(memo));
        // Editing every row with the owner field read-only, and their own rows with it
        // writable: they set the owner of their own records only (else they could take any).
        let all_ro = grant(t, &[TableRight::View, TableRight::Edit], RowRule::All, &[(owner, FieldAccess::ReadOnly)]);
        let mine_rw = grant(t, &[TableRight::View, TableRight::Edit], RowRule::UserIsMe { field: owner }, &[]);
        let a = p.table_access(t, vec![all_ro.clone(), mine_rw.clone()]);
        let e = p.authorize_table::<Edit>(&a).unwrap();
        let owned_by = |who: &str| {
            let who = who.to_owned();
            move |f: FieldId| (f == owner).then(|| Cell::Text(who.clone()))
        };
        assert!(e.writes(owner), "the form offers it");
        assert!(e.writes_on(owner, "someone-else", owned_by(&me)), "on their own record");
        assert!(!e.writes_on(owner, "someone-else", owned_by("someone-else")), "not on anyone else's");
        assert!(e.writes_on(memo, "someone-else", owned_by("someone-else")), "other fields as the all-rows group says");
        // The same row rule in both groups: the more permissive field access.
        let mine_ro = grant(
            t,
            &[TableRight::View, TableRight::Edit],
            RowRule::UserIsMe { field: owner },
            &[(memo, FieldAccess::ReadOnly)],
        );
        let a = p.table_access(t, vec![mine_ro, mine_rw]);
        let e = p.authorize_table::<Edit>(&a).unwrap();
        assert!(e.writes(memo) && e.writes_on(memo, "x", owned_by(&me)));
        // An administrator's writes are not judged by groups.
        let mut admin = p.clone();
        admin.role = Role::TenantAdmin;
        let e = admin.authorize_table::<Edit>(&admin.table_access(t, vec![all_ro.clone()])).unwrap();
        assert!(e.writes_on(owner, "x", |_| None));
        // What view keeps read-only on a record is not written there: view over every record
        // with memo read-only, view over their own records, edit over every record.
        let view_ro = grant(t, &[TableRight::View], RowRule::All, &[(memo, FieldAccess::ReadOnly)]);
        let view_mine = grant(t, &[TableRight::View], RowRule::CreatedByMe, &[]);
        let edit_all = grant(t, &[TableRight::Edit], RowRule::All, &[]);
        let a = p.table_access(t, vec![view_ro, view_mine, edit_all]);
        let e = p.authorize_table::<Edit>(&a).unwrap();
        assert!(e.writes_on(memo, &me, |_| None), "on their own records (view_mine leaves it editable)");
        assert!(!e.writes_on(memo, "someone-else", |_| None), "not on anyone else's");
        assert_eq!(a.writable_on_some_records(TableRight::Edit), vec![memo]);
        // Likewise for a new record: view over every record keeps memo read-only, so a record
        // made for someone else does not get it; one no view group covers is the creator's
        // groups' to judge (a user may create records they will not see).
        let view_ro = grant(t, &[TableRight::View], RowRule::All, &[(memo, FieldAccess::ReadOnly)]);
        let view_owner = grant(t, &[TableRight::View], RowRule::UserIsMe { field: owner }, &[]);
        let create_all = grant(t, &[TableRight::Create], RowRule::All, &[]);
        let a = p.table_access(t, vec![view_ro, view_owner.clone(), create_all.clone()]);
        let c = p.authorize_table::<Create>(&a).unwrap();
        assert!(c.writes_on(memo, &me, owned_by(&me)));
        assert!(!c.writes_on(memo, &me, owned_by("someone-else")));
        let a = p.table_access(t, vec![view_owner, create_all.clone()]);
        let c = p.authorize_table::<Create>(&a).unwrap();
        assert!(c.writes_on(memo, &me, owned_by("someone-else")), "no view group covers it");
        // The same when the only view group keeps memo read-only on the records it covers.
        let view_owner_ro =
            grant(t, &[TableRight::View], RowRule::UserIsMe { field: owner }, &[(memo, FieldAccess::ReadOnly)]);
        let a = p.table_access(t, vec![view_owner_ro, create_all.clone()]);
        let c = p.authorize_table::<Create>(&a).unwrap();
        assert!(c.writes_on(memo, &me, owned_by("someone-else")), "no view group covers it");
        assert!(!c.writes_on(memo, &me, owned_by(&me)), "the view group covering it keeps it read-only");
        // Managers edit every record freely beside staff who may not change memo on theirs:
        // memo is writable on every record, not "on some records only".
        let managers = grant(t, &[TableRight::View, TableRight::Edit], RowRule::All, &[]);
        let staff_ro =
            grant(t, &[TableRight::View, TableRight::Edit], RowRule::CreatedByMe, &[(memo, FieldAccess::ReadOnly)]);
        let a = p.table_access(t, vec![managers, staff_ro]);
        assert!(a.writable_on_some_records(TableRight::Edit).is_empty());
        // View over the records they created, memo read-only, beside create over every
        // record: every record they make is one view keeps memo read-only on — not offered.
        let view_mine_ro = grant(t, &[TableRight::View], RowRule::CreatedByMe, &[(memo, FieldAccess::ReadOnly)]);
        let a = p.table_access(t, vec![view_mine_ro, create_all.clone()]);
        assert!(!p.authorize_table::<Create>(&a).unwrap().writes(memo));
        assert!(a.writable_on_some_records(TableRight::Create).is_empty());
        // Create over every record with memo read-only beside create over their own records
        // with it writable: every record they make is their own — writable on all of them.
        let create_ro = grant(t, &[TableRight::Create], RowRule::All, &[(memo, FieldAccess::ReadOnly)]);
        let create_mine = grant(t, &[TableRight::Create], RowRule::CreatedByMe, &[]);
        let a = p.table_access(t, vec![create_ro, create_mine]);
        let c = p.authorize_table::<Create>(&a).unwrap();
        assert!(c.writes(memo) && c.writes_on(memo, &me, |_| None));
        assert!(a.writable_on_some_records(TableRight::Create).is_empty());
        // Create over "records whose 担当 is them": view's group over those records leaves
        // memo editable, so every record they may make gets it.
        let view_all_ro = grant(t, &[TableRight::View], RowRule::All, &[(memo, FieldAccess::ReadOnly)]);
        let view_owner = grant(t, &[TableRight::View], RowRule::UserIsMe { field: owner }, &[]);
        let create_owner = grant(t, &[TableRight::Create], RowRule::UserIsMe { field: owner }, &[]);
        let a = p.table_access(t, vec![view_all_ro, view_owner, create_owner]);
        assert!(a.writable_on_some_records(TableRight::Create).is_empty());
        // An import update takes both rights' groups: import over every record, edit over
        // their own records only, memo writable in both — only on their own records.
        let importers = grant(t, &[TableRight::View, TableRight::Import], RowRule::All, &[]);
        let editors = grant(t, &[TableRight::Edit], RowRule::UserIsMe { field: owner }, &[]);
        let a = p.table_access(t, vec![importers, editors]);
        let both = p.authorize_table::<Import>(&a).unwrap().within(&p.authorize_table::<Edit>(&a).unwrap());
        assert!(both.writes_on(memo, "x", owned_by(&me)));
        assert!(!both.writes_on(memo, "x", owned_by("someone-else")), "edit's groups judge too");
    }

    #[test]
    fn what_view_hides_stays_hidden_for_edit() {
        let p = member();
        let t = TableId::new_random();
        let f = FieldId::new_random();
        let viewers = grant(t, &[TableRight::View], RowRule::All, &[(f, FieldAccess::Hidden)]);
        let editors = grant(t, &[TableRight::Edit], RowRule::All, &[]);
        let a = p.table_access(t, vec![viewers, editors]);
        let e = p.authorize_table::<Edit>(&a).unwrap();
        assert!(!e.sees(f) && !e.writes(f));
    }

    #[test]
    fn a_scope_within_another_covers_the_rows_both_cover_and_the_stricter_field_access() {
        let p = member();
        let t = TableId::new_random();
        let (memo, amount) = (FieldId::new_random(), FieldId::new_random());
        let me = p.user_id.to_string();
        // Import every row, memo read-only; edit only their own rows, amount read-only.
        let importers =
            grant(t, &[TableRight::View, TableRight::Import], RowRule::All, &[(memo, FieldAccess::ReadOnly)]);
        let editors = grant(t, &[TableRight::Edit], RowRule::CreatedByMe, &[(amount, FieldAccess::ReadOnly)]);
        let a = p.table_access(t, vec![importers, editors]);
        let import = p.authorize_table::<Import>(&a).unwrap();
        let edit = p.authorize_table::<Edit>(&a).unwrap();
        assert!(import.covers("someone-else", |_| None));
        let both = import.within(&edit);
        assert!(both.covers(&me, |_| None) && !both.covers("someone-else", |_| None));
        assert!(!both.writes(memo) && !both.writes(amount));
        let same = import.within(&import);
        assert_eq!((same.rows.all_of.len(), same.covers("someone-else", |_| None)), (import.rows.all_of.len(), true));
    }

    #[test]
    fn a_bulk_selection_reads_only_the_rows_the_acting_right_covers() {
        let p = member();
        let t = TableId::new_random();
        let memo = FieldId::new_random();
        let me = p.user_id.to_string();
        // View every row, edit and delete only their own; the memo hidden from view.
        let viewers = grant(t, &[TableRight::View], RowRule::All, &[(memo, FieldAccess::Hidden)]);
        let editors = grant(t, &[TableRight::Edit, TableRight::Delete], RowRule::CreatedByMe, &[]);
        let a = p.table_access(t, vec![viewers, editors]);
        for r in [p.authorize_table::<Edit>(&a).unwrap().reading(), p.authorize_table::<Delete>(&a).unwrap().reading()]
        {
            assert!(r.covers(&me, |_| None) && !r.covers("someone-else", |_| None));
            assert!(!r.sees(memo), "what view hides stays hidden");
        }
        assert!(p.authorize_table::<View>(&a).unwrap().covers("someone-else", |_| None));
    }

    #[test]
    fn an_export_reads_only_the_rows_and_fields_both_export_and_view_cover() {
        let p = member();
        let t = TableId::new_random();
        let (amount, memo) = (FieldId::new_random(), FieldId::new_random());
        let me = p.user_id.to_string();
        // One group views every row and field; another exports only its own rows, without the
        // amount.
        let viewers = grant(t, &[TableRight::View], RowRule::All, &[]);
        let exporters = grant(t, &[TableRight::Export], RowRule::CreatedByMe, &[(amount, FieldAccess::Hidden)]);
        let a = p.table_access(t, vec![viewers, exporters.clone()]);
        let v = p.authorize_table::<View>(&a).unwrap();
        assert!(v.covers("someone-else", |_| None) && v.sees(amount));
        let r = p.authorize_table::<Export>(&a).unwrap().reading();
        assert!(r.covers(&me, |_| None) && !r.covers("someone-else", |_| None));
        assert!(!r.sees(amount) && r.sees(memo));
        // The other way round: view limited to own rows and without the memo, export of every
        // row and field: the export still reads only what view covers.
        let viewers = grant(t, &[TableRight::View], RowRule::CreatedByMe, &[(memo, FieldAccess::Hidden)]);
        let exporters = grant(t, &[TableRight::Export], RowRule::All, &[(amount, FieldAccess::ReadOnly)]);
        let a = p.table_access(t, vec![viewers, exporters.clone()]);
        let r = p.authorize_table::<Export>(&a).unwrap().reading();
        assert!(r.covers(&me, |_| None) && !r.covers("someone-else", |_| None));
        assert!(!r.sees(memo) && r.sees(amount));
        assert_eq!(r.field(amount), FieldAccess::Editable, "read-only is about writing, not reading");
        // Administrators export everything.
        let admin = Principal { role: Role::TenantAdmin, ..p.clone() };
        let r = admin.authorize_table::<Export>(&admin.table_access(t, vec![exporters])).unwrap().reading();
        assert!(r.rows().is_all() && r.sees(amount));
    }

    #[test]
    fn rights_serialise_as_names() {
        let r = Rights::of([TableRight::View, TableRight::Export]);
        assert_eq!(serde_json::to_string(&r).unwrap(), r#"["view","export"]"#);
        let back: Rights = serde_json::from_str(r#"["export","view"]"#).unwrap();
        assert_eq!(back, r);
        assert!(serde_json::from_str::<Rights>(r#"["fly"]"#).is_err());
        assert_eq!(Rights::from_bits(Rights::ALL.bits()), Rights::ALL);
        assert_eq!(Rights::from_bits(-1), Rights::ALL);
    }
}
