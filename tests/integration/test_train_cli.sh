#!/usr/bin/env bash
# The training CLI end to end: `aistack tokenizer train` on a text corpus,
# `aistack train` from a YAML config overridden by flags (text data tokenized
# on the fly), progress lines, loss.csv/loss.png, GGUF export that the engine
# loads and generates from, resume after completion, and config errors that
# name the file and line.
set -euo pipefail
bin=$AISTACK_BIN/aistack
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# a deterministic corpus
awk 'BEGIN { split("the a one every some", d); split("cat dog bird fox cow", n);
             split("runs sleeps eats jumps sings", v);
             for (i = 0; i < 400; i++) printf "%s %s %s and %s %s %s.\n",
               d[i%5+1], n[int(i/5)%5+1], v[int(i/25)%5+1], d[(i+2)%5+1], n[(i+3)%5+1], v[(i+1)%5+1] }' \
  > "$tmp/corpus.txt"

"$bin" tokenizer train --input "$tmp/corpus.txt" --vocab 300 --pre llama-bpe -o "$tmp/tok.gguf" \
  2> "$tmp/tok.log" || { cat "$tmp/tok.log"; fail "tokenizer train"; }
grep -q "vocabulary: " "$tmp/tok.log" || fail "no vocabulary summary"

cat > "$tmp/cfg.yaml" <<YAML
model:
  dim: 32
  n_layer: 2
  n_head: 2
  max_seq: 32
train:
  steps: 5          # overridden by the flag below
  batch_tokens: 256
  lr: 0.003
  warmup: 3
  log_every: 10
  eval_every: 0
YAML
"$bin" train --config "$tmp/cfg.yaml" --data "$tmp/corpus.txt" --tokenizer "$tmp/tok.gguf" \
  --out "$tmp/run" --train-steps 30 --export "$tmp/run/model.gguf" 2> "$tmp/train.log" \
  || { cat "$tmp/train.log"; fail "train"; }
cat "$tmp/train.log"
grep -q "tokenized .*corpus.txt: 400 lines" "$tmp/train.log" || fail "corpus not tokenized"
grep -qE "^step +30/30 \| loss [0-9.]+ \|.*tok/s \| MFU .*ETA" "$tmp/train.log" || fail "no progress line"
[ "$(wc -l < "$tmp/run/loss.csv")" -eq 31 ] || fail "loss.csv should have 30 rows"
[ -s "$tmp/run/loss.png" ] || fail "no loss.png"
first=$(sed -n 2p "$tmp/run/loss.csv" | cut -d, -f2); last=$(tail -1 "$tmp/run/loss.csv" | cut -d, -f2)
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a * 0.8) }' || fail "loss did not drop ($first -> $last)"

# the export is a model the engine serves as is
"$bin" generate -m "$tmp/run/model.gguf" -p "the cat" -n 8 --temp 0 > "$tmp/gen.txt" 2> "$tmp/gen.log" \
  || { cat "$tmp/gen.log"; fail "generate from the exported model"; }
[ -s "$tmp/gen.txt" ] || fail "no generated text"
echo "generated: $(cat "$tmp/gen.txt")"

# a finished run resumes to nothing new
"$bin" train --config "$tmp/cfg.yaml" --data "$tmp/corpus.txt" --tokenizer "$tmp/tok.gguf" \
  --out "$tmp/run" --train-steps 30 2> "$tmp/again.log" || fail "second run"
grep -q "resuming from .* at step 30" "$tmp/again.log" || fail "did not resume"

# configuration errors name the file and line, and refuse to start
printf 'model:\n  dim: 32\n  dimm: 3\n' > "$tmp/bad.yaml"
if "$bin" train --config "$tmp/bad.yaml" --data "$tmp/corpus.txt" 2> "$tmp/bad.log"; then
  fail "bad config accepted"
fi
grep -q "bad.yaml:3" "$tmp/bad.log" || { cat "$tmp/bad.log"; fail "error does not name bad.yaml:3"; }
echo "train CLI: all checks passed"
