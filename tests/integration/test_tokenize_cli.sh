#!/bin/bash
# test_tokenize_cli.sh - `aistack tokenize` / `aistack detokenize` as scripts use them:
# every fixture string of four vocabularies (two under ASan) through the CLI (text as an argument),
# ids compared with llama.cpp's, and the ids decoded back to the text.
set -u
V="${AISTACK_SHARED:-../shared}/testdata/vocab"
A="${AISTACK_BIN:-.}/aistack"
PY="${AISTACK_PYTHON:-/usr/bin/python3}"
[ -f "$V/ggml-vocab-gpt-2.gguf" ] || { echo "skip: $V absent"; exit 77; }
"$A" tokenize --help >/dev/null 2>&1 || { echo "skip: aistack tokenize not built"; exit 77; }

fail=0
check() {
    if [ "$1" != "$2" ]; then
        echo "FAIL $3: got '$1' want '$2'"
        fail=1
    fi
}
spm="$V/ggml-vocab-llama-spm.gguf"
check "$("$A" tokenize -m "$spm" "Hello world")" "1 15043 3186" "tokenize adds BOS"
check "$("$A" tokenize -m "$spm" --no-bos "Hello world")" "15043 3186" "tokenize --no-bos"
check "$(printf 'Hello world' | "$A" tokenize -m "$spm" --no-bos)" "15043 3186" "tokenize stdin"
check "$("$A" detokenize -m "$spm" 1 15043 3186)" "Hello world" "detokenize"
check "$("$A" detokenize -m "$spm" --special 1 15043 3186 2)" "<s>Hello world</s>" "detokenize --special"
check "$("$A" tokenize -m "$spm" --no-bos "<s>x")" "1 921" "special tokens parsed"
check "$("$A" tokenize -m "$spm" --no-bos --no-parse-special "<s>x")" "529 29879 29958 29916" \
    "--no-parse-special"
"$A" detokenize -m "$spm" 32000 >/dev/null 2>&1 && { echo "FAIL: id out of range accepted"; fail=1; }
"$A" tokenize -m /nonexistent.gguf x >/dev/null 2>&1 && { echo "FAIL: missing model accepted"; fail=1; }

"$PY" - "$A" "$V" "${AISTACK_SANITIZE:-0}" <<'PYEOF' || fail=1
import subprocess, sys
aistack, vdir, sanitize = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
bad = 0
# the sanitizer build is slow to start: two vocabularies there, four otherwise
for name in ["llama-spm", "gpt-2"] if sanitize else ["llama-spm", "phi-3", "gpt-2", "deepseek-llm"]:
    model = f"{vdir}/ggml-vocab-{name}.gguf"
    tests = open(f"{model}.inp", "rb").read().split(b"\n__ggml_vocab_test__\n")[:-1]
    want = open(f"{model}.out", "rb").read().split(b"\n")
    for i, text in enumerate(tests):
        if b"\x00" in text or text.startswith(b"-"):
            continue
        r = subprocess.run([aistack, "tokenize", "-m", model, "--no-bos", text], capture_output=True)
        got = r.stdout.strip()
        if r.returncode != 0 or got != want[i].strip():
            print(f"FAIL {name} case {i}: {got!r} != {want[i].strip()!r}")
            bad += 1
            continue
        if not got:
            continue
        r = subprocess.run([aistack, "detokenize", "-m", model] + got.split(), capture_output=True)
        if r.returncode != 0 or r.stdout != text + b"\n":
            print(f"FAIL {name} case {i}: detokenize gave {r.stdout!r}")
            bad += 1
print(f"cli fixture cases checked, {bad} failures")
sys.exit(1 if bad else 0)
PYEOF
exit $fail
