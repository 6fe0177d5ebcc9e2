#!/usr/bin/env python3
"""Raw SQLite import rates for the benchmark's schema, without Daicho (docs/PERFORMANCE.md).

Loads FILES transactions of ROWS rows each into a table shaped like the benchmark's (eight
fields, seven (column, id) B-trees, an FTS5 trigram keyword index filled by one INSERT ... SELECT
per transaction, as Daicho's import does), with WAL, synchronous=NORMAL and a 64 MB page cache,
and prints each transaction's rate and the total. Uses Python's own sqlite3 module; needs
nothing else.

    scripts/raw-import.py [--indexes all|btrees|trigram|none] [--fts-bulk none|table|transaction]
                          [--files 10] [--rows 100000] [--db PATH]

--fts-bulk table: FTS5 automerge 0 and an 8 MiB hashsize for the whole table; transaction: set
before each keyword-index fill and reset to the defaults after it, inside the transaction
(what Daicho does since 30c3264); none: FTS5's defaults.
"""
import argparse
import os
import random
import sqlite3
import tempfile
import time

JA = ["打ち合わせ", "見積書", "納品", "請求書", "電話連絡", "訪問予定", "東京", "大阪", "名古屋", "福岡",
      "札幌", "新製品", "値引き", "契約更新", "担当者変更", "在庫確認", "発注", "返品", "サポート", "来週"]
EN = ["meeting", "quote", "delivery", "call", "visit", "Tokyo", "Osaka", "renewal", "discount", "support",
      "order", "shipment", "pending", "contact", "sample", "budget", "review", "follow-up", "update", "schedule"]
FAMILY = ["山田", "佐藤", "鈴木", "高橋", "田中", "伊藤"]
SUFFIX = ["商事", "工業", "物産", "製作所"]
STATES = ["新規", "対応中", "見積済", "受注", "失注"]
FIELDS = ["f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8"]
PER_INSERT = 70


def row(rng, i):
    name = rng.choice(FAMILY) + rng.choice(SUFFIX) if rng.random() < 0.6 else "Smith Trading Inc."
    words = (["要確認"] if i % 2 == 0 else []) + [
        rng.choice(JA if rng.random() < 0.5 else EN) for _ in range(3 + rng.randrange(6))
    ]
    day = "2021-%02d-%02d" % (rng.randrange(1, 13), rng.randrange(1, 28))
    return (1, 0, "u", 0, "u", name, " ".join(words), rng.randrange(1000), rng.randrange(10**8), day,
            rng.randrange(10**12), rng.randrange(2), rng.choice(STATES))


def fts_settings(db, automerge, hashsize):
    db.execute("INSERT INTO t_fts(t_fts, rank) VALUES('automerge', ?)", (automerge,))
    db.execute("INSERT INTO t_fts(t_fts, rank) VALUES('hashsize', ?)", (hashsize,))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--indexes", choices=["all", "btrees", "trigram", "none"], default="all")
    p.add_argument("--fts-bulk", choices=["none", "table", "transaction"], default="none")
    p.add_argument("--files", type=int, default=10)
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--db", help="database file (default: a new temporary one, removed at the end)")
    a = p.parse_args()
    tmp = None
    if a.db is None:
        tmp = tempfile.TemporaryDirectory()
        a.db = os.path.join(tmp.name, "raw.db")
    db = sqlite3.connect(a.db, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA cache_size=-65536")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, version, created_at, created_by, "
               "updated_at, updated_by, f1 TEXT, f2 TEXT, f3 INT, f4 INT, f5 TEXT, f6 INT, f7 INT, f8 TEXT)")
    if a.indexes in ("all", "btrees"):
        for f in ["f1", "f3", "f4", "f5", "f6", "f7", "f8"]:
            db.execute(f"CREATE INDEX i_{f} ON t ({f}, id)")
    trigram = a.indexes in ("all", "trigram")
    db.execute("CREATE VIRTUAL TABLE t_fts USING fts5(body, tokenize='trigram')")
    if a.fts_bulk == "table":
        fts_settings(db, 0, 8 << 20)
    rng = random.Random(1)
    cols = ", ".join(FIELDS)
    one = "(" + ", ".join("?" * 13) + ")"
    total = 0.0
    for k in range(a.files):
        rows = [row(rng, i) for i in range(a.rows)]
        t0 = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        before = db.execute("SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 't'), 0)").fetchone()[0]
        for s in range(0, len(rows), PER_INSERT):
            chunk = rows[s:s + PER_INSERT]
            db.execute(f"INSERT INTO t (version, created_at, created_by, updated_at, updated_by, {cols}) VALUES "
                       + ", ".join([one] * len(chunk)), [v for r in chunk for v in r])
        t1 = time.perf_counter()
        if trigram:
            if a.fts_bulk == "transaction":
                fts_settings(db, 0, 8 << 20)
            db.execute("INSERT INTO t_fts (rowid, body) SELECT id, COALESCE(f1 || char(10), '') || "
                       "COALESCE(f2 || char(10), '') || COALESCE(f8 || char(10), '') FROM t WHERE id > ?", (before,))
            if a.fts_bulk == "transaction":
                fts_settings(db, 4, 1 << 20)
        t2 = time.perf_counter()
        db.execute("COMMIT")
        t3 = time.perf_counter()
        total += t3 - t0
        print(f"file {k + 1}: {a.rows / (t3 - t0):,.0f} rows/s (rows {t1 - t0:.2f} s, keyword index "
              f"{t2 - t1:.2f} s, commit {t3 - t2:.2f} s)", flush=True)
    n = a.files * a.rows
    print(f"total: {n:,} rows in {total:.1f} s, {n / total:,.0f} rows/s")
    db.close()
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
