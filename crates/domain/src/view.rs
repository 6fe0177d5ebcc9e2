//! Saved views of a table: a name and what the grid shows (keyword, filters, sort keys and
//! columns). A personal view belongs to its owner; a shared view (no owner) is offered to
//! everyone who may view the table. A view is only a query: it is run under the reader's own
//! table rights, so a view never shows anyone more than they may see.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{FieldId, TableId, UserId, ViewId};
use crate::table::Name;

/// The most views one user may keep per table (personal) and a table may share.
pub const MAX_VIEWS: usize = 50;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewSpec {
    #[serde(default)]
    pub keyword: String,
    #[serde(default)]
    pub sort: Vec<SortSpec>,
    #[serde(default)]
    pub filters: Vec<FilterSpec>,
    /// The columns shown, in order; empty shows every field the reader may see.
    #[serde(default)]
    pub columns: Vec<FieldId>,
    /// With no sort field: oldest records first (by record number) instead of newest first.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub oldest_first: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SortSpec {
    pub field: FieldId,
    #[serde(default)]
    pub desc: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterSpec {
    pub field: FieldId,
    /// eq, contains, starts_with, gt, gte, lt, lte, empty, not_empty, any_of.
    pub op: String,
    #[serde(default)]
    pub value: String,
}

impl ViewSpec {
    /// The view as the query-string pairs the grid and the API read (`q`, `sort`/`dir`,
    /// `filter.<op>.<field id>`, `col`).
    pub fn to_pairs(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if !self.keyword.is_empty() {
            out.push(("q".to_owned(), self.keyword.clone()));
        }
        for s in &self.sort {
            out.push(("sort".to_owned(), s.field.to_string()));
            out.push(("dir".to_owned(), if s.desc { "desc" } else { "asc" }.to_owned()));
        }
        if self.sort.is_empty() && self.oldest_first {
            out.push(("dir".to_owned(), "asc".to_owned()));
        }
        for f in &self.filters {
            out.push((format!("filter.{}.{}", f.op, f.field), f.value.clone()));
        }
        for c in &self.columns {
            out.push(("col".to_owned(), c.to_string()));
        }
        out
    }

    /// Every field the view names: in its sort keys, filters and columns.
    pub fn fields(&self) -> impl Iterator<Item = FieldId> + '_ {
        self.sort
            .iter()
            .map(|s| s.field)
            .chain(self.filters.iter().map(|f| f.field))
            .chain(self.columns.iter().copied())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedView {
    pub id: ViewId,
    pub table_id: TableId,
    /// `None` for a shared view.
    pub owner: Option<UserId>,
    pub name: Name,
    pub spec: ViewSpec,
    pub created_at: OffsetDateTime,
    pub created_by: UserId,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_becomes_the_pairs_the_grid_reads() {
        let f = FieldId::new_random();
        let spec = ViewSpec {
            keyword: "東京".into(),
            sort: vec![SortSpec { field: f, desc: true }],
            filters: vec![FilterSpec { field: f, op: "gte".into(), value: "10".into() }],
            columns: vec![f],
            oldest_first: false,
        };
        let pairs = spec.to_pairs();
        assert_eq!(pairs[0], ("q".to_owned(), "東京".to_owned()));
        assert_eq!(pairs[2], ("dir".to_owned(), "desc".to_owned()));
        assert_eq!(pairs[3], (format!("filter.gte.{f}"), "10".to_owned()));
        assert_eq!(pairs[4], ("col".to_owned(), f.to_string()));
        let (g, h) = (FieldId::new_random(), FieldId::new_random());
        let named = ViewSpec {
            filters: vec![FilterSpec { field: g, op: "eq".into(), value: String::new() }],
            columns: vec![h],
            ..spec.clone()
        };
        assert_eq!(named.fields().collect::<Vec<_>>(), [f, g, h], "sort keys, filters, columns");
        assert_eq!(ViewSpec::default().fields().count(), 0);
        let back: ViewSpec = serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
        assert_eq!(back, spec);
    }
}
