/* plot.c - `lra-bench plot [--out=DIR] FILES...`: SVG charts from reports, written by hand
 * (no plotting dependency).
 *
 * From speed reports: attention forward+backward tokens/s against length, and planned memory
 * against length (out-of-memory configurations included), one series per backend, log-log axes
 * (speed-throughput.svg, speed-memory.svg).
 * From run reports: test accuracy per task, one bar per backend (mean over seeds), with the LRA
 * paper's Transformer marked (accuracy.svg); from their curves, per task, validation accuracy
 * against training examples and against wall-clock seconds (curve-<task>-examples.svg,
 * curve-<task>-seconds.svg: what a CPU user can afford) and, for backends that route, the
 * fraction of keys in no expert per layer over training (routing-<task>.svg), one line per run.
 * A backend has one colour in every chart. Each file is written to a temporary name and
 * renamed. */
#define _POSIX_C_SOURCE 200809L
#include "plot.h"

#include <math.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "../../common/atomic_file.h"
#include "../../common/json_file.h"
#include "../../datasets/datadir.h"
#include "../../tasks/task.h"
#include "compare.h"
#include "stats.h"

enum { W = 720, H = 440, ML = 80, MR = 170, MT = 50, MB = 60, MAXS = 16, MAXP = 256 };
#define DASH " stroke-dasharray=\"6 3\"" /* the second series of a backend (a seed, a shape, a layer) */
static const char *const colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};

typedef struct {
    char name[112];
    char backend[32]; /* picks the colour */
    int n;
    double x[MAXP], y[MAXP];
} series;

/* One colour per backend in every chart: the four shipped ones fixed, others by name. */
static const char *color_of(const char *backend) { /* "mita[k=128]" is mita's colour too */
    static const char *const fixed[] = {"full", "agent", "moe", "mita"};
    const size_t n = strcspn(backend, "[");
    for (int i = 0; i < 4; i++)
        if (strlen(fixed[i]) == n && !strncmp(backend, fixed[i], n)) return colors[i];
    unsigned h = 5381;
    for (size_t c = 0; c < n; c++) h = h * 33 + (unsigned char)backend[c];
    return colors[4 + h % 4];
}

/* XML text: escapes the five special characters */
static void esc(FILE *f, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* The font size at which text of n characters fits `width` pixels (a sans-serif glyph is about
 * 0.55 em wide on average), at most `size` and at least 8. */
static double fitting(size_t n, double width, double size) {
    const double fs = width / (0.55 * (double)(n ? n : 1));
    return fs < 8 ? 8 : fs > size ? size : fs;
}

static void svg_open(FILE *f, const char *title) {
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
               "font-family=\"sans-serif\" font-size=\"12\">\n"
               "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n<text x=\"%d\" y=\"28\" font-size=\"%.1f\" "
               "text-anchor=\"middle\">", W, H, W, H, W, H, W / 2, fitting(strlen(title), W - 20, 16));
    esc(f, title);
    fputs("</text>\n", f);
}

static void label(FILE *f, double x, double y, const char *anchor, const char *text, int rotate) {
    if (rotate) fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" transform=\"rotate(-90 %.1f %.1f)\">", x, y, anchor, x, y);
    else fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\">", x, y, anchor);
    esc(f, text);
    fputs("</text>\n", f);
}

/* names[i] drawn in the colour of backends[i]: a swatch for bars (dashed NULL), else a stretch of
 * the line as drawn, dashed where the series is; a long name in a smaller font, to fit the margin */
static void legend(FILE *f, const char *const *names, const char *const *backends, const int *dashed, int n) {
    for (int i = 0; i < n; i++) {
        double y = MT + 10 + 20.0 * i;
        if (!dashed)
            fprintf(f, "<rect x=\"%d\" y=\"%.1f\" width=\"14\" height=\"10\" fill=\"%s\"/>\n", W - MR + 15, y,
                    color_of(backends[i]));
        else
            fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"%s/>\n",
                    W - MR + 8, y + 5, W - MR + 30, y + 5, color_of(backends[i]), dashed[i] ? DASH : "");
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"start\" font-size=\"%.1f\">", W - MR + 35, y + 10,
                fitting(strlen(names[i]), MR - 40, 12));
        esc(f, names[i]);
        fputs("</text>\n", f);
    }
}

/* A tick step of 1, 2 or 5 times a power of ten giving at most five steps up to max */
static double nice(double max) {
    const double raw = (max > 0 ? max : 1) / 5, p = pow(10, floor(log10(raw)));
    return raw <= p ? p : raw <= 2 * p ? 2 * p : raw <= 5 * p ? 5 * p : 10 * p;
}

/* Linear axes from 0 to five nice steps past x1 and y1, gridded and labelled. */
static void linear_axes(FILE *f, double x1, double y1, const char *xlab, const char *ylab) {
    const double pw = W - ML - MR, ph = H - MT - MB, dx = nice(x1), dy = nice(y1);
    char buf[64];
    fprintf(f, "<g stroke=\"#ddd\">\n");
    for (int k = 0; k <= 5; k++) {
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%.1f\"/>\n", ML + k * pw / 5, MT, ML + k * pw / 5, MT + ph);
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", ML, MT + ph - k * ph / 5, ML + pw, MT + ph - k * ph / 5);
    }
    fprintf(f, "</g>\n<rect x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"black\"/>\n", ML, MT, pw, ph);
    for (int k = 0; k <= 5; k++) {
        snprintf(buf, sizeof buf, "%g", k * dx);
        label(f, ML + k * pw / 5, MT + ph + 18, "middle", buf, 0);
        snprintf(buf, sizeof buf, "%g", k * dy);
        label(f, ML - 8, MT + ph - k * ph / 5 + 4, "end", buf, 0);
    }
    label(f, ML + pw / 2, H - 15, "middle", xlab, 0);
    label(f, 20, MT + ph / 2, "middle", ylab, 1);
}

/* Where a value lands: linear axes run from 0 to x1 (y1); log axes span the exponent ranges
 * [x0, x1] (powers of two) and [y0, y1] (powers of ten). */
typedef struct { int linear; double x0, x1, y0, y1; } axes;
static double px(const axes *a, double v) {
    return ML + (a->linear ? v / a->x1 : (log2(v) - a->x0) / (a->x1 - a->x0)) * (W - ML - MR);
}
static double py(const axes *a, double v) {
    const double ph = H - MT - MB;
    return MT + ph - (a->linear ? v / a->y1 : (log10(v) - a->y0) / (a->y1 - a->y0)) * ph;
}

static void log_axes(FILE *f, const axes *a, const char *xlab, const char *ylab) {
    const double pw = W - ML - MR, ph = H - MT - MB;
    fprintf(f, "<g stroke=\"#ddd\">\n");
    for (double e = a->x0; e <= a->x1; e++)
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%.1f\"/>\n", px(a, pow(2, e)), MT, px(a, pow(2, e)), MT + ph);
    for (double e = a->y0; e <= a->y1; e++)
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", ML, py(a, pow(10, e)), ML + pw, py(a, pow(10, e)));
    fprintf(f, "</g>\n<rect x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"black\"/>\n", ML, MT, pw, ph);
    char buf[64];
    for (double e = a->x0; e <= a->x1; e++) {
        double v = pow(2, e);
        if (v >= 1024) snprintf(buf, sizeof buf, "%gK", v / 1024);
        else snprintf(buf, sizeof buf, "%g", v);
        label(f, px(a, v), MT + ph + 18, "middle", buf, 0);
    }
    for (double e = a->y0; e <= a->y1; e++) {
        snprintf(buf, sizeof buf, "1e%d", (int)e);
        label(f, ML - 8, py(a, pow(10, e)) + 4, "end", buf, 0);
    }
    label(f, ML + pw / 2, H - 15, "middle", xlab, 0);
    label(f, 20, MT + ph / 2, "middle", ylab, 1);
}

/* Each series' name at its last point, left of it, in its colour: where lines run close together
 * (the memory chart's) the labels are pushed apart to at least 12 px, keeping their order. */
static void end_labels(FILE *f, const axes *a, const series *s, int ns) {
    int order[MAXS], n = 0;
    double y[MAXS];
    for (int i = 0; i < ns; i++)
        if (s[i].n > 0) {
            y[i] = py(a, s[i].y[s[i].n - 1]) + 4;
            int k = n++;
            for (; k > 0 && y[order[k - 1]] > y[i]; k--) order[k] = order[k - 1]; /* by height */
            order[k] = i;
        }
    for (int k = 1; k < n; k++)
        if (y[order[k]] < y[order[k - 1]] + 12) y[order[k]] = y[order[k - 1]] + 12;
    for (int k = 0; k < n; k++) {
        const series *e = &s[order[k]];
        fprintf(f, "<text class=\"end-label\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\" fill=\"%s\">",
                px(a, e->x[e->n - 1]) - 6, y[order[k]], color_of(e->backend));
        esc(f, e->name);
        fputs("</text>\n", f);
    }
}

/* A line chart of the series: log-log (x in powers of two, y in powers of ten, a dot per point),
 * or linear on both axes from 0 (curves over training; every other series dashed). */
static void line_chart(FILE *f, const char *title, const char *xlab, const char *ylab, const series *s, int ns, int linear) {
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int i = 0; i < ns; i++)
        for (int p = 0; p < s[i].n; p++) {
            x0 = fmin(x0, s[i].x[p]); x1 = fmax(x1, s[i].x[p]);
            y0 = fmin(y0, s[i].y[p]); y1 = fmax(y1, s[i].y[p]);
        }
    svg_open(f, title);
    if (!(x1 >= x0)) { x0 = 1; x1 = 2; y0 = 1; y1 = 10; }
    axes a = {linear, 0, nice(x1) * 5, 0, nice(y1) * 5};
    if (!linear) {
        a.x0 = floor(log2(x0)); a.x1 = fmax(ceil(log2(x1)), a.x0 + 1);
        a.y0 = floor(log10(y0)); a.y1 = fmax(ceil(log10(y1)), a.y0 + 1);
        log_axes(f, &a, xlab, ylab);
    } else {
        linear_axes(f, x1, y1, xlab, ylab);
    }
    const char *names[MAXS], *backends[MAXS];
    int dashed[MAXS];
    for (int i = 0; i < ns; i++) {
        names[i] = s[i].name;
        backends[i] = s[i].backend;
        int before = 0; /* series of the same colour drawn before this one: every other one dashed */
        for (int k = 0; k < i; k++) before += strcmp(color_of(s[k].backend), color_of(s[i].backend)) == 0;
        dashed[i] = before % 2;
        const char *color = color_of(s[i].backend);
        fprintf(f, "<g class=\"series\" data-backend=\"");
        esc(f, s[i].name);
        fprintf(f, "\" stroke=\"%s\" fill=\"%s\">\n<polyline fill=\"none\" stroke-width=\"2\"%s points=\"", color, color,
                dashed[i] ? DASH : "");
        for (int p = 0; p < s[i].n; p++) fprintf(f, "%s%.1f,%.1f", p ? " " : "", px(&a, s[i].x[p]), py(&a, s[i].y[p]));
        fputs("\"/>\n", f);
        for (int p = 0; p < s[i].n && !linear; p++)
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\"/>\n", px(&a, s[i].x[p]), py(&a, s[i].y[p]));
        fputs("</g>\n", f);
    }
    if (!linear) end_labels(f, &a, s, ns);
    legend(f, names, backends, dashed, ns);
    fputs("</svg>\n", f);
}

/* Grouped bars: test accuracy per task (present ones), one bar per (backend, profile) with its
 * seeds' sample standard deviation as an error bar, published marks dashed. */
static void bar_chart(FILE *f, groups *gs) {
    const char *backends[MAXS], *profiles[MAXS];
    char legends[MAXS][160];
    const char *names[MAXS];
    int nb = 0, tasks[LRA_MAX_COLUMNS], nt = 0;
    for (int i = 0; i < gs->n && nb < MAXS; i++) {
        int seen = 0;
        for (int b = 0; b < nb; b++) seen |= !strcmp(backends[b], gs->g[i].backend) && !strcmp(profiles[b], gs->g[i].profile);
        if (seen) continue;
        backends[nb] = gs->g[i].backend;
        profiles[nb] = gs->g[i].profile;
        snprintf(legends[nb], sizeof legends[nb], "%s (%s)", backends[nb], profiles[nb]);
        names[nb] = legends[nb];
        nb++;
    }
    /* the columns that have a result: tasks in LRA's order, then substitutes (image[fashion-mnist]) */
    const char *keys[LRA_MAX_COLUMNS], *titles[LRA_MAX_COLUMNS];
    const int nc = lra_columns(gs, keys, titles);
    for (int t = 0; t < nc; t++)
        for (int i = 0; i < gs->n; i++)
            if (!strcmp(gs->g[i].task, keys[t])) { tasks[nt++] = t; break; }
    svg_open(f, "LRA test accuracy at the best-validation step: mean over n seeds, bars the 95% CI; dashes: LRA paper");
    const double pw = W - ML - MR, ph = H - MT - MB, slot = pw / (nt ? nt : 1), bw = slot * 0.8 / (nb ? nb : 1);
    fprintf(f, "<g stroke=\"#ddd\">\n");
    for (int v = 0; v <= 100; v += 20) fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", ML, MT + ph - v / 100.0 * ph, ML + pw, MT + ph - v / 100.0 * ph);
    fprintf(f, "</g>\n<rect x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"black\"/>\n", ML, MT, pw, ph);
    char buf[32];
    for (int v = 0; v <= 100; v += 20) {
        snprintf(buf, sizeof buf, "%d%%", v);
        label(f, ML - 8, MT + ph - v / 100.0 * ph + 4, "end", buf, 0);
    }
    label(f, 20, MT + ph / 2, "middle", "test accuracy", 1);
    for (int b = 0; b < nb; b++) {
        fprintf(f, "<g class=\"series\" data-backend=\"");
        esc(f, names[b]);
        fprintf(f, "\" fill=\"%s\">\n", color_of(backends[b]));
        for (int k = 0; k < nt; k++) {
            const group *g = lra_find_group(gs, keys[tasks[k]], backends[b], profiles[b], 0);
            if (!g) continue;
            const lra_estimate e = lra_estimate_mean(g->acc, g->n);
            const double a = e.mean, half = lra_half95(e), x = ML + k * slot + slot * 0.1 + b * bw;
            fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"><title>", x, MT + ph - a / 100 * ph,
                    bw * 0.9, a / 100 * ph);
            esc(f, names[b]);
            if (isnan(half)) fprintf(f, " %s: %.2f%% (n=%d, no interval)</title></rect>\n", g->task, a, g->n);
            else fprintf(f, " %s: %.2f%% [%.2f, %.2f] (n=%d, 95%% CI)</title></rect>\n", g->task, a, a - half, a + half, g->n);
            if (!isnan(half)) { /* the error bar, in black over the bar, clipped to the chart */
                const double hi = fmin(a + half, 100), lo = fmax(a - half, 0);
                fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n", x + bw * 0.45,
                        MT + ph - hi / 100 * ph, x + bw * 0.45, MT + ph - lo / 100 * ph);
            }
            snprintf(buf, sizeof buf, "n=%d", g->n);
            label(f, x + bw * 0.45, MT + ph - a / 100 * ph - 4, "middle", buf, 0);
        }
        fputs("</g>\n", f);
    }
    for (int k = 0; k < nt; k++) {
        const lra_task_i *task = lra_task_find(keys[tasks[k]]); /* NULL for a substitute: nothing published */
        double cx = ML + k * slot + slot / 2, p = task ? task->published : NAN;
        label(f, cx, MT + ph + 18, "middle", titles[tasks[k]], 0);
        if (!isnan(p))
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\" stroke-dasharray=\"4 3\"/>\n",
                    ML + k * slot + slot * 0.05, MT + ph - p / 100 * ph, ML + (k + 1) * slot - slot * 0.05, MT + ph - p / 100 * ph);
    }
    legend(f, names, backends, NULL, nb);
    fputs("</svg>\n", f);
}

/* writes through a temporary file; returns 0 on success */
static int write_svg(const char *dir, const char *name, void (*draw)(FILE *, void *), void *ctx) {
    char path[4200], err[LRA_ERR_LEN];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    lra_atomic_file a;
    if (lra_atomic_open(&a, path, err) != LRA_OK) { fprintf(stderr, "lra-bench plot: %s\n", err); return 1; }
    draw(a.f, ctx);
    int e = lra_atomic_commit(&a, !ferror(a.f), LRA_ATOMIC_SYNC);
    if (e) { fprintf(stderr, "lra-bench plot: %s: write failed: %s\n", path, strerror(e)); return 1; }
    printf("%s\n", path);
    return 0;
}

typedef struct { const char *title, *xlab, *ylab; series *s; int n, linear; } line_args;
static void draw_line(FILE *f, void *p) { line_args *a = p; line_chart(f, a->title, a->xlab, a->ylab, a->s, a->n, a->linear); }
static void draw_bars(FILE *f, void *p) { bar_chart(f, p); }

/* adds (x, y) to the series named name (created with backend's colour) */
static void add_point(series *s, int *ns, const char *name, const char *backend, double x, double y) {
    if (!(y > 0)) return;
    int i = 0;
    while (i < *ns && strcmp(s[i].name, name)) i++;
    if (i == *ns) {
        if (*ns == MAXS) return;
        memset(&s[i], 0, sizeof s[i]);
        snprintf(s[i].name, sizeof s[i].name, "%s", name);
        snprintf(s[i].backend, sizeof s[i].backend, "%s", backend);
        (*ns)++;
    }
    /* kept sorted by x, each x once: a file given twice (a glob and its directory) draws nothing
     * twice, and reports of other lengths interleave instead of zig-zagging */
    int at = s[i].n;
    for (int p = 0; p < s[i].n; p++) {
        if (s[i].x[p] == x) return;
        if (s[i].x[p] > x) { at = p; break; }
    }
    if (s[i].n == MAXP) return;
    memmove(s[i].x + at + 1, s[i].x + at, sizeof(double) * (size_t)(s[i].n - at));
    memmove(s[i].y + at + 1, s[i].y + at, sizeof(double) * (size_t)(s[i].n - at));
    s[i].x[at] = x;
    s[i].y[at] = y;
    s[i].n++;
}

/* The curves of the run reports, per task: validation accuracy against training examples and
 * against wall seconds, and (backends that route) the fraction of keys in no expert per layer. */
static int curve_charts(const char *out, char **runs, int nruns) {
    static series by_ex[MAXS], by_s[MAXS], routing[MAXS];
    int rc = 0;
    cJSON **docs = calloc((size_t)nruns + 1, sizeof *docs); /* each report parsed once, for every task */
    if (!docs) return 1;
    for (int r = 0; r < nruns; r++) {
        lra_status st;
        char err[LRA_ERR_LEN];
        docs[r] = lra_read_json(runs[r], &st, err); /* read already by lra_groups_load: NULL only if it vanished */
    }
    for (int t = 0; t < lra_task_count(); t++) {
        const lra_task_i *task = lra_task_at(t);
        int nex = 0, ns = 0, nr = 0;
        for (int r = 0; r < nruns; r++) {
            char name[64];
            const cJSON *j = docs[r];
            const cJSON *task_name = cJSON_GetObjectItemCaseSensitive(j, "task"), *b = cJSON_GetObjectItemCaseSensitive(j, "backend");
            const cJSON *prof = cJSON_GetObjectItemCaseSensitive(j, "profile"), *seed = cJSON_GetObjectItemCaseSensitive(j, "seed");
            if (!cJSON_IsString(task_name) || strcmp(task_name->valuestring, task->name) || !cJSON_IsString(b) ||
                !cJSON_IsString(prof) || !cJSON_IsNumber(seed))
                continue;
            const cJSON *pt;
            /* one line per run: backend with its options, profile, seed */
            const cJSON *opts = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "config"), "attn-opt");
            const int has_opts = cJSON_IsString(opts) && opts->valuestring[0];
            snprintf(name, sizeof name, "%s%s%.24s%s %s s%.0f", b->valuestring, has_opts ? "[" : "",
                     has_opts ? opts->valuestring : "", has_opts ? "]" : "", prof->valuestring, seed->valuedouble);
            cJSON_ArrayForEach(pt, cJSON_GetObjectItemCaseSensitive(j, "curve")) {
                const cJSON *acc = cJSON_GetObjectItemCaseSensitive(pt, "val_accuracy");
                const cJSON *ex = cJSON_GetObjectItemCaseSensitive(pt, "examples"), *el = cJSON_GetObjectItemCaseSensitive(pt, "elapsed_s");
                if (!cJSON_IsNumber(acc)) continue;
                if (cJSON_IsNumber(ex)) add_point(by_ex, &nex, name, b->valuestring, ex->valuedouble, 100 * acc->valuedouble);
                if (cJSON_IsNumber(el)) add_point(by_s, &ns, name, b->valuestring, el->valuedouble, 100 * acc->valuedouble);
                const cJSON *layer;
                cJSON_ArrayForEach(layer, cJSON_GetObjectItemCaseSensitive(pt, "attention")) {
                    const cJSON *l = cJSON_GetObjectItemCaseSensitive(layer, "layer");
                    const cJSON *u = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(layer, "routing"),
                                                                     "unselected_key_fraction");
                    if (!cJSON_IsNumber(l) || !cJSON_IsNumber(u) || !cJSON_IsNumber(ex)) continue;
                    char lname[112]; /* the run's line name, so runs of other profiles or options stay apart */
                    snprintf(lname, sizeof lname, "%s layer %.0f", name, l->valuedouble);
                    add_point(routing, &nr, lname, b->valuestring, ex->valuedouble, 100 * u->valuedouble + 1e-9);
                }
            }
        }
        char file[96], title[128];
        if (nex) {
            snprintf(title, sizeof title, "%s: validation accuracy over training", task->title);
            line_args a = {title, "training examples", "validation accuracy (%)", by_ex, nex, 1};
            snprintf(file, sizeof file, "curve-%s-examples.svg", task->name);
            rc |= write_svg(out, file, draw_line, &a);
        }
        if (ns) {
            snprintf(title, sizeof title, "%s: validation accuracy against wall time", task->title);
            line_args a = {title, "seconds since the run started", "validation accuracy (%)", by_s, ns, 1};
            snprintf(file, sizeof file, "curve-%s-seconds.svg", task->name);
            rc |= write_svg(out, file, draw_line, &a);
        }
        if (nr) {
            snprintf(title, sizeof title, "%s: keys in no expert (first validation batch)", task->title);
            line_args a = {title, "training examples", "unselected keys (%)", routing, nr, 1};
            snprintf(file, sizeof file, "routing-%s.svg", task->name);
            rc |= write_svg(out, file, draw_line, &a);
        }
    }
    for (int r = 0; r < nruns; r++) cJSON_Delete(docs[r]);
    free(docs);
    return rc;
}

int lra_plot_main(int argc, char **argv) {
    const char *out = "results/plots";
    char **runs = calloc((size_t)argc + 1, sizeof(char *)), err[LRA_ERR_LEN];
    int nruns = 0, nfiles = 0, rc = 0;
    static series thr[MAXS], mem[MAXS];
    int nthr = 0, nmem = 0;
    for (int i = 0; i < argc; i++) {
        if (!strncmp(argv[i], "--out=", 6)) { out = argv[i] + 6; continue; }
        if (!strncmp(argv[i], "--", 2)) {
            fprintf(stderr, "lra-bench plot: unknown option '%s' (usage: lra-bench plot [--out=DIR] FILES...)\n", argv[i]);
            free(runs);
            return 2;
        }
        nfiles++;
        lra_status st;
        cJSON *j = lra_read_json(argv[i], &st, err);
        if (!j) { fprintf(stderr, "lra-bench plot: %s\n", err); free(runs); return 1; }
        const cJSON *kind = cJSON_GetObjectItemCaseSensitive(j, "kind");
        if (!(cJSON_IsString(kind) && !strcmp(kind->valuestring, "speed"))) {
            runs[nruns++] = argv[i];
            cJSON_Delete(j);
            continue;
        }
        /* one line per backend and shape: points measured at other batch sizes or heads are not
         * the same curve (they once drew memory rising at 2K and falling at 4K) */
        const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(j, "config");
        const cJSON *cb = cJSON_GetObjectItemCaseSensitive(cfg, "batch"), *ch = cJSON_GetObjectItemCaseSensitive(cfg, "heads");
        const cJSON *cs = cJSON_GetObjectItemCaseSensitive(cfg, "head_size");
        char shape[64] = "";
        if (cJSON_IsNumber(cb) && cJSON_IsNumber(ch) && cJSON_IsNumber(cs))
            snprintf(shape, sizeof shape, " (B%.0f, %.0fx%.0f)", cb->valuedouble, ch->valuedouble, cs->valuedouble);
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(j, "entries")) {
            const cJSON *b = cJSON_GetObjectItemCaseSensitive(e, "backend"), *T = cJSON_GetObjectItemCaseSensitive(e, "length");
            const cJSON *a = cJSON_GetObjectItemCaseSensitive(e, "attention");
            if (!cJSON_IsString(b) || !cJSON_IsNumber(T) || !a) {
                fprintf(stderr, "lra-bench plot: %s: a speed entry lacks backend, length or attention\n", argv[i]);
                cJSON_Delete(j);
                free(runs);
                return 1;
            }
            const cJSON *tps = cJSON_GetObjectItemCaseSensitive(a, "tokens_per_s");
            const cJSON *pb = cJSON_GetObjectItemCaseSensitive(a, "planned_bytes");
            const cJSON *na = cJSON_GetObjectItemCaseSensitive(a, "not_applicable");
            char name[112];
            snprintf(name, sizeof name, "%.40s%s", b->valuestring, shape);
            if (cJSON_IsNumber(tps)) add_point(thr, &nthr, name, b->valuestring, T->valuedouble, tps->valuedouble);
            /* planned memory is known for out-of-memory configurations too: that is where it matters */
            if (cJSON_IsNumber(pb) && !cJSON_IsTrue(na))
                add_point(mem, &nmem, name, b->valuestring, T->valuedouble, pb->valuedouble / 1048576.0);
        }
        cJSON_Delete(j);
    }
    if (!nfiles) {
        fprintf(stderr, "lra-bench plot: no report files given (usage: lra-bench plot [--out=DIR] FILES...)\n");
        free(runs);
        return 2;
    }
    if (lra_mkdirs(out, err) != LRA_OK) { fprintf(stderr, "lra-bench plot: %s\n", err); free(runs); return 1; }
    if (nthr) {
        line_args a = {"Attention forward+backward throughput", "sequence length", "tokens/s", thr, nthr, 0};
        rc |= write_svg(out, "speed-throughput.svg", draw_line, &a);
    }
    if (nmem) {
        line_args a = {"Attention memory, planned (inputs, gradients, workspace)", "sequence length", "MB", mem, nmem, 0};
        rc |= write_svg(out, "speed-memory.svg", draw_line, &a);
    }
    if (nruns) {
        groups gs = {.target = NAN};
        lra_status st = lra_groups_load(&gs, runs, nruns, err);
        if (st != LRA_OK) { fprintf(stderr, "lra-bench plot: %s\n", err); rc = 1; }
        else if (gs.n) rc |= write_svg(out, "accuracy.svg", draw_bars, &gs);
        free(gs.g);
        if (st == LRA_OK) rc |= curve_charts(out, runs, nruns);
    }
    free(runs);
    return rc;
}
