/* SPDX-License-Identifier: MIT
 *
 * gazelle-scheduler.js — behaviour of the "Journal des tâches" Cockpit page.
 *
 * Talks to gazelle-schedulerd (com.piano_tek.GazelleScheduler1) over Cockpit's D-Bus bridge:
 * ListTasks for the cards, GetTaskLogs for the history, RunTask for "Lancer maintenant", and
 * Subscribe() so that the daemon stays up and signals TaskStarted/TaskFinished for every run,
 * whoever started it. The live progress text is the unit's StatusText (sd_notify STATUS=) read
 * from systemd itself. A run's journal lines come from journalctl GAZELLE_RUN_ID=… through
 * cockpit.spawn. A refresh every 30 s is only a safety net.
 *
 * The bus (system for the installed product, session for the user flavour) is the one setting
 * of the package: manifest.json's "config": {"bus": …, "admin_group": …}, read through
 * ../manifests.js; the admin group is the build's (meson option admin_group).
 */
"use strict";

(function () {
    const SERVICE = "com.piano_tek.GazelleScheduler1";
    const PATH = "/com/piano_tek/GazelleScheduler1";
    const IFACE = SERVICE;
    const ERR = SERVICE + ".Error.";
    const SYSTEMD = "org.freedesktop.systemd1";
    const HISTORY_LIMIT = 20;
    const REFRESH_MS = 30 * 1000;
    const STALE_MS = 26 * 3600 * 1000;   /* as "gazelle-scheduler status": daily task + 2 h */
    const JOURNAL_LINES = 200;
    const TZ = "America/Montreal";

    /* A value of manifest.json's "config" (generated at build time). */
    function configured(key) {
        const manifest = cockpit.manifests && cockpit.manifests["gazelle-scheduler"];
        return manifest && manifest.config ? manifest.config[key] : undefined;
    }

    /* The build's admin_group (meson option), as the bus policy and the daemon have it. */
    function adminGroup() {
        return configured("admin_group") || "gazelle-admin";
    }

    const STATUS = {
        success: { icon: "✅", label: "Succès" },
        warning: { icon: "⚠️", label: "Avertissement" },
        error: { icon: "❌", label: "Erreur" },
        running: { icon: "⏳", label: "En cours" },
        skipped: { icon: "⏭️", label: "Ignorée" },
    };
    const TRIGGER = {
        scheduler: { icon: "⏰", label: "Auto" },
        manual: { icon: "👤", label: "Manuel" },
        cli: { icon: "💻", label: "CLI" },
        api: { icon: "🔌", label: "API" },
    };

    const $ = id => document.getElementById(id);

    /* ---------------------------------------------------------------- look (light/dark) */

    /* As Cockpit's own pages: the shell's choice (localStorage "shell:style": auto, light,
     * dark), the browser's preference for "auto", the class Cockpit's stylesheets key on. */
    function applyStyle(style) {
        style = style || window.localStorage.getItem("shell:style") || "auto";
        const dark = style === "dark" ||
            (style === "auto" && window.matchMedia("(prefers-color-scheme: dark)").matches);
        document.documentElement.classList.toggle("pf-theme-dark", dark);
        document.documentElement.classList.toggle("pf-v5-theme-dark", dark);
    }
    window.addEventListener("storage", event => {
        if (event.key === "shell:style")
            applyStyle();
    });
    window.addEventListener("cockpit-style", event => {
        if (event instanceof CustomEvent && event.detail)
            applyStyle(event.detail.style);
    });
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => applyStyle());
    applyStyle();

    /* ---------------------------------------------------------------- formatting */

    const timeParts = new Intl.DateTimeFormat("fr-CA", {
        timeZone: TZ, year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23", timeZoneName: "longOffset",
    });

    function localParts(date) {
        const p = {};
        for (const part of timeParts.formatToParts(date))
            p[part.type] = part.value;
        return p;
    }

    /* "2026-11-24 03:00:12 -05:00": Montréal time with its UTC offset (the hour alone is ambiguous
     * on the fall-back night). */
    function formatTime(iso, withSeconds) {
        if (!iso)
            return "—";
        const d = new Date(iso);
        if (isNaN(d))
            return iso;
        const p = localParts(d);
        const offset = (p.timeZoneName || "").replace(/^(GMT|UTC)/, "") || "+00:00";
        return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}` + (withSeconds === false ? "" : `:${p.second}`) +
            ` ${offset}`;
    }

    /* "45 s", "2 min 13 s", "1 h 02 min". */
    function formatDuration(seconds) {
        if (seconds === undefined || seconds === null || seconds < 0)
            return "—";
        seconds = Math.round(seconds);
        if (seconds < 60)
            return `${seconds} s`;
        if (seconds < 3600)
            return `${Math.floor(seconds / 60)} min ${String(seconds % 60).padStart(2, "0")} s`;
        return `${Math.floor(seconds / 3600)} h ${String(Math.floor(seconds / 60) % 60).padStart(2, "0")} min`;
    }

    /* "3 h 12 min", "2 j 4 h" (for "il y a …" / "dans …"). */
    function formatAge(ms) {
        const m = Math.floor(Math.abs(ms) / 60000);
        if (m < 1)
            return "moins d'une minute";
        if (m < 60)
            return `${m} min`;
        const h = Math.floor(m / 60);
        if (h < 48)
            return m % 60 ? `${h} h ${String(m % 60).padStart(2, "0")} min` : `${h} h`;
        const d = Math.floor(h / 24);
        return h % 24 ? `${d} j ${h % 24} h` : `${d} j`;
    }

    function relative(iso) {
        const ms = new Date(iso) - Date.now();
        return ms >= 0 ? `dans ${formatAge(ms)}` : `il y a ${formatAge(ms)}`;
    }

    function triggerText(run) {
        const t = TRIGGER[run.triggered_by];
        if (!t)
            return run.triggered_by || "—";
        /* The claimed name or email is a note; caller_name is the account the bus or the
         * terminal vouched for (the CLI's claim, $USER, is not shown). */
        const claimed = run.triggered_by === "manual" || run.triggered_by === "api"
            ? run.triggered_by_name || run.triggered_by_user : "";
        const caller = run.triggered_by === "scheduler" ? "" : run.caller_name || "";
        const parts = [];
        if (claimed)
            parts.push(claimed);
        if (caller && caller !== claimed)
            parts.push(claimed ? `par ${caller}` : caller);
        return `${t.icon} ${t.label}` + (parts.length ? ` (${parts.join(", ")})` : "");
    }

    /* a{sv} as Cockpit hands it over ({key: {t, v}}) -> {key: v}. */
    function unwrap(dict) {
        const out = {};
        for (const key of Object.keys(dict))
            out[key] = dict[key] && typeof dict[key] === "object" && "v" in dict[key] ? dict[key].v : dict[key];
        return out;
    }

    function el(tag, attrs, ...children) {
        const node = document.createElement(tag);
        for (const [key, value] of Object.entries(attrs || {})) {
            if (value === undefined || value === null || value === false)
                continue;
            if (key === "class")
                node.className = value;
            else if (key === "text")
                node.textContent = value;
            else
                node.setAttribute(key, value === true ? "" : value);
        }
        for (const child of children)
            if (child !== null && child !== undefined)
                node.append(child);
        return node;
    }

    function statusBadge(status) {
        const s = STATUS[status] || { icon: "•", label: status || "—" };
        return el("span", { class: `status status-${status || "unknown"}` },
                  el("span", { class: "icon", "aria-hidden": "true", text: s.icon }), ` ${s.label}`);
    }

    /* ---------------------------------------------------------------- errors, in French */

    /* What failed and what to do, in French, from a Cockpit D-Bus error (a D-Bus error has a
     * name and the daemon's English message, kept last as the technical detail; a missing
     * service has only a "problem"). what: "run" (Lancer maintenant) or "read" (the page). */
    function errorText(error, what, task) {
        const name = error && error.name;
        const technical = error && (error.message || error.problem);
        const detail = technical ? ` Détail : ${technical}` : "";
        const user = state.user ? ` (votre compte : ${state.user})` : "";
        const unreachable = [
            "org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NoReply",
            "org.freedesktop.DBus.Error.Disconnected", "org.freedesktop.DBus.Error.NameHasNoOwner",
            "org.freedesktop.DBus.Error.TimedOut", "org.freedesktop.DBus.Error.Spawn.ChildExited",
            "org.freedesktop.DBus.Error.Spawn.Failed",
        ];
        if (name === "org.freedesktop.DBus.Error.AccessDenied" || (error && error.problem === "access-denied"))
            return what === "run"
                ? `Lancement refusé : réservé au groupe ${adminGroup()}${user}. ` +
                  `Demandez à un administrateur de vous ajouter au groupe ${adminGroup()}.`
                : `Accès refusé : le journal des tâches est réservé aux groupes gazelle et ${adminGroup()}${user}. ` +
                  "Demandez à un administrateur de vous ajouter à l'un d'eux.";
        if (name === ERR + "AlreadyRunning") {
            const id = /([0-9a-f]{8}-[0-9a-f-]{27})/.exec(error.message || "");
            return `« ${task ? task.label : "La tâche"} » est déjà en cours` + (id ? ` (exécution ${id[1]})` : "") +
                " : attendez sa fin, son résultat s'affichera ci-dessous.";
        }
        if (name === ERR + "StoreUnavailable")
            return "Base de données indisponible : l'historique ne peut être ni lu ni complété. Vérifiez que la " +
                "base répond (DATABASE_URL, ou le répertoire d'état pour SQLite), puis réessayez." + detail;
        if (name === ERR + "SystemdUnavailable")
            return "systemd n'a pas pu démarrer la tâche. Consultez « journalctl -u gazelle-schedulerd », " +
                "puis réessayez." + detail;
        if (name === ERR + "UnknownTask")
            return "Tâche inconnue du service : la page et le service ne sont pas de la même version. " +
                "Rechargez la page." + detail;
        if (!name || unreachable.includes(name))
            return "Service gazelle-schedulerd injoignable : vérifiez qu'il est installé et démarre " +
                `(« systemctl${state.bus === "session" ? " --user" : ""} status gazelle-schedulerd »). ` +
                "La page réessaie toutes les 30 secondes." + detail;
        return `Échec de l'appel au service (${name}).` + detail;
    }

    /* ---------------------------------------------------------------- state */

    const state = {
        bus: "system",
        user: null,
        client: null,      /* gazelle-schedulerd */
        systemd: null,     /* the service manager of the same bus */
        tasks: [],         /* ListTasks, unwrapped */
        units: {},         /* unit -> { activeState, statusText } */
        runs: [],
        cardErrors: {},    /* task -> text */
        expanded: new Set(),
        details: new Map(),  /* run id -> { status, node } */
        owner: null,           /* the daemon's unique name, null while it is not running */
        subscribedOwner: null, /* the instance we subscribed to ("?" until its owner event) */
        subscribing: null,
        refreshing: null,
        refreshAgain: false,
        filter: "",
    };

    function configuredBus() {
        return configured("bus") === "session" ? "session" : "system";
    }

    function unitPath(unit) {
        /* systemd's bus path escaping: every byte outside [A-Za-z0-9] as _xx. */
        let out = "";
        for (const b of new TextEncoder().encode(unit))
            out += /[A-Za-z0-9]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : "_" + b.toString(16).padStart(2, "0");
        return "/org/freedesktop/systemd1/unit/" + out;
    }

    function connection(text) {
        if ($("connection").textContent !== text)
            $("connection").textContent = text;
    }

    function banner(text) {
        const b = $("banner");
        if (b.textContent !== (text || ""))   /* an alert is read out each time it is set */
            b.textContent = text || "";
        b.hidden = !text;
    }

    /* Running as the daemon last said (its unit, or a terminal's run holding the task lock),
     * or as the unit says right now (ahead of the daemon's next answer). */
    function unitRunning(task) {
        return !!task.running || unitActive(task);
    }

    /* The unit itself is at work: its StatusText is this run's progress (a terminal's run has
     * none, and the text left by the unit's previous run is not its). */
    function unitActive(task) {
        const u = state.units[task.unit];
        return !!u && ["activating", "deactivating", "reloading"].includes(u.activeState);
    }

    /* ---------------------------------------------------------------- cards */

    function renderCards() {
        const list = $("tasks");
        const focused = document.activeElement && document.activeElement.dataset.task;
        list.replaceChildren();
        const now = Date.now();
        for (const task of state.tasks) {
            const running = unitRunning(task);
            const u = state.units[task.unit] || {};
            const stale = !task.last_success_at || now - new Date(task.last_success_at) > STALE_MS;
            const titleId = `task-${task.name}`;
            const button = el("button", {
                type: "button", class: "run", "data-task": task.name, disabled: running,
                "aria-describedby": titleId,
            }, running ? "En cours…" : "Lancer maintenant");
            button.addEventListener("click", () => runTask(task, button));

            const facts = el("dl", { class: "facts" },
                el("dt", { text: "Prochaine exécution" }),
                el("dd", { text: task.next_run ? `${formatTime(task.next_run, false)} (${relative(task.next_run)})` : "non planifiée" }),
                el("dt", { text: "Dernière exécution" }),
                el("dd", {}, task.last_started_at
                    ? el("span", {}, `${formatTime(task.last_started_at, false)} `, statusBadge(running ? "running" : task.last_status))
                    : "jamais"),
                el("dt", { text: "Dernier succès" }),
                el("dd", { class: stale ? "stale" : null },
                   task.last_success_at ? `${formatTime(task.last_success_at, false)} (${relative(task.last_success_at)})` : "aucun",
                   stale ? el("span", { class: "warn" }, el("span", { "aria-hidden": "true", text: " ⚠️" }),
                                                  task.last_success_at ? " plus de 26 h" : " aucun succès enregistré")
                         : null));

            const progress = unitActive(task) && u.statusText
                ? el("p", { class: "progress", "aria-live": "polite", text: u.statusText })
                : null;
            const error = state.cardErrors[task.name]
                ? el("p", { class: "card-error", role: "alert", text: state.cardErrors[task.name] })
                : null;

            list.append(el("li", { class: "card" + (running ? " is-running" : "") + (stale ? " is-stale" : ""), "data-task": task.name },
                el("h3", { id: titleId, text: task.label }),
                el("p", { class: "schedule", text: task.schedule || "" }),
                facts, progress, error,
                el("div", { class: "actions" }, button)));
        }
        list.setAttribute("aria-busy", "false");
        if (focused) {
            const again = list.querySelector(`button[data-task="${focused}"]`);
            if (again && !again.disabled)
                again.focus();
        }
    }

    function fillFilter() {
        const select = $("task-filter");
        if (select.options.length > 1)
            return;
        for (const task of state.tasks)
            select.append(el("option", { value: task.name, text: task.label }));
        select.value = state.filter;
    }

    /* ---------------------------------------------------------------- history */

    function statsTable(statsText) {
        let stats;
        try {
            stats = JSON.parse(statsText || "{}");
        } catch (e) {
            return el("p", { text: statsText });
        }
        const rows = [];
        (function flatten(prefix, value) {
            if (value && typeof value === "object" && !Array.isArray(value) && Object.keys(value).length) {
                for (const [k, v] of Object.entries(value))
                    flatten(prefix ? `${prefix} › ${k}` : k, v);
            } else if (prefix) {
                rows.push([prefix, Array.isArray(value) ? value.join(", ") : value === null ? "—" : String(value)]);
            }
        })("", stats);
        if (!rows.length)
            return el("p", { class: "muted", text: "Aucune statistique pour cette exécution." });
        return el("table", { class: "stats" },
            el("caption", { class: "visually-hidden", text: "Statistiques de l'exécution" }),
            el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "Mesure" }), el("th", { scope: "col", text: "Valeur" }))),
            el("tbody", {}, ...rows.map(([k, v]) => el("tr", {}, el("th", { scope: "row", text: k }),
                el("td", { class: /^-?[0-9.]+$/.test(v) ? "number" : null, text: v })))));
    }

    function journalText(entry) {
        let msg = entry.MESSAGE;
        if (Array.isArray(msg))  /* non-UTF-8 messages come as byte arrays */
            msg = new TextDecoder().decode(new Uint8Array(msg));
        const when = entry.__REALTIME_TIMESTAMP ? formatTime(new Date(Number(entry.__REALTIME_TIMESTAMP) / 1000)) : "";
        return `${when} ${entry.SYSLOG_IDENTIFIER || ""}: ${msg || ""}`;
    }

    /* The run's own journal lines (GAZELLE_RUN_ID=), newest JOURNAL_LINES at most. */
    function loadJournal(run, pre) {
        if (!/^[0-9a-f-]{36}$/.test(run.id)) {
            pre.textContent = "Identifiant d'exécution invalide.";
            return;
        }
        pre.textContent = "Chargement du journal…";
        cockpit.spawn(["journalctl", "--no-pager", "--quiet", "--output=json", `--lines=${JOURNAL_LINES}`,
            `GAZELLE_RUN_ID=${run.id}`], { err: "message" })
            .then(out => {
                const lines = [];
                for (const line of out.split("\n")) {
                    if (!line)
                        continue;
                    try {
                        lines.push(journalText(JSON.parse(line)));
                    } catch (e) { /* a truncated last line: skip it */ }
                }
                pre.textContent = lines.length ? lines.join("\n")
                    : "Aucune ligne de journal lisible pour cette exécution. Pour lire le journal du système, " +
                      "votre compte doit être membre du groupe systemd-journal (ou adm).";
            })
            .catch(e => {
                pre.textContent = `Journal illisible (${e.message || e.problem || e}). Pour lire le journal du système, ` +
                    "votre compte doit être membre du groupe systemd-journal (ou adm).";
            });
    }

    function detailsRow(run) {
        const cached = state.details.get(run.id);
        if (cached && cached.status === run.status)
            return cached.node;
        const pre = el("pre", { class: "journal", tabindex: "0", "aria-label": "Journal de l'exécution" });
        const node = el("tr", { class: "details", id: `details-${run.id}` },
            el("td", { colspan: "6" },
                el("div", { class: "details-grid" },
                    el("section", {},
                        el("h3", { text: "Statistiques" }),
                        statsTable(run.stats),
                        el("p", { class: "muted" }, `Exécution ${run.id}`,
                           run.invocation_id ? ` · invocation ${run.invocation_id}` : "",
                           run.host ? ` · hôte ${run.host}` : "",
                           run.completed_at ? ` · fin ${formatTime(run.completed_at)}` : "")),
                    el("section", {},
                        el("h3", { text: "Journal de l'exécution" }),
                        pre))));
        loadJournal(run, pre);
        state.details.set(run.id, { status: run.status, node });
        return node;
    }

    function toggleRun(run) {
        if (state.expanded.has(run.id))
            state.expanded.delete(run.id);
        else
            state.expanded.add(run.id);
        renderRuns();
        const again = document.querySelector(`button[data-run="${run.id}"]`);
        if (again)
            again.focus();
    }

    /* A running row says what its unit says right now (sd_notify STATUS=), not its first words. */
    function liveMessage(run) {
        const task = state.tasks.find(t => t.name === run.task_name);
        const u = task && state.units[task.unit];
        if (run.status === "running" && u && u.statusText && unitActive(task))
            return u.statusText;
        return run.message || "";
    }

    function renderRuns() {
        const body = $("runs");
        const focused = document.activeElement && document.activeElement.dataset.run;
        const rows = [];
        const duration = run => run.duration_seconds !== undefined ? run.duration_seconds
            : run.status === "running" && run.started_at ? (Date.now() - new Date(run.started_at)) / 1000 : undefined;
        for (const run of state.runs) {
            const open = state.expanded.has(run.id);
            const label = (state.tasks.find(t => t.name === run.task_name) || {}).label || run.task_label || run.task_name;
            const toggle = el("button", {
                type: "button", class: "row-toggle", "data-run": run.id,
                "aria-expanded": open ? "true" : "false", "aria-controls": `details-${run.id}`,
                title: "Afficher le détail de l'exécution",
            }, el("span", { class: "chevron", "aria-hidden": "true", text: open ? "▾" : "▸" }), ` ${formatTime(run.started_at)}`);
            toggle.addEventListener("click", () => toggleRun(run));
            const tr = el("tr", { class: `run run-${run.status}`, "data-run-id": run.id, "data-status": run.status },
                el("td", { "data-label": "Démarrage" }, toggle),
                el("td", { "data-label": "Tâche", text: label }),
                el("td", { "data-label": "Statut" }, statusBadge(run.status)),
                el("td", { "data-label": "Durée", text: formatDuration(duration(run)) }),
                el("td", { "data-label": "Message", class: "message", text: liveMessage(run) }),
                el("td", { "data-label": "Déclencheur", text: triggerText(run) }));
            /* A click anywhere on the row opens it too (the button is the keyboard's way). */
            tr.addEventListener("click", event => {
                if (!event.target.closest("button") && !window.getSelection().toString())
                    toggleRun(run);
            });
            rows.push(tr);
            if (open)
                rows.push(detailsRow(run));
        }
        body.replaceChildren(...rows);
        $("runs-empty").hidden = state.runs.length > 0;
        for (const id of state.details.keys())
            if (!state.runs.some(r => r.id === id))
                state.details.delete(id);
        if (focused) {
            const again = body.querySelector(`button[data-run="${focused}"]`);
            if (again)
                again.focus();
        }
    }

    /* ---------------------------------------------------------------- D-Bus */

    function call(method, args) {
        return state.client.call(PATH, IFACE, method, args || []);
    }

    async function fetchAll() {
        const [tasks] = await call("ListTasks");
        state.tasks = tasks.map(unwrap);
        const [logs] = await call("GetTaskLogs", [state.filter, HISTORY_LIMIT]);
        state.runs = logs.map(unwrap);
    }

    /* One refresh at a time; a request during one runs another right after it. */
    function refresh() {
        if (state.refreshing) {
            state.refreshAgain = true;
            return state.refreshing;
        }
        state.refreshing = fetchAll()
            .then(() => {
                banner(null);
                document.querySelector("main").classList.remove("stale");
                /* The live region speaks on a change of state only, not at every refresh. */
                connection(`Connecté (bus ${state.bus === "system" ? "système" : "de session"})`);
                $("updated").textContent = `· mis à jour à ${formatTime(new Date().toISOString())}`;
                fillFilter();
                renderCards();
                renderRuns();
            })
            .catch(error => {
                /* What is still shown is the last known state: say so, and dim it. */
                banner(errorText(error, "read"));
                connection("Déconnecté : données affichées périmées");
                document.querySelector("main").classList.add("stale");
            })
            .finally(() => {
                state.refreshing = null;
                if (state.refreshAgain) {
                    state.refreshAgain = false;
                    refresh();
                }
            });
        return state.refreshing;
    }

    async function runTask(task, button) {
        delete state.cardErrors[task.name];
        button.disabled = true;
        button.textContent = "Lancement…";
        try {
            await call("RunTask", [task.name, ""]);
            task.running = true;
        } catch (error) {
            state.cardErrors[task.name] = errorText(error, "run", task);
        }
        renderCards();
        refresh();
    }

    /* Exactly one Subscribe() per daemon instance (the daemon counts them): the first call
     * bus-activates it; a new owner later means a restarted daemon, which knows us no more. */
    function subscribe() {
        if (state.subscribing)
            return state.subscribing;
        state.subscribing = call("Subscribe")
            .then(() => {
                state.subscribedOwner = state.owner || "?";
                return refresh();
            })
            .catch(error => {
                state.subscribedOwner = null;
                banner(errorText(error, "read"));
                connection("Déconnecté");
            })
            .finally(() => { state.subscribing = null; });
        return state.subscribing;
    }

    function ownerChanged(owner) {
        const previous = state.owner;
        state.owner = owner;
        if (!owner || state.subscribing)
            return;
        if (state.subscribedOwner === "?" && !previous)
            state.subscribedOwner = owner;   /* the owner event of the instance we just subscribed to */
        else if (state.subscribedOwner !== owner)
            subscribe();
    }

    /* The unit's ActiveState and StatusText, live from systemd (PropertiesChanged flows while
     * someone, here gazelle-schedulerd for its subscribers, is subscribed to the manager). */
    function watchUnit(unit) {
        const path = unitPath(unit);
        state.units[unit] = state.units[unit] || {};
        const apply = props => {
            const u = state.units[unit];
            if (props.ActiveState)
                u.activeState = props.ActiveState.v;
            if (props.StatusText)
                u.statusText = props.StatusText.v;
            renderCards();
            renderRuns();
        };
        state.systemd.subscribe({ path, interface: "org.freedesktop.DBus.Properties", member: "PropertiesChanged" },
            (p, iface, signal, args) => apply(args[1] || {}));
        Promise.all([
            state.systemd.call(path, "org.freedesktop.DBus.Properties", "Get", [SYSTEMD + ".Unit", "ActiveState"]),
            state.systemd.call(path, "org.freedesktop.DBus.Properties", "Get", [SYSTEMD + ".Service", "StatusText"]),
        ]).then(([[active], [status]]) => apply({ ActiveState: active, StatusText: status }))
            .catch(() => { /* no such unit or no access: the daemon's "running" flag still works */ });
    }

    function start() {
        state.bus = configuredBus();
        state.client = cockpit.dbus(SERVICE, { bus: state.bus });
        state.systemd = cockpit.dbus(SYSTEMD, { bus: state.bus });

        cockpit.user().then(u => { state.user = u.name; }).catch(() => {});

        state.client.subscribe({ path: PATH, interface: IFACE }, (path, iface, signal, args) => {
            if (signal === "TaskStarted" || signal === "TaskFinished") {
                const task = state.tasks.find(t => t.name === args[0]);
                if (task) {
                    task.running = signal === "TaskStarted";
                    delete state.cardErrors[task.name];
                }
                refresh();
            }
        });
        state.client.addEventListener("owner", (event, owner) => ownerChanged(owner));

        $("task-filter").addEventListener("change", event => {
            state.filter = event.target.value;
            refresh();
        });

        subscribe().finally(() => {
            for (const unit of ["gazelle-sync.service", "gazelle-report.service", "gazelle-backup.service",
                "gazelle-alerts.service"])
                watchUnit(unit);
        });

        window.setInterval(refresh, REFRESH_MS);
        /* Ages ("il y a 3 min") and running durations move with the clock. */
        window.setInterval(() => { renderCards(); renderRuns(); }, REFRESH_MS / 2);
        window.addEventListener("pagehide", () => {
            if (state.subscribedOwner)
                call("Unsubscribe").catch(() => {});
        });
    }

    start();
}());
