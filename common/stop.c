/* stop.c - see lra.h ("stopping on SIGINT / SIGTERM").
 *
 * No thread that computes ever runs a signal handler: SIGINT and SIGTERM are blocked in every
 * thread and taken by one thread that only waits for them (sigwait). oneDNN 2.x's JIT f32 matrix
 * product points rsp into the heap while it runs (oneDNN issue 4845, fixed in 3.11, after
 * Debian 12's 2.6.3), so a signal frame pushed on that "stack" overwrote malloc's bookkeeping: one
 * Ctrl-C in about sixty aborted the run with "corrupted size vs. prev_size". The block holds for
 * threads started after lra_stop_init() (they inherit the calling thread's mask), which is why
 * main() calls it before anything starts one (OpenMP, MPI). */
#define _GNU_SOURCE
#include "lra.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

static atomic_int stop_signal;     /* 0, or the first signal while a run listens */
static atomic_int listening;       /* lra_stop_install() nesting depth */
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static struct sigaction old_int, old_term;

static void stop_set(sigset_t *set) {
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
}

/* A signal while a run listens: the first asks it to stop, a second exits at once. Called on the
 * watcher thread, or in a handler on a thread started before lra_stop_init(): async-signal-safe. */
static void on_stop(int sig) {
    int none = 0;
    if (!atomic_compare_exchange_strong(&stop_signal, &none, sig)) _exit(128 + sig);
    static const char msg[] = "\nlra-bench: stopping at the next safe point (a second Ctrl-C exits at once)\n";
    ssize_t ignored = write(2, msg, sizeof msg - 1); /* async-signal-safe, unlike stdio */
    (void)ignored;
}

/* The watcher. Outside a run the signal does what it would have done unwatched: with the
 * default action it ends the process, killed by that signal (an ignored one never arrives). */
static void *watch(void *unused) {
    (void)unused;
    sigset_t set;
    stop_set(&set);
    for (;;) {
        int sig;
        if (sigwait(&set, &sig) != 0) continue;
        if (atomic_load(&listening)) {
            on_stop(sig);
            continue;
        }
        struct sigaction now;
        if (sigaction(sig, NULL, &now) == 0 && now.sa_handler == SIG_IGN) continue; /* ignored since it was sent */
        sigset_t one;
        sigemptyset(&one);
        sigaddset(&one, sig);
        signal(sig, SIG_DFL);
        pthread_sigmask(SIG_UNBLOCK, &one, NULL);
        raise(sig);
        _exit(128 + sig); /* not reached: the default action ends the process */
    }
    return NULL;
}

static void start_watcher(void) {
    sigset_t set;
    stop_set(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    pthread_attr_t attr;
    pthread_t tid;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&tid, &attr, watch, NULL) != 0) /* then signals stay pending until exit */
        pthread_sigmask(SIG_UNBLOCK, &set, NULL);   /* and handlers run where they land, as before */
    pthread_attr_destroy(&attr);
}

void lra_stop_init(void) { pthread_once(&init_once, start_watcher); }

void lra_stop_install(void) {
    lra_stop_init();
    if (atomic_fetch_add(&listening, 1) > 0) return;
    atomic_store(&stop_signal, 0);
    /* a handler, though the signals are blocked: an ignored signal (a background job's SIGINT)
     * is dropped when sent, so a run that catches it must not leave it ignored */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
}

void lra_stop_restore(void) {
    if (atomic_load(&listening) == 0 || atomic_fetch_sub(&listening, 1) > 1) return;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
}

int lra_stop_requested(void) { return atomic_load(&stop_signal); }
