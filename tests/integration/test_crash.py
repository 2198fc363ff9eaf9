"""test_crash.py - crash safety: messages answered 250 survive kill -9 at any moment.

Each round starts the daemon, runs four client threads sending messages (unique Message-ID each)
to local users, and kills the daemon with SIGKILL at a random moment 0.1-1.5 s in. After the
last round the daemon is started once more and every message that was answered 250 must appear,
complete, in its recipient's Maildir (duplicates are allowed: deliveries in flight at a crash).
Nothing may be moved to queue_dir/corrupt. SLUICE_CRASH_ROUNDS overrides the number of rounds.
"""
import os
import random
import re
import threading
import time
import uuid

import sluicetest as st
from sluicetest import Client

ROUNDS = int(os.environ.get("SLUICE_CRASH_ROUNDS", "20"))
MIN_SENT = 10 * ROUNDS            # 200 for the default 20 rounds
MAX_ROUNDS = 3 * ROUNDS           # extra rounds only if too few messages went out
THREADS = 4
RCPTS = ["alice@example.test", "bob@example.test", "carol@example.test", "dave@example.test"]
MID_RE = re.compile(rb"^Message-ID:\s*<([^>]+)>", re.M | re.I)


def message_for(mid, rcpt):
    body = b"".join(b"crash test line %02d for %s\r\n" % (i, mid.encode()) for i in range(20))
    return st.make_message(mid, subject="crash", to=rcpt, body=body)


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.sent = 0
        self.acked = []  # (mid, rcpt, queue id, round)
        self.errors = []


def worker(port, rnd, tid, stop, stats):
    """worker - send messages until stop is set; record those answered 250. Bounded by socket timeouts."""
    n = 0
    while not stop.is_set():
        c = None
        try:
            c = Client(port, timeout=5)
            if c.greeting.code != 220:
                raise st.SMTPError("greeting %r" % c.greeting)
            c.ehlo("crash%d.example.test" % tid)
            for _ in range(5):
                if stop.is_set():
                    break
                n += 1
                mid = "crash-r%d-t%d-n%d-%s@test" % (rnd, tid, n, uuid.uuid4().hex[:10])
                rcpt = RCPTS[(tid + n) % len(RCPTS)]
                if c.cmd("MAIL FROM:<alice@example.test>").code != 250:
                    break
                if c.cmd("RCPT TO:<%s>" % rcpt).code != 250:
                    break
                if c.cmd("DATA").code != 354:
                    break
                c.send(st.dot_stuff(message_for(mid, rcpt)) + b".\r\n")
                with stats.lock:
                    stats.sent += 1
                r = c.reply()
                if r.code == 250:
                    with stats.lock:
                        stats.acked.append((mid, rcpt, st.queue_id(r), rnd))
            c.quit()
        except (st.SMTPError, OSError):
            time.sleep(0.02)
        finally:
            if c is not None:
                c.close()


def scan_maildirs(mta, seen, index):
    """scan_maildirs - read files not seen yet; index maps Message-ID -> [(mailbox, bytes)]."""
    for path in mta.all_maildir_files():
        if path in seen:
            continue
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            continue
        seen.add(path)
        head = st.split_header(data)[0]
        for m in MID_RE.finditer(head):
            box = os.path.relpath(os.path.dirname(os.path.dirname(path)), mta.maildir_root)
            index.setdefault(m.group(1).decode(), []).append((box, data))


def test_kill9_loses_no_acknowledged_message(harness):
    mta = harness.sluice(start=False)
    stats = Stats()
    rounds = 0
    while rounds < ROUNDS or (stats.sent < MIN_SENT and rounds < MAX_ROUNDS):
        mta.start()
        stop = threading.Event()
        threads = [threading.Thread(target=worker, args=(mta.port, rounds, t, stop, stats), daemon=True)
                   for t in range(THREADS)]
        for t in threads:
            t.start()
        time.sleep(random.uniform(0.1, 1.5))
        mta.kill9()
        stop.set()
        for t in threads:
            t.join(timeout=20)
        assert not any(t.is_alive() for t in threads), "a client thread hung"
        rounds += 1
    mta.start()

    assert stats.sent >= MIN_SENT, "only %d messages sent in %d rounds (need %d); acked %d" % (
        stats.sent, rounds, MIN_SENT, len(stats.acked))
    assert stats.acked, "no message was ever answered 250"

    seen, index = set(), {}

    def missing():
        scan_maildirs(mta, seen, index)
        out = []
        for mid, rcpt, qid, rnd in stats.acked:
            box = os.path.join("example.test", rcpt.split("@")[0])
            if not any(b == box for b, _ in index.get(mid, [])):
                out.append((mid, rcpt, qid, rnd))
        return out

    st.wait_until(lambda: not missing(), timeout=60, interval=0.5)
    lost = missing()
    assert not lost, "%d of %d acknowledged messages never delivered (sent %d, rounds %d); first ones:\n%s\nlog:\n%s" % (
        len(lost), len(stats.acked), stats.sent, rounds,
        "\n".join("%s to %s queued as %s in round %d" % x for x in lost[:15]),
        mta.log_excerpt(*[x[2] for x in lost[:5] if x[2]]))

    # Every stored copy is complete: nothing torn by a crash made it into new/.
    torn = []
    for mid, rcpt, _qid, _rnd in stats.acked:
        for box, data in index.get(mid, []):
            if not data.endswith(message_for(mid, rcpt)):
                torn.append((mid, box, len(data)))
    assert not torn, "incomplete messages in Maildirs: %r" % torn[:10]

    corrupt_dir = os.path.join(mta.queue_dir, "corrupt")
    corrupt_files = os.listdir(corrupt_dir) if os.path.isdir(corrupt_dir) else []
    corrupt_events = [ln.raw for ln in mta.log() if ln.event == "corrupt"]
    assert not corrupt_files and not corrupt_events, (
        "queue files were declared corrupt after kill -9 (a crash must never leave a damaged queue file):\n"
        "files: %r\nlog:\n%s" % (corrupt_files[:20], "\n".join(corrupt_events[:20])))
    dups = sum(1 for v in index.values() if len(v) > 1)
    print("crash test: rounds=%d sent=%d acked=%d duplicates=%d" % (rounds, stats.sent, len(stats.acked), dups))
