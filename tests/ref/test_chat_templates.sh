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
export TZ=UTC # strftime_now: both sides format the same instant in UTC

"$PY" "$SRC/tests/ref/render_templates.py" render "$TDIR" "$CDIR" "$WORK" "$NOW" || {
    echo "FAIL: reference renderer failed"
    exit 1
}
"$DRIVER" --batch "$WORK/cases.tsv" --now "$NOW" || {
    echo "FAIL: the C driver could not run the batch"
    exit 1
}
"$PY" "$SRC/tests/ref/render_templates.py" compare "$WORK"
