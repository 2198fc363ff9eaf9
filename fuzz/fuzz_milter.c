/*
 * fuzz_milter.c - the milter client engine (scan/milter.h) fed a milter's replies, after a
 * negotiation whose protocol flags come from the input, through the stages of a session, and
 * milter_mods_apply on what an accepted message's end collected.
 *
 * Input: 4 bytes of protocol flags the milter asks for (little-endian), then records: one byte
 * (the low 3 bits choose the stage to start when the engine is ready: connect, helo, mail, rcpt,
 * message, abort; the rest is ignored), two bytes n, then n bytes fed to the engine as the milter's
 * reply (cut in two at a point taken from the first byte).
 *
 * Properties: the engine's output is whole packets (lengths add up, each under 64 KiB + 5 plus
 * the body chunk limit); a ready engine's answer is never SKIP or FAILED, a REPLYCODE line passes
 * milter_replycode_check; modifications never exceed MILTER_MAX_MODS; the modified message has CRLF
 * line ends only and its header block (up to the first empty line) holds only field lines with a
 * valid name and continuation lines: no modification can smuggle a header or end the header block.
 */
#include "fuzz.h"
#include "scan/milter.h"

static const char msg[] = "From: <a@example.test>\r\nSubject: hi\r\nX-A: one\r\n\ttwo\r\nX-A: three\r\n\r\nbody line\r\n";

/* check_output - what the engine wrote is whole packets of sane lengths. */
static void check_output(milter_engine *e, strbuf *out)
{
    sb_reset(out);
    milter_take_output(e, out);
    size_t i = 0;
    while (i < out->len) {
        FZ_CHECK(out->len - i >= 5, "partial packet header");
        const unsigned char *u = (const unsigned char *)out->data + i;
        size_t n = (size_t)u[0] << 24 | (size_t)u[1] << 16 | (size_t)u[2] << 8 | u[3];
        FZ_CHECK(n >= 1 && n <= MILTER_CHUNK + 1 && i + 4 + n <= out->len, "packet length %zu", n);
        i += 4 + n;
    }
}

/* check_header_block - every line up to the first empty one is a field or a continuation. */
static void check_header_block(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        const char *nl = memchr(p + i, '\n', n - i);
        size_t end = nl ? (size_t)(nl - p) : n;
        size_t ll = end > i && p[end - 1] == '\r' ? end - 1 - i : end - i;
        if (ll == 0) return; /* the empty line: the body follows */
        if (p[i] != ' ' && p[i] != '\t') {
            const char *colon = memchr(p + i, ':', ll);
            FZ_CHECK(colon && colon > p + i, "header line without a name: %s", fz_show(p, n, i));
            for (const char *c = p + i; c < colon; c++)
                FZ_CHECK((unsigned char)*c > 32 && (unsigned char)*c < 127, "bad name byte: %s", fz_show(p, n, i));
        }
        i = end + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    uint32_t proto = fz_u16(&in);
    proto |= (uint32_t)fz_u16(&in) << 16;
    milter_engine *e = milter_new(0, 0);
    strbuf out, sb;
    sb_init(&out);
    sb_init(&sb);
    check_output(e, &out);
    /* the milter's OPTNEG */
    char neg[17] = {0, 0, 0, 13, 'O', 0, 0, 0, 6, 0, 0, 0x01, (char)0xff};
    neg[13] = (char)(proto >> 24), neg[14] = (char)(proto >> 16), neg[15] = (char)(proto >> 8), neg[16] = (char)proto;
    milter_feed(e, neg, sizeof neg);
    FZ_CHECK(milter_state(e) == MILTER_ES_READY, "negotiation failed");
    const char *const args[] = {"SIZE=10"};
    const milter_macro mac[] = {{"i", "Q1"}, {"{client_addr}", "192.0.2.1"}};
    while (in.n && milter_state(e) != MILTER_ES_FAILED) {
        uint8_t op = fz_u8(&in);
        if (milter_state(e) == MILTER_ES_READY) {
            milter_reply r = milter_reply_get(e);
            FZ_CHECK(r.action != MILTER_SKIP && r.action != MILTER_FAILED, "ready with %s", milter_action_name(r.action));
            if (r.action == MILTER_REPLYCODE)
                FZ_CHECK(r.line && milter_replycode_check(r.line, strlen(r.line)), "bad replycode accepted");
            if (r.mods) {
                FZ_CHECK(r.mods->count <= MILTER_MAX_MODS, "%zu modifications", r.mods->count);
                sb_reset(&sb);
                milter_mods_apply(msg, sizeof msg - 1, r.mods, &sb);
                FZ_CHECK(fz_no_bare_eol(sb.data, sb.len), "bare CR/LF at %s", fz_show(sb.data, sb.len, fz_bare_eol(sb.data, sb.len)));
                check_header_block(sb.data, sb.len);
            }
            switch (op & 7) {
            case 0: milter_connect(e, "client.test", '4', 25, "192.0.2.1", mac, 2); break;
            case 1: milter_helo(e, "client.test", mac, 1); break;
            case 2: milter_mail(e, "<a@example.test>", args, 1, mac, 2); break;
            case 3: milter_rcpt(e, "<b@example.test>", args, 1, NULL, 0); break;
            case 4: case 5: milter_message(e, msg, sizeof msg - 1, mac, 1, mac, 2, mac, 1); break;
            case 6: milter_abort(e); break;
            default: break;
            }
            check_output(e, &out);
        }
        size_t n = fz_u16(&in), len;
        const uint8_t *p = fz_bytes(&in, n, &len);
        size_t cut = len ? op % (len + 1) : 0;
        milter_feed(e, p, cut);
        milter_feed(e, p + cut, len - cut);
        check_output(e, &out);
    }
    milter_free(e);
    sb_free(&out);
    sb_free(&sb);
    return 0;
}
