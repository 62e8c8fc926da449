#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Production-scale timeline history for the Rapport Timeline tests and benchmark.

Writes clients, pianos, users and timeline entries straight into the store (SQLite file, or
CSV files for psql \\copy into PostgreSQL), plus the report the product must build from them:
one expected CSV per tab, byte for byte (RFC 4180, UTF-8 with BOM), and a summary JSON.

Every relevant piano-day is one of a few known shapes (service; service + measurement the same
Montréal day, folded; measurement alone; service imported twice as tle_ + tme_; two services),
so the expected rows are known without re-implementing the builder. Timestamps are unique, so
the order is fully determined.

Usage: gen-report-history.py --out DIR [--sqlite PATH | --pg-csv] [--seed N]
                             [--entries N] [--relevant N]
"""

import argparse
import datetime as dt
import json
import os
import random
import sqlite3
import unicodedata
from zoneinfo import ZoneInfo

MTL = ZoneInfo("America/Montreal")
UTC = dt.timezone.utc
SYNCED = "2026-11-20T07:00:00.000000Z"

TECHS = [  # id, first, last, display name (configured)
    ("usr_ofYggsCDt2JAVeNP", "Allan", "Sutton", "Allan"),
    ("usr_HcCiFk7o0vZ9xAI0", "Nicolas", "Lessard", "Nick"),
    ("usr_ReUSmIJmBF86ilY1", "Jean-Philippe", "Reny", "JP"),
    ("usr_bbt59aCUqUaDWA8n", "Margot", "Charignon", "Margot"),
]
OTHER_USERS = [("usr_temp00000001", "Gaston", "Côté"), ("usr_temp00000002", "Zoé", "L'Heureux")]

# (tab, client id, client name, pianos); annexes match the default name patterns only.
INSTITUTION_CLIENTS = [
    ("UQAM", "cli_sos6RK8t4htOApiM", "UQAM — Université du Québec à Montréal", 60),
    ("UQAM", "cli_annexeUqam0001", "Uqàm - Pavillon Judith-Jasmin", 20),
    ("Vincent d'Indy", "cli_9UMLkteep8EsISbG", "École de musique Vincent-d'Indy", 70),
    ("Place des Arts", "cli_HbEwl9rN11pSuDEU", "Place des Arts", 40),
    ("Place des Arts", "cli_annexePdA00001", "PLACE DES ARTS — Salle Wilfrid-Pelletier", 10),
]
TABS = ["UQAM", "Vincent d'Indy", "Place des Arts", "Orford"]  # Orford: configured, no history
ORFORD = "cli_PmqPUBTbPFeCMGmz"

COLUMNS = ["DateEvenement", "TypeEvenement", "Description", "NomClient", "Marque", "Modele", "NumeroSerie",
           "TypePiano", "Annee", "Local", "Technicien", "MesureHumidite"]
ALERT_COLUMNS = COLUMNS[:1] + ["Institution"] + COLUMNS[1:] + ["MotCle"]
PIANO_TYPES = {"GRAND": "Piano à queue", "UPRIGHT": "Piano droit", "STUDIO": "Studio", "CONSOLE": "Console",
               "SPINET": "Spinet", "UNKNOWN": ""}
MAKES = [("Steinway & Sons", "D-274"), ("Yamaha", "C7X"), ("Kawai", "K-500"), ("Baldwin", "Hamilton"),
         ("Heintzman", "Salon"), ("Bösendorfer", "280VC"), ("Fazioli", "F278")]
ROOMS = ["Salle 1", "Studio B", "Local D-R200", "Salle Pierre-Mercure", "Foyer, 2e étage", "Classe \"verte\""]
SERVICES = ["Accord 440", "Accord 442 et réglage", "Réglage du mécanisme", "Égalisation des marteaux",
            "Remplacement d'une corde (la 3)", "Nettoyage, lubrification", "Harmonisation", "Vérification générale",
            "Réparation de la pédale douce", "Accord avant concert 🎹"]
COMMENTS = ["Client présent", "Prochain accord dans 3 mois", "Pièce à commander\nchez le fournisseur",
            "Le prof dit : \"parfait\""]
# Keyword phrases as people type them (case, accents); the expected keyword is the default list's.
ALERT_PHRASES = [("HOUSSE ENLEVÉE", "housse enlevée"), ("Dampp-Chaser débranché", "débranché"),
                 ("reservoir vide", "réservoir vide"), ("Fenêtre ouverte", "fenêtre ouverte"),
                 ("pièce trop sèche", "trop sec"), ("Salle trop humide", "trop humide"),
                 ("il fait trop froid", "trop froid")]
OTHER_TYPES = ["NOTE", "APPOINTMENT", "APPOINTMENT_COMPLETION", "CONTACT_EMAIL", "INVOICE_PAYMENT",
               "SYSTEM_NOTIFICATION", "ERROR_MESSAGE", "SERVICE_ENTRY_AUTOMATED"]
SVC, MES = "SERVICE_ENTRY_MANUAL", "PIANO_MEASUREMENT"
FIRST_DAY = dt.date(2016, 1, 4)
LAST_DAY = dt.date(2026, 11, 20)


def measurement(rng):
    """(text, expected MesureHumidite) in the formats technicians and Gazelle produce."""
    c, h = rng.randint(17, 25), rng.randint(25, 60)
    f = round(c * 9 / 5 + 32)
    fc = round((f - 32) * 5 / 9)
    kind = rng.randrange(5)
    if kind == 0:
        return f"Température {c}°C, humidité {h} %", f"{c}°, {h}%"
    if kind == 1:
        return f"{f}°F / {h}%", f"{fc}°, {h}%"
    if kind == 2:
        return f"Humidité relative : {h}", f"{h}%"
    if kind == 3:
        return f"Temperature {f}, Humidity {h}", f"{fc}°, {h}%"
    return f"{c} °C", f"{c}°"


def csv_field(s):
    if any(ch in s for ch in ',"\r\n'):
        return '"' + s.replace('"', '""') + '"'
    return s


def csv_record(fields):
    return ",".join(csv_field(f) for f in fields) + "\r\n"


def iso(t):
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def fold(s):
    s = s.replace("œ", "oe").replace("’", "'")
    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c)).lower()


class Gen:
    def __init__(self, seed, entries, relevant):
        self.rng = random.Random(seed)
        self.target_entries, self.target_relevant = entries, relevant
        self.clients, self.pianos, self.users, self.timeline = [], [], [], []
        self.rows = {t: [] for t in TABS}   # (occurred_at, id, fields)
        self.alerts = []                    # (occurred_at, id, fields)
        self.stats = {"folded": 0, "duplicates": 0, "relevant_entries": 0}
        self.tick = 0                       # makes every timestamp unique

    def when(self, day, hour, minute):
        self.tick += 1
        local = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=MTL)
        return local + dt.timedelta(microseconds=self.tick)

    def add_entry(self, eid, at, typ, summary, comment, client, piano, user, deleted=False):
        self.timeline.append((eid, iso(at), typ, summary, comment, client, piano, user, SYNCED,
                              SYNCED if deleted else None))

    def make_people(self):
        rng = self.rng
        for (uid, first, last, _) in TECHS:
            self.users.append((uid, first, last, SYNCED))
        for (uid, first, last) in OTHER_USERS:
            self.users.append((uid, first, last, SYNCED))
        self.inst_pianos = []
        n = 0
        for (tab, cid, name, count) in INSTITUTION_CLIENTS:
            self.clients.append((cid, name, "ACTIVE", SYNCED))
            for _ in range(count):
                n += 1
                make, model = rng.choice(MAKES)
                ptype = rng.choice(list(PIANO_TYPES))
                year = rng.choice([None, 0] + list(range(1950, 2024)))
                pid = f"ins_inst{n:05d}"
                p = (pid, cid, make, model, f"SN-{n:05d}", ptype, year, rng.choice(ROOMS), SYNCED)
                self.pianos.append(p)
                self.inst_pianos.append((tab, name, p))
        self.clients.append((ORFORD, "Centre d'arts Orford", "ACTIVE", SYNCED))
        self.other_clients = [f"cli_o{i:07d}" for i in range(4000)]
        for cid in self.other_clients:
            self.clients.append((cid, f"{rng.choice(['Hélène', 'Jérôme', 'Zoé', 'Benoît'])} "
                                      f"{rng.choice(['Côté', 'Gagné', 'D’Amours', 'Lévesque'])}", "ACTIVE", SYNCED))
        self.other_pianos = []
        for i in range(800):
            pid = f"ins_o{i:07d}"
            make, model = rng.choice(MAKES)
            self.pianos.append((pid, rng.choice(self.other_clients), make, model, f"O-{i}", "UPRIGHT", 1990,
                                "Salon", SYNCED))
            self.other_pianos.append(pid)

    def piano_fields(self, p):
        (_, _, make, model, serial, ptype, year, room, _) = p
        return [make, model, serial, PIANO_TYPES[ptype], "" if not year else str(year), room]

    def emit(self, tab, client_name, at, eid, typ, text, pfields, user, humidity=""):
        tech = ""
        if user:
            tech = next((t[3] for t in TECHS if t[0] == user), None) or \
                next(f"{u[1]} {u[2]}" for u in OTHER_USERS if u[0] == user)
        fields = [at.astimezone(MTL).strftime("%Y-%m-%d"), typ, text, client_name] + pfields + [tech, humidity]
        self.rows[tab].append((at, eid, fields))
        folded = fold(text)
        for phrase, kw in ALERT_PHRASES:
            if fold(kw) in folded:
                self.alerts.append((at, eid, fields[:1] + [tab] + fields[1:] + [kw]))
                break

    def service_text(self):
        rng = self.rng
        s = rng.choice(SERVICES)
        c = rng.choice(COMMENTS) if rng.random() < 0.2 else None
        if rng.random() < 0.04:
            phrase = rng.choice(ALERT_PHRASES)[0]
            if c is None:
                s = f"{s} ; {phrase}"
            else:
                c = f"{c} ; {phrase}"
        return s, c, (f"{s} — {c}" if c else s)

    def make_relevant(self):
        rng = self.rng
        span = (LAST_DAY - FIRST_DAY).days
        per_piano = max(1, round(self.target_relevant / 1.35 / len(self.inst_pianos)))
        n = 0
        for (tab, cname, p) in self.inst_pianos:
            pid, cid = p[0], p[1]
            pf = self.piano_fields(p)
            for off in rng.sample(range(span), per_piano):
                day = FIRST_DAY + dt.timedelta(days=off)
                kind = rng.random()
                user = rng.choice([t[0] for t in TECHS] + [u[0] for u in OTHER_USERS] + [None])
                n += 1
                if kind < 0.10:  # a measurement alone
                    text, hum = measurement(rng)
                    at = self.when(day, rng.randint(8, 18), rng.randint(0, 59))
                    self.add_entry(f"tme_m{n:09d}", at, MES, text, None, cid, pid, user)
                    self.emit(tab, cname, at, f"tme_m{n:09d}", "Mesure", text, pf, user, hum)
                    continue
                s, c, text = self.service_text()
                at = self.when(day, rng.randint(9, 18), rng.randint(0, 59))
                self.add_entry(f"tme_s{n:09d}", at, SVC, s, c, cid, pid, user)
                hum = ""
                if kind < 0.35:  # + a measurement the same day, before or after: folded
                    mtext, hum = measurement(rng)
                    mat = self.when(day, rng.choice([8, 19]), rng.randint(0, 59))
                    self.add_entry(f"tme_f{n:09d}", mat, MES, mtext, None, cid, pid, user)
                    self.stats["folded"] += 1
                elif kind < 0.40:  # the old CSV import's copy, same instant: dropped
                    self.add_entry(f"tle_s{n:09d}", at, SVC, s, c, cid, pid,
                                   rng.choice([u[0] for u in OTHER_USERS]))
                    self.stats["duplicates"] += 1
                elif kind < 0.45:  # a second, different service the same day: its own row
                    s2 = s + " (suite)"
                    at2 = self.when(day, 8, rng.randint(0, 59))
                    self.add_entry(f"tme_t{n:09d}", at2, SVC, s2, c, cid, pid, user)
                    self.emit(tab, cname, at2, f"tme_t{n:09d}", "Service", f"{s2} — {c}" if c else s2, pf, user)
                self.emit(tab, cname, at, f"tme_s{n:09d}", "Service", text, pf, user, hum)
        # Entries without a piano, at the institutions' own clients.
        for i in range(300):
            tab, cid, cname, _ = rng.choice(INSTITUTION_CLIENTS)
            day = FIRST_DAY + dt.timedelta(days=rng.randrange(span))
            at = self.when(day, 12, 0)
            text = f"Visite sans piano n° {i}, bâtiment \"A\""
            self.add_entry(f"tme_n{i:09d}", at, SVC, text, None, cid, None, None)
            self.emit(tab, cname, at, f"tme_n{i:09d}", "Service", text, [""] * 6, None)
        # Never in the report: deleted, other types on institution pianos.
        for i in range(400):
            tab, cname, p = rng.choice(self.inst_pianos)
            day = FIRST_DAY + dt.timedelta(days=rng.randrange(span))
            at = self.when(day, 10, 0)
            if i % 2:
                self.add_entry(f"tme_d{i:09d}", at, SVC, "Supprimé", None, p[1], p[0], None, deleted=True)
            else:
                self.add_entry(f"tme_x{i:09d}", at, rng.choice(OTHER_TYPES), "Note interne", None, p[1], p[0], None)
        self.stats["relevant_entries"] = len(self.timeline) - 400

    def make_noise(self):
        rng = self.rng
        span = (LAST_DAY - FIRST_DAY).days
        types = OTHER_TYPES + [SVC, SVC, MES]
        for i in range(max(0, self.target_entries - len(self.timeline))):
            day = FIRST_DAY + dt.timedelta(days=rng.randrange(span))
            at = dt.datetime(day.year, day.month, day.day, 15, 0, tzinfo=UTC) + dt.timedelta(seconds=i % 3600)
            piano = rng.choice(self.other_pianos) if rng.random() < 0.6 else None
            self.add_entry(f"tme_z{i:09d}", at, rng.choice(types), rng.choice(SERVICES), None,
                           rng.choice(self.other_clients), piano, rng.choice(TECHS)[0])

    def write_expected(self, out):
        os.makedirs(out, exist_ok=True)
        slugs = {"UQAM": "uqam", "Vincent d'Indy": "vincent-d-indy", "Place des Arts": "place-des-arts",
                 "Orford": "orford"}
        summary = {"rows": {}, "files": {}, **self.stats, "entries": len(self.timeline)}
        for tab in TABS:
            rows = sorted(self.rows[tab], key=lambda r: (r[0], r[1]), reverse=True)
            path = os.path.join(out, slugs[tab] + ".csv")
            with open(path, "w", encoding="utf-8", newline="") as f:
                f.write("\ufeff" + csv_record(COLUMNS))
                for r in rows:
                    f.write(csv_record(r[2]))
            summary["rows"][tab] = len(rows)
            summary["files"][tab] = slugs[tab] + ".csv"
        alerts = sorted(self.alerts, key=lambda r: (r[0], r[1]), reverse=True)
        with open(os.path.join(out, "alertes-maintenance.csv"), "w", encoding="utf-8", newline="") as f:
            f.write("\ufeff" + csv_record(ALERT_COLUMNS))
            for r in alerts:
                f.write(csv_record(r[2]))
        summary["rows"]["Alertes Maintenance"] = len(alerts)
        summary["files"]["Alertes Maintenance"] = "alertes-maintenance.csv"
        with open(os.path.join(out, "summary.json"), "w") as f:
            json.dump(summary, f, indent=1, ensure_ascii=False)
        config = {
            "technicians": [{"id": t[0], "full_name": f"{t[1]} {t[2]}", "display_name": t[3]} for t in TECHS],
            "institutions": [
                {"title": "UQAM", "client_ids": ["cli_sos6RK8t4htOApiM"], "name_patterns": ["UQAM"]},
                {"title": "Vincent d'Indy", "client_ids": ["cli_9UMLkteep8EsISbG"], "name_patterns": ["Vincent d'Indy"]},
                {"title": "Place des Arts", "client_ids": ["cli_HbEwl9rN11pSuDEU"], "name_patterns": ["Place des Arts"]},
                {"title": "Orford", "client_ids": [ORFORD]},
            ],
        }
        with open(os.path.join(out, "config.json"), "w") as f:
            json.dump(config, f, indent=1, ensure_ascii=False)
        return summary


CLIENT_COLS = "external_id, company_name, status, synced_at"
PIANO_COLS = "external_id, client_external_id, make, model, serial_number, type, year, location, synced_at"
USER_COLS = "external_id, first_name, last_name, synced_at"
TIMELINE_COLS = ("external_id, occurred_at, type, summary, comment, client_external_id, piano_external_id, "
                 "user_external_id, synced_at, deleted_at")


def write_sqlite(g, path):
    db = sqlite3.connect(path)
    # A fresh store: one big transaction, a large cache (random primary-key inserts), no syncs.
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-262144")
    # Indexes are dropped during the load and rebuilt after (one sort each instead of random
    # B-tree inserts): three times faster on a busy machine.
    indexes = db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                         "AND tbl_name = 'gazelle_timeline_entries'").fetchall()
    with db:
        for name, _ in indexes:
            db.execute(f'DROP INDEX "{name}"')
        for table, cols, rows in (("gazelle_clients", CLIENT_COLS, g.clients), ("gazelle_pianos", PIANO_COLS, g.pianos),
                                  ("gazelle_users", USER_COLS, g.users),
                                  ("gazelle_timeline_entries", TIMELINE_COLS, g.timeline)):
            marks = ", ".join("?" * len(cols.split(",")))
            db.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)
        for _, sql in indexes:
            db.execute(sql)
    db.execute("ANALYZE")
    db.close()


def write_pg_csv(g, out):
    import csv
    for table, cols, rows in (("gazelle_clients", CLIENT_COLS, g.clients), ("gazelle_pianos", PIANO_COLS, g.pianos),
                              ("gazelle_users", USER_COLS, g.users),
                              ("gazelle_timeline_entries", TIMELINE_COLS, g.timeline)):
        with open(os.path.join(out, table + ".csv"), "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            for r in rows:
                w.writerow(["\\N" if v is None else v for v in r])
        with open(os.path.join(out, table + ".cols"), "w") as f:
            f.write(cols)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, help="expected CSV files, summary.json, config.json")
    ap.add_argument("--sqlite", help="a migrated SQLite store to fill")
    ap.add_argument("--pg-csv", action="store_true", help="write <table>.csv files into --out for psql \\copy")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--entries", type=int, default=283000)
    ap.add_argument("--relevant", type=int, default=24000)
    a = ap.parse_args()
    g = Gen(a.seed, a.entries, a.relevant)
    g.make_people()
    g.make_relevant()
    g.make_noise()
    summary = g.write_expected(a.out)
    if a.sqlite:
        write_sqlite(g, a.sqlite)
    if a.pg_csv:
        write_pg_csv(g, a.out)
    print(json.dumps({k: summary[k] for k in ("entries", "relevant_entries", "folded", "duplicates", "rows")},
                     ensure_ascii=False))


if __name__ == "__main__":
    main()
