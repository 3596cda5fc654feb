#!/bin/sh
# Our engine against llama.cpp on the same GGUF files, runs alternated so that load from other
# users of the machine hits both alike.
#
#   bench/engine/llamacpp_compare.sh [-r ROUNDS] [-t THREADS] [-b AISTACK] [-q] [-L] FILE.gguf...
#
# -q: no warm-up runs in the llama.cpp runners (faster on a loaded machine; the first run is then cold).
# -L: llama-bench only (no node-llama-cpp runs).
# The AVX2 levels of both engines on an AVX-512 machine:
#   AISTACK_ISA=avx2 LLAMA_BENCH=bench/engine/llamacpp/node_modules/.llama-bench-build-avx2/build/bin/llama-bench \
#     bench/engine/llamacpp_compare.sh -L FILE.gguf...   (after LLAMA_BENCH_ISA=avx2 llamacpp.sh --llama-bench --help)
#
# Each round, for each file: ours pp512 (aistack generate, a 512-token prompt, -n 1), ours tg128
# (prompt "Hello", -n 128, --temp 0), then llama.cpp through node-llama-cpp
# (bench/engine/llamacpp.sh, one repeat after its warm-up; its native decode time), then, if LLAMA_BENCH names a
# llama-bench binary (default: the one 'llamacpp.sh --llama-bench' built, if there),
# llama-bench -r 1 -o jsonl. One JSON line per measurement (with the 1-minute
# load average) goes to stdout; a median table goes to stderr at the end.
# Ours reports tokens/s as printed by 'aistack generate' on stderr (prompt: / generation: lines).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
rounds=3 threads=2 aistack="$root/build/aistack" nowarm="" nonlc=""
while [ $# -gt 0 ]; do
    case "$1" in
        -r) rounds=$2; shift 2 ;;
        -t) threads=$2; shift 2 ;;
        -b) aistack=$2; shift 2 ;;
        -q) nowarm=--no-warmup; shift ;;
        -L) nonlc=1; shift ;;
        -h|--help) sed -n 2,20p "$0"; exit 0 ;;
        *) break ;;
    esac
done
[ $# -gt 0 ] || { echo "usage: $0 [-r ROUNDS] [-t THREADS] [-b AISTACK] [-q] [-L] FILE.gguf..." >&2; exit 2; }
[ -x "$aistack" ] || { echo "llamacpp_compare.sh: no aistack binary at $aistack (-b PATH)" >&2; exit 2; }
"$here/llamacpp.sh" --install 2>/dev/null || "$here/llamacpp.sh" --install

built="$here/llamacpp/node_modules/.llama-bench-build/build/bin/llama-bench"
[ -z "${LLAMA_BENCH:-}" ] && [ -x "$built" ] && LLAMA_BENCH=$built
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
load1() { cut -d' ' -f1 /proc/loadavg; }
# A prompt of 512 tokens (BOS included) for this file's vocabulary: the shortest run of words that
# 'aistack tokenize' counts as at least 512 tokens (binary search on the word count).
words() { awk -v n="$1" 'BEGIN { split("the of and to in is was for on that with as by at from his her an which or be are this", w, " ");
    s = ""; for (i = 0; i < n; i++) s = s (i ? " " : "") w[(i * 7) % 23 + 1]; printf "%s", s }'; }
ntok() { words "$1" | "$aistack" tokenize -m "$f" - | wc -w; }
prompt512() {
    lo=1 hi=4096
    while [ $lo -lt $hi ]; do
        mid=$(((lo + hi) / 2))
        if [ "$(ntok $mid)" -ge 512 ]; then hi=$mid; else lo=$((mid + 1)); fi
    done
    words $lo
}

for r in $(seq 1 "$rounds"); do
    for f in "$@"; do
        name=$(basename "$f")
        [ -f "$tmp/$name.prompt" ] || prompt512 > "$tmp/$name.prompt"
        # ours, pp512
        l=$(load1)
        "$aistack" generate -m "$f" -p "$(cat "$tmp/$name.prompt")" -n 1 --temp 0 --threads "$threads" \
            >/dev/null 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
        # the load time tells how the weights were placed (a copy takes ~1 s, a mapping ~0.1)
        ld=$(sed -n 's/^load: \([0-9.]*\) s.*/\1/p' "$tmp/err")
        sed -n 's/^prompt: \([0-9]*\) tokens in .* (\([0-9.]*\) tokens\/s)$/\1 \2/p' "$tmp/err" | {
            read -r n tps
            echo "{\"engine\":\"aistack\",\"file\":\"$name\",\"test\":\"pp$n\",\"tps\":$tps,\"load1\":$l,\"round\":$r,\"load_s\":${ld:-null}}"
        }
        # ours, tg128
        l=$(load1)
        "$aistack" generate -m "$f" -p "Hello" -n 128 --temp 0 --threads "$threads" \
            >/dev/null 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
        sed -n 's/^generation: \([0-9]*\) tokens in .* (\([0-9.]*\) tokens\/s)$/\1 \2/p' "$tmp/err" | {
            read -r n tps
            echo "{\"engine\":\"aistack\",\"file\":\"$name\",\"test\":\"tg$n\",\"tps\":$tps,\"load1\":$l,\"round\":$r}"
        }
        # llama.cpp via node-llama-cpp (native decode time; wall time in the full line)
        l=$(load1)
        [ -n "$nonlc" ] || { "$here/llamacpp.sh" -m "$f" -t "$threads" -r 1 $nowarm 2>"$tmp/err" > "$tmp/nlc.json" || { cat "$tmp/err" >&2; exit 1; }; }
        [ -n "$nonlc" ] || node -e '
            const d = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
            for (const t of ["pp512", "tg128"])
                console.log(JSON.stringify({engine: "llama.cpp/node-llama-cpp", file: process.argv[2], test: t,
                    tps: d[t].tps_native.median, tps_wall: d[t].tps_wall.median, load1: +process.argv[3],
                    round: +process.argv[4], load_model_s: d.load_model_s, cpu_backend: d.cpu_backend}));
        ' "$tmp/nlc.json" "$name" "$l" "$r"
        # llama.cpp's own llama-bench, when given
        if [ -n "${LLAMA_BENCH:-}" ]; then
            l=$(load1)
            "$LLAMA_BENCH" -m "$f" -t "$threads" -p 512 -n 128 -r 1 $nowarm -o jsonl 2>"$tmp/err" > "$tmp/lb.jsonl" ||
                { cat "$tmp/err" >&2; exit 1; }
            node -e '
                const lines = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n");
                for (const d of lines.map((x) => JSON.parse(x)))
                    console.log(JSON.stringify({engine: "llama.cpp/llama-bench", file: process.argv[2],
                        test: d.n_prompt > 0 ? "pp" + d.n_prompt : "tg" + d.n_gen, tps: +d.avg_ts.toFixed(2),
                        load1: +process.argv[3], round: +process.argv[4], build: d.build_commit, fa: d.flash_attn}));
            ' "$tmp/lb.jsonl" "$name" "$l" "$r"
        fi
    done
done | tee "$tmp/all.jsonl"

node -e '
    const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map((x) => JSON.parse(x));
    const key = (r) => `${r.file}\t${r.test}\t${r.engine}`;
    const g = new Map();
    for (const r of rows) (g.get(key(r)) ?? g.set(key(r), []).get(key(r))).push(r);
    const med = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
    console.error("file\ttest\tengine\tmedian t/s\tmin\tmax\tload1 (median)");
    for (const [k, rs] of [...g].sort()) {
        const t = rs.map((r) => r.tps);
        console.error(`${k}\t${med(t).toFixed(1)}\t${Math.min(...t).toFixed(1)}\t${Math.max(...t).toFixed(1)}\t${med(rs.map((r) => r.load1)).toFixed(2)}`);
    }
' "$tmp/all.jsonl"
