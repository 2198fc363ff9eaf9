/*
 * test_outcome.c - the job controller's outcome policy (src/jobs/outcome.c) driven with an
 * injected clock: retry backoff (retry_interval doubling up to retry_max, a channel's backoff
 * list), attempts scheduled no later than the next notice age, delayed DSNs at the notices ages
 * as NOTIFY allows, the return at message_lifetime / the last notices age, permanent failures
 * and NOTIFY=NEVER, success DSNs, the failure DSN's durability deciding the final state, and
 * (src/dsn/bounce.c) that a DSN about a DSN is never sent to its null sender.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsn/bounce.h"
#include "jobs/outcome.h"
#include "smtp/parse.h"

#define T0 INT64_C(1700000000) /* the message's arrival */
#define DAY INT64_C(86400)

/* A message with one recipient on a channel, and an item of that recipient. */
typedef struct {
    sl_options o;
    sl_channel ch;
    qmsg m;
    size_t idx[1];
    deliv_result res[1];
    deliv_item it;
    outcome_plan plan;
} fixture;

/* setup - default options, an SMTP channel without backoff or notices, one recipient (NOTIFY absent). */
static int setup(void **state)
{
    fixture *f = xcalloc(1, sizeof *f);
    conf_options_defaults(&f->o); /* retry_interval 300, retry_max 3600, message_lifetime 5 days */
    f->ch.name = "tcp_test";
    f->ch.type = CHAN_SMTP;
    snprintf(f->m.id, sizeof f->m.id, "OUTCOME0001");
    f->m.channel = xstrdup("tcp_test");
    f->m.sender = xstrdup("alice@example.org");
    f->m.arrival = T0;
    qmsg_add_rcpt(&f->m, "bob@example.net", "bob@example.net", NULL, "example.net", 0);
    *state = f;
    return 0;
}

/* teardown - free the fixture. */
static int teardown(void **state)
{
    fixture *f = *state;
    outcome_plan_free(&f->plan);
    deliv_result_clear(&f->res[0]);
    qmsg_free(&f->m);
    conf_options_free(&f->o);
    free(f);
    return 0;
}

/* attempt - the recipient's attempt at now ended with res/status: decide (the previous plan freed). */
static outcome_verdict attempt(fixture *f, int64_t now, sl_result res, const char *status)
{
    outcome_plan_free(&f->plan);
    deliv_result_set(&f->res[0], res, status, "smtp; test", "mx.example.net");
    f->idx[0] = 0;
    f->it = (deliv_item){.msg = &f->m, .channel = &f->ch, .rcpts = f->idx, .n = 1, .results = f->res};
    outcome_decide(&f->ch, &f->o, &f->it, now, &f->plan);
    return f->plan.verdict[0];
}

/* rcpt - the recipient. */
static qrcpt *rcpt(fixture *f)
{
    return &f->m.rcpts[0];
}

/* Temporary failures: retry_interval doubling up to retry_max, counted per attempt. */
static void test_temp_failure_backoff_doubles_to_max(void **state)
{
    fixture *f = *state;
    const int64_t want[] = {300, 600, 1200, 2400, 3600, 3600, 3600};
    int64_t now = T0;
    for (size_t k = 0; k < SL_ARRAY_LEN(want); k++) {
        assert_int_equal(attempt(f, now, SL_TEMP, "4.4.1"), OUTCOME_DEFERRED);
        assert_int_equal(rcpt(f)->attempts, k + 1);
        assert_int_equal(rcpt(f)->status, QR_PENDING);
        if (rcpt(f)->next_attempt - now != want[k])
            fail_msg("attempt %zu: retry after %lld s, want %lld", k + 1, (long long)(rcpt(f)->next_attempt - now),
                     (long long)want[k]);
        for (int d = 0; d < OUTCOME_DSN_KINDS; d++) assert_int_equal(f->plan.dsn[d].n, 0);
        now = rcpt(f)->next_attempt;
    }
}

/* The retry delay table itself, and a channel's backoff list (the last entry repeats). */
static void test_retry_delay_table_and_channel_backoff(void **state)
{
    fixture *f = *state;
    f->o.retry_interval = 60;
    f->o.retry_max = 500;
    const int64_t doubling[] = {60, 60, 120, 240, 480, 500, 500};
    for (unsigned a = 0; a < SL_ARRAY_LEN(doubling); a++)
        assert_int_equal(outcome_retry_delay(&f->ch, &f->o, a), doubling[a]);
    f->ch.backoff[0] = 120;
    f->ch.backoff[1] = 7200;
    f->ch.n_backoff = 2;
    assert_int_equal(outcome_retry_delay(&f->ch, &f->o, 1), 120);
    assert_int_equal(outcome_retry_delay(&f->ch, &f->o, 2), 7200);
    assert_int_equal(outcome_retry_delay(&f->ch, &f->o, 9), 7200);
    assert_int_equal(outcome_retry_delay(NULL, &f->o, 2), 120); /* a channel gone from the configuration */
}

/* Past message_lifetime a temporary failure is returned: a failed DSN (4.4.7, or the last 4.x.x). */
static void test_lifetime_expiry_wants_failure_dsn(void **state)
{
    fixture *f = *state;
    assert_int_equal(attempt(f, T0 + 5 * DAY - 1, SL_TEMP, "4.4.1"), OUTCOME_DEFERRED);
    assert_true(rcpt(f)->next_attempt <= T0 + 5 * DAY); /* never after the return age */
    assert_int_equal(attempt(f, T0 + 5 * DAY, SL_TEMP, "4.4.1"), OUTCOME_FAILED);
    assert_int_equal(f->res[0].result, SL_PERM);
    assert_string_equal(f->res[0].status, "4.4.1");
    assert_int_equal(f->plan.dsn[OUTCOME_DSN_FAILED].n, 1);
    assert_string_equal(f->plan.dsn[OUTCOME_DSN_FAILED].v[0].action, "failed");
    assert_ptr_equal(f->plan.dsn[OUTCOME_DSN_FAILED].v[0].rcpt, rcpt(f));
    assert_int_equal(rcpt(f)->status, QR_PENDING); /* final only once the DSN is durable */
    assert_int_equal(attempt(f, T0 + 6 * DAY, SL_TEMP, ""), OUTCOME_FAILED);
    assert_string_equal(f->res[0].status, "4.4.7");
}

/* With "notices" the last age is the return age, and earlier ages cap the retry time. */
static void test_notices_cap_retry_and_last_notice_returns(void **state)
{
    fixture *f = *state;
    f->ch.notices[0] = 3600;
    f->ch.notices[1] = 7200;
    f->ch.n_notices = 2;
    f->o.retry_interval = 3000;
    assert_int_equal(attempt(f, T0 + 1000, SL_TEMP, "4.4.1"), OUTCOME_DEFERRED);
    assert_int_equal(rcpt(f)->next_attempt, T0 + 3600); /* not T0+4000: the notice age comes first */
    assert_int_equal(outcome_lifetime(&f->ch, &f->o), 7200);
    assert_int_equal(attempt(f, T0 + 7200, SL_TEMP, "4.4.1"), OUTCOME_FAILED);
    assert_int_equal(f->plan.dsn[OUTCOME_DSN_FAILED].n, 1);
}

/* A delayed DSN when an earlier notices age is reached, once per age, as NOTIFY allows. */
static void test_delay_dsn_at_notice_age(void **state)
{
    fixture *f = *state;
    const struct {
        unsigned notify;
        bool want_dsn;
    } cases[] = {
        {0, true},
        {DSN_NOTIFY_DELAY, true},
        {DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY, true},
        {DSN_NOTIFY_FAILURE, false},
        {DSN_NOTIFY_SUCCESS, false},
        {DSN_NOTIFY_NEVER, false},
    };
    f->ch.notices[0] = 3600;
    f->ch.notices[1] = 2 * DAY;
    f->ch.n_notices = 2;
    for (size_t k = 0; k < SL_ARRAY_LEN(cases); k++) {
        rcpt(f)->notify = cases[k].notify;
        rcpt(f)->notices_sent = 0;
        assert_int_equal(attempt(f, T0 + 3599, SL_TEMP, "4.4.1"), OUTCOME_DEFERRED);
        assert_int_equal(f->plan.dsn[OUTCOME_DSN_DELAYED].n, 0);
        assert_int_equal(attempt(f, T0 + 3600, SL_TEMP, "4.4.1"), OUTCOME_DEFERRED);
        if ((f->plan.dsn[OUTCOME_DSN_DELAYED].n == 1) != cases[k].want_dsn) fail_msg("case %zu: delayed DSN", k);
        if (cases[k].want_dsn) assert_string_equal(f->plan.dsn[OUTCOME_DSN_DELAYED].v[0].action, "delayed");
        assert_int_equal(rcpt(f)->notices_sent, 1);
        assert_int_equal(attempt(f, T0 + 7200, SL_TEMP, "4.4.1"), OUTCOME_DEFERRED);
        assert_int_equal(f->plan.dsn[OUTCOME_DSN_DELAYED].n, 0); /* that age was reported already */
        assert_int_equal(f->plan.dsn[OUTCOME_DSN_FAILED].n, 0);
    }
}

/* Without "notices" there are no delayed DSNs at all. */
static void test_no_notices_no_delay_dsn(void **state)
{
    fixture *f = *state;
    assert_int_equal(attempt(f, T0 + 4 * DAY, SL_TEMP, "4.4.1"), OUTCOME_DEFERRED);
    assert_int_equal(f->plan.dsn[OUTCOME_DSN_DELAYED].n, 0);
}

/* A permanent failure: a failed DSN, unless NOTIFY=NEVER or NOTIFY without FAILURE (silently final). */
static void test_permanent_failure_dsn_unless_never(void **state)
{
    fixture *f = *state;
    const struct {
        unsigned notify;
        bool want_dsn;
    } cases[] = {
        {0, true},
        {DSN_NOTIFY_FAILURE, true},
        {DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY, true},
        {DSN_NOTIFY_NEVER, false},
        {DSN_NOTIFY_SUCCESS | DSN_NOTIFY_DELAY, false},
    };
    for (size_t k = 0; k < SL_ARRAY_LEN(cases); k++) {
        rcpt(f)->notify = cases[k].notify;
        rcpt(f)->status = QR_PENDING;
        assert_int_equal(attempt(f, T0 + 10, SL_PERM, "5.1.1"), OUTCOME_FAILED);
        if ((f->plan.dsn[OUTCOME_DSN_FAILED].n == 1) != cases[k].want_dsn) fail_msg("case %zu: failed DSN", k);
        assert_int_equal(rcpt(f)->status, cases[k].want_dsn ? QR_PENDING : QR_FAILED);
        assert_string_equal(f->res[0].status, "5.1.1");
    }
}

/* The failed DSN decides: durable -> the recipient fails; not queued -> it is retried later. */
static void test_failure_dsn_durability_decides(void **state)
{
    fixture *f = *state;
    attempt(f, T0 + 10, SL_PERM, "5.1.1");
    outcome_failure_dsn_done(&f->ch, &f->o, &f->it, SL_TEMP, T0 + 20);
    assert_int_equal(rcpt(f)->status, QR_PENDING);
    assert_int_equal(rcpt(f)->next_attempt, T0 + 20 + 600); /* as for the attempt after this one */
    attempt(f, T0 + 400, SL_PERM, "5.1.1");
    outcome_failure_dsn_done(&f->ch, &f->o, &f->it, SL_OK, T0 + 410);
    assert_int_equal(rcpt(f)->status, QR_FAILED);
    assert_true(outcome_all_final(&f->m));
}

/* Success DSNs: "delivered" on final delivery, "relayed" to a next hop without DSN, else none. */
static void test_success_dsn(void **state)
{
    fixture *f = *state;
    rcpt(f)->notify = DSN_NOTIFY_SUCCESS;
    assert_int_equal(attempt(f, T0, SL_OK, "2.0.0"), OUTCOME_DELIVERED);
    assert_int_equal(rcpt(f)->status, QR_DELIVERED);
    assert_int_equal(f->plan.dsn[OUTCOME_DSN_SUCCESS].n, 0); /* SMTP to a DSN-capable hop: it reports */
    rcpt(f)->status = QR_PENDING;
    f->res[0].relayed = true;
    outcome_plan_free(&f->plan);
    outcome_decide(&f->ch, &f->o, &f->it, T0, &f->plan);
    assert_int_equal(rcpt(f)->status, QR_RELAYED);
    assert_string_equal(f->plan.dsn[OUTCOME_DSN_SUCCESS].v[0].action, "relayed");
    f->ch.type = CHAN_LOCAL;
    rcpt(f)->status = QR_PENDING;
    assert_int_equal(attempt(f, T0, SL_OK, "2.0.0"), OUTCOME_DELIVERED);
    assert_string_equal(f->plan.dsn[OUTCOME_DSN_SUCCESS].v[0].action, "delivered");
    assert_true(outcome_all_final(&f->m));
}

/* Several recipients in one item: each gets its own verdict and only the right DSN lines. */
static void test_mixed_item(void **state)
{
    fixture *f = *state;
    qmsg_add_rcpt(&f->m, "carol@example.net", "carol@example.net", NULL, "example.net", DSN_NOTIFY_NEVER);
    qmsg_add_rcpt(&f->m, "dave@example.net", "dave@example.net", NULL, "example.net", 0);
    size_t idx[3] = {0, 1, 2};
    deliv_result res[3] = {{0}};
    deliv_result_set(&res[0], SL_OK, "2.0.0", NULL, NULL);
    deliv_result_set(&res[1], SL_PERM, "5.1.1", NULL, NULL);
    deliv_result_set(&res[2], SL_TEMP, "4.2.0", NULL, NULL);
    deliv_item it = {.msg = &f->m, .channel = &f->ch, .rcpts = idx, .n = 3, .results = res};
    outcome_decide(&f->ch, &f->o, &it, T0 + 5, &f->plan);
    assert_int_equal(f->plan.verdict[0], OUTCOME_DELIVERED);
    assert_int_equal(f->plan.verdict[1], OUTCOME_FAILED);
    assert_int_equal(f->plan.verdict[2], OUTCOME_DEFERRED);
    assert_int_equal(f->m.rcpts[1].status, QR_FAILED); /* NOTIFY=NEVER: final at once, no DSN */
    assert_int_equal(f->m.rcpts[2].next_attempt, T0 + 5 + 300);
    for (int d = 0; d < OUTCOME_DSN_KINDS; d++) assert_int_equal(f->plan.dsn[d].n, 0);
    assert_false(outcome_all_final(&f->m));
    for (int i = 0; i < 3; i++) deliv_result_clear(&res[i]);
}

/* Never a DSN about a DSN: a failed notification goes to the postmaster (errsendpost) or nowhere. */
static void test_no_dsn_about_a_dsn(void **state)
{
    fixture *f = *state;
    const char *why;
    f->ch.errsendpost = true;
    assert_int_equal(bounce_target_of(&f->m, &f->ch, "failed", &why), BOUNCE_TO_SENDER);
    assert_null(why);
    f->m.is_notification = true;
    free(f->m.sender);
    f->m.sender = xstrdup("");
    assert_int_equal(bounce_target_of(&f->m, &f->ch, "failed", &why), BOUNCE_TO_POSTMASTER);
    assert_int_equal(bounce_target_of(&f->m, NULL, "failed", &why), BOUNCE_TO_POSTMASTER);
    assert_int_equal(bounce_target_of(&f->m, &f->ch, "delayed", &why), BOUNCE_TO_NOBODY);
    assert_string_equal(why, "notification");
    f->ch.errsendpost = false; /* nosendpost */
    assert_int_equal(bounce_target_of(&f->m, &f->ch, "failed", &why), BOUNCE_TO_NOBODY);
    f->ch.errsendpost = true;
    f->m.is_postmaster_copy = true; /* the postmaster's copy failed too: dropped */
    assert_int_equal(bounce_target_of(&f->m, &f->ch, "failed", &why), BOUNCE_TO_NOBODY);
    assert_string_equal(why, "postmaster_copy_failed");
    f->m.is_postmaster_copy = f->m.is_notification = false; /* an ordinary message with sender <> */
    assert_int_equal(bounce_target_of(&f->m, &f->ch, "failed", &why), BOUNCE_TO_POSTMASTER);
    assert_int_equal(bounce_target_of(&f->m, &f->ch, "delayed", &why), BOUNCE_TO_NOBODY);
    assert_string_equal(why, "null_sender");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_temp_failure_backoff_doubles_to_max, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_delay_table_and_channel_backoff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lifetime_expiry_wants_failure_dsn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notices_cap_retry_and_last_notice_returns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delay_dsn_at_notice_age, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_notices_no_delay_dsn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_permanent_failure_dsn_unless_never, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_dsn_durability_decides, setup, teardown),
        cmocka_unit_test_setup_teardown(test_success_dsn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mixed_item, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_dsn_about_a_dsn, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
