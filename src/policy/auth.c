/*
 * auth.c - the AUTH decision: the user's entry from the directory (answered now or later), the
 * password hash compared on a worker thread (crypt_r costs milliseconds: never on the loop), then the
 * answer and, on success, the source channel's saslswitchchannel. Unknown and inactive users
 * cost one hash too, so the time taken does not tell which names exist.
 */
#include "conf/conf.h"
#include "core/log.h"
#include "core/workq.h"
#include "dir/dir.h"
#include "policy/decide.h"
#include "policy/status.h"

#include <crypt.h>
#include <stdlib.h>
#include <string.h>

/* One credential check in flight. */
typedef struct auth_job {
    policy_sess *ps;  /* NULL once the session is gone */
    char *user;
    char *pass;       /* wiped and freed after the hash */
    char *stored;     /* the user's userPassword, NULL for an unknown or inactive user */
    bool ok;          /* result, written by the worker */
    char *submit_channel; /* the user's mailSMTPSubmitChannel, or NULL */
} auth_job;

/* password_ok - pass against a userPassword value in a crypt(3) format ("{CRYPT}$6$..." or "$6$..."). */
static bool password_ok(const char *stored, const char *pass)
{
    if (!stored) return false;
    if (str_has_prefix_ci(stored, "{CRYPT}")) stored += 7;
    if (stored[0] == '{' || !stored[0]) return false; /* other schemes (plain text, SSHA) are not accepted */
    struct crypt_data *cd = xcalloc(1, sizeof *cd);
    const char *h = crypt_r(pass, stored, cd);
    bool ok = h && h[0] != '*' && strcmp(h, stored) == 0;
    explicit_bzero(cd, sizeof *cd);
    free(cd);
    return ok;
}

/* auth_hash - worker thread: compare the password (a dummy hash for unknown users). */
static void auth_hash(void *arg)
{
    auth_job *j = arg;
    if (j->stored) j->ok = password_ok(j->stored, j->pass);
    else password_ok("$6$saltsaltsaltsalt$", j->pass);
    explicit_bzero(j->pass, strlen(j->pass));
}

static void auth_job_free(auth_job *j)
{
    free(j->user);
    free(j->pass);
    free(j->stored);
    free(j->submit_channel);
    free(j);
}

/* auth_switch_channel - after a successful AUTH: the user's own mailSMTPSubmitChannel (when
 * that channel exists), else the source channel's saslswitchchannel. */
static void auth_switch_channel(smtp_sess *s, const char *user, const char *submit_channel)
{
    const sl_channel *own = submit_channel ? conf_channel_by_name(s->conf, submit_channel) : NULL;
    if (submit_channel && !own)
        log_warn(s->id, "channel_switch_refused", "user=<%s> to=%s reason=\"no such channel\"", user, submit_channel);
    if (own) {
        log_info(s->id, "channel_switch", "from=%s to=%s user=<%s> reason=mailSMTPSubmitChannel", s->src_channel,
                 own->name, user);
        smtp_sess_set_channel(s, own->name);
        return;
    }
    const sl_channel *src = conf_channel_by_name(s->conf, s->src_channel);
    if (!src || !src->saslswitchchannel) return;
    log_info(s->id, "channel_switch", "from=%s to=%s user=<%s> reason=saslswitchchannel", s->src_channel,
             src->saslswitchchannel, user);
    smtp_sess_set_channel(s, src->saslswitchchannel);
}

/* auth_checked - loop thread: answer the session (if it is still there). */
static void auth_checked(void *arg)
{
    auth_job *j = arg;
    policy_sess *ps = j->ps;
    bool ok = j->ok;
    if (ps) {
        ps->auth = NULL;
        if (ok) auth_switch_channel(ps->s, j->user, j->submit_channel);
    }
    auth_job_free(j);
    if (!ps) return;
    verdict v = ok ? verdict_ok() : verdict_refuse(VERDICT_AUTH_FAILED, false, NULL);
    if (ok) v.cls = VERDICT_AUTH_OK;
    policy_answer(ps, &v);
}

/* auth_user_known - the directory's answer about the user: hash on a worker (a dummy hash for an
 * unknown or inactive user), or a temporary failure when the directory cannot tell. */
static void auth_user_known(void *arg, sl_result rc, dir_entry *u)
{
    auth_job *j = arg;
    bool active = rc == SL_OK && !u->is_group && policy_entry_status(u) == STATUS_ACTIVE;
    if (active && u->password) j->stored = xstrdup(u->password);
    if (active && u->submit_channel) j->submit_channel = xstrdup(u->submit_channel);
    if (rc == SL_OK) dir_entry_free(u);
    if (!j->ps) { /* the session ended meanwhile */
        auth_job_free(j);
        return;
    }
    if (rc == SL_TEMP) {
        policy_sess *ps = j->ps;
        ps->auth = NULL;
        auth_job_free(j);
        verdict v = verdict_refuse(VERDICT_AUTH_TEMP, true, NULL);
        policy_answer(ps, &v);
        return;
    }
    workq_submit(j->ps->p->ctx->wq, auth_hash, auth_checked, j);
}

void policy_decide_auth(policy_sess *ps, const char *user, const char *pass)
{
    if (!*user || !*pass) {
        verdict v = verdict_refuse(VERDICT_AUTH_FAILED, false, NULL);
        policy_answer(ps, &v);
        return;
    }
    auth_job *j = xcalloc(1, sizeof *j);
    j->ps = ps;
    j->user = xstrdup(user);
    j->pass = xstrdup(pass);
    ps->auth = j;
    dir_lookup(ps->dir, user, auth_user_known, j);
}

void policy_auth_abandon(policy_sess *ps)
{
    ps->auth->ps = NULL;
    ps->auth = NULL;
}
