/*
 * conf.h - the whole configuration as one immutable struct, parsed from the files in one
 * directory (DESIGN.md §2): option.dat, dispatcher.cnf, sluice.cnf, job_controller.cnf, the
 * <channel>_option files and the DSN texts. conf_load builds a new struct (or collects every
 * "file:line: message" error); the mapping tables are attached and the rule templates checked by
 * the loader above conf (cli/load.c), and the directory lives beside the configuration (dir/dir.h).
 * The daemon swaps the pointer on SIGHUP. Nothing here touches sockets or the event loop; any thread may read a
 * loaded conf, nobody writes it after conf_load returns.
 */
#ifndef SLUICE_CONF_H
#define SLUICE_CONF_H
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/ctx.h"
#include "core/util.h"

/* An IPv4 or IPv6 network, for internal_networks. */
typedef struct {
    int family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    unsigned prefix;
} sl_cidr;

/* What to do with a bare CR or LF in a command or in DATA. */
enum bare_eol_policy { BARE_EOL_REJECT = 0, BARE_EOL_NORMALISE = 1 };

/* reject_mode: refusals that rest on local data, for fleets of MX hosts (policy/fleet.h). */
enum reject_mode { REJECT_HARD = 0, REJECT_SOFT = 1, REJECT_AUTO = 2 };

/* spf_fail_action: what an SPF fail at MAIL FROM does (doc/sender-checks.md). */
enum spf_fail_action { SPF_ACTION_NONE = 0, SPF_ACTION_REJECT = 1 };
/* dkim_sign: which mail is DKIM-signed at the end of data (doc/sender-checks.md). */
enum dkim_sign_mode { DKIM_SIGN_NO = 0, DKIM_SIGN_LOCAL = 1, DKIM_SIGN_ALL = 2 };
/* dmarc_action: what a DMARC fail does (doc/sender-checks.md). */
enum dmarc_action { DMARC_ACTION_NONE = 0, DMARC_ACTION_QUARANTINE = 1, DMARC_ACTION_REJECT = 2 };

/* option.dat (all keys documented in doc/configuration.md). */
/* Content scanners (option.dat spamfilterN_*, N = 1..SL_SCANNERS; doc/scanning.md). */
#define SL_SCANNERS 8
#define SL_SCANNER_VERDICTS 10
enum sl_scanner_kind { SL_SCANNER_NONE = 0, SL_SCANNER_SPAMD, SL_SCANNER_CLAMD, SL_SCANNER_MILTER, SL_SCANNER_HEADER };
typedef struct {
    enum sl_scanner_kind kind; /* spamfilterN_type: spamd, clamd, milter or header (none: the scanner is off) */
    char *host;                /* spamfilterN_address "HOST:PORT" / "[IPv6]:PORT" / "inet:PORT@HOST" */
    unsigned port;
    char *unix_path;           /* ... or "/path" / "unix:/path" */
    unsigned timeout;          /* spamfilterN_timeout seconds per stage (default 30) */
    bool optional;             /* spamfilterN_optional: yes = fail open with a header noting the skip;
                                  no (default) = a failure is 451 4.7.1 */
    uint64_t max_size;         /* spamfilterN_max_size: bytes sent at most (default 10M; 0 = all) */
    char *string_action;       /* spamfilterN_string_action: Sieve run for a verdict no pair names
                                  (default: addheader "X-Spam-Verdict: <verdict>") */
    char *null_action;         /* spamfilterN_null_action: Sieve run for the null verdict (default none) */
    char *verdict[SL_SCANNER_VERDICTS]; /* spamfilterN_verdict_M (M = 0..9) */
    char *action[SL_SCANNER_VERDICTS];  /* spamfilterN_action_M: the Sieve script for that verdict */
    char *header;              /* type header: spamfilterN_header, the field a scanning box wrote its verdict in */
    char *score_header;        /* type header: spamfilterN_score_header, a field with its score (optional) */
    double threshold;          /* type header: spamfilterN_threshold, the score that means spam (default 5) */
    int line;                  /* the line of its spamfilterN_type */
} sl_scanner;

typedef struct {
    char *hostname;            /* host_name: our name in greetings and Received: (default: gethostname) */
    char *queue_dir;           /* queue_dir (default /var/spool/sluice) */
    char *maildir_root;        /* maildir_root (default /var/mail/sluice) */
    strvec dns_servers;        /* dns_servers: "host:port" list; empty = /etc/resolv.conf */
    uint64_t max_message_size; /* max_message_size (default 10M) */
    unsigned block_size;       /* block_size: bytes per block of the directory's *MsgMaxBlocks limits (default 1024) */
    uint64_t queue_cache_size; /* queue_cache_size: message bodies the scheduler keeps in memory (default 64M) */
    unsigned max_recipients;   /* max_recipients per transaction (default 100) */
    int log_level;             /* log_level (default info) */
    int log_format;            /* log_format: enum log_format, text (default) or json */
    sl_cidr *internal_networks;/* internal_networks: clients that may relay (default 127.0.0.0/8 ::1) */
    size_t n_internal_networks;
    enum bare_eol_policy bare_eol; /* bare_lf: reject|normalise (default reject) */
    unsigned max_errors;       /* max_errors before 421 (default 10) */
    unsigned idle_timeout;     /* idle_timeout seconds (default 300) */
    unsigned session_timeout;  /* session_timeout seconds: a server session's whole life (default 3600) */
    unsigned min_data_rate;    /* min_data_rate bytes per second while content arrives (default 500; 0: none) */
    unsigned min_data_rate_window; /* min_data_rate_window seconds over which that rate is averaged (default 30) */
    unsigned retry_interval;   /* retry_interval seconds: first retry (default 300) */
    unsigned retry_max;        /* retry_max seconds: backoff cap (default 3600) */
    unsigned message_lifetime; /* message_lifetime seconds (default 5 days) */
    unsigned connect_timeout;  /* connect_timeout seconds (default 30) */
    unsigned command_timeout;  /* command_timeout seconds for the SMTP client (default 300) */
    unsigned greeting_delay_ms;/* greeting_delay: ms to wait before the 220; a client that talks first gets 554 (default 0) */
    char *tls_certificate;     /* tls_certificate: PEM certificate chain for STARTTLS (default none: no TLS offered) */
    char *tls_key;             /* tls_key: PEM private key (default: the certificate file) */
    char *tls_ciphers;         /* tls_ciphers: OpenSSL cipher list for TLS <= 1.2 (default NULL: TLS_DEFAULT_CIPHERS) */
    unsigned tls_min_version;  /* tls_min_version: 12 (TLSv1.2, default) or 13 (TLSv1.3) */
    char *tls_ca_file;         /* tls_ca_file: CA certificates the SMTP client trusts besides the system store (default none) */
    char *tls_policy_file;     /* tls_policy_file: the outbound TLS policy table (doc/tls.md; default none) */
    char *shaping_file;        /* shaping_file: the traffic shaping table (doc/delivery.md; default none) */
    char *tls_sni_file;        /* tls_sni_file: the server's certificates by SNI name (doc/tls.md; default none) */
    bool mta_sts;              /* mta_sts: 1 = a destination without a tls_policy_file entry is checked for MTA-STS (default 0) */
    unsigned mta_sts_port;     /* mta_sts_port: the port of policy servers, https://mta-sts.DOMAIN:PORT (default 443; tests and labs) */
    unsigned mta_sts_timeout;  /* mta_sts_timeout seconds: a policy fetch, and the longest a delivery waits for one (default 30) */
    char *mta_sts_cache_dir;   /* mta_sts_cache_dir: where fetched policies are kept (default QUEUE/sts) */
    char *run_as;              /* run_as: user to switch to after binding (default: stay as started) */
    char *postmaster;          /* postmaster: this host's postmaster address (default postmaster@<host_name>) */
    enum reject_mode reject_mode; /* reject_mode: hard (default), soft or auto */
    bool spf_check;            /* spf_check: yes|no, evaluate SPF at MAIL FROM (default no) */
    enum spf_fail_action spf_fail_action; /* spf_fail_action: none (default: record only) or reject */
    char *dkim_keys_file;      /* dkim_keys_file: the DKIM signing keys table (default none) */
    enum dkim_sign_mode dkim_sign; /* dkim_sign: no (default), local (ours: local, authenticated, internal) or all */
    bool dmarc_check;          /* dmarc_check: yes|no, evaluate DMARC at the end of data (default no) */
    enum dmarc_action dmarc_action; /* dmarc_action: none (default: record only), quarantine or reject */
    char *dmarc_psl_file;      /* dmarc_psl_file: the public suffix list (default Debian's publicsuffix file) */
    bool dkim_verify;          /* dkim_verify: yes|no, verify DKIM of strangers' mail at the end of data (default no) */
    unsigned auth_max_failures;/* auth_max_failures: failed AUTHs before the session is closed (default 3) */
    /* The LDAP directory (doc/directory.md); no ldap_uri: the embedded directory.ldif. */
    strvec ldap_uris;          /* ldap_uri: ldap:// or ldaps:// URIs, tried in order */
    char *ldap_base_dn;        /* ldap_base_dn: where every search starts (required with ldap_uri) */
    char *ldap_bind_dn;        /* ldap_bind_dn (default none: an anonymous bind) */
    char *ldap_bind_password;  /* the first line of ldap_bind_password_file, read at load (wiped at free) */
    bool ldap_starttls;        /* ldap_starttls: yes|no (default no) */
    char *ldap_tls_ca_file;    /* ldap_tls_ca_file: CA certificates for ldaps:// and StartTLS (default libldap's) */
    unsigned ldap_timeout;     /* ldap_timeout seconds: the longest a directory question may take (default 5) */
    unsigned ldap_connections; /* ldap_connections: the pool's size (default 4) */
    unsigned ldap_domain_cache_size;         /* ldap_domain_cache_size: domains remembered (default 10000, 0: none) */
    unsigned ldap_domain_cache_ttl;          /* ldap_domain_cache_ttl seconds, a domain of ours (default 600) */
    unsigned ldap_domain_cache_negative_ttl; /* ldap_domain_cache_negative_ttl seconds, not ours (default 60) */
    unsigned ldap_cache_size;                /* ldap_cache_size: addresses and member DNs remembered (default 10000) */
    unsigned ldap_cache_ttl;                 /* ldap_cache_ttl seconds, an entry found (default 600) */
    unsigned ldap_cache_negative_ttl;        /* ldap_cache_negative_ttl seconds, no such entry (default 60) */
    strvec dir_attrs;          /* ldap_* attribute remapping, for both backends: pairs of a dir_schema field
                                  name (dir/schema.h) and an attribute name, in option.dat order */
    char *submit_socket;       /* submit_socket: the local submission socket (default QUEUE/public/submit.sock) */
    bool submit_disabled;      /* submit_socket=none: no local submission socket, no pickup */
    char *submit_channel;      /* submit_channel: source channel of local submissions (default l) */
    unsigned pickup_interval;  /* pickup_interval seconds between scans of QUEUE/pickup (default 60) */
    char *metrics_listen;      /* metrics_listen: "IP:PORT" / "[IPv6]:PORT" of the metrics endpoint (default NULL: off) */
    sl_scanner scanners[SL_SCANNERS]; /* spamfilter1_* .. spamfilter8_* */
    char *sieve_filter;        /* sieve_filter: a Sieve file every recipient's message goes through first (default none) */
    char *vacation_dir;        /* vacation_dir: where vacation replies are remembered (default QUEUE/vacation) */
    bool tlsrpt;               /* tlsrpt: 1|0 (yes|no), record outbound TLS results and send RFC 8460 reports (default 0) */
    char *tlsrpt_org;          /* tlsrpt_org: the reports' organization-name (default: host_name) */
    char *tlsrpt_contact;      /* tlsrpt_contact: the reports' contact-info (default: the postmaster address) */
    unsigned tlsrpt_delay;     /* tlsrpt_delay seconds: random delay after midnight UTC before reporting (default 1h) */
} sl_options;

enum channel_type {
    CHAN_LOCAL,     /* "l": Maildir delivery */
    CHAN_SMTP,      /* tcp_*: SMTP client */
    CHAN_LMTP,      /* lmtp*: LMTP client (per-recipient replies) */
    CHAN_PROCESS,   /* process*: re-run rewriting (DSNs, MDNs) */
    CHAN_BITBUCKET, /* bitbucket: discard */
    CHAN_HOLD,      /* hold: keep until released */
    CHAN_OTHER      /* defaults and channels that only route */
};

enum chan_addrmode { CHAN_SINGLE_SYS = 0, CHAN_SINGLE = 1, CHAN_MULTIPLE = 2 };
enum chan_tls { CHAN_TLS_MAY = 0, CHAN_TLS_MUST = 1, CHAN_TLS_NO = 2 };

/* <channel>_option: per-channel SMTP/LMTP client settings (key=value; defaults from option.dat). */
typedef struct {
    unsigned connect_timeout;   /* CONNECT_TIMEOUT seconds (default option.dat connect_timeout) */
    unsigned greeting_timeout;  /* GREETING_TIMEOUT seconds (default 300) */
    unsigned command_timeout;   /* COMMAND_TIMEOUT seconds (default option.dat command_timeout) */
    unsigned data_timeout;      /* DATA_TIMEOUT seconds (default 600) */
    unsigned max_rcpts;         /* MAX_RCPTS_PER_TRANSACTION (default 100) */
    unsigned max_messages;      /* MAX_MESSAGES_PER_CONNECTION (default 100) */
} sl_chan_opts;

/* job_controller.cnf: [POOL=NAME] job_limit=N */
typedef struct {
    char *name;
    unsigned job_limit; /* default 10 */
    int line;
} sl_pool;

typedef struct {
    char *name;
    enum channel_type type;
    strvec hosts;       /* official host name first, then alias host names */
    bool smtp, mx;      /* "smtp"; "mx" (default for tcp_*) / "nomx" */
    char *daemon;       /* "daemon HOST": smart host, NULL for MX routing */
    unsigned port;      /* "port N" (default 25) */
    unsigned subdirs;   /* "subdirs N" (default 1) */
    unsigned maxjobs;   /* "maxjobs N" (default 10) */
    int line;           /* line of the channel in sluice.cnf */
    /* channel machinery (issue 3) */
    bool lmtp;                   /* "lmtp": speak LMTP (default for lmtp*) */
    enum chan_addrmode addrmode; /* single_sys (default) / single: one recipient per transaction / multiple */
    bool remotehost;             /* "remotehost": complete domainless header addresses with the client's HELO name /
                                    "noremotehost" (default): with host_name (policy/complete.c) */
    bool inner;                  /* "inner": complete them in message/rfc822 parts too / "noinner" (default) */
    char *pool;                  /* "pool NAME" (default: the first pool of job_controller.cnf) */
    int64_t backoff[8];          /* "backoff" durations in seconds, the last repeating */
    size_t n_backoff;            /* 0 = the option.dat retry_interval/retry_max doubling */
    int64_t notices[5];          /* "notices" ages in seconds: delay DSN at each, return at the last */
    size_t n_notices;            /* 0 = option.dat message_lifetime, no delay DSNs */
    bool loopcheck;              /* "loopcheck": bounce 5.4.6 when the next hop is ourselves */
    bool allow_self_mx;          /* "selfmx": an MX that is one of our own addresses is no loop */
    bool chunking;               /* "chunking": BDAT when the next hop offers CHUNKING / "nochunking" (default): DATA */
    char *notificationchannel;   /* "notificationchannel CH" (default process) */
    char *dispositionchannel;    /* "dispositionchannel CH" (default process) */
    char *lastresort;            /* "lastresort HOST": tried after temporary failures of every MX */
    bool rules;                  /* "rules" (default) / "norules": official host name acts as a rule */
    enum chan_tls tls;           /* "maytls" (default for tcp_*) / "musttls" / "notls" */
    bool errsendpost;            /* "errsendpost" (default) / "nosendpost": an undeliverable DSN goes to the postmaster or is dropped */
    sl_chan_opts copts;          /* <channel>_option file */
    char *saslswitchchannel;     /* "saslswitchchannel CH": an authenticated session's source channel becomes CH */
    bool switchchannel;          /* "switchchannel": a client INTERNAL_IP says $Y for is switched (to the channel it names) */
    bool allowswitchchannel;     /* "allowswitchchannel" / "disallowswitchchannel" (default): sessions may be switched to it */
    unsigned authrewrite;        /* "authrewrite N": 1 adds Sender: <auth user> when From: differs (default 0: off) */
    char *interface_address;     /* "interfaceaddress IP": source address of outgoing connections */
    /* content scanning: NULL = not opted in; "" = opted in (no opt-in string); else the string */
    char *src_scan[SL_SCANNERS]; /* "sourcespamfilterN" / "sourcespamfilterNoptin STRING": mail from this channel */
    char *dst_scan[SL_SCANNERS]; /* "destinationspamfilterN[optin STRING]": recipients routed to this channel */
    char *fileinto;              /* "fileinto TEMPLATE" (LMTP): the address a fileinto folder is delivered to,
                                    $U local part, $D domain, $S folder (default "$U+$S@$D") */
    strvec nosolicit;            /* "sourcenosolicit LIST": RFC 3865 solicitation keywords (globs allowed) refused
                                    in MAIL FROM's SOLICIT= on this source channel; the ones without wildcards are
                                    listed after NO-SOLICITING in EHLO (default none: not advertised) */
} sl_channel;

typedef struct {
    char *pattern;  /* host pattern: "example.com", ".example.com", "." ... (lower case) */
    char *tmpl;     /* template text as written */
    int line;
} sl_rule;

enum svc_tls { SVC_TLS_STARTTLS = 0, SVC_TLS_REQUIRED = 1, SVC_TLS_IMPLICIT = 2, SVC_TLS_NONE = 3 };

typedef struct {
    char *name;
    strvec ports;      /* PORT=, as text */
    strvec addresses;  /* INTERFACE_ADDRESS= (default 0.0.0.0) */
    char *channel;     /* PARAMETER=CHANNEL= (default tcp_local) */
    enum svc_tls tls;  /* TLS_MODE=starttls|required|implicit|none (default starttls when a certificate is set) */
    bool tls_set;      /* TLS_MODE given */
    bool auth_required;/* AUTH_REQUIRED=yes: MAIL needs a successful AUTH first (submission) */
    bool auth_plain;   /* AUTH_WITHOUT_TLS=yes: offer AUTH on an unencrypted connection */
    unsigned max_conns;       /* MAX_CONNECTIONS (default 1000) */
    unsigned max_per_client;  /* MAX_PER_CLIENT (default 50) */
    unsigned backlog;         /* BACKLOG (default 511) */
    strvec dnsbl;             /* DNS_VERIFY_DOMAIN=zone (repeatable): DNS block lists asked at connect */
    strvec dnswl;             /* DNS_ALLOW_DOMAIN=zone (repeatable): a client listed there skips the block lists */
    bool dnsbl_score;         /* DNS_VERIFY_ACTION=score: a listed client is noted in the message, not refused
                                 (default reject) */
    unsigned dnsbl_code;      /* DNS_VERIFY_CODE: 554 (default) or 550, 421, 450 */
    char *dnsbl_text;         /* DNS_VERIFY_TEXT: the reply text ($ip, $zone, $answer); default in verdict.c */
    int line;
} sl_service;

typedef struct sl_conf {
    char *dir;
    sl_options opt;
    sl_rule *rules;
    size_t n_rules;
    sl_channel *channels; /* channels[0] is "defaults" when given */
    size_t n_channels;
    sl_service *services;
    size_t n_services;
    sl_pool *pools;       /* job_controller.cnf; pools[0] is the default pool */
    size_t n_pools;
    char *sieve_filter_text; /* the sieve_filter file's text (NULL = none) */
    char *dsn_templates[3]; /* dsn_failed.txt, dsn_delayed.txt, dsn_success.txt (optional; NULL = built in) */
    struct sl_mappings *mappings; /* mappings file (NULL when absent), parsed by rewrite/mapping.c */
    void (*mappings_free)(struct sl_mappings *); /* set by whoever attached mappings; conf_free calls it */
    struct tls_policy_table *tls_policy; /* tls_policy_file parsed (core/tls_policy.h; NULL: none) */
    struct shaping_table *shaping;       /* shaping_file parsed (conf/shaping.h; NULL: none) */
    struct tls_sni_table *tls_sni;       /* tls_sni_file parsed (core/tls_sni.h; NULL: none) */
    struct dkim_keys *dkim_keys;  /* dkim_keys_file, loaded by dkim/dkim_keys.c (NULL when none) */
    void (*dkim_keys_free)(struct dkim_keys *); /* set by whoever attached dkim_keys; conf_free calls it */
    struct dmarc_psl *dmarc_psl;  /* the public suffix list when dmarc_check is on (dkim/dmarc.c), or NULL */
    void (*dmarc_psl_free)(struct dmarc_psl *); /* set by whoever attached dmarc_psl; conf_free calls it */
} sl_conf;

/* Collected "file:line: message" errors. */
typedef struct {
    strvec msgs;
} conf_errors;

/* conf_error - record an error for file:line (line 0 = whole file). */
void conf_error(conf_errors *errs, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The file a table parser reads (tls_policy_file, tls_sni_file, shaping_file): conf_file_line_error
 * is the parsers' error callback with a conf_file_errs as its argument. */
typedef struct {
    conf_errors *errs;
    const char *path;
} conf_file_errs;

/* conf_file_line_error - a malformed line of the file becomes a "file:line: message" error. */
void conf_file_line_error(void *arg, int line, const char *msg);

/* conf_verror - conf_error with a va_list, for parsers that wrap it. */
void conf_verror(conf_errors *errs, const char *file, int line, const char *fmt, va_list ap);

/* conf_load_tls_policy - parse tls_policy_file (when set) into c->tls_policy (conf/tls_policy_load.c). */
void conf_load_tls_policy(sl_conf *c, conf_errors *errs);
/* conf_free_tls_policy - free c->tls_policy. */
void conf_free_tls_policy(sl_conf *c);
/* conf_load_shaping - parse shaping_file (when set) into c->shaping (conf/shaping_load.c). */
void conf_load_shaping(sl_conf *c, conf_errors *errs);
/* conf_free_shaping - free c->shaping. */
void conf_free_shaping(sl_conf *c);
/* conf_load_tls_sni - parse tls_sni_file (when set) into c->tls_sni (conf/tls_sni_load.c); the
 * certificates themselves are loaded by whoever builds the server context (core/tls.h). */
void conf_load_tls_sni(sl_conf *c, conf_errors *errs);
/* conf_free_tls_sni - free c->tls_sni. */
void conf_free_tls_sni(sl_conf *c);

/* conf_load - parse every file in dir; NULL and errs filled if any error. Caller frees with conf_free. */
sl_conf *conf_load(const char *dir, conf_errors *errs);
/* conf_free - release a conf from conf_load. */
void conf_free(sl_conf *c);

/* conf_parse_options - parse option.dat text into opt (defaults first). Returns error count added. */
int conf_parse_options(const char *file, const char *text, sl_options *opt, conf_errors *errs);
/* ---- configurations held by the daemon (conf_ref.c) ---- */

/* ctx_conf_get - the current configuration, with a reference taken. */
struct sl_conf *ctx_conf_get(sl_ctx *ctx);
/* ctx_conf_put - drop a reference; frees a replaced conf at its last reference. */
void ctx_conf_put(sl_ctx *ctx, struct sl_conf *c);
/* ctx_conf_replace - make c current; the old one is freed once unreferenced. */
void ctx_conf_replace(sl_ctx *ctx, struct sl_conf *c);
/* ctx_conf_release_all - at shutdown: free every configuration. */
void ctx_conf_release_all(sl_ctx *ctx);

/* conf_file_read - a file's text; an absent optional file gives NULL without error (else
 * "path: cannot read" in errs). Caller frees. */
char *conf_file_read(const char *path, bool required, conf_errors *errs);
/* conf_ldap_uris_parse - the blank-separated ldap:// / ldaps:// URIs of s (scheme, host name, IPv4
 * or [IPv6] address, optional :port, optional "/") appended to out; -1 with the first bad one
 * in bad when any is malformed or there is none (out unchanged then). */
int conf_ldap_uris_parse(const char *s, strvec *out, strbuf *bad);
/* conf_postmaster - the postmaster address of these options (caller frees). */
char *conf_postmaster(const sl_options *opt);
/* conf_submit_socket - the local submission socket's path of these options, NULL when disabled (caller frees). */
char *conf_submit_socket(const sl_options *opt);
/* conf_pickup_dir - QUEUE/pickup, where `sluice sendmail` leaves messages while no daemon runs (caller frees). */
char *conf_pickup_dir(const sl_options *opt);
/* conf_sts_cache_dir - mta_sts_cache_dir, or QUEUE/sts: where MTA-STS policies are kept (caller frees). */
char *conf_sts_cache_dir(const sl_options *opt);
/* conf_options_defaults - fill opt with the documented defaults. */
void conf_options_defaults(sl_options *opt);
/* conf_scanner_option - a spamfilterN_* key of option.dat (N = 1..8): 0 = set, -1 = bad value
 * (expect says what is expected), -2 = not such a key. */
int conf_scanner_option(sl_options *opt, const char *key, const char *value, int line, const char **expect);
/* conf_scanners_check - scanners given settings but no type; returns the errors added. */
int conf_scanners_check(const char *file, const sl_options *opt, conf_errors *errs);
/* conf_scanners_free - release the scanners' settings. */
void conf_scanners_free(sl_options *opt);
/* conf_options_free - release what conf_parse_options allocated. */
void conf_options_free(sl_options *opt);
/* conf_parse_dispatcher - parse dispatcher.cnf text into c->services. Returns error count added. */
int conf_parse_dispatcher(const char *file, const char *text, sl_conf *c, conf_errors *errs);
/* conf_parse_sluice_cnf - parse rewrite rules and channel blocks into c. Returns error count added. */
int conf_parse_sluice_cnf(const char *file, const char *text, sl_conf *c, conf_errors *errs);

/* conf_restart_changes - the options that differ between old and new but take effect only at
 * start-up (queue_dir, run_as, dns_servers, submit_socket, submit_channel, metrics_listen, mta_sts_cache_dir): their
 * names appended to out. Dispatcher services are applied by a reload (smtp/listener.h). */
void conf_restart_changes(const sl_conf *old, const sl_conf *new_conf, strvec *out);
/* conf_channel_by_name - channel named name (case-insensitive), or NULL. */
const sl_channel *conf_channel_by_name(const sl_conf *c, const char *name);
/* conf_channel_by_host - channel whose official or alias host name is host, or NULL. */
const sl_channel *conf_channel_by_host(const sl_conf *c, const char *host);
/* conf_cidr_parse - parse "10.0.0.0/8", "::1", "127.0.0.1" into out; -1 on error. */
int conf_cidr_parse(const char *s, sl_cidr *out);
/* conf_cidr_match - whether the socket address lies in one of the networks. */
bool conf_cidr_match(const sl_cidr *nets, size_t n, const struct sockaddr *sa);

/* Helpers shared by the parsers (added by the conf implementation). */
/* conf_next_line - cut the next line out of the writable text at *cursor (strips "\r"); NULL at end. */
char *conf_next_line(char **cursor);
/* conf_line_is_comment - whether line (after leading blanks) starts with one of the chars in marks. */
bool conf_line_is_comment(const char *line, const char *marks);
/* conf_section - parse "[KIND=NAME]" in place. Returns 0 and sets kind and name (trimmed, inside
 * text), or -1 for a malformed header; the caller checks the kind and the name. */
int conf_section(char *text, char **kind, char **name);
/* conf_split_list - split s at commas and blanks into out (copies, empty items dropped). Returns the count. */
size_t conf_split_list(const char *s, strvec *out);
/* conf_dispatcher_free - release c->services (from conf_parse_dispatcher). */
void conf_dispatcher_free(sl_conf *c);
/* conf_sluice_cnf_free - release c->rules and c->channels (from conf_parse_sluice_cnf). */
void conf_sluice_cnf_free(sl_conf *c);
/* conf_channel_type - the channel type implied by a channel name ("l", "tcp_*", "lmtp*", ...). */
enum channel_type conf_channel_type(const char *name);

/* conf_parse_job_controller - parse job_controller.cnf text into c->pools; when it declares no pool,
 * c gets one pool DEFAULT (job_limit 10). Returns error count added. */
int conf_parse_job_controller(const char *file, const char *text, sl_conf *c, conf_errors *errs);
/* conf_job_controller_free - release c->pools (from conf_parse_job_controller). */
void conf_job_controller_free(sl_conf *c);
/* conf_pool_by_name - pool named name (case-insensitive), or NULL. */
const sl_pool *conf_pool_by_name(const sl_conf *c, const char *name);
/* conf_chan_opts_defaults - fill o with the per-channel defaults (timeouts from opt). */
void conf_chan_opts_defaults(const sl_options *opt, sl_chan_opts *o);
/* conf_parse_chan_option - parse a <channel>_option file's text over o. Returns error count added. */
int conf_parse_chan_option(const char *file, const char *text, sl_chan_opts *o, conf_errors *errs);

#endif
