#!/usr/bin/env bash
# `make run`: the main job on the embedded defaults. Grows with the project:
# train the default model (first run), bring the stack up, ask it a question.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "aistack: build OK ($(ls build/aistack* | xargs -n1 basename | tr '\n' ' '))"
./build/aistack --help
