/* test_log_json.c - the JSON log formatter (log_format=json), table-driven: an event's id, name
 * and key=value text in, the exact JSON line out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/log.h"

#define HEAD "{\"ts\":\"T\",\"level\":\"info\","

static void test_lines(void **state)
{
    (void)state;
    static const struct {
        const char *id, *event, *kv, *expect;
    } cases[] = {
        /* a session line: the session member from the id */
        {"S12", "connect", "client=[127.0.0.1] channel=l internal=yes",
         HEAD "\"id\":\"S12\",\"event\":\"connect\",\"session\":\"S12\",\"client\":\"[127.0.0.1]\",\"channel\":\"l\","
              "\"internal\":\"yes\"}\n"},
        /* a queue line that names its session: both ids */
        {"661E7701A393D000", "accepted", "session=S3 from=<a@b.test> size=12",
         HEAD "\"id\":\"661E7701A393D000\",\"event\":\"accepted\",\"session\":\"S3\",\"queue_id\":\"661E7701A393D000\","
              "\"from\":\"<a@b.test>\",\"size\":\"12\"}\n"},
        /* a DSN: the message reported on is the id, the DSN's own id becomes dsn_id */
        {"661E7701A393D000", "bounce", "id=661E7701A393E001 kind=failed to=<a@b.test> channel=process",
         HEAD "\"id\":\"661E7701A393D000\",\"event\":\"bounce\",\"queue_id\":\"661E7701A393D000\","
              "\"dsn_id\":\"661E7701A393E001\",\"kind\":\"failed\",\"to\":\"<a@b.test>\",\"channel\":\"process\"}\n"},
        /* no id; a quoted value holding quotes and a backslash */
        {NULL, "reject", "client=[1.2.3.4] reply=\"550 5.7.1 say \"no\" \\ now\" cmd=RCPT",
         HEAD "\"id\":null,\"event\":\"reject\",\"client\":\"[1.2.3.4]\",\"reply\":\"550 5.7.1 say \\\"no\\\" \\\\ now\","
              "\"cmd\":\"RCPT\"}\n"},
        /* a quote inside a value followed by a word that is no key: still the same value */
        {"S1", "x", "diag=\"a \"b\" c\" d=1",
         HEAD "\"id\":\"S1\",\"event\":\"x\",\"session\":\"S1\",\"diag\":\"a \\\"b\\\" c\",\"d\":\"1\"}\n"},
        /* free words, empty and unterminated values */
        {"-x", "tls", "client=[::1] TLSv1.3 TLS_AES_256_GCM_SHA384 empty=\"\" open=\"abc def",
         HEAD "\"id\":\"-x\",\"event\":\"tls\",\"client\":\"[::1]\",\"empty\":\"\",\"open\":\"abc def\","
              "\"text\":\"TLSv1.3 TLS_AES_256_GCM_SHA384\"}\n"},
        /* keys that clash with the members, and repeated keys */
        {"S1", "e", "ts=1 level=2 event=3 id=4 queue_id=5 text=6 session=S9 a=1 a=2 a=3",
         HEAD "\"id\":\"S1\",\"event\":\"e\",\"session\":\"S1\",\"field_ts\":\"1\",\"field_level\":\"2\","
              "\"field_event\":\"3\",\"field_id\":\"4\",\"field_queue_id\":\"5\",\"field_text\":\"6\","
              "\"field_session\":\"S9\",\"a\":\"1\",\"a_2\":\"2\",\"a_3\":\"3\"}\n"},
        /* UTF-8 kept, invalid bytes replaced, control characters escaped */
        {"S1", "u", "name=caf\xc3\xa9 bad=\xff\xc3( ctl=a\x01z",
         HEAD "\"id\":\"S1\",\"event\":\"u\",\"session\":\"S1\",\"name\":\"caf\xc3\xa9\",\"bad\":\"\\ufffd\\ufffd(\","
              "\"ctl\":\"a\\u0001z\"}\n"},
        /* overlong and surrogate encodings are invalid UTF-8 */
        {"S1", "u", "a=\xc0\xaf b=\xed\xa0\x80",
         HEAD "\"id\":\"S1\",\"event\":\"u\",\"session\":\"S1\",\"a\":\"\\ufffd\\ufffd\",\"b\":\"\\ufffd\\ufffd\\ufffd\"}\n"},
        /* no fields at all */
        {NULL, "stopping", "", HEAD "\"id\":null,\"event\":\"stopping\"}\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        strbuf out = {0};
        log_json_line(&out, "T", "info", cases[i].id, cases[i].event, cases[i].kv);
        assert_string_equal(out.data, cases[i].expect);
        sb_free(&out);
    }
}

/* A queue id is sixteen upper-case hex digits, a session id S and digits; anything else is only "id". */
static void test_id_kinds(void **state)
{
    (void)state;
    const char *ids[] = {"661e7701a393d000", "661E7701A393D00", "S", "S1x", "T1"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        strbuf out = {0};
        log_json_line(&out, "T", "debug", ids[i], "e", "");
        assert_null(strstr(out.data, "\"session\""));
        assert_null(strstr(out.data, "\"queue_id\""));
        sb_free(&out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines),
        cmocka_unit_test(test_id_kinds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
