#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Loopback fake of Gazelle: the OAuth token endpoint and the private GraphQL endpoint.

Data is generated from a seed, record by record from its index, so any scale (up to the
production 300,000 records) costs no memory: clients (each with a default contact), pianos,
timeline entries (ascending occurredAt, filter occurredAtGet) and events (ascending start,
filters startOn/endOn, both days included). Gazelle documents these filters only as "ISO dates":
--date-filters says how the fake reads them, as America/Montreal dates (default) or as UTC dates.
Text is Québec French with accents, apostrophes and emoji; optional fields are sometimes null.

Usage: gazelle.py --port-file FILE [--seed N] [--clients N] [--pianos N] [--timeline N]
                  [--events N] [--latency-ms MS] [--api-key KEY] [--client-id ID]
                  [--client-secret S] [--token-ttl SEC] [--date-filters montreal|utc]

Control (loopback JSON, for the tests):
  GET  /_state                      counts the client should end with, request counters, tokens
  GET  /_state?startOn=D&endOn=D    ... plus events_in_window for that window
  POST /_control {...}              any of:
       "latency_ms": n              added to every GraphQL request
       "faults": [rule, ...]        appended; rule = {"type": T, "after": n, "count": n (-1 = always),
                                    "match": "allPianos", "retry_after": s, "seconds": s, "status": n}
                                    T: http (status, default 503; 429 sends Retry-After), stall,
                                    truncate, malformed, graphql_error, expire_token
       "clear_faults": true
       "edit": {id: {field: value}}  a record changes
       "delete": [id, ...]           records disappear
       "undelete": [id, ...]
       "append_timeline": n         n new timeline entries after the last one
       "missing_id_every": {"pianos": k}   every k-th piano comes without id
       "add_events": [event, ...]   events besides the generated ones (any field left out gets a
                                    default: an active, unconfirmed APPOINTMENT of the first
                                    technician); "start" is required
       "clear_events": true         the added events are gone (before add_events)
       "date_filters": "utc"|"montreal"   how startOn/endOn are read from now on
       "partial_nested": {"objects": ["user", "defaultContact", ...], "mode": "drop"|"null"}
                                    those nested objects keep only their id: the other fields are
                                    left out ("drop") or null ("null"); {} turns it off
       "token_uses": n              an access token is refused (401) after n GraphQL requests
                                    (0: never accepted; null: no limit, the default)
       "rotate_refresh": bool       issue a new refresh token on every refresh (default true)
       "revoke_refresh": true       the current refresh token stops working
"""

import argparse
import datetime as dt
import json
import os
import random
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

MTL = ZoneInfo("America/Montreal")
TECHNICIANS = [
    ("usr_ofYggsCDt2JAVeNP", "Allan", "Sutton"),
    ("usr_HcCiFk7o0vZ9xAI0", "Nicolas", "Lessard"),
    ("usr_ReUSmIJmBF86ilY1", "Jean-Philippe", "Reny"),
    ("usr_bbt59aCUqUaDWA8n", "Margot", "Charignon"),
]
INSTITUTIONS = [
    ("cli_9UMLkteep8EsISbG", "École de musique Vincent-d'Indy"),
    ("cli_HbEwl9rN11pSuDEU", "Place des Arts"),
    ("cli_sos6RK8t4htOApiM", "UQAM — Université du Québec à Montréal"),
]
FIRST = ["Hélène", "François", "Amélie", "Jérôme", "Zoé", "Benoît", "Geneviève", "Noël", "Maëlle", "Stéphane"]
LAST = ["Côté", "Bélanger", "Gagné", "Lévesque", "D'Amours", "Bédard", "Pépin", "Thériault", "O'Neil", "Léger"]
CITIES = ["Montréal", "Québec", "Trois-Rivières", "Lévis", "Saint-Jérôme", "Sainte-Thérèse", "Orford"]
MAKES = ["Yamaha", "Steinway & Sons", "Kawai", "Baldwin", "Heintzman", "Mason & Risch", "Bösendorfer"]
PTYPES = ["GRAND", "UPRIGHT", "CONSOLE", "SPINET", "STUDIO", "UNKNOWN"]
TTYPES = ["SERVICE_ENTRY_MANUAL", "PIANO_MEASUREMENT", "APPOINTMENT", "NOTE", "CONTACT_EMAIL",
          "INVOICE_PAYMENT", "SYSTEM_NOTIFICATION", "APPOINTMENT_COMPLETION"]
SUMMARIES = [
    "Accord à 440 Hz, l'humidité était à 38 %",
    "Housse enlevée, système d'humidité débranché 😬",
    "Réservoir vide — à remplir, fenêtre ouverte",
    "Réglage de l'étouffoir du ré#4 ✅",
    "Mesure : 21°, 45%",
    "Client satisfait « très bon travail » 🎹",
]
STATUSES = ["ACTIVE", "ACTIVE", "ACTIVE", "CANCELED", "COMPLETE", "NO_SHOW"]
ETYPES = ["APPOINTMENT", "APPOINTMENT", "APPOINTMENT", "PERSONAL", "MEMO"]


def iso(t):
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def timestamp(s):
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def reduce_nested(node, objects, mode):
    """A partial answer: the named nested objects (at any depth) keep their id; their other
    fields are left out ("drop") or null ("null")."""
    if isinstance(node, list):
        return [reduce_nested(x, objects, mode) for x in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for k, v in node.items():
        if k in objects and isinstance(v, dict):
            v = {f: (x if f == "id" else None) for f, x in v.items() if f == "id" or mode == "null"}
        out[k] = reduce_nested(v, objects, mode)
    return out


class Data:
    """Records as pure functions of (seed, kind, index), plus the edits made through /_control."""

    def __init__(self, a):
        self.seed = a.seed
        self.n = {"clients": a.clients, "pianos": a.pianos, "timeline": a.timeline, "events": a.events}
        now = time.time()
        day = 86400
        self.tl_end = (int(now) // day) * day - day           # yesterday 00:00 UTC
        self.tl_step = (8 * 365 * day) / max(a.timeline, 1)   # eight years of history
        self.tl_start = self.tl_end - self.tl_step * max(a.timeline - 1, 0)
        self.ev_start = (int(now) // day) * day - 400 * day
        self.ev_step = (600 * day) / max(a.events, 1)
        self.edits = {}
        self.deleted = set()
        self.missing_id_every = {}
        self.extra_events = []  # added through /_control, ascending start
        self.date_filters = a.date_filters
        self.partial_nested = {}
        self.lock = threading.Lock()

    def rng(self, kind, i):
        return random.Random(self.seed * 1000003 + kind * 7919 + i * 104729)

    @staticmethod
    def maybe(r, v, p=0.15):
        return None if r.random() < p else v

    def client_id(self, i):
        if i < len(INSTITUTIONS):
            return INSTITUTIONS[i][0]
        return f"cli_s{self.seed}c{i:07d}"

    def client(self, i):
        r = self.rng(1, i)
        cid = self.client_id(i)
        if i < len(INSTITUTIONS):
            name = INSTITUTIONS[i][1]
        else:
            name = self.maybe(r, f"{r.choice(FIRST)} {r.choice(LAST)}", 0.3)
        contact = None
        if r.random() > 0.05:
            contact = {
                "id": f"con_s{self.seed}c{i:07d}", "firstName": r.choice(FIRST), "lastName": r.choice(LAST),
                "title": self.maybe(r, "Directrice de l'école", 0.8),
                "wantsEmail": r.random() < 0.7, "wantsPhone": r.random() < 0.5, "wantsText": self.maybe(r, False),
                "defaultEmail": self.maybe(r, {"email": f"client{i}@exemple.qc.ca"}),
                "defaultPhone": self.maybe(r, {"phoneNumber": f"+1514555{i % 10000:04d}"}),
                "defaultLocation": self.maybe(r, {
                    "street1": f"{r.randint(1, 9999)} rue de l'Église", "street2": self.maybe(r, "app. 3", 0.8),
                    "municipality": r.choice(CITIES), "postalCode": "H2X 1Y4", "region": "QC"}),
            }
        created = self.tl_start + r.random() * 86400 * 365
        return {
            "id": cid, "companyName": name, "status": r.choice(["ACTIVE", "ACTIVE", "INACTIVE", "PROSPECT", "NEW"]),
            "tags": self.maybe(r, ["école", "institution"] if i < 5 else ["particulier"]),
            "personalNotes": self.maybe(r, "Chien gentil 🐕, sonner deux fois", 0.7),
            "preferenceNotes": self.maybe(r, "Préfère les rendez-vous l'après-midi", 0.7),
            "clientType": self.maybe(r, "PERSONAL"),
            "preferredTechnicianId": self.maybe(r, r.choice(TECHNICIANS)[0], 0.4),
            "createdAt": iso(created), "updatedAt": iso(created + 86400),
            "defaultClientLocalization": self.maybe(r, {"locale": "fr_CA"}),
            "defaultContact": contact,
        }

    def piano(self, i):
        r = self.rng(2, i)
        created = self.tl_start + r.random() * 86400 * 365
        installed = self.maybe(r, r.random() < 0.3)
        return {
            "id": f"ins_s{self.seed}p{i:07d}",
            "client": {"id": self.client_id(i % max(self.n["clients"], 1))} if self.n["clients"] else None,
            "make": self.maybe(r, r.choice(MAKES)), "model": self.maybe(r, f"U{r.randint(1, 5)}"),
            "serialNumber": self.maybe(r, str(r.randint(100000, 9999999))), "type": r.choice(PTYPES),
            "year": self.maybe(r, r.randint(1890, 2025)), "location": self.maybe(r, "Salle Pierre-Mercure, 2ᵉ étage"),
            "notes": self.maybe(r, "Touches collantes l'hiver ❄️", 0.6),
            "status": r.choice(["ACTIVE", "ACTIVE", "INACTIVE", "TEMPORARY_STORAGE"]),
            "size": self.maybe(r, "5'8\""), "caseColor": self.maybe(r, "Noir"), "caseFinish": self.maybe(r, "Poli"),
            "serviceIntervalMonths": self.maybe(r, r.choice([6, 12])),
            "calculatedLastService": self.maybe(r, "2026-03-04"), "calculatedNextService": self.maybe(r, "2027-03-04"),
            "damppChaserInstalled": installed, "damppChaserHumidistatModel": self.maybe(r, "HC-1", 0.7),
            "damppChaserMfgDate": self.maybe(r, "2019-05-01", 0.7),
            "createdAt": iso(created), "updatedAt": iso(created + 3600),
        }

    def timeline(self, i):
        r = self.rng(3, i)
        tech = self.maybe(r, r.choice(TECHNICIANS))
        nc = max(self.n["clients"], 1)
        return {
            "id": f"tme_s{self.seed}t{i:07d}", "occurredAt": iso(self.tl_start + i * self.tl_step),
            "type": r.choice(TTYPES), "summary": self.maybe(r, r.choice(SUMMARIES)),
            "comment": self.maybe(r, "Propriétaire : « l'instrument sonne mieux » 👍", 0.6),
            "client": self.maybe(r, {"id": self.client_id(r.randrange(nc))}),
            "piano": self.maybe(r, {"id": f"ins_s{self.seed}p{r.randrange(max(self.n['pianos'], 1)):07d}"}),
            "invoice": self.maybe(r, {"id": f"inv_{i}"}, 0.9), "estimate": self.maybe(r, {"id": f"est_{i}"}, 0.95),
            "user": {"id": tech[0], "firstName": tech[1], "lastName": tech[2]} if tech else None,
        }

    def event(self, i):
        r = self.rng(4, i)
        tech = r.choice(TECHNICIANS)
        start = self.ev_start + i * self.ev_step
        nc = max(self.n["clients"], 1)
        return {
            "id": f"evt_s{self.seed}e{i:07d}", "title": self.maybe(r, f"Accord — {r.choice(LAST)}", 0.1),
            "start": iso(start), "duration": r.choice([30, 60, 90, 120]), "isAllDay": r.random() < 0.02,
            "notes": self.maybe(r, "Code de porte : 1234, stationnement à l'arrière", 0.6),
            "type": r.choice(ETYPES), "status": r.choice(STATUSES),
            "confirmedByClient": r.random() < 0.5, "confirmedAt": self.maybe(r, iso(start - 86400), 0.5),
            "source": self.maybe(r, "MANUAL"), "travelMode": self.maybe(r, "DRIVING"),
            "createdAt": iso(start - 30 * 86400), "updatedAt": iso(start - 20 * 86400),
            "client": self.maybe(r, {"id": self.client_id(r.randrange(nc))}, 0.1),
            "user": {"id": tech[0], "firstName": tech[1], "lastName": tech[2]},
            "createdBy": {"id": TECHNICIANS[0][0]},
            "allEventPianos": {"nodes": [{"piano": {"id": f"ins_s{self.seed}p{r.randrange(max(self.n['pianos'], 1)):07d}"}}]},
        }

    def extra_event(self, node):
        """An added event: the fields it leaves out take an ordinary value."""
        tech = TECHNICIANS[0]
        out = {"id": node["id"], "title": "Accord", "start": node["start"], "duration": 60, "isAllDay": False,
               "notes": None, "type": "APPOINTMENT", "status": "ACTIVE", "confirmedByClient": False,
               "confirmedAt": None, "source": "MANUAL", "travelMode": None, "createdAt": node["start"],
               "updatedAt": node["start"], "client": {"id": self.client_id(len(INSTITUTIONS))},
               "user": {"id": tech[0], "firstName": tech[1], "lastName": tech[2]},
               "createdBy": {"id": tech[0]}, "allEventPianos": {"nodes": []}}
        out.update(node)
        return out

    def add_events(self, nodes):
        with self.lock:
            self.extra_events = sorted(self.extra_events + [self.extra_event(n) for n in nodes],
                                       key=lambda n: timestamp(n["start"]))

    def get(self, kind, i):
        make = {"clients": self.client, "pianos": self.piano, "timeline": self.timeline, "events": self.event}
        if kind == "events" and i >= self.n["events"]:
            with self.lock:
                node = dict(self.extra_events[i - self.n["events"]])
        else:
            node = make[kind](i)
        with self.lock:
            if node["id"] in self.deleted:
                return None
            e = self.edits.get(node["id"])
            if e:
                node = dict(node, **e)
            k = self.missing_id_every.get(kind)
            partial = dict(self.partial_nested)
        if k and i % k == k - 1:
            node = dict(node, id=None)
        if partial.get("objects"):
            node = reduce_nested(node, partial["objects"], partial.get("mode", "drop"))
        return node

    def first_index(self, kind, t):
        """First index whose time is >= t (timeline entries and events ascend)."""
        start, step = (self.tl_start, self.tl_step) if kind == "timeline" else (self.ev_start, self.ev_step)
        if t <= start:
            return 0
        return int(-(-(t - start) // step)) if step else self.n[kind]

    def date_start(self, iso_date):
        """The instant a filter date starts, as this fake reads dates."""
        d = dt.date.fromisoformat(iso_date)
        tz = dt.timezone.utc if self.date_filters == "utc" else MTL
        return dt.datetime(d.year, d.month, d.day, tzinfo=tz).timestamp()

    def select(self, args, kind):
        """The indexes a query's arguments select, in order (a range, or a list with added events)."""
        n = self.n[kind]
        if kind == "timeline" and args.get("occurredAtGet"):
            return range(min(self.first_index(kind, timestamp(args["occurredAtGet"])), n), n)
        if kind != "events":
            return range(0, n)
        f = args.get("filters") or {}
        t_lo = self.date_start(f["startOn"]) if f.get("startOn") else None
        t_hi = self.date_start((dt.date.fromisoformat(f["endOn"]) + dt.timedelta(days=1)).isoformat()) \
            if f.get("endOn") else None
        lo = min(self.first_index(kind, t_lo), n) if t_lo is not None else 0
        hi = min(self.first_index(kind, t_hi), n) if t_hi is not None else n
        sel = range(lo, max(lo, hi))
        with self.lock:
            extra = [n + j for j, e in enumerate(self.extra_events)
                     if (t_lo is None or timestamp(e["start"]) >= t_lo) and (t_hi is None or timestamp(e["start"]) < t_hi)]
        return list(sel) + extra if extra else sel

    def count(self, kind, sel):
        n = self.n[kind]
        with self.lock:
            if isinstance(sel, range):
                dead = sum(1 for x in self.deleted if x.startswith(self.prefix(kind)) and sel.start <= self.index_of(x) < sel.stop)
                return len(sel) - dead
            dead_ids = set(self.deleted)
            live = 0
            for i in sel:
                if i >= n:
                    live += self.extra_events[i - n]["id"] not in dead_ids
                else:
                    live += f"{self.prefix(kind)}s{self.seed}e{i:07d}" not in dead_ids
            return live

    def prefix(self, kind):
        return {"clients": "cli_", "pianos": "ins_", "timeline": "tme_", "events": "evt_"}[kind]

    @staticmethod
    def index_of(ident):
        digits = "".join(ch for ch in ident[-7:] if ch.isdigit())
        return int(digits) if len(digits) == 7 else -1


class State:
    def __init__(self, a):
        self.a = a
        self.data = Data(a)
        self.lock = threading.Lock()
        self.latency_ms = a.latency_ms
        self.faults = []
        self.graphql_requests = 0
        self.token_requests = 0
        self.faults_fired = 0
        self.access_tokens = set()
        self.token_uses = None  # GraphQL requests an access token serves before it expires
        self.uses = {}
        self.refresh_token = None
        self.rotate = True
        self.serial = 0
        self.codes = {"code-ok"}

    def new_tokens(self, rotate):
        self.serial += 1
        access = f"acc-{self.serial}-{random.getrandbits(48):x}"
        self.access_tokens = {access}
        if rotate or not self.refresh_token:
            self.refresh_token = f"ref-{self.serial}-{random.getrandbits(48):x}"
            return access, self.refresh_token
        return access, None

    def next_fault(self, query):
        with self.lock:
            self.graphql_requests += 1
            for f in self.faults:
                if f.get("match") and f["match"] not in query:
                    continue
                if f.get("after", 0) > 0:
                    f["after"] -= 1
                    continue
                if f.get("count", 1) == 0:
                    continue
                if f.get("count", 1) > 0:
                    f["count"] = f.get("count", 1) - 1
                self.faults_fired += 1
                return dict(f)
        return None


KINDS = {"allClients": "clients", "allPianos": "pianos", "allTimelineEntries": "timeline",
         "allEventsBatched": "events"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeGazelle/1"
    # Headers and body leave in one write, without Nagle: otherwise every response waits for
    # the client's delayed ACK (40 ms) and the fake measures TCP, not the client.
    disable_nagle_algorithm = True
    wbufsize = 1 << 16

    def handle(self):
        try:
            super().handle()
        except (ConnectionResetError, BrokenPipeError):
            pass  # the client went away (a killed sync, a timeout): not the fake's problem

    def log_message(self, fmt, *args):
        if os.environ.get("FAKE_GAZELLE_VERBOSE"):
            sys.stderr.write("fake-gazelle: " + fmt % args + "\n")

    @property
    def st(self):
        return self.server.state

    def send(self, status, obj=None, raw=None, headers=(), ctype="application/json"):
        body = raw if raw is not None else json.dumps(obj, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        if u.path != "/_state":
            return self.send(404, {"error": "not found"})
        qs = dict(urllib.parse.parse_qsl(u.query))
        d = self.st.data
        n = d.n
        counts = {k: d.count(k, range(0, n[k])) for k in n}
        contacts = 0
        for i in range(n["clients"]):
            c = d.get("clients", i)
            if c and c.get("id") and c.get("defaultContact"):
                contacts += 1
        out = {"counts": dict(counts, contacts=contacts), "graphql_requests": self.st.graphql_requests,
               "token_requests": self.st.token_requests, "faults_fired": self.st.faults_fired,
               "refresh_token": self.st.refresh_token, "serial": self.st.serial}
        if "startOn" in qs:
            out["events_in_window"] = d.count("events", d.select({"filters": qs}, "events"))
        if "occurredAtGet" in qs:
            out["timeline_since"] = d.count("timeline", d.select(qs, "timeline"))
        self.send(200, out)

    def do_POST(self):
        path = urllib.parse.urlsplit(self.path).path
        raw = self.body()
        if path == "/_control":
            return self.control(json.loads(raw or b"{}"))
        if path == "/developer/oauth/token":
            return self.token(dict(urllib.parse.parse_qsl(raw.decode())))
        if path == "/graphql/private/":
            return self.graphql(raw)
        self.send(404, {"error": "not found"})

    def control(self, c):
        st, d = self.st, self.st.data
        with st.lock:
            if c.get("clear_faults"):
                st.faults = []
            st.faults += [dict(f) for f in c.get("faults", [])]
            if "latency_ms" in c:
                st.latency_ms = c["latency_ms"]
            if "rotate_refresh" in c:
                st.rotate = bool(c["rotate_refresh"])
            if c.get("revoke_refresh"):
                st.refresh_token = None
            if "token_ttl" in c:
                st.a.token_ttl = c["token_ttl"]
            if "token_uses" in c:
                st.token_uses = c["token_uses"]
        with d.lock:
            for k, v in c.get("edit", {}).items():
                d.edits.setdefault(k, {}).update(v)
            d.deleted |= set(c.get("delete", []))
            d.deleted -= set(c.get("undelete", []))
            d.missing_id_every.update(c.get("missing_id_every", {}))
            d.n["timeline"] += int(c.get("append_timeline", 0))
            if c.get("date_filters") in ("utc", "montreal"):
                d.date_filters = c["date_filters"]
            if "partial_nested" in c:
                d.partial_nested = dict(c["partial_nested"] or {})
        if c.get("clear_events"):
            with d.lock:
                d.extra_events = []
        if c.get("add_events"):
            d.add_events(c["add_events"])
        self.send(200, {"ok": True})

    def token(self, f):
        st = self.st
        with st.lock:
            st.token_requests += 1
            if f.get("client_id") != st.a.client_id or f.get("client_secret") != st.a.client_secret:
                return self.send(401, {"error": "invalid_client", "error_description": "Client authentication failed"})
            g = f.get("grant_type")
            if g == "authorization_code":
                if f.get("code") not in st.codes or not f.get("redirect_uri"):
                    return self.send(400, {"error": "invalid_grant", "error_description": "Code d'autorisation invalide"})
                access, refresh = st.new_tokens(True)
            elif g == "refresh_token":
                if not st.refresh_token or f.get("refresh_token") != st.refresh_token:
                    return self.send(400, {"error": "invalid_grant", "error_description": "The refresh token is invalid."})
                access, refresh = st.new_tokens(st.rotate)
            else:
                return self.send(400, {"error": "unsupported_grant_type",
                                       "error_description": "The authorization grant type is not supported."})
        out = {"access_token": access, "token_type": "Bearer", "expires_in": st.a.token_ttl}
        if refresh:
            out["refresh_token"] = refresh
        self.send(200, out)

    def authorized(self):
        key = self.headers.get("x-gazelle-api-key")
        if key is not None:
            return self.st.a.api_key is not None and key == self.st.a.api_key
        auth = self.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else None
        st = self.st
        with st.lock:
            if token not in st.access_tokens:
                return False
            if st.token_uses is None:
                return True
            used = st.uses.get(token, 0)
            if used >= st.token_uses:
                return False  # expired
            st.uses[token] = used + 1
            return True

    def graphql(self, raw):
        st = self.st
        try:
            req = json.loads(raw)
            query, args = req["query"], req.get("variables") or {}
        except (ValueError, KeyError, TypeError):
            return self.send(400, {"errors": [{"message": "Requête JSON invalide"}]})
        f = st.next_fault(query)
        if st.latency_ms:
            time.sleep(st.latency_ms / 1000)
        if f and f["type"] == "expire_token":
            st.access_tokens = set()
            f = None
        if not self.authorized():
            return self.send(401, {"errors": [{"message": "Unauthorized: token expired or invalid"}]})
        if f:
            t = f["type"]
            if t == "http":
                status = f.get("status", 503)
                hdrs = [("Retry-After", str(f.get("retry_after", 1)))] if status == 429 else []
                return self.send(status, {"errors": [{"message": f"Erreur simulée {status} — réessayez"}]}, headers=hdrs)
            if t == "stall":
                time.sleep(f.get("seconds", 3600))
            if t == "graphql_error":
                return self.send(200, {"data": None, "errors": [{"message": "Field 'allPianos' n'existe pas (simulé)",
                                                                  "path": ["allPianos"]}]})
            if t == "malformed":
                return self.send(200, raw=b'{"data": {"allClients": {"nodes": [{"id": "cli_')
        kind = next((KINDS[k] for k in KINDS if k in query), None)
        if not kind:
            return self.send(200, {"errors": [{"message": "Unknown query (fake supports allClients, allPianos, "
                                                          "allTimelineEntries, allEventsBatched)"}]})
        name = next(k for k in KINDS if KINDS[k] == kind)
        first = min(int(args.get("first") or 100), 100)
        sel = st.data.select(args, kind)
        # The cursor is a position in the selection.
        pos = int(args["after"]) if args.get("after") else 0
        nodes = []
        while pos < len(sel) and len(nodes) < first:
            node = st.data.get(kind, sel[pos])
            pos += 1
            if node is not None:
                nodes.append(node)
        page = {"nodes": nodes, "pageInfo": {"hasNextPage": pos < len(sel), "endCursor": str(pos)},
                "totalCount": st.data.count(kind, sel)}
        body = json.dumps({"data": {name: page}}, ensure_ascii=False).encode()
        if f and f["type"] == "truncate":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.send(200, raw=body)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--clients", type=int, default=40)
    p.add_argument("--pianos", type=int, default=30)
    p.add_argument("--timeline", type=int, default=500)
    p.add_argument("--events", type=int, default=200)
    p.add_argument("--latency-ms", type=int, default=0)
    p.add_argument("--api-key")
    p.add_argument("--client-id", default="fake-client-id")
    p.add_argument("--client-secret", default="fake-client-secret")
    p.add_argument("--token-ttl", type=int, default=3600)
    p.add_argument("--refresh-token", help="a refresh token that works from the start")
    p.add_argument("--date-filters", choices=("montreal", "utc"), default="montreal",
                   help="read startOn/endOn as America/Montreal dates or as UTC dates")
    a = p.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    srv.state = State(a)
    if a.refresh_token:
        srv.state.refresh_token = a.refresh_token
    port = srv.server_address[1]
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.rename(tmp, a.port_file)
    print(f"fake-gazelle listening on 127.0.0.1:{port}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
