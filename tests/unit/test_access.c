/* test_access.c - the access tables of the SMTP server (src/policy/access.h): the probe string built
 * for each table (PORT_ACCESS, FROM_ACCESS, ORIG_SEND_ACCESS/SEND_ACCESS, ORIG_MAIL_ACCESS/
 * MAIL_ACCESS) and the verdict access_check makes of each kind of mapping result (as the reply line
 * verdict_reply writes for it). The tables
 * are a real mappings file (with an include) written to a temporary directory, read back and
 * parsed by mappings_parse; probes are built by the access_*_probe functions, so the saved-string
 * numbering the documentation promises ($2 = client IP in PORT_ACCESS, ...) is tested end to end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "rewrite/mapping.h"
#include "policy/access.h"

/* ---------------------------------------------------------------- probe strings */

static void test_port_probe(void **state)
{
    (void)state;
    access_conn c = {"127.0.0.3", 2025, "127.0.0.9", 41000, NULL};
    char *p = access_port_probe(&c);
    assert_string_equal(p, "TCP|127.0.0.3|2025|127.0.0.9|41000");
    free(p);
    access_conn v6 = {"2001:db8::1", 25, "::1", 65535, NULL};
    p = access_port_probe(&v6);
    assert_string_equal(p, "TCP|2001:db8::1|25|::1|65535");
    free(p);
}

static void test_from_probe(void **state)
{
    (void)state;
    access_conn c = {"192.0.2.10", 587, "198.51.100.7", 50123, NULL};
    char *p = access_from_probe(&c, "tcp_local", "alice@example.test", NULL);
    assert_string_equal(p, "TCP|192.0.2.10|587|198.51.100.7|50123|SMTP|MAIL|tcp_local|alice@example.test|");
    free(p);
    p = access_from_probe(&c, "tcp_auth", "alice@example.test", "alice@example.test");
    assert_string_equal(p,
                        "TCP|192.0.2.10|587|198.51.100.7|50123|SMTP|MAIL|tcp_auth|alice@example.test|alice@example.test");
    free(p);
    p = access_from_probe(&c, "tcp_local", "", NULL); /* MAIL FROM:<> */
    assert_string_equal(p, "TCP|192.0.2.10|587|198.51.100.7|50123|SMTP|MAIL|tcp_local||");
    free(p);
}

static void test_send_probe(void **state)
{
    (void)state;
    char *p = access_send_probe("tcp_local", "alice@example.test", "tcp_local", "bob@other.test");
    assert_string_equal(p, "tcp_local|alice@example.test|tcp_local|bob@other.test");
    free(p);
    p = access_send_probe("tcp_local", "", "l", "bob@example.test");
    assert_string_equal(p, "tcp_local||l|bob@example.test");
    free(p);
}

static void test_mail_probe(void **state)
{
    (void)state;
    access_conn c = {"127.0.0.1", 25, "127.0.0.1", 1234, NULL};
    char *p = access_mail_probe(&c, "tcp_local", "a@x.test", "l", "bob@example.test");
    assert_string_equal(p, "TCP|127.0.0.1|25|127.0.0.1|1234|SMTP|MAIL|tcp_local|a@x.test|l|bob@example.test");
    free(p);
    /* the claimed HELO name is the app-info's second part, as in Messaging Server ("SMTP/name") */
    access_conn h = {"127.0.0.1", 25, "127.0.0.1", 1234, "client|x.example"};
    p = access_mail_probe(&h, "tcp_local", "a@x.test", "l", "bob@example.test");
    assert_string_equal(p, "TCP|127.0.0.1|25|127.0.0.1|1234|SMTP/client_x.example|MAIL|tcp_local|a@x.test|l|bob@example.test");
    free(p);
    p = access_from_probe(&h, "tcp_local", "a@x.test", NULL);
    assert_string_equal(p, "TCP|127.0.0.1|25|127.0.0.1|1234|SMTP/client_x.example|MAIL|tcp_local|a@x.test|");
    free(p);
}

/* ---------------------------------------------------------------- verdicts from a real file */

/* The mappings file: the seed's PORT_ACCESS/BE_IP verbatim, then one table per access probe.
 * Every pattern is written against the exact probe layout, so a field out of place fails it. */
static const char *MAPPINGS =
    "! mappings for test_access.c\n"
    "PORT_ACCESS\n"
    "\n"
    "  *|*|2025|*|*   $C$|BE_IP;$2|$Y$E\n"
    "  *|*|2025|*|*   $N\n"
    "  TCP|*|26|*|*   $WBusy$ now$ ($1)\n"
    "\n"
    "BE_IP\n"
    "\n"
    "  127.0.0.2   $Y\n"
    "  *           $N\n"
    "\n"
    "FROM_ACCESS\n"
    "  TCP|*|*|*|*|SMTP|MAIL|*|*@spam.test|*       $NNo$ mail$ from$ $5@spam.test$ (client$ $2,$ channel$ $4)\n"
    "  TCP|*|*|*|*|SMTP|MAIL|*|*@slow.test|*       $D150|$Y\n"
    "  TCP|*|*|*|*|SMTP|MAIL|*|*@later.test|*      $WTry$ again$ later\n"
    "  TCP|*|*|*|*|SMTP|MAIL|*|*@coded.test|*      $N$X5.7.26|Policy$ says$ no\n"
    "  TCP|*|*|*|*|SMTP|MAIL|*|*@coded4.test|*     $N$X4.7.26|Policy$ says$ later\n"
    "  TCP|*|*|*|*|SMTP|MAIL|*|*@blank.test|*      $N\n"
    "  TCP|*|*|*|*|SMTP|MAIL|*|*@auth.test|*       $C$:A$YWelcome$ $6$E\n"
    "  TCP|*|*|*|*|SMTP|MAIL|*|*@auth.test|*       $NAuthentication$ required\n"
    "  TCP|*|*|*|*|SMTP|MAIL|*|*@notls.test|*      $;T$NUse$ TLS\n"
    "  TCP|*|*|*|*|SMTP|MAIL|tcp_auth|*|*          $Y\n"
    "  TCP|*|*|*|*|SMTP|MAIL|*|*@map.test|*        just$ a$ mapping\n"
    "  TCP|*|*|*|*|SMTP|MAIL|*|*@loop.test|*       $RTCP|$0|$1|$2|$3|SMTP|MAIL|$4|$5@loop.test|$6\n"
    "\n"
    "<send_access.inc\n"
    "\n"
    "ORIG_MAIL_ACCESS\n"
    "  TCP|*|*|$(192.0.2.0/24)|*|SMTP*|MAIL|*|*|*|*@example.test   $NNot$ from$ $2\n"
    "\n"
    "MAIL_ACCESS\n"
    "  TCP|*|*|*|*|SMTP*|MAIL|tcp_local|*|l|carol@example.test     $WMailbox$ busy\n";

/* Included: the send tables (src|from|dst|to). */
static const char *SEND_INC =
    "ORIG_SEND_ACCESS\n"
    "  tcp_local|*|*|*@blocked.test    $NRelaying$ to$ $2@blocked.test$ denied$ (dst$ $1)\n"
    "  tcp_local|*|*|*@partner.test    $Y\n"
    "\n"
    "SEND_ACCESS\n"
    "  tcp_local|*|l|dave@example.test  $N$X5.2.1|Mailbox$ disabled\n"
    "  *|*|tcp_local|*                  $Y\n";

static char tmpdir[64];

static void write_file(const char *dir, const char *name, const char *text)
{
    char *path = xasprintf("%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    free(path);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    strbuf sb = {0};
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) sb_append(&sb, buf, n);
    fclose(f);
    sb_putc(&sb, '\0');
    return sb_steal(&sb);
}

static int setup_tables(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sluice-test-access-XXXXXX");
    if (!mkdtemp(tmpdir)) return -1;
    write_file(tmpdir, "mappings", MAPPINGS);
    write_file(tmpdir, "send_access.inc", SEND_INC);
    char *path = xasprintf("%s/mappings", tmpdir);
    char *text = read_file(path);
    conf_errors errs = {0};
    sl_mappings *m = mappings_parse(path, text, tmpdir, &errs);
    for (size_t i = 0; i < errs.msgs.n; i++) fprintf(stderr, "mappings error: %s\n", errs.msgs.v[i]);
    sv_free(&errs.msgs);
    free(text);
    free(path);
    *state = m;
    return m ? 0 : -1;
}

static int teardown_tables(void **state)
{
    mappings_free(*state);
    char *a = xasprintf("%s/mappings", tmpdir), *b = xasprintf("%s/send_access.inc", tmpdir);
    unlink(a);
    unlink(b);
    rmdir(tmpdir);
    free(a);
    free(b);
    return 0;
}

enum probe_kind { P_PORT, P_FROM, P_SEND, P_MAIL };

typedef struct {
    const char *name;
    enum probe_kind kind;
    const char *table;
    access_conn conn;
    const char *src, *from, *dst, *to; /* FROM: src, from, auth user in dst */
    const char *flags;
    int perm_code;
    access_verdict want;
    const char *reply; /* exact reply, "" for none */
    unsigned delay_ms;
} check_case;

#define FE "192.0.2.1"
#define CL "198.51.100.7"

static const check_case CASES[] = {
    /* PORT_ACCESS: the seed, as the listener probes it (554 for a permanent refusal at connect). */
    {"seed: back-end may connect", P_PORT, "PORT_ACCESS", {"127.0.0.3", 2025, "127.0.0.2", 40000, NULL},
     0, 0, 0, 0, "", 554, ACCESS_ALLOW, "", 0},
    {"seed: other client refused", P_PORT, "PORT_ACCESS", {"127.0.0.3", 2025, "127.0.0.9", 40001, NULL},
     0, 0, 0, 0, "", 554, ACCESS_REJECT, "554 5.7.1 Connection refused by access policy", 0},
    {"seed: other port unrestricted", P_PORT, "PORT_ACCESS", {"127.0.0.3", 25, "127.0.0.9", 40002, NULL},
     0, 0, 0, 0, "", 554, ACCESS_NONE, "", 0},
    {"seed: client port 2025 is not the server port", P_PORT, "PORT_ACCESS", {"127.0.0.3", 25, "127.0.0.9", 2025, NULL},
     0, 0, 0, 0, "", 554, ACCESS_NONE, "", 0},
    {"$W at connect: 421", P_PORT, "PORT_ACCESS", {"127.0.0.3", 26, "127.0.0.9", 40003, NULL},
     0, 0, 0, 0, "", 554, ACCESS_TEMP, "421 4.7.1 Busy now (127.0.0.9)", 0},
    /* FROM_ACCESS: the literal TCP saves nothing: $2 client IP, $4 source channel, $5 the sender's local part. */
    {"$N with saved fields", P_FROM, "FROM_ACCESS", {FE, 25, CL, 1, NULL}, "tcp_local", "x@spam.test", NULL, 0, "E",
     550, ACCESS_REJECT, "550 5.7.1 No mail from x@spam.test (client 198.51.100.7, channel tcp_local)", 0},
    {"$D delay then $Y", P_FROM, "FROM_ACCESS", {FE, 25, CL, 1, NULL}, "tcp_local", "x@slow.test", NULL, 0, "",
     550, ACCESS_ALLOW, "", 1500},
    {"$W temporary: 450 4.7.1", P_FROM, "FROM_ACCESS", {FE, 25, CL, 1, NULL}, "tcp_local", "x@later.test", NULL, 0, "",
     550, ACCESS_TEMP, "450 4.7.1 Try again later", 0},
    {"$X5 code", P_FROM, "FROM_ACCESS", {FE, 25, CL, 1, NULL}, "tcp_local", "x@coded.test", NULL, 0, "",
     550, ACCESS_REJECT, "550 5.7.26 Policy says no", 0},
    {"$X4 code makes it temporary", P_FROM, "FROM_ACCESS", {FE, 25, CL, 1, NULL}, "tcp_local", "x@coded4.test", NULL, 0,
     "", 550, ACCESS_TEMP, "450 4.7.26 Policy says later", 0},
    {"$N without text: default text", P_FROM, "FROM_ACCESS", {FE, 25, CL, 1, NULL}, "tcp_local", "x@blank.test", NULL, 0,
     "", 550, ACCESS_REJECT, "550 5.7.1 Sender address rejected", 0},
    {"$:A: authenticated passes", P_FROM, "FROM_ACCESS", {FE, 587, CL, 1, NULL}, "tcp_local", "u@auth.test",
     "u@auth.test", 0, "TAE", 550, ACCESS_ALLOW, "", 0},
    {"$:A: anonymous rejected", P_FROM, "FROM_ACCESS", {FE, 587, CL, 1, NULL}, "tcp_local", "u@auth.test", NULL, 0, "TE",
     550, ACCESS_REJECT, "550 5.7.1 Authentication required", 0},
    {"$;T: without TLS rejected", P_FROM, "FROM_ACCESS", {FE, 25, CL, 1, NULL}, "tcp_local", "u@notls.test", NULL, 0, "E",
     550, ACCESS_REJECT, "550 5.7.1 Use TLS", 0},
    {"$;T: with TLS the mapping ends", P_FROM, "FROM_ACCESS", {FE, 25, CL, 1, NULL}, "tcp_local", "u@notls.test", NULL, 0,
     "TE", 550, ACCESS_NONE, "", 0},
    {"source channel field", P_FROM, "FROM_ACCESS", {FE, 25, CL, 1, NULL}, "tcp_auth", "u@anything.test", "u@x", 0, "A",
     550, ACCESS_ALLOW, "", 0},
    {"plain mapping is no verdict", P_FROM, "FROM_ACCESS", {FE, 25, CL, 1, NULL}, "tcp_local", "u@map.test", NULL, 0, "",
     550, ACCESS_NONE, "", 0},
    {"no entry matches", P_FROM, "FROM_ACCESS", {FE, 25, CL, 1, NULL}, "tcp_local", "u@fine.test", NULL, 0, "", 550,
     ACCESS_NONE, "", 0},
    {"looping table: 451 4.3.0", P_FROM, "FROM_ACCESS", {FE, 25, CL, 1, NULL}, "tcp_local", "u@loop.test", NULL, 0, "",
     550, ACCESS_TEMP, "451 4.3.0 Access check failed (FROM_ACCESS), try again later", 0},
    /* ORIG_SEND_ACCESS / SEND_ACCESS (from the include): src|from|dst|to. */
    {"ORIG_SEND $N with dst channel", P_SEND, "ORIG_SEND_ACCESS", {0}, "tcp_local", "a@x.test", "tcp_local",
     "u@blocked.test", "", 550, ACCESS_REJECT, "550 5.7.1 Relaying to u@blocked.test denied (dst tcp_local)", 0},
    {"ORIG_SEND $Y", P_SEND, "ORIG_SEND_ACCESS", {0}, "tcp_local", "a@x.test", "tcp_local", "u@partner.test", "",
     550, ACCESS_ALLOW, "", 0},
    {"ORIG_SEND other source channel", P_SEND, "ORIG_SEND_ACCESS", {0}, "tcp_auth", "a@x.test", "tcp_local",
     "u@blocked.test", "", 550, ACCESS_NONE, "", 0},
    {"SEND $X", P_SEND, "SEND_ACCESS", {0}, "tcp_local", "a@x.test", "l", "dave@example.test", "", 550,
     ACCESS_REJECT, "550 5.2.1 Mailbox disabled", 0},
    {"SEND other destination", P_SEND, "SEND_ACCESS", {0}, "tcp_local", "a@x.test", "l", "bob@example.test", "",
     550, ACCESS_NONE, "", 0},
    {"SEND $Y by destination channel", P_SEND, "SEND_ACCESS", {0}, "tcp_local", "", "tcp_local", "x@y.test", "",
     550, ACCESS_ALLOW, "", 0},
    /* ORIG_MAIL_ACCESS / MAIL_ACCESS: the connection fields first. */
    {"ORIG_MAIL IP pattern", P_MAIL, "ORIG_MAIL_ACCESS", {FE, 25, "192.0.2.77", 5, NULL}, "tcp_local", "a@x.test", "l",
     "bob@example.test", "", 550, ACCESS_REJECT, "550 5.7.1 Not from 192.0.2.77", 0},
    {"ORIG_MAIL IP outside", P_MAIL, "ORIG_MAIL_ACCESS", {FE, 25, "192.0.3.77", 5, NULL}, "tcp_local", "a@x.test", "l",
     "bob@example.test", "", 550, ACCESS_NONE, "", 0},
    {"MAIL $W", P_MAIL, "MAIL_ACCESS", {FE, 25, CL, 5, NULL}, "tcp_local", "a@x.test", "l", "carol@example.test", "", 550,
     ACCESS_TEMP, "450 4.7.1 Mailbox busy", 0},
    {"absent table", P_MAIL, "NO_SUCH_TABLE", {FE, 25, CL, 5, NULL}, "tcp_local", "a@x.test", "l", "carol@example.test",
     "", 550, ACCESS_NONE, "", 0},
};

static char *case_probe(const check_case *k)
{
    switch (k->kind) {
    case P_PORT: return access_port_probe(&k->conn);
    case P_FROM: return access_from_probe(&k->conn, k->src, k->from, k->dst);
    case P_SEND: return access_send_probe(k->src, k->from, k->dst, k->to);
    case P_MAIL: return access_mail_probe(&k->conn, k->src, k->from, k->dst, k->to);
    }
    return NULL;
}

static void test_check_table(void **state)
{
    const sl_mappings *m = *state;
    size_t bad = 0;
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        const check_case *k = &CASES[i];
        char *probe = case_probe(k);
        strbuf reply = {0};
        verdict vd;
        const char *dflt = k->kind == P_PORT ? "Connection refused by access policy" : "Sender address rejected";
        access_verdict v = access_check(m, k->table, probe, k->flags, k->perm_code, dflt, &vd);
        if (vd.cls != VERDICT_OK) verdict_reply(&vd, "mx.test", &reply);
        unsigned delay = vd.delay_ms;
        verdict_free(&vd);
        const char *got = reply.len ? reply.data : "";
        if (v != k->want || strcmp(got, k->reply) != 0 || delay != k->delay_ms) {
            print_error("case '%s' (%s '%s'): verdict %d reply '%s' delay %u; want %d '%s' %u\n", k->name, k->table,
                        probe, (int)v, got, delay, (int)k->want, k->reply, k->delay_ms);
            bad++;
        }
        sb_free(&reply);
        free(probe);
    }
    assert_int_equal(bad, 0);
}

static void test_check_without_mappings(void **state)
{
    (void)state;
    verdict vd;
    assert_int_equal(access_check(NULL, "PORT_ACCESS", "TCP|a|1|b|2", "", 554, "x", &vd), ACCESS_NONE);
    assert_int_equal(vd.cls, VERDICT_OK);
    assert_int_equal(vd.delay_ms, 0);
}

/* A temporary verdict is never answered with a permanent code, whatever the caller's perm_code. */
static void test_check_temp_never_5xx(void **state)
{
    const sl_mappings *m = *state;
    static const int codes[] = {550, 553, 554, 530};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        access_conn c = {FE, 25, CL, 1, NULL};
        char *probe = access_from_probe(&c, "tcp_local", "x@later.test", NULL);
        strbuf reply = {0};
        verdict vd;
        assert_int_equal(access_check(m, "FROM_ACCESS", probe, "", codes[i], "d", &vd), ACCESS_TEMP);
        verdict_reply(&vd, "mx.test", &reply);
        verdict_free(&vd);
        assert_true(reply.len > 0 && reply.data[0] == '4');
        sb_free(&reply);
        free(probe);
    }
}

int main(void)
{
    const struct CMUnitTest probes[] = {
        cmocka_unit_test(test_port_probe),
        cmocka_unit_test(test_from_probe),
        cmocka_unit_test(test_send_probe),
        cmocka_unit_test(test_mail_probe),
        cmocka_unit_test(test_check_without_mappings),
    };
    const struct CMUnitTest checks[] = {
        cmocka_unit_test(test_check_table),
        cmocka_unit_test(test_check_temp_never_5xx),
    };
    int rc = cmocka_run_group_tests_name("access probes", probes, NULL, NULL);
    rc += cmocka_run_group_tests_name("access verdicts", checks, setup_tables, teardown_tables);
    return rc;
}
