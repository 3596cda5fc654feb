#!/usr/bin/env bash
# test_metrics_promtool.sh - the exposition text of a registry holding every metric
# kind and awkward label values must pass `promtool check metrics` without complaint.
set -euo pipefail
: "${AISTACK_BIN:?}"
if ! command -v promtool >/dev/null; then
    echo "SKIP: promtool not installed (Debian package prometheus)"
    exit 77
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$AISTACK_BIN/metrics_dump" >"$out"
grep -q '^aistack_request_duration_seconds_bucket{model="quote\\"d",code="200",le="+Inf"} 50$' "$out"
grep -q '^aistack_requests_total{model="new\\nline",code="200"} 3.5$' "$out"
# promtool prints lint problems and exits non-zero on any of them
if ! report=$(promtool check metrics <"$out" 2>&1); then
    echo "promtool check metrics failed:"
    echo "$report"
    exit 1
fi
if [ -n "$report" ]; then
    echo "promtool complained:"
    echo "$report"
    exit 1
fi
echo "promtool check metrics: ok ($(wc -l <"$out") lines)"
