/* stop.c - see lra.h ("stopping on SIGINT / SIGTERM"). */
#define _POSIX_C_SOURCE 200809L
#include "lra.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop_signal;
static struct sigaction old_int, old_term;
static int installed; /* nesting depth: a run that generates its data installs once */

static void on_stop(int sig) {
    if (stop_signal) _exit(128 + sig);
    stop_signal = sig;
    static const char msg[] = "\nlra-bench: stopping at the next safe point (a second Ctrl-C exits at once)\n";
    ssize_t ignored = write(2, msg, sizeof msg - 1); /* async-signal-safe, unlike stdio */
    (void)ignored;
}

void lra_stop_install(void) {
    if (installed++) return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    stop_signal = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
}

void lra_stop_restore(void) {
    if (installed == 0 || --installed) return;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
}

int lra_stop_requested(void) { return stop_signal; }
