#!/usr/bin/env bash
# test_chat_templates.sh - every chat template in ../shared/testdata/chat-templates
# must render byte-identically to Python's jinja2 (HF transformers' environment,
# see render_templates.py) for every conversation in tests/ref/conversations, with
# add_generation_prompt false and true. A case jinja2 rejects (raise_exception or
# any other error) must be rejected by ours too, with the same raise_exception
# message. Skips (77) when ../shared or Debian's python3-jinja2 is missing.
set -u
SRC=${AISTACK_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${AISTACK_BIN:-$SRC/build}
SHARED=${AISTACK_SHARED:-$SRC/../shared}
PY=${AISTACK_PYTHON:-/usr/bin/python3}
TDIR=$SHARED/testdata/chat-templates
CDIR=$SRC/tests/ref/conversations
DRIVER=$BIN/jinja_render
NOW=1721990400 # 2024-07-26 10:40:00 UTC, fixed so strftime_now() is stable

if [ ! -d "$TDIR" ]; then
    echo "SKIP: $TDIR not found (../shared testdata absent)"
    exit 77
fi
if ! "$PY" -c 'import jinja2' 2>/dev/null; then
    echo "SKIP: $PY has no jinja2 (install python3-jinja2)"
    exit 77
fi
if [ ! -x "$DRIVER" ]; then
    echo "FAIL: driver $DRIVER not built"
    exit 1
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export TZ=UTC

"$PY" "$SRC/tests/ref/render_templates.py" "$TDIR" "$CDIR" "$WORK" "$NOW" || {
    echo "FAIL: reference renderer failed"
    exit 1
}

pass=0
fail=0
rejected=0
for ctx in "$WORK"/*.ctx.json; do
    case=${ctx%.ctx.json}
    name=$(basename "$case")
    tname=${name%%__*}
    "$DRIVER" "$TDIR/$tname.jinja" "$ctx" --now "$NOW" >"$case.c.out" 2>"$case.c.err"
    rc=$?
    if [ -f "$case.out" ]; then
        if [ $rc -ne 0 ]; then
            echo "FAIL $name: jinja2 rendered it, ours failed (rc=$rc): $(cat "$case.c.err")"
            fail=$((fail + 1))
        elif ! cmp -s "$case.out" "$case.c.out"; then
            echo "FAIL $name: output differs from jinja2"
            diff <(cat "$case.out") <(cat "$case.c.out") | head -20
            fail=$((fail + 1))
        else
            pass=$((pass + 1))
        fi
    elif [ -f "$case.raise" ]; then
        want=$(cat "$case.raise")
        if [ $rc -ne 2 ]; then
            echo "FAIL $name: jinja2 raised '$want', ours gave rc=$rc"
            fail=$((fail + 1))
        elif ! grep -qF -- "$want" "$case.c.err"; then
            echo "FAIL $name: raise message differs: want '$want', got '$(cat "$case.c.err")'"
            fail=$((fail + 1))
        else
            pass=$((pass + 1))
            rejected=$((rejected + 1))
        fi
    else
        if [ $rc -ne 1 ]; then
            echo "FAIL $name: jinja2 failed ($(cat "$case.fail")), ours gave rc=$rc"
            fail=$((fail + 1))
        else
            pass=$((pass + 1))
            rejected=$((rejected + 1))
        fi
    fi
done

echo "chat templates: $pass passed ($rejected of them rejected by both), $fail failed"
if [ $pass -eq 0 ]; then
    echo "FAIL: no cases ran"
    exit 1
fi
[ $fail -eq 0 ]
