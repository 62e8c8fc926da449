#!/bin/bash
# SPDX-License-Identifier: MIT
# DATABASE_URL over TLS, against the sandbox's PostgreSQL serving TCP with a throwaway CA and
# server certificate made here by openssl. In a network namespace of its own (only its loopback:
# nothing to collide with), with /etc/hosts naming the server gazelle-db.test (a name, not a
# loopback literal: the product must treat it as another machine):
#   1. no sslmode: refused at start, exit 2, one line saying what to add, nothing written;
#   2. GAZELLE_DB_ALLOW_PLAINTEXT=1 with sslmode=disable: accepted, the run works;
#   3. sslmode=verify-full + sslrootcert (the server now refusing plaintext): the run works;
#   4. the same with another CA: the run fails, saying the certificate could not be verified.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ -n "${SBX_DIR:-}" ] || exec "$here/../sandbox.sh" "$here/$(basename "$0")" "$@"
if [ -z "${_PG_TLS_NETNS:-}" ]; then
    _PG_TLS_NETNS=1 exec unshare --net -- "$here/$(basename "$0")" "$@"
fi
GS_SOURCE_DIR=${GS_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
GS_BUILD_DIR=${GS_BUILD_DIR:-$GS_SOURCE_DIR/build}
# shellcheck source=tests/integration/lib.sh
. "$here/lib.sh"
[ -n "${SBX_PG_DATA:-}" ] || { echo "SKIP: no PostgreSQL in this sandbox"; exit 77; }
bin=$GS_BUILD_DIR/gazelle-scheduler
ip link set lo up || fail "cannot bring the namespace's loopback up"

# /etc/hosts of this mount namespace only.
cp /etc/hosts "$SBX_DIR/hosts"
echo '127.0.0.1 gazelle-db.test' >> "$SBX_DIR/hosts"
mount --bind "$SBX_DIR/hosts" /etc/hosts || fail "cannot bind-mount /etc/hosts"

# --- the throwaway PKI
pki=$SBX_DIR/pki
mkdir -p "$pki"
(
    cd "$pki"
    for ca in ca other-ca; do
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=gazelle test $ca" \
            -keyout "$ca.key" -out "$ca.crt" 2>/dev/null
    done
    openssl req -newkey rsa:2048 -nodes -subj /CN=gazelle-db.test -keyout server.key -out server.csr 2>/dev/null
    printf 'subjectAltName=DNS:gazelle-db.test,DNS:localhost,IP:127.0.0.1\n' > san.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext \
        -out server.crt 2>/dev/null
) || fail "openssl could not make the test certificates"
pg_user=$(stat -c %U "$SBX_PG_DATA")
install -o "$pg_user" -m 0600 "$pki/server.key" "$SBX_PG_DATA/server.key"
install -o "$pg_user" -m 0644 "$pki/server.crt" "$SBX_PG_DATA/server.crt"
ok "throwaway CA and server certificate for gazelle-db.test"

hba() { printf '%s\n' "$@" > "$SBX_PG_DATA/pg_hba.conf"; chown "$pg_user" "$SBX_PG_DATA/pg_hba.conf"; }
as_pg() { (cd "$SBX_PG_DATA" && setpriv --reuid="$pg_user" --regid="$(id -g "$pg_user")" --init-groups -- "$@"); }
hba 'local all all trust' 'host all all 127.0.0.1/32 trust'
# Restarted from this namespace, the server listens on its loopback (and its unix socket).
as_pg pg_ctl -D "$SBX_PG_DATA" -w -t 30 -m fast restart -o "-k $PGHOST -p $PGPORT -c listen_addresses=127.0.0.1 \
-c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key -c fsync=off" >/dev/null \
    || fail "PostgreSQL did not restart with TLS"
ok "PostgreSQL serves gazelle-db.test:$PGPORT over TCP with TLS"

export XDG_STATE_HOME=$SBX_DIR/state BACKUP_DIR=$SBX_DIR/backups GAZELLE_BUS=user
mkdir -p "$BACKUP_DIR"
unset INVOCATION_ID JOURNAL_STREAM
rows() { psql -X -q -A -t -d "$SBX_PG_DIRECT_URL" -c "SELECT count(*) FROM scheduler_logs"; }
# The store exists (a first run over the local socket, which needs no TLS).
DATABASE_URL=$SBX_PG_DIRECT_URL "$bin" run backup >"$SBX_DIR/out" 2>&1 || fail "the local run failed: $(cat "$SBX_DIR/out")"
url=postgresql://postgres@gazelle-db.test:$PGPORT/postgres

# --- 1. no sslmode
before=$(rows)
rc=0; DATABASE_URL=$url "$bin" run backup >"$SBX_DIR/out" 2>"$SBX_DIR/err" || rc=$?
assert_eq 2 "$rc" "no sslmode to gazelle-db.test: refused at start (exit 2)"
[ "$(wc -l < "$SBX_DIR/err")" = 1 ] || fail "expected one line, got: $(cat "$SBX_DIR/err")"
grep -q "sslmode=verify-full" "$SBX_DIR/err" && grep -q "GAZELLE_DB_ALLOW_PLAINTEXT=1" "$SBX_DIR/err" \
    || fail "the line does not say what to add: $(cat "$SBX_DIR/err")"
assert_eq "$before" "$(rows)" "nothing written"
ok "it says: $(cat "$SBX_DIR/err")"
rc=0; DATABASE_URL="$url?sslmode=prefer" "$bin" run backup >/dev/null 2>&1 || rc=$?
assert_eq 2 "$rc" "sslmode=prefer (libpq's default, silently plaintext): refused too"

# --- 2. plaintext allowed on purpose
DATABASE_URL="$url?sslmode=disable" GAZELLE_DB_ALLOW_PLAINTEXT=1 "$bin" run backup >"$SBX_DIR/out" 2>&1 \
    || fail "GAZELLE_DB_ALLOW_PLAINTEXT=1: the run failed: $(cat "$SBX_DIR/out")"
ok "GAZELLE_DB_ALLOW_PLAINTEXT=1 lets a plaintext connection through"

# --- 3. verify-full, the server refusing plaintext from now on
hba 'local all all trust' 'hostssl all all 127.0.0.1/32 trust' 'hostnossl all all 127.0.0.1/32 reject'
as_pg pg_ctl -D "$SBX_PG_DATA" reload >/dev/null || fail "reload failed"
plain_refused() { ! psql -X -q -d "postgresql://postgres@127.0.0.1:$PGPORT/postgres?sslmode=disable" -c 'SELECT 1' >/dev/null 2>&1; }
wait_for "the server to refuse plaintext" 10 plain_refused || fail "the server still accepts plaintext"
DATABASE_URL="$url?sslmode=verify-full&sslrootcert=$pki/ca.crt" "$bin" run backup >"$SBX_DIR/out" 2>&1 \
    || fail "verify-full with the right CA failed: $(cat "$SBX_DIR/out")"
assert_eq success "$(psql -X -q -A -t -d "$SBX_PG_DIRECT_URL" -c "SELECT status FROM scheduler_logs ORDER BY started_at DESC LIMIT 1")" \
    "sslmode=verify-full with sslrootcert: the run works over TLS"

# --- 4. the wrong CA
rc=0; DATABASE_URL="$url?sslmode=verify-full&sslrootcert=$pki/other-ca.crt" "$bin" run backup >"$SBX_DIR/out" 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "verify-full with the wrong CA succeeded"
grep -q "certificate verify failed" "$SBX_DIR/out" && grep -q "DATABASE_URL" "$SBX_DIR/out" \
    || fail "the failure does not say the certificate was not verified: $(cat "$SBX_DIR/out")"
ok "the wrong CA fails clearly: $(grep -o 'impossible.*' "$SBX_DIR/out" | head -n 1)"
