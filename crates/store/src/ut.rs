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
}
