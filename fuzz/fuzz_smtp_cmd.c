/*
 * fuzz_smtp_cmd.c - the command line and address parsers (smtp/parse.h): smtp_cmd_parse,
 * smtp_addr_parse and smtp_domain_check on untrusted bytes.
 *
 * Input: byte 0 = options (bit 0: the session said EHLO; bit 1: UTF-8 addresses allowed), then
 * the command line (without CRLF; NULs and every other byte included).
 *
 * Properties: a refusal carries a reply "<code> <text>" with the returned code and no CR, LF or
 * NUL in it (the text goes to the client); a parsed MAIL/RCPT path formats to an address that
 * parses again to the same local part and domain; a decoded ENVID or ORCPT holds no control
 * character (it is copied into DSN headers); the same line fed to smtp_addr_parse either fails or yields an address that
 * formats and parses back to itself.
 */
#include "fuzz.h"
#include "smtp/parse.h"

/* check_addr_roundtrip - a parsed address survives format + parse unchanged. */
static void check_addr_roundtrip(const smtp_addr *a, bool utf8)
{
    if (a->is_null || !a->domain || !a->domain[0]) return; /* <> and <Postmaster> have no domain */
    char *text = smtp_addr_format(a);
    smtp_addr b;
    char err[128];
    int rc = smtp_addr_parse(text, strlen(text), utf8 || a->utf8, &b, err, sizeof err);
    FZ_CHECK(rc == 0, "formatted address '%s' does not parse again: %s", text, err);
    FZ_CHECK(strcmp(a->local, b.local) == 0, "local part '%s' became '%s'", a->local, b.local);
    FZ_CHECK(strcmp(a->domain, b.domain) == 0, "domain '%s' became '%s'", a->domain, b.domain);
    FZ_CHECK(a->utf8 == b.utf8, "utf8 flag changed for '%s'", text);
    smtp_addr_free(&b);
    free(text);
}

/* no_line_break - a string that may reach a header, a log or a reply holds no CR, LF or NUL. */
static bool no_line_break(const char *s)
{
    return s == NULL || strpbrk(s, "\r\n") == NULL;
}

/* no_controls - a decoded DSN parameter (it is copied into DSN headers) holds no control character. */
static bool no_controls(const char *s)
{
    for (; s && *s; s++)
        if ((unsigned char)*s < 32 || *s == 127) return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    uint8_t opts = fz_u8(&in);
    bool esmtp = opts & 1, utf8 = opts & 2;
    const char *line = (const char *)in.p;
    size_t len = in.n;

    smtp_cmd cmd;
    char reply[512];
    int rc = smtp_cmd_parse(line, len, esmtp, &cmd, reply, sizeof reply);
    if (rc != 0) {
        FZ_CHECK(rc >= 400 && rc <= 599, "refusal code %d", rc);
        char code[8];
        snprintf(code, sizeof code, "%d ", rc);
        FZ_CHECK(strncmp(reply, code, strlen(code)) == 0, "reply '%s' for code %d", reply, rc);
        FZ_CHECK(no_line_break(reply), "line break in reply '%s'", reply);
    } else {
        FZ_CHECK(cmd.verb <= SMTP_HOSTILE, "verb %d", (int)cmd.verb);
        if (cmd.verb == SMTP_MAIL || cmd.verb == SMTP_RCPT) {
            check_addr_roundtrip(&cmd.path, cmd.smtputf8 || utf8);
            char *f = smtp_addr_format(&cmd.path);
            FZ_CHECK(no_line_break(f) && strlen(f) < SMTP_PATH_MAX, "path '%s'", f);
            free(f);
        }
        FZ_CHECK(no_controls(cmd.envid), "control character in ENVID '%s'", cmd.envid);
        FZ_CHECK(no_controls(cmd.orcpt), "control character in ORCPT '%s'", cmd.orcpt);
        FZ_CHECK(!cmd.envid || strlen(cmd.envid) <= SMTP_ENVID_MAX, "ENVID of %zu octets", strlen(cmd.envid));
        FZ_CHECK(no_line_break(cmd.arg), "argument with a line break");
        FZ_CHECK(!cmd.solicit || smtp_solicit_check(cmd.solicit, strlen(cmd.solicit)), "SOLICIT '%s'", cmd.solicit);
        FZ_CHECK(cmd.verb != SMTP_ETRN || (cmd.arg && *cmd.arg && !strpbrk(cmd.arg, " \t")), "ETRN node '%s'",
                 cmd.arg ? cmd.arg : "(null)");
    }
    smtp_cmd_free(&cmd);

    smtp_addr a;
    char err[128];
    if (smtp_addr_parse(line, len, utf8, &a, err, sizeof err) == 0) {
        FZ_CHECK(memchr(line, '\0', len) == NULL, "address with a NUL accepted");
        check_addr_roundtrip(&a, utf8);
        smtp_addr_free(&a);
    }
    if (smtp_domain_check(line, len, utf8, err, sizeof err) == 0)
        FZ_CHECK(memchr(line, '\0', len) == NULL && memchr(line, '\r', len) == NULL, "domain with a NUL or CR accepted");
    return 0;
}
