/*
 * milter_probe.c - a test driver for the milter client (scan/milter_io.h) on a real event loop;
 * built by CMake as milter_probe, never installed. tests/integration/test_milter_client.py runs
 * it against real milters.
 *
 * Usage: milter_probe TARGET TIMEOUT STEP...
 *   TARGET   HOST:PORT (an IPv4 address) or unix:PATH
 *   TIMEOUT  seconds per stage
 *   STEP     connect NAME IP PORT | helo NAME | mail ADDR [ARG,ARG...|-] | rcpt ADDR | message FILE |
 *            abort | macro STAGE NAME VALUE (STAGE: connect helo mail rcpt data eoh eom; for the later steps)
 * Prints one line per step: "STEP: ACTION[ LINE]" (the open is step "open", followed by "negotiated
 * actions=0xA proto=0xP" when it succeeded); after a message its
 * modifications when it was accepted ("addrcpt ADDR ARGS", "delrcpt ADDR", "chgfrom ADDR", "quarantine REASON",
 * "header OP INDEX NAME") and the modified message between "--- message" and "--- end". Bare LF in
 * FILE becomes CRLF. Exit status 0 when every step ran, 2 on a usage error.
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scan/milter_io.h"

enum { MS_CONNECT, MS_HELO, MS_MAIL, MS_RCPT, MS_DATA, MS_EOH, MS_EOM, MS_N };
static const char *const stage_names[MS_N] = {"connect", "helo", "mail", "rcpt", "data", "eoh", "eom"};

typedef struct {
    struct event_base *base;
    milter_conn *m;
    char **argv;
    int argc, i;
    const char *step;
    milter_macro mac[MS_N][16];
    size_t n_mac[MS_N];
    strbuf msg;
    strvec args;
    int64_t t0;
} probe;

static void next_step(probe *p);

/* on_reply - print the answer to a step, then run the next one. */
static void on_reply(void *arg, const milter_reply *r)
{
    probe *p = arg;
    printf("%s: %s", p->step, milter_action_name(r->action));
    if (r->line) printf(" %s", r->line);
    if (r->reason) printf(" (%s)", r->reason);
    printf(" [%lld ms]\n", (long long)(now_mono_ms() - p->t0));
    if (!strcmp(p->step, "open") && r->action == MILTER_CONTINUE) {
        uint32_t act, proto;
        milter_conn_negotiated(p->m, &act, &proto);
        printf("negotiated actions=0x%x proto=0x%x\n", act, proto);
    }
    const milter_mods *mods = r->mods;
    if (mods && (r->action == MILTER_CONTINUE || r->action == MILTER_ACCEPT || r->action == MILTER_QUARANTINE)) {
        for (size_t i = 0; i < mods->add_rcpts.n; i++) printf("addrcpt %s %s\n", mods->add_rcpts.v[i], mods->add_rcpt_args.v[i]);
        for (size_t i = 0; i < mods->del_rcpts.n; i++) printf("delrcpt %s\n", mods->del_rcpts.v[i]);
        if (mods->chgfrom) printf("chgfrom %s %s\n", mods->chgfrom, mods->chgfrom_args ? mods->chgfrom_args : "");
        if (mods->quarantine) printf("quarantine %s\n", mods->quarantine);
        for (size_t i = 0; i < mods->n_hdr; i++)
            printf("header %s %u %s\n", mods->hdr[i].op == MILTER_HDR_ADD ? "add" : mods->hdr[i].op == MILTER_HDR_INSERT ? "insert" : "change",
                   mods->hdr[i].index, mods->hdr[i].name);
        strbuf out;
        sb_init(&out);
        milter_mods_apply(p->msg.data, p->msg.len, mods, &out);
        printf("--- message\n%s--- end\n", out.data);
        sb_free(&out);
    }
    fflush(stdout);
    next_step(p);
}

/* need - the step's arguments, or exit 2. */
static char **need(probe *p, int n)
{
    if (p->i + n > p->argc) {
        fprintf(stderr, "milter_probe: %s needs %d arguments\n", p->step, n);
        exit(2);
    }
    char **a = p->argv + p->i;
    p->i += n;
    return a;
}

/* read_message - FILE with bare LF made CRLF. */
static void read_message(probe *p, const char *path)
{
    strbuf raw;
    sb_init(&raw);
    if (file_read(path, &raw) < 0) {
        perror(path);
        exit(2);
    }
    sb_reset(&p->msg);
    for (size_t i = 0; i < raw.len; i++) {
        if (raw.data[i] == '\n' && (i == 0 || raw.data[i - 1] != '\r')) sb_putc(&p->msg, '\r');
        sb_putc(&p->msg, raw.data[i]);
    }
    sb_free(&raw);
}

/* next_step - start the next step, or close and stop the loop after the last. */
static void next_step(probe *p)
{
    for (;;) {
        if (p->i >= p->argc) {
            milter_conn_close(p->m);
            p->m = NULL;
            event_base_loopbreak(p->base);
            return;
        }
        p->step = p->argv[p->i++];
        p->t0 = now_mono_ms();
        if (!strcmp(p->step, "macro")) {
            char **a = need(p, 3);
            int s = 0;
            while (s < MS_N && strcmp(stage_names[s], a[0])) s++;
            if (s == MS_N || p->n_mac[s] == 16) exit(2);
            p->mac[s][p->n_mac[s]++] = (milter_macro){a[1], a[2]};
            continue;
        }
        if (!strcmp(p->step, "abort")) {
            milter_conn_abort(p->m);
            printf("abort: done\n");
            continue;
        }
        break;
    }
    const char *s = p->step;
    if (!strcmp(s, "connect")) {
        char **a = need(p, 3);
        milter_conn_connect(p->m, a[0], a[1], (unsigned)atoi(a[2]), p->mac[MS_CONNECT], p->n_mac[MS_CONNECT], on_reply, p);
    } else if (!strcmp(s, "helo")) {
        milter_conn_helo(p->m, need(p, 1)[0], p->mac[MS_HELO], p->n_mac[MS_HELO], on_reply, p);
    } else if (!strcmp(s, "mail")) {
        char **a = need(p, 2);
        sv_free(&p->args);
        if (strcmp(a[1], "-")) {
            char *copy = xstrdup(a[1]), *save = NULL;
            for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) sv_push(&p->args, t);
            free(copy);
        }
        milter_conn_mail(p->m, a[0], (const char *const *)p->args.v, p->args.n, p->mac[MS_MAIL], p->n_mac[MS_MAIL],
                         on_reply, p);
    } else if (!strcmp(s, "rcpt")) {
        milter_conn_rcpt(p->m, need(p, 1)[0], NULL, 0, p->mac[MS_RCPT], p->n_mac[MS_RCPT], on_reply, p);
    } else if (!strcmp(s, "message")) {
        read_message(p, need(p, 1)[0]);
        milter_conn_message(p->m, p->msg.data, p->msg.len, p->mac[MS_DATA], p->n_mac[MS_DATA], p->mac[MS_EOH],
                            p->n_mac[MS_EOH], p->mac[MS_EOM], p->n_mac[MS_EOM], on_reply, p);
    } else {
        fprintf(stderr, "milter_probe: unknown step %s\n", s);
        exit(2);
    }
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: milter_probe HOST:PORT|unix:PATH TIMEOUT STEP...\n");
        return 2;
    }
    probe p = {.argv = argv, .argc = argc, .i = 3, .step = "open"};
    sb_init(&p.msg);
    scan_target t = {.kind = SCAN_MILTER, .timeout = (unsigned)atoi(argv[2])};
    char *host = NULL;
    if (!strncmp(argv[1], "unix:", 5)) {
        t.unix_path = argv[1] + 5;
    } else {
        host = xstrdup(argv[1]);
        char *colon = strrchr(host, ':');
        if (!colon) return 2;
        *colon = '\0';
        t.host = host;
        t.port = (unsigned)atoi(colon + 1);
    }
    p.base = event_base_new();
    p.t0 = now_mono_ms();
    p.m = milter_conn_open(p.base, &t, "probe", on_reply, &p);
    event_base_dispatch(p.base);
    if (p.m) milter_conn_close(p.m);
    event_base_free(p.base);
    sb_free(&p.msg);
    sv_free(&p.args);
    free(host);
    return 0;
}
