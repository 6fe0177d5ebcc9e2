#!/usr/bin/env python3
"""Update imports by key, as an administrator and as a member of two groups (docs/PERFORMANCE.md).

Against a running `daicho demo` (HTTPS on 127.0.0.1:9443, its self-signed certificate): makes a
table "perf" of eight fields with a unique key コード, two groups holding the demo's staff user
(one over every record with メモ read-only, one over the records whose 担当 is them), imports N
rows as the administrator, then imports the same N keys with changed values by key: as the
administrator, as the staff member (whose writes are judged per record), and as the
administrator again. Prints each import's rate.

Usage: scripts/update-import.py ADMIN_PASSWORD STAFF_PASSWORD [N]   (needs python3-requests)
"""
import sys
import time

import requests
import urllib3

urllib3.disable_warnings()
base = "https://127.0.0.1:9443"
admin_pw, staff_pw = sys.argv[1], sys.argv[2]
N = int(sys.argv[3]) if len(sys.argv) > 3 else 100000
def login(user, pw):
    s = requests.Session(); s.verify = False; s.trust_env = False
    r = s.post(base + "/api/v1/session", json={"tenant": "demo", "login_id": user, "password": pw}); assert r.status_code == 201, r.text
    s.headers["x-csrf-token"] = s.get(base + "/api/v1/me").json()["csrf_token"]
    return s
a = login("admin", admin_pw)
t = a.post(base + "/api/v1/tables", json={"name": "perf"}).json()["table"]["id"]
for name, kind, rules in [("コード", {"type": "text"}, {"unique": True}), ("件名", {"type": "text"}, {}), ("金額", {"type": "integer"}, {}),
                          ("担当", {"type": "user"}, {}), ("メモ", {"type": "text"}, {}), ("日付", {"type": "date"}, {}),
                          ("状態", {"type": "choice", "choices": ["A", "B", "C"]}, {}), ("数量", {"type": "integer"}, {})]:
    r = a.post(base + f"/api/v1/tables/{t}/fields", json={"name": name, "kind": kind, "rules": rules}); assert r.status_code == 201, r.text
fields = {f["name"]: f["id"] for f in a.get(base + f"/api/v1/tables/{t}").json()["table"]["fields"]}
users = a.get(base + "/api/v1/users").json()["users"]
staff = [u["id"] for u in users if u["login_id"] == "staff"][0]
g1 = a.post(base + "/api/v1/groups", json={"name": "perf all"}).json()["group"]["id"]
g2 = a.post(base + "/api/v1/groups", json={"name": "perf mine"}).json()["group"]["id"]
for g in (g1, g2):
    assert a.put(base + f"/api/v1/groups/{g}/members", json={"members": [staff]}).status_code == 200
r = a.put(base + f"/api/v1/groups/{g1}/grants/{t}", json={"rights": ["view", "edit", "import"], "fields": {fields["メモ"]: "read_only"}}); assert r.status_code == 200, r.text
r = a.put(base + f"/api/v1/groups/{g2}/grants/{t}", json={"rights": ["view", "edit", "import"], "rows": {"type": "user_is_me", "field": fields["担当"]}}); assert r.status_code == 200, r.text
def csv(kind):
    out = ["コード,件名,金額,担当,メモ,日付,状態,数量"]
    for i in range(N):
        who = "staff" if i % 2 else "admin"
        if kind == "insert":
            out.append(f"K{i},件名{i},{i},{who},m{i},2026-01-{1 + i % 28:02d},{'ABC'[i % 3]},{i % 50}")
        else:
            out.append(f"K{i},更新{i},{i + 1},{who},m{i},2026-01-{1 + i % 28:02d},{'ABC'[i % 3]},{i % 50}")
    return ("\n".join(out) + "\n").encode()
def imp(s, body, q=""):
    t0 = time.time()
    r = s.post(base + f"/api/v1/tables/{t}/import{q}", data=body, headers={"content-type": "text/csv"}, timeout=600)
    dt = time.time() - t0
    return r.status_code, r.text[:200], dt
body = csv("insert")
st, txt, dt = imp(a, body); print(f"admin insert {N}: {st} {txt} {dt:.1f}s {N/dt:.0f} rows/s")
body = csv("update")
st, txt, dt = imp(a, body, "?key=コード"); print(f"admin update {N}: {st} {txt} {dt:.1f}s {N/dt:.0f} rows/s")
s = login("staff", staff_pw)
body = csv("insert")  # back to the original values
st, txt, dt = imp(s, body, "?key=コード"); print(f"staff (two groups) update {N}: {st} {txt} {dt:.1f}s {N/dt:.0f} rows/s")
st, txt, dt = imp(a, csv("update"), "?key=コード"); print(f"admin update again {N}: {st} {txt} {dt:.1f}s {N/dt:.0f} rows/s")
