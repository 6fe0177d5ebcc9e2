//! One description of each list query, turned into the API's query string for Daicho and into
//! the SQL that the store runs for it (crates/store-sqlite and crates/store-postgres,
//! `list_records`), so that the raw database is asked exactly the same question.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::data::V;

#[derive(Clone, Copy, PartialEq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Filter {
    pub field: usize,
    /// The API operator (eq, gte, lt, ...).
    pub op: &'static str,
    /// The value as a user types it.
    pub text: String,
    /// The value as stored.
    pub value: V,
}

#[derive(Clone)]
pub struct ListSpec {
    pub label: String,
    pub filters: Vec<Filter>,
    pub keyword: Option<String>,
    pub sort: Option<usize>,
    pub desc: bool,
    pub after: Option<(V, i64)>,
    pub limit: u32,
}

impl ListSpec {
    pub fn new(label: &str) -> Self {
        Self {
            label: label.to_owned(),
            filters: Vec::new(),
            keyword: None,
            sort: None,
            desc: true,
            after: None,
            limit: 50,
        }
    }

    /// The API's query pairs; fields are named by id.
    pub fn api_pairs(&self, field_ids: &[String]) -> Vec<(String, String)> {
        let mut p = Vec::new();
        for f in &self.filters {
            p.push((format!("filter.{}.{}", f.op, field_ids[f.field]), f.text.clone()));
        }
        if let Some(k) = &self.keyword {
            p.push(("q".into(), k.clone()));
        }
        if let Some(s) = self.sort {
            p.push(("sort".into(), field_ids[s].clone()));
            p.push(("dir".into(), if self.desc { "desc" } else { "asc" }.into()));
        }
        if let Some((v, id)) = &self.after {
            let v = match v {
                V::Null => Value::Null,
                V::Text(t) => json!({"t": t}),
                V::Int(n) => json!({"i": n}),
                V::Bool(b) => json!({"b": b}),
            };
            let cursor = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json!([v, id]).to_string());
            p.push(("after".into(), cursor));
        }
        p.push(("limit".into(), self.limit.to_string()));
        p
    }

    /// The path and query string, percent-encoded (for wrk).
    pub fn api_path(&self, table_id: &str, field_ids: &[String]) -> String {
        let q: Vec<String> = self.api_pairs(field_ids).iter().map(|(k, v)| format!("{}={}", pct(k), pct(v))).collect();
        format!("/api/v1/tables/{table_id}/records?{}", q.join("&"))
    }

    /// The store's SQL for this query and its bind values, in order. With `plain_order` the
    /// ORDER BY leaves out the "empty values last" term (a diagnosis variant, not what Daicho
    /// runs).
    pub fn sql(&self, d: Dialect, table: &str, cols: &[String], plain_order: bool) -> (String, Vec<V>) {
        let mut sql = format!("SELECT {} FROM {table} WHERE 1 = 1", record_columns(cols));
        let mut binds = Vec::new();
        let ph = |binds: &mut Vec<V>, v: V| -> String {
            binds.push(v);
            match d {
                Dialect::Sqlite => "?".to_owned(),
                Dialect::Postgres => format!("${}", binds.len()),
            }
        };
        for f in &self.filters {
            let op = match f.op {
                "eq" => "=",
                "gt" => ">",
                "gte" => ">=",
                "lt" => "<",
                "lte" => "<=",
                _ => "=",
            };
            let p = ph(&mut binds, f.value.clone());
            sql.push_str(&format!(" AND {} {op} {p}", cols[f.field]));
        }
        if let Some(k) = &self.keyword {
            match d {
                Dialect::Sqlite if k.chars().count() >= 3 => {
                    let p = ph(&mut binds, V::Text(format!("\"{}\"", k.replace('"', "\"\""))));
                    sql.push_str(&format!(" AND id IN (SELECT rowid FROM {table}_fts WHERE {table}_fts MATCH {p})"));
                }
                Dialect::Sqlite => {
                    let p = ph(&mut binds, V::Text(format!("%{}%", like_escape(k))));
                    sql.push_str(&format!(
                        " AND id IN (SELECT rowid FROM {table}_fts WHERE body LIKE {p} ESCAPE '\\')"
                    ));
                }
                Dialect::Postgres => {
                    let p = ph(&mut binds, V::Text(format!("%{}%", like_escape(k))));
                    sql.push_str(&format!(" AND search_text ILIKE {p} ESCAPE '\\'"));
                }
            }
        }
        let (lt_gt, dir) = if self.desc { ("<", "DESC") } else { (">", "ASC") };
        match self.sort {
            None => {
                if let Some((_, id)) = &self.after {
                    let p = ph(&mut binds, V::Int(*id));
                    sql.push_str(&format!(" AND id {lt_gt} {p}"));
                }
                sql.push_str(&format!(" ORDER BY id {dir}"));
            }
            Some(s) => {
                let col = &cols[s];
                match &self.after {
                    None => {}
                    Some((V::Null, id)) => {
                        let p = ph(&mut binds, V::Int(*id));
                        sql.push_str(&format!(" AND {col} IS NULL AND id {lt_gt} {p}"));
                    }
                    Some((v, id)) => {
                        let p1 = ph(&mut binds, v.clone());
                        let p2 = ph(&mut binds, v.clone());
                        let p3 = ph(&mut binds, V::Int(*id));
                        sql.push_str(&format!(
                            " AND ({col} {lt_gt} {p1} OR ({col} = {p2} AND id {lt_gt} {p3}) OR {col} IS NULL)"
                        ));
                    }
                }
                if plain_order {
                    sql.push_str(&format!(" ORDER BY {col} {dir}, id {dir}"));
                } else {
                    sql.push_str(&format!(" ORDER BY ({col} IS NULL) ASC, {col} {dir}, id {dir}"));
                }
            }
        }
        let p = ph(&mut binds, V::Int(i64::from(self.limit)));
        sql.push_str(&format!(" LIMIT {p}"));
        (sql, binds)
    }
}

pub fn record_columns(cols: &[String]) -> String {
    let mut all: Vec<String> = ["id", "version", "created_at", "created_by", "updated_at", "updated_by"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    all.extend(cols.iter().cloned());
    all.join(", ")
}

fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
pub fn pct(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The SQL identifier of a table or field id (crates/store/src/ut.rs: `t_`/`f_` and the UUID
/// in simple hex form).
pub fn ident(prefix: &str, uuid: &str) -> String {
    format!("{prefix}{}", uuid.replace('-', "").to_ascii_lowercase())
}
