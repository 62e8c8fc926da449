# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# What the system-flavour tests (test-production.sh, test-cockpit-system.sh) share: the host's
# --prefix=/usr build, and the README's install section run literally inside the box.
# Needs lib.sh (fail, ok), GS_SOURCE_DIR and GS_BUILD_DIR.

# production_build_locked: builds this tree with --prefix=/usr into $GS_BUILD_DIR/production (set up
# once, recompiled each time) and leaves fd 9 holding $GS_BUILD_DIR/production.lock, so that two
# tests share one build; the caller releases it (`flock -u 9; exec 9>&-`).
production_build_locked() {
    local prod=$GS_BUILD_DIR/production log=$GS_BUILD_DIR/production.log
    exec 9>"$GS_BUILD_DIR/production.lock"
    flock 9
    if [ ! -f "$prod/build.ninja" ]; then
        meson setup "$prod" "$GS_SOURCE_DIR" --prefix=/usr >"$log" 2>&1 || fail "meson setup $prod: $(tail -n 20 "$log")"
    fi
    meson compile -C "$prod" >>"$log" 2>&1 || fail "meson compile -C $prod: $(tail -n 20 "$log")"
}

# The sh block under "## Install (production, system manager)" in README.md, one command a line.
readme_install() {
    awk '/^## Install \(production, system manager\)/ { s = 1; next }
         s && /^```sh/ { b = 1; next }
         b && /^```/ { exit }
         b { print }' "$GS_SOURCE_DIR/README.md"
}

# install_from BUILD WORK [quiet]: runs every line of the README's block from a clone-like
# directory (the tree's entries, symlinked) whose build is BUILD: `meson setup build` finds it
# configured. One `ok` a line unless quiet.
install_from() {
    local build=$1 work=$2 quiet=${3:-} dir line e
    dir=$work/readme-$RANDOM
    mkdir -p "$dir"
    for e in "$GS_SOURCE_DIR"/*; do
        case "${e##*/}" in build*) ;; *) ln -s "$e" "$dir/";; esac
    done
    ln -s "$build" "$dir/build"
    [ -n "$(readme_install)" ] || fail "no sh block under '## Install (production, system manager)' in README.md"
    while IFS= read -r line; do
        [ -n "${line//[[:space:]]/}" ] || continue
        (cd "$dir" && bash -euo pipefail -c "$line") >"$work/install.log" 2>&1 \
            || fail "README install line failed: '$line': $(tail -n 15 "$work/install.log")"
        [ -n "$quiet" ] || ok "README: $line"
    done < <(readme_install)
}
