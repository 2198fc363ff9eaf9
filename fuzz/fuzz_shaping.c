/*
 * fuzz_shaping.c - the traffic shaping table parser (conf/shaping.h shaping_parse), its lookups
 * and reaction rules, and a destination's state machine (jobs/shape.h) driven by the same bytes.
 *
 * Input: the table's text (it ends at a NUL, as a file read by conf_load does).
 * Properties: every entry has a lower-case pattern of its kind, a ramp of at least 1 and a floor
 * no higher than its per_hour; a domain entry is what a lookup of its own pattern finds; every
 * rule has a code of three digits or x whose class its status shares, a period for suspend, and
 * matches a reply made of its own code (when it has neither status nor regex); a state driven
 * through sends, halvings, successes and suspensions from the input keeps a rate within
 * [floor, per_hour] while halved and never lets a message start before the spacing allows.
 */
#include "conf/shaping.h"
#include "fuzz.h"
#include "jobs/shape.h"

#include <ctype.h>
#include <string.h>

/* on_err - count the parser's complaints. */
static void on_err(void *arg, int line, const char *msg)
{
    FZ_CHECK(line >= 1 && msg && *msg, "error at line %d", line);
    (*(size_t *)arg)++;
}

/* check_entry - the properties of one parsed entry. */
static void check_entry(const shaping_table *t, const shaping_entry *e)
{
    FZ_CHECK(e->pattern && *e->pattern, "empty pattern");
    for (const char *p = e->pattern; *p; p++) FZ_CHECK(!isupper((unsigned char)*p), "upper case in %s", e->pattern);
    FZ_CHECK(e->ramp >= 1, "ramp %u", e->ramp);
    FZ_CHECK(!e->per_hour || e->floor <= e->per_hour, "floor %u above per_hour %u", e->floor, e->per_hour);
    FZ_CHECK((e->kind == SHAPING_SUFFIX) == (e->pattern[0] == '.'), "kind %d of %s", (int)e->kind, e->pattern);
    if (e->kind == SHAPING_DOMAIN) {
        const shaping_entry *f = shaping_lookup(t, e->pattern, NULL, 0);
        FZ_CHECK(f == e, "lookup of %s found %s", e->pattern, f ? f->pattern : "nothing");
    }
    if (e->kind == SHAPING_MX) FZ_CHECK(shaping_mx_match(e, e->pattern), "%s is not its own provider", e->pattern);
}

/* check_rule - the properties of one parsed rule. */
static void check_rule(const shaping_table *t, const shaping_rule *r)
{
    FZ_CHECK(strlen(r->code) == 3 && r->code[0] >= '2' && r->code[0] <= '5', "code %s", r->code);
    FZ_CHECK(!r->status || r->status[0] == r->code[0], "status %s with code %s", r->status, r->code);
    FZ_CHECK(r->action != SHAPING_SUSPEND || r->period >= 1, "suspend for %u s", r->period);
    if (!r->status && !r->regex_src) {
        char code[4];
        for (int i = 0; i < 3; i++) code[i] = r->code[i] == 'x' ? '0' : r->code[i];
        code[3] = '\0';
        FZ_CHECK(shaping_react(t, code, NULL, "") != NULL, "rule %s matches no reply %s", r->code, code);
    }
}

/* drive - a state machine run by the input's bytes on the table's first entry. */
static void drive(const shaping_entry *e, const uint8_t *data, size_t size)
{
    shape_state st = {0};
    int64_t now = 1000000;
    for (size_t i = 0; i < size && i < 512; i++) {
        now += data[i] * 97;
        int64_t at = 0;
        switch (data[i] & 7) {
        case 0:
        case 1:
            if (shape_check(&st, e, true, now, &at) == SHAPE_GO) shape_sent(&st, e, now);
            else if (at) FZ_CHECK(at > now, "wait until %lld at %lld", (long long)at, (long long)now);
            break;
        case 2: shape_halve(&st, e, now); break;
        case 3: shape_success(&st, e); break;
        case 4: shape_suspend(&st, now, data[i] >> 3); break;
        case 5: shape_resumed(&st, now); break;
        default: st.conns = data[i] >> 5; break;
        }
        unsigned rate = shape_rate(&st, e);
        if (st.level) {
            FZ_CHECK(rate >= 1, "a halved rate of 0");
            FZ_CHECK(!e->per_hour || rate <= e->per_hour, "rate %u above %u", rate, e->per_hour);
        } else {
            FZ_CHECK(rate == e->per_hour, "rate %u without halvings", rate);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fz_text(data, size);
    size_t errs = 0;
    shaping_table *t = shaping_parse(text, on_err, &errs);
    for (size_t i = 0; i < t->n; i++) check_entry(t, &t->v[i]);
    for (size_t i = 0; i < t->n_rules; i++) check_rule(t, &t->rules[i]);
    if (t->n) drive(&t->v[0], data, size);
    shaping_free(t);
    free(text);
    return 0;
}
