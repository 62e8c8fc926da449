#!/usr/bin/env bash
# The shipped polkit rule (units/gazelle-scheduler.rules) evaluated the way polkitd does: a
# JavaScript function called with (action, subject). Allows exactly user gazelle to start the
# four task units; denies other verbs, other units, other users and other actions.
set -euo pipefail
rule=${GS_SOURCE_DIR:?}/units/gazelle-scheduler.rules
command -v node >/dev/null || { echo "node not installed: skip"; exit 77; }
node - "$rule" <<'JS'
const fs = require("fs");
let rules = [];
const polkit = { Result: { YES: "yes", NO: "no", NOT_HANDLED: null }, addRule: (f) => rules.push(f) };
new Function("polkit", fs.readFileSync(process.argv[2], "utf8"))(polkit);
if (rules.length !== 1) throw new Error("expected one rule, got " + rules.length);
function decide(id, user, verb, unit) {
    const action = { id, lookup: (k) => ({ verb, unit })[k] };
    return rules[0](action, { user, isInGroup: () => false });
}
const M = "org.freedesktop.systemd1.manage-units";
const cases = [
    [M, "gazelle", "start", "gazelle-backup.service", "yes"],
    [M, "gazelle", "start", "gazelle-sync.service", "yes"],
    [M, "gazelle", "start", "gazelle-report.service", "yes"],
    [M, "gazelle", "start", "gazelle-alerts.service", "yes"],
    [M, "gazelle", "stop", "gazelle-backup.service", null],
    [M, "gazelle", "restart", "gazelle-backup.service", null],
    [M, "gazelle", "start", "gazelle-schedulerd.service", null],
    [M, "gazelle", "start", "gazelle-backup.service.d", null],
    [M, "gazelle", "start", "xgazelle-backup.service", null],
    [M, "gazelle", "start", "sshd.service", null],
    [M, "gazelle", "start", undefined, null],
    [M, "nobody", "start", "gazelle-backup.service", null],
    ["org.freedesktop.systemd1.manage-unit-files", "gazelle", "start", "gazelle-backup.service", null],
];
let failed = 0;
for (const [id, user, verb, unit, want] of cases) {
    const got = decide(id, user, verb, unit);
    const ok = got === want;
    if (!ok) failed++;
    console.log(`${ok ? "ok" : "not ok"} - ${user} ${verb} ${unit} (${id}) -> ${got}`);
}
process.exit(failed ? 1 : 0);
JS
