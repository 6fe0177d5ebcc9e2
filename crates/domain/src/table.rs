//! User tables (the web database): a tenant's tables, their typed fields and the rules on
//! them, and the parsing of submitted values into typed values. Storage turns each table into
//! a real SQL table whose table and column names come only from these ids.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use time::{Date, OffsetDateTime};

use crate::error::FieldErrors;
use crate::ids::{TableId, TenantId};

fn clean_name(s: &str, max: usize) -> Result<String, &'static str> {
    let s = s.trim();
    if s.is_empty() {
        return Err("required");
    }
    if s.chars().count() > max {
        return Err("too_long");
    }
    if s.chars().any(|c| c.is_control() || is_invisible_format(c)) {
        return Err("control_chars");
    }
    Ok(s.to_owned())
}

/// A full-width form of an ASCII character, or the ideographic space.
fn is_fullwidth(c: char) -> bool {
    matches!(c, '\u{FF01}'..='\u{FF5E}' | '\u{3000}')
}

/// Full-width ASCII (U+FF01–U+FF5E) and the ideographic space as the ASCII they stand for.
pub fn halfwidth(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{3000}' => ' ',
            c => c,
        })
        .collect()
}

/// A control character other than a line end or a tab: none is stored in any text (and
/// PostgreSQL cannot store NUL).
pub fn is_stray_control(c: char) -> bool {
    c.is_control() && !matches!(c, '\n' | '\r' | '\t')
}

/// Checks a description (of a table or a group): at most 2,000 characters, lines and tabs
/// allowed, no other control character (PostgreSQL cannot store NUL, and none is meant to be
/// there).
pub fn check_description(s: &str) -> Result<(), &'static str> {
    if s.chars().count() > 2000 {
        return Err("too_long");
    }
    if s.chars().any(is_stray_control) {
        return Err("control_chars");
    }
    Ok(())
}

/// Characters that change how a name is shown without being seen: the bidirectional
/// embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069, which can make a name read
/// as another, "Trojan Source"), the zero-width space and the byte order mark (two names that
/// look the same). The joiners (U+200C, U+200D, used by emoji and some scripts) and the
/// direction marks (U+200E, U+200F) stay allowed.
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200B}' | '\u{FEFF}')
}

/// A table's or field's display name: any text (Japanese, symbols, quotes), 1 to 100 characters,
/// no control characters. It is never used as an SQL identifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Name(String);

impl Name {
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        clean_name(s, 100).map(Self)
    }
    /// A name as the catalogue holds it, read back without [`Name::parse`]'s checks: those
    /// have been tightened since (zero-width spaces and direction controls are refused now),
    /// and a name stored before must still load, to be shown and renamed, rather than stop its
    /// table, group or view from loading at all.
    pub fn stored(s: &str) -> Result<Self, &'static str> {
        if s.trim().is_empty() { Err("required") } else { Ok(Self(s.to_owned())) }
    }
    /// A field's name: as [`Name::parse`], and not one that requests already use to name
    /// something else (a field id, or a system field by its column or name, or `id`), which
    /// would make the field unreachable by name in values, filters and sorts.
    pub fn parse_field(s: &str) -> Result<Self, &'static str> {
        let n = Self::parse(s)?;
        let t = n.0.as_str();
        let system = SYSTEM_FIELDS.iter().any(|(_, col, name)| t.eq_ignore_ascii_case(col) || t == *name);
        if system || t.eq_ignore_ascii_case("id") || t.parse::<crate::ids::FieldId>().is_ok() {
            return Err("reserved_name");
        }
        Ok(n)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The kind of a field and what it stores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum FieldKind {
    Text,
    Multiline,
    Integer,
    /// Exact decimal with `scale` digits after the point (0..=6), stored as a scaled integer.
    Decimal {
        scale: u8,
    },
    Date,
    DateTime,
    Checkbox,
    /// One of `choices`.
    Choice {
        choices: Vec<String>,
    },
    /// Any number of `choices`, stored in the order of the list, one per line.
    MultiChoice {
        choices: Vec<String>,
    },
    /// A number given to each record when it is created (its record number), shown with a
    /// prefix and at least `digits` digits (`INV-000042`); never written by anyone.
    AutoNumber {
        #[serde(default)]
        prefix: String,
        #[serde(default = "default_digits")]
        digits: u8,
    },
    Email,
    Url,
    /// A telephone number: digits, spaces, `+ - ( )`, at most 30 characters.
    Phone,
    /// A user of the tenant, stored by id.
    User,
    /// A link to a record of another table (stored by record id), shown by one of that
    /// record's fields (`show`, the lookup) to users who may see it.
    Link {
        table: crate::ids::TableId,
        show: crate::ids::FieldId,
    },
}

fn default_digits() -> u8 {
    6
}

/// How a kind is stored: the storage layer maps these to column types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    Text,
    Int,
    Bool,
}

impl FieldKind {
    pub fn storage(&self) -> Storage {
        match self {
            FieldKind::Integer
            | FieldKind::Decimal { .. }
            | FieldKind::DateTime
            | FieldKind::Link { .. }
            | FieldKind::AutoNumber { .. } => Storage::Int,
            FieldKind::Checkbox => Storage::Bool,
            _ => Storage::Text,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            FieldKind::Text => "text",
            FieldKind::Multiline => "multiline",
            FieldKind::Integer => "integer",
            FieldKind::Decimal { .. } => "decimal",
            FieldKind::Date => "date",
            FieldKind::DateTime => "date_time",
            FieldKind::Checkbox => "checkbox",
            FieldKind::Choice { .. } => "choice",
            FieldKind::Email => "email",
            FieldKind::Url => "url",
            FieldKind::Phone => "phone",
            FieldKind::User => "user",
            FieldKind::Link { .. } => "link",
            FieldKind::MultiChoice { .. } => "multi_choice",
            FieldKind::AutoNumber { .. } => "auto_number",
        }
    }

    /// Whether values of this kind are set by Daicho, never by a user.
    /// Whether the field's column has an index for filtering and sorting: not multi-line text
    /// or a multiple choice (long values no index entry can hold; a multiple choice is
    /// filtered by the choices it includes, which an index on the whole value does not find).
    pub fn is_indexed(&self) -> bool {
        !matches!(self, FieldKind::Multiline | FieldKind::MultiChoice { .. })
    }

    pub fn is_generated(&self) -> bool {
        matches!(self, FieldKind::AutoNumber { .. })
    }
}

/// Rules a field's values must follow.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FieldRules {
    pub required: bool,
    pub unique: bool,
    /// Characters, for text kinds (default 1,000 for text, 20,000 for multi-line).
    pub max_length: Option<u32>,
    /// Bounds for integer and decimal fields, in the field's own unit (decimals as text).
    pub min: Option<String>,
    pub max: Option<String>,
    /// The value a new record gets when none is given (as it would be typed).
    pub default: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldDef {
    pub id: crate::ids::FieldId,
    pub name: Name,
    pub kind: FieldKind,
    pub rules: FieldRules,
    pub position: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDef {
    pub id: TableId,
    pub tenant_id: TenantId,
    pub name: Name,
    pub description: String,
    pub fields: Vec<FieldDef>,
    pub created_at: OffsetDateTime,
}

/// The system fields every record has: when and by whom it was created and last updated.
/// They are not in a table's catalogue; they have fixed ids, map to the record's own columns,
/// and are read-only. A list may show, sort and filter by them like any field.
pub const SYSTEM_FIELDS: [(u128, &str, &str); 4] = [
    (1, "created_at", "作成日時 Created at"),
    (2, "created_by", "作成者 Created by"),
    (3, "updated_at", "更新日時 Updated at"),
    (4, "updated_by", "更新者 Updated by"),
];

/// The record column of a system field.
pub fn system_column(id: crate::ids::FieldId) -> Option<&'static str> {
    SYSTEM_FIELDS.iter().find(|(n, _, _)| id.as_uuid().as_u128() == *n).map(|(_, c, _)| *c)
}

/// The system fields as field definitions: the times as date-times, the authors as users.
pub fn system_fields() -> Vec<FieldDef> {
    SYSTEM_FIELDS
        .iter()
        .enumerate()
        .map(|(i, (n, col, name))| FieldDef {
            id: crate::ids::FieldId::from_uuid(uuid::Uuid::from_u128(*n)),
            name: Name((*name).to_owned()),
            kind: if col.ends_with("_at") { FieldKind::DateTime } else { FieldKind::User },
            rules: FieldRules::default(),
            position: 10_000 + i as u32,
        })
        .collect()
}

impl TableDef {
    /// A field of the table, or a system field, by id.
    pub fn field(&self, id: crate::ids::FieldId) -> Option<FieldDef> {
        self.fields.iter().find(|f| f.id == id).cloned().or_else(|| system_fields().into_iter().find(|f| f.id == id))
    }
}

/// A typed value as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    Null,
    Text(String),
    Int(i64),
    Bool(bool),
}

const MAX_TEXT: u32 = 1_000;
/// The most bytes (UTF-8) of a single-line text: with the record id it fits one entry of
/// PostgreSQL's B-tree index (at most 2,704 bytes; every single-line field is indexed for
/// filtering and sorting). 1,000 characters of Latin text fit; of Japanese, about 800.
pub const MAX_TEXT_BYTES: usize = 2_400;
const MAX_MULTILINE: u32 = 20_000;
pub const MAX_FIELDS: usize = 200;
/// The most tables a tenant may have, those in the trash included (each is an SQL table with
/// its indexes in the database every tenant shares).
pub const MAX_TABLES: usize = 500;
const MAX_CHOICES: usize = 500;

impl FieldDef {
    /// Checks a new field's definition.
    pub fn validate(kind: &FieldKind, rules: &FieldRules) -> Result<(), FieldErrors> {
        let mut e = FieldErrors::new();
        match kind {
            FieldKind::Decimal { scale } if *scale > 6 => e.push("scale", "out_of_range"),
            FieldKind::Choice { choices } | FieldKind::MultiChoice { choices } => {
                if choices.is_empty() {
                    e.push("choices", "no_choices");
                } else if choices.len() > MAX_CHOICES {
                    e.push("choices", "too_many_choices");
                }
                let mut seen = std::collections::HashSet::new();
                for c in choices {
                    if clean_name(c, 100).is_err() {
                        e.push("choices", "bad_choice");
                        break;
                    }
                    if !seen.insert(c.trim()) {
                        e.push("choices", "duplicate_choice");
                        break;
                    }
                }
            }
            FieldKind::AutoNumber { prefix, digits } => {
                if *digits > 12 {
                    e.push("digits", "out_of_range");
                }
                if prefix.chars().count() > 20 {
                    e.push("prefix", "out_of_range");
                } else if prefix.chars().any(|c| c.is_control() || is_invisible_format(c)) {
                    // (As in names: a direction control or a zero-width character would make
                    // every record number read differently from what it is.)
                    e.push("prefix", "control_chars");
                }
                if rules.required || rules.unique || rules.default.is_some() {
                    e.push("rules", "not_for_this_type");
                }
            }
            _ => {}
        }
        if let Some(n) = rules.max_length {
            let cap = if matches!(kind, FieldKind::Multiline) { MAX_MULTILINE } else { MAX_TEXT };
            if n == 0 || n > cap || !matches!(kind, FieldKind::Text | FieldKind::Multiline) {
                e.push("max_length", "out_of_range");
            }
        }
        for (name, bound) in [("min", &rules.min), ("max", &rules.max)] {
            if bound.is_some() && bound_of(kind, bound).is_none() {
                e.push(name, "out_of_range");
            }
        }
        if let (Some(lo), Some(hi)) = (bound_of(kind, &rules.min), bound_of(kind, &rules.max))
            && lo > hi
        {
            e.push("max", "min_above_max");
        }
        // A checkbox always holds a value (ticked or not): "required" would be shown and never
        // enforced, so it is refused rather than taken.
        if rules.required && matches!(kind, FieldKind::Checkbox) {
            e.push("required", "not_for_this_type");
        }
        if rules.unique && matches!(kind, FieldKind::Checkbox | FieldKind::Multiline | FieldKind::MultiChoice { .. }) {
            e.push("unique", "not_for_this_type");
        }
        if rules.unique && rules.default.is_some() {
            // The default would fill the first record that leaves the field empty, and every
            // later one would collide with it.
            e.push("default", "not_with_unique");
        }
        if let Some(d) = &rules.default {
            let probe = FieldDef {
                id: crate::ids::FieldId::new_random(),
                name: Name(String::from("default")),
                kind: kind.clone(),
                rules: FieldRules { required: false, unique: false, default: None, ..rules.clone() },
                position: 0,
            };
            let ok = !matches!(kind, FieldKind::User | FieldKind::Link { .. })
                && d.chars().count() <= 1000
                // A blank default is no value: it would let a required field be left empty by
                // everyone who may not write it.
                && probe.parse(&Json::String(d.clone())).is_ok_and(|c| c != Cell::Null);
            if !ok {
                e.push("default", "bad_default");
            }
        }
        if e.is_empty() { Ok(()) } else { Err(e) }
    }

    fn bound(&self, b: &Option<String>) -> Option<i64> {
        bound_of(&self.kind, b)
    }

    /// Parses a submitted JSON value into what is stored, or the error code to show.
    pub fn parse(&self, v: &Json) -> Result<Cell, &'static str> {
        // Numbers, dates, addresses and record numbers typed with a Japanese input method come
        // in full width (１２３, ０３－１２３４, ｉｎｆｏ＠…): read as the ASCII they stand for.
        // An e-mail or web address is converted only when it does not parse as typed: its
        // path may hold full-width letters that mean what they say, and an address stored as
        // typed (before this conversion) stays the same value when it is sent back.
        let ascii_kind = matches!(
            self.kind,
            FieldKind::Integer
                | FieldKind::Decimal { .. }
                | FieldKind::Date
                | FieldKind::DateTime
                | FieldKind::Phone
                | FieldKind::Link { .. }
        );
        let as_typed_first = matches!(self.kind, FieldKind::Email | FieldKind::Url);
        match v {
            Json::String(s) if ascii_kind && s.chars().any(is_fullwidth) => {
                self.parse_as_typed(&Json::String(halfwidth(s)))
            }
            Json::String(s) if as_typed_first && s.chars().any(is_fullwidth) => {
                self.parse_as_typed(v).or_else(|_| self.parse_as_typed(&Json::String(halfwidth(s))))
            }
            _ => self.parse_as_typed(v),
        }
    }

    fn parse_as_typed(&self, v: &Json) -> Result<Cell, &'static str> {
        let empty = match v {
            Json::Null => true,
            Json::String(s) => s.trim().is_empty(),
            Json::Array(a) => a.is_empty(),
            _ => false,
        };
        if empty {
            if self.rules.required && !matches!(self.kind, FieldKind::Checkbox) {
                return Err("required");
            }
            return Ok(match self.kind {
                FieldKind::Checkbox => Cell::Bool(false),
                _ => Cell::Null,
            });
        }
        let text = || -> Result<String, &'static str> {
            match v {
                Json::String(s) => Ok(s.clone()),
                Json::Number(n) => Ok(n.to_string()),
                _ => Err("wrong_type"),
            }
        };
        if let FieldKind::MultiChoice { choices } = &self.kind {
            return multi_choice(choices, v);
        }
        if self.kind.is_generated() {
            return Err("read_only");
        }
        let cell = match &self.kind {
            FieldKind::Text | FieldKind::Multiline => {
                let s = text()?;
                let single = matches!(self.kind, FieldKind::Text);
                let s = if single { s.trim().to_owned() } else { s };
                let cap = self.rules.max_length.unwrap_or(if single { MAX_TEXT } else { MAX_MULTILINE });
                if s.chars().count() > cap as usize || (single && s.len() > MAX_TEXT_BYTES) {
                    return Err("too_long");
                }
                let bad_control = |c: char| if single { c.is_control() } else { is_stray_control(c) };
                if s.chars().any(bad_control) {
                    return Err("control_chars");
                }
                Cell::Text(s)
            }
            FieldKind::Integer => match v {
                Json::Number(n) => Cell::Int(n.as_i64().ok_or("not_a_number")?),
                Json::String(s) => Cell::Int(ungrouped(s.trim()).parse().map_err(|_| "not_a_number")?),
                _ => return Err("wrong_type"),
            },
            FieldKind::Decimal { scale } => Cell::Int(parse_decimal(&text()?, *scale)?),
            FieldKind::Date => Cell::Text(parse_date(&text()?)?.to_string()),
            FieldKind::DateTime => {
                let s = text()?;
                let t = OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339)
                    .map_err(|_| "bad_datetime")?;
                // Only instants that read back in UTC as RFC 3339 (years 0001 to 9999), so
                // that what is stored is always shown (and a form saved again keeps it).
                let ms = (t.unix_timestamp_nanos() / 1_000_000) as i64;
                // 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z
                if !(-62_135_596_800_000..=253_402_300_799_999).contains(&ms) {
                    return Err("bad_datetime");
                }
                Cell::Int(ms)
            }
            FieldKind::Checkbox => match v {
                Json::Bool(b) => Cell::Bool(*b),
                // As forms, files and people write a ticked box (the grid shows ✓), or not.
                Json::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                    "true" | "on" | "1" | "yes" | "✓" | "✔" | "はい" => Cell::Bool(true),
                    "" | "false" | "off" | "0" | "no" | "いいえ" => Cell::Bool(false),
                    _ => return Err("not_a_checkbox"),
                },
                _ => return Err("wrong_type"),
            },
            FieldKind::Choice { choices } => {
                let s = text()?;
                let s = s.trim();
                if !choices.iter().any(|c| c.trim() == s) {
                    return Err("choice");
                }
                Cell::Text(s.to_owned())
            }
            FieldKind::Email => {
                let s = text()?;
                crate::user::Email::parse(&s)?;
                Cell::Text(s.trim().to_owned())
            }
            FieldKind::Url => {
                let s = text()?.trim().to_owned();
                let lower = s.to_ascii_lowercase();
                // Only web addresses: a javascript: or data: URL in a record would be a link trap.
                if !(lower.starts_with("https://") || lower.starts_with("http://"))
                    || s.len() > 2000
                    || s.chars().any(|c| c.is_whitespace() || c.is_control())
                {
                    return Err("url_format");
                }
                Cell::Text(s)
            }
            FieldKind::Phone => {
                let s = text()?.trim().to_owned();
                let digits = s.chars().filter(char::is_ascii_digit).count();
                if s.chars().count() > 30
                    || digits < 2
                    || !s.chars().all(|c| c.is_ascii_digit() || matches!(c, ' ' | '+' | '-' | '(' | ')'))
                {
                    return Err("phone_format");
                }
                Cell::Text(s)
            }
            FieldKind::User => {
                // The id of a user; that the user belongs to the tenant is checked where users
                // are known (the web layer, against the tenant's directory).
                let s = text()?.trim().to_owned();
                let id: crate::ids::UserId = s.parse().map_err(|_| "unknown_user")?;
                Cell::Text(id.to_string())
            }
            FieldKind::Link { .. } => {
                // A record id; that the record exists and may be seen is checked where tables
                // are known (the web layer, through the user's view capability on the target).
                let n = match v {
                    Json::Number(n) => n.as_i64(),
                    Json::String(s) => s.trim().trim_start_matches('#').parse::<i64>().ok(),
                    _ => None,
                };
                Cell::Int(n.filter(|n| *n > 0).ok_or("unknown_record")?)
            }
            // Handled above.
            FieldKind::MultiChoice { .. } | FieldKind::AutoNumber { .. } => return Err("read_only"),
        };
        if let Cell::Int(n) = cell
            && matches!(self.kind, FieldKind::Integer | FieldKind::Decimal { .. })
        {
            if self.bound(&self.rules.min).is_some_and(|m| n < m) {
                return Err("below_min");
            }
            if self.bound(&self.rules.max).is_some_and(|m| n > m) {
                return Err("above_max");
            }
        }
        Ok(cell)
    }

    /// The stored value as JSON for the API.
    pub fn present(&self, c: &Cell) -> Json {
        match (c, &self.kind) {
            (Cell::Null, _) => Json::Null,
            (Cell::Int(n), FieldKind::Decimal { scale }) => Json::String(format_decimal(*n, *scale)),
            (Cell::Int(n), FieldKind::DateTime) => {
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(*n) * 1_000_000)
                    .ok()
                    .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
                    .map(Json::String)
                    .unwrap_or(Json::Null)
            }
            (Cell::Int(n), FieldKind::AutoNumber { prefix, digits }) => {
                Json::String(format!("{prefix}{n:0width$}", width = usize::from(*digits)))
            }
            (Cell::Int(n), _) => Json::from(*n),
            (Cell::Bool(b), _) => Json::Bool(*b),
            (Cell::Text(s), FieldKind::MultiChoice { .. }) => {
                Json::Array(s.split('\n').filter(|c| !c.is_empty()).map(|c| Json::String(c.to_owned())).collect())
            }
            (Cell::Text(s), _) => Json::String(s.clone()),
        }
    }
}

/// Kinds a field may be changed into: its own kind (a change of its rules or choices), or
/// another kind but not a link, user or auto-number (their values would need checks against
/// other tables, the directory or the database); nothing for a generated field. A user field
/// keeps its kind: its values are user ids, which as text would mean nothing to a reader (and
/// could not be made users again).
pub fn retype_allowed(from: &FieldKind, to: &FieldKind) -> bool {
    // (A link may show another field of the records it links to: its values stay the same
    // record numbers.)
    let same_target =
        matches!((from, to), (FieldKind::Link { table: a, .. }, FieldKind::Link { table: b, .. }) if a == b);
    !from.is_generated()
        && (from == to
            || same_target
            || (!matches!(from, FieldKind::User)
                && !matches!(to, FieldKind::Link { .. } | FieldKind::User | FieldKind::AutoNumber { .. })))
}

/// What a change of kind loses of every value even when each one converts: a date-time made
/// a date keeps only its day; a link made anything else keeps the record number, not the link
/// (and there is no way back to a link). `None` when nothing is lost that the report of values
/// that do not convert would not show.
pub fn retype_loses(from: &FieldKind, to: &FieldKind) -> Option<&'static str> {
    match (from, to) {
        (FieldKind::DateTime, FieldKind::Date) => Some("loses_time_of_day"),
        (FieldKind::Link { .. }, to) if !matches!(to, FieldKind::Link { .. }) => Some("loses_links"),
        _ => None,
    }
}

/// Whether converting `original`, a value of field `old`, into `converted`, of `new` (the same
/// field retyped), loses part of what the value says rather than only how it is written: a
/// number that held more than its digits ("00123" made 123: a code's leading zeros; a phone
/// number's), a text that comes back other than it was (trimmed, its case or form changed).
/// Not the form alone: "+5", "1,200" and "5" made numbers read back as the same numbers
/// (5.00 is 5); a date or a date-time keeps its day or instant however it was written
/// ("2026/4/1", an instant in UTC shown at the tenant's offset); a box takes "はい" for ticked
/// and a choice its own text. Never for an empty value, within one kind (its values stay), nor
/// for a change whose loss of every value is said already ([`retype_loses`]). The old field's
/// rules are left out of the way back: only the reading counts, not whether the old rules
/// would take the value again.
pub fn conversion_alters(old: &FieldDef, new: &FieldDef, original: &Cell, converted: &Cell, offset: i32) -> bool {
    if old.kind == new.kind || matches!(original, Cell::Null) || retype_loses(&old.kind, &new.kind).is_some() {
        return false;
    }
    match new.kind {
        FieldKind::Date
        | FieldKind::DateTime
        | FieldKind::Checkbox
        | FieldKind::Choice { .. }
        | FieldKind::MultiChoice { .. } => return false,
        _ => {}
    }
    let back = FieldDef { rules: FieldRules::default(), ..old.clone() };
    let Ok(back) = convert(new, &back, converted, offset) else { return true };
    if matches!(new.kind, FieldKind::Integer | FieldKind::Decimal { .. }) {
        let text = |c: &Cell, f: &FieldDef| match f.present(c) {
            Json::String(s) => s,
            other => other.to_string(),
        };
        return number_text(&text(original, old)) != number_text(&text(&back, old));
    }
    back != *original
}

/// A number's text without what does not change its value: width, a plus sign, thousands
/// separators, trailing decimal zeros. Leading zeros stay (they are what a code loses).
fn number_text(s: &str) -> String {
    let s = halfwidth(s.trim());
    let s = s.strip_prefix('+').unwrap_or(&s).replace(',', "");
    trim_decimal_zeros(&s)
}

/// A value as a report of a change of type shows it: text as it is, a date-time at the
/// tenant's offset (`offset` minutes from UTC, as its pages show it), an empty value as
/// nothing, anything else as its JSON ("true", 5, a list of choices).
pub fn shown_text(f: &FieldDef, c: &Cell, offset: i32) -> String {
    match f.present(c) {
        Json::Null => String::new(),
        Json::String(s) if matches!(f.kind, FieldKind::DateTime) => time_at(&s, offset).unwrap_or(s),
        Json::String(s) => s,
        other => other.to_string(),
    }
}

/// A minimum or maximum as the field stores it (decimals scaled), if it is one for this kind.
fn bound_of(kind: &FieldKind, b: &Option<String>) -> Option<i64> {
    // (Typed in full width as well, as values are.)
    let b = halfwidth(b.as_deref()?);
    match kind {
        FieldKind::Integer => b.trim().parse().ok(),
        FieldKind::Decimal { scale } => parse_decimal(&b, *scale).ok(),
        _ => None,
    }
}

/// Converts a stored value of field `old` into one of field `new` (same field, new type), as if
/// the value had been typed again: numbers, dates and choices as text, checkboxes as true or
/// false, multiple choices one per line. The error code says why a value does not convert.
/// `offset` is the tenant's offset from UTC in minutes: the days a date-time falls on and a
/// date starts at are the tenant's, as its pages show them.
pub fn convert(old: &FieldDef, new: &FieldDef, c: &Cell, offset: i32) -> Result<Cell, &'static str> {
    // An empty value in a field that was required already is not this change's doing (the
    // field was added, or restored from the trash, after the record was made): it stays empty,
    // as it was, rather than block every later change of the field's type or rules.
    let empty = || match new.parse(&Json::Null) {
        Err("required") if old.rules.required => Ok(Cell::Null),
        r => r,
    };
    let text = match old.present(c) {
        Json::Null => return empty(),
        Json::String(s) => s,
        Json::Number(n) => n.to_string(),
        Json::Bool(b) => b.to_string(),
        // (Choices one per line; on one line, as a single-line text holds them, by commas,
        // as a multiple choice also reads them back.)
        // (A choice holding a comma keeps one per line: on one line it would read back as two.)
        Json::Array(items) => {
            let items: Vec<&str> = items.iter().filter_map(Json::as_str).collect();
            let one_line = matches!(new.kind, FieldKind::Text) && !items.iter().any(|i| i.contains(','));
            items.join(if one_line { ", " } else { "\n" })
        }
        Json::Object(_) => return Err("wrong_type"),
    };
    // A value that was only false (an unticked checkbox) is empty in a type that has no false.
    // (An unticked box was a value: as empty in the new kind, a required rule refuses it.)
    if matches!(c, Cell::Bool(false)) && !matches!(new.kind, FieldKind::Checkbox) {
        return new.parse(&Json::Null);
    }
    new.parse(&Json::String(retyped_text(&old.kind, &new.kind, text, offset)))
}

/// A value's text (or a rule's: a default, a bound) as a field of kind `from` shows it, made
/// into what a field of kind `to` takes for the same value. `offset`: the tenant's offset from
/// UTC in minutes.
pub fn retyped_text(from: &FieldKind, to: &FieldKind, text: String, offset: i32) -> String {
    match (from, to) {
        // A number keeps its value, not its old number of decimals: 1.50 fits one decimal,
        // 3.00 an integer (1.25 fits neither, and is reported).
        (FieldKind::Decimal { .. }, FieldKind::Decimal { .. } | FieldKind::Integer) => trim_decimal_zeros(&text),
        // A date-time becomes the date it falls on in the tenant's time zone (the one its pages
        // show: 2026-11-28T15:30:00Z is the 29th in Japan); a date becomes the start of that
        // day there.
        (FieldKind::DateTime, FieldKind::Date) => date_at(&text, offset).unwrap_or(text),
        // Into text, a date-time is written as its pages show it, at the tenant's offset
        // (2026-04-01T09:30:00+09:00, not the UTC 2026-04-01T00:30:00Z).
        (FieldKind::DateTime, FieldKind::Text | FieldKind::Multiline) => time_at(&text, offset).unwrap_or(text),
        (FieldKind::Date, FieldKind::DateTime) if !text.trim().is_empty() => {
            format!("{}T00:00:00{}", text.trim(), offset_text(offset))
        }
        _ => text,
    }
}

/// An RFC 3339 instant written at `offset` minutes from UTC.
fn time_at(text: &str, offset: i32) -> Option<String> {
    let t = OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339).ok()?;
    let off = time::UtcOffset::from_whole_seconds(offset.checked_mul(60)?).ok()?;
    t.checked_to_offset(off)?.format(&time::format_description::well_known::Rfc3339).ok()
}

/// A date as people and spreadsheets write it: 2026-04-01, or 2026/4/1 (as Excel saves a date
/// in Japan), digits also full width. `no_such_date` for one of that shape that the calendar
/// lacks (2026-02-30), `bad_date` for anything else.
pub fn parse_date(s: &str) -> Result<Date, &'static str> {
    let s = halfwidth(s.trim());
    let parts: Vec<&str> = s.split(['-', '/']).collect();
    let number = |p: &str, digits: std::ops::RangeInclusive<usize>| {
        if digits.contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()) { p.parse::<u32>().ok() } else { None }
    };
    // (One separator throughout: 2026-04/01 is not a date.)
    let fields = match parts.as_slice() {
        [y, m, d] if s.matches('-').count() == 2 || s.matches('/').count() == 2 => {
            (number(y, 4..=4), number(m, 1..=2), number(d, 1..=2))
        }
        _ => (None, None, None),
    };
    let (Some(y), Some(m), Some(d)) = fields else {
        return Err("bad_date");
    };
    let month = time::Month::try_from(u8::try_from(m).map_err(|_| "bad_date")?).map_err(|_| "no_such_date")?;
    Date::from_calendar_date(y as i32, month, u8::try_from(d).map_err(|_| "bad_date")?).map_err(|_| "no_such_date")
}

/// A date and time written without an offset, as people and spreadsheets write it
/// ("2026-04-01 09:30", "2026/4/1 9:30:15", also with a "T"), taken at `offset` minutes from
/// UTC (the tenant's time zone) and written as RFC 3339; `None` for anything else (a value with
/// an offset of its own is read as it is).
pub fn local_datetime(s: &str, offset: i32) -> Option<String> {
    let s = halfwidth(s.trim());
    // A date alone ("2026-11-30", as a filter or a spreadsheet may give it) is its start.
    let (date, time) = match s.split_once([' ', 'T']) {
        Some(parts) => parts,
        None if parse_date(&s).is_ok() => (s.as_str(), "00:00"),
        None => return None,
    };
    let date = parse_date(date).ok()?;
    let time = time.trim();
    let parts: Vec<&str> = time.split(':').collect();
    let num = |p: &str, max: u32| {
        (matches!(p.len(), 1 | 2) && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse::<u32>().ok())
            .flatten()
            .filter(|n| *n <= max)
    };
    let (h, m, sec, nanos) = match parts.as_slice() {
        [h, m] => (num(h, 23)?, num(m, 59)?, 0, 0),
        [h, m, s] => {
            let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
            if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let nanos = if frac.is_empty() { 0 } else { format!("{frac:0<9}").parse::<u32>().ok()? };
            (num(h, 23)?, num(m, 59)?, num(whole, 59)?, nanos)
        }
        _ => return None,
    };
    let t = time::Time::from_hms_nano(h as u8, m as u8, sec as u8, nanos).ok()?;
    let off = time::UtcOffset::from_whole_seconds(offset.checked_mul(60)?).ok()?;
    time::PrimitiveDateTime::new(date, t).assume_offset(off).format(&time::format_description::well_known::Rfc3339).ok()
}

/// A stored date-time (ms since the epoch) as people read it at `offset` minutes from UTC:
/// "2026-04-01 09:30", with seconds ("2026-04-01 09:30:15") when it has them or `seconds` asks
/// for them, and milliseconds when it has them. `local_datetime` reads each form back.
pub fn local_text(ms: i64, offset: i32, seconds: bool) -> Option<String> {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    let t = t.checked_to_offset(time::UtcOffset::from_whole_seconds(offset.checked_mul(60)?).ok()?)?;
    let mut s = format!("{} {:02}:{:02}", t.date(), t.hour(), t.minute());
    if seconds || t.second() != 0 || t.millisecond() != 0 {
        s.push_str(&format!(":{:02}", t.second()));
    }
    if t.millisecond() != 0 {
        s.push_str(&format!(".{:03}", t.millisecond()));
    }
    Some(s)
}

/// The date (YYYY-MM-DD) on which an RFC 3339 instant falls at `offset` minutes from UTC.
fn date_at(text: &str, offset: i32) -> Option<String> {
    let t = OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339).ok()?;
    let off = time::UtcOffset::from_whole_seconds(offset.checked_mul(60)?).ok()?;
    // (Checked: an instant late on 9999-12-31 is past that year at an offset east of UTC.)
    Some(t.checked_to_offset(off)?.date().to_string())
}

/// An offset from UTC in minutes as RFC 3339 writes it: "+09:00", "-05:30", "+00:00".
pub fn offset_text(offset: i32) -> String {
    let (sign, m) = if offset < 0 { ('-', offset.unsigned_abs()) } else { ('+', offset.unsigned_abs()) };
    format!("{sign}{:02}:{:02}", m / 60, m % 60)
}

/// "1.50" as "1.5", "3.00" as "3": the same decimal number without zeros after its last
/// significant decimal (what a field with fewer decimals, or an integer, accepts when the
/// value fits); anything else as it is (trimmed).
pub fn trim_decimal_zeros(s: &str) -> String {
    let t = s.trim();
    match t.split_once('.') {
        Some((int, frac)) if !frac.is_empty() && frac.bytes().all(|b| b.is_ascii_digit()) => {
            let frac = frac.trim_end_matches('0');
            let int = if matches!(int, "" | "-" | "+") { format!("{int}0") } else { int.to_owned() };
            if frac.is_empty() { int } else { format!("{int}.{frac}") }
        }
        _ => t.to_owned(),
    }
}

/// A multiple-choice value: a JSON list of choices, or text with one choice per line (as
/// Excel and kintone write them in CSV), or separated by commas; stored in the order of the
/// field's list, one per line, each at most once.
fn multi_choice(choices: &[String], v: &Json) -> Result<Cell, &'static str> {
    let given: Vec<String> = match v {
        Json::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(|s| s.trim().to_owned()).ok_or("wrong_type"))
            .collect::<Result<_, _>>()?,
        Json::String(s) => {
            let lines: Vec<String> = s.lines().map(|l| l.trim().to_owned()).filter(|l| !l.is_empty()).collect();
            let known = |l: &String| choices.iter().any(|c| c.trim() == l);
            if lines.iter().all(known) {
                lines
            } else {
                s.split([',', '\n']).map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()).collect()
            }
        }
        _ => return Err("wrong_type"),
    };
    if given.iter().any(|g| !choices.iter().any(|c| c.trim() == g.as_str())) {
        return Err("choice");
    }
    let picked: Vec<&str> = choices.iter().map(|c| c.trim()).filter(|c| given.iter().any(|g| g == c)).collect();
    Ok(if picked.is_empty() { Cell::Null } else { Cell::Text(picked.join("\n")) })
}

/// A whole number as Excel writes it with thousands separators ("1,200", "-1,234,567"),
/// without them; anything else as it is (so "1,2" stays a mistake, not 12).
fn ungrouped(s: &str) -> std::borrow::Cow<'_, str> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    let mut groups = digits.split(',');
    let first_ok = groups.next().is_some_and(|g| (1..=3).contains(&g.len()) && g.bytes().all(|b| b.is_ascii_digit()));
    let rest: Vec<&str> = groups.collect();
    if first_ok && !rest.is_empty() && rest.iter().all(|g| g.len() == 3 && g.bytes().all(|b| b.is_ascii_digit())) {
        std::borrow::Cow::Owned(s.replace(',', ""))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// Parses "-12.345" with at most `scale` decimals into an integer scaled by 10^scale, exactly.
/// Thousands separators are taken in the whole part only, as Excel writes them ("1,234.5");
/// any other comma is refused ("1,5" is no 15, and no 1.5 either: the decimal mark is ".").
pub fn parse_decimal(s: &str, scale: u8) -> Result<i64, &'static str> {
    let s = s.trim();
    let s = match s.split_once('.') {
        Some((whole, frac)) => format!("{}.{frac}", ungrouped(whole)),
        None => ungrouped(s).into_owned(),
    };
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest.to_owned()),
        None => (false, s.strip_prefix('+').unwrap_or(&s).to_owned()),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((&digits, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > usize::from(scale)
    {
        return Err("not_a_decimal");
    }
    let mut text = String::from(if int.is_empty() { "0" } else { int });
    text.push_str(frac);
    for _ in frac.len()..usize::from(scale) {
        text.push('0');
    }
    // (Digits that are a number too large to hold are out of range, not mistyped.)
    let v: i64 = text.parse().map_err(|_| "out_of_range")?;
    Ok(if neg { -v } else { v })
}

pub fn format_decimal(v: i64, scale: u8) -> String {
    if scale == 0 {
        return v.to_string();
    }
    let p = 10i128.pow(u32::from(scale));
    let a = i128::from(v).abs();
    let sign = if v < 0 { "-" } else { "" };
    format!("{sign}{}.{:0width$}", a / p, a % p, width = usize::from(scale))
}

/// Limits of the table designer.
pub fn check_field_count(existing: usize) -> Result<(), FieldErrors> {
    if existing >= MAX_FIELDS { Err(FieldErrors::single("fields", "too_many")) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_date_time_retyped_to_a_date_east_of_utc_does_not_panic() {
        // 9999-12-31 20:00 UTC is in the year 10000 at +09:00: no date to give, kept as text
        // (which a date field then refuses), not a panic.
        let text = retyped_text(&FieldKind::DateTime, &FieldKind::Date, "9999-12-31T20:00:00Z".into(), 540);
        assert_eq!(text, "9999-12-31T20:00:00Z");
        assert_eq!(
            retyped_text(&FieldKind::DateTime, &FieldKind::Date, "2026-03-31T20:00:00Z".into(), 540),
            "2026-04-01"
        );
    }
    use serde_json::json;

    fn field(kind: FieldKind, rules: FieldRules) -> FieldDef {
        FieldDef { id: crate::ids::FieldId::new_random(), name: Name::parse("f").unwrap(), kind, rules, position: 0 }
    }

    #[test]
    fn a_conversion_that_changes_what_a_value_says_is_told_from_one_that_only_rewrites_it() {
        let plain = FieldRules::default();
        let alters = |from: FieldKind, to: FieldKind, value: Cell| {
            let (old, new) = (field(from, plain.clone()), field(to, plain.clone()));
            let converted = convert(&old, &new, &value, 540).expect("converts");
            conversion_alters(&old, &new, &value, &converted, 540)
        };
        let text = |s: &str| Cell::Text(s.into());
        // What the value says changes.
        assert!(alters(FieldKind::Text, FieldKind::Integer, text("00123")));
        assert!(alters(FieldKind::Phone, FieldKind::Integer, text("0312345678")));
        assert!(alters(FieldKind::Text, FieldKind::Integer, text("007")));
        assert!(alters(FieldKind::Text, FieldKind::Decimal { scale: 2 }, text("00.50")));
        assert!(alters(FieldKind::Multiline, FieldKind::Text, text("東京都 ")));
        // Only how the new kind writes it.
        assert!(!alters(FieldKind::Text, FieldKind::Integer, text("123")));
        assert!(!alters(FieldKind::Text, FieldKind::Integer, text("１２３")));
        assert!(!alters(FieldKind::Text, FieldKind::Integer, text("+5")));
        assert!(!alters(FieldKind::Text, FieldKind::Integer, text("1,200")));
        assert!(!alters(FieldKind::Text, FieldKind::Decimal { scale: 2 }, text("5")));
        assert!(!alters(FieldKind::Text, FieldKind::Decimal { scale: 2 }, text("0.5")));
        assert!(!alters(FieldKind::Text, FieldKind::Date, text("2026/4/1")));
        assert!(!alters(FieldKind::Text, FieldKind::DateTime, text("2026-04-01T00:00:00Z")));
        assert!(!alters(FieldKind::Text, FieldKind::Checkbox, text("はい")));
        assert!(!alters(FieldKind::Integer, FieldKind::Decimal { scale: 2 }, Cell::Int(5)));
        assert!(!alters(FieldKind::Decimal { scale: 2 }, FieldKind::Integer, Cell::Int(300)));
        assert!(!alters(FieldKind::Integer, FieldKind::Text, Cell::Int(-5)));
        assert!(!alters(FieldKind::Date, FieldKind::Text, text("2026-04-01")));
        assert!(!alters(FieldKind::Date, FieldKind::DateTime, text("2026-04-01")));
        assert!(!alters(FieldKind::Text, FieldKind::Multiline, text("東京都")));
        assert!(!alters(FieldKind::Checkbox, FieldKind::Text, Cell::Bool(true)));
        assert!(!alters(FieldKind::Text, FieldKind::Integer, Cell::Null));
        // A loss said for every value is not counted value by value.
        // (A date-time is stored as milliseconds since 1970.)
        assert!(!alters(FieldKind::DateTime, FieldKind::Date, Cell::Int(1_780_000_000_000)));
        assert!(!alters(FieldKind::DateTime, FieldKind::Text, Cell::Int(1_780_000_000_123)));
        assert_eq!(shown_text(&field(FieldKind::Integer, plain.clone()), &Cell::Null, 540), "");
        assert_eq!(shown_text(&field(FieldKind::Checkbox, plain.clone()), &Cell::Bool(true), 540), "true");
        let at = Cell::Int(1_780_000_000_000);
        assert_eq!(shown_text(&field(FieldKind::DateTime, plain.clone()), &at, 540), "2026-05-29T05:26:40+09:00");
    }

    #[test]
    fn phone_numbers_and_users_are_checked() {
        let phone = field(FieldKind::Phone, FieldRules::default());
        assert_eq!(phone.parse(&Json::from("+81 (3) 1234-5678")), Ok(Cell::Text("+81 (3) 1234-5678".into())));
        for bad in ["03-1234-567x", "<script>", "1", &"1".repeat(31)] {
            assert_eq!(phone.parse(&Json::from(bad)), Err("phone_format"), "{bad}");
        }
        let user = field(FieldKind::User, FieldRules::default());
        let id = crate::ids::UserId::new_random();
        assert_eq!(user.parse(&Json::from(id.to_string())), Ok(Cell::Text(id.to_string())));
        assert_eq!(user.parse(&Json::from("taro' OR 1=1")), Err("unknown_user"));
        assert!(user.filter("contains", "x").is_err());
        assert!(user.filter("eq", &id.to_string()).is_ok());
    }

    #[test]
    fn numbers_dates_and_addresses_typed_in_full_width_are_read_as_ascii() {
        assert_eq!(field(FieldKind::Integer, FieldRules::default()).parse(&Json::from("１２３")), Ok(Cell::Int(123)));
        assert_eq!(field(FieldKind::Integer, FieldRules::default()).parse(&Json::from("－５")), Ok(Cell::Int(-5)));
        let dec = field(FieldKind::Decimal { scale: 2 }, FieldRules::default());
        assert_eq!(dec.parse(&Json::from("１２．５")), Ok(Cell::Int(1250)));
        let date = field(FieldKind::Date, FieldRules::default());
        assert_eq!(date.parse(&Json::from("２０２６－０４－０１")), Ok(Cell::Text("2026-04-01".into())));
        let phone = field(FieldKind::Phone, FieldRules::default());
        assert_eq!(phone.parse(&Json::from("０３－１２３４－５６７８")), Ok(Cell::Text("03-1234-5678".into())));
        let mail = field(FieldKind::Email, FieldRules::default());
        assert_eq!(mail.parse(&Json::from("ｉｎｆｏ＠ｅｘａｍｐｌｅ．ｊｐ")), Ok(Cell::Text("info@example.jp".into())));
        assert_eq!(
            mail.parse(&Json::from("ｉｎｆｏ@example.jp")),
            Ok(Cell::Text("ｉｎｆｏ@example.jp".into())),
            "as typed"
        );
        // Text keeps what was typed.
        let text = field(FieldKind::Text, FieldRules::default());
        assert_eq!(text.parse(&Json::from("ＡＢＣ１２３")), Ok(Cell::Text("ＡＢＣ１２３".into())));
        assert!(field(FieldKind::Integer, FieldRules::default()).filter("gte", "１００").is_ok());
        // What parses as typed is kept: an address whose query holds full-width letters.
        let url = field(FieldKind::Url, FieldRules::default());
        assert_eq!(
            url.parse(&Json::from("https://example.jp/?q=ＡＢＣ")),
            Ok(Cell::Text("https://example.jp/?q=ＡＢＣ".into()))
        );
        assert_eq!(url.parse(&Json::from("ｊａｖａｓｃｒｉｐｔ：alert(1)")), Err("url_format"));
        assert!(
            FieldDef::validate(
                &FieldKind::Integer,
                &FieldRules { min: Some("０".into()), max: Some("１０".into()), ..FieldRules::default() }
            )
            .is_ok()
        );
        assert_eq!(
            phone.filter("contains", "０３"),
            Ok(Filter { field: phone.id, op: FilterOp::Contains("03".into()) })
        );
    }

    #[test]
    fn a_blank_default_a_long_text_and_control_characters_are_refused() {
        let rules = |d: &str| FieldRules { required: true, default: Some(d.into()), ..FieldRules::default() };
        for blank in ["", "   "] {
            let e = FieldDef::validate(&FieldKind::Text, &rules(blank)).unwrap_err();
            assert_eq!(e.code_for("default"), Some("bad_default"), "{blank:?}");
        }
        assert!(FieldDef::validate(&FieldKind::Text, &rules("x")).is_ok());
        let text = field(FieldKind::Text, FieldRules::default());
        // 1,000 characters, and at most 2,400 bytes (PostgreSQL's index entry).
        assert!(text.parse(&Json::from("a".repeat(1000))).is_ok());
        assert_eq!(text.parse(&Json::from("a".repeat(1001))), Err("too_long"));
        assert!(text.parse(&Json::from("😀".repeat(600))).is_ok());
        assert_eq!(text.parse(&Json::from("😀".repeat(601))), Err("too_long"));
        assert!(text.parse(&Json::from("漢".repeat(800))).is_ok());
        assert_eq!(text.parse(&Json::from("漢".repeat(801))), Err("too_long"));
        let multi = field(FieldKind::Multiline, FieldRules::default());
        assert!(multi.parse(&Json::from("漢".repeat(5000))).is_ok(), "multi-line text has no index");
        assert_eq!(text.filter("contains", "a\u{0}b"), Err("control_chars"));
        assert_eq!(text.filter("starts_with", "\u{1b}[31m"), Err("control_chars"));
        assert!(text.filter("contains", "1行目\n2行目").is_ok());
        assert_eq!(check_description("a\u{0}b"), Err("control_chars"));
        assert_eq!(check_description(&"x".repeat(2001)), Err("too_long"));
        assert!(check_description("1行目\r\n2行目\tタブ").is_ok());
    }

    #[test]
    fn a_name_may_not_hide_how_it_reads() {
        for bad in ["顧客\u{202E}txt.exe", "顧\u{200B}客", "\u{2066}x\u{2069}", "a\u{FEFF}b"] {
            assert_eq!(Name::parse(bad).map(|n| n.0), Err("control_chars"), "{bad:?}");
        }
        for ok in ["👩\u{200D}💻 チーム", "שלום\u{200F} 1"] {
            assert!(Name::parse(ok).is_ok(), "{ok:?}");
        }
    }

    #[test]
    fn a_field_name_may_not_be_what_requests_use_for_another_field() {
        let id = crate::ids::FieldId::new_random().to_string();
        for bad in [id.as_str(), "id", "ID", "created_at", "Updated_By", "作成日時 Created at"] {
            assert_eq!(Name::parse_field(bad).map(|n| n.0), Err("reserved_name"), "{bad}");
        }
        for ok in ["作成日時", "ID番号", "顧客 id", "created"] {
            assert!(Name::parse_field(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn a_date_time_is_accepted_only_where_it_reads_back() {
        let f = field(FieldKind::DateTime, FieldRules::default());
        for ok in ["2026-04-01T09:30:00+09:00", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"] {
            let c = f.parse(&Json::from(ok)).unwrap();
            assert!(f.present(&c).is_string(), "{ok}");
        }
        // Valid RFC 3339, but outside years 1..=9999 once in UTC: it could not be shown.
        for bad in ["9999-12-31T23:59:59-12:00", "0000-01-01T00:00:00+01:00", "0001-01-01T00:00:00+01:00"] {
            assert_eq!(f.parse(&Json::from(bad)), Err("bad_datetime"), "{bad}");
        }
    }

    #[test]
    fn a_field_keeps_its_kind_with_new_rules_and_existing_values_are_checked_against_them() {
        // Its own kind is always allowed (a change of rules), even a link or a user field;
        // never anything for a generated field.
        let link =
            FieldKind::Link { table: crate::ids::TableId::new_random(), show: crate::ids::FieldId::new_random() };
        assert!(retype_allowed(&link, &link));
        assert!(retype_allowed(&FieldKind::User, &FieldKind::User));
        assert!(!retype_allowed(&FieldKind::Text, &FieldKind::User));
        assert!(!retype_allowed(&FieldKind::User, &FieldKind::Text), "user ids would become the text");
        let auto = FieldKind::AutoNumber { prefix: String::new(), digits: 6 };
        assert!(!retype_allowed(&auto, &auto));
        // Minimum above maximum is refused, in the field's own unit.
        let bounds = |min: &str, max: &str| FieldRules {
            min: Some(min.to_owned()),
            max: Some(max.to_owned()),
            ..FieldRules::default()
        };
        assert!(FieldDef::validate(&FieldKind::Integer, &bounds("1", "10")).is_ok());
        assert!(FieldDef::validate(&FieldKind::Integer, &bounds("5", "5")).is_ok());
        let e = FieldDef::validate(&FieldKind::Integer, &bounds("11", "10")).unwrap_err();
        assert_eq!(e.0.iter().map(|f| (f.field.as_ref(), f.code)).collect::<Vec<_>>(), [("max", "min_above_max")]);
        assert!(FieldDef::validate(&FieldKind::Decimal { scale: 2 }, &bounds("0.5", "0.25")).is_err());
        assert!(FieldDef::validate(&FieldKind::Decimal { scale: 2 }, &bounds("0.25", "0.5")).is_ok());
        // A default on a unique field would fill one record and block every later one.
        let unique_default = FieldRules { unique: true, default: Some("x".to_owned()), ..FieldRules::default() };
        let e = FieldDef::validate(&FieldKind::Text, &unique_default).unwrap_err();
        assert_eq!(
            e.0.iter().map(|f| (f.field.as_ref(), f.code)).collect::<Vec<_>>(),
            [("default", "not_with_unique")]
        );
        // Existing values against new rules: an empty value under "required", a number out of
        // the new range, a text longer than the new maximum.
        let old = field(FieldKind::Integer, FieldRules::default());
        let new = FieldDef { rules: FieldRules { required: true, ..bounds("0", "100") }, ..old.clone() };
        assert_eq!(convert(&old, &new, &Cell::Null, 0), Err("required"));
        assert_eq!(convert(&old, &new, &Cell::Int(101), 0), Err("above_max"));
        assert_eq!(convert(&old, &new, &Cell::Int(-1), 0), Err("below_min"));
        assert_eq!(convert(&old, &new, &Cell::Int(100), 0), Ok(Cell::Int(100)));
        let old = field(FieldKind::Text, FieldRules::default());
        let new = FieldDef { rules: FieldRules { max_length: Some(3), ..FieldRules::default() }, ..old.clone() };
        assert_eq!(convert(&old, &new, &Cell::Text("東京都".into()), 0), Ok(Cell::Text("東京都".into())));
        assert_eq!(convert(&old, &new, &Cell::Text("東京都港区".into()), 0), Err("too_long"));
        // A multiple choice whose choices are reordered is stored in the new order.
        let old = field(FieldKind::MultiChoice { choices: vec!["A".into(), "B".into()] }, FieldRules::default());
        let new = FieldDef { kind: FieldKind::MultiChoice { choices: vec!["B".into(), "A".into()] }, ..old.clone() };
        assert_eq!(convert(&old, &new, &Cell::Text("A\nB".into()), 0), Ok(Cell::Text("B\nA".into())));
        // A date-time becomes the date it falls on in the tenant's time zone, and a date the
        // start of its day there.
        let old = field(FieldKind::DateTime, FieldRules::default());
        let new = FieldDef { kind: FieldKind::Date, ..old.clone() };
        let at = |s: &str| {
            Cell::Int(
                (OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                    .map(|t| t.unix_timestamp_nanos() / 1_000_000)
                    .unwrap_or_default()) as i64,
            )
        };
        let late = at("2026-11-28T15:30:00Z");
        assert_eq!(convert(&old, &new, &late, 540), Ok(Cell::Text("2026-11-29".into())));
        assert_eq!(convert(&old, &new, &late, 0), Ok(Cell::Text("2026-11-28".into())));
        assert_eq!(convert(&old, &new, &at("2026-11-28T03:00:00Z"), -300), Ok(Cell::Text("2026-11-27".into())));
        assert_eq!(convert(&new, &old, &Cell::Text("2026-11-29".into()), 540), Ok(at("2026-11-28T15:00:00Z")));
        assert_eq!(convert(&new, &old, &Cell::Text("2026-11-29".into()), -330), Ok(at("2026-11-29T05:30:00Z")));
        assert_eq!(offset_text(540), "+09:00");
        assert_eq!(offset_text(-330), "-05:30");
        assert_eq!(offset_text(0), "+00:00");
        // A link keeps its record.
        let old = field(link.clone(), FieldRules::default());
        let new = FieldDef { rules: FieldRules { required: true, ..FieldRules::default() }, ..old.clone() };
        assert_eq!(convert(&old, &new, &Cell::Int(7), 0), Ok(Cell::Int(7)));
        assert_eq!(convert(&old, &new, &Cell::Null, 0), Err("required"));
        // Required already (the field was added or restored after the record was made): its
        // empty value stays, and does not block another change of the field.
        let later = FieldDef { rules: FieldRules { max_length: Some(10), ..new.rules.clone() }, ..new.clone() };
        assert_eq!(convert(&new, &later, &Cell::Null, 0), Ok(Cell::Null));
        let text = FieldDef { kind: FieldKind::Text, ..later.clone() };
        assert_eq!(convert(&new, &text, &Cell::Null, 0), Ok(Cell::Null));
        // An unticked box of a required checkbox was a value: empty in a required text, refused.
        let tick = FieldDef { kind: FieldKind::Checkbox, ..new.clone() };
        assert_eq!(convert(&tick, &text, &Cell::Bool(false), 0), Err("required"));
    }

    #[test]
    fn a_change_of_type_converts_numbers_by_value_and_dates_by_their_shown_day() {
        let two = field(FieldKind::Decimal { scale: 2 }, FieldRules::default());
        let one = FieldDef { kind: FieldKind::Decimal { scale: 1 }, ..two.clone() };
        let int = FieldDef { kind: FieldKind::Integer, ..two.clone() };
        let text = FieldDef { kind: FieldKind::Text, ..two.clone() };
        // 1.50 fits one decimal, 3.00 an integer; 1.25 fits neither and is reported.
        assert_eq!(convert(&two, &one, &Cell::Int(150), 0), Ok(Cell::Int(15)));
        assert_eq!(convert(&two, &int, &Cell::Int(300), 0), Ok(Cell::Int(3)));
        assert_eq!(convert(&two, &int, &Cell::Int(-300), 0), Ok(Cell::Int(-3)));
        assert_eq!(convert(&two, &one, &Cell::Int(-5), 0), Err("not_a_decimal"), "-0.05");
        assert_eq!(convert(&two, &int, &Cell::Int(125), 0), Err("not_a_number"));
        assert_eq!(convert(&two, &one, &Cell::Int(0), 0), Ok(Cell::Int(0)));
        // Digits past what an integer holds are out of range, not a mistyped decimal.
        let six = FieldDef { kind: FieldKind::Decimal { scale: 6 }, ..two.clone() };
        assert_eq!(convert(&int, &six, &Cell::Int(10_000_000_000_000), 0), Err("out_of_range"));
        // Several choices on one line, by commas (a multiple choice reads them back so).
        let multi =
            FieldDef { kind: FieldKind::MultiChoice { choices: vec!["赤".into(), "青".into()] }, ..two.clone() };
        assert_eq!(convert(&multi, &text, &Cell::Text("赤\n青".into()), 0), Ok(Cell::Text("赤, 青".into())));
        assert_eq!(convert(&text, &multi, &Cell::Text("赤, 青".into()), 0), Ok(Cell::Text("赤\n青".into())));
        let comma = FieldDef {
            kind: FieldKind::MultiChoice { choices: vec!["東京, 日本".into(), "大阪".into()] },
            ..two.clone()
        };
        assert_eq!(
            convert(&comma, &text, &Cell::Text("東京, 日本\n大阪".into()), 0),
            Err("control_chars"),
            "reported, not joined into three"
        );
        // More decimals, or text: as shown.
        assert_eq!(convert(&one, &two, &Cell::Int(15), 0), Ok(Cell::Int(150)));
        assert_eq!(convert(&two, &text, &Cell::Int(150), 0), Ok(Cell::Text("1.50".into())));
        // Date-time to date: the day it shows (UTC); a date to the start of its day.
        let dt = field(FieldKind::DateTime, FieldRules::default());
        let date = FieldDef { kind: FieldKind::Date, ..dt.clone() };
        let at = time::macros::datetime!(2026-04-01 23:30 UTC);
        let ms = (at.unix_timestamp_nanos() / 1_000_000) as i64;
        assert_eq!(convert(&dt, &date, &Cell::Int(ms), 0), Ok(Cell::Text("2026-04-01".into())));
        let midnight = (time::macros::datetime!(2026-04-01 00:00 UTC).unix_timestamp_nanos() / 1_000_000) as i64;
        assert_eq!(convert(&date, &dt, &Cell::Text("2026-04-01".into()), 0), Ok(Cell::Int(midnight)));
        // Into text: as pages show it, at the tenant's offset.
        let text = FieldDef { kind: FieldKind::Text, ..dt.clone() };
        assert_eq!(convert(&dt, &text, &Cell::Int(ms), 540), Ok(Cell::Text("2026-04-02T08:30:00+09:00".into())));
        assert_eq!(convert(&dt, &text, &Cell::Int(ms), 0), Ok(Cell::Text("2026-04-01T23:30:00Z".into())));
        assert_eq!(trim_decimal_zeros(" 0.50 "), "0.5");
        assert_eq!(trim_decimal_zeros("-.00"), "-0");
        assert_eq!(trim_decimal_zeros("10"), "10");
        assert_eq!(trim_decimal_zeros("1.x0"), "1.x0");
    }

    #[test]
    fn decimals_are_exact() {
        assert_eq!(parse_decimal("12.34", 2), Ok(1234));
        assert_eq!(parse_decimal("-0.5", 2), Ok(-50));
        assert_eq!(parse_decimal("1,000", 0), Ok(1000));
        // Thousands separators in the whole part only, in groups of three.
        assert_eq!(parse_decimal("1,234.5", 2), Ok(123_450));
        assert_eq!(parse_decimal("-1,234,567.25", 2), Ok(-123_456_725));
        for bad in ["1,5", "12,34", "1,2,3", "1.2,5", "1,234.5,0", ",5", "1,,234"] {
            assert_eq!(parse_decimal(bad, 2), Err("not_a_decimal"), "{bad}");
        }
        // A number too large to hold is out of range, not mistyped.
        assert_eq!(parse_decimal("10000000000000", 6), Err("out_of_range"));
        assert_eq!(parse_decimal("0.1", 1).map(|v| format_decimal(v, 1)), Ok("0.1".into()));
        assert!(parse_decimal("1.234", 2).is_err());
        assert!(parse_decimal("1e3", 2).is_err());
        assert_eq!(format_decimal(-5, 2), "-0.05");
    }

    #[test]
    fn each_kind_parses_and_refuses_what_it_should() {
        let int = field(
            FieldKind::Integer,
            FieldRules { min: Some("0".into()), max: Some("10".into()), ..Default::default() },
        );
        assert_eq!(int.parse(&json!(7)), Ok(Cell::Int(7)));
        assert_eq!(int.parse(&json!("11")), Err("above_max"));
        assert_eq!(int.parse(&json!("x")), Err("not_a_number"));
        let date = field(FieldKind::Date, FieldRules::default());
        assert_eq!(date.parse(&json!("2026-02-28")), Ok(Cell::Text("2026-02-28".into())));
        assert_eq!(date.parse(&json!("2026-02-30")), Err("no_such_date"));
        for (typed, at) in [
            ("2026-04-01 09:30", "2026-04-01T09:30:00+09:00"),
            ("2026/4/1 9:30:15", "2026-04-01T09:30:15+09:00"),
            ("2026-04-01T09:30:00.5", "2026-04-01T09:30:00.5+09:00"),
            ("２０２６/０４/０１　０９:３０", "2026-04-01T09:30:00+09:00"),
            ("2026-04-01", "2026-04-01T00:00:00+09:00"),
            ("2026/4/1", "2026-04-01T00:00:00+09:00"),
        ] {
            assert_eq!(local_datetime(typed, 540).as_deref(), Some(at), "{typed}");
        }
        let ms = (time::macros::datetime!(2026-04-01 00:30 UTC).unix_timestamp_nanos() / 1_000_000) as i64;
        assert_eq!(local_text(ms, 540, false).as_deref(), Some("2026-04-01 09:30"));
        assert_eq!(local_text(ms, 540, true).as_deref(), Some("2026-04-01 09:30:00"));
        assert_eq!(local_text(ms + 15_250, 0, false).as_deref(), Some("2026-04-01 00:30:15.250"));
        for (ms, offset) in [(ms, 540), (ms + 15_250, -330), (ms + 7, 0)] {
            let text = local_text(ms, offset, false).unwrap();
            let back = local_datetime(&text, offset).unwrap();
            let f = field(FieldKind::DateTime, FieldRules::default());
            assert_eq!(f.parse(&json!(back)), Ok(Cell::Int(ms)), "{text}");
        }
        for other in ["2026-04-01T09:30:00+09:00", "2026-04-01T09:30:00Z", "2026-04-01 24:00", "2026-04-01 9", "x 9:30"]
        {
            assert_eq!(local_datetime(other, 540), None, "{other}");
        }
        assert_eq!(date.parse(&json!("2026-13-01")), Err("no_such_date"));
        for (typed, stored) in
            [("2026/4/1", "2026-04-01"), ("２０２６－０４－０１", "2026-04-01"), (" 2026-4-01 ", "2026-04-01")]
        {
            assert_eq!(date.parse(&json!(typed)), Ok(Cell::Text(stored.into())), "{typed}");
        }
        for bad in ["2026-04/01", "26-4-1", "2026-04-01T00:00", "2026--04", "april", "2026-004-01"] {
            assert_eq!(date.parse(&json!(bad)), Err("bad_date"), "{bad}");
        }
        let url = field(FieldKind::Url, FieldRules::default());
        assert_eq!(url.parse(&json!("javascript:alert(1)")), Err("url_format"));
        let choice = field(
            FieldKind::Choice { choices: vec!["A".into(), "B".into()] },
            FieldRules { required: true, ..Default::default() },
        );
        assert_eq!(choice.parse(&json!("C")), Err("choice"));
        assert_eq!(choice.parse(&json!("")), Err("required"));
        let text = field(FieldKind::Text, FieldRules { max_length: Some(3), ..Default::default() });
        assert_eq!(text.parse(&json!("abcd")), Err("too_long"));
        assert_eq!(text.parse(&json!("日本語")), Ok(Cell::Text("日本語".into())));
        let cb = field(FieldKind::Checkbox, FieldRules::default());
        assert_eq!(cb.parse(&json!(null)), Ok(Cell::Bool(false)));
    }

    #[test]
    fn filter_values_are_read_as_a_user_types_them() {
        let price = field(FieldKind::Decimal { scale: 1 }, FieldRules::default());
        assert_eq!(price.filter("eq", "1.50").map(|f| f.op), Ok(FilterOp::Eq(Cell::Int(15))));
        assert_eq!(price.filter("gte", "３．００").map(|f| f.op), Ok(FilterOp::Gte(Cell::Int(30))));
        assert_eq!(price.filter("gt", "1.25").err(), Some("not_a_decimal"), "more than the field holds");
        let name = field(FieldKind::Text, FieldRules::default());
        assert_eq!(name.filter("contains", "東京 ").map(|f| f.op), Ok(FilterOp::Contains("東京".into())));
        assert_eq!(name.filter("starts_with", " 株式").map(|f| f.op), Ok(FilterOp::StartsWith("株式".into())));
        assert_eq!(name.filter("contains", "  ").err(), Some("out_of_range"));
        let at = field(FieldKind::DateTime, FieldRules::default());
        assert_eq!(at.filter("any_of", "2026-04-01T00:00:00Z").err(), Some("bad_operator"));
        assert_eq!(check_keyword("東京\t大阪"), Err("control_chars"));
        let kind = field(
            FieldKind::Choice { choices: vec!["新規".into(), "継続".into(), "はい、確認済み".into()] },
            FieldRules::default(),
        );
        let both = FilterOp::AnyOf(vec![Cell::Text("新規".into()), Cell::Text("継続".into())]);
        for typed in ["新規,継続", "新規、継続", "新規，継続", "新規, 継続"] {
            assert_eq!(kind.filter("any_of", typed).map(|f| f.op), Ok(both.clone()), "{typed}");
        }
        // A choice that holds 、 is that choice, alone or with others.
        let one = FilterOp::AnyOf(vec![Cell::Text("はい、確認済み".into()), Cell::Text("新規".into())]);
        assert_eq!(kind.filter("any_of", "はい、確認済み,新規").map(|f| f.op), Ok(one));
        // Numbers take 、 too; a text's any-of splits on commas only (a name may hold 、).
        let n = field(FieldKind::Integer, FieldRules::default());
        assert_eq!(n.filter("any_of", "1、2").map(|f| f.op), Ok(FilterOp::AnyOf(vec![Cell::Int(1), Cell::Int(2)])));
        let t = field(FieldKind::Text, FieldRules::default());
        assert_eq!(
            t.filter("any_of", "山田商事、東京支店").map(|f| f.op),
            Ok(FilterOp::AnyOf(vec![Cell::Text("山田商事、東京支店".into())]))
        );
        assert_eq!(check_keyword(&"あ".repeat(201)), Err("out_of_range"));
    }

    #[test]
    fn each_kind_takes_the_filter_operators_it_lists_and_refuses_the_others() {
        let all = ["eq", "contains", "starts_with", "gt", "gte", "lt", "lte", "any_of", "empty", "not_empty"];
        let user = crate::ids::UserId::new_random().to_string();
        let link =
            FieldKind::Link { table: crate::ids::TableId::new_random(), show: crate::ids::FieldId::new_random() };
        let kinds = [
            (FieldKind::Text, "a"),
            (FieldKind::Multiline, "a"),
            (FieldKind::Integer, "1"),
            (FieldKind::Decimal { scale: 2 }, "1.5"),
            (FieldKind::Date, "2026-04-01"),
            (FieldKind::DateTime, "2026-04-01T09:00:00Z"),
            (FieldKind::Checkbox, "true"),
            (FieldKind::Choice { choices: vec!["A".into()] }, "A"),
            (FieldKind::MultiChoice { choices: vec!["A".into()] }, "A"),
            (FieldKind::AutoNumber { prefix: "N-".into(), digits: 6 }, "N-000001"),
            (FieldKind::Email, "a@example.jp"),
            (FieldKind::Url, "https://example.jp/"),
            (FieldKind::Phone, "03-1234-5678"),
            (FieldKind::User, user.as_str()),
            (link, "1"),
        ];
        for (kind, operand) in kinds {
            let f = field(kind, FieldRules::default());
            let listed = f.filter_ops();
            for op in all {
                let got = f.filter(op, operand);
                if listed.contains(&op) {
                    assert!(got.is_ok(), "{} {op}: {got:?}", f.kind.name());
                } else {
                    assert_eq!(got.err(), Some("bad_operator"), "{} {op}", f.kind.name());
                }
            }
        }
        assert_eq!(field(FieldKind::Text, FieldRules::default()).filter("like", "a").err(), Some("bad_operator"));
    }

    #[test]
    fn whole_numbers_take_thousands_separators_where_excel_puts_them() {
        let int = field(FieldKind::Integer, FieldRules::default());
        for (typed, want) in [("1,200", 1200), ("-1,234,567", -1_234_567), ("１，２００", 1200), ("999", 999)] {
            assert_eq!(int.parse(&Json::from(typed)), Ok(Cell::Int(want)), "{typed}");
        }
        for bad in ["1,2", "12,34", ",100", "1,,000", "1,0000"] {
            assert_eq!(int.parse(&Json::from(bad)), Err("not_a_number"), "{bad}");
        }
    }

    #[test]
    fn definitions_are_checked() {
        assert!(FieldDef::validate(&FieldKind::Decimal { scale: 7 }, &FieldRules::default()).is_err());
        assert!(FieldDef::validate(&FieldKind::Choice { choices: vec![] }, &FieldRules::default()).is_err());
        assert!(
            FieldDef::validate(&FieldKind::Choice { choices: vec!["a".into(), "a".into()] }, &FieldRules::default())
                .is_err()
        );
        assert!(FieldDef::validate(&FieldKind::Checkbox, &FieldRules { unique: true, ..Default::default() }).is_err());
        // An auto-number's prefix takes no direction control or zero-width character.
        for (prefix, code) in [
            ("INQ-", None),
            ("No. ", None),
            ("\u{202E}INQ", Some("control_chars")),
            ("A\u{200B}", Some("control_chars")),
            ("ABCDEFGHIJKLMNOPQRSTU", Some("out_of_range")),
        ] {
            let kind = FieldKind::AutoNumber { prefix: prefix.to_owned(), digits: 6 };
            let got = FieldDef::validate(&kind, &FieldRules::default()).err().map(|e| e.0[0].code);
            assert_eq!(got, code, "{prefix:?}");
        }
        let e = FieldDef::validate(&FieldKind::Checkbox, &FieldRules { required: true, ..Default::default() });
        assert_eq!(
            e.unwrap_err().0.iter().map(|f| (&*f.field, f.code)).collect::<Vec<_>>(),
            [("required", "not_for_this_type")]
        );
        assert!(
            FieldDef::validate(&FieldKind::Integer, &FieldRules { min: Some("x".into()), ..Default::default() })
                .is_err()
        );
        assert!(
            FieldDef::validate(
                &FieldKind::Text,
                &FieldRules { unique: true, max_length: Some(50), ..Default::default() }
            )
            .is_ok()
        );
    }
}

/// How records are listed: filters (all must hold), a keyword found anywhere in the text
/// fields, one sort key (then the record id), keyset paging and a page size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordQuery {
    pub filters: Vec<Filter>,
    pub keyword: Option<String>,
    /// `None` sorts by record id.
    pub sort: Option<crate::ids::FieldId>,
    /// The direction of the first sort key, and of the record id that breaks ties.
    pub descending: bool,
    /// Further sort keys after the first (each with its own direction, `true` = descending);
    /// empty values sort last in every key. Only with `sort` set.
    pub then: Vec<(crate::ids::FieldId, bool)>,
    /// The last row of the previous page: its first sort value and id.
    pub after: Option<(Cell, i64)>,
    /// The last row's values of the further sort keys, in order.
    pub after_then: Vec<Cell>,
    pub limit: u32,
}

/// Days a deleted table or field stays in the trash (restorable) before it is purged.
pub const TRASH_DAYS: i64 = 30;

/// The most sort keys a list takes.
pub const MAX_SORT_KEYS: usize = 3;

impl RecordQuery {
    /// Every sort key in order (field, descending).
    pub fn sort_keys(&self) -> Vec<(crate::ids::FieldId, bool)> {
        let mut keys: Vec<_> = self.sort.map(|f| (f, self.descending)).into_iter().collect();
        keys.extend(self.then.iter().copied());
        keys
    }
}

impl Default for RecordQuery {
    fn default() -> Self {
        Self {
            filters: Vec::new(),
            keyword: None,
            sort: None,
            descending: true,
            then: Vec::new(),
            after: None,
            after_then: Vec::new(),
            limit: 50,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub field: crate::ids::FieldId,
    pub op: FilterOp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterOp {
    Eq(Cell),
    /// A multiple-choice value includes any of these choices.
    Includes(Vec<String>),
    Contains(String),
    StartsWith(String),
    Gt(Cell),
    Gte(Cell),
    Lt(Cell),
    Lte(Cell),
    Empty,
    NotEmpty,
    AnyOf(Vec<Cell>),
}

/// The most values one "any of" filter takes.
pub const MAX_ANY_OF: usize = 100;

impl FieldDef {
    /// The filter operators this field takes (what `filter` accepts), so that a refusal can
    /// name them.
    /// The values of an "any of" filter on this field: separated by commas; for values that
    /// cannot hold one, by a Japanese list mark too (、, as a Japanese input method writes a
    /// list: numbers, dates, record numbers, boxes), and for a choice by 、 or ， where the
    /// text between commas is not itself one of the choices ("新規、継続", but "はい、確認済み"
    /// when that is a choice). Texts, links and users split on commas only: a name may hold 、.
    pub fn any_of_items<'a>(&self, operand: &'a str) -> Vec<&'a str> {
        match &self.kind {
            FieldKind::Choice { choices } | FieldKind::MultiChoice { choices } => operand
                .split(',')
                .flat_map(|piece| {
                    if choices.iter().any(|c| c.trim() == piece.trim()) {
                        vec![piece]
                    } else {
                        piece.split(['、', '，']).collect()
                    }
                })
                .collect(),
            FieldKind::Integer
            | FieldKind::Decimal { .. }
            | FieldKind::Date
            | FieldKind::AutoNumber { .. }
            | FieldKind::Checkbox => operand.split([',', '、']).collect(),
            _ => operand.split(',').collect(),
        }
    }

    pub fn filter_ops(&self) -> &'static [&'static str] {
        match &self.kind {
            FieldKind::MultiChoice { .. } => &["eq", "any_of", "empty", "not_empty"],
            FieldKind::AutoNumber { .. } => &["eq", "gt", "gte", "lt", "lte", "any_of"],
            // (Never empty: unticked is false.)
            FieldKind::Checkbox => &["eq", "any_of"],
            FieldKind::Integer | FieldKind::Decimal { .. } | FieldKind::Date => {
                &["eq", "gt", "gte", "lt", "lte", "any_of", "empty", "not_empty"]
            }
            // (No "any of": a date-time is matched by its span, "equals 2026-04-01" being that
            // whole day; a list of instants would find only records stamped at exactly one.)
            FieldKind::DateTime => &["eq", "gt", "gte", "lt", "lte", "empty", "not_empty"],
            k if k.storage() == Storage::Text && !matches!(k, FieldKind::User) => {
                &["eq", "contains", "starts_with", "any_of", "empty", "not_empty"]
            }
            _ => &["eq", "any_of", "empty", "not_empty"],
        }
    }

    /// Parses a filter for this field: operator name and text operand, checked against the
    /// field's kind (but not its rules: a filter may look beyond a field's limits).
    pub fn filter(&self, op: &str, operand: &str) -> Result<Filter, &'static str> {
        if !self.filter_ops().contains(&op) {
            return Err("bad_operator");
        }
        // "Any of" takes at most MAX_ANY_OF values (each is a bound parameter, and for a
        // multiple choice several): a longer list is refused rather than sent to the database.
        if op == "any_of" && self.any_of_items(operand).len() > MAX_ANY_OF {
            return Err("too_many");
        }
        let plain = FieldDef { rules: FieldRules::default(), ..self.clone() };
        // (A decimal's trailing zeros say nothing: 1.50 is 1.5 in a field of one decimal.)
        let value = |s: &str| match plain.parse(&Json::String(match self.kind {
            FieldKind::Decimal { .. } => trim_decimal_zeros(&halfwidth(s)),
            _ => s.to_owned(),
        }))? {
            Cell::Null => Err("required"),
            c => Ok(c),
        };
        // A multiple choice matches a record that has the choice (or any of them).
        if let FieldKind::MultiChoice { choices } = &self.kind {
            let one = |s: &str| {
                let s = s.trim();
                choices.iter().find(|c| c.trim() == s).map(|c| c.trim().to_owned()).ok_or("choice")
            };
            let op = match op {
                "eq" => FilterOp::Includes(vec![one(operand)?]),
                "any_of" => {
                    FilterOp::Includes(self.any_of_items(operand).into_iter().map(one).collect::<Result<_, _>>()?)
                }
                "empty" => FilterOp::Empty,
                "not_empty" => FilterOp::NotEmpty,
                _ => return Err("bad_operator"),
            };
            return Ok(Filter { field: self.id, op });
        }
        // The record number: "INV-000042" or "42".
        if let FieldKind::AutoNumber { prefix, .. } = &self.kind {
            let n = |s: &str| -> Result<Cell, &'static str> {
                let s = s.trim();
                let digits = s.strip_prefix(prefix.as_str()).unwrap_or(s);
                digits.parse::<i64>().map(Cell::Int).map_err(|_| "not_a_number")
            };
            let op = match op {
                "eq" => FilterOp::Eq(n(operand)?),
                "gt" => FilterOp::Gt(n(operand)?),
                "gte" => FilterOp::Gte(n(operand)?),
                "lt" => FilterOp::Lt(n(operand)?),
                "lte" => FilterOp::Lte(n(operand)?),
                "any_of" => FilterOp::AnyOf(self.any_of_items(operand).into_iter().map(n).collect::<Result<_, _>>()?),
                _ => return Err("bad_operator"),
            };
            return Ok(Filter { field: self.id, op });
        }
        let textual = self.kind.storage() == Storage::Text && !matches!(self.kind, FieldKind::Date | FieldKind::User);
        let ordered =
            matches!(self.kind, FieldKind::Integer | FieldKind::Decimal { .. } | FieldKind::Date | FieldKind::DateTime);
        let op = match op {
            "eq" => FilterOp::Eq(value(operand)?),
            // (Trimmed as a keyword is: a space a Japanese input method leaves would otherwise
            // find nothing.)
            "contains" if textual => FilterOp::Contains(operand.trim().to_owned()),
            "starts_with" if textual => FilterOp::StartsWith(operand.trim().to_owned()),
            "gt" if ordered => FilterOp::Gt(value(operand)?),
            "gte" if ordered => FilterOp::Gte(value(operand)?),
            "lt" if ordered => FilterOp::Lt(value(operand)?),
            "lte" if ordered => FilterOp::Lte(value(operand)?),
            "empty" => FilterOp::Empty,
            "not_empty" => FilterOp::NotEmpty,
            "any_of" => FilterOp::AnyOf(
                self.any_of_items(operand).into_iter().map(|s| value(s.trim())).collect::<Result<_, _>>()?,
            ),
            _ => return Err("bad_operator"),
        };
        let mut op = op;
        // A phone number is stored in ASCII: a part of one typed in full width finds it.
        if let (FilterOp::Contains(s) | FilterOp::StartsWith(s), FieldKind::Phone) = (&mut op, &self.kind) {
            *s = halfwidth(s);
        }
        if let FilterOp::Contains(s) | FilterOp::StartsWith(s) = &op {
            if s.is_empty() || s.chars().count() > 200 {
                return Err("out_of_range");
            }
            // A stored value holds no control character but line ends and tabs, so a filter
            // with another can match nothing (and PostgreSQL refuses NUL as a parameter).
            if s.chars().any(is_stray_control) {
                return Err("control_chars");
            }
        }
        Ok(Filter { field: self.id, op })
    }

    /// Whether the keyword search covers this field.
    pub fn searchable(&self) -> bool {
        matches!(
            self.kind,
            FieldKind::Text
                | FieldKind::Multiline
                | FieldKind::Choice { .. }
                | FieldKind::MultiChoice { .. }
                | FieldKind::Email
                | FieldKind::Url
                | FieldKind::Phone
        )
    }
}

/// The text the keyword search looks in: every searchable field's value, one per line.
pub fn search_text(table: &TableDef, cells: &[(crate::ids::FieldId, Cell)]) -> String {
    let mut out = String::new();
    for f in table.fields.iter().filter(|f| f.searchable()) {
        if let Some((_, Cell::Text(s))) = cells.iter().find(|(id, _)| *id == f.id) {
            out.push_str(s);
            out.push('\n');
        }
    }
    out
}

/// Keyword rule: at least two characters (one character would match nearly everything and
/// cannot use the trigram index), at most 200.
pub fn check_keyword(k: &str) -> Result<String, &'static str> {
    let k = k.trim();
    let n = k.chars().count();
    if n < 2 {
        return Err("keyword_too_short");
    }
    if n > 200 {
        return Err("out_of_range");
    }
    // (A tab pasted from two spreadsheet cells among them: said as what it is.)
    if k.chars().any(char::is_control) {
        return Err("control_chars");
    }
    Ok(k.to_owned())
}
