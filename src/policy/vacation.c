/*
 * vacation.c - Sieve vacation replies (see vacation.h).
 */
#include "policy/vacation.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "conf/conf.h"
#include "core/log.h"
#include "dsn/autoreply.h"

char *vacation_header_value(const char *hdr, size_t hlen, const char *name)
{
    size_t nl = strlen(name);
    const char *p = hdr, *end = hdr + hlen;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *next = eol ? eol + 1 : end;
        if ((size_t)(end - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            strbuf v;
            sb_init(&v);
            const char *q = p + nl + 1;
            for (;;) { /* this line, then its continuation lines */
                const char *e = next;
                while (e > q && (e[-1] == '\n' || e[-1] == '\r')) e--;
                sb_append(&v, q, (size_t)(e - q));
                if (next >= end || (*next != ' ' && *next != '\t')) break;
                q = next;
                eol = memchr(q, '\n', (size_t)(end - q));
                next = eol ? eol + 1 : end;
            }
            char *out = xstrdup(str_trim(v.data ? v.data : (char *)""));
            sb_free(&v);
            return out;
        }
        p = next;
    }
    return NULL;
}

/* has_field - whether hdr has a field called name. */
static bool has_field(const char *hdr, size_t hlen, const char *name)
{
    char *v = vacation_header_value(hdr, hlen, name);
    free(v);
    return v != NULL;
}

/* names_address - whether the header value v mentions addr (case-insensitive, as a whole address). */
static bool names_address(const char *v, const char *addr)
{
    size_t n = strlen(addr);
    if (!v || !n) return false;
    for (const char *p = v; (p = strcasestr(p, addr)) != NULL; p++) {
        char before = p == v ? ' ' : p[-1], after = p[n];
        bool open = before == '<' || before == ' ' || before == ',' || before == ':' || before == '\t';
        bool close = after == '>' || after == '\0' || after == ',' || after == ' ' || after == ';';
        if (open && close) return true;
    }
    return false;
}

const char *vacation_allowed(const char *hdr, size_t hlen, const char *sender, const char *rcpt,
                             const strvec *addresses)
{
    if (!sender || !*sender) return "null sender";
    const char *at = strrchr(sender, '@');
    size_t ll = at ? (size_t)(at - sender) : strlen(sender);
    static const char *const robots[] = {"mailer-daemon", "listserv", "majordomo", "postmaster"};
    for (size_t i = 0; i < SL_ARRAY_LEN(robots); i++)
        if (ll == strlen(robots[i]) && strncasecmp(sender, robots[i], ll) == 0) return "sender is a robot";
    if ((ll > 6 && strncasecmp(sender, "owner-", 6) == 0) || (ll > 8 && strncasecmp(sender + ll - 8, "-request", 8) == 0))
        return "sender is a list";
    char *auto_sub = vacation_header_value(hdr, hlen, "Auto-Submitted");
    bool automatic = auto_sub && strncasecmp(auto_sub, "no", 2) != 0;
    free(auto_sub);
    if (automatic) return "auto-submitted";
    char *prec = vacation_header_value(hdr, hlen, "Precedence");
    bool bulk = prec && (str_ieq(prec, "bulk") || str_ieq(prec, "list") || str_ieq(prec, "junk"));
    free(prec);
    if (bulk) return "precedence bulk";
    if (has_field(hdr, hlen, "List-Id") || has_field(hdr, hlen, "List-Unsubscribe") || has_field(hdr, hlen, "List-Post"))
        return "mailing list";
    char *to = vacation_header_value(hdr, hlen, "To"), *cc = vacation_header_value(hdr, hlen, "Cc");
    bool named = names_address(to, rcpt) || names_address(cc, rcpt);
    for (size_t i = 0; addresses && i < addresses->n && !named; i++)
        named = names_address(to, addresses->v[i]) || names_address(cc, addresses->v[i]);
    free(to);
    free(cc);
    return named ? NULL : "recipient not in To/Cc";
}

/* fnv - a 64-bit FNV-1a hash of the parts, for the state file's name. */
static uint64_t fnv(const char *const *parts, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        for (const char *p = parts[i]; p && *p; p++) h = (h ^ (unsigned char)tolower((unsigned char)*p)) * 1099511628211ULL;
        h = (h ^ 0xff) * 1099511628211ULL;
    }
    return h;
}

/* already_replied - whether a reply for (rcpt, sender, handle) went out within days; if not,
 * remember this one now. The state is a file whose time is the last reply's. */
static bool already_replied(const sl_conf *c, const char *rcpt, const char *sender, const char *handle, unsigned days)
{
    char *dir = c->opt.vacation_dir ? xstrdup(c->opt.vacation_dir) : xasprintf("%s/vacation", c->opt.queue_dir);
    const char *parts[3] = {rcpt, sender, handle ? handle : ""};
    char *path = xasprintf("%s/%016llx", dir, (unsigned long long)fnv(parts, 3));
    struct stat st;
    int64_t now = now_unix();
    bool recent = stat(path, &st) == 0 && (int64_t)st.st_mtime > now - (int64_t)days * 86400;
    if (!recent) {
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            log_warn(NULL, "vacation_state_error", "dir=\"%s\" error=\"%s\"", dir, strerror(errno));
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd >= 0) {
            dprintf(fd, "%s\n%s\n", rcpt, sender);
            close(fd);
        } else {
            log_warn(NULL, "vacation_state_error", "file=\"%s\" error=\"%s\"", path, strerror(errno));
        }
    }
    free(path);
    free(dir);
    return recent;
}

void vacation_consider(sl_ctx *ctx, const smtp_sess *s, const qrcpt *rcpt, const qbody *content, const sieve_result *r)
{
    const char *data = content->data;
    size_t hlen = content->len;
    const char *blank = NULL;
    for (size_t i = 0; i + 3 < content->len && !blank; i++)
        if (memcmp(data + i, "\r\n\r\n", 4) == 0) blank = data + i + 2;
    if (blank) hlen = (size_t)(blank - data);
    const char *me = rcpt->orig ? rcpt->orig : rcpt->addr;
    const char *why = vacation_allowed(data, hlen, s->sender, me, &r->vacation_addresses);
    if (!why && already_replied(s->conf, me, s->sender, r->vacation_handle ? r->vacation_handle : r->vacation_reason,
                                r->vacation_days ? r->vacation_days : 7))
        why = "replied within the period";
    if (why) {
        log_info(s->qid, "vacation_skipped", "to=<%s> sender=<%s> reason=\"%s\"", me, s->sender ? s->sender : "", why);
        return;
    }
    char *orig_subject = vacation_header_value(data, hlen, "Subject");
    char *subject = r->vacation_subject ? xstrdup(r->vacation_subject)
                                        : xasprintf("Auto: %s", orig_subject ? orig_subject : "");
    char *msgid = vacation_header_value(data, hlen, "Message-ID");
    autoreply a = {s->src_channel, s->qid, r->vacation_from ? r->vacation_from : me, s->sender, subject,
                   r->vacation_reason ? r->vacation_reason : "", r->vacation_mime, msgid};
    autoreply_submit(ctx, &a, NULL, NULL);
    free(orig_subject);
    free(subject);
    free(msgid);
}
