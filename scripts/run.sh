#!/usr/bin/env bash
# `make run`: the main job on the embedded defaults. Trains the default model on
# the first run (generated data, BPE tokenizer, a small chat model; cached under
# state/default-model afterwards), loads it in the inference engine and asks it
# held-out questions it never saw in training.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=$(nproc)
exec ./build/aistack demo --state state --threads "$threads"
