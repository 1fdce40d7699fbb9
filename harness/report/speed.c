/* speed.c - `lra-bench speed`: the speed and memory sweep.
 *
 * For each length and backend: the attention layer alone (forward, and forward+backward) and a
 * whole encoder training step (forward in evaluation mode, and forward+backward+Adam), each
 * after `warmup` untimed calls, `repeats` timed ones, buffers allocated and touched first. It
 * reports median and interquartile range, tokens/s, GFLOP/s from the backend's analytic flops,
 * the backend's workspace and the model's planned bytes, and the process's peak RSS so far. A
 * configuration whose planned memory exceeds --mem-limit is marked out-of-memory, not run; one
 * whose options cannot work at a length (agent's n above T) is marked n/a, with the reason.
 * Output: the LRA paper's Table 2 shape (steps/s with the speed-up over full, memory) on stdout
 * and every figure in a JSON report. */
#define _POSIX_C_SOURCE 200809L
#include "speed.h"

#include <math.h>
#include <omp.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>
#include <cjson/cJSON.h>

#include "../../attention/attention.h"
#include "../../attention/tile_bf16.h"
#include "../../common/fs.h"
#include "../../common/json_file.h"
#include "../encoder/dist.h"
#include "../encoder/gemm.h"
#include "../encoder/model.h"
#include "../encoder/optim.h"
#include "../encoder/train.h"
#include "../run/config.h"
#include "../run/sysinfo.h"
#include "peak.h"

enum { MAXB = 16, MAXL = 32, MAXREP = 1000 };

typedef struct {
    char backends[MAXB][32];
    int nb, lengths[MAXL], nl;
    int batch, heads, hs, layers, warmup, repeats, threads, encoder;
    int shards; /* the encoder step's gradient shards (train.h); default: one per process */
    int overwrite; /* --overwrite: an existing --out is replaced (else refused before measuring) */
    lra_precision precision; /* --precision: the encoder's products, and attention where the backend takes bf16 */
    double mem_limit;
    char attn_opts[256], out[4096];
} speed_cfg;

typedef struct { double median, q1, q3; } stats;
typedef struct {
    int oom, ran;
    stats fwd, fwdbwd;
    double planned_bytes, workspace_bytes, flops_fwd, flops_bwd, rss;
    int rss_own; /* rss is this measurement's peak (else the process's so far) */
    double comm_s, comm_bytes; /* the encoder step's MPI time and bytes sent, per step */
    double step_product_flops; /* the encoder step: its blocks' dense products, forward and backward */
    lra_precision attn_precision; /* what the backend's products ran at (lra_attn_precision) */
} measure;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double quantile(const double *s, int n, double p) { /* s sorted; linear interpolation */
    double pos = p * (n - 1);
    int i = (int)pos;
    return i + 1 < n ? s[i] + (pos - i) * (s[i + 1] - s[i]) : s[i];
}
static stats summarize(double *x, int n) {
    qsort(x, (size_t)n, sizeof(double), cmp_double);
    return (stats){quantile(x, n, 0.5), quantile(x, n, 0.25), quantile(x, n, 0.75)};
}

static double parse_size(const char *s) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || v < 0) return -1;
    switch (*end) {
    case 'K': case 'k': v *= 1024; end++; break;
    case 'M': case 'm': v *= 1048576; end++; break;
    case 'G': case 'g': v *= 1073741824; end++; break;
    default: break;
    }
    return *end ? -1 : v;
}

static measure time_attention(const speed_cfg *c, const char *backend, int T) {
    measure r = {0};
    r.rss_own = lra_peak_rss_reset(); /* this measurement's peak, not the sweep's so far */
    char err[LRA_ERR_LEN];
    lra_attn h;
    lra_attn_shape s = {c->batch, c->heads, T, c->hs};
    if (lra_attn_create(&h, backend, c->attn_opts, s, c->threads, err) != LRA_OK) {
        fprintf(stderr, "lra-bench speed: %s (T=%d)\n", err, T);
        r.oom = -1;
        return r;
    }
    const size_t n = (size_t)c->batch * c->heads * T * c->hs, np = lra_attn_param_count(&h);
    r.workspace_bytes = (double)lra_attn_workspace_bytes(&h);
    r.planned_bytes = r.workspace_bytes + sizeof(float) * (8.0 * n + 2.0 * np) + (double)c->batch * T;
    lra_attn_flops(&h, s, &r.flops_fwd, &r.flops_bwd);
    r.attn_precision = lra_attn_precision(&h, c->precision);
    if (r.planned_bytes > c->mem_limit) {
        r.oom = 1;
        lra_attn_free(&h);
        return r;
    }
    float *buf = lra_alloc_touched(sizeof(float) * (8 * n + 2 * np + 2));
    void *ws = lra_alloc_touched((size_t)r.workspace_bytes);
    uint8_t *mask = lra_alloc_touched((size_t)c->batch * T);
    if (!buf || !ws || !mask) {
        r.oom = 1;
    } else {
        float *q = buf, *k = q + n, *v = k + n, *o = v + n, *dout = o + n, *dq = dout + n, *dk = dq + n, *dv = dk + n;
        float *params = dv + n, *dparams = params + np + 1;
        lra_rng g;
        lra_rng_seed(&g, 1);
        for (size_t i = 0; i < 5 * n; i++) q[i] = (float)(2 * lra_rng_uniform(&g) - 1);
        lra_attn_init_params(&h, params, 2);
        memset(mask, 1, (size_t)c->batch * T);
        lra_attn_args args = {mask, 0.0f, 0, c->precision};
        static double f[MAXREP], fb[MAXREP];
        for (int rep = -c->warmup; rep < c->repeats; rep++) {
            double t0 = lra_now();
            lra_attn_forward(&h, s, &args, o, ws, q, k, v, params);
            double t1 = lra_now();
            lra_attn_backward(&h, s, &args, dq, dk, dv, dparams, ws, dout, o, q, k, v, params);
            double t2 = lra_now();
            if (rep >= 0) { f[rep] = t1 - t0; fb[rep] = t2 - t0; }
        }
        r.fwd = summarize(f, c->repeats);
        r.fwdbwd = summarize(fb, c->repeats);
        r.ran = 1;
    }
    free(buf);
    free(ws);
    free(mask);
    lra_attn_free(&h);
    r.rss = (double)lra_peak_rss_bytes();
    return r;
}

static measure time_encoder(const speed_cfg *c, const char *backend, int T) {
    measure r = {0};
    r.rss_own = lra_peak_rss_reset();
    char err[LRA_ERR_LEN];
    const int emb = c->heads * c->hs;
    lra_model_cfg mc = {.vocab = 257, .classes = 2, .max_len = T, .batch = c->batch, .layers = c->layers,
                        .heads = c->heads, .emb = emb, .qkv = emb, .mlp = 2 * emb, .cls = 0, .pool = LRA_POOL_MEAN, .pool_len = T,
                        .learned_pos = 0, .dropout = 0.0f, .attn_dropout = 0.0f, .backend = backend,
                        .attn_opts = c->attn_opts, .nthreads = c->threads, .precision = c->precision};
    lra_model_sizes z;
    if (lra_model_plan(&z, &mc, err) != LRA_OK) {
        fprintf(stderr, "lra-bench speed: %s (T=%d)\n", err, T);
        r.oom = -1;
        return r;
    }
    r.planned_bytes = (double)z.total_bytes + 5.0 * c->batch * T;
    r.workspace_bytes = (double)z.attention_workspace_bytes;
    if (r.planned_bytes > c->mem_limit) {
        r.oom = 1;
        return r;
    }
    lra_model m;
    if (lra_model_create(&m, &mc, err) != LRA_OK) {
        r.oom = 1;
        return r;
    }
    lra_model_init(&m, 1);
    lra_trainer tr;
    if (lra_trainer_create(&tr, &m, c->shards, err) != LRA_OK) {
        lra_model_free(&m);
        r.oom = 1;
        return r;
    }
    lra_attn_shape s = {c->batch, c->heads, T, c->hs};
    lra_attn_flops(&m.attn, s, &r.flops_fwd, &r.flops_bwd);
    r.attn_precision = lra_attn_precision(&m.attn, c->precision);
    /* q, k, v (C -> 3C), out (C -> C), MLP (C -> 2C -> C): 2 N C (3C + C + 2C + 2C) forward, twice
     * that backward (din and dw) */
    const double N = (double)c->batch * T;
    r.step_product_flops = c->layers * 3.0 * 2.0 * N * emb * (8.0 * emb);
    int32_t *tok = lra_alloc_touched(sizeof(int32_t) * (size_t)c->batch * T), lab[4096];
    uint8_t *mask = lra_alloc_touched((size_t)c->batch * T);
    lra_rng g;
    lra_rng_seed(&g, 3);
    for (size_t i = 0; i < (size_t)c->batch * T; i++) { tok[i] = 1 + (int32_t)(lra_rng_u64(&g) % 256); mask[i] = 1; }
    for (int b = 0; b < c->batch && b < 4096; b++) lab[b] = b % 2;
    static double f[MAXREP], st[MAXREP];
    lra_config recipe;
    lra_config_profile(&recipe, "listops", "repro", NULL);
    for (int rep = -c->warmup; rep < c->repeats; rep++) {
        double t0 = lra_now();
        lra_eval_batch(&tr, tok, mask, lab, c->batch, T); /* under MPI, split like the step */
        double t1 = lra_now();
        lra_step_hparams hp = lra_step_hparams_at(&recipe, recipe.warmup); /* the default recipe at its peak */
        hp.t = rep + c->warmup + 1;
        double norm;
        lra_train_step(&tr, tok, mask, lab, c->batch, T, (uint64_t)rep, &hp, &norm); /* the step runs train */
        double t2 = lra_now();
        if (rep >= 0) { f[rep] = t1 - t0; st[rep] = t2 - t1; }
    }
    r.fwd = summarize(f, c->repeats);
    r.fwdbwd = summarize(st, c->repeats);
    r.ran = 1;
    r.comm_s = tr.comm_seconds / (c->warmup + c->repeats);
    r.comm_bytes = tr.comm_bytes / (c->warmup + c->repeats);
    free(tok);
    free(mask);
    lra_trainer_free(&tr);
    lra_model_free(&m);
    r.rss = (double)lra_peak_rss_bytes();
    return r;
}

static cJSON *measure_json(const measure *r, const speed_cfg *c, int T, int encoder) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddBoolToObject(j, "out_of_memory", r->oom == 1);
    cJSON_AddBoolToObject(j, "not_applicable", r->oom < 0); /* options that cannot work at this length */
    cJSON_AddNumberToObject(j, "planned_bytes", r->planned_bytes);
    cJSON_AddNumberToObject(j, "attention_workspace_bytes", r->workspace_bytes);
    cJSON_AddNumberToObject(j, "attention_flops_fwd", r->flops_fwd);
    cJSON_AddStringToObject(j, "attention_precision", lra_precision_name(r->attn_precision));
    cJSON_AddNumberToObject(j, "attention_flops_bwd", r->flops_bwd);
    if (!r->ran) return j;
    const char *names[2] = {encoder ? "eval_forward_s" : "forward_s", encoder ? "train_step_s" : "forward_backward_s"};
    const stats *s[2] = {&r->fwd, &r->fwdbwd};
    for (int i = 0; i < 2; i++) {
        cJSON *x = cJSON_AddObjectToObject(j, names[i]);
        cJSON_AddNumberToObject(x, "median", s[i]->median);
        cJSON_AddNumberToObject(x, "q1", s[i]->q1);
        cJSON_AddNumberToObject(x, "q3", s[i]->q3);
    }
    const double tokens = (double)c->batch * T;
    cJSON_AddNumberToObject(j, "steps_per_s", 1.0 / r->fwdbwd.median);
    cJSON_AddNumberToObject(j, "tokens_per_s", tokens / r->fwdbwd.median);
    if (!encoder) cJSON_AddNumberToObject(j, "gflops_per_s", (r->flops_fwd + r->flops_bwd) / r->fwdbwd.median / 1e9);
    if (encoder) {
        cJSON_AddNumberToObject(j, "product_flops", r->step_product_flops);
        cJSON_AddNumberToObject(j, "gflops_per_s",
                                (r->step_product_flops + c->layers * (r->flops_fwd + r->flops_bwd)) / r->fwdbwd.median / 1e9);
    }
    if (encoder && lra_dist_size() > 1) { /* the data-parallel step's communication (dist.h) */
        cJSON_AddNumberToObject(j, "comm_s_per_step", r->comm_s);
        cJSON_AddNumberToObject(j, "comm_bytes_sent_per_step", r->comm_bytes);
    }
    cJSON_AddNumberToObject(j, r->rss_own ? "peak_rss_bytes" : "peak_rss_bytes_so_far", r->rss);
    return j;
}

static void cell(char *buf, size_t n, const measure *r, const measure *full) {
    if (r->oom == 1) snprintf(buf, n, "OOM");
    else if (!r->ran) snprintf(buf, n, "n/a");
    else if (full && full->ran) snprintf(buf, n, "%.2f (%.1fx)", 1.0 / r->fwdbwd.median, full->fwdbwd.median / r->fwdbwd.median);
    else snprintf(buf, n, "%.2f", 1.0 / r->fwdbwd.median);
}

static void print_table(const char *title, const speed_cfg *c, measure (*res)[MAXL], int memory) {
    printf("\n%s\n\n| backend |", title);
    for (int l = 0; l < c->nl; l++) printf(" %d |", c->lengths[l]);
    printf("\n|---|");
    for (int l = 0; l < c->nl; l++) printf("---|");
    printf("\n");
    int full = -1;
    for (int b = 0; b < c->nb; b++)
        if (!strcmp(c->backends[b], "full")) full = b;
    for (int b = 0; b < c->nb; b++) {
        printf("| %s |", c->backends[b]);
        for (int l = 0; l < c->nl; l++) {
            char buf[64];
            if (memory && res[b][l].oom >= 0)
                snprintf(buf, sizeof buf, "%.1f%s", res[b][l].planned_bytes / 1048576.0, res[b][l].oom == 1 ? " (OOM)" : "");
            else if (memory) snprintf(buf, sizeof buf, "n/a");
            else cell(buf, sizeof buf, &res[b][l], full >= 0 ? &res[full][l] : NULL);
            printf(" %s |", buf);
        }
        printf("\n");
    }
}

/* GFLOP/s and how near they come to the peaks. The attention layer alone (step 0): the backends'
 * analytic flops, against the peak of the precision its products ran at. The encoder step (step
 * 1): dense products and attention, as the time the step's flops would take at the peaks
 * (products at the run's precision's, attention at its own) over the time measured. */
static void print_gflops(const speed_cfg *c, measure (*res)[MAXL], double peak32, double peak_bf16,
                         double peak_products, int step) {
    char b16[64] = ""; /* the bf16 peak, where the CPU has one */
    if (peak_bf16 > 0) snprintf(b16, sizeof b16, ", bf16 %.0f for backends marked *", peak_bf16);
    if (step)
        printf("\n## Encoder training step: GFLOP/s (%% of the peaks: products at %.0f GFLOP/s (%s), attention at fp32 "
               "%.0f%s)\n\n", peak_products, lra_precision_name(c->precision), peak32, b16);
    else
        printf("\n## Attention layer alone, forward+backward: GFLOP/s (%% of the measured peak: fp32 %.0f GFLOP/s%s)\n\n",
               peak32, b16);
    printf("| backend |");
    for (int l = 0; l < c->nl; l++) printf(" %d |", c->lengths[l]);
    printf("\n|---|");
    for (int l = 0; l < c->nl; l++) printf("---|");
    printf("\n");
    for (int b = 0; b < c->nb; b++) {
        printf("| %s |", c->backends[b]);
        for (int l = 0; l < c->nl; l++) {
            const measure *r = &res[b][l];
            if (!r->ran) { printf(" %s |", r->oom == 1 ? "OOM" : "n/a"); continue; }
            const double att = (step ? c->layers : 1) * (r->flops_fwd + r->flops_bwd), t = r->fwdbwd.median;
            const double products = step ? r->step_product_flops : 0;
            const int b16 = r->attn_precision == LRA_BF16 && peak_bf16 > 0;
            const double ideal = products / (peak_products * 1e9) + att / ((b16 ? peak_bf16 : peak32) * 1e9);
            printf(" %.1f (%.0f%%)%s |", (products + att) / t / 1e9, 100 * ideal / t, b16 ? " *" : "");
        }
        printf("\n");
    }
}

int lra_speed_main(int argc, char **argv) {
    static speed_cfg c;
    memset(&c, 0, sizeof c);
    c.nb = 0;
    for (int i = 0; i < lra_attn_count() && c.nb < MAXB; i++) snprintf(c.backends[c.nb++], 32, "%s", lra_attn_name_at(i));
    const int deflen[6] = {1024, 2048, 3072, 4096, 8192, 16384};
    for (c.nl = 0; c.nl < 6; c.nl++) c.lengths[c.nl] = deflen[c.nl];
    c.batch = 1; c.heads = 4; c.hs = 64; c.layers = 2; c.warmup = 1; c.repeats = 5; c.encoder = 1;
    c.threads = lra_dist_default_threads(); /* mpirun's processes on a host share its cores */
    c.shards = lra_dist_size();
    c.mem_limit = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGE_SIZE);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *eq = strchr(a, '=');
        const char *v = eq ? eq + 1 : "";
        char *save = NULL, buf[1024];
        int iv = atoi(v);
        if (!strncmp(a, "--backend=", 10)) {
            snprintf(buf, sizeof buf, "%s", v);
            c.nb = 0;
            for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                if (!lra_attn_known(t) || c.nb == MAXB) {
                    char names[256];
                    lra_attn_names(names, sizeof names);
                    fprintf(stderr, "lra-bench speed: unknown attention backend '%s' (known: %s)\n", t, names);
                    return 2;
                }
                snprintf(c.backends[c.nb++], 32, "%s", t);
            }
        } else if (!strncmp(a, "--lengths=", 10)) {
            snprintf(buf, sizeof buf, "%s", v);
            c.nl = 0;
            for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                char *end;
                long x = strtol(t, &end, 10);
                if (*end || x < 1 || x > (1 << 22) || c.nl == MAXL) {
                    fprintf(stderr, "lra-bench speed: --lengths: '%s' is not a length in [1, 4194304]\n", t);
                    return 2;
                }
                c.lengths[c.nl++] = (int)x;
            }
        } else if (!strncmp(a, "--batch=", 8) && iv >= 1 && iv <= 4096) c.batch = iv;
        else if (!strncmp(a, "--heads=", 8) && iv >= 1) c.heads = iv;
        else if (!strncmp(a, "--hs=", 5) && iv >= 1) c.hs = iv;
        else if (!strncmp(a, "--layers=", 9) && iv >= 1) c.layers = iv;
        else if (!strncmp(a, "--warmup=", 9) && (iv >= 0 || !strcmp(v, "0"))) c.warmup = iv;
        else if (!strncmp(a, "--repeats=", 10) && iv >= 1 && iv <= MAXREP) c.repeats = iv;
        else if (!strncmp(a, "--threads=", 10) && iv >= 1) c.threads = iv;
        else if (!strncmp(a, "--grad-shards=", 14) && iv >= 1) c.shards = iv;
        else if (!strncmp(a, "--encoder=", 10) && (!strcmp(v, "0") || !strcmp(v, "1"))) c.encoder = iv;
        else if (!strncmp(a, "--attn-opt=", 11)) snprintf(c.attn_opts, sizeof c.attn_opts, "%s", v);
        else if (!strncmp(a, "--out=", 6)) snprintf(c.out, sizeof c.out, "%s", v);
        else if (!strcmp(a, "--precision=fp32")) c.precision = LRA_FP32;
        else if (!strcmp(a, "--precision=bf16")) c.precision = LRA_BF16;
        else if (!strcmp(a, "--overwrite") || !strcmp(a, "--overwrite=on")) c.overwrite = 1;
        else if (!strcmp(a, "--overwrite=off")) c.overwrite = 0;
        else if (!strncmp(a, "--mem-limit=", 12) && parse_size(v) > 0) c.mem_limit = parse_size(v);
        else {
            fprintf(stderr, "lra-bench speed: bad option '%s' (see lra-bench --help)\n", a);
            return 2;
        }
    }
    if (c.attn_opts[0] && c.nb != 1) {
        fprintf(stderr, "lra-bench speed: --attn-opt applies to one backend; give one --backend with it\n");
        return 2;
    }
    /* a taken --out is refused now, not after the measuring (rank 0 sees the file; all stop) */
    char err[LRA_ERR_LEN];
    lra_status taken = LRA_OK;
    if (lra_dist_rank() == 0 && c.out[0] && !c.overwrite && lra_file_exists(c.out))
        taken = lra_fail(err, LRA_ERR_USAGE, "%s exists: --out=PATH writes this report elsewhere; --overwrite replaces it",
                         c.out);
    if (lra_dist_agree(taken, err) != LRA_OK) {
        if (lra_dist_rank() == 0) fprintf(stderr, "lra-bench speed: %s\n", err);
        return 2;
    }
    omp_set_num_threads(c.threads);
    openblas_set_num_threads(c.threads);
    if (lra_dist_rank() != 0 && !freopen("/dev/null", "w", stdout)) return 1; /* rank 0 prints and writes */
    static measure att[MAXB][MAXL], enc[MAXB][MAXL];
    const char *ct = getenv("OPENBLAS_CORETYPE");
    char encoder[192] = "the attention layer alone (--encoder=0)";
    if (c.encoder)
        snprintf(encoder, sizeof encoder, "encoder %d layers (emb %d, mlp %d), products in %s through oneDNN at ISA %s%s",
                 c.layers, c.heads * c.hs, 2 * c.heads * c.hs, lra_precision_name(c.precision), lra_gemm_isa(),
                 c.precision == LRA_BF16 && !lra_bf16_native() ? " (no bf16 instructions: emulated, slower than fp32)" : "");
    printf("# lra-bench speed: batch %d, %d heads of %d, %s; %d threads; %d warm-up + %d timed repeats, medians; "
           "attention tiles: OpenBLAS %s, OPENBLAS_CORETYPE=%s\n",
           c.batch, c.heads, c.hs, encoder, c.threads, c.warmup, c.repeats, openblas_get_corename(), ct ? ct : "(unset)");
    if (lra_dist_size() > 1 || c.shards > 1)
        printf("# %d process%s x %d threads; the encoder step in %d gradient shards (train.h)%s\n", lra_dist_size(),
               lra_dist_size() > 1 ? "es" : "", c.threads, c.shards,
               lra_dist_size() > 1 ? "; the attention layer alone runs on every process at once" : "");
    const double peak = lra_peak_gflops(c.threads); /* before any kernel, on idle caches */
    /* bf16's peak on the kernel the attention tiles run on (oneDNN's products take the same units) */
    const lra_tile_isa bf16_kernel = lra_tile_bf16_isa();
    const double peak_bf16 = bf16_kernel == LRA_TILE_AMX ? lra_peak_amx_gflops(c.threads) : lra_peak_bf16_gflops(c.threads);
    printf("# machine peak (fp32 FMA on every thread, measured): %.0f GFLOP/s", peak);
    if (peak_bf16 > 0)
        printf("; bf16 (%s): %.0f GFLOP/s", bf16_kernel == LRA_TILE_AMX ? "AMX tiles" : "vdpbf16ps", peak_bf16);
    else printf("; no bf16 instructions");
    printf("\n");
    fflush(stdout);
    for (int l = 0; l < c.nl; l++)
        for (int b = 0; b < c.nb; b++) {
            att[b][l] = time_attention(&c, c.backends[b], c.lengths[l]);
            if (c.encoder) enc[b][l] = time_encoder(&c, c.backends[b], c.lengths[l]);
            if (lra_dist_rank() == 0) fprintf(stderr, "speed: %s T=%d done\n", c.backends[b], c.lengths[l]);
        }
    print_table("## Attention layer alone, forward+backward: calls/s (speed-up over full)", &c, att, 0);
    print_gflops(&c, att, peak, peak_bf16, peak, 0);
    print_table("## Attention layer alone: planned memory, MB (inputs, gradients, workspace)", &c, att, 1);
    if (c.encoder) {
        print_table("## Encoder training step: steps/s (speed-up over full)", &c, enc, 0);
        print_table("## Encoder training step: planned memory, MB (arenas and workspaces)", &c, enc, 1);
        print_gflops(&c, enc, peak, peak_bf16, c.precision == LRA_BF16 && peak_bf16 > 0 ? peak_bf16 : peak, 1);
    }
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "schema_version", LRA_REPORT_SCHEMA_VERSION);
    cJSON_AddStringToObject(j, "kind", "speed");
    cJSON *cfg = cJSON_AddObjectToObject(j, "config");
    cJSON_AddNumberToObject(cfg, "batch", c.batch);
    cJSON_AddNumberToObject(cfg, "heads", c.heads);
    cJSON_AddNumberToObject(cfg, "head_size", c.hs);
    cJSON_AddNumberToObject(cfg, "encoder_layers", c.layers);
    cJSON_AddNumberToObject(cfg, "warmup", c.warmup);
    cJSON_AddNumberToObject(cfg, "repeats", c.repeats);
    cJSON_AddNumberToObject(cfg, "mem_limit_bytes", c.mem_limit);
    cJSON_AddNumberToObject(cfg, "grad_shards", c.shards);
    cJSON_AddItemToObject(cfg, "parallel", lra_dist_json());
    cJSON_AddStringToObject(cfg, "attn_opt", c.attn_opts);
    cJSON_AddStringToObject(cfg, "precision", lra_precision_name(c.precision));
    cJSON *entries = cJSON_AddArrayToObject(j, "entries");
    for (int b = 0; b < c.nb; b++)
        for (int l = 0; l < c.nl; l++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "backend", c.backends[b]);
            cJSON_AddNumberToObject(e, "length", c.lengths[l]);
            cJSON_AddItemToObject(e, "attention", measure_json(&att[b][l], &c, c.lengths[l], 0));
            if (c.encoder) cJSON_AddItemToObject(e, "encoder_step", measure_json(&enc[b][l], &c, c.lengths[l], 1));
            cJSON_AddItemToArray(entries, e);
        }
    cJSON_AddItemToObject(j, "machine", lra_machine_json(c.threads));
    cJSON_AddNumberToObject(j, "machine_peak_gflops", peak);
    cJSON_AddNumberToObject(j, "machine_peak_bf16_gflops", peak_bf16);
    cJSON_AddStringToObject(j, "machine_peak_bf16_kernel", lra_tile_isa_name(bf16_kernel));
    cJSON_AddStringToObject(j, "git_commit", lra_git_commit());
    char when[32], path[4200], written[4200];
    lra_iso_time((long)time(NULL), when);
    cJSON_AddStringToObject(j, "finished_at", when);
    if (c.out[0]) snprintf(path, sizeof path, "%s", c.out);
    else { /* the time without colons, which some file systems and tools refuse: 20261202T204512Z */
        char stamp[32];
        size_t k = 0;
        for (const char *c = when; *c && k < sizeof stamp - 1; c++)
            if (*c != ':' && *c != '-') stamp[k++] = *c;
        stamp[k] = '\0';
        snprintf(path, sizeof path, "results/speed/speed-%s.json", stamp);
    }
    int rc = 0;
    if (lra_dist_rank() != 0) { /* one writer */
        cJSON_Delete(j);
        return 0;
    }
    /* never over another's report (--overwrite replaces only the --out it names): one that took
     * the name while this run measured keeps it */
    snprintf(written, sizeof written, "%s", path);
    lra_status st = c.overwrite && c.out[0] ? lra_write_json_atomic(path, j, err)
                                            : lra_write_json_new(path, j, written, sizeof written, err);
    if (st != LRA_OK) {
        fprintf(stderr, "lra-bench speed: %s\n", err);
        rc = 1;
    } else {
        if (strcmp(written, path)) fprintf(stderr, "lra-bench speed: %s is taken: this report is %s\n", path, written);
        printf("\nreport: %s\n", written);
    }
    cJSON_Delete(j);
    return rc;
}
