#!/usr/bin/env python3
# Bulk-seeds N copies of a system's first item into a migrated SQLite database, with ratings,
# statuses and dates spread evenly: python3 bench/seed_items.py DATA/poam.db SYSTEM_ID 100000
import sqlite3, sys, uuid, random, datetime
db, sid, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
con = sqlite3.connect(db)
cols = [r[1] for r in con.execute("PRAGMA table_info(items)")]
tpl = con.execute("SELECT * FROM items LIMIT 1").fetchone()
row = dict(zip(cols, tpl))
ratings = [("critical",4),("high",3),("moderate",2),("low",1)]
statuses = ["open","in_progress","completed","closed","deferred"]
today = datetime.date.today()
rows = []
for i in range(2, n + 2):
    r = dict(row)
    r["id"] = str(uuid.uuid4()); r["seq"] = i; r["display_id"] = f"POAM-{i:04d}"
    rating, rank = ratings[i % 4]; r["risk_rating"] = rating; r["risk_rank"] = rank
    st = statuses[i % 5]; r["status"] = st
    det = today - datetime.timedelta(days=200 + i % 100)
    due = today - datetime.timedelta(days=(i % 300) - 150)
    r["detected_on"] = det.isoformat(); r["scheduled_completion"] = due.isoformat(); r["due_key"] = due.isoformat()
    r["completed_on"] = (due + datetime.timedelta(days=i % 20)).isoformat() if st in ("completed","closed") else None
    r["closed_on"] = today.isoformat() if st == "closed" else None
    r["external_id"] = None
    rows.append(tuple(r[c] for c in cols))
con.executemany(f"INSERT INTO items ({','.join(cols)}) VALUES ({','.join('?'*len(cols))})", rows)
con.execute("UPDATE systems SET next_item_seq = ? WHERE id = ?", (n + 1, sid))
con.commit()
print(con.execute("SELECT count(*) FROM items").fetchone()[0])
