/* test_fetch.c - downloads against a real HTTP server this test starts on 127.0.0.1 (a forked
 * process speaking HTTP/1.1 over a socket): a complete download, resume after a cut connection,
 * a server that ignores Range, checksum mismatch (nothing left that looks complete), 404 and 403,
 * file:// URLs, MD5 test vectors, and `lra-bench fetch` extracting a task's part of a release-like
 * archive that a ListOps run then reads. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/md5.h"
#include "../datasets/fetch.h"
#include "tests.h"

enum { BODY = 300000 };
static unsigned char body[BODY];

static void make_body(void) {
    for (int i = 0; i < BODY; i++) body[i] = (unsigned char)(i * 131 + (i >> 9));
}

/* Serves: /data.bin (Range-aware), /cut.bin (the first answer stops halfway through the body,
 * later ranged requests complete it), /norange.bin (always the whole body, 200), /forbidden
 * (403), anything else 404; /file serves the file named by the FILE query (for the CLI test). */
static void serve(int ls, const char *file) {
    int cut_done = 0;
    for (;;) {
        int c = accept(ls, NULL, NULL);
        if (c < 0) continue;
        char req[4096];
        size_t n = 0;
        while (n < sizeof req - 1 && !memmem(req, n, "\r\n\r\n", 4)) {
            ssize_t k = read(c, req + n, sizeof req - 1 - n);
            if (k <= 0) break;
            n += (size_t)k;
        }
        req[n] = '\0';
        char path[256] = "";
        sscanf(req, "GET %255s", path);
        long from = 0;
        const char *rg = strcasestr(req, "\r\nRange: bytes=");
        if (rg) from = strtol(rg + 15, NULL, 10);
        const unsigned char *data = body;
        long size = BODY;
        static unsigned char filebuf[1 << 22];
        if (strcmp(path, "/file") == 0 && file) {
            FILE *f = fopen(file, "rb");
            size = f ? (long)fread(filebuf, 1, sizeof filebuf, f) : 0;
            if (f) fclose(f);
            data = filebuf;
        }
        char head[512];
        int code = 200;
        if (strcmp(path, "/forbidden") == 0) code = 403;
        else if (strcmp(path, "/data.bin") && strcmp(path, "/cut.bin") && strcmp(path, "/norange.bin") &&
                 strcmp(path, "/file"))
            code = 404;
        if (code != 200) {
            const char *msg = code == 403 ? "<Error>AccessDenied</Error>" : "<Error>NoSuchKey</Error>";
            int hl = snprintf(head, sizeof head, "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                              code, strlen(msg), msg);
            (void)!write(c, head, (size_t)hl);
            close(c);
            continue;
        }
        if (strcmp(path, "/norange.bin") == 0) from = 0;
        int hl = from ? snprintf(head, sizeof head,
                                 "HTTP/1.1 206 Partial\r\nContent-Length: %ld\r\nContent-Range: bytes %ld-%ld/%ld\r\n"
                                 "Connection: close\r\n\r\n", size - from, from, size - 1, size)
                      : snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %ld\r\nConnection: close\r\n\r\n", size);
        (void)!write(c, head, (size_t)hl);
        long end = size;
        if (strcmp(path, "/cut.bin") == 0 && !cut_done) { end = size / 2; cut_done = 1; }
        for (long at = from; at < end;) {
            ssize_t k = write(c, data + at, (size_t)(end - at < 65536 ? end - at : 65536));
            if (k <= 0) break;
            at += k;
        }
        close(c);
    }
}

static pid_t start_server(int *port, const char *file) {
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = 0};
    ck_assert(bind(ls, (struct sockaddr *)&a, sizeof a) == 0);
    ck_assert(listen(ls, 8) == 0);
    socklen_t len = sizeof a;
    getsockname(ls, (struct sockaddr *)&a, &len);
    *port = ntohs(a.sin_port);
    pid_t pid = fork();
    if (pid == 0) {
        serve(ls, file);
        _exit(0);
    }
    close(ls);
    return pid;
}

static void stop_server(pid_t pid) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static int exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

static void body_md5(char hex[33]) {
    lra_md5 m;
    lra_md5_init(&m);
    lra_md5_update(&m, body, BODY);
    lra_md5_final_hex(&m, hex);
}

START_TEST(test_md5_vectors) {
    static const char *const in[] = {"", "a", "abc", "message digest", "abcdefghijklmnopqrstuvwxyz",
                                     "12345678901234567890123456789012345678901234567890123456789012345678901234567890"};
    static const char *const out[] = {"d41d8cd98f00b204e9800998ecf8427e", "0cc175b9c0f1b6a831c399e269772661",
                                      "900150983cd24fb0d6963f7d28e17f72", "f96b697d7cb7938d525a2f31aaf161d0",
                                      "c3fcd3d76192e4007dfb496cca67e13b", "57edf4a22be3c955ac49da2e2107b67a"}; /* RFC 1321 */
    for (int i = 0; i < 6; i++) {
        lra_md5 m;
        char hex[33];
        lra_md5_init(&m);
        for (const char *p = in[i]; *p; p++) lra_md5_update(&m, p, 1); /* byte by byte: the buffering */
        lra_md5_final_hex(&m, hex);
        ck_assert_str_eq(hex, out[i]);
    }
}
END_TEST

START_TEST(test_fetch_http) {
    make_body();
    int port;
    pid_t srv = start_server(&port, NULL);
    const char *dir = t_tmpdir();
    char url[700], dest[512], part[600], err[LRA_ERR_LEN], md5[33], got[33];
    body_md5(md5);
    /* complete, verified */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/data.bin", port);
    snprintf(dest, sizeof dest, "%s/a.bin", dir);
    snprintf(part, sizeof part, "%s.part", dest);
    lra_fetch_req r = {url, dest, md5, NULL, 0, 10};
    ck_assert_msg(lra_fetch(&r, err) == LRA_OK, "%s", err);
    ck_assert(lra_file_digests(dest, got, NULL, err) == LRA_OK);
    ck_assert_str_eq(got, md5);
    ck_assert(!exists(part));
    /* a cut connection: an error, the half kept as .part (never under the final name); the
     * next call resumes with Range and completes the same bytes */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/cut.bin", port);
    snprintf(dest, sizeof dest, "%s/b.bin", dir);
    snprintf(part, sizeof part, "%s.part", dest);
    r = (lra_fetch_req){url, dest, md5, NULL, 0, 10};
    ck_assert_int_eq(lra_fetch(&r, err), LRA_ERR_NET);
    ck_assert_msg(strstr(err, "resumes"), "%s", err);
    ck_assert(!exists(dest) && exists(part));
    ck_assert_msg(lra_fetch(&r, err) == LRA_OK, "%s", err);
    ck_assert(lra_file_digests(dest, got, NULL, err) == LRA_OK);
    ck_assert_str_eq(got, md5);
    ck_assert(!exists(part));
    /* a server that ignores Range: the partial file is not appended to, the download restarts */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/norange.bin", port);
    snprintf(dest, sizeof dest, "%s/c.bin", dir);
    snprintf(part, sizeof part, "%s.part", dest);
    t_write_file(part, body, 1000);
    r = (lra_fetch_req){url, dest, md5, NULL, 0, 10};
    ck_assert_int_eq(lra_fetch(&r, err), LRA_ERR_NET);
    ck_assert(!exists(part) && !exists(dest));
    ck_assert_msg(lra_fetch(&r, err) == LRA_OK, "%s", err);
    /* checksum mismatch: rejected, nothing left that looks complete (or resumable) */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/data.bin", port);
    snprintf(dest, sizeof dest, "%s/d.bin", dir);
    snprintf(part, sizeof part, "%s.part", dest);
    r = (lra_fetch_req){url, dest, "00000000000000000000000000000000", NULL, 0, 10};
    ck_assert_int_eq(lra_fetch(&r, err), LRA_ERR_CHECKSUM);
    ck_assert_msg(strstr(err, md5) && strstr(err, "00000000"), "%s", err);
    ck_assert(!exists(dest) && !exists(part));
    /* 404 and 403: clear messages, no file */
    static const struct { const char *path, *expect; } bad[] = {{"/missing", "404"}, {"/forbidden", "403"}};
    for (int i = 0; i < 2; i++) {
        snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, bad[i].path);
        snprintf(dest, sizeof dest, "%s/e%d.bin", dir, i);
        snprintf(part, sizeof part, "%s.part", dest);
        r = (lra_fetch_req){url, dest, NULL, NULL, 0, 10};
        ck_assert_int_eq(lra_fetch(&r, err), LRA_ERR_NET);
        ck_assert_msg(strstr(err, bad[i].expect) && strstr(err, "--url"), "%s", err);
        ck_assert(!exists(dest) && !exists(part));
    }
    stop_server(srv);
    /* file:// (a local copy or a mirror on disk) */
    snprintf(dest, sizeof dest, "%s/a.bin", dir);
    snprintf(url, sizeof url, "file://%s", dest);
    char dest2[512];
    snprintf(dest2, sizeof dest2, "%s/f.bin", dir);
    r = (lra_fetch_req){url, dest2, md5, NULL, 0, 10};
    ck_assert_msg(lra_fetch(&r, err) == LRA_OK, "%s", err);
}
END_TEST

/* `lra-bench fetch` from the local server: the IMDB source keeps its official md5 (a fixture is
 * rejected), and a release-like archive has ListOps' part extracted, nested layout and all,
 * where a run finds it. */
START_TEST(test_fetch_cli) {
    const char *src = t_tmpdir(), *data = t_tmpdir();
    char msg[8192], tsv[3][4096], arch[512];
    int rc = t_run(msg, sizeof msg, "%s generate --task=listops --out=%s --sizes=60,30,30", t_bench(), src);
    ck_assert_msg(rc == 0, "%s", msg);
    /* the release's nested folder, a member no task needs, and the top-level duplicate folder */
    const char *names[7] = {"lra_release/lra_release/listops-1000/basic_train.tsv",
                            "lra_release/lra_release/listops-1000/basic_val.tsv",
                            "lra_release/lra_release/listops-1000/basic_test.tsv", "lra_release/lra_release/other/x.txt",
                            "lra_release/listops-1000/basic_train.tsv", "lra_release/listops-1000/basic_val.tsv",
                            "lra_release/listops-1000/basic_test.tsv"};
    static char bodies[3][1 << 21];
    size_t lens[7];
    const char *bp[7];
    for (int s = 0; s < 3; s++) {
        static const char *const split[3] = {"train", "val", "test"};
        snprintf(tsv[s], sizeof tsv[s], "%s/basic_%s.tsv", src, split[s]);
        FILE *f = fopen(tsv[s], "rb");
        lens[s] = fread(bodies[s], 1, sizeof bodies[s], f);
        ck_assert(feof(f));
        fclose(f);
        bp[s] = bodies[s];
    }
    bp[3] = "not needed";
    lens[3] = 10;
    for (int s = 4; s < 7; s++) { bp[s] = "a second copy"; lens[s] = 13; }
    snprintf(arch, sizeof arch, "%s/release.tar.gz", src);
    t_tar_gz(arch, 7, names, bp, lens);
    int port;
    pid_t srv = start_server(&port, arch);
    rc = t_run(msg, sizeof msg, "%s fetch --task=listops --url=http://127.0.0.1:%d/file --data-dir=%s", t_bench(), port, data);
    ck_assert_msg(rc == 0 && strstr(msg, "3 files") && strstr(msg, "3 duplicate copies"), "exit %d: %s", rc, msg);
    rc = t_run(msg, sizeof msg, "test ! -e %s/lra_release/listops-1000 && test ! -e %s/lra_release/lra_release/other && %s --task=listops --profile=ci --dataset= --steps=2 "
               "--data-dir=%s --out=%s/r.json && grep -c '\"examples\":\\s*30' %s/r.json",
               data, data, t_bench(), data, data, data);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, msg);
    /* the IMDB source verifies the official md5: this archive is not it */
    rc = t_run(msg, sizeof msg, "%s fetch --task=text --url=http://127.0.0.1:%d/file --data-dir=%s", t_bench(), port, data);
    ck_assert_msg(rc == 1 && strstr(msg, "7c2ac02c03563afcf9b574c7e56c153a"), "exit %d: %s", rc, msg);
    rc = t_run(msg, sizeof msg, "ls %s/aclImdb_v1.tar.gz*", data);
    ck_assert_msg(rc != 0, "a rejected download left %s", msg);
    stop_server(srv);
    /* offline (a closed port): nothing downloaded is said, the md5 is not claimed, no .part stays */
    rc = t_run(msg, sizeof msg, "%s fetch --task=text --url=http://127.0.0.1:%d/file --data-dir=%s; ls %s", t_bench(), port,
               data, data);
    ck_assert_msg(strstr(msg, "nothing was downloaded") && !strstr(msg, "verified") && !strstr(msg, ".part"), "%s", msg);
    rc = t_run(msg, sizeof msg, "%s fetch --task=nope", t_bench());
    ck_assert_msg(rc == 2 && strstr(msg, "nope"), "%s", msg);
    rc = t_run(msg, sizeof msg, "%s fetch", t_bench());
    ck_assert_int_eq(rc, 2);
}
END_TEST

Suite *fetch_suite(void) {
    Suite *s = suite_create("fetch");
    TCase *tc = tcase_create("download");
    tcase_set_timeout(tc, T_HANG_GUARD_S);
    tcase_add_test(tc, test_md5_vectors);
    tcase_add_test(tc, test_fetch_http);
    tcase_add_test(tc, test_fetch_cli);
    suite_add_tcase(s, tc);
    return s;
}
