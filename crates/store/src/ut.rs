//! SQL identifiers for user tables. They are made only from catalogue ids (UUIDs in simple
//! hex form), never from names users type, so no identifier can carry SQL; values always go
//! as bind parameters.

use daicho_domain::{FieldId, TableId};

pub fn table_ident(id: TableId) -> String {
    format!("t_{}", id.as_uuid().simple())
}

/// A field's column; a system field's is the record's own column (created_at, …).
pub fn field_ident(id: FieldId) -> String {
    match daicho_domain::table::system_column(id) {
        Some(c) => c.to_owned(),
        None => format!("f_{}", id.as_uuid().simple()),
    }
}

/// The system columns every user table indexes as `(column, id)`, as a field's index: the
/// grid sorts and filters by them ("updated at", newest first, is the common order of a
/// business list), and the row rule "records they created" selects by `created_by`. Without
/// them, sorting a million records by "updated at" read the whole table (96 ms measured).
pub const INDEXED_SYSTEM_COLUMNS: [&str; 4] = ["created_at", "created_by", "updated_at", "updated_by"];

/// The statements that create a user table's indexes on its system columns (see
/// [`INDEXED_SYSTEM_COLUMNS`]); `IF NOT EXISTS`, so that a store's start may run them on
/// tables made before (the same text in both dialects).
pub fn system_indexes(id: TableId) -> Vec<String> {
    INDEXED_SYSTEM_COLUMNS
        .iter()
        .map(|c| format!("CREATE INDEX IF NOT EXISTS {} ON {} ({c}, id)", system_index_ident(id, c), table_ident(id)))
        .collect()
}

/// The name of a table's index on one of its system columns.
pub fn system_index_ident(id: TableId, column: &str) -> String {
    format!("i_{}_{column}", id.as_uuid().simple())
}

pub fn unique_ident(id: FieldId) -> String {
    format!("u_{}", id.as_uuid().simple())
}

/// The name a trashed table or field holds while in the trash: it starts with a control
/// character, which no name a user types may contain, so it never takes a user's name.
pub fn trash_placeholder(id: &str) -> String {
    format!("\u{1}trash:{id}")
}

/// SQL for a record's searchable text from its live searchable columns: each non-empty value
/// followed by `newline` (the dialect's expression for a newline), as `search_text` builds it.
pub fn search_expr(def: &daicho_domain::table::TableDef, newline: &str) -> String {
    let parts: Vec<String> = def
        .fields
        .iter()
        .filter(|f| f.searchable())
        .map(|f| format!("COALESCE({} || {newline}, '')", field_ident(f.id)))
        .collect();
    if parts.is_empty() { "''".to_owned() } else { parts.join(" || ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_lower_case_hex_only() {
        let t = table_ident(TableId::new_random());
        assert_eq!(t.len(), 34);
        assert!(t.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
    }

    #[test]
    fn system_index_names_are_distinct_and_fit_postgresql() {
        let id = TableId::new_random();
        let names: Vec<String> =
            system_indexes(id).iter().map(|s| s.split_whitespace().nth(5).unwrap_or_default().to_owned()).collect();
        assert_eq!(names.len(), 4);
        assert!(names.iter().all(|n| n.starts_with("i_") && n.len() <= 63), "{names:?}");
        let mut unique = names.clone();
        unique.dedup();
        assert_eq!(unique, names);
        assert!(system_indexes(id)[0].ends_with(&format!("ON {} (created_at, id)", table_ident(id))));
    }
}
