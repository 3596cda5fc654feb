/*
 * jinja_lex.c - tokeniser of the Jinja interpreter.
 *
 * Mirrors jinja2's lexer with trim_blocks=True and lstrip_blocks=True:
 * `{%-`/`-%}` strip all whitespace, `{%+` keeps it, a block or comment tag
 * alone on its line takes the line's indentation with it, and a newline
 * right after `%}` or `#}` is dropped. Comments vanish, raw blocks become
 * data, string literals are decoded here (Python's unicode-escape rules).
 * Not for: parsing (jinja_parse.c). The source must already have its
 * newlines normalised to "\n" (jinja_template_parse does that).
 */
#include "engine/jinja_internal.h"

#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JJ_MAX_NEST 256 /* bracket nesting inside one tag */

struct lexer {
    struct jj_arena *a;
    const char *src;
    size_t len, pos;
    int line;
    struct jt *toks;
    size_t n, cap;
    struct jinja_error *err;
};

static int lex_fail(struct lexer *L, const char *msg)
{
    if (L->err) {
        L->err->line = L->line;
        L->err->raised = 0;
        snprintf(L->err->msg, sizeof(L->err->msg), "syntax error: %s", msg);
    }
    return AS_EINVAL;
}

static struct jt *lex_push(struct lexer *L, int kind)
{
    if (L->n == L->cap) {
        size_t cap = L->cap ? L->cap * 2 : 256;
        struct jt *t = realloc(L->toks, cap * sizeof(*t));
        if (!t)
            return NULL;
        L->toks = t;
        L->cap = cap;
    }
    struct jt *t = &L->toks[L->n++];
    memset(t, 0, sizeof(*t));
    t->kind = (uint8_t)kind;
    t->line = L->line;
    return t;
}

static int count_nl(const char *p, size_t n)
{
    int c = 0;
    for (size_t i = 0; i < n; i++)
        c += p[i] == '\n';
    return c;
}

/* Length of the text once trailing whitespace (Python str.rstrip()) is removed. */
static size_t rstrip_len(const char *p, size_t n)
{
    size_t i = 0, keep = 0;
    while (i < n) {
        size_t adv;
        uint32_t cp = jj_utf8_decode(p + i, n - i, &adv);
        i += adv;
        if (!jj_is_space(cp))
            keep = i;
    }
    return keep;
}

/* Bytes of whitespace (regex \s*) starting at p. */
static size_t skip_space(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t adv;
        uint32_t cp = jj_utf8_decode(p + i, n - i, &adv);
        if (!jj_is_space(cp))
            break;
        i += adv;
    }
    return i;
}

static int all_space(const char *p, size_t n)
{
    return n > 0 && skip_space(p, n) == n;
}

/*
 * Emits the data before a tag, applying `-` (strip all) or lstrip_blocks
 * (strip the indentation of a line holding only the tag). lstrip applies
 * when lstrip is set (block, comment and raw tags, not `{{`).
 */
static int emit_data(struct lexer *L, const char *p, size_t n, char sign, int lstrip,
                     int line_starting)
{
    size_t keep = n;
    if (sign == '-') {
        keep = rstrip_len(p, n);
    } else if (sign != '+' && lstrip) {
        size_t l_pos = 0;
        for (size_t i = n; i > 0; i--)
            if (p[i - 1] == '\n') {
                l_pos = i;
                break;
            }
        if ((l_pos > 0 || line_starting) && all_space(p + l_pos, n - l_pos))
            keep = l_pos;
    }
    if (keep > 0) {
        struct jt *t = lex_push(L, JT_DATA);
        if (!t)
            return AS_ENOMEM;
        t->p = p;
        t->len = keep;
    }
    L->line += count_nl(p, n);
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static size_t utf8_put(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Decodes a string literal body with Python's unicode-escape rules. */
static int decode_string(struct lexer *L, const char *p, size_t n, struct jt *t)
{
    char *o = jj_alloc(L->a, n + 1);
    size_t k = 0;
    if (!o)
        return AS_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\\' || i + 1 >= n) {
            o[k++] = p[i];
            continue;
        }
        char e = p[++i];
        uint32_t cp;
        int digits = 0;
        switch (e) {
        case '\n':
            continue;
        case '\\':
        case '\'':
        case '"':
            o[k++] = e;
            continue;
        case 'a':
            o[k++] = 7;
            continue;
        case 'b':
            o[k++] = 8;
            continue;
        case 'f':
            o[k++] = 12;
            continue;
        case 'n':
            o[k++] = '\n';
            continue;
        case 'r':
            o[k++] = '\r';
            continue;
        case 't':
            o[k++] = '\t';
            continue;
        case 'v':
            o[k++] = 11;
            continue;
        case 'x':
            digits = 2;
            break;
        case 'u':
            digits = 4;
            break;
        case 'U':
            digits = 8;
            break;
        default:
            if (e >= '0' && e <= '7') {
                cp = 0;
                int m = 0;
                while (m < 3 && i < n && p[i] >= '0' && p[i] <= '7') {
                    cp = cp * 8 + (uint32_t)(p[i] - '0');
                    i++, m++;
                }
                i--;
                k += utf8_put(o + k, cp);
                continue;
            }
            if (e == 'N')
                return lex_fail(L, "\\N{...} escapes are not supported");
            o[k++] = '\\';
            o[k++] = e;
            continue;
        }
        cp = 0;
        for (int d = 0; d < digits; d++) {
            int h = i + 1 + (size_t)d < n ? hexval(p[i + 1 + (size_t)d]) : -1;
            if (h < 0)
                return lex_fail(L, "truncated \\x/\\u/\\U escape in string");
            cp = cp * 16 + (uint32_t)h;
        }
        i += (size_t)digits;
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return lex_fail(L, "invalid code point escape in string");
        /* every escape is at least as long as its UTF-8 encoding */
        k += utf8_put(o + k, cp);
    }
    o[k] = '\0';
    t->p = o;
    t->len = k;
    return 0;
}

static int is_name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Digits with single '_' separators, as Python numbers allow. Returns bytes used. */
static size_t scan_digits(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && is_digit(p[i])) {
        i++;
        if (i + 1 < n && p[i] == '_' && is_digit(p[i + 1]))
            i++;
    }
    return i;
}

static int lex_number(struct lexer *L)
{
    const char *p = L->src + L->pos;
    size_t n = L->len - L->pos;
    size_t i = scan_digits(p, n);
    int is_float = 0;
    /* (?<!\.) : a number right after '.' (foo.0.1) is an integer subscript */
    int after_dot = L->pos > 0 && L->src[L->pos - 1] == '.';
    if (!after_dot) {
        if (i + 1 < n && p[i] == '.' && is_digit(p[i + 1])) {
            i += 1 + scan_digits(p + i + 1, n - i - 1);
            is_float = 1;
        }
        if (i < n && (p[i] == 'e' || p[i] == 'E')) {
            size_t j = i + 1;
            if (j < n && (p[j] == '+' || p[j] == '-'))
                j++;
            if (j < n && is_digit(p[j])) {
                i = j + scan_digits(p + j, n - j);
                is_float = 1;
            }
        }
    }
    int base = 10;
    if (!is_float && p[0] == '0') {
        char x = n > 2 ? (char)(p[1] | 0x20) : 0;
        int pb = x == 'x' ? 16 : x == 'o' ? 8 : x == 'b' ? 2 : 0;
        size_t j = 2;
        while (pb && j < n) {
            char ch = p[j];
            int d = is_digit(ch)                               ? ch - '0'
                    : (ch | 0x20) >= 'a' && (ch | 0x20) <= 'f' ? (ch | 0x20) - 'a' + 10
                                                               : 99;
            if (ch == '_' && j + 1 < n && p[j + 1] != '_')
                j++;
            else if (d < pb)
                j++;
            else
                break;
        }
        if (pb && j > 2) { /* 0x1f, 0o17, 0b101 */
            base = pb;
            i = j;
        } else {
            /* jinja2's decimal zero is 0(_?0)*: "010" lexes as 0 then 10 (a syntax error) */
            i = 1;
            while (i < n && (p[i] == '0' || (p[i] == '_' && i + 1 < n && p[i + 1] == '0')))
                i++;
        }
    }
    char tmp[128];
    size_t k = 0;
    for (size_t j = base == 10 ? 0 : 2; j < i && k + 1 < sizeof(tmp); j++)
        if (p[j] != '_')
            tmp[k++] = p[j];
    tmp[k] = '\0';
    if (i >= sizeof(tmp))
        return lex_fail(L, "number literal too long");
    struct jt *t = lex_push(L, is_float ? JT_FLOAT : JT_INT);
    if (!t)
        return AS_ENOMEM;
    if (is_float) {
        t->f = strtod(tmp, NULL);
    } else {
        int64_t v = 0;
        for (size_t j = 0; j < k; j++) {
            int d = is_digit(tmp[j]) ? tmp[j] - '0' : (tmp[j] | 0x20) - 'a' + 10;
            if (v > (INT64_MAX - d) / base)
                return lex_fail(L, "integer literal too large (64-bit limit)");
            v = v * base + d;
        }
        t->i = v;
    }
    L->pos += i;
    return 0;
}

static int lex_op(struct lexer *L)
{
    const char *p = L->src + L->pos;
    size_t n = L->len - L->pos;
    static const struct {
        char s[3];
        uint8_t op;
    } two[] = {{"//", JOP_FLOORDIV}, {"**", JOP_POW}, {"==", JOP_EQ},
               {"!=", JOP_NE},       {"<=", JOP_LE},  {">=", JOP_GE}};
    for (size_t i = 0; i < sizeof(two) / sizeof(two[0]); i++) {
        if (n >= 2 && p[0] == two[i].s[0] && p[1] == two[i].s[1]) {
            struct jt *t = lex_push(L, JT_OP);
            if (!t)
                return AS_ENOMEM;
            t->op = two[i].op;
            L->pos += 2;
            return 0;
        }
    }
    if (!strchr("+-/*%~[](){}<>=.:|,;", p[0]) || p[0] == '\0') {
        char msg[64];
        snprintf(msg, sizeof(msg), "unexpected char '%c'", p[0] >= 0x20 ? p[0] : '?');
        return lex_fail(L, msg);
    }
    struct jt *t = lex_push(L, JT_OP);
    if (!t)
        return AS_ENOMEM;
    t->op = (uint8_t)p[0];
    L->pos++;
    return 0;
}

static int starts(const struct lexer *L, size_t pos, const char *s)
{
    size_t n = strlen(s);
    return L->len - pos >= n && memcmp(L->src + pos, s, n) == 0;
}

/*
 * Lexes the inside of a `{{ }}` (block=0) or `{% %}` (block=1) tag up to and
 * including its end, which is recognised only outside brackets.
 * Sets *nl_end when the consumed end text ends with a newline.
 */
static int lex_tag(struct lexer *L, int block, int *nl_end)
{
    char stack[JJ_MAX_NEST];
    int depth = 0;
    for (;;) {
        if (L->pos >= L->len)
            return lex_fail(L, block ? "unexpected end of template, expected '%}'"
                                     : "unexpected end of template, expected '}}'");
        const char *end = block ? "%}" : "}}";
        if (depth == 0) {
            if (block && starts(L, L->pos, "+%}")) {
                L->pos += 3;
                *nl_end = 0;
                break;
            }
            if (starts(L, L->pos, block ? "-%}" : "-}}")) {
                L->pos += 3;
                size_t s = skip_space(L->src + L->pos, L->len - L->pos);
                *nl_end = s > 0 && L->src[L->pos + s - 1] == '\n';
                L->line += count_nl(L->src + L->pos, s);
                L->pos += s;
                break;
            }
            if (starts(L, L->pos, end)) {
                L->pos += 2;
                *nl_end = 0;
                if (block && L->pos < L->len && L->src[L->pos] == '\n') {
                    L->pos++;
                    L->line++;
                    *nl_end = 1;
                }
                break;
            }
        }
        char c = L->src[L->pos];
        size_t sp = skip_space(L->src + L->pos, L->len - L->pos);
        if (sp) {
            L->line += count_nl(L->src + L->pos, sp);
            L->pos += sp;
            continue;
        }
        int rc;
        if (is_digit(c)) {
            rc = lex_number(L);
        } else if (is_name_start(c)) {
            size_t i = L->pos + 1;
            while (i < L->len && (is_name_start(L->src[i]) || is_digit(L->src[i])))
                i++;
            struct jt *t = lex_push(L, JT_NAME);
            if (!t)
                return AS_ENOMEM;
            t->p = L->src + L->pos;
            t->len = i - L->pos;
            L->pos = i;
            rc = 0;
        } else if (c == '\'' || c == '"') {
            size_t i = L->pos + 1;
            while (i < L->len && L->src[i] != c)
                i += L->src[i] == '\\' ? 2 : 1;
            if (i >= L->len)
                return lex_fail(L, "unterminated string literal");
            struct jt *t = lex_push(L, JT_STRING);
            if (!t)
                return AS_ENOMEM;
            rc = decode_string(L, L->src + L->pos + 1, i - L->pos - 1, t);
            L->line += count_nl(L->src + L->pos, i - L->pos);
            L->pos = i + 1;
        } else {
            if (c == '(' || c == '[' || c == '{') {
                if (depth >= JJ_MAX_NEST)
                    return lex_fail(L, "brackets nested too deeply");
                stack[depth++] = c == '(' ? ')' : c == '[' ? ']' : '}';
            } else if (c == ')' || c == ']' || c == '}') {
                if (depth == 0)
                    return lex_fail(L, "unexpected closing bracket");
                if (stack[depth - 1] != c)
                    return lex_fail(L, "mismatched closing bracket");
                depth--;
            }
            rc = lex_op(L);
        }
        if (rc)
            return rc;
    }
    struct jt *t = lex_push(L, block ? JT_BLOCK_END : JT_VAR_END);
    return t ? 0 : AS_ENOMEM;
}

/* Matches `\s*raw\s*(-%}\s*|%})` (name = "raw") or the endraw tail at pos. */
static size_t match_raw_tag(const struct lexer *L, size_t pos, const char *name, int trim_nl)
{
    size_t p = pos + skip_space(L->src + pos, L->len - pos);
    size_t nl = strlen(name);
    if (!starts(L, p, name))
        return 0;
    p += nl;
    if (p < L->len && (is_name_start(L->src[p]) || is_digit(L->src[p])))
        return 0;
    p += skip_space(L->src + p, L->len - p);
    if (trim_nl && starts(L, p, "+%}"))
        return p + 3 - pos;
    if (starts(L, p, "-%}")) {
        p += 3;
        return p + skip_space(L->src + p, L->len - p) - pos;
    }
    if (starts(L, p, "%}")) {
        p += 2;
        if (trim_nl && p < L->len && L->src[p] == '\n')
            p++;
        return p - pos;
    }
    return 0;
}

int jj_lex(struct jj_arena *a, const char *src, size_t len, struct jt **toks, size_t *ntoks,
           struct jinja_error *err)
{
    struct lexer L = {.a = a, .src = src, .len = len, .line = 1, .err = err};
    int rc = 0, line_starting = 1;
    while (L.pos < L.len) {
        size_t tag = L.pos;
        char kind = 0;
        for (; tag + 1 < L.len; tag++) {
            if (src[tag] == '{' &&
                (src[tag + 1] == '{' || src[tag + 1] == '%' || src[tag + 1] == '#')) {
                kind = src[tag + 1];
                break;
            }
        }
        if (!kind) {
            rc = emit_data(&L, src + L.pos, L.len - L.pos, 0, 0, 0);
            if (rc)
                goto out;
            L.pos = L.len;
            break;
        }
        char sign =
            tag + 2 < L.len && (src[tag + 2] == '-' || src[tag + 2] == '+') ? src[tag + 2] : 0;
        size_t body = tag + 2 + (sign ? 1 : 0);
        size_t raw = kind == '%' ? match_raw_tag(&L, body, "raw", 0) : 0;
        rc = emit_data(&L, src + L.pos, tag - L.pos, sign, kind != '{', line_starting);
        if (rc)
            goto out;
        if (raw) {
            /* raw content runs to the first {%[-+]? endraw ... %} */
            size_t p = body + raw, q;
            int found = 0;
            L.line += count_nl(src + tag, p - tag);
            for (q = p; q + 1 < L.len; q++) {
                if (src[q] != '{' || src[q + 1] != '%')
                    continue;
                char s2 =
                    q + 2 < L.len && (src[q + 2] == '-' || src[q + 2] == '+') ? src[q + 2] : 0;
                size_t m = match_raw_tag(&L, q + 2 + (s2 ? 1 : 0), "endraw", 1);
                if (!m)
                    continue;
                int ls = p > 0 && src[p - 1] == '\n';
                rc = emit_data(&L, src + p, q - p, s2, 1, ls);
                if (rc)
                    goto out;
                size_t e = q + 2 + (s2 ? 1 : 0) + m;
                L.line += count_nl(src + q, e - q);
                line_starting = src[e - 1] == '\n';
                L.pos = e;
                found = 1;
                break;
            }
            if (!found) {
                rc = lex_fail(&L, "missing end of raw directive");
                goto out;
            }
            continue;
        }
        if (kind == '#') {
            size_t q;
            for (q = body; q + 1 < L.len; q++)
                if (src[q] == '#' && src[q + 1] == '}')
                    break;
            if (q + 1 >= L.len) {
                rc = lex_fail(&L, "missing end of comment tag");
                goto out;
            }
            size_t e = q + 2;
            if (q > body && src[q - 1] == '-')
                e += skip_space(src + e, L.len - e);
            else if (!(q > body && src[q - 1] == '+') && e < L.len && src[e] == '\n')
                e++;
            L.line += count_nl(src + tag, e - tag);
            line_starting = src[e - 1] == '\n';
            L.pos = e;
            continue;
        }
        struct jt *t = lex_push(&L, kind == '%' ? JT_BLOCK_BEGIN : JT_VAR_BEGIN);
        if (!t) {
            rc = AS_ENOMEM;
            goto out;
        }
        L.pos = body;
        rc = lex_tag(&L, kind == '%', &line_starting);
        if (rc)
            goto out;
    }
    if (!lex_push(&L, JT_EOF)) {
        rc = AS_ENOMEM;
        goto out;
    }
    *toks = jj_alloc(a, L.n * sizeof(struct jt));
    if (!*toks) {
        rc = AS_ENOMEM;
        goto out;
    }
    memcpy(*toks, L.toks, L.n * sizeof(struct jt));
    *ntoks = L.n;
out:
    if (rc == AS_ENOMEM && err) {
        err->line = L.line;
        snprintf(err->msg, sizeof(err->msg), "out of memory while lexing template");
    }
    free(L.toks);
    return rc;
}
