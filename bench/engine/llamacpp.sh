#!/bin/sh
# llama.cpp baseline: installs the pinned prebuilt llama.cpp (npm package node-llama-cpp, see
# bench/engine/llamacpp/package.json and package-lock.json) into bench/engine/llamacpp/node_modules
# if it is not there, then runs bench/engine/llamacpp.mjs with the given arguments.
#
#   bench/engine/llamacpp.sh -m FILE.gguf [-t THREADS] [-r REPS] [-p 512] [-n 128] [--fa 0|1] [--log]
#   bench/engine/llamacpp.sh --install      # install only
#   bench/engine/llamacpp.sh --llama-bench [llama-bench args]   # e.g. -m F.gguf -t 2 -p 512 -n 128
#   LLAMA_BENCH_ISA=avx2 bench/engine/llamacpp.sh --llama-bench ...  # built for AVX2+FMA only
#   bench/engine/llamacpp.sh --llama-batched-bench [args]   # llama.cpp's batched decoding bench
#
# --llama-bench builds llama.cpp's own llama-bench (once, ~9 min on 2 cores; --llama-batched-bench
# the same for llama-batched-bench, a minute more in the same tree) from the llama.cpp source
# node-llama-cpp ships (node_modules/node-llama-cpp/llama/gitRelease.bundle, the same commit
# as the prebuilt binary, plus the package's patches/) into node_modules/.llama-bench-build and runs
# it. It needs cmake and a C++ compiler, no network. node-llama-cpp's addon computes each decode
# with a fresh ggml thread pool (no llama_attach_threadpool), which costs milliseconds per token
# with 2 threads on this VM; llama-bench keeps one polling pool, so its tg numbers are the fair
# llama.cpp baseline and the node-llama-cpp ones a lower bound.
#
# npm ci runs with --ignore-scripts: node-llama-cpp's postinstall would otherwise try to fetch or
# build llama.cpp when it dislikes the prebuilt binary. Only the CPU prebuilt package is installed
# (optional GPU packages omitted, see llamacpp/.npmrc). At run time getLlama() gets build "never"
# and skipDownload, so a binary that does not load is an error, never a download or a compile.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dir="$here/llamacpp"
export NODE_LLAMA_CPP_SKIP_DOWNLOAD=true

die() { echo "llamacpp.sh: $*" >&2; exit 3; }

command -v node >/dev/null 2>&1 || die "node is not installed (need Node.js >= 20)"
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || die "node $(node --version) is too old (need >= 20)"
[ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ] || die "only the linux-x64 prebuilt is pinned; this is $(uname -s)-$(uname -m)"

installed() {
    [ -f "$dir/node_modules/node-llama-cpp/package.json" ] &&
    [ -f "$dir/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/llama-addon.node" ] &&
    [ "$(node -p "require('$dir/node_modules/node-llama-cpp/package.json').version")" = \
      "$(node -p "require('$dir/package.json').dependencies['node-llama-cpp']")" ]
}

if ! installed; then
    command -v npm >/dev/null 2>&1 || die "npm is not installed; cannot install node-llama-cpp"
    echo "llamacpp.sh: installing node-llama-cpp into $dir/node_modules (npm ci)" >&2
    # npm ci refuses this lock file when the registry lacks node-llama-cpp's optional packages for
    # other platforms (win-*, mac-*, linux-riscv64 are missing on the mirror here, so they cannot be
    # in the lock): then npm install --no-save, which installs the same locked versions and
    # integrity hashes without rewriting package.json or package-lock.json.
    cilog=$(mktemp)
    if ! (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >"$cilog" 2>&1); then
        if grep -q 'from lock file' "$cilog"; then
            echo "llamacpp.sh: npm ci: lock file lacks optional packages the registry does not have; npm install --no-save from the lock" >&2
            (cd "$dir" && npm install --no-save --ignore-scripts --no-audit --no-fund --loglevel=error >&2) ||
                die "npm install failed in $dir: the npm registry must be reachable to install node-llama-cpp; no llama.cpp baseline"
        else
            cat "$cilog" >&2
            die "npm ci failed in $dir: the npm registry must be reachable to install node-llama-cpp; no llama.cpp baseline"
        fi
    fi
    rm -f "$cilog"
    installed || die "npm ci finished but $dir/node_modules lacks node-llama-cpp or its linux-x64 prebuilt binary"
fi

[ "${1:-}" = "--install" ] && { echo "llamacpp.sh: installed" >&2; exit 0; }

if [ "${1:-}" = "--llama-bench" ] || [ "${1:-}" = "--llama-batched-bench" ]; then
    tool=${1#--}
    shift
    nlc="$dir/node_modules/node-llama-cpp/llama"
    bdir="$dir/node_modules/.llama-bench-build"
    # GGML_NATIVE: built for this CPU (the prebuilt picks its CPU variant at run time instead).
    # LLAMA_BENCH_ISA=avx2: AVX2/FMA/F16C only, to compare with aistack's AVX2 level
    # (AISTACK_ISA=avx2) on a machine that also has AVX-512.
    isaflags="-DGGML_NATIVE=ON"
    case "${LLAMA_BENCH_ISA:-native}" in
    native) ;;
    avx2)
        bdir="$bdir-avx2"
        isaflags="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AVX_VNNI=OFF"
        ;;
    *) die "LLAMA_BENCH_ISA must be native or avx2, not '${LLAMA_BENCH_ISA}'" ;;
    esac
    bin="$bdir/build/bin/$tool"
    if [ ! -f "$bdir/build/CMakeCache.txt" ]; then
        command -v cmake >/dev/null 2>&1 || die "cmake is needed to build llama-bench"
        command -v git >/dev/null 2>&1 || die "git is needed to unpack the llama.cpp source bundle"
        [ -f "$nlc/gitRelease.bundle" ] || die "no llama.cpp source bundle at $nlc/gitRelease.bundle"
        echo "llamacpp.sh: unpacking llama.cpp from $nlc/gitRelease.bundle into $bdir (once)" >&2
        rm -rf "$bdir"
        git clone -q "$nlc/gitRelease.bundle" "$bdir/src" || die "cannot unpack $nlc/gitRelease.bundle"
        for p in "$nlc"/patches/*.diff; do
            [ -f "$p" ] || continue
            git -C "$bdir/src" apply "$p" || die "patch $p does not apply"
        done
        # shellcheck disable=SC2086
        cmake -S "$bdir/src" -B "$bdir/build" -DCMAKE_BUILD_TYPE=Release $isaflags \
            -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
            -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF >&2 ||
            die "llama.cpp configure failed"
    fi
    if [ ! -x "$bin" ]; then
        echo "llamacpp.sh: building $tool in $bdir (once)" >&2
        cmake --build "$bdir/build" --target "$tool" -j"$(nproc)" >&2 || die "$tool build failed"
    fi
    exec "$bin" "$@"
fi
exec node "$here/llamacpp.mjs" "$@"
