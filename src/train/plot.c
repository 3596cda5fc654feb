/* plot.c - loss curve rendering into an RGB buffer and PNG output (see plot.h). */
#include "train/plot.h"

#include "core/err.h"

#include <math.h>
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define W  900
#define H  540
#define ML 90 /* margins: left, right, top, bottom */
#define MR 30
#define MT 50
#define MB 70

struct canvas {
    uint8_t px[H][W][3];
};

/* 5x7 glyphs, one byte per row, bit 4 = leftmost column. */
struct glyph {
    char c;
    uint8_t rows[7];
};
static const struct glyph font[] = {
    {'0', {14, 17, 19, 21, 25, 17, 14}}, {'1', {4, 12, 4, 4, 4, 4, 14}},
    {'2', {14, 17, 1, 2, 4, 8, 31}},     {'3', {31, 2, 4, 2, 1, 17, 14}},
    {'4', {2, 6, 10, 18, 31, 2, 2}},     {'5', {31, 16, 30, 1, 1, 17, 14}},
    {'6', {6, 8, 16, 30, 17, 17, 14}},   {'7', {31, 1, 2, 4, 8, 8, 8}},
    {'8', {14, 17, 17, 14, 17, 17, 14}}, {'9', {14, 17, 17, 15, 1, 2, 12}},
    {'.', {0, 0, 0, 0, 0, 12, 12}},      {'-', {0, 0, 0, 31, 0, 0, 0}},
    {'+', {0, 4, 4, 31, 4, 4, 0}},       {'e', {0, 0, 14, 17, 31, 16, 14}},
    {'s', {0, 0, 15, 16, 14, 1, 30}},    {'t', {8, 8, 28, 8, 8, 9, 6}},
    {'p', {0, 0, 30, 17, 30, 16, 16}},   {'l', {12, 4, 4, 4, 4, 4, 14}},
    {'o', {0, 0, 14, 17, 17, 17, 14}},   {'v', {0, 0, 17, 17, 17, 10, 4}},
    {'a', {0, 0, 14, 1, 15, 17, 15}},    {'i', {4, 0, 12, 4, 4, 4, 14}},
    {'n', {0, 0, 22, 25, 17, 17, 17}},   {'r', {0, 0, 22, 25, 16, 16, 16}},
};

static void put(struct canvas *c, int x, int y, const uint8_t rgb[3])
{
    if (x >= 0 && x < W && y >= 0 && y < H)
        memcpy(c->px[y][x], rgb, 3);
}

/* Draws text with its top-left corner at (x, y), each font pixel scale x scale. */
static void text(struct canvas *c, int x, int y, const char *s, int scale, const uint8_t rgb[3])
{
    for (; *s; s++, x += 6 * scale) {
        const struct glyph *g = NULL;
        for (size_t i = 0; i < sizeof font / sizeof font[0]; i++)
            if (font[i].c == *s)
                g = &font[i];
        for (int r = 0; g && r < 7; r++)
            for (int col = 0; col < 5; col++)
                if (g->rows[r] & (16 >> col))
                    for (int dy = 0; dy < scale; dy++)
                        for (int dx = 0; dx < scale; dx++)
                            put(c, x + col * scale + dx, y + r * scale + dy, rgb);
    }
}

static int text_width(const char *s, int scale)
{
    return (int)strlen(s) * 6 * scale - scale;
}

/* A 2-pixel-wide line (Bresenham). */
static void line(struct canvas *c, int x0, int y0, int x1, int y1, const uint8_t rgb[3])
{
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int e = dx + dy;
    for (;;) {
        put(c, x0, y0, rgb);
        put(c, x0, y0 + 1, rgb);
        if (x0 == x1 && y0 == y1)
            break;
        int e2 = 2 * e;
        if (e2 >= dy)
            e += dy, x0 += sx;
        if (e2 <= dx)
            e += dx, y0 += sy;
    }
}

/* A "nice" tick step (1, 2 or 5 times a power of ten) for about n ticks over span. */
static double nice_step(double span, int n)
{
    double raw = span / n, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

static int write_png(const char *path, struct canvas *c, char *err, size_t errlen)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    png_structp png = NULL;
    png_infop info = NULL;
    int rc = AS_EIO;
    if (!f)
        goto out;
    png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    info = png ? png_create_info_struct(png) : NULL;
    if (!info)
        goto out;
    if (setjmp(png_jmpbuf(png)))
        goto out;
    png_init_io(png, f);
    png_set_IHDR(png, info, W, H, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < H; y++)
        png_write_row(png, (png_const_bytep)c->px[y]);
    png_write_end(png, NULL);
    rc = 0;
out:
    if (png)
        png_destroy_write_struct(&png, info ? &info : NULL);
    if (f) {
        if (fflush(f) || fsync(fileno(f)))
            rc = AS_EIO;
        if (fclose(f))
            rc = AS_EIO;
    }
    if (rc == 0 && rename(tmp, path) == 0)
        return 0;
    unlink(tmp);
    snprintf(err, errlen, "writing %s failed", path);
    return AS_EIO;
}

int plot_loss_png(const char *path, const float *curve, int n, char *err, size_t errlen)
{
    static const uint8_t black[3] = {30, 30, 30}, grid[3] = {225, 225, 225},
                         blue[3] = {31, 119, 180}, orange[3] = {255, 127, 14};
    struct canvas *c = malloc(sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return AS_ENOMEM;
    }
    memset(c, 255, sizeof *c);
    double x0 = curve[0], x1 = curve[(n - 1) * 3], y0 = INFINITY, y1 = -INFINITY;
    for (int i = 0; i < n; i++)
        for (int k = 1; k <= 2; k++) {
            double v = curve[i * 3 + k];
            if (isfinite(v))
                y0 = v < y0 ? v : y0, y1 = v > y1 ? v : y1;
        }
    if (!isfinite(y0))
        y0 = 0, y1 = 1;
    if (x1 <= x0)
        x1 = x0 + 1;
    if (y1 - y0 < 1e-6)
        y1 = y0 + 1e-3;
    double ys = nice_step(y1 - y0, 6), xs = nice_step(x1 - x0, 8);
    y0 = floor(y0 / ys) * ys, y1 = ceil(y1 / ys) * ys;
    int pw = W - ML - MR, ph = H - MT - MB;
#define PX(x) (ML + (int)lround(((x)-x0) / (x1 - x0) * pw))
#define PY(y) (MT + ph - (int)lround(((y)-y0) / (y1 - y0) * ph))
    char lab[32];
    for (double y = y0; y <= y1 + ys * 0.5; y += ys) {
        line(c, ML, PY(y), ML + pw, PY(y), grid);
        snprintf(lab, sizeof lab, ys < 0.01 ? "%.3f" : ys < 0.1 ? "%.2f" : "%.1f", y);
        text(c, ML - 10 - text_width(lab, 2), PY(y) - 7, lab, 2, black);
    }
    for (double x = ceil(x0 / xs) * xs; x <= x1; x += xs) {
        line(c, PX(x), MT, PX(x), MT + ph, grid);
        snprintf(lab, sizeof lab, "%.0f", x);
        text(c, PX(x) - text_width(lab, 2) / 2, MT + ph + 10, lab, 2, black);
    }
    line(c, ML, MT, ML, MT + ph, black);
    line(c, ML, MT + ph, ML + pw, MT + ph, black);
    text(c, ML + pw / 2 - text_width("step", 2) / 2, H - 28, "step", 2, black);
    text(c, 14, MT - 36, "loss", 3, black);
    /* legend */
    line(c, W - 260, MT - 26, W - 230, MT - 26, blue);
    text(c, W - 222, MT - 33, "train", 2, black);
    line(c, W - 140, MT - 26, W - 110, MT - 26, orange);
    text(c, W - 102, MT - 33, "val", 2, black);
    for (int k = 1; k <= 2; k++) {
        int have = 0, px = 0, py = 0;
        for (int i = 0; i < n; i++) {
            double v = curve[i * 3 + k];
            if (!isfinite(v))
                continue;
            int x = PX(curve[i * 3]), y = PY(v);
            if (have)
                line(c, px, py, x, y, k == 1 ? blue : orange);
            else if (k == 2)
                put(c, x, y, orange);
            have = 1, px = x, py = y;
        }
    }
#undef PX
#undef PY
    int rc = write_png(path, c, err, errlen);
    free(c);
    return rc;
}
