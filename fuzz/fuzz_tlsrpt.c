/*
 * fuzz_tlsrpt.c - the TLS-RPT record parser (tlsrpt/tlsrpt_data.h tlsrpt_txt_parse, on a TXT
 * record from DNS: untrusted) and, on the same text, the day file reader (tlsrpt_book_load: a
 * damaged file must be refused, never misread).
 *
 * Input: text (it ends at a NUL).
 * Properties: the parser answers 0 exactly when the text does not start with the version tag
 * "v=TLSRPTv1" followed by the end, ';' or a blank; a valid record gives 1..8 rua, each
 * "mailto:" with exactly one '@' and no blank, control or angle bracket, or "https://" without
 * blanks; a failure adds nothing. A day file that loads dumps to a text that loads again to the
 * same dump.
 */
#include "fuzz.h"
#include "tlsrpt/tlsrpt_data.h"

/* check_rua - the properties of one rua URI. */
static void check_rua(const char *u)
{
    if (!strncmp(u, "mailto:", 7)) {
        const char *at = strchr(u + 7, '@');
        FZ_CHECK(at && at > u + 7 && at[1] && !strchr(at + 1, '@'), "mailto %s", u);
        for (const unsigned char *p = (const unsigned char *)u; *p; p++)
            FZ_CHECK(*p > ' ' && *p < 0x7f && *p != '<' && *p != '>' && *p != ',', "byte %02x in %s", *p, u);
        return;
    }
    FZ_CHECK(!strncmp(u, "https://", 8), "scheme of %s", u);
    for (const unsigned char *p = (const unsigned char *)u; *p; p++) FZ_CHECK(*p > ' ' && *p < 0x7f, "byte in %s", u);
}

/* check_txt - the record parser's properties on text. */
static void check_txt(const char *text)
{
    strvec rua = {0};
    int rc = tlsrpt_txt_parse(text, &rua);
    bool tagged = !strncmp(text, "v=TLSRPTv1", 10);
    char c = tagged ? text[10] : '\0'; /* read only inside the text */
    tagged = tagged && (c == '\0' || c == ';' || c == ' ' || c == '\t');
    FZ_CHECK(rc >= -1 && rc <= 1, "rc %d", rc);
    FZ_CHECK((rc == 0) == !tagged, "rc %d for a %s record", rc, tagged ? "tagged" : "untagged");
    FZ_CHECK(rc == 1 ? rua.n >= 1 && rua.n <= 8 : rua.n == 0, "rc %d with %zu rua", rc, rua.n);
    for (size_t i = 0; i < rua.n; i++) check_rua(rua.v[i]);
    sv_free(&rua);
}

/* check_dayfile - a day file that loads dumps to one that loads to the same dump. */
static void check_dayfile(const char *text)
{
    tlsrpt_book *b = tlsrpt_book_new(100, 100);
    char err[128];
    if (tlsrpt_book_load(b, text, strlen(text), err, sizeof err) == 0) {
        int64_t days[2];
        FZ_CHECK(tlsrpt_book_days(b, days, 2) == 1, "one day per file");
        strbuf one = {0}, two = {0};
        tlsrpt_book_dump(b, days[0], &one);
        tlsrpt_book *c = tlsrpt_book_new(100, 100);
        FZ_CHECK(tlsrpt_book_load(c, one.data, one.len, err, sizeof err) == 0, "own dump refused: %s", err);
        tlsrpt_book_dump(c, days[0], &two);
        FZ_CHECK(!strcmp(one.data, two.data), "dump differs:\n%s\n---\n%s", one.data, two.data);
        tlsrpt_book_free(c);
        sb_free(&one);
        sb_free(&two);
    } else {
        FZ_CHECK(err[0], "a refusal says why");
        FZ_CHECK(tlsrpt_book_days(b, (int64_t[1]){0}, 1) == 0, "a refused file added a day");
    }
    tlsrpt_book_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fz_text(data, size);
    check_txt(text);
    check_dayfile(text);
    free(text);
    return 0;
}
