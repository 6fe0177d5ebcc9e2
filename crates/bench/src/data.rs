//! The generated table: eight fields of mixed types and deterministic pseudo-random rows, so
//! that every run (and both stores) sees the same data, and so that the keyword queries match
//! known shares of the rows by construction.

use serde_json::{Value, json};

/// A typed value as Daicho stores it (decimals scaled, date-times in Unix milliseconds).
#[derive(Debug, Clone, PartialEq)]
pub enum V {
    Null,
    Text(String),
    Int(i64),
    Bool(bool),
}

/// How a field is stored, which decides how raw queries decode it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Storage {
    Text,
    Int,
    Bool,
}

pub struct FieldSpec {
    pub name: &'static str,
    pub kind: fn() -> Value,
    pub storage: Storage,
    /// Gets an index on (column, id) (every kind but multi-line text).
    pub indexed: bool,
    /// Part of the keyword search text.
    pub searchable: bool,
}

pub const NAME: usize = 0;
pub const QTY: usize = 2;
pub const AMOUNT: usize = 3;
pub const DATE: usize = 4;
pub const UPDATED: usize = 5;
pub const ACTIVE: usize = 6;
pub const STATUS: usize = 7;

pub const CHOICES: [&str; 5] = ["新規", "対応中", "見積済", "受注", "失注"];

pub const FIELDS: [FieldSpec; 8] = [
    FieldSpec {
        name: "顧客名",
        kind: || json!({"type": "text"}),
        storage: Storage::Text,
        indexed: true,
        searchable: true,
    },
    FieldSpec {
        name: "メモ",
        kind: || json!({"type": "multiline"}),
        storage: Storage::Text,
        indexed: false,
        searchable: true,
    },
    FieldSpec {
        name: "数量",
        kind: || json!({"type": "integer"}),
        storage: Storage::Int,
        indexed: true,
        searchable: false,
    },
    FieldSpec {
        name: "金額",
        kind: || json!({"type": "decimal", "scale": 2}),
        storage: Storage::Int,
        indexed: true,
        searchable: false,
    },
    FieldSpec {
        name: "受注日",
        kind: || json!({"type": "date"}),
        storage: Storage::Text,
        indexed: true,
        searchable: false,
    },
    FieldSpec {
        name: "更新日時",
        kind: || json!({"type": "date_time"}),
        storage: Storage::Int,
        indexed: true,
        searchable: false,
    },
    FieldSpec {
        name: "有効",
        kind: || json!({"type": "checkbox"}),
        storage: Storage::Bool,
        indexed: true,
        searchable: false,
    },
    FieldSpec {
        name: "状態",
        kind: || json!({"type": "choice", "choices": CHOICES}),
        storage: Storage::Text,
        indexed: true,
        searchable: true,
    },
];

/// Keyword queries and the share of rows they match by construction.
/// In every even row's memo (first word), nowhere else: exactly half the rows.
pub const Q_HALF: &str = "要確認";
/// Added to about 1 % of memos; no other word contains it.
pub const Q_JA: &str = "北海道";
/// Added to about 1 % of memos; no other word contains it.
pub const Q_LATIN: &str = "invoice";
/// Characters that never occur in the data: the trigram index has no entry for it.
pub const Q_NONE: &str = "存在しない";
/// Both halves are common, but "要確認" only ever starts a memo (after a line break), so the
/// phrase never occurs: the index must intersect two large lists to find nothing.
pub const Q_NONE_COMMON: &str = "invoice 要確認";
/// Two characters: below the trigram length, so the store scans the search text.
pub const Q_TWO: &str = "大阪";

const JA_FAMILY: [&str; 16] = [
    "山田", "佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "中村", "小林", "加藤", "吉田", "山本", "松本", "井上",
    "木村", "林",
];
const JA_SUFFIX: [&str; 8] = ["商事", "工業", "物産", "製作所", "運輸", "電機", "建設", "食品"];
const EN_FAMILY: [&str; 12] =
    ["Smith", "Johnson", "Brown", "Taylor", "Miller", "Wilson", "Moore", "Clark", "Lewis", "Walker", "Hall", "Young"];
const EN_NOUN: [&str; 8] = ["Trading", "Logistics", "Foods", "Systems", "Electric", "Partners", "Works", "Design"];
const EN_FORM: [&str; 3] = ["Inc.", "Ltd.", "LLC"];
const JA_WORDS: [&str; 20] = [
    "打ち合わせ",
    "見積書",
    "納品",
    "請求書",
    "電話連絡",
    "訪問予定",
    "東京",
    "大阪",
    "名古屋",
    "福岡",
    "札幌",
    "新製品",
    "値引き",
    "契約更新",
    "担当者変更",
    "在庫確認",
    "発注",
    "返品",
    "サポート",
    "来週",
];
const EN_WORDS: [&str; 20] = [
    "meeting",
    "quote",
    "delivery",
    "call",
    "visit",
    "Tokyo",
    "Osaka",
    "renewal",
    "discount",
    "support",
    "order",
    "shipment",
    "pending",
    "contact",
    "sample",
    "budget",
    "review",
    "follow-up",
    "update",
    "schedule",
];

/// A small 64-bit generator (SplitMix64): deterministic, good enough to spread test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len() as u64) as usize]
    }
}

/// (year, month, day) of a day number counted from 1970-01-01 (H. Hinnant's civil_from_days).
pub fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

pub fn date_text(days: i64) -> String {
    let (y, m, d) = civil(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// 2020-01-01 as a day number.
const DAY0: i64 = 18_262;
/// 2024-01-01T00:00:00Z in Unix seconds.
const SEC0: i64 = 1_704_067_200;

/// The values of row `i` (0-based; the record id is `i + 1` after a sequential import).
pub fn row(i: u64) -> [V; 8] {
    let mut r = Rng::new(i.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0xDA1C_0000);
    let name = if r.below(10) < 6 {
        format!("{}{}", r.pick(&JA_FAMILY), r.pick(&JA_SUFFIX))
    } else {
        format!("{} {} {}", r.pick(&EN_FAMILY), r.pick(&EN_NOUN), r.pick(&EN_FORM))
    };
    let mut words: Vec<&str> = Vec::new();
    if i.is_multiple_of(2) {
        words.push(Q_HALF);
    }
    let n = 3 + r.below(6);
    for _ in 0..n {
        words.push(if r.below(2) == 0 { r.pick(&JA_WORDS) } else { r.pick(&EN_WORDS) });
    }
    if r.below(100) == 0 {
        let at = 1 + r.below(words.len() as u64) as usize;
        words.insert(at.min(words.len()), Q_JA);
    }
    if r.below(100) == 0 {
        let at = 1 + r.below(words.len() as u64) as usize;
        words.insert(at.min(words.len()), Q_LATIN);
    }
    let mut memo = String::new();
    for (k, w) in words.iter().enumerate() {
        if k > 0 {
            memo.push(if k % 5 == 0 { '\n' } else { ' ' });
        }
        memo.push_str(w);
    }
    let qty = 1 + r.below(1000) as i64;
    let amount = if r.below(100) == 0 { V::Null } else { V::Int(r.below(100_000_000) as i64) };
    let date = if r.below(100) == 0 { V::Null } else { V::Text(date_text(DAY0 + r.below(2192) as i64)) };
    let updated = (SEC0 + r.below(2 * 366 * 86_400) as i64) * 1000;
    let active = r.below(2) == 0;
    let status = CHOICES[r.below(CHOICES.len() as u64) as usize];
    [
        V::Text(name),
        V::Text(memo),
        V::Int(qty),
        amount,
        date,
        V::Int(updated),
        V::Bool(active),
        V::Text(status.to_owned()),
    ]
}

/// The keyword search text Daicho derives: every searchable field's text, one per line.
pub fn search_text(vals: &[V; 8]) -> String {
    let mut out = String::new();
    for (f, v) in FIELDS.iter().zip(vals) {
        if let (true, V::Text(s)) = (f.searchable, v) {
            out.push_str(s);
            out.push('\n');
        }
    }
    out
}

fn csv_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
}

/// A value as a user would type it in a CSV file.
fn csv_cell(out: &mut String, field: usize, v: &V) {
    match (field, v) {
        (_, V::Null) => {}
        (AMOUNT, V::Int(n)) => out.push_str(&format!("{}.{:02}", n / 100, n % 100)),
        (UPDATED, V::Int(ms)) => {
            let secs = ms / 1000;
            let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
            out.push_str(&format!("{}T{:02}:{:02}:{:02}Z", date_text(days), rem / 3600, rem % 3600 / 60, rem % 60));
        }
        (_, V::Int(n)) => out.push_str(&n.to_string()),
        (_, V::Bool(b)) => out.push_str(if *b { "TRUE" } else { "FALSE" }),
        (_, V::Text(s)) => csv_quoted(out, s),
    }
}

/// Rows `from..to` as a UTF-8 CSV file with a header row of field names.
pub fn csv_chunk(from: u64, to: u64) -> String {
    let mut out = String::with_capacity(((to - from) * 160) as usize);
    let header: Vec<&str> = FIELDS.iter().map(|f| f.name).collect();
    out.push_str(&header.join(","));
    out.push('\n');
    for i in from..to {
        let vals = row(i);
        for (k, v) in vals.iter().enumerate() {
            if k > 0 {
                out.push(',');
            }
            csv_cell(&mut out, k, v);
        }
        out.push('\n');
    }
    out
}

/// Counts CSV records (line breaks outside quotes) in a stream, chunk by chunk.
#[derive(Default)]
pub struct CsvCounter {
    in_quotes: bool,
    pub lines: u64,
}

impl CsvCounter {
    pub fn feed(&mut self, bytes: &[u8]) {
        for b in bytes {
            match b {
                b'"' => self.in_quotes = !self.in_quotes,
                b'\n' if !self.in_quotes => self.lines += 1,
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_and_shares() {
        assert_eq!(date_text(DAY0), "2020-01-01");
        assert_eq!(date_text(19_723), "2024-01-01");
        let n = 20_000u64;
        let mut half = 0;
        let mut ja = 0;
        let mut latin = 0;
        for i in 0..n {
            let s = search_text(&row(i));
            half += u64::from(s.contains(Q_HALF));
            ja += u64::from(s.contains(Q_JA));
            latin += u64::from(s.to_lowercase().contains(Q_LATIN));
            assert!(!s.contains(Q_NONE) && !s.contains(Q_NONE_COMMON));
        }
        assert_eq!(half, n / 2);
        assert!((100..400).contains(&ja), "{ja}");
        assert!((100..400).contains(&latin), "{latin}");
        let csv = csv_chunk(0, 100);
        let mut c = CsvCounter::default();
        c.feed(csv.as_bytes());
        assert_eq!(c.lines, 101);
    }
}
