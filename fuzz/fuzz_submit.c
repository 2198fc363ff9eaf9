/*
 * fuzz_submit.c - the local submission parsers on untrusted bytes: a pickup file (any local user
 * may write one into QUEUE/pickup: smtp/submit.h submit_env_decode) and a message as `sluice
 * sendmail` reads it from stdin (smtp/msgprep.h: lines, address lists, the finished content).
 *
 * Input: byte 0 chooses the parser (even: pickup file, odd: sendmail input), the rest is the data.
 *
 * Properties: a decoded pickup file has at least one recipient, and encodes to a file that
 * decodes to the same envelope and content; the prepared content has CRLF line ends only and no
 * Bcc field when the recipients were extracted; every extracted address is non-empty.
 */
#include "fuzz.h"
#include "smtp/msgprep.h"
#include "smtp/submit.h"

/* check_pickup - decode, re-encode, decode again: the same envelope. */
static void check_pickup(const char *p, size_t n)
{
    submit_env env, again;
    char err[256];
    if (submit_env_decode(p, n, &env, err, sizeof err) != 0) return;
    FZ_CHECK(env.rcpts.n > 0, "a pickup file without recipients decoded");
    strbuf enc = {0};
    submit_env_encode(&env, &enc);
    FZ_CHECK(submit_env_decode(enc.data, enc.len, &again, err, sizeof err) == 0, "re-encoded file refused: %s", err);
    FZ_CHECK(strcmp(env.sender, again.sender) == 0 && env.rcpts.n == again.rcpts.n && env.notify == again.notify &&
                 env.ret == again.ret && env.eight_bit == again.eight_bit,
             "the envelope changed in a round trip");
    for (size_t i = 0; i < env.rcpts.n; i++)
        FZ_CHECK(strcmp(env.rcpts.v[i], again.rcpts.v[i]) == 0, "recipient %zu changed", i);
    FZ_CHECK(env.content.len == again.content.len &&
                 (env.content.len == 0 || memcmp(env.content.data, again.content.data, env.content.len) == 0),
             "the content changed in a round trip");
    sb_free(&enc);
    submit_env_free(&again);
    submit_env_free(&env);
}

/* check_sendmail - stdin lines through msgprep, as `sendmail -t` would read them. */
static void check_sendmail(const char *p, size_t n, bool ignore_dot)
{
    msgprep m;
    msgprep_init(&m, ignore_dot);
    for (size_t i = 0; i < n;) {
        const char *nl = memchr(p + i, '\n', n - i);
        size_t len = nl ? (size_t)(nl - (p + i)) + 1 : n - i;
        if (msgprep_line(&m, p + i, len)) break;
        i += len;
    }
    strvec rcpts = {0};
    strbuf out = {0};
    msgprep_fields f = {"Fuzz <fuzz@example.test>", "Thu, 26 Nov 2026 10:00:00 +0000", "<fuzz@example.test>"};
    msgprep_finish(&m, true, &rcpts, &f, &out);
    FZ_CHECK(fz_no_bare_eol(out.data ? out.data : "", out.len), "bare CR or LF in the prepared content");
    for (size_t i = 0; i < rcpts.n; i++) FZ_CHECK(rcpts.v[i][0] != '\0', "an empty address extracted");
    sv_free(&rcpts);
    sb_free(&out);
    msgprep_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    if (data[0] % 2 == 0) check_pickup(p, n);
    else check_sendmail(p, n, data[0] & 2);
    return 0;
}
