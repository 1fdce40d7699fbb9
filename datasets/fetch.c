/* fetch.c - see fetch.h. */
#define _POSIX_C_SOURCE 200809L
#include "fetch.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "../common/md5.h"
#include "../common/sha256.h"

lra_status lra_file_digests(const char *path, char md5[33], char sha[65], char *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return lra_fail(err, LRA_ERR_IO, "%s: %s", path, strerror(errno));
    lra_md5 m;
    lra_sha256 s;
    lra_md5_init(&m);
    lra_sha256_init(&s);
    static _Thread_local unsigned char buf[1 << 16];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, f)) > 0) {
        if (md5) lra_md5_update(&m, buf, k);
        if (sha) lra_sha256_update(&s, buf, k);
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) return lra_fail(err, LRA_ERR_IO, "%s: read error", path);
    if (md5) lra_md5_final_hex(&m, md5);
    if (sha) lra_sha256_final_hex(&s, sha);
    return LRA_OK;
}

static lra_status verify(const lra_fetch_req *r, const char *path, char *err) {
    if (!r->md5 && !r->sha256) return LRA_OK;
    char md5[33], sha[65];
    lra_status st = lra_file_digests(path, r->md5 ? md5 : NULL, r->sha256 ? sha : NULL, err);
    if (st != LRA_OK) return st;
    if (r->md5 && strcmp(md5, r->md5) != 0)
        return lra_fail(err, LRA_ERR_CHECKSUM, "%s: md5 %s, expected %s (from %s)", path, md5, r->md5, r->url);
    if (r->sha256 && strcmp(sha, r->sha256) != 0)
        return lra_fail(err, LRA_ERR_CHECKSUM, "%s: sha256 %s, expected %s (from %s)", path, sha, r->sha256, r->url);
    return LRA_OK;
}

typedef struct {
    const char *name;
    double t0, last;
    int shown;
} progress;

static int on_progress(void *user, curl_off_t total, curl_off_t now, curl_off_t ut, curl_off_t un) {
    (void)ut; (void)un;
    progress *p = user;
    double t = lra_now();
    if (t - p->last < 0.5 && !(total > 0 && now == total)) return 0;
    p->last = t;
    p->shown = 1;
    const double mb = (double)now / 1048576.0, rate = mb / (t - p->t0 > 1e-3 ? t - p->t0 : 1e-3);
    if (total > 0) {
        const int width = 30, fill = (int)((double)now / (double)total * width);
        char bar[32];
        for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
        bar[width] = '\0';
        const double eta = rate > 0 ? ((double)(total - now) / 1048576.0) / rate : 0;
        fprintf(stderr, "\r%s [%s] %5.1f%% %.1f/%.1f MB %.1f MB/s ETA %.0fs   ", p->name, bar,
                100.0 * (double)now / (double)total, mb, (double)total / 1048576.0, rate, eta);
    } else {
        fprintf(stderr, "\r%s %.1f MB %.1f MB/s   ", p->name, mb, rate);
    }
    return 0;
}

static const char *http_advice(long code) {
    switch (code) {
    case 403: return "the server refused access (HTTP 403). The LRA bucket has answered 403 to some users: download the "
                     "file another way (a browser, gsutil, a mirror) into the data directory, or pass --url=MIRROR "
                     "(file:///path/to/copy works)";
    case 404: return "not found (HTTP 404): the file moved; pass --url=MIRROR";
    case 416: return "the server cannot resume (HTTP 416): delete the .part file and retry";
    default: return "the server answered with an error";
    }
}

lra_status lra_fetch(const lra_fetch_req *r, char *err) {
    struct stat sb;
    if (stat(r->dest, &sb) == 0) return verify(r, r->dest, err);
    char part[4200];
    snprintf(part, sizeof part, "%s.part", r->dest);
    curl_off_t have = stat(part, &sb) == 0 ? (curl_off_t)sb.st_size : 0;
    FILE *f = fopen(part, have ? "ab" : "wb");
    if (!f) return lra_fail(err, LRA_ERR_IO, "%s: %s", part, strerror(errno));
    static int inited;
    if (!inited) { curl_global_init(CURL_GLOBAL_DEFAULT); inited = 1; }
    CURL *c = curl_easy_init();
    if (!c) { fclose(f); return lra_fail(err, LRA_ERR_NOMEM, "libcurl: cannot start a transfer"); }
    char cerr[CURL_ERROR_SIZE] = "";
    const char *base = strrchr(r->dest, '/');
    progress pg = {base ? base + 1 : r->dest, lra_now(), 0, 0};
    curl_easy_setopt(c, CURLOPT_URL, r->url);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "lra-bench/1");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L); /* no byte for timeout_s: give up, keep .part */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, r->timeout_s > 0 ? r->timeout_s : 60L);
    if (have) curl_easy_setopt(c, CURLOPT_RESUME_FROM_LARGE, have);
    if (r->progress) {
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, &pg);
    }
    CURLcode res = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    if (pg.shown) fprintf(stderr, "\n");
    /* on disk before it can be renamed complete: a crash must not leave a short file under the final name */
    int werr = fflush(f) != 0 || fsync(fileno(f)) != 0;
    werr |= fclose(f) != 0;
    lra_status st = LRA_OK;
    if (code == 416 && have && (r->md5 || r->sha256) && verify(r, part, err) == LRA_OK) {
        /* nothing left to fetch: the previous attempt got every byte and stopped before the rename */
    } else if (code >= 400) {
        /* an error page is not data: nothing of it may stay in .part (a resumed file stays) */
        if (!have) remove(part);
        st = lra_fail(err, LRA_ERR_NET, "%s: %s", r->url, http_advice(code));
    } else if (res == CURLE_RANGE_ERROR || (have && code == 200)) {
        /* the server ignored or refused the range: start over rather than append a second copy */
        remove(part);
        st = lra_fail(err, LRA_ERR_NET, "%s: the server cannot resume this download; run the command again to "
                      "start it from the beginning", r->url);
    } else if (res != CURLE_OK && stat(part, &sb) == 0 && sb.st_size == 0) {
        remove(part); /* nothing arrived (offline, no such host): nothing to resume from */
        st = lra_fail(err, LRA_ERR_NET, "%s: %s (%s); nothing was downloaded", r->url, curl_easy_strerror(res), cerr);
    } else if (res != CURLE_OK) {
        st = lra_fail(err, LRA_ERR_NET, "%s: %s (%s); the partial download is kept in %s and resumes next time",
                      r->url, curl_easy_strerror(res), cerr, part);
    } else if (werr) {
        st = lra_fail(err, LRA_ERR_IO, "%s: write failed (disk full?)", part);
    }
    if (st != LRA_OK) return st;
    if (code != 416 && (st = verify(r, part, err)) != LRA_OK) {
        remove(part); /* wrong bytes: never resume from them */
        return st;
    }
    if (rename(part, r->dest) != 0) return lra_fail(err, LRA_ERR_IO, "rename %s -> %s: %s", part, r->dest, strerror(errno));
    return LRA_OK;
}
