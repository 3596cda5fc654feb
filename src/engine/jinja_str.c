/*
 * jinja_str.c - the str and dict methods of the Jinja interpreter (strip,
 * split, replace, format, startswith, items, get, ...), Python's Unicode case
 * mapping for the scripts chat templates meet (Latin, Greek, Cyrillic), and
 * the argument helpers the filters share. Behaviour follows CPython 3.11.
 * Not for: filters (jinja_filters.c), globals (jinja_globals.c).
 */
#include "engine/jinja_internal.h"

#include "core/err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    /* str methods */
    M_STRIP = 1,
    M_LSTRIP,
    M_RSTRIP,
    M_SPLIT,
    M_RSPLIT,
    M_STARTSWITH,
    M_ENDSWITH,
    M_UPPER,
    M_LOWER,
    M_TITLE,
    M_CAPITALIZE,
    M_REPLACE,
    M_FIND,
    M_RFIND,
    M_COUNT,
    M_JOIN,
    M_FORMAT,
    M_SPLITLINES,
    M_ISDIGIT,
    M_ISALPHA,
    M_ISSPACE,
    M_ISUPPER,
    M_ISLOWER,
    /* dict methods */
    M_ITEMS,
    M_KEYS,
    M_VALUES,
    M_GET,
};

int jj__str_eq(struct str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.p, lit, n) == 0;
}

/* Positional argument i or keyword `name`; 1 when given. */
int jj__arg(const struct jj_callargs *a, size_t i, const char *name, struct jv *out)
{
    if (i < a->npos) {
        *out = a->pos[i];
        return 1;
    }
    for (size_t k = 0; name && k < a->nkw; k++)
        if (jj__str_eq(a->kwnames[k], name)) {
            *out = a->kw[k];
            return 1;
        }
    return 0;
}

int jj__want_str(struct jj_ctx *c, struct jv v, const char *what)
{
    if (v.kind == JV_STR)
        return 0;
    return jj_fail(c, AS_EINVAL, "%s must be a string, not %s", what, jv_type_name(v));
}

int jj__want_int(struct jj_ctx *c, struct jv v, const char *what, int64_t *out)
{
    if (v.kind == JV_INT || v.kind == JV_BOOL) {
        *out = v.u.i;
        return 0;
    }
    return jj_fail(c, AS_EINVAL, "%s must be an integer, not %s", what, jv_type_name(v));
}

int jj__str_from_buf(struct jj_ctx *c, struct buf *b, int rc, struct jv *out)
{
    if (rc == AS_ENOMEM)
        rc = jj_fail(c, AS_ERANGE, "string too long");
    if (!rc)
        rc = jv_from_buf(c, b, out);
    buf_free(b);
    return rc;
}

const char *const jj__no_kw[1] = {0};

int jj__check_args(struct jj_ctx *c, const char *kind, struct str name, const struct jj_callargs *a,
                   int max_pos, const char *const *kw, int nkw)
{
    if (max_pos >= 0 && a->npos > (size_t)max_pos)
        return jj_fail(c, AS_EINVAL, "%s '%.*s' takes at most %d argument(s), %zu given", kind,
                       (int)(name.len > 40 ? 40 : name.len), name.p, max_pos, a->npos);
    for (size_t k = 0; k < a->nkw; k++) {
        int ok = 0;
        for (int j = 0; j < nkw && kw[j] && !ok; j++)
            ok = a->kwnames[k].len == strlen(kw[j]) &&
                 memcmp(a->kwnames[k].p, kw[j], a->kwnames[k].len) == 0;
        if (!ok)
            return jj_fail(c, AS_EINVAL, "%s '%.*s' got an unexpected keyword argument '%.*s'",
                           kind, (int)(name.len > 40 ? 40 : name.len), name.p,
                           (int)(a->kwnames[k].len > 40 ? 40 : a->kwnames[k].len), a->kwnames[k].p);
    }
    return 0;
}

int jj__undef_fail(struct jj_ctx *c, struct jv u)
{
    if (u.u.s.p && u.u.s.len)
        return jj_fail(c, AS_EINVAL, "'%.*s' is undefined", (int)(u.u.s.len > 60 ? 60 : u.u.s.len),
                       u.u.s.p);
    return jj_fail(c, AS_EINVAL, "undefined value used");
}

/* ---- string helpers ----------------------------------------------------------- */

/*
 * Simple case mapping of one code point, as Python's str.upper()/lower() do
 * for Latin-1, Latin Extended-A, Greek and Cyrillic (other scripts are left
 * alone). Writes up to 2 code points (ß -> SS) and returns how many.
 */
static int cp_case(uint32_t cp, int upper, uint32_t *o)
{
    o[0] = cp;
    if (cp < 0x80) {
        if (upper && cp >= 'a' && cp <= 'z')
            o[0] = cp - 32;
        else if (!upper && cp >= 'A' && cp <= 'Z')
            o[0] = cp + 32;
        return 1;
    }
    if (upper) {
        if (cp == 0xdf) {
            o[0] = o[1] = 'S';
            return 2;
        }
        if (cp == 0xb5)
            o[0] = 0x39c;
        else if (cp == 0xff)
            o[0] = 0x178;
        else if (cp >= 0xe0 && cp <= 0xfe && cp != 0xf7)
            o[0] = cp - 32;
        else if (cp == 0x131)
            o[0] = 'I';
        else if (cp == 0x17f)
            o[0] = 'S';
        else if (((cp >= 0x100 && cp <= 0x12f) || (cp >= 0x132 && cp <= 0x137) ||
                  (cp >= 0x14a && cp <= 0x177)) &&
                 (cp & 1))
            o[0] = cp - 1;
        else if (((cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17e)) && !(cp & 1))
            o[0] = cp - 1;
        else if (cp >= 0x3b1 && cp <= 0x3c9)
            o[0] = cp == 0x3c2 ? 0x3a3 : cp - 32;
        else if (cp == 0x3ac)
            o[0] = 0x386;
        else if (cp >= 0x3ad && cp <= 0x3af)
            o[0] = cp - 37;
        else if (cp == 0x3cc)
            o[0] = 0x38c;
        else if (cp == 0x3cd || cp == 0x3ce)
            o[0] = cp - 63;
        else if (cp >= 0x430 && cp <= 0x44f)
            o[0] = cp - 32;
        else if (cp >= 0x450 && cp <= 0x45f)
            o[0] = cp - 80;
        return 1;
    }
    if (cp >= 0xc0 && cp <= 0xde && cp != 0xd7)
        o[0] = cp + 32;
    else if (cp == 0x178)
        o[0] = 0xff;
    else if (cp == 0x130) {
        o[0] = 'i';
        o[1] = 0x307;
        return 2;
    } else if (((cp >= 0x100 && cp <= 0x12f) || (cp >= 0x132 && cp <= 0x137) ||
                (cp >= 0x14a && cp <= 0x177)) &&
               !(cp & 1))
        o[0] = cp + 1;
    else if (((cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17e)) && (cp & 1))
        o[0] = cp + 1;
    else if (cp >= 0x391 && cp <= 0x3a9 && cp != 0x3a2)
        o[0] = cp + 32;
    else if (cp == 0x386)
        o[0] = 0x3ac;
    else if (cp >= 0x388 && cp <= 0x38a)
        o[0] = cp + 37;
    else if (cp == 0x38c)
        o[0] = 0x3cc;
    else if (cp == 0x38e || cp == 0x38f)
        o[0] = cp + 63;
    else if (cp >= 0x410 && cp <= 0x42f)
        o[0] = cp + 32;
    else if (cp >= 0x400 && cp <= 0x40f)
        o[0] = cp + 80;
    return 1;
}

/* Whether Python considers the code point cased (a letter with case) in our ranges. */
static int cp_cased(uint32_t cp)
{
    uint32_t u[2], l[2];
    if (cp < 0x80)
        return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
    if (cp == 0xaa || cp == 0xba || cp == 0x138 || cp == 0x149 || cp == 0x3c2 || cp == 0xdf)
        return 1;
    cp_case(cp, 1, u);
    cp_case(cp, 0, l);
    return u[0] != cp || l[0] != cp;
}

static int put_cp(struct buf *b, uint32_t cp)
{
    char o[4];
    int n;
    if (cp < 0x80) {
        o[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        o[0] = (char)(0xf0 | (cp >> 18));
        o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    return buf_append(b, o, (size_t)n);
}

/*
 * mode: 'u' str.upper, 'l' str.lower, 't' str.title, 'c' str.capitalize,
 * 'T' jinja's title filter (words start after runs of -, whitespace, ( { [ <).
 */
int jj__case_map(struct jj_ctx *c, struct jv s, int mode, struct jv *out)
{
    struct buf b;
    int rc = 0, prev_cased = 0, word_start = 1, first = 1;
    const char *p = s.u.s.p;
    size_t n = s.u.s.len, i = 0;
    buf_init(&b, c->opts.max_output);
    while (i < n && !rc) {
        size_t adv;
        uint32_t cp = jj_utf8_decode(p + i, n - i, &adv), m[2];
        int up, k, cased = cp_cased(cp);
        switch (mode) {
        case 'u':
            up = 1;
            break;
        case 'l':
            up = 0;
            break;
        case 'c':
            up = first;
            break;
        case 't':
            up = !prev_cased;
            break;
        default: {
            int delim =
                cp == '-' || jj_is_space(cp) || cp == '(' || cp == '{' || cp == '[' || cp == '<';
            up = word_start;
            word_start = delim;
        }
        }
        if (!up && cp == 0x3a3) {
            /* Final_Sigma: a capital sigma after a cased letter and not before one */
            size_t j = i + adv, adv2;
            int next_cased = j < n && cp_cased(jj_utf8_decode(p + j, n - j, &adv2));
            m[0] = prev_cased && !next_cased ? 0x3c2 : 0x3c3;
            k = 1;
        } else {
            k = cp_case(cp, up, m);
            if (k == 2 && up && mode != 'u' && cp == 0xdf)
                m[1] = 's'; /* titlecase of ß is Ss */
        }
        for (int q = 0; q < k && !rc; q++)
            rc = put_cp(&b, m[q]);
        prev_cased = cased;
        first = 0;
        i += adv;
    }
    return jj__str_from_buf(c, &b, rc, out);
}

static int in_chars(uint32_t cp, struct jv chars)
{
    size_t i = 0;
    while (i < chars.u.s.len) {
        size_t adv;
        if (jj_utf8_decode(chars.u.s.p + i, chars.u.s.len - i, &adv) == cp)
            return 1;
        i += adv;
    }
    return 0;
}

/* str.strip/lstrip/rstrip: chars NONE/UNDEF = whitespace. which: 'b', 'l', 'r'. */
int jj__strip(struct jj_ctx *c, struct jv s, struct jv chars, int which, struct jv *out)
{
    int ws = chars.kind == JV_NONE || chars.kind == JV_UNDEF;
    if (!ws && chars.kind != JV_STR)
        return jj_fail(c, AS_EINVAL, "strip arg must be None or str");
    const char *p = s.u.s.p;
    size_t n = s.u.s.len, b = 0, e = n, i = 0;
    if (which != 'r') {
        while (i < n) {
            size_t adv;
            uint32_t cp = jj_utf8_decode(p + i, n - i, &adv);
            if (ws ? !jj_is_space(cp) : !in_chars(cp, chars))
                break;
            i += adv;
        }
        b = i;
    }
    if (which != 'l') {
        size_t keep = b;
        i = b;
        while (i < n) {
            size_t adv;
            uint32_t cp = jj_utf8_decode(p + i, n - i, &adv);
            i += adv;
            if (ws ? !jj_is_space(cp) : !in_chars(cp, chars))
                keep = i;
        }
        e = keep;
    }
    *out = jv_str(p + b, e - b);
    return 0;
}

static int do_split(struct jj_ctx *c, struct jv s, struct jv sep, int64_t maxsplit, int right,
                    struct jv *out)
{
    const char *p = s.u.s.p;
    size_t len = s.u.s.len;
    int ws = sep.kind == JV_NONE || sep.kind == JV_UNDEF;
    if (!ws && (sep.kind != JV_STR || sep.u.s.len == 0))
        return jj_fail(c, AS_EINVAL, "split separator must be a non-empty string or None");
    if (maxsplit < 0)
        maxsplit = INT64_MAX;
    /* collect [start, end) pieces left to right; rsplit with a limit splits from the right */
    struct {
        size_t b, e;
    } *pieces = jj_alloc(&c->arena, (len + 2) * sizeof(*pieces));
    size_t np = 0;
    if (!pieces)
        return JJ_OOM(c);
    if (!right || maxsplit == INT64_MAX) {
        size_t i = 0;
        int64_t splits = 0;
        if (ws) {
            for (;;) {
                while (i < len && jj_is_space((unsigned char)p[i]))
                    i++;
                if (i >= len)
                    break;
                if (splits == maxsplit) {
                    size_t e = len;
                    while (e > i && jj_is_space((unsigned char)p[e - 1]))
                        e--;
                    pieces[np].b = i, pieces[np].e = e, np++;
                    break;
                }
                size_t b = i;
                while (i < len && !jj_is_space((unsigned char)p[i]))
                    i++;
                pieces[np].b = b, pieces[np].e = i, np++;
                splits++;
            }
        } else {
            size_t b = 0;
            while (splits < maxsplit) {
                const char *hit = memmem(p + i, len - i, sep.u.s.p, sep.u.s.len);
                if (!hit)
                    break;
                size_t at = (size_t)(hit - p);
                pieces[np].b = b, pieces[np].e = at, np++;
                i = b = at + sep.u.s.len;
                splits++;
            }
            pieces[np].b = b, pieces[np].e = len, np++;
        }
    } else {
        /* rsplit with maxsplit: scan from the right */
        size_t e = len, i = len;
        int64_t splits = 0;
        size_t rev_n = 0;
        if (ws) {
            for (;;) {
                while (i > 0 && jj_is_space((unsigned char)p[i - 1]))
                    i--;
                if (i == 0)
                    break;
                if (splits == maxsplit) {
                    size_t b = 0;
                    while (b < i && jj_is_space((unsigned char)p[b]))
                        b++;
                    pieces[rev_n].b = b, pieces[rev_n].e = i, rev_n++;
                    break;
                }
                e = i;
                while (i > 0 && !jj_is_space((unsigned char)p[i - 1]))
                    i--;
                pieces[rev_n].b = i, pieces[rev_n].e = e, rev_n++;
                splits++;
            }
        } else {
            while (splits < maxsplit && i >= sep.u.s.len) {
                size_t at = SIZE_MAX;
                for (size_t k = i - sep.u.s.len + 1; k-- > 0;)
                    if (memcmp(p + k, sep.u.s.p, sep.u.s.len) == 0) {
                        at = k;
                        break;
                    }
                if (at == SIZE_MAX)
                    break;
                pieces[rev_n].b = at + sep.u.s.len, pieces[rev_n].e = e, rev_n++;
                e = i = at;
                splits++;
            }
            pieces[rev_n].b = 0, pieces[rev_n].e = e, rev_n++;
        }
        for (size_t k = 0; k < rev_n / 2; k++) {
            size_t b = pieces[k].b, ee = pieces[k].e;
            pieces[k] = pieces[rev_n - 1 - k];
            pieces[rev_n - 1 - k].b = b, pieces[rev_n - 1 - k].e = ee;
        }
        np = rev_n;
    }
    if (jj_charge(c, np))
        return AS_ERANGE;
    struct jv_list *l = jv_list_new(c, np);
    if (!l)
        return JJ_OOM(c);
    for (size_t k = 0; k < np; k++)
        l->items[k] = jv_str(p + pieces[k].b, pieces[k].e - pieces[k].b);
    *out = jv_list(l, 0);
    return 0;
}

int jj__replace(struct jj_ctx *c, struct jv s, struct jv old, struct jv nw, int64_t count,
                struct jv *out)
{
    struct buf b;
    int rc = 0;
    if (old.kind != JV_STR || nw.kind != JV_STR)
        return jj_fail(c, AS_EINVAL, "replace() arguments must be strings");
    if (count < 0)
        count = INT64_MAX;
    buf_init(&b, c->opts.max_output);
    const char *p = s.u.s.p;
    size_t n = s.u.s.len, i = 0;
    if (old.u.s.len == 0) {
        /* Python inserts `new` before every character and at the end */
        int64_t done = 0;
        while (!rc) {
            if (done < count) {
                rc = buf_append(&b, nw.u.s.p, nw.u.s.len);
                done++;
            }
            if (i >= n)
                break;
            size_t adv;
            jj_utf8_decode(p + i, n - i, &adv);
            if (!rc)
                rc = buf_append(&b, p + i, adv);
            i += adv;
        }
        return jj__str_from_buf(c, &b, rc, out);
    }
    for (int64_t done = 0; done < count && !rc; done++) {
        const char *hit = memmem(p + i, n - i, old.u.s.p, old.u.s.len);
        if (!hit)
            break;
        size_t at = (size_t)(hit - p);
        rc = buf_append(&b, p + i, at - i);
        if (!rc)
            rc = buf_append(&b, nw.u.s.p, nw.u.s.len);
        i = at + old.u.s.len;
    }
    if (!rc)
        rc = buf_append(&b, p + i, n - i);
    if (!rc && jj_charge(c, b.len / 64))
        rc = AS_ERANGE;
    return jj__str_from_buf(c, &b, rc, out);
}

static int affix_match(struct jv s, struct jv a, int end)
{
    if (a.u.s.len > s.u.s.len)
        return 0;
    const char *p = end ? s.u.s.p + s.u.s.len - a.u.s.len : s.u.s.p;
    return memcmp(p, a.u.s.p, a.u.s.len) == 0;
}

static int do_affix(struct jj_ctx *c, struct jv s, struct jv a, int end, struct jv *out)
{
    if (a.kind == JV_STR) {
        *out = jv_bool(affix_match(s, a, end));
        return 0;
    }
    if (a.kind == JV_LIST && a.tuple) {
        for (size_t i = 0; i < a.u.l->len; i++) {
            if (a.u.l->items[i].kind != JV_STR)
                return jj_fail(c, AS_EINVAL, "tuple for startswith/endswith must hold str");
            if (affix_match(s, a.u.l->items[i], end)) {
                *out = jv_bool(1);
                return 0;
            }
        }
        *out = jv_bool(0);
        return 0;
    }
    return jj_fail(c, AS_EINVAL, "startswith/endswith first arg must be str or a tuple of str");
}

/* Python str.format for {} {0} {name} {{ }} with an optional !s / !r and no format spec. */
static int do_str_format(struct jj_ctx *c, struct jv fmt, struct jj_callargs *a, struct jv *out)
{
    struct buf b;
    int rc = 0;
    size_t auto_i = 0;
    const char *p = fmt.u.s.p;
    size_t n = fmt.u.s.len;
    buf_init(&b, c->opts.max_output);
    for (size_t i = 0; i < n && !rc; i++) {
        if (p[i] == '}' && i + 1 < n && p[i + 1] == '}') {
            rc = buf_append_char(&b, '}');
            i++;
            continue;
        }
        if (p[i] != '{') {
            rc = buf_append_char(&b, p[i]);
            continue;
        }
        if (i + 1 < n && p[i + 1] == '{') {
            rc = buf_append_char(&b, '{');
            i++;
            continue;
        }
        size_t j = i + 1;
        while (j < n && p[j] != '}' && p[j] != '!' && p[j] != ':')
            j++;
        struct str field = {p + i + 1, j - i - 1};
        char conv = 's';
        if (j + 1 < n && p[j] == '!') {
            conv = p[j + 1];
            j += 2;
        }
        if (j >= n || p[j] != '}') {
            rc = jj_fail(c, AS_EINVAL, "str.format: unsupported or malformed replacement field");
            break;
        }
        struct jv v;
        int found = 0;
        if (field.len == 0) {
            found = jj__arg(a, auto_i++, NULL, &v);
        } else if (field.p[0] >= '0' && field.p[0] <= '9') {
            size_t idx = 0;
            for (size_t k = 0; k < field.len && idx < 1000; k++)
                idx = idx * 10 + (size_t)(field.p[k] - '0');
            found = jj__arg(a, idx, NULL, &v);
        } else {
            for (size_t k = 0; k < a->nkw; k++)
                if (a->kwnames[k].len == field.len &&
                    memcmp(a->kwnames[k].p, field.p, field.len) == 0) {
                    v = a->kw[k];
                    found = 1;
                }
        }
        if (!found) {
            rc = jj_fail(c, AS_EINVAL, "str.format: missing argument for '{%.*s}'",
                         (int)(field.len > 40 ? 40 : field.len), field.p);
            break;
        }
        rc = conv == 'r' ? jv_write_repr(c, &b, v) : jv_write_str(c, &b, v);
        i = j;
    }
    return jj__str_from_buf(c, &b, rc, out);
}

/* ---- methods ------------------------------------------------------------------ */

int jj_method(struct jj_ctx *c, struct jv self, struct str name, struct jv *out)
{
    static const struct {
        const char *name;
        int id;
    } str_m[] =
        {{"strip", M_STRIP},       {"lstrip", M_LSTRIP},         {"rstrip", M_RSTRIP},
         {"split", M_SPLIT},       {"rsplit", M_RSPLIT},         {"startswith", M_STARTSWITH},
         {"endswith", M_ENDSWITH}, {"upper", M_UPPER},           {"lower", M_LOWER},
         {"title", M_TITLE},       {"capitalize", M_CAPITALIZE}, {"replace", M_REPLACE},
         {"find", M_FIND},         {"rfind", M_RFIND},           {"count", M_COUNT},
         {"join", M_JOIN},         {"format", M_FORMAT},         {"splitlines", M_SPLITLINES},
         {"isdigit", M_ISDIGIT},   {"isalpha", M_ISALPHA},       {"isspace", M_ISSPACE},
         {"isupper", M_ISUPPER},   {"islower", M_ISLOWER}},
      dict_m[] = {{"items", M_ITEMS}, {"keys", M_KEYS}, {"values", M_VALUES}, {"get", M_GET}};
    int id = 0;
    if (self.kind == JV_STR) {
        for (size_t i = 0; i < sizeof(str_m) / sizeof(str_m[0]) && !id; i++)
            if (jj__str_eq(name, str_m[i].name))
                id = str_m[i].id;
    } else if (self.kind == JV_DICT) {
        for (size_t i = 0; i < sizeof(dict_m) / sizeof(dict_m[0]) && !id; i++)
            if (jj__str_eq(name, dict_m[i].name))
                id = dict_m[i].id;
    }
    if (!id)
        return 0;
    struct jv_func *fn = jj_alloc(&c->arena, sizeof(*fn));
    if (!fn)
        return 0;
    fn->kind = JF_METHOD;
    fn->id = id;
    fn->self = self;
    out->kind = JV_FUNC;
    out->u.fn = fn;
    return 1;
}

int jj__dict_pairs(struct jj_ctx *c, struct jv_dict *d, struct jv *out)
{
    struct jv_list *l = jv_list_new(c, d->len);
    if (!l)
        return JJ_OOM(c);
    for (size_t i = 0; i < d->len; i++) {
        struct jv_list *p = jv_list_new(c, 2);
        if (!p)
            return JJ_OOM(c);
        p->items[0] = d->keys[i];
        p->items[1] = d->vals[i];
        l->items[i] = jv_list(p, 1);
    }
    *out = jv_list(l, 0);
    return 0;
}

static int is_ascii_class(struct jv s, int (*pred)(int))
{
    if (s.u.s.len == 0)
        return 0;
    for (size_t i = 0; i < s.u.s.len; i++)
        if (!pred((unsigned char)s.u.s.p[i]))
            return 0;
    return 1;
}

static int p_digit(int ch)
{
    return ch >= '0' && ch <= '9';
}
static int p_alpha(int ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

int jj__call_method(struct jj_ctx *c, const struct jv_func *fn, struct jj_callargs *a,
                    struct jv *out)
{
    struct jv s = fn->self, x, y, z;
    int64_t n = -1;
    static const char *const split_kw[] = {"sep", "maxsplit"};
    static const struct str mname = {"method", 6};
    int max_pos = 0, rc, is_split = fn->id == M_SPLIT || fn->id == M_RSPLIT;
    switch (fn->id) {
    case M_STRIP:
    case M_LSTRIP:
    case M_RSTRIP:
    case M_STARTSWITH:
    case M_ENDSWITH:
    case M_FIND:
    case M_RFIND:
    case M_COUNT:
    case M_JOIN:
        max_pos = 1;
        break;
    case M_SPLIT:
    case M_RSPLIT:
    case M_GET:
        max_pos = 2;
        break;
    case M_REPLACE:
        max_pos = 3;
        break;
    default:
        break;
    }
    if (fn->id != M_FORMAT &&
        (rc = jj__check_args(c, "str/dict", mname, a, max_pos, is_split ? split_kw : jj__no_kw,
                             is_split ? 2 : 0)))
        return rc;
    switch (fn->id) {
    case M_STRIP:
    case M_LSTRIP:
    case M_RSTRIP:
        if (!jj__arg(a, 0, "chars", &x))
            x = jv_none();
        return jj__strip(c, s, x, fn->id == M_STRIP ? 'b' : fn->id == M_LSTRIP ? 'l' : 'r', out);
    case M_SPLIT:
    case M_RSPLIT:
        if (!jj__arg(a, 0, "sep", &x))
            x = jv_none();
        if (jj__arg(a, 1, "maxsplit", &y) && jj__want_int(c, y, "maxsplit", &n))
            return AS_EINVAL;
        return do_split(c, s, x, n, fn->id == M_RSPLIT, out);
    case M_STARTSWITH:
    case M_ENDSWITH:
        if (!jj__arg(a, 0, NULL, &x))
            return jj_fail(c, AS_EINVAL, "startswith/endswith takes one argument");
        return do_affix(c, s, x, fn->id == M_ENDSWITH, out);
    case M_UPPER:
        return jj__case_map(c, s, 'u', out);
    case M_LOWER:
        return jj__case_map(c, s, 'l', out);
    case M_TITLE:
        return jj__case_map(c, s, 't', out);
    case M_CAPITALIZE:
        return jj__case_map(c, s, 'c', out);
    case M_REPLACE:
        if (!jj__arg(a, 0, NULL, &x) || !jj__arg(a, 1, NULL, &y))
            return jj_fail(c, AS_EINVAL, "replace() takes at least 2 arguments");
        if (jj__arg(a, 2, "count", &z) && jj__want_int(c, z, "count", &n))
            return AS_EINVAL;
        return jj__replace(c, s, x, y, n, out);
    case M_FIND:
    case M_RFIND:
    case M_COUNT: {
        if (!jj__arg(a, 0, NULL, &x) || jj__want_str(c, x, "substring"))
            return jj_fail(c, AS_EINVAL, "find/count needs a string argument");
        if (fn->id == M_COUNT) {
            int64_t k = 0;
            if (x.u.s.len == 0) {
                *out = jv_int((int64_t)jj_utf8_len(s.u.s.p, s.u.s.len) + 1);
                return 0;
            }
            for (size_t i = 0; i + x.u.s.len <= s.u.s.len;) {
                const char *h = memmem(s.u.s.p + i, s.u.s.len - i, x.u.s.p, x.u.s.len);
                if (!h)
                    break;
                k++;
                i = (size_t)(h - s.u.s.p) + x.u.s.len;
            }
            *out = jv_int(k);
            return 0;
        }
        const char *hit = NULL;
        if (fn->id == M_FIND) {
            hit = memmem(s.u.s.p, s.u.s.len, x.u.s.p, x.u.s.len);
        } else if (x.u.s.len <= s.u.s.len) {
            for (size_t k = s.u.s.len - x.u.s.len + 1; k-- > 0;)
                if (memcmp(s.u.s.p + k, x.u.s.p, x.u.s.len) == 0) {
                    hit = s.u.s.p + k;
                    break;
                }
        }
        *out = jv_int(hit ? (int64_t)jj_utf8_len(s.u.s.p, (size_t)(hit - s.u.s.p)) : -1);
        return 0;
    }
    case M_JOIN:
        if (!jj__arg(a, 0, NULL, &x))
            return jj_fail(c, AS_EINVAL, "join() takes one argument");
        if (x.kind == JV_LIST)
            for (size_t i = 0; i < x.u.l->len; i++)
                if (x.u.l->items[i].kind != JV_STR)
                    return jj_fail(c, AS_EINVAL,
                                   "sequence item %zu: expected str instance, %s found", i,
                                   jv_type_name(x.u.l->items[i]));
        return jj__join(c, x, s, jv_none(), 0, out);
    case M_FORMAT:
        return do_str_format(c, s, a, out);
    case M_SPLITLINES: {
        struct jv_list *l = jv_list_new(c, s.u.s.len + 1);
        size_t k = 0, b = 0, i = 0;
        if (!l)
            return JJ_OOM(c);
        while (i < s.u.s.len) {
            char ch = s.u.s.p[i];
            if (ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f' ||
                (ch >= 0x1c && ch <= 0x1e)) {
                l->items[k++] = jv_str(s.u.s.p + b, i - b);
                i += (ch == '\r' && i + 1 < s.u.s.len && s.u.s.p[i + 1] == '\n') ? 2 : 1;
                b = i;
            } else {
                i++;
            }
        }
        if (b < s.u.s.len)
            l->items[k++] = jv_str(s.u.s.p + b, s.u.s.len - b);
        l->len = k;
        *out = jv_list(l, 0);
        return 0;
    }
    case M_ISDIGIT:
        *out = jv_bool(is_ascii_class(s, p_digit));
        return 0;
    case M_ISALPHA:
        *out = jv_bool(is_ascii_class(s, p_alpha));
        return 0;
    case M_ISSPACE: {
        size_t i = 0;
        int r = s.u.s.len > 0;
        while (i < s.u.s.len && r) {
            size_t adv;
            r = jj_is_space(jj_utf8_decode(s.u.s.p + i, s.u.s.len - i, &adv));
            i += adv;
        }
        *out = jv_bool(r);
        return 0;
    }
    case M_ISUPPER:
    case M_ISLOWER: {
        int cased = 0, ok = 1;
        for (size_t i = 0; i < s.u.s.len; i++) {
            char ch = s.u.s.p[i];
            if (ch >= 'a' && ch <= 'z') {
                cased = 1;
                ok &= fn->id == M_ISLOWER;
            } else if (ch >= 'A' && ch <= 'Z') {
                cased = 1;
                ok &= fn->id == M_ISUPPER;
            }
        }
        *out = jv_bool(cased && ok);
        return 0;
    }
    case M_ITEMS:
        if ((rc = jj__dict_pairs(c, s.u.d, out)))
            return rc;
        out->seq = JSEQ_ITEMS;
        return 0;
    case M_KEYS:
    case M_VALUES: {
        struct jv_list *l = jv_list_new(c, s.u.d->len);
        if (!l)
            return JJ_OOM(c);
        memcpy(l->items, fn->id == M_KEYS ? s.u.d->keys : s.u.d->vals,
               s.u.d->len * sizeof(struct jv));
        *out = jv_list(l, 0);
        out->seq = fn->id == M_KEYS ? JSEQ_KEYS : JSEQ_VALUES;
        return 0;
    }
    case M_GET: {
        if (!jj__arg(a, 0, NULL, &x))
            return jj_fail(c, AS_EINVAL, "get() takes at least 1 argument");
        struct jv *v = jv_dict_get(s.u.d, x);
        if (v)
            *out = *v;
        else if (!jj__arg(a, 1, NULL, out))
            *out = jv_none();
        return 0;
    }
    }
    return jj_fail(c, AS_EINVAL, "unknown method");
}
