/*
 * fuzz_xtext.c - RFC 3461 xtext (smtp/parse.h xtext_decode and xtext_encode, the one encoder
 * the server, the client and local submission share) on untrusted bytes.
 *
 * Input: the bytes to decode (ENVID, ORCPT and AUTH= values arrive as xtext).
 *
 * Properties: a decoded value holds no NUL inside its length and re-encodes to an xtext that
 * decodes to the same bytes; encoding any C string and decoding it gives the string back.
 */
#include "fuzz.h"
#include "smtp/client.h"
#include "smtp/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    char *dec = xtext_decode(s, size);
    if (dec) {
        size_t dl = strlen(dec);
        FZ_CHECK(dl <= size, "decoded %zu octets from %zu", dl, size);
        char *enc = xtext_encode(dec);
        char *again = xtext_decode(enc, strlen(enc));
        FZ_CHECK(again && strcmp(again, dec) == 0, "'%s' re-encoded as '%s' decodes to '%s'", dec, enc,
                 again ? again : "(malformed)");
        free(again);
        free(enc);
        free(dec);
    }

    char *text = fz_text(data, size); /* up to the first NUL */
    char *enc = xtext_encode(text);
    for (const char *p = enc; *p; p++)
        FZ_CHECK(*p >= 33 && *p <= 126 && *p != '=', "xtext '%s' holds byte 0x%02x", enc, (unsigned char)*p);
    char *back = xtext_decode(enc, strlen(enc));
    if (*text) FZ_CHECK(back && strcmp(back, text) == 0, "'%s' encoded as '%s' does not decode back", text, enc);
    free(back);
    free(enc);
    free(text);
    return 0;
}
