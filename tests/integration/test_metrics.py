"""test_metrics.py - the metrics endpoint (issue 14, item 2): real scrapes with curl and urllib,
every scrape checked by a strict parser of the Prometheus text exposition format (0.0.4), and
the values checked against what the test did:

- sessions by service (SMTP and local), messages and recipients received by source channel;
- rejects by verdict class and enhanced code (unknown user 5.1.1, relay denied 5.7.1, a
  protocol error);
- deliveries by channel and result (delivered to Maildir, deferred to a dead MX), queue depth
  and oldest age of the channel holding the deferred message, a failed DSN after `queue return`;
- group-commit batches, files and the flush latency histogram;
- 404 for other paths, 501 for POST; off by default; a bad metrics_listen is a configuration error.
"""
import math
import os
import re
import subprocess
import time
import urllib.error
import urllib.request

import pytest

import sluicetest as st

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class ExpositionError(AssertionError):
    pass


def parse_value(text, lineno):
    if text in ("+Inf", "Inf"):
        return math.inf
    if text == "-Inf":
        return -math.inf
    if text == "NaN":
        return math.nan
    if not re.fullmatch(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?", text):
        raise ExpositionError("line %d: bad sample value %r" % (lineno, text))
    return float(text)


def parse_labels(text, lineno):
    """parse_labels - {name: value} of the text between the braces; escapes \\\\, \\" and \\n only."""
    labels, i = {}, 0
    while i < len(text):
        m = re.match(r"([a-zA-Z_][a-zA-Z0-9_]*)=\"", text[i:])
        if not m:
            raise ExpositionError("line %d: bad label at %r" % (lineno, text[i:]))
        name, i, value = m.group(1), i + m.end(), []
        while True:
            if i >= len(text):
                raise ExpositionError("line %d: unterminated label value" % lineno)
            c = text[i]
            if c == "\\":
                esc = text[i + 1:i + 2]
                if esc not in ("\\", '"', "n"):
                    raise ExpositionError("line %d: bad escape \\%s" % (lineno, esc))
                value.append("\n" if esc == "n" else esc)
                i += 2
            elif c == '"':
                i += 1
                break
            elif c == "\n":
                raise ExpositionError("line %d: raw newline in a label value" % lineno)
            else:
                value.append(c)
                i += 1
        if name in labels:
            raise ExpositionError("line %d: label %s twice" % (lineno, name))
        labels[name] = "".join(value)
        if i < len(text):
            if text[i] != ",":
                raise ExpositionError("line %d: expected ',' in labels at %r" % (lineno, text[i:]))
            i += 1
    return labels


def family_of(name, types):
    """family_of - the family a sample name belongs to (histogram suffixes folded)."""
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[:-len(suffix)] if name.endswith(suffix) else None
        if base and types.get(base) == "histogram":
            return base
    return name


def parse_exposition(text):
    """parse_exposition - strict: returns {family: {"type", "help", "samples": [(name, labels, value)]}}."""
    if not text.endswith("\n"):
        raise ExpositionError("the text does not end with a newline")
    fams, types, order, seen = {}, {}, [], set()
    current = None
    for lineno, line in enumerate(text[:-1].split("\n"), 1):
        if line == "":
            raise ExpositionError("line %d: empty line" % lineno)
        if line.startswith("#"):
            m = re.fullmatch(r"# (HELP|TYPE) (\S+) ?(.*)", line)
            if not m:
                if line.startswith("# HELP") or line.startswith("# TYPE"):
                    raise ExpositionError("line %d: malformed %r" % (lineno, line))
                continue  # a plain comment
            kind, name, rest = m.groups()
            if not NAME.match(name):
                raise ExpositionError("line %d: bad metric name %r" % (lineno, name))
            fam = fams.setdefault(name, {"type": "untyped", "help": None, "samples": []})
            if name in seen and current != name:
                raise ExpositionError("line %d: %s declared after its samples or apart from them" % (lineno, name))
            if kind == "HELP":
                if fam["help"] is not None:
                    raise ExpositionError("line %d: second HELP for %s" % (lineno, name))
                if re.search(r"\\[^\\n]", rest.replace("\\\\", "")):
                    raise ExpositionError("line %d: bad escape in HELP" % lineno)
                fam["help"] = rest
            else:
                if rest not in TYPES or name in types:
                    raise ExpositionError("line %d: bad or second TYPE %r" % (lineno, rest))
                if fam["samples"]:
                    raise ExpositionError("line %d: TYPE after samples" % lineno)
                types[name] = fam["type"] = rest
            if name not in order:
                order.append(name)
            current = name
            continue
        m = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( -?\d+)?", line)
        if not m:
            raise ExpositionError("line %d: malformed sample %r" % (lineno, line))
        name, _, ltext, vtext, _ts = m.groups()
        labels = parse_labels(ltext, lineno) if ltext else {}
        value = parse_value(vtext, lineno)
        base = family_of(name, types)
        if base != current and base in seen:
            raise ExpositionError("line %d: samples of %s are not together" % (lineno, base))
        fam = fams.setdefault(base, {"type": "untyped", "help": None, "samples": []})
        if base not in order:
            order.append(base)
        key = (name, tuple(sorted(labels.items())))
        if any((n, tuple(sorted(l.items()))) == key for n, l, _ in fam["samples"]):
            raise ExpositionError("line %d: duplicate series %r" % (lineno, key))
        fam["samples"].append((name, labels, value))
        seen.add(base)
        current = base
    for name, fam in fams.items():
        check_family(name, fam)
    return fams


def check_family(name, fam):
    """check_family - type rules: counters end in _total and never go negative; histograms are consistent."""
    t = fam["type"]
    if t == "counter":
        if not name.endswith("_total"):
            raise ExpositionError("counter %s does not end in _total" % name)
        for n, _l, v in fam["samples"]:
            if n != name or v < 0 or math.isnan(v):
                raise ExpositionError("counter %s: bad sample %s %r" % (name, n, v))
    if t == "histogram":
        check_histogram(name, fam["samples"])


def check_histogram(name, samples):
    groups = {}
    for n, l, v in samples:
        rest = tuple(sorted((k, x) for k, x in l.items() if k != "le"))
        g = groups.setdefault(rest, {"buckets": [], "sum": None, "count": None})
        if n == name + "_bucket":
            if "le" not in l:
                raise ExpositionError("%s bucket without le" % name)
            g["buckets"].append((parse_value(l["le"], 0), v))
        elif n == name + "_sum":
            g["sum"] = v
        elif n == name + "_count":
            g["count"] = v
        else:
            raise ExpositionError("histogram %s: stray sample %s" % (name, n))
    for rest, g in groups.items():
        les = [le for le, _ in g["buckets"]]
        counts = [c for _, c in g["buckets"]]
        if not les or les[-1] != math.inf or les != sorted(les) or len(set(les)) != len(les):
            raise ExpositionError("histogram %s%r: buckets %r" % (name, rest, les))
        if counts != sorted(counts):
            raise ExpositionError("histogram %s%r: buckets not cumulative %r" % (name, rest, counts))
        if g["count"] is None or g["sum"] is None or g["count"] != counts[-1]:
            raise ExpositionError("histogram %s%r: _count %r vs +Inf %r" % (name, rest, g["count"], counts[-1]))


def value(fams, family, sample=None, **labels):
    """value - the sample of family with exactly these labels, or None."""
    for n, l, v in fams.get(family, {}).get("samples", []):
        if n == (sample or family) and l == labels:
            return v
    return None


# ---------------------------------------------------------------- the daemon


@pytest.fixture(scope="module")
def mta(module_harness):
    port = st.free_port()
    m = module_harness.sluice(options={"metrics_listen": str(port), "internal_networks": "10.9.9.0/24",
                                       "retry_interval": "1", "retry_max": "1"})
    m.metrics_port = port
    return m


def scrape_curl(mta, path="/metrics"):
    """scrape_curl - (status, content type, body) of a GET with curl."""
    r = subprocess.run(["curl", "-sS", "-i", "--max-time", "10", "http://127.0.0.1:%d%s" % (mta.metrics_port, path)],
                       capture_output=True, timeout=20)
    assert r.returncode == 0, r
    head, _, body = r.stdout.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    ctype = re.search(rb"(?im)^content-type: *(.*?)\r?$", head)
    return status, ctype.group(1).decode() if ctype else "", body.decode()


def scrape(mta):
    status, ctype, body = scrape_curl(mta)
    assert status == 200, (status, body)
    assert ctype == "text/plain; version=0.0.4; charset=utf-8", ctype
    return parse_exposition(body)


def test_parser_rejects_malformed_text():
    good = "# HELP a_total x\n# TYPE a_total counter\na_total{k=\"v\"} 1\n"
    parse_exposition(good)
    for bad in (good[:-1], good.replace('"v"', '"v\\x"'), good + "a_total{k=\"v\"} 2\n",
                good.replace("1\n", "one\n"), good.replace("a_total{", "a_total {"),
                "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
                "# TYPE c counter\nc 1\n", good + "# TYPE a_total counter\n"):
        with pytest.raises(ExpositionError):
            parse_exposition(bad)


def test_scrape_counts_what_happened(mta):
    before = scrape(mta)
    base_sessions = value(before, "sluice_sessions_total", service="SMTP") or 0
    for i in range(2):
        final, rr = st.send_message(mta.port, "someone@example.test", ["alice@example.test", "bob@example.test"],
                                    st.make_message("metrics-%d@test" % i))
        assert final.code == 250, final
    with st.Client(mta.port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<x@example.test>").code == 250
        assert c.cmd("RCPT TO:<nobody@example.test>").code == 550
        assert c.cmd("RCPT TO:<x@elsewhere.test>").code == 550  # relay denied: the client is outside
        assert c.cmd("BOGUS").code == 500
        c.quit()
    env = dict(os.environ, SLUICE_CONFIG_DIR=mta.confdir)
    r = subprocess.run([st.BIN, "sendmail", "-f", "alice@example.test", "user@dead.test"], input=b"Subject: d\n\nx\n",
                       env=env, capture_output=True, timeout=30)
    assert r.returncode == 0, r
    ln = mta.wait_event(lambda l: l.event == "deferred" and l.kv.get("rcpt") == "<user@dead.test>")
    assert ln, mta.log_excerpt()
    qid = ln.id
    assert mta.wait_message("bob@example.test", b"metrics-1@test")
    time.sleep(1.2)
    f = scrape(mta)
    assert value(f, "sluice_sessions_total", service="SMTP") == base_sessions + 3
    assert value(f, "sluice_sessions_total", service="local") >= 1
    assert value(f, "sluice_messages_received_total", channel="tcp_local") == 2
    assert value(f, "sluice_recipients_received_total", channel="tcp_local") == 4
    assert value(f, "sluice_messages_received_total", channel="l") >= 1
    assert value(f, "sluice_rejects_total", **{"class": "unknown_user", "code": "5.1.1"}) == 1
    assert value(f, "sluice_rejects_total", **{"class": "relay_denied", "code": "5.7.1"}) == 1
    assert value(f, "sluice_rejects_total", **{"class": "protocol", "code": "5.5.1"}) == 1
    assert value(f, "sluice_deliveries_total", channel="l", result="delivered") == 4
    assert value(f, "sluice_deliveries_total", channel="tcp_local", result="deferred") >= 1
    assert value(f, "sluice_queue_messages", channel="tcp_local") == 1
    assert value(f, "sluice_queue_oldest_age_seconds", channel="tcp_local") >= 1
    assert value(f, "sluice_queue_messages", channel="l") == 0
    assert value(f, "sluice_build_info", version="0.1.0") == 1
    batches = value(f, "sluice_store_commit_batches_total")
    assert batches >= 3 and value(f, "sluice_store_commit_files_total") >= batches
    flushes = value(f, "sluice_store_flush_seconds", "sluice_store_flush_seconds_count")
    assert flushes == batches, (flushes, batches)
    assert 0 < value(f, "sluice_store_flush_seconds", "sluice_store_flush_seconds_sum") < flushes * 5
    for fam in ("sluice_dsn_total", "sluice_pickup_files_total"):
        assert f[fam]["type"] == "counter" and f[fam]["help"], fam

    r = mta.queue("return", qid)
    assert r.returncode == 0, r
    assert mta.wait_message("alice@example.test", b"user@dead.test"), mta.log_excerpt("bounce")
    f = scrape(mta)
    assert value(f, "sluice_dsn_total", kind="failed") == 1
    assert value(f, "sluice_queue_messages", channel="tcp_local") == 0
    assert value(f, "sluice_deliveries_total", channel="tcp_local", result="failed") == 1


def test_urllib_paths_and_methods(mta):
    url = "http://127.0.0.1:%d" % mta.metrics_port
    with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
        parse_exposition(r.read().decode())
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url + "/", timeout=10)
    assert e.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(urllib.request.Request(url + "/metrics", data=b"", method="POST"), timeout=10)
    assert e.value.code == 501  # evhttp refuses methods it was not allowed to serve
    assert [ln for ln in mta.events("listen") if ln.kv.get("service") == "metrics" and
            ln.kv.get("address") == "127.0.0.1:%d" % mta.metrics_port]


def test_off_by_default_and_bad_values(harness):
    m = harness.sluice()
    assert not [ln for ln in m.events("listen") if ln.kv.get("service") == "metrics"]
    m.stop()
    for bad in ("localhost:9465", "127.0.0.1", "127.0.0.1:0", "[::1]:99999"):
        m.write("option.dat", "metrics_listen=%s\nqueue_dir=%s\n" % (bad, m.queue_dir))
        r = subprocess.run([st.BIN, "check", "-C", m.confdir], capture_output=True, text=True, timeout=30)
        assert r.returncode == 1 and "metrics_listen: bad value" in r.stderr, (bad, r)
