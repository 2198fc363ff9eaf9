/*
 * qadmin_req.c - the arguments of `sluice queue` and the selection of messages (see qadmin.h).
 *
 * A command is a row of a table: how many positional words it takes, whether it takes a
 * selection, whether it is an action. Options are "--name VALUE" or "--name=VALUE"; anything
 * else that starts with '-' is an error, never a channel name.
 */
#include "queue/qadmin.h"
#include "core/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
    const char *name;
    int min_pos, max_pos; /* positional words after the command */
    bool selects;         /* takes a selection */
    bool action;
} commands[] = {
    {"list", 0, 1, true, false},   {"show", 1, 1, false, false},   {"summary", 0, 0, true, false},
    {"stats", 0, 0, false, false}, {"hold", 0, 1, true, true},     {"release", 0, 1, true, true},
    {"delete", 0, 1, true, true},  {"return", 0, 1, true, true},   {"retry", 0, 1, true, true},
    {"shaping", 0, 0, false, false},
};

const char *qadmin_usage(void)
{
    return "usage: sluice queue list [CHANNEL] [--json] [SELECTION]\n"
           "       sluice queue show ID [--json]\n"
           "       sluice queue summary [--json] [SELECTION]\n"
           "       sluice queue hold|release|delete|return ID|SELECTION [--json]\n"
           "       sluice queue retry ID|CHANNEL|SELECTION [--json]\n"
           "       sluice queue stats\n"
           "       sluice queue shaping [--json]\n"
           "SELECTION: --all | --from TEXT --to TEXT --domain DOMAIN --channel CHANNEL --older-than DURATION\n"
           "           --reply TEXT (every criterion given must hold)\n";
}

/* The string options: their name and where they go. */
static const char **sel_field(qadmin_sel *s, const char *name)
{
    if (!strcmp(name, "from")) return &s->from;
    if (!strcmp(name, "to")) return &s->to;
    if (!strcmp(name, "domain")) return &s->domain;
    if (!strcmp(name, "channel")) return &s->channel;
    if (!strcmp(name, "reply")) return &s->reply;
    return NULL;
}

/* parse_option - "--name[=value]" at argv[*i] (the value may be the next word); 0 or -1 with err. */
static int parse_option(int argc, char **argv, int *i, qadmin_req *req, strbuf *err)
{
    const char *word = argv[*i] + 2;
    const char *eq = strchr(word, '=');
    char name[32];
    snprintf(name, sizeof name, "%.*s", (int)(eq ? (size_t)(eq - word) : strlen(word)), word);
    if (!strcmp(name, "json") || !strcmp(name, "all")) {
        if (eq) return sb_printf(err, "--%s takes no value\n", name), -1;
        if (!strcmp(name, "json")) req->json = true;
        else req->sel.all = req->sel.any = true;
        return 0;
    }
    const char **field = sel_field(&req->sel, name);
    if (!field && strcmp(name, "older-than") != 0) return sb_printf(err, "unknown option '%s'\n", argv[*i]), -1;
    const char *v = eq ? eq + 1 : *i + 1 < argc ? argv[++*i] : NULL;
    if (!v || !*v) return sb_printf(err, "--%s needs a value\n", name), -1;
    req->sel.any = true;
    if (field) {
        *field = v;
        return 0;
    }
    if (parse_duration(v, &req->sel.older_than) != 0 || req->sel.older_than <= 0)
        return sb_printf(err, "--older-than: bad duration '%s' (e.g. 30m, 2h, 3d)\n", v), -1;
    return 0;
}

/* check_shape - the command's positional words and selection; 0 or -1 with err. */
static int check_shape(const qadmin_req *req, size_t c, int npos, strbuf *err)
{
    if (npos < commands[c].min_pos || npos > commands[c].max_pos)
        return sb_printf(err, "%s: wrong number of arguments\n", req->cmd), -1;
    if (req->sel.any && !commands[c].selects) return sb_printf(err, "%s takes no selection\n", req->cmd), -1;
    if (!commands[c].action) return 0;
    if (npos && req->sel.any) return sb_printf(err, "%s: give an ID or a selection, not both\n", req->cmd), -1;
    if (!npos && !req->sel.any)
        return sb_printf(err, "%s: give an ID or a selection (--all for every message)\n", req->cmd), -1;
    return 0;
}

int qadmin_req_parse(int argc, char **argv, qadmin_req *req, strbuf *err)
{
    memset(req, 0, sizeof *req);
    size_t c = SL_ARRAY_LEN(commands);
    for (size_t k = 0; argc > 0 && k < SL_ARRAY_LEN(commands); k++)
        if (!strcmp(argv[0], commands[k].name)) c = k;
    if (c == SL_ARRAY_LEN(commands)) {
        sb_printf(err, "unknown command '%s'\n", argc > 0 ? argv[0] : "");
        return 2;
    }
    req->cmd = commands[c].name;
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1] == '-' && argv[i][2]) {
            if (parse_option(argc, argv, &i, req, err) < 0) return 2;
        } else if (argv[i][0] == '-') {
            sb_printf(err, "unknown option '%s'\n", argv[i]);
            return 2;
        } else if (npos++ == 0) {
            req->arg = argv[i];
        }
    }
    return check_shape(req, c, npos, err) < 0 ? 2 : 0;
}

bool qadmin_req_is_action(const qadmin_req *req)
{
    for (size_t k = 0; k < SL_ARRAY_LEN(commands); k++)
        if (!strcmp(req->cmd, commands[k].name)) return commands[k].action;
    return false;
}

/* ---- selection ---- */

/* contains_ci - whether hay holds needle, ignoring ASCII case. */
static bool contains_ci(const char *hay, const char *needle)
{
    return hay && strcasestr(hay, needle) != NULL;
}

/* rcpt_matches - a pending recipient that satisfies --to and --domain. */
static bool rcpt_matches(const qadmin_sel *sel, const qrcpt *r)
{
    if (r->status != QR_PENDING) return false;
    if (sel->to && !contains_ci(r->addr, sel->to) && !contains_ci(r->orig, sel->to)) return false;
    if (sel->domain) {
        const char *at = strrchr(r->addr, '@');
        if (!at || strcasecmp(at + 1, sel->domain) != 0) return false;
    }
    return true;
}

bool qadmin_sel_match(const qadmin_sel *sel, const qmsg *m, const char *reply, int64_t now)
{
    if (sel->channel && !str_ieq(m->channel, sel->channel)) return false;
    if (sel->from && !contains_ci(m->sender, sel->from)) return false;
    if (sel->older_than && now - m->arrival < sel->older_than) return false;
    if (sel->reply && !contains_ci(reply, sel->reply)) return false;
    if (!sel->to && !sel->domain) return true;
    for (size_t i = 0; i < m->n_rcpts; i++)
        if (rcpt_matches(sel, &m->rcpts[i])) return true;
    return false;
}

/* ---- action reports ---- */

void qadmin_act_report(qadmin_acts *a, const char *id, const char *channel, const char *action, const char *result,
                       const char *detail)
{
    if (a->json) {
        sb_puts(a->out, a->n ? ",\n" : "[\n");
        sb_putc(a->out, '{');
        json_put_member(a->out, true, "id", id);
        json_put_member(a->out, false, "channel", channel);
        json_put_member(a->out, false, "action", action);
        json_put_member(a->out, false, "result", result);
        json_put_member(a->out, false, "detail", detail);
        sb_putc(a->out, '}');
    } else if (!strcmp(result, "done")) {
        sb_printf(a->out, "%s %s: %s%s%s%s\n", id, channel, action, detail ? " (" : "", detail ? detail : "",
                  detail ? ")" : "");
    } else if (!strcmp(result, "busy")) {
        sb_printf(a->out, "%s %s: busy (%s), try again\n", id, channel, detail ? detail : "");
    } else {
        sb_printf(a->out, "%s %s: %s failed: %s\n", id, channel, action, detail ? detail : "");
    }
    a->n++;
}

void qadmin_acts_end(qadmin_acts *a)
{
    if (a->json) sb_puts(a->out, a->n ? "\n]\n" : "[]\n");
}
