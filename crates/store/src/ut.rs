//! SQL identifiers for user tables. They are made only from catalogue ids (UUIDs in simple
//! hex form), never from names users type, so no identifier can carry SQL; values always go
//! as bind parameters.

use daicho_domain::{FieldId, TableId};

pub fn table_ident(id: TableId) -> String {
    format!("t_{}", id.as_uuid().simple())
}

pub fn field_ident(id: FieldId) -> String {
    format!("f_{}", id.as_uuid().simple())
}

pub fn unique_ident(id: FieldId) -> String {
    format!("u_{}", id.as_uuid().simple())
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
