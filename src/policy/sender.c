/*
 * sender.c - the envelope sender as the directory knows it, looked up once MAIL FROM is
 * otherwise accepted: its entry's DN (for group broadcaster rules given as DNs) and the
 * recipient limits of the sender or of its domain (mailRecipientLimit / mailRecipientCutoff and
 * the domain attributes). A sender outside our domains has none; a lookup that cannot answer
 * leaves the sender unknown (logged) rather than refusing the mail.
 */
#include "core/log.h"
#include "dir/dir.h"
#include "policy/decide.h"

#include <stdlib.h>
#include <string.h>

/* One sender lookup in progress. */
typedef struct sender_req {
    policy_sess *ps; /* NULL once the session is gone */
    char *addr;
    void (*done)(policy_sess *ps);
} sender_req;

void policy_sender_clear(policy_sess *ps)
{
    free(ps->sender.dn);
    memset(&ps->sender, 0, sizeof ps->sender);
    ps->rcpt_attempts = 0;
    ps->cutoff_hit = false;
}

/* sender_end - the lookup is over: go on with the MAIL decision. */
static void sender_end(sender_req *q)
{
    policy_sess *ps = q->ps;
    void (*done)(policy_sess *) = q->done;
    free(q->addr);
    free(q);
    if (!ps) return;
    ps->sender_req = NULL;
    done(ps);
}

static void sender_entry(void *arg, sl_result rc, dir_entry *e)
{
    sender_req *q = arg;
    if (rc == SL_OK && q->ps) {
        sender_info *si = &q->ps->sender;
        si->dn = xstrdup(e->dn);
        if (e->rcpt_limit) si->rcpt_limit = e->rcpt_limit;
        if (e->rcpt_cutoff) si->rcpt_cutoff = e->rcpt_cutoff;
    } else if (rc == SL_TEMP && q->ps) {
        log_info(q->ps->s->id, "sender_lookup", "from=<%s> result=tempfail note=\"no sender limits\"", q->addr);
    }
    if (rc == SL_OK) dir_entry_free(e);
    sender_end(q);
}

static void sender_domain(void *arg, sl_result rc, dir_domain_info *info)
{
    sender_req *q = arg;
    if (rc != SL_OK || !q->ps) {
        dir_domain_info_free(info);
        return sender_end(q);
    }
    if (info) {
        q->ps->sender.rcpt_limit = info->rcpt_limit;
        q->ps->sender.rcpt_cutoff = info->rcpt_cutoff;
        dir_domain_info_free(info);
    }
    dir_lookup(q->ps->dir, q->addr, sender_entry, q);
}

void policy_sender_lookup(policy_sess *ps, const char *from, void (*done)(policy_sess *ps))
{
    policy_sender_clear(ps);
    const char *at = strrchr(from, '@');
    if (!at || !at[1]) return done(ps);
    sender_req *q = xcalloc(1, sizeof *q);
    *q = (sender_req){ps, xstrdup(from), done};
    ps->sender_req = q;
    dir_domain(ps->dir, at + 1, sender_domain, q);
}

void policy_sender_abandon(policy_sess *ps)
{
    ps->sender_req->ps = NULL;
    ps->sender_req = NULL;
}
