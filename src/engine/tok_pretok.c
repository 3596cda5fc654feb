/*
 * tok_pretok.c - the regex pre-tokenizers of byte-level BPE vocabularies.
 *
 * llama.cpp applies, per tokenizer.ggml.pre, a list of regexes one after the
 * other: each regex splits every current chunk into its matches and the text
 * between them. There is no \p{..} regex engine here, so each regex is a
 * hand-written matcher over code points that returns the length of the match
 * leftmost-first (PCRE/ECMAScript) semantics would give at a position; the
 * generic scanner below turns matchers into splits. Chunk boundaries act as
 * the input's ends (for $ and (?!\S)), as they do for the reference. Regexes
 * that llama.cpp runs through std::wregex see non-ASCII whitespace as \v;
 * wcp() reproduces that for their explicit character ranges. Not for: the BPE
 * merges (tok_bpe.c).
 */
#include <string.h>

#include "core/err.h"
#include "engine/tok_internal.h"
#include "engine/tok_unicode.h"

struct cps {
    const uint32_t *cp;
    const uint8_t *fl;
};

/*
 * Returns the match length at pos within [pos, end) (0 = no match). On no
 * match a matcher may set *skip to the next position worth trying.
 */
typedef size_t (*matcher_fn)(const struct cps *c, size_t pos, size_t end, size_t *skip);

static inline unsigned cat(const struct cps *c, size_t i)
{
    return c->fl[i] & TOK_UCAT_MASK;
}
static inline int is_l(const struct cps *c, size_t i)
{
    return cat(c, i) == TOK_UCAT_L;
}
static inline int is_n(const struct cps *c, size_t i)
{
    return cat(c, i) == TOK_UCAT_N;
}
static inline int is_p(const struct cps *c, size_t i)
{
    return cat(c, i) == TOK_UCAT_P;
}
static inline int is_ws(const struct cps *c, size_t i)
{
    return (c->fl[i] & TOK_UCAT_WS) != 0;
}
/* [^\s\p{L}\p{N}] */
static inline int is_other(const struct cps *c, size_t i)
{
    return !is_ws(c, i) && !is_l(c, i) && !is_n(c, i);
}
static inline int is_crlf(const struct cps *c, size_t i)
{
    return c->cp[i] == '\r' || c->cp[i] == '\n';
}
/* The code point as std::wregex sees it in llama.cpp (non-ASCII whitespace -> \v). */
static inline uint32_t wcp(const struct cps *c, size_t i)
{
    return c->cp[i] > 0x7F && is_ws(c, i) ? 0x0B : c->cp[i];
}

static size_t run(const struct cps *c, size_t i, size_t end,
                  int (*pred)(const struct cps *, size_t))
{
    size_t j = i;
    while (j < end && pred(c, j))
        j++;
    return j - i;
}

/* 's|'t|'re|'ve|'m|'ll|'d, optionally ASCII case-insensitive */
static size_t contraction(const struct cps *c, size_t pos, size_t end, int icase)
{
    if (c->cp[pos] != '\'' || pos + 1 >= end)
        return 0;
    uint32_t a = c->cp[pos + 1], b = pos + 2 < end ? c->cp[pos + 2] : 0;
    if (icase) {
        a = a < 128 ? (uint32_t)((a >= 'A' && a <= 'Z') ? a + 32 : a) : a;
        b = b < 128 ? (uint32_t)((b >= 'A' && b <= 'Z') ? b + 32 : b) : b;
    }
    if (a == 's' || a == 't' || a == 'm' || a == 'd')
        return 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
        return 3;
    return 0;
}

/* \s+(?!\S) then (if with_plain) \s+ */
static size_t ws_tail(const struct cps *c, size_t pos, size_t end, int with_plain)
{
    size_t k = run(c, pos, end, is_ws);
    if (k == 0)
        return 0;
    if (pos + k == end)
        return k;
    if (k >= 2)
        return k - 1;
    return with_plain ? k : 0;
}

/* GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S) */
static size_t m_gpt2(const struct cps *c, size_t pos, size_t end, size_t *skip)
{
    size_t m = contraction(c, pos, end, 0);
    if (m)
        return m;
    size_t q = pos + (c->cp[pos] == ' ' && pos + 1 < end);
    if (is_l(c, q))
        return q - pos + run(c, q, end, is_l);
    if (is_n(c, q))
        return q - pos + run(c, q, end, is_n);
    if (is_other(c, q))
        return q - pos + run(c, q, end, is_other);
    return ws_tail(c, pos, end, 0);
}

/*
 * Llama 3 / Qwen2:
 * (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,ND}|
 *  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 */
static size_t m_llama3_like(const struct cps *c, size_t pos, size_t end, size_t max_digits)
{
    size_t m = contraction(c, pos, end, 1);
    if (m)
        return m;
    if (!is_crlf(c, pos) && !is_l(c, pos) && !is_n(c, pos) && pos + 1 < end && is_l(c, pos + 1))
        return 1 + run(c, pos + 1, end, is_l);
    if (is_l(c, pos))
        return run(c, pos, end, is_l);
    if (is_n(c, pos)) {
        size_t k = run(c, pos, end, is_n);
        return k < max_digits ? k : max_digits;
    }
    size_t q = pos + (c->cp[pos] == ' ' && pos + 1 < end);
    if (is_other(c, q)) {
        size_t j = q + run(c, q, end, is_other);
        return j - pos + run(c, j, end, is_crlf);
    }
    size_t k = run(c, pos, end, is_ws);
    for (size_t j = k; j > 0; j--) /* \s*[\r\n]+: up to the last CR/LF of the run */
        if (is_crlf(c, pos + j - 1))
            return j;
    return ws_tail(c, pos, end, 1);
}

static size_t m_llama3(const struct cps *c, size_t pos, size_t end, size_t *skip)
{
    return m_llama3_like(c, pos, end, 3);
}

static size_t m_qwen2(const struct cps *c, size_t pos, size_t end, size_t *skip)
{
    return m_llama3_like(c, pos, end, 1);
}

static int is_punct_default(const struct cps *c, size_t i)
{
    uint32_t x = c->cp[i];
    return is_p(c, i) || x == '$' || x == '+' || x == '<' || x == '=' || x == '>' || x == '^' ||
           x == '~' || x == '|';
}

static int is_punct_falcon(const struct cps *c, size_t i)
{
    return is_punct_default(c, i) || c->cp[i] == '`';
}

/* [\p{P}\$\+<=>\^~\|]+ */
static size_t m_punct_default(const struct cps *c, size_t pos, size_t end, size_t *skip)
{
    return run(c, pos, end, is_punct_default);
}

/* [\p{P}\$\+<=>\^~\|`]+ */
static size_t m_punct_falcon(const struct cps *c, size_t pos, size_t end, size_t *skip)
{
    return run(c, pos, end, is_punct_falcon);
}

/* \p{N}+ */
static size_t m_num_run(const struct cps *c, size_t pos, size_t end, size_t *skip)
{
    return run(c, pos, end, is_n);
}

/* \p{N} */
static size_t m_num1(const struct cps *c, size_t pos, size_t end, size_t *skip)
{
    return is_n(c, pos) ? 1 : 0;
}

/* [0-9][0-9][0-9] */
static size_t m_digits3(const struct cps *c, size_t pos, size_t end, size_t *skip)
{
    if (pos + 3 > end)
        return 0;
    for (size_t i = 0; i < 3; i++)
        if (c->cp[pos + i] < '0' || c->cp[pos + i] > '9')
            return 0;
    return 3;
}

/* [\r\n] */
static size_t m_crlf(const struct cps *c, size_t pos, size_t end, size_t *skip)
{
    return is_crlf(c, pos) ? 1 : 0;
}

/* \s+$ */
static size_t m_ws_end(const struct cps *c, size_t pos, size_t end, size_t *skip)
{
    size_t k = run(c, pos, end, is_ws);
    if (k > 0 && pos + k == end)
        return k;
    if (k > 0)
        *skip = pos + k; /* no later start inside this run can reach the end either */
    return 0;
}

struct range {
    uint32_t lo, hi;
};

static int in_ranges(const struct range *r, size_t n, uint32_t x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (x < r[mid].lo)
            hi = mid;
        else if (x > r[mid].hi)
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

/* DeepSeek LLM's letter class (cased letters of many scripts), from its tokenizer.json. */
static const struct range ds_letters[] = {
    {0x41, 0x5A},       {0x61, 0x7A},       {0xB5, 0xB5},       {0xC0, 0xD6},
    {0xD8, 0xF6},       {0xF8, 0x1BA},      {0x1BC, 0x1BF},     {0x1C4, 0x293},
    {0x295, 0x2AF},     {0x370, 0x373},     {0x376, 0x377},     {0x37B, 0x37D},
    {0x37F, 0x37F},     {0x386, 0x386},     {0x388, 0x38A},     {0x38C, 0x38C},
    {0x38E, 0x3A1},     {0x3A3, 0x3F5},     {0x3F7, 0x481},     {0x48A, 0x52F},
    {0x531, 0x556},     {0x10A0, 0x10C5},   {0x13A0, 0x13F5},   {0x13F8, 0x13FD},
    {0x1C90, 0x1CBA},   {0x1CBD, 0x1CBF},   {0x1D00, 0x1D2B},   {0x1D6B, 0x1D77},
    {0x1D79, 0x1D9A},   {0x1E00, 0x1F15},   {0x1F18, 0x1F1D},   {0x1F20, 0x1F45},
    {0x1F48, 0x1F4D},   {0x1F50, 0x1F57},   {0x1F59, 0x1F59},   {0x1F5B, 0x1F5B},
    {0x1F5D, 0x1F5D},   {0x1F5F, 0x1F7D},   {0x1F80, 0x1FB4},   {0x1FB6, 0x1FBC},
    {0x1FBE, 0x1FBE},   {0x1FC2, 0x1FC4},   {0x1FC6, 0x1FCC},   {0x1FD0, 0x1FD3},
    {0x1FD6, 0x1FDB},   {0x1FE0, 0x1FEC},   {0x1FF2, 0x1FF4},   {0x1FF6, 0x1FFC},
    {0x2102, 0x2102},   {0x2107, 0x2107},   {0x210A, 0x2113},   {0x2115, 0x2115},
    {0x2119, 0x211D},   {0x2124, 0x2124},   {0x2126, 0x2126},   {0x2128, 0x2128},
    {0x212A, 0x212D},   {0x212F, 0x2134},   {0x2139, 0x2139},   {0x213C, 0x213F},
    {0x2145, 0x2149},   {0x214E, 0x214E},   {0x2183, 0x2184},   {0x2C00, 0x2C7B},
    {0x2C7E, 0x2CE4},   {0x2CEB, 0x2CEE},   {0x2CF2, 0x2CF3},   {0xA640, 0xA66D},
    {0xA680, 0xA69B},   {0xA722, 0xA76F},   {0xA771, 0xA787},   {0xA78B, 0xA78E},
    {0xAB70, 0xABBF},   {0xFB00, 0xFB06},   {0xFB13, 0xFB17},   {0xFF21, 0xFF3A},
    {0xFF41, 0xFF5A},   {0x10400, 0x1044F}, {0x104B0, 0x104D3}, {0x104D8, 0x104FB},
    {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF}, {0x1E900, 0x1E943},
};

/* [!-/:-~！-／：-～‘-‟　-。] */
static const struct range ds_punct[] = {
    {0x21, 0x2F},     {0x3A, 0x7E},     {0x2018, 0x201F},
    {0x3000, 0x3002}, {0xFF01, 0xFF0F}, {0xFF1A, 0xFF5E},
};

/* [一-龥ࠀ-一가-퟿] */
static const struct range cjk[] = {
    {0x800, 0x9FA5},
    {0xAC00, 0xD7FF},
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static int is_ds_letter(const struct cps *c, size_t i)
{
    return in_ranges(ds_letters, N_OF(ds_letters), wcp(c, i));
}

static int is_ds_punct(const struct cps *c, size_t i)
{
    return in_ranges(ds_punct, N_OF(ds_punct), wcp(c, i));
}

static int is_cjk(const struct cps *c, size_t i)
{
    return in_ranges(cjk, N_OF(cjk), wcp(c, i));
}

/* \s?X+ for a class predicate X */
static size_t ws_opt_class(const struct cps *c, size_t pos, size_t end,
                           int (*pred)(const struct cps *, size_t))
{
    if (is_ws(c, pos) && pos + 1 < end && pred(c, pos + 1))
        return 1 + run(c, pos + 1, end, pred);
    return run(c, pos, end, pred);
}

static size_t m_ds_letters(const struct cps *c, size_t pos, size_t end, size_t *skip)
{
    return ws_opt_class(c, pos, end, is_ds_letter);
}

static size_t m_ds_punct(const struct cps *c, size_t pos, size_t end, size_t *skip)
{
    return ws_opt_class(c, pos, end, is_ds_punct);
}

static size_t m_cjk(const struct cps *c, size_t pos, size_t end, size_t *skip)
{
    return run(c, pos, end, is_cjk);
}

/* \s?\p{L}+ */
static size_t m_ws_letters(const struct cps *c, size_t pos, size_t end, size_t *skip)
{
    return ws_opt_class(c, pos, end, is_l);
}

/* \s?\p{P}+ */
static size_t m_ws_punct(const struct cps *c, size_t pos, size_t end, size_t *skip)
{
    return ws_opt_class(c, pos, end, is_p);
}

struct pre_def {
    enum tok_pre pre;
    matcher_fn fn[6];
};

static const struct pre_def pre_defs[] = {
    {TOK_PRE_DEFAULT, {m_punct_default, m_gpt2, m_num_run, m_digits3}},
    {TOK_PRE_LLAMA3, {m_llama3}},
    {TOK_PRE_QWEN2, {m_qwen2}},
    {TOK_PRE_GPT2, {m_gpt2}},
    {TOK_PRE_DEEPSEEK_LLM, {m_crlf, m_ds_letters, m_ds_punct, m_ws_end, m_cjk, m_num_run}},
    {TOK_PRE_DEEPSEEK_CODER, {m_crlf, m_ws_letters, m_ws_punct, m_cjk, m_num1}},
    {TOK_PRE_FALCON, {m_punct_falcon, m_gpt2, m_digits3}},
    {TOK_PRE_STARCODER, {m_num1, m_gpt2}},
};

struct pre_name {
    const char *name;
    enum tok_pre pre;
    int ignore_merges;
};

/* tokenizer.ggml.pre names (llama.cpp's) mapped to the regex sets above. */
static const struct pre_name pre_names[] = {
    {"default", TOK_PRE_DEFAULT, 0},
    {"llama3", TOK_PRE_LLAMA3, 1},
    {"llama-v3", TOK_PRE_LLAMA3, 1},
    {"llama-bpe", TOK_PRE_LLAMA3, 1},
    {"falcon3", TOK_PRE_LLAMA3, 1},
    {"falcon-h1", TOK_PRE_LLAMA3, 1},
    {"midm-2.0", TOK_PRE_LLAMA3, 1},
    {"lfm2", TOK_PRE_LLAMA3, 1},
    {"pixtral", TOK_PRE_LLAMA3, 1},
    {"dbrx", TOK_PRE_LLAMA3, 0},
    {"smaug-bpe", TOK_PRE_LLAMA3, 0},
    {"chatglm-bpe", TOK_PRE_LLAMA3, 0},
    {"qwen2", TOK_PRE_QWEN2, 0},
    {"kormo", TOK_PRE_QWEN2, 0},
    {"deepseek-r1-qwen", TOK_PRE_QWEN2, 0},
    {"stablelm2", TOK_PRE_QWEN2, 0},
    {"megrez", TOK_PRE_QWEN2, 0},
    {"hunyuan", TOK_PRE_QWEN2, 0},
    {"gpt-2", TOK_PRE_GPT2, 0},
    {"exaone4", TOK_PRE_GPT2, 0},
    {"phi-2", TOK_PRE_GPT2, 0},
    {"mpt", TOK_PRE_GPT2, 0},
    {"olmo", TOK_PRE_GPT2, 0},
    {"jais", TOK_PRE_GPT2, 0},
    {"trillion", TOK_PRE_GPT2, 0},
    {"jina-es", TOK_PRE_GPT2, 0},
    {"jina-de", TOK_PRE_GPT2, 0},
    {"gigachat", TOK_PRE_GPT2, 0},
    {"roberta-bpe", TOK_PRE_GPT2, 0},
    {"deepseek-llm", TOK_PRE_DEEPSEEK_LLM, 0},
    {"deepseek-coder", TOK_PRE_DEEPSEEK_CODER, 0},
    {"falcon", TOK_PRE_FALCON, 0},
    {"starcoder", TOK_PRE_STARCODER, 0},
    {"refact", TOK_PRE_STARCODER, 0},
    {"command-r", TOK_PRE_STARCODER, 0},
    {"smollm", TOK_PRE_STARCODER, 0},
    {"codeshell", TOK_PRE_STARCODER, 0},
    {"exaone", TOK_PRE_STARCODER, 0},
    {"minerva-7b", TOK_PRE_STARCODER, 0},
};

int tok__pre_from_name(const char *name, enum tok_pre *out, int *ignore_merges)
{
    for (size_t i = 0; i < N_OF(pre_names); i++)
        if (!strcmp(pre_names[i].name, name)) {
            *out = pre_names[i].pre;
            *ignore_merges = pre_names[i].ignore_merges;
            return 0;
        }
    return AS_EUNSUP;
}

static int push_span(struct tok_scratch *s, int which, size_t *n, size_t a, size_t b)
{
    if (tok__grow((void **)&s->spans[which], &s->spans_cap[which], 2 * (*n + 1), sizeof(uint32_t)))
        return AS_ENOMEM;
    s->spans[which][2 * *n] = (uint32_t)a;
    s->spans[which][2 * *n + 1] = (uint32_t)b;
    (*n)++;
    return 0;
}

int tok__pretok_split(enum tok_pre pre, const char *text, size_t len, struct tok_scratch *s,
                      const uint32_t **spans, size_t *n_spans)
{
    const struct pre_def *def = &pre_defs[0];
    for (size_t i = 0; i < N_OF(pre_defs); i++)
        if (pre_defs[i].pre == pre)
            def = &pre_defs[i];
    /* decode once: code points, their flags and byte offsets */
    size_t cap = s->cpt_cap;
    if (len + 1 > cap) {
        size_t c1 = cap, c2 = cap, c3 = cap;
        if (tok__grow((void **)&s->cpt, &c1, len + 1, sizeof *s->cpt) ||
            tok__grow((void **)&s->cflags, &c2, len + 1, 1) ||
            tok__grow((void **)&s->coff, &c3, len + 1, sizeof *s->coff))
            return AS_ENOMEM;
        s->cpt_cap = c1 < c2 ? (c1 < c3 ? c1 : c3) : (c2 < c3 ? c2 : c3);
    }
    size_t n = 0;
    const uint8_t *p = (const uint8_t *)text;
    for (size_t off = 0; off < len; n++) {
        uint32_t cp;
        size_t k = tok_utf8_decode(p + off, len - off, &cp);
        s->cpt[n] = cp;
        s->cflags[n] = (uint8_t)tok_ucd_flags(cp);
        s->coff[n] = (uint32_t)off;
        off += k;
    }
    s->coff[n] = (uint32_t)len;
    struct cps c = {s->cpt, s->cflags};

    int cur = 0;
    size_t ncur = 0;
    if (n > 0 && push_span(s, cur, &ncur, 0, n))
        return AS_ENOMEM;
    for (size_t r = 0; r < N_OF(def->fn) && def->fn[r]; r++) {
        int nx = !cur;
        size_t nnext = 0;
        for (size_t k = 0; k < ncur; k++) {
            size_t start = s->spans[cur][2 * k], end = start + s->spans[cur][2 * k + 1];
            size_t pos = start, gap = start;
            while (pos < end) {
                size_t skip = pos + 1;
                size_t m = def->fn[r](&c, pos, end, &skip);
                if (m == 0) {
                    pos = skip;
                    continue;
                }
                if (gap < pos && push_span(s, nx, &nnext, gap, pos - gap))
                    return AS_ENOMEM;
                if (push_span(s, nx, &nnext, pos, m))
                    return AS_ENOMEM;
                pos += m;
                gap = pos;
            }
            if (gap < end && push_span(s, nx, &nnext, gap, end - gap))
                return AS_ENOMEM;
        }
        cur = nx;
        ncur = nnext;
    }
    /* code point spans -> byte spans, in place */
    uint32_t *sp = s->spans[cur];
    for (size_t k = 0; k < ncur; k++) {
        uint32_t a = sp[2 * k], l = sp[2 * k + 1];
        sp[2 * k] = s->coff[a];
        sp[2 * k + 1] = s->coff[a + l] - s->coff[a];
    }
    *spans = sp;
    *n_spans = ncur;
    return 0;
}
