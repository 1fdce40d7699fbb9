/* sysinfo.c - see sysinfo.h. */
#define _POSIX_C_SOURCE 200809L
#include "sysinfo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>

#include "../../attention/tile_bf16.h"
#include "../encoder/gemm.h"

#ifndef LRA_GIT_COMMIT
#define LRA_GIT_COMMIT "unknown"
#endif
#ifndef LRA_CFLAGS
#define LRA_CFLAGS "unknown"
#endif

size_t lra_peak_rss_bytes(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %lu kB", &kb) == 1) break;
    if (f) fclose(f);
    if (kb) return (size_t)kb * 1024;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (size_t)ru.ru_maxrss * 1024;
}

int lra_peak_rss_reset(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return 0;
    const int ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok;
}

const char *lra_git_commit(void) { return LRA_GIT_COMMIT; }

void lra_iso_time(long t, char *buf) {
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void cpu_model(char *buf, size_t n) {
    snprintf(buf, n, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *c = strchr(line, ':');
            if (c) {
                c++;
                while (*c == ' ') c++;
                c[strcspn(c, "\n")] = '\0';
                snprintf(buf, n, "%s", c);
            }
            break;
        }
    }
    fclose(f);
}

cJSON *lra_machine_json(int threads) {
    cJSON *j = cJSON_CreateObject();
    char cpu[256];
    cpu_model(cpu, sizeof cpu);
    cJSON_AddStringToObject(j, "cpu", cpu);
    cJSON_AddNumberToObject(j, "cores", (double)sysconf(_SC_NPROCESSORS_ONLN));
    cJSON_AddNumberToObject(j, "threads", threads);
#ifdef __VERSION__
    cJSON_AddStringToObject(j, "compiler", "gcc " __VERSION__);
#endif
    cJSON_AddStringToObject(j, "cflags", LRA_CFLAGS);
    cJSON_AddStringToObject(j, "openblas_config", openblas_get_config());
    cJSON_AddStringToObject(j, "openblas_core", openblas_get_corename());
    cJSON_AddStringToObject(j, "onednn_isa", lra_gemm_isa());
    /* whether the attention backends' bf16 kernels run here (else a bf16 run's attention is fp32) */
    const lra_tile_isa bf16_isa = lra_tile_bf16_isa();
    cJSON_AddBoolToObject(j, "attention_bf16_kernels", bf16_isa != LRA_TILE_NONE);
    cJSON_AddStringToObject(j, "attention_bf16_isa", lra_tile_isa_name(bf16_isa)); /* amx_bf16, avx512_bf16, none */
    const char *ct = getenv("OPENBLAS_CORETYPE");
    if (ct) cJSON_AddStringToObject(j, "OPENBLAS_CORETYPE", ct);
    else cJSON_AddNullToObject(j, "OPENBLAS_CORETYPE");
    return j;
}
