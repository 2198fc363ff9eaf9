/* trace_rewrite.c - the rewrite engine: search order, templates, substitutions, conditions, errors, channel choice. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cli/load.h"
#include "conf/conf.h"
#include "rewrite/rewrite.h"

#ifndef SLUICE_ETC_DIR
#define SLUICE_ETC_DIR "../../etc"
#endif

/* Substitutions, search order and template forms; every rule is the only one that can produce its output. */
static const char *CNF_MAIN =
    "! exact, suffix and '.' rules expose $U, $H and $D in the local part\n"
    "exact.test        $U+h=$H+d=$D%out.test@tcp-daemon\n"
    ".suffix.test      $U+h=$H+d=$D%out.test@tcp-daemon\n"
    ".                 $U+h=$H+d=$D%out.test@tcp-daemon\n"
    "! search order: the longest suffix wins whatever the file order\n"
    ".order.test       outer%x.test@tcp-daemon\n"
    ".b.order.test     inner%x.test@tcp-daemon\n"
    "dup.test          first%x.test@tcp-daemon\n"
    "dup.test          second%x.test@tcp-daemon\n"
    "! '*.rest' before '.rest'; one '*' per label removed\n"
    ".pri.test         dot+h=$H+d=$D%x.test@tcp-daemon\n"
    "*.pri.test        star+h=$H+d=$D%x.test@tcp-daemon\n"
    "*.*.deep.test     twostars+h=$H+d=$D%x.test@tcp-daemon\n"
    "! $nH $nD $0U $1U\n"
    ".n.test           $1H+$2H+$3H+$0D+$1D+$2D%x.test@tcp-daemon\n"
    "host.nd.test      $U%$1D@tcp-daemon\n"
    "sub.test          [$0U][$1U]%x.test@tcp-daemon\n"
    "! domain literals\n"
    "[10.1.2.3]        exact-lit+L=$L+D=$D%x.test@tcp-daemon\n"
    "[10.1.]           lit10+L=$L+D=$D+H=$H%x.test@tcp-daemon\n"
    "[172.16.]         $U%[172.16.$L]@tcp-daemon\n"
    "[]                any-lit+L=$L+D=$D+H=$H%x.test@tcp-daemon\n"
    "! escapes and the three template forms\n"
    "esc.test          a$$b$%c$@d%x.test@tcp-daemon\n"
    "ab.test           $U@tcp-daemon\n"
    "pct.test          $U%exact.test\n"
    "! routing host without a channel is rewritten again\n"
    "via.test          $U%$D@relay.test\n"
    "relay.test        ignored%ignored.test@local-daemon\n"
    "self.test         $U@self.test\n"
    "loop1.test        $U%loop2.test\n"
    "loop2.test        $U%loop1.test\n"
    "rh1.test          $U@rh2.test\n"
    "rh2.test          $U@rh1.test\n"
    "! the loop bound: 10 rewrites in all\n"
    "c0.test           $U%c1.test\n"
    "c1.test           $U%c2.test\n"
    "c2.test           $U%c3.test\n"
    "c3.test           $U%c4.test\n"
    "c4.test           $U%c5.test\n"
    "c5.test           $U%c6.test\n"
    "c6.test           $U%c7.test\n"
    "c7.test           $U%c8.test\n"
    "c8.test           $U%c9.test\n"
    "c9.test           $U%c10.test\n"
    "c10.test          $U@tcp-daemon\n"
    "! case\n"
    "MiXeD.Test        $U%$D@TCP-Daemon\n"
    "\n"
    "tcp_out smtp\n"
    "tcp-daemon\n"
    "\n"
    "l\n"
    "local-daemon\n";

/* No "." rule: unknown domains fail. */
static const char *CNF_NODOT = "known.test        $U%$D@nowhere\n"
                               "\n"
                               "l\n"
                               "local-daemon\n";

/* All-wildcard patterns. */
static const char *CNF_WILD = "*                 one+h=$H+d=$D%x.test@tcp-daemon\n"
                              "*.*.*             three+h=$H+d=$D%x.test@tcp-daemon\n"
                              "[*.*]             twoel+L=$L+H=$H%x.test@tcp-daemon\n"
                              ".                 dot%x.test@tcp-daemon\n"
                              "\n"
                              "tcp_out smtp\n"
                              "tcp-daemon\n";

/* Conditions, $? errors, channel host names as rules. No "." rule. */
static const char *CNF_COND =
    "! source channel: several $M are ORed, $N are ANDed; a failing rule is skipped\n"
    "m.test            m%x.test@tcp-daemon$Mproc_a$Mproc_b\n"
    "m.test            mfallback%x.test@tcp-daemon\n"
    "n.test            n%x.test@tcp-daemon$Nproc_a$Nproc_b\n"
    "n.test            nfallback%x.test@tcp-daemon\n"
    "skip.m2.test      exact%x.test@tcp-daemon$Mproc_a\n"
    ".m2.test          suffix%x.test@tcp-daemon\n"
    "nr.test           nr%x.test@tcp-daemon$Mproc_a\n"
    "nr.test           nrfallback%x.test@tcp-daemon\n"
    "! destination channel\n"
    "q.test            q%x.test@tcp-daemon$Qtcp_out\n"
    "q.test            qfallback%x.test@tcp-daemon\n"
    "c.test            c%x.test@tcp-daemon$Ctcp_out\n"
    "c.test            cfallback%x.test@tcp-daemon\n"
    "! kind of address\n"
    "e.test            e%x.test@tcp-daemon$E\n"
    "e.test            note%x.test@tcp-daemon\n"
    "b.test            b%x.test@tcp-daemon$B\n"
    "b.test            notb%x.test@tcp-daemon\n"
    "f.test            f%x.test@tcp-daemon$F\n"
    "f.test            notf%x.test@tcp-daemon\n"
    "r.test            r%x.test@tcp-daemon$R\n"
    "r.test            notr%x.test@tcp-daemon\n"
    "ef.test           ef%x.test@tcp-daemon$E$F\n"
    "ef.test           notef%x.test@tcp-daemon\n"
    "! every condition fails: nothing fires for the pattern\n"
    "none.test         none%x.test@tcp-daemon$Mproc_a\n"
    "! error texts\n"
    "err.test          $?No-such-domain\n"
    "temp.test         $4004002?Try-later\n"
    "errm.test         $?Not-from-proc_a$Mproc_a\n"
    "errm.test         $U%$D@tcp-daemon\n"
    "sticky.test       $U%sticky2.test$?Sticky-error\n"
    "sticky2.test      $U@nowhere-daemon\n"
    "ok.test           $U%$D@tcp-daemon$?unused\n"
    "tcp-daemon        $?never-shown\n"
    "pct-err.test      $?mail-to-postmaster@example.com-instead\n"
    "! channel host names: an explicit rule wins, a channel host beats a suffix rule\n"
    "proc_a-daemon     $U%override.test@tcp-daemon\n"
    ".sfx.test         $U%$H$D@tcp-daemon\n"
    "\n"
    "tcp_out smtp\n"
    "tcp-daemon\n"
    "\n"
    "tcp_sfx smtp\n"
    "mail.sfx.test\n"
    "\n"
    "proc_a\n"
    "proc_a-daemon\n"
    "\n"
    "proc_b\n"
    "proc_b-daemon\n"
    "\n"
    "proc_nr norules\n"
    "proc_nr-daemon\n"
    "\n"
    "l\n"
    "local-daemon\n";

/* The issue's seed configuration, verbatim, above the ordinary "." rule. */
static const char *CNF_SEED =
    "! sluice.cnf, rewrite rules, above the ordinary \".\" rule\n"
    ". $U%$H$,$H@tcp_notify-daemon$Mprocess_dsn\n"
    ".                  $U%$H@tcp_local-daemon\n"
    "\n"
    "! after the blank line, channel blocks\n"
    "defaults notificationchannel process_dsn dispositionchannel process_dsn\n"
    "\n"
    "process_dsn\n"
    "process_dsn-daemon\n"
    "\n"
    "tcp_notify smtp mx single_sys remotehost inner subdirs 20 maxjobs 10 pool NOTIFY_POOL backoff \"pt4h\" \"pt8h\" "
    "notices 1 loopcheck\n"
    "tcp_notify-daemon\n"
    "\n"
    "tcp_local smtp mx\n"
    "tcp_local-daemon\n";

typedef struct {
    const char **cnf;
    const char *addr;
    const char *src;    /* source channel */
    const char *dst;    /* destination channel */
    enum rw_kind kind;
    sl_result res;
    const char *want_addr;    /* SL_OK */
    const char *want_host;    /* SL_OK */
    const char *want_channel; /* SL_OK */
    const char *want_error;   /* otherwise */
    const char *want_status;  /* otherwise */
} rw_case;

#define OK(cnf, addr, src, dst, kind, a, h, ch) {&cnf, addr, src, dst, kind, SL_OK, a, h, ch, NULL, NULL}
#define BAD(cnf, addr, src, dst, kind, res, err, st) {&cnf, addr, src, dst, kind, res, NULL, NULL, NULL, err, st}
#define TO RW_ENV_TO
#define FROM RW_ENV_FROM
#define HTO RW_HDR_TO
#define HFROM RW_HDR_FROM

static const rw_case rw_cases[] = {
    /* exact host: $H empty, $D the host */
    OK(CNF_MAIN, "u@exact.test", "tcp_local", NULL, TO, "u+h=+d=exact.test@out.test", "tcp-daemon", "tcp_out"),
    /* .suffix: $H the unmatched left part, $D the matched part with its dot */
    OK(CNF_MAIN, "u@a.b.suffix.test", "tcp_local", NULL, TO, "u+h=a.b+d=.suffix.test@out.test", "tcp-daemon", "tcp_out"),
    OK(CNF_MAIN, "u@x.suffix.test", "tcp_local", NULL, TO, "u+h=x+d=.suffix.test@out.test", "tcp-daemon", "tcp_out"),
    /* ".": $H the whole host, $D empty; ".suffix.test" does not match "suffix.test" */
    OK(CNF_MAIN, "u@elsewhere.example", "tcp_local", NULL, TO, "u+h=elsewhere.example+d=@out.test", "tcp-daemon", "tcp_out"),
    OK(CNF_MAIN, "u@suffix.test", "tcp_local", NULL, TO, "u+h=suffix.test+d=@out.test", "tcp-daemon", "tcp_out"),
    /* search order and duplicates */
    OK(CNF_MAIN, "u@a.b.order.test", NULL, NULL, TO, "inner@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_MAIN, "u@b.order.test", NULL, NULL, TO, "outer@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_MAIN, "u@dup.test", NULL, NULL, TO, "first@x.test", "tcp-daemon", "tcp_out"),
    /* '*.pri.test' before '.pri.test'; '*' is exactly one label, wildcard labels are $H */
    OK(CNF_MAIN, "u@a.pri.test", NULL, NULL, TO, "star+h=a+d=.pri.test@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_MAIN, "u@a.b.pri.test", NULL, NULL, TO, "dot+h=a.b+d=.pri.test@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_MAIN, "u@a.b.deep.test", NULL, NULL, TO, "twostars+h=a.b+d=.deep.test@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_MAIN, "u@a.deep.test", NULL, NULL, TO, "u+h=a.deep.test+d=@out.test", "tcp-daemon", "tcp_out"),
    /* $nH and $nD drop the first n labels; a leading dot of $D stays */
    OK(CNF_MAIN, "u@a.b.c.n.test", NULL, NULL, TO, "b.c+c++.n.test+.test+@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_MAIN, "u@host.nd.test", NULL, NULL, TO, "u@nd.test", "tcp-daemon", "tcp_out"),
    /* $0U without the subaddress, $1U the subaddress with its '+' */
    OK(CNF_MAIN, "u+tag@sub.test", NULL, NULL, TO, "[u][+tag]@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_MAIN, "u@sub.test", NULL, NULL, TO, "[u][]@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_MAIN, "a+b+c@sub.test", NULL, NULL, TO, "[a][+b+c]@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_MAIN, "\"a+b\"+c@sub.test", NULL, NULL, TO, "[\"a+b\"][+c]@x.test", "tcp-daemon", "tcp_out"),
    /* domain literals shorten inside the brackets, then [], then [*...]; $L is the unmatched part */
    OK(CNF_MAIN, "u@[10.1.2.3]", NULL, NULL, TO, "exact-lit+L=+D=[10.1.2.3]@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_MAIN, "u@[10.1.9.9]", NULL, NULL, TO, "lit10+L=9.9+D=[10.1.9.9]+H=@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_MAIN, "u@[172.16.5.5]", NULL, NULL, TO, "u@[172.16.5.5]", "tcp-daemon", "tcp_out"),
    OK(CNF_MAIN, "u@[192.0.2.1]", NULL, NULL, TO, "any-lit+L=192.0.2.1+D=[192.0.2.1]+H=@x.test", "tcp-daemon", "tcp_out"),
    /* $$ $% $@ */
    OK(CNF_MAIN, "u@esc.test", NULL, NULL, TO, "a$b%c@d@x.test", "tcp-daemon", "tcp_out"),
    /* A@B: routing host B */
    OK(CNF_MAIN, "u@ab.test", NULL, NULL, TO, "u@tcp-daemon", "tcp-daemon", "tcp_out"),
    /* A%B: rewrite A@B again */
    OK(CNF_MAIN, "u@pct.test", NULL, NULL, TO, "u+h=+d=exact.test@out.test", "tcp-daemon", "tcp_out"),
    /* routing host without a channel: rewritten again, the address kept */
    OK(CNF_MAIN, "u@via.test", NULL, NULL, TO, "u@via.test", "local-daemon", "l"),
    BAD(CNF_MAIN, "u@self.test", NULL, NULL, TO, SL_PERM, "no channel for routing host self.test", "5.1.2"),
    BAD(CNF_MAIN, "u@loop1.test", NULL, NULL, TO, SL_PERM, "rewrite loop: u@loop1.test not routed after 10 rewrites", "5.4.6"),
    BAD(CNF_MAIN, "u@rh1.test", NULL, NULL, TO, SL_PERM, "rewrite loop: u@rh1.test not routed after 10 rewrites", "5.4.6"),
    /* the bound is exactly 10 rewrites: c1 takes 10, c0 takes 11 */
    OK(CNF_MAIN, "u@c1.test", NULL, NULL, TO, "u@tcp-daemon", "tcp-daemon", "tcp_out"),
    BAD(CNF_MAIN, "u@c0.test", NULL, NULL, TO, SL_PERM, "rewrite loop: u@c0.test not routed after 10 rewrites", "5.4.6"),
    /* case: hosts compare case-insensitively, the text keeps its case */
    OK(CNF_MAIN, "U@EXACT.Test", NULL, NULL, TO, "U+h=+d=EXACT.Test@out.test", "tcp-daemon", "tcp_out"),
    OK(CNF_MAIN, "u@mixed.TEST", NULL, NULL, TO, "u@mixed.TEST", "TCP-Daemon", "tcp_out"),
    OK(CNF_MAIN, "u@A.B.Suffix.TEST", NULL, NULL, TO, "u+h=A.B+d=.Suffix.TEST@out.test", "tcp-daemon", "tcp_out"),
    /* quoted local part containing '@' */
    OK(CNF_MAIN, "\"a@b\"@exact.test", NULL, NULL, TO, "\"a@b\"+h=+d=exact.test@out.test", "tcp-daemon", "tcp_out"),
    BAD(CNF_MAIN, "\"a@exact.test\"", NULL, NULL, TO, SL_PERM, "no domain in address '\"a@exact.test\"'", "5.1.3"),
    /* malformed addresses */
    BAD(CNF_MAIN, "justuser", NULL, NULL, TO, SL_PERM, "no domain in address 'justuser'", "5.1.3"),
    BAD(CNF_MAIN, "u@", NULL, NULL, TO, SL_PERM, "no domain in address 'u@'", "5.1.3"),
    BAD(CNF_MAIN, "u@a..b", NULL, NULL, TO, SL_PERM, "bad domain 'a..b'", "5.1.2"),
    /* no rule at all, no channel */
    BAD(CNF_NODOT, "u@unknown.example", NULL, NULL, TO, SL_PERM, "no rewrite rule for unknown.example", "5.1.2"),
    BAD(CNF_NODOT, "u@known.test", NULL, NULL, TO, SL_PERM, "no channel for routing host nowhere", "5.1.2"),
    /* all-wildcard patterns: one '*' per label, tried just before "." */
    OK(CNF_WILD, "u@a", NULL, NULL, TO, "one+h=a+d=@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_WILD, "u@a.b", NULL, NULL, TO, "dot@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_WILD, "u@a.b.c", NULL, NULL, TO, "three+h=a.b.c+d=@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_WILD, "u@[1.2]", NULL, NULL, TO, "twoel+L=1.2+H=[1.2]@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_WILD, "u@[1.2.3]", NULL, NULL, TO, "dot@x.test", "tcp-daemon", "tcp_out"),

    /* $M: any of several; an unknown or missing source channel fails it; norules source: not checked */
    OK(CNF_COND, "u@m.test", "proc_a", NULL, TO, "m@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_COND, "u@m.test", "proc_b", NULL, TO, "m@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_COND, "u@m.test", "PROC_B", NULL, TO, "m@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_COND, "u@m.test", "tcp_out", NULL, TO, "mfallback@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_COND, "u@m.test", "tcp_local", NULL, TO, "mfallback@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_COND, "u@m.test", NULL, NULL, TO, "mfallback@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_COND, "u@nr.test", "proc_nr", NULL, TO, "nr@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_COND, "u@nr.test", "proc_b", NULL, TO, "nrfallback@x.test", "tcp-daemon", "tcp_out"),
    /* $N: the rule fails if any names the source channel */
    OK(CNF_COND, "u@n.test", "proc_a", NULL, TO, "nfallback@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_COND, "u@n.test", "proc_b", NULL, TO, "nfallback@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_COND, "u@n.test", "tcp_out", NULL, TO, "n@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_COND, "u@n.test", NULL, NULL, TO, "n@x.test", "tcp-daemon", "tcp_out"),
    /* a skipped rule goes on with the next, less specific pattern */
    OK(CNF_COND, "u@skip.m2.test", "proc_a", NULL, TO, "exact@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_COND, "u@skip.m2.test", "proc_b", NULL, TO, "suffix@x.test", "tcp-daemon", "tcp_out"),
    BAD(CNF_COND, "u@none.test", "proc_b", NULL, TO, SL_PERM, "no rewrite rule for none.test", "5.1.2"),
    /* $Q/$C: ignored for envelope To or an unknown destination, and for a norules destination */
    OK(CNF_COND, "u@q.test", NULL, "l", TO, "q@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_COND, "u@c.test", NULL, "tcp_out", TO, "c@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_COND, "u@q.test", NULL, NULL, FROM, "q@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_COND, "u@q.test", NULL, "tcp_out", FROM, "q@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_COND, "u@q.test", NULL, "l", FROM, "qfallback@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_COND, "u@q.test", NULL, "proc_nr", FROM, "q@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_COND, "u@c.test", NULL, "tcp_out", HTO, "cfallback@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_COND, "u@c.test", NULL, "l", HFROM, "c@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_COND, "u@c.test", NULL, "proc_nr", FROM, "c@x.test", "tcp-daemon", "tcp_out"),
    /* $E $B $F $R */
    OK(CNF_COND, "u@e.test", NULL, NULL, TO, "e@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_COND, "u@e.test", NULL, NULL, FROM, "e@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_COND, "u@e.test", NULL, NULL, HTO, "note@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_COND, "u@e.test", NULL, NULL, HFROM, "note@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_COND, "u@b.test", NULL, NULL, TO, "notb@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_COND, "u@b.test", NULL, NULL, FROM, "notb@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_COND, "u@b.test", NULL, NULL, HTO, "b@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_COND, "u@b.test", NULL, NULL, HFROM, "b@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_COND, "u@f.test", NULL, NULL, TO, "f@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_COND, "u@f.test", NULL, NULL, FROM, "notf@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_COND, "u@f.test", NULL, NULL, HTO, "f@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_COND, "u@f.test", NULL, NULL, HFROM, "notf@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_COND, "u@r.test", NULL, NULL, TO, "notr@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_COND, "u@r.test", NULL, NULL, FROM, "r@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_COND, "u@r.test", NULL, NULL, HTO, "notr@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_COND, "u@r.test", NULL, NULL, HFROM, "r@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_COND, "u@ef.test", NULL, NULL, TO, "ef@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_COND, "u@ef.test", NULL, NULL, FROM, "notef@x.test", "tcp-daemon", "tcp_out"),
    OK(CNF_COND, "u@ef.test", NULL, NULL, HTO, "notef@x.test", "tcp-daemon", "tcp_out"),
    /* $? error texts: alone, with a status, with conditions, sticky, unused when routed */
    BAD(CNF_COND, "u@err.test", NULL, NULL, TO, SL_PERM, "No-such-domain", "5.1.2"),
    BAD(CNF_COND, "u@temp.test", NULL, NULL, TO, SL_TEMP, "Try-later", "4.4.2"),
    BAD(CNF_COND, "u@errm.test", "proc_a", NULL, TO, SL_PERM, "Not-from-proc_a", "5.1.2"),
    OK(CNF_COND, "u@errm.test", "proc_b", NULL, TO, "u@errm.test", "tcp-daemon", "tcp_out"),
    BAD(CNF_COND, "u@sticky.test", NULL, NULL, TO, SL_PERM, "Sticky-error", "5.1.2"),
    OK(CNF_COND, "u@ok.test", NULL, NULL, TO, "u@ok.test", "tcp-daemon", "tcp_out"),
    BAD(CNF_COND, "u@pct-err.test", NULL, NULL, TO, SL_PERM, "mail-to-postmaster@example.com-instead", "5.1.2"),
    /* a $?-only rule looks the host up as is: a channel host still routes */
    OK(CNF_COND, "u@tcp-daemon", NULL, NULL, TO, "u@tcp-daemon", "tcp-daemon", "tcp_out"),
    /* channel official host names act as rules (not with norules); explicit exact rules win */
    OK(CNF_COND, "u@local-daemon", NULL, NULL, TO, "u@local-daemon", "local-daemon", "l"),
    OK(CNF_COND, "U@Proc_B-Daemon", NULL, NULL, TO, "U@Proc_B-Daemon", "proc_b-daemon", "proc_b"),
    OK(CNF_COND, "u@proc_a-daemon", NULL, NULL, TO, "u@override.test", "tcp-daemon", "tcp_out"),
    OK(CNF_COND, "u@mail.sfx.test", NULL, NULL, TO, "u@mail.sfx.test", "mail.sfx.test", "tcp_sfx"),
    OK(CNF_COND, "u@other.sfx.test", NULL, NULL, TO, "u@other.sfx.test", "tcp-daemon", "tcp_out"),
    BAD(CNF_COND, "u@proc_nr-daemon", NULL, NULL, TO, SL_PERM, "no rewrite rule for proc_nr-daemon", "5.1.2"),

    /* the seed rule: unchanged address, tcp_notify only from process_dsn; otherwise the next "." rule */
    OK(CNF_SEED, "user@example.org", "process_dsn", NULL, TO, "user@example.org", "tcp_notify-daemon", "tcp_notify"),
    OK(CNF_SEED, "User@Mail.Example.ORG", "process_dsn", NULL, TO, "User@Mail.Example.ORG", "tcp_notify-daemon",
       "tcp_notify"),
    OK(CNF_SEED, "\"a b\"@[192.0.2.7]", "process_dsn", NULL, TO, "\"a b\"@[192.0.2.7]", "tcp_notify-daemon",
       "tcp_notify"),
    OK(CNF_SEED, "user@example.org", "tcp_local", NULL, TO, "user@example.org", "tcp_local-daemon", "tcp_local"),
    OK(CNF_SEED, "user@example.org", "tcp_notify", NULL, TO, "user@example.org", "tcp_local-daemon", "tcp_local"),
    OK(CNF_SEED, "user@example.org", NULL, NULL, TO, "user@example.org", "tcp_local-daemon", "tcp_local"),
};

/* conf_from - a conf holding only the rules and channels of a sluice.cnf text. */
static sl_conf *conf_from(const char *text)
{
    sl_conf *c = xcalloc(1, sizeof *c);
    conf_errors errs = {0};
    int n = conf_parse_sluice_cnf("sluice.cnf", text, c, &errs);
    if (n) fail_msg("test configuration: %s", errs.msgs.v[0]);
    sv_free(&errs.msgs);
    return c;
}

static const char **all_cnfs[] = {&CNF_MAIN, &CNF_NODOT, &CNF_WILD, &CNF_COND, &CNF_SEED};

static void test_rewrite_table(void **state)
{
    (void)state;
    sl_conf *confs[SL_ARRAY_LEN(all_cnfs)];
    for (size_t i = 0; i < SL_ARRAY_LEN(all_cnfs); i++) confs[i] = conf_from(*all_cnfs[i]);
    for (size_t i = 0; i < SL_ARRAY_LEN(rw_cases); i++) {
        const rw_case *tc = &rw_cases[i];
        const sl_conf *c = NULL;
        for (size_t k = 0; k < SL_ARRAY_LEN(all_cnfs); k++)
            if (all_cnfs[k] == tc->cnf) c = confs[k];
        rw_ctx ctx = {tc->src, tc->dst, tc->kind, NULL};
        rw_result r;
        strbuf trace;
        sb_init(&trace);
        sl_result res = rewrite_address_ctx(c, tc->addr, &ctx, &r, &trace);
        if (res != tc->res)
            fail_msg("case %zu %s: result %d, want %d (%s)\n%s", i, tc->addr, res, tc->res, r.error ? r.error : "",
                     trace.data ? trace.data : "");
        if (res == SL_OK) {
            if (strcmp(r.addr, tc->want_addr) || strcmp(r.host, tc->want_host) ||
                strcmp(r.channel->name, tc->want_channel))
                fail_msg("case %zu %s: got %s via %s (%s), want %s via %s (%s)\n%s", i, tc->addr, r.addr, r.host,
                         r.channel->name, tc->want_addr, tc->want_host, tc->want_channel, trace.data);
            assert_null(r.error);
        } else {
            assert_null(r.addr);
            assert_null(r.channel);
            if (!r.error || strcmp(r.error, tc->want_error) || strcmp(r.status, tc->want_status))
                fail_msg("case %zu %s: error '%s' (%s), want '%s' (%s)\n%s", i, tc->addr, r.error ? r.error : "(null)",
                         r.status, tc->want_error, tc->want_status, trace.data ? trace.data : "");
        }
        rw_result_free(&r);
        sb_free(&trace);
    }
    for (size_t i = 0; i < SL_ARRAY_LEN(all_cnfs); i++) conf_free(confs[i]);
}

/* rewrite_address is the envelope-To wrapper of rewrite_address_ctx. */
static void test_rewrite_wrapper(void **state)
{
    (void)state;
    sl_conf *c = conf_from(CNF_COND);
    rw_result r;
    assert_int_equal(rewrite_address(c, "u@m.test", "proc_a", &r, NULL), SL_OK);
    assert_string_equal(r.addr, "m@x.test");
    rw_result_free(&r);
    assert_int_equal(rewrite_address(c, "u@e.test", "tcp_local", &r, NULL), SL_OK);
    assert_string_equal(r.addr, "e@x.test"); /* envelope, forward */
    rw_result_free(&r);
    assert_int_equal(rewrite_address(c, "u@q.test", NULL, &r, NULL), SL_OK);
    assert_string_equal(r.addr, "q@x.test"); /* $Q ignored for envelope To */
    rw_result_free(&r);
    /* a NULL context is envelope To with no source channel */
    assert_int_equal(rewrite_address_ctx(c, "u@m.test", NULL, &r, NULL), SL_OK);
    assert_string_equal(r.addr, "mfallback@x.test");
    rw_result_free(&r);
    conf_free(c);
}

static void test_rewrite_trace(void **state)
{
    (void)state;
    sl_conf *c = conf_from(". $U%$H@tcp_local-daemon\n\ntcp_local smtp\ntcp_local-daemon\n");
    rw_result r;
    strbuf trace;
    sb_init(&trace);
    assert_int_equal(rewrite_address(c, "user@a.b.example", NULL, &r, &trace), SL_OK);
    assert_string_equal(trace.data, "try 'a.b.example' -> no rule\n"
                                    "try '*.b.example' -> no rule\n"
                                    "try '.b.example' -> no rule\n"
                                    "try '*.*.example' -> no rule\n"
                                    "try '.example' -> no rule\n"
                                    "try '*.*.*' -> no rule\n"
                                    "match '.' -> '$U%$H@tcp_local-daemon' -> user@a.b.example via tcp_local-daemon\n"
                                    "channel tcp_local (routing host tcp_local-daemon)\n");
    rw_result_free(&r);
    sb_free(&trace);
    conf_free(c);

    c = conf_from(CNF_MAIN);
    sb_init(&trace);
    assert_int_equal(rewrite_address(c, "u@[10.1.9.9]", NULL, &r, &trace), SL_OK);
    assert_string_equal(trace.data,
                        "try '[10.1.9.9]' -> no rule\n"
                        "try '[10.1.9.]' -> no rule\n"
                        "match '[10.1.]' -> 'lit10+L=$L+D=$D+H=$H%x.test@tcp-daemon' -> lit10+L=9.9+D=[10.1.9.9]+H=@x.test "
                        "via tcp-daemon\n"
                        "channel tcp_out (routing host tcp-daemon)\n");
    rw_result_free(&r);
    sb_reset(&trace);
    assert_int_equal(rewrite_address(c, "u@[192.0.2.1]", NULL, &r, &trace), SL_OK);
    assert_non_null(strstr(trace.data, "try '[192.0.]' -> no rule\ntry '[192.]' -> no rule\nmatch '[]' -> "));
    rw_result_free(&r);
    sb_reset(&trace);
    assert_int_equal(rewrite_address(c, "u@via.test", NULL, &r, &trace), SL_OK);
    assert_non_null(strstr(trace.data, "no channel for routing host 'relay.test': rewriting it\n"
                                       "match 'relay.test' -> 'ignored%ignored.test@local-daemon'"));
    rw_result_free(&r);
    /* a NULL trace is allowed */
    assert_int_equal(rewrite_address(c, "u@exact.test", NULL, &r, NULL), SL_OK);
    rw_result_free(&r);
    sb_free(&trace);
    conf_free(c);

    /* skipped rules, channel host names and errors are traced */
    c = conf_from(CNF_COND);
    sb_init(&trace);
    assert_int_equal(rewrite_address(c, "u@skip.m2.test", "proc_b", &r, &trace), SL_OK);
    assert_non_null(strstr(trace.data, "skip 'skip.m2.test' (line 6) 'exact%x.test@tcp-daemon$Mproc_a': "
                                       "$M: source channel proc_b is not proc_a\n"
                                       "try '*.m2.test' -> no rule\n"
                                       "match '.m2.test' -> "));
    rw_result_free(&r);
    sb_reset(&trace);
    assert_int_equal(rewrite_address(c, "u@local-daemon", NULL, &r, &trace), SL_OK);
    assert_non_null(strstr(trace.data, "match channel host name 'local-daemon' -> channel l\n"));
    rw_result_free(&r);
    sb_reset(&trace);
    assert_int_equal(rewrite_address(c, "u@err.test", NULL, &r, &trace), SL_PERM);
    assert_non_null(strstr(trace.data, "error: No-such-domain\n"));
    rw_result_free(&r);
    sb_reset(&trace);
    rw_ctx ctx = {NULL, NULL, RW_ENV_TO, NULL};
    assert_int_equal(rewrite_address_ctx(c, "u@q.test", &ctx, &r, &trace), SL_OK);
    assert_non_null(strstr(trace.data, "($Q/$C ignored: the destination channel is not known yet)"));
    rw_result_free(&r);
    sb_free(&trace);
    conf_free(c);
}

/* A template that bypassed the load check still fails cleanly at run time. */
static void test_rewrite_bad_template_at_runtime(void **state)
{
    (void)state;
    sl_conf *c = conf_from("\nl\nlocal-daemon\n");
    sl_rule rule = {"x.test", "$U%$X@local-daemon", 7};
    c->rules = &rule;
    c->n_rules = 1;
    rw_result r;
    assert_int_equal(rewrite_address(c, "u@x.test", NULL, &r, NULL), SL_PERM);
    assert_string_equal(r.error, "rule 'x.test' (line 7): unknown substitution '$X'");
    rw_result_free(&r);
    c->rules = NULL;
    c->n_rules = 0;
    conf_free(c);
}

/* Error texts may hold blanks, '@' and '%' (the documentation's own example does). */
static void test_rewrite_error_text_with_blanks(void **state)
{
    (void)state;
    sl_conf *c = conf_from("\nl\nlocal-daemon\n");
    sl_rule rules[] = {
        {".", "$?Unrecognized address; contact postmaster@siroe.com", 3},
        {"t.test", "$4002001?Try again 100% later$Mproc", 4},
        {"t.test", "$U@nowhere", 5},
    };
    c->rules = rules;
    c->n_rules = SL_ARRAY_LEN(rules);
    rw_result r;
    assert_int_equal(rewrite_address(c, "u@host.example", NULL, &r, NULL), SL_PERM);
    assert_string_equal(r.error, "Unrecognized address; contact postmaster@siroe.com");
    assert_string_equal(r.status, "5.1.2");
    rw_result_free(&r);
    assert_int_equal(rewrite_address(c, "u@t.test", "proc", &r, NULL), SL_TEMP);
    assert_string_equal(r.error, "Try again 100% later");
    assert_string_equal(r.status, "4.2.1");
    rw_result_free(&r);
    /* from another source the $? rule is skipped; nowhere is rewritten by '.', whose text wins */
    assert_int_equal(rewrite_address(c, "u@t.test", "other", &r, NULL), SL_PERM);
    assert_string_equal(r.error, "Unrecognized address; contact postmaster@siroe.com");
    rw_result_free(&r);
    c->rules = NULL;
    c->n_rules = 0;
    conf_free(c);
}

static void test_template_check(void **state)
{
    (void)state;
    static const struct {
        const char *tmpl;
        const char *error; /* NULL: valid */
    } cases[] = {
        {"$U%$H@tcp_local-daemon", NULL},
        {"$U@$D", NULL},
        {"$U%$D", NULL},
        {"a$%b$@c$$d@h", NULL},
        {"$0U$1U%$0H$1H$12D$L@h", NULL},
        {"$U%$H$,$H@tcp_notify-daemon$Mprocess_dsn", NULL},
        {"$U%$H$,junk$U", NULL},
        {"$U@h$Ma$Mb$Nc$Qd$Ce$E$B$F$R", NULL},
        {"$Ma$U@h", NULL},
        {"$?No such domain", NULL},
        {"$?text$Mchan", NULL},
        {"$Mchan$?text", NULL},
        {"$4001002?later", NULL},
        {"$U@h$?text with @ and %", NULL},
        {"$U", "template has no '@' or '%' (expected A%B@C, A@B, A%B or $?text)"},
        {"$U$@$D", "template has no '@' or '%' (expected A%B@C, A@B, A%B or $?text)"},
        {"$U$?text", "template has no '@' or '%' (expected A%B@C, A@B, A%B or $?text)"},
        {"$U%$Q@h", "'$Q' without a channel name"},
        {"$U@h$M", "'$M' without a channel name"},
        {"$U@h$N$Ma", "'$N' without a channel name"},
        {"$u@h", "unknown substitution '$u'"},
        {"$2U@h", "unknown substitution '$2U'"},
        {"$123H@h", "unknown substitution '$123H'"},
        {"$3L@h", "unknown substitution '$3L'"},
        {"$U@h$", "template ends with a lone '$'"},
        {"$U@h$12", "template ends inside a '$' sequence"},
        {"$4001?x", "bad error status '$4001?' (expected $x00y00z?, e.g. $4001002? for 4.1.2)"},
        {"$6001002?x", "bad error status '$6001002?' (expected $x00y00z?, e.g. $4001002? for 4.1.2)"},
        {"$U$,@h", "'$,' outside the host part of an A%B@C or A%B template"},
        {"$U@$H$,x", "'$,' outside the host part of an A%B@C or A%B template"},
        {"$U%$H@x$,", "'$,' outside the host part of an A%B@C or A%B template"},
        {"$U%$,$H@h", "empty part in template"},
        {"a%b%c@d", "more than one '%'"},
        {"a@b@c", "more than one '@'"},
        {"a@b%c", "'%' after '@'"},
        {"@b", "empty part in template"},
        {"a%b@", "empty part in template"},
        {"a%b@$Mx", "empty part in template"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        char err[160] = "";
        int rc = rewrite_template_check(cases[i].tmpl, err, sizeof err);
        if ((rc == 0) != (cases[i].error == NULL) || (cases[i].error && strcmp(err, cases[i].error)))
            fail_msg("'%s': rc %d error '%s'", cases[i].tmpl, rc, err);
    }
}

/* "$," gives a note, not an error; other templates give none. */
static void test_template_notes(void **state)
{
    (void)state;
    strvec notes = {0};
    char err[160] = "";
    assert_int_equal(rewrite_template_lint("$U%$H$,$H@tcp_notify-daemon$Mprocess_dsn", err, sizeof err, &notes), 0);
    assert_int_equal(notes.n, 1);
    assert_string_equal(notes.v[0], "'$,' read as the end of the host part: the text after it up to '@' ('$H') is ignored");
    assert_int_equal(rewrite_template_lint("$U%$H@tcp_local-daemon", err, sizeof err, &notes), 0);
    assert_int_equal(notes.n, 1);
    assert_int_equal(rewrite_template_lint("$U%$,$H@x", err, sizeof err, &notes), -1);
    assert_int_equal(notes.n, 1);
    sv_free(&notes);

    sl_conf *c = conf_from(CNF_SEED);
    rewrite_conf_notes(c, "sluice.cnf", &notes);
    assert_int_equal(notes.n, 1);
    assert_string_equal(notes.v[0], "sluice.cnf:2: note: '$,' read as the end of the host part: the text after it up "
                                    "to '@' ('$H') is ignored");
    sv_free(&notes);
    conf_free(c);

    c = conf_from("a.test $U@l-daemon$Mprocess_dns$Nl\nb.test $U@l-daemon$Qtcp_x$Cl\n\nl\nl-daemon\n");
    rewrite_conf_notes(c, "sluice.cnf", &notes);
    assert_int_equal(notes.n, 2);
    assert_string_equal(notes.v[0], "sluice.cnf:1: note: '$Mprocess_dns' names no channel: the condition never holds");
    assert_string_equal(notes.v[1], "sluice.cnf:2: note: '$Qtcp_x' names no channel: the condition never holds");
    sv_free(&notes);
    conf_free(c);
}

/* Templates that multiply the address each time round: the rewrite stops at the first intermediate
 * result over the bounds (1024 octets for an address, 255 for a domain or routing host) with a
 * permanent 5.1.3, and the trace stays small. */
static void test_rewrite_growth_bounded(void **state)
{
    (void)state;
    /* a routing host of 2 x 130 octets */
    char longname[131];
    memset(longname, 'r', 125);
    strcpy(longname + 125, ".test");
    char *text = xasprintf(". $U%%$H.$H.$H\n"
                           "local.test $U$U$U%%local.test\n"
                           "%s $U%%ok.test@$D.$D\n"
                           "ok.test $U@tcp-daemon\n"
                           "\n"
                           "tcp_out smtp\n"
                           "tcp-daemon\n",
                           longname);
    sl_conf *c = conf_from(text);
    free(text);
    char *route_addr = xasprintf("u@%s", longname);
    static const struct {
        const char *addr, *error;
    } cases[] = {
        {"u@a.b", "gives a domain longer than 255 octets"},
        {"u@local.test", "gives an address longer than 1024 octets"},
        {NULL, "gives a routing host longer than 255 octets"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        rw_result r;
        strbuf trace;
        sb_init(&trace);
        const char *addr = cases[i].addr ? cases[i].addr : route_addr;
        assert_int_equal(rewrite_address(c, addr, NULL, &r, &trace), SL_PERM);
        if (!r.error || !strstr(r.error, cases[i].error)) fail_msg("%s: error '%s'", addr, r.error);
        assert_string_equal(r.status, "5.1.3");
        if (trace.len > 256 * 1024) fail_msg("%s: trace of %zu bytes", addr, trace.len);
        rw_result_free(&r);
        sb_free(&trace);
    }
    /* an over-long address or domain given to the engine is refused the same way */
    strbuf big;
    sb_init(&big);
    for (int i = 0; i < 1100; i++) sb_putc(&big, 'x');
    sb_puts(&big, "@ok.test");
    rw_result r;
    assert_int_equal(rewrite_address(c, big.data, NULL, &r, NULL), SL_PERM);
    assert_string_equal(r.status, "5.1.3");
    rw_result_free(&r);
    sb_reset(&big);
    sb_puts(&big, "u@");
    for (int i = 0; i < 130; i++) sb_puts(&big, "a.");
    sb_puts(&big, "ok.test");
    assert_int_equal(rewrite_address(c, big.data, NULL, &r, NULL), SL_PERM);
    assert_string_equal(r.status, "5.1.3");
    rw_result_free(&r);
    sb_free(&big);
    /* ordinary addresses still route */
    assert_int_equal(rewrite_address(c, "u@ok.test", NULL, &r, NULL), SL_OK);
    rw_result_free(&r);
    free(route_addr);
    conf_free(c);
}

/* A template that can make its output longer than its input (an input part used more than once)
 * gets a warning from rewrite_conf_notes; ordinary templates get none. */
static void test_template_growth_warning(void **state)
{
    (void)state;
    sl_conf *c = conf_from("a.test $U%$H.$H.$H\n"
                           "b.test $U$0U@tcp-daemon\n"
                           "c.test $U%$D@$D.$D\n"
                           "d.test $U%$H$,$H@tcp-daemon\n"
                           "e.test $U+h=$H+d=$D%out.test@tcp-daemon\n"
                           "f.test $U%$H@$H\n"
                           ". $U%$D@tcp-daemon\n"
                           "\n"
                           "tcp_out smtp\n"
                           "tcp-daemon\n");
    strvec notes = {0};
    rewrite_conf_notes(c, "sluice.cnf", &notes);
    size_t warnings = 0;
    for (size_t i = 0; i < notes.n; i++)
        if (strstr(notes.v[i], ": warning: ")) warnings++;
    assert_int_equal(warnings, 3);
    assert_string_equal(notes.v[0], "sluice.cnf:1: warning: template '$U%$H.$H.$H' uses $H 3 times in the address: each "
                                    "rewrite can make it longer (an address over 1024 octets or a domain over 255 is "
                                    "refused)");
    assert_non_null(strstr(notes.v[1], "sluice.cnf:2: warning: template '$U$0U@tcp-daemon' uses $U 2 times in the address"));
    assert_non_null(strstr(notes.v[2], "sluice.cnf:3: warning: template '$U%$D@$D.$D' uses $D 2 times in the routing host"));
    sv_free(&notes);
    conf_free(c);
}

static void test_split(void **state)
{
    (void)state;
    static const struct {
        const char *addr, *local, *domain; /* local NULL: -1 */
    } cases[] = {
        {"user@example.com", "user", "example.com"},
        {"a@b@example.com", "a@b", "example.com"},
        {"\"a@b\"@example.com", "\"a@b\"", "example.com"},
        {"\"a\\\"@b\"@example.com", "\"a\\\"@b\"", "example.com"},
        {"\"x@y\"", NULL, NULL},
        {"user", NULL, NULL},
        {"user@", NULL, NULL},
        {"@example.com", NULL, NULL},
        {"u@[10.0.0.1]", "u", "[10.0.0.1]"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        char *l, *d;
        int rc = rewrite_split(cases[i].addr, &l, &d);
        if (!cases[i].local) {
            if (rc != -1 || l || d) fail_msg("'%s' split", cases[i].addr);
            continue;
        }
        if (rc != 0 || strcmp(l, cases[i].local) || strcmp(d, cases[i].domain))
            fail_msg("'%s': rc %d '%s' '%s'", cases[i].addr, rc, l ? l : "", d ? d : "");
        free(l);
        free(d);
    }
}

/* The shipped configuration routes the directory's domain locally and the rest by SMTP. */
static void test_rewrite_embedded(void **state)
{
    (void)state;
    conf_errors errs = {0};
    sl_conf *c = load_conf(SLUICE_ETC_DIR, &errs);
    if (!c) fail_msg("embedded configuration: %s", errs.msgs.n ? errs.msgs.v[0] : "?");
    static const struct {
        const char *addr, *want_addr, *channel;
    } cases[] = {
        {"alice@example.com", "alice@example.com", "l"},
        {"Bob@Example.COM", "Bob@Example.COM", "l"},
        {"someone@example.org", "someone@example.org", "tcp_local"},
        {"x@mail.example.com", "x@mail.example.com", "tcp_local"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        rw_result r;
        assert_int_equal(rewrite_address(c, cases[i].addr, "tcp_local", &r, NULL), SL_OK);
        assert_string_equal(r.addr, cases[i].want_addr);
        assert_string_equal(r.channel->name, cases[i].channel);
        rw_result_free(&r);
    }
    conf_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rewrite_table),
        cmocka_unit_test(test_rewrite_wrapper),
        cmocka_unit_test(test_rewrite_trace),
        cmocka_unit_test(test_rewrite_bad_template_at_runtime),
        cmocka_unit_test(test_rewrite_error_text_with_blanks),
        cmocka_unit_test(test_template_check),
        cmocka_unit_test(test_template_notes),
        cmocka_unit_test(test_rewrite_growth_bounded),
        cmocka_unit_test(test_template_growth_warning),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_rewrite_embedded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
