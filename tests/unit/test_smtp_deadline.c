/* test_smtp_deadline.c - the session deadline and the minimum data rate, driven with explicit times. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "conf/conf.h"
#include "smtp/deadline.h"

/* limits - a deadline starting at t=0 with session_timeout 100 s, 100 B/s over 10 s windows. */
static smtp_deadline limits(unsigned rate)
{
    sl_options opt;
    conf_options_defaults(&opt);
    opt.session_timeout = 100;
    opt.min_data_rate = rate;
    opt.min_data_rate_window = 10;
    smtp_deadline d;
    smtp_deadline_init(&d, &opt, 0);
    conf_options_free(&opt);
    return d;
}

/* One byte before each idle timeout keeps a session alive until session_timeout, not longer. */
static void test_session_deadline(void **state)
{
    (void)state;
    smtp_deadline d = limits(100);
    for (int64_t t = 0; t < 100000; t += 5000) {
        smtp_deadline_data(&d, false, false, 1, t);
        assert_int_equal(smtp_deadline_check(&d, t), SMTP_DEADLINE_OK);
        assert_int_equal(smtp_deadline_next(&d), 100000);
    }
    assert_int_equal(smtp_deadline_check(&d, 99999), SMTP_DEADLINE_OK);
    assert_int_equal(smtp_deadline_check(&d, 100000), SMTP_DEADLINE_SESSION);
    /* the session deadline holds during content too */
    d = limits(0);
    smtp_deadline_data(&d, false, true, 6, 95000);
    assert_int_equal(smtp_deadline_check(&d, 100001), SMTP_DEADLINE_SESSION);
}

/* A client trickling content is cut at the end of the first window it falls short in. */
static void test_slow_data(void **state)
{
    (void)state;
    smtp_deadline d = limits(100);
    smtp_deadline_data(&d, false, true, 6, 20000); /* "DATA\r\n": the phase starts at 20 s */
    assert_int_equal(smtp_deadline_next(&d), 30000);
    for (int64_t t = 21000; t < 30000; t += 1000) {
        smtp_deadline_data(&d, true, true, 50, t); /* 50 B/s */
        assert_int_equal(smtp_deadline_check(&d, t), SMTP_DEADLINE_OK);
    }
    assert_int_equal(smtp_deadline_check(&d, 30000), SMTP_DEADLINE_SLOW_DATA);
}

/* Windows that meet the rate start the next one; a burst does not pay for a later stall. */
static void test_windows(void **state)
{
    (void)state;
    smtp_deadline d = limits(100);
    smtp_deadline_data(&d, false, true, 0, 0);
    smtp_deadline_data(&d, true, true, 5000, 1000); /* a fast first window */
    assert_int_equal(smtp_deadline_check(&d, 10000), SMTP_DEADLINE_OK);
    assert_int_equal(smtp_deadline_next(&d), 20000);
    smtp_deadline_data(&d, true, true, 999, 15000); /* one byte short of 100 B/s x 10 s */
    assert_int_equal(smtp_deadline_check(&d, 20000), SMTP_DEADLINE_SLOW_DATA);
    /* exactly the rate passes; a late check asks for the rate over the time that passed */
    d = limits(100);
    smtp_deadline_data(&d, false, true, 1000, 0);
    assert_int_equal(smtp_deadline_check(&d, 10000), SMTP_DEADLINE_OK);
    smtp_deadline_data(&d, true, true, 1400, 11000);
    assert_int_equal(smtp_deadline_check(&d, 25000), SMTP_DEADLINE_SLOW_DATA);
}

/* Outside the data phase (commands, waiting for the commit) the rate is not measured; content
 * that ends within the first window is never judged; rate 0 turns the check off. */
static void test_phase(void **state)
{
    (void)state;
    smtp_deadline d = limits(100);
    smtp_deadline_data(&d, false, false, 3, 0);
    assert_int_equal(smtp_deadline_check(&d, 50000), SMTP_DEADLINE_OK);
    smtp_deadline_data(&d, false, true, 6, 50000);
    smtp_deadline_data(&d, true, false, 200, 55000); /* the end of the content: commit */
    assert_int_equal(smtp_deadline_next(&d), 100000);
    assert_int_equal(smtp_deadline_check(&d, 70000), SMTP_DEADLINE_OK);
    /* a new phase gets a new first window */
    smtp_deadline_data(&d, false, true, 10, 80000);
    assert_int_equal(smtp_deadline_next(&d), 90000);
    assert_int_equal(smtp_deadline_check(&d, 89999), SMTP_DEADLINE_OK);
    assert_int_equal(smtp_deadline_check(&d, 90000), SMTP_DEADLINE_SLOW_DATA);
    d = limits(0);
    smtp_deadline_data(&d, false, true, 1, 0);
    assert_int_equal(smtp_deadline_check(&d, 50000), SMTP_DEADLINE_OK);
    assert_int_equal(smtp_deadline_next(&d), 100000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_session_deadline),
        cmocka_unit_test(test_slow_data),
        cmocka_unit_test(test_windows),
        cmocka_unit_test(test_phase),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
