// llama.cpp baseline for bench/engine, measured the way llama-bench does.
//
//   node bench/engine/llamacpp.mjs -m FILE.gguf [-t THREADS] [-r REPS] [-p 512] [-n 128]
//                                  [-b 512] [--fa on|off|auto] [--no-warmup] [--log]
//
// Runs llama.cpp through the prebuilt binaries of the npm package node-llama-cpp (pinned in
// bench/engine/llamacpp/package.json; install with bench/engine/llamacpp.sh). Nothing is built or
// downloaded at run time: getLlama({build: "never", skipDownload: true}) fails instead.
//
// Tests, as llama-bench:
//   pp<P>: one sequence, empty KV cache, P random token ids decoded as one batch (batch and
//          micro-batch size -b), logits for the last token only. tokens/s = P / time.
//   tg<N>: empty KV cache, start from BOS, N tokens decoded one at a time, each with logits for
//          the vocabulary and a greedy (temperature 0) pick fed back as the next input.
//          tokens/s = N / time. (llama-bench feeds random ids instead of the argmax; same work.)
// One warm-up run of each test first (llama-bench does one too), then -r repeats of each,
// alternated pp, tg, pp, tg, ... ; min/median/max tokens/s over the repeats.
//
// Two clocks per run: "wall" is JS time around the node-llama-cpp call (what a caller sees),
// "native" is llama.cpp's own decode time (llama_perf_context: t_p_eval for pp, t_eval for tg),
// read from its printTimings log. native is the number to compare with llama-bench; wall - native
// is the JS/addon overhead, printed as overhead_ms (per run for pp, per token for tg).
//
// Caveat: node-llama-cpp's addon attaches no ggml thread pool to its context (it imports neither
// ggml_threadpool_new nor llama_attach_threadpool), so ggml makes a disposable pool for each decode
// with more than one thread; most likely why, on the 2-vCPU VM, 2 threads cost
// milliseconds per decode (synth "tiny" model, load ~1: 2 threads ~12 ms/token native, against
// 0.07 ms in llama-bench -t 2 and 0.11 ms here with 1 thread), which lands in tg (TinyLlama Q4_K_M
// tg128: ~34 t/s here, ~51 in llama-bench), little in pp. llama-bench built from the same source
// (bench/engine/llamacpp.sh --llama-bench) is the fair baseline; this script's numbers a lower bound.
// JS overhead (wall - native, same tiny model): ~1 ms per pp512 call, ~0.3-0.5 ms per tg token.
//
// Prints one JSON line on stdout; progress and llama.cpp warnings go to stderr.

import fs from "node:fs";
import path from "node:path";
import os from "node:os";
import {createRequire} from "node:module";
import {fileURLToPath, pathToFileURL} from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const pkgDir = path.join(here, "llamacpp");

function usage(msg) {
    if (msg) process.stderr.write(`llamacpp.mjs: ${msg}\n`);
    process.stderr.write("usage: node bench/engine/llamacpp.mjs -m FILE.gguf [-t THREADS] [-r REPS] " +
        "[-p 512] [-n 128] [-b 512] [--fa on|off|auto] [--no-warmup] [--log]\n");
    process.exit(2);
}

const opt = {model: null, threads: 2, reps: 5, pp: 512, tg: 128, batch: 512, fa: "auto", warmup: true, log: false};
{
    const a = process.argv.slice(2);
    const num = (i, name) => {
        const v = Number(a[i]);
        if (a[i] === undefined || !Number.isInteger(v) || v < 0) usage(`${name} needs a whole number`);
        return v;
    };
    for (let i = 0; i < a.length; i++) {
        switch (a[i]) {
            case "-m": case "--model": opt.model = a[++i]; break;
            case "-t": case "--threads": opt.threads = num(++i, "-t"); break;
            case "-r": case "--reps": opt.reps = num(++i, "-r"); break;
            case "-p": case "--pp": opt.pp = num(++i, "-p"); break;
            case "-n": case "--tg": opt.tg = num(++i, "-n"); break;
            case "-b": case "--batch": opt.batch = num(++i, "-b"); break;
            case "--fa": {
                const v = a[++i];
                const m = {on: true, 1: true, off: false, 0: false, auto: "auto"};
                if (!(v in m)) usage("--fa takes on, off or auto (llama-bench's default: auto)");
                opt.fa = m[v];
                break;
            }
            case "--no-warmup": opt.warmup = false; break;
            case "--log": opt.log = true; break;
            case "-h": case "--help": usage(); break;
            default:
                if (!opt.model && !a[i].startsWith("-")) opt.model = a[i];
                else usage(`unknown argument ${a[i]}`);
        }
    }
    if (!opt.model) usage("no model (-m FILE.gguf)");
    if (!fs.existsSync(opt.model)) usage(`no such file: ${opt.model}`);
    if (opt.threads < 1 || opt.reps < 1 || opt.batch < 1) usage("-t, -r and -b must be at least 1");
    if (opt.pp > 0 && opt.pp > opt.batch) usage("-p larger than -b would split the prompt into several batches");
}

let nlc, nlcVersion, binVersion;
try {
    const nm = path.join(pkgDir, "node_modules");
    const pkgJson = (name) => JSON.parse(fs.readFileSync(path.join(nm, name, "package.json"), "utf8"));
    nlcVersion = pkgJson("node-llama-cpp").version;
    binVersion = pkgJson("@node-llama-cpp/linux-x64").version;
    // resolved from bench/engine/llamacpp/node_modules, whatever the working directory
    const req = createRequire(path.join(pkgDir, "package.json"));
    nlc = await import(pathToFileURL(req.resolve("node-llama-cpp")).href);
} catch (e) {
    process.stderr.write(`llamacpp.mjs: node-llama-cpp is not installed in ${pkgDir}/node_modules ` +
        `(run bench/engine/llamacpp.sh, which does 'npm ci' there): ${e.message}\n`);
    process.exit(3);
}
const {getLlama, LlamaLogLevel} = nlc;

// llama.cpp log lines: kept for the backend name and the perf counters; echoed with --log.
const logs = [];
let perfLines = [];
function logger(level, message) {
    const m = String(message).replace(/\n+$/, "");
    logs.push(m);
    if (/llama_perf_context_print/.test(m)) perfLines.push(m);
    const loud = level === LlamaLogLevel.error || level === LlamaLogLevel.fatal;
    if (loud || (opt.log && level !== LlamaLogLevel.debug)) process.stderr.write(`[llama.cpp ${level}] ${m}\n`);
}

const t0 = performance.now();
let llama;
try {
    llama = await getLlama({
        gpu: false,               // CPU only, as our engine
        build: "never",           // never compile llama.cpp; use the prebuilt binary or fail
        skipDownload: true,       // never fetch llama.cpp sources
        usePrebuiltBinaries: true,
        progressLogs: false,
        maxThreads: opt.threads,  // no thread splitting beyond what we ask for
        logLevel: LlamaLogLevel.debug, // the "loaded CPU backend from ..." line is debug-level here
        logger,
    });
} catch (e) {
    process.stderr.write(`llamacpp.mjs: the prebuilt llama.cpp binary could not be loaded and nothing may be ` +
        `built or downloaded here: ${e.message}\n`);
    process.exit(3);
}
if (llama.buildType !== "prebuilt" || llama.gpu !== false) {
    process.stderr.write(`llamacpp.mjs: expected the prebuilt CPU binary, got buildType=${llama.buildType} gpu=${llama.gpu}\n`);
    process.exit(3);
}

const tLoad0 = performance.now();
let model;
try {
    model = await llama.loadModel({modelPath: opt.model, gpuLayers: 0, useMmap: true});
} catch (e) {
    process.stderr.write(`llamacpp.mjs: llama.cpp rejected ${opt.model}: ${e.message}\n`);
    const tail = logs.filter((l) => /error|failed|invalid|unknown|missing|wrong|expected/i.test(l)).slice(-10);
    for (const l of tail) process.stderr.write(`  llama.cpp: ${l}\n`);
    process.exit(4);
}
const tLoad1 = performance.now();
const context = await model.createContext({
    contextSize: Math.max(opt.pp, opt.tg + 1) + 256,
    batchSize: opt.batch,
    sequences: 1,
    threads: {ideal: opt.threads, min: opt.threads},
    flashAttention: opt.fa,
    performanceTracking: true,
});
const tCtx1 = performance.now();
// llama.cpp's log lines reach JS asynchronously: let them arrive, then read the CPU backend it
// loaded and how it resolved flash attention, then drop to info level (which still carries the
// perf counters) so that no debug chatter runs while timing.
await new Promise((r) => setTimeout(r, 200));
llama.logLevel = LlamaLogLevel.info;
const backendLine = logs.find((l) => /loaded CPU backend from/.test(l)) ?? null;
const cpuBackend = backendLine ? path.basename(backendLine.replace(/.*loaded CPU backend from\s*/, "").trim()) : null;
// "auto" is resolved by a probe after the "flash_attn = auto" line: "...: <flash attn probe> enabled|disabled"
const faLine = [...logs].reverse().find((l) => /flash.?att(n|ention)/i.test(l) && /\b(enabled|disabled|forcing)\b/.test(l))
    ?? [...logs].reverse().find((l) => /llama_context: flash_attn\s*=/.test(l));
const faUsed = faLine ? faLine.replace(/^[a-z_]+:\s*/, "").trim() : null;
const seq = context.getSequence();
if (context.currentThreads !== opt.threads)
    process.stderr.write(`llamacpp.mjs: warning: context uses ${context.currentThreads} threads, asked ${opt.threads}\n`);

// Vocabulary size from the GGUF metadata (token list length) for the random prompt ids.
const meta = model.fileInfo.metadata;
const nVocab = meta?.tokenizer?.ggml?.tokens?.length ?? 32000;
let rng = 0x2545f491;
const randTok = () => {
    rng ^= rng << 13; rng >>>= 0; rng ^= rng >>> 17; rng ^= rng << 5; rng >>>= 0;
    return rng % nVocab;
};
const bos = model.tokens.bos ?? 1;

async function readPerf() {
    perfLines = [];
    await context.printTimings(); // prints and resets llama.cpp's perf counters
    const j = perfLines.join("\n");
    const pick = (re) => {
        const m = j.match(re);
        return m ? {ms: Number(m[1]), n: Number(m[2])} : null;
    };
    return {
        prompt: pick(/prompt eval time\s*=\s*([\d.]+)\s*ms\s*\/\s*(\d+)\s*tokens/),
        eval: pick(/\s eval time\s*=\s*([\d.]+)\s*ms\s*\/\s*(\d+)\s*runs/),
    };
}

async function runPP() {
    await seq.clearHistory();
    await readPerf();
    const toks = Array.from({length: opt.pp}, randTok);
    const input = toks.map((t, i) => (i === toks.length - 1 ? [t, {generateNext: {token: true}}] : t));
    const s = performance.now();
    await seq.controlledEvaluate(input);
    const wall = performance.now() - s;
    const p = await readPerf();
    if (!p.prompt || p.prompt.n !== opt.pp)
        throw new Error(`pp: llama.cpp counted ${p.prompt?.n} prompt tokens, expected ${opt.pp}`);
    return {wall_ms: wall, native_ms: p.prompt.ms};
}

async function runTG() {
    await seq.clearHistory();
    await readPerf();
    let n = 0;
    const s = performance.now();
    for await (const _tok of seq.evaluate([bos], {temperature: 0, yieldEogToken: true})) {
        if (++n >= opt.tg) break;
    }
    const wall = performance.now() - s;
    const p = await readPerf();
    // llama.cpp counts every 1-token decode (the first one, BOS alone, included) as "eval";
    // its printout shows a count of at least 1 even when nothing ran, hence no prompt term here.
    const evals = p.eval?.n ?? 0;
    const ms = p.eval?.ms ?? 0;
    if (evals !== opt.tg) throw new Error(`tg: llama.cpp counted ${evals} decodes, expected ${opt.tg}`);
    return {wall_ms: wall, native_ms: ms};
}

function summary(runs, n, perToken) {
    const stat = (xs) => {
        const s = [...xs].sort((a, b) => a - b);
        const med = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
        return {min: +s[0].toFixed(2), median: +med.toFixed(2), max: +s[s.length - 1].toFixed(2)};
    };
    const over = runs.map((r) => (r.wall_ms - r.native_ms) / (perToken ? n : 1));
    return {
        n_tokens: n,
        tps_native: stat(runs.map((r) => (n * 1000) / r.native_ms)),
        tps_wall: stat(runs.map((r) => (n * 1000) / r.wall_ms)),
        [perToken ? "overhead_ms_per_token" : "overhead_ms_per_run"]: stat(over.map((x) => Math.max(x, 0))),
        runs_ms: runs.map((r) => ({wall: +r.wall_ms.toFixed(1), native: +r.native_ms.toFixed(1)})),
    };
}

const pp = [], tg = [];
try {
    if (opt.warmup) {
        if (opt.pp > 0) await runPP();
        if (opt.tg > 0) await runTG();
    }
    for (let r = 0; r < opt.reps; r++) {
        if (opt.pp > 0) pp.push(await runPP());
        if (opt.tg > 0) tg.push(await runTG());
        process.stderr.write(`llamacpp.mjs: rep ${r + 1}/${opt.reps}` +
            (opt.pp > 0 ? ` pp${opt.pp} ${((opt.pp * 1000) / pp.at(-1).native_ms).toFixed(1)} t/s` : "") +
            (opt.tg > 0 ? ` tg${opt.tg} ${((opt.tg * 1000) / tg.at(-1).native_ms).toFixed(1)} t/s` : "") + "\n");
    }
} catch (e) {
    process.stderr.write(`llamacpp.mjs: run failed: ${e.message}\n`);
    process.exit(5);
}

const fileType = meta?.general?.file_type;
const out = {
    engine: "llama.cpp",
    via: `node-llama-cpp ${nlcVersion} (@node-llama-cpp/linux-x64 ${binVersion}, prebuilt)`,
    llama_cpp_release: `${llama.llamaCppRelease.repo}@${llama.llamaCppRelease.release}`,
    cpu_backend: cpuBackend,
    system_info: llama.systemInfo.trim(),
    model: path.resolve(opt.model),
    model_bytes: fs.statSync(opt.model).size,
    model_desc: `${model.typeDescription}`,
    general_file_type: fileType ?? null,
    threads: opt.threads,
    batch: opt.batch,
    flash_attn: {asked: opt.fa, llama_cpp: faUsed},
    load_model_s: +((tLoad1 - tLoad0) / 1000).toFixed(3),
    create_context_s: +((tCtx1 - tLoad1) / 1000).toFixed(3),
    init_backend_s: +((tLoad0 - t0) / 1000).toFixed(3),
    reps: opt.reps,
    loadavg: os.loadavg().map((x) => +x.toFixed(2)),
};
if (opt.pp > 0) out[`pp${opt.pp}`] = summary(pp, opt.pp, false);
if (opt.tg > 0) out[`tg${opt.tg}`] = summary(tg, opt.tg, true);
process.stdout.write(JSON.stringify(out) + "\n");

await context.dispose();
await model.dispose();
await llama.dispose();
