/*
 * tok_decode.c - ids back to bytes: single pieces, whole sequences and the
 * streaming detokenizer that holds back incomplete UTF-8 characters.
 *
 * SentencePiece pieces turn "▁" back into spaces and byte tokens into their
 * byte; byte-level BPE pieces map GPT-2's alphabet back to bytes. Control
 * tokens are dropped unless asked for. Not for: chat template rendering.
 */
#include <ctype.h>
#include <string.h>

#include "core/err.h"
#include "engine/tok_internal.h"
#include "engine/tok_unicode.h"

static int parse_byte_token(struct str s)
{
    static const char hex[] = "0123456789ABCDEF";
    if (s.len != 6 || memcmp(s.p, "<0x", 3) || s.p[5] != '>')
        return -1;
    const char *a = strchr(hex, toupper((unsigned char)s.p[3]));
    const char *b = strchr(hex, toupper((unsigned char)s.p[4]));
    if (!a || !b || !*a || !*b)
        return -1;
    return (int)((a - hex) * 16 + (b - hex));
}

static int is_special_type(uint8_t ty)
{
    return ty == TOK_TT_CONTROL || ty == TOK_TT_USER_DEFINED || ty == TOK_TT_UNKNOWN;
}

/* Appends a token's text; *strip asks to drop one leading space (SPM prefix). */
static int piece(const struct tokenizer *t, int32_t id, unsigned flags, int strip, struct buf *out)
{
    if (!tok__valid_id(t, id))
        return AS_EINVAL;
    uint8_t ty = t->type[id];
    struct str s = t->text[id];
    if ((ty == TOK_TT_CONTROL || ty == TOK_TT_UNKNOWN) && !(flags & TOK_DECODE_SPECIAL))
        return 0;
    if (is_special_type(ty))
        return buf_append(out, s.p, s.len);
    if (ty == TOK_TT_BYTE) {
        int b = parse_byte_token(s);
        char c = (char)b;
        return b < 0 ? 0 : buf_append(out, &c, 1);
    }
    if (t->model == TOK_MODEL_SPM) {
        if (ty != TOK_TT_NORMAL)
            return 0;
        size_t i = 0;
        if (strip && s.len >= 3 && !memcmp(s.p, "\xE2\x96\x81", 3))
            i = 3;
        while (i < s.len) {
            const char *m = s.len - i >= 3 ? memmem(s.p + i, s.len - i, "\xE2\x96\x81", 3) : NULL;
            size_t run = m ? (size_t)(m - (s.p + i)) : s.len - i;
            int rc = buf_append(out, s.p + i, run);
            if (rc)
                return rc;
            i += run;
            if (m) {
                if ((rc = buf_append_char(out, ' ')))
                    return rc;
                i += 3;
            }
        }
        return 0;
    }
    if (ty != TOK_TT_NORMAL)
        return 0;
    const uint8_t *p = (const uint8_t *)s.p;
    size_t i = 0;
    while (i < s.len) {
        uint32_t cp;
        size_t n = tok_utf8_decode(p + i, s.len - i, &cp);
        int b = n > 1 || cp < 0x80 ? tok__cpt_to_byte(cp) : -1;
        int rc;
        if (b >= 0) {
            char c = (char)b;
            rc = buf_append(out, &c, 1);
        } else {
            rc = buf_append(out, p + i, n); /* not of the byte alphabet: keep as is */
        }
        if (rc)
            return rc;
        i += n;
    }
    return 0;
}

int tok_piece(const struct tokenizer *t, int32_t id, unsigned flags, struct buf *out)
{
    return piece(t, id, flags, 0, out);
}

/* Whether the next text piece starts with the space the SPM encoder added. */
static int strip_after(const struct tokenizer *t, unsigned flags, int32_t id, int cur)
{
    if (!(flags & TOK_DECODE_STRIP_SPACE) || t->model != TOK_MODEL_SPM || !t->add_space_prefix)
        return 0;
    if (!tok__valid_id(t, id))
        return cur;
    if (is_special_type(t->type[id]))
        return 1;
    return 0;
}

int tok_decode(const struct tokenizer *t, const int32_t *ids, size_t n, unsigned flags,
               struct buf *out)
{
    int strip =
        (flags & TOK_DECODE_STRIP_SPACE) && t->model == TOK_MODEL_SPM && t->add_space_prefix;
    for (size_t i = 0; i < n; i++) {
        int rc = piece(t, ids[i], flags, strip, out);
        if (rc)
            return rc;
        strip = strip_after(t, flags, ids[i], strip);
    }
    return 0;
}

void tok_stream_init(struct tok_stream *s, const struct tokenizer *t, unsigned flags)
{
    memset(s, 0, sizeof *s);
    s->t = t;
    s->flags = flags;
    s->after_special =
        (flags & TOK_DECODE_STRIP_SPACE) && t->model == TOK_MODEL_SPM && t->add_space_prefix;
}

/* Bytes at the end of p[0..n) that start a UTF-8 character still missing bytes. */
static size_t incomplete_tail(const uint8_t *p, size_t n)
{
    for (size_t k = 1; k <= 3 && k <= n; k++) {
        uint8_t c = p[n - k];
        if ((c & 0xC0) == 0x80)
            continue; /* continuation byte: look further back */
        size_t need = c >= 0xF0 && c <= 0xF7  ? 4
                      : c >= 0xE0 && c < 0xF0 ? 3
                      : c >= 0xC0 && c < 0xE0 ? 2
                                              : 1;
        return need > k ? k : 0;
    }
    return 0;
}

int tok_stream_push(struct tok_stream *s, int32_t id, struct buf *out)
{
    size_t start = out->len;
    int rc;
    if (!tok__valid_id(s->t, id))
        return AS_EINVAL;
    if ((rc = buf_append(out, s->pend, s->npend)) ||
        (rc = piece(s->t, id, s->flags, s->after_special, out))) {
        out->len = start; /* the held-back bytes stay in s->pend */
        if (out->data)
            out->data[start] = 0;
        return rc;
    }
    s->npend = 0;
    s->after_special = strip_after(s->t, s->flags, id, s->after_special);
    if (out->len == start)
        return 0;
    size_t tail = incomplete_tail((const uint8_t *)out->data + start, out->len - start);
    memcpy(s->pend, out->data + out->len - tail, tail);
    s->npend = tail;
    out->len -= tail;
    out->data[out->len] = 0;
    return 0;
}

int tok_stream_flush(struct tok_stream *s, struct buf *out)
{
    int rc = buf_append(out, s->pend, s->npend);
    s->npend = 0;
    return rc;
}
