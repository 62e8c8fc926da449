#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Directories another account could tamper with are refused, as sshd refuses loose key files:
# a BACKUP_DIR writable by group or others, or owned by another user (as root: chown), gets no
# backup and the run says why; restore refuses a file in such a directory, or a file itself
# writable by others or owned by another user. check-config reports them too. Runs the real
# binary outside systemd, on a SQLite store.
set -euo pipefail
. "$(dirname "$0")/cli-lib.sh" test-directories

"$bin" run backup >/dev/null 2>&1 || fail "the first backup failed"
good=$(ls "$tmp/state/gazelle-scheduler/backups"/db_backup_*.sqlite | head -n1)

# A BACKUP_DIR writable by others, then by its group: refused, nothing written there.
for mode in 0777 1777 0770; do
    mkdir -p "$tmp/loose"; chmod "$mode" "$tmp/loose"
    rc=0; BACKUP_DIR=$tmp/loose "$bin" run backup >/dev/null 2>"$tmp/err" || rc=$?
    [ "$rc" = 1 ] || fail "BACKUP_DIR mode $mode: run backup exited $rc: $(cat "$tmp/err")"
    grep -q "Sauvegarde refusée : BACKUP_DIR=$tmp/loose est modifiable par .* (mode $mode)" "$tmp/err" \
        || fail "BACKUP_DIR mode $mode: the message does not say why: $(cat "$tmp/err")"
    grep -q "chmod go-w $tmp/loose" "$tmp/err" || fail "BACKUP_DIR mode $mode: no fix given: $(cat "$tmp/err")"
    [ -z "$(ls -A "$tmp/loose")" ] || fail "BACKUP_DIR mode $mode: something was written: $(ls -A "$tmp/loose")"
done
chmod 0700 "$tmp/loose"
BACKUP_DIR=$tmp/loose "$bin" run backup >/dev/null 2>"$tmp/err" || fail "BACKUP_DIR 0700 refused: $(cat "$tmp/err")"
ok "a BACKUP_DIR writable by group or others is refused with the fix; 0700 is used"

# Restore: a backup in a loose directory, or itself writable by others, is not restored.
mkdir -p "$tmp/drop"; chmod 0777 "$tmp/drop"; cp "$good" "$tmp/drop/"
rc=0; "$bin" restore --dry-run "$tmp/drop/$(basename "$good")" >/dev/null 2>"$tmp/err" || rc=$?
[ "$rc" = 1 ] && grep -q "modifiable par tous les utilisateurs" "$tmp/err" \
    || fail "restore from a world-writable directory: rc=$rc $(cat "$tmp/err")"
mkdir -p "$tmp/mine"; chmod 0700 "$tmp/mine"; cp "$good" "$tmp/mine/"; chmod 0666 "$tmp/mine/$(basename "$good")"
rc=0; "$bin" restore --dry-run "$tmp/mine/$(basename "$good")" >/dev/null 2>"$tmp/err" || rc=$?
[ "$rc" = 1 ] && grep -q "modifiable par d'autres comptes (mode 0666)" "$tmp/err" \
    || fail "restore of a world-writable file: rc=$rc $(cat "$tmp/err")"
chmod 0600 "$tmp/mine/$(basename "$good")"
"$bin" restore --dry-run "$tmp/mine/$(basename "$good")" >/dev/null 2>"$tmp/err" \
    || fail "restore --dry-run of a private backup refused: $(cat "$tmp/err")"
ok "restore refuses a backup another account could have swapped; a private one is accepted"

# Owned by another user (root can make one): refused.
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
    mkdir -p "$tmp/theirs"; chmod 0700 "$tmp/theirs"; chown nobody "$tmp/theirs"
    rc=0; BACKUP_DIR=$tmp/theirs "$bin" run backup >/dev/null 2>"$tmp/err" || rc=$?
    [ "$rc" = 1 ] && grep -q "BACKUP_DIR=$tmp/theirs appartient à nobody, pas à root" "$tmp/err" \
        || fail "BACKUP_DIR owned by nobody: rc=$rc $(cat "$tmp/err")"
    ok "a BACKUP_DIR owned by another user is refused"
else
    echo "ok $((n += 1)) - # SKIP another owner needs root"
fi
echo "1..$n"
