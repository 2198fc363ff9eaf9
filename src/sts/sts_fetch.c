/* sts_fetch.c - the HTTPS GET of an MTA-STS policy with libcurl (see sts_fetch.h). */
#include "sts/sts_fetch.h"

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

/* Set when the daemon stops: fetches in progress give up within a second. */
static atomic_bool abort_all;

/* What the body callback needs. */
struct sink {
    strbuf *body;
    bool too_big;
};

void sts_fetch_global_init(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) fatal("libcurl: global initialisation failed");
}

void sts_fetch_abort_all(void)
{
    atomic_store(&abort_all, true);
}

/* on_progress - curl's progress callback (at least once a second): non-zero aborts the fetch. */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)arg, (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    return atomic_load(&abort_all) ? 1 : 0;
}

void sts_fetch_global_cleanup(void)
{
    curl_global_cleanup();
}

char *sts_fetch_url(const char *domain, unsigned port)
{
    if (port == 443 || port == 0) return xasprintf("https://mta-sts.%s/.well-known/mta-sts.txt", domain);
    return xasprintf("https://mta-sts.%s:%u/.well-known/mta-sts.txt", domain, port);
}

bool sts_content_type_ok(const char *ct)
{
    if (!ct || strncasecmp(ct, "text/plain", 10) != 0) return false;
    return ct[10] == '\0' || ct[10] == ';' || ct[10] == ' ' || ct[10] == '\t';
}

/* on_body - take the body as it arrives; more than STS_POLICY_MAX_BYTES ends the transfer. */
static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
    struct sink *s = arg;
    size_t n = size * nmemb;
    if (s->body->len + n > STS_POLICY_MAX_BYTES) {
        s->too_big = true;
        return 0;
    }
    sb_append(s->body, p, n);
    return n;
}

/* on_ssl_ctx - add the extra CA file to the trust store curl filled from the system's. */
static CURLcode on_ssl_ctx(CURL *curl, void *ssl_ctx, void *arg)
{
    (void)curl;
    if (SSL_CTX_load_verify_locations(ssl_ctx, arg, NULL) != 1) {
        ERR_clear_error();
        return CURLE_SSL_CACERT_BADFILE;
    }
    return CURLE_OK;
}

/* fail - the fetch failed at stage: the facts and the formatted reason into rs. */
static void fail(sts_fetch_res *rs, enum sts_fail_stage stage, bool webpki, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fail(sts_fetch_res *rs, enum sts_fail_stage stage, bool webpki, const char *fmt, ...)
{
    rs->ok = false;
    rs->fail.stage = stage;
    rs->fail.webpki = webpki;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rs->why, sizeof rs->why, fmt, ap);
    va_end(ap);
}

/* resolve_list - curl's CURLOPT_RESOLVE entry "HOST:PORT:ADDR,[ADDR6],..." for rq; caller frees. */
static char *resolve_list(const sts_fetch_req *rq)
{
    strbuf sb;
    sb_init(&sb);
    sb_printf(&sb, "mta-sts.%s:%u:", rq->domain, rq->port ? rq->port : 443);
    const char *p = rq->addrs;
    for (bool first = true; *p; first = false) {
        size_t n = strcspn(p, ",");
        bool v6 = memchr(p, ':', n) != NULL;
        sb_printf(&sb, "%s%s%.*s%s", first ? "" : ",", v6 ? "[" : "", (int)n, p, v6 ? "]" : "");
        p += n;
        if (*p == ',') p++;
    }
    return sb_steal(&sb);
}

/* setup - the options of one fetch on c. */
static void setup(CURL *c, const sts_fetch_req *rq, struct sink *sink, char *errbuf, struct curl_slist **resolve)
{
    char *url = sts_fetch_url(rq->domain, rq->port);
    curl_easy_setopt(c, CURLOPT_URL, url);
    free(url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L); /* §3.3: redirects MUST NOT be followed */
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);       /* we run on a worker thread */
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)(rq->timeout ? rq->timeout : 30));
    curl_easy_setopt(c, CURLOPT_PROXY, "");          /* never a proxy from the environment */
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_CA_CACHE_TIMEOUT, 0L);
    if (rq->ca_file) {
        curl_easy_setopt(c, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
        curl_easy_setopt(c, CURLOPT_SSL_CTX_DATA, (void *)rq->ca_file);
    }
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)STS_POLICY_MAX_BYTES);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "sluice (MTA-STS)");
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, sink);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    if (rq->addrs && *rq->addrs) {
        char *entry = resolve_list(rq);
        *resolve = curl_slist_append(NULL, entry);
        free(entry);
        if (!*resolve) abort();
        curl_easy_setopt(c, CURLOPT_RESOLVE, *resolve);
    }
}

void sts_fetch(const sts_fetch_req *rq, sts_fetch_res *rs)
{
    memset(rs, 0, sizeof *rs);
    sb_init(&rs->body);
    CURL *c = curl_easy_init();
    if (!c) abort();
    struct sink sink = {&rs->body, false};
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *resolve = NULL;
    setup(c, rq, &sink, errbuf, &resolve);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    char *ct = NULL;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    if (sink.too_big || rc == CURLE_FILESIZE_EXCEEDED) {
        fail(rs, STS_FAIL_FETCH, false, "the policy is larger than 64 KiB");
    } else if (rc != CURLE_OK) {
        fail(rs, STS_FAIL_FETCH, rc == CURLE_PEER_FAILED_VERIFICATION, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
    } else if (status != 200) {
        fail(rs, STS_FAIL_FETCH, false, "HTTP status %ld%s", status,
             status >= 300 && status < 400 ? " (redirects are not followed)" : "");
    } else if (!sts_content_type_ok(ct)) {
        fail(rs, STS_FAIL_POLICY, false, "Content-Type is \"%s\", not text/plain", ct ? ct : "");
        for (char *p = rs->why; *p; p++)
            if ((unsigned char)*p < 0x20) *p = '?';
    } else {
        rs->ok = true;
    }
    if (!rs->ok) sb_free(&rs->body);
    curl_slist_free_all(resolve);
    curl_easy_cleanup(c);
}
