"""Exercise console responsiveness with 30 participants polling, as in a live tabletop exercise.

    python bench/tabletop.py                      # 30 participants, 20 s per phase, gunicorn with 4 workers
    python bench/tabletop.py --participants 60 --seconds 30 --workers 2

Sets up an exercise on the bench database (rampart_bench, see bench/_setup.py): 1 facilitator, 24 players across the
six functions and 5 observers, the "malicious pickle model" scenario, clock started. Serves Rampart with gunicorn on a
local port and runs one thread per person, each polling its screen every 2 s exactly as htmx does (players the play
view, observers the observe view, the facilitator the console feed), with the HX-Request header and the version the
last answer carried. Meanwhile the facilitator releases an inject every 4 s and each player sends a response or two,
so polls keep finding new content.

Two phases: "live" (the real thing: an unchanged panel answers 204) and "always render" (every poll carries a stale
version, so every poll renders the whole panel: the worst case). Prints p50/p95/max latency per poll kind. Asserts
nothing.
"""
from __future__ import annotations

import argparse
import http.client
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

# Run as a script, bench/ would be first on sys.path, where a module may shadow the stdlib (bench/queue.py): use the root.
sys.path[0] = str(Path(__file__).resolve().parent.parent)
from bench import _setup  # noqa: E402

FUNCTIONS = ["ml_engineer", "data_scientist", "security", "legal", "communications", "product_owner"]
VERSION_RE = re.compile(r'partial=(?:poll|feed)&amp;v=([^&"]*)(?:&amp;after=(\d+))?')


def build_exercise(n_participants: int):
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from governance.accounts.models import Role
    from governance.tabletop import services
    from governance.tabletop.loader import load_builtin_scenarios
    from governance.tabletop.models import Scenario

    User = get_user_model()
    load_builtin_scenarios()

    def user(email, role=None):
        u = User.objects.filter(email=email).first() or User.objects.create_user(email=email, password=None,
                                                                                 full_name=email.split("@")[0])
        if role:
            from django.contrib.auth.models import Group
            u.groups.add(Group.objects.get(name=role))
        return u

    facilitator = user("bench-facilitator@example.com", Role.FACILITATOR)
    n_observers = max(1, n_participants // 6)
    n_players = n_participants - 1 - n_observers
    with transaction.atomic():
        exercise = services.exercise_create(actor=facilitator, data={
            "title": f"Bench drill {time.strftime('%H:%M:%S')}", "scenario": Scenario.objects.get(slug="malicious-pickle-model"),
            "facilitator": facilitator}, systems=[])
        players, observers = [], []
        for i in range(n_players):
            u = user(f"bench-player-{i}@example.com")
            players.append(services.participant_add(actor=facilitator, exercise=exercise, user=u, role="player",
                                                    function=FUNCTIONS[i % len(FUNCTIONS)]))
        for i in range(n_observers):
            u = user(f"bench-observer-{i}@example.com")
            observers.append(services.participant_add(actor=facilitator, exercise=exercise, user=u, role="observer"))
    services.exercise_transition(actor=facilitator, exercise=exercise, action="start")
    return exercise, facilitator, players, observers


def session_cookie(user) -> str:
    """A logged-in session without going through the login form (no password hashing in the measurement)."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    s = SessionStore()
    s[SESSION_KEY] = str(user.pk)
    s[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0] if hasattr(settings, "AUTHENTICATION_BACKENDS") else \
        "django.contrib.auth.backends.ModelBackend"
    s[HASH_SESSION_KEY] = user.get_session_auth_hash()
    s.save()
    return s.session_key


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, workers: int, threads: int) -> subprocess.Popen:
    env = os.environ.copy()
    cmd = [str(Path(sys.executable).parent / "gunicorn"), "governance.wsgi", "-b", f"127.0.0.1:{port}",
           "-w", str(workers), "--threads", str(threads), "--log-level", "warning"]
    proc = subprocess.Popen(cmd, cwd=_setup.ROOT, env=env, start_new_session=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/healthz")
            return proc
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("server did not start")


class Poller(threading.Thread):
    def __init__(self, kind, path, cookie, port, stop, results, stale=False, interval=2.0):
        super().__init__(daemon=True)
        self.kind, self.path, self.cookie, self.port, self.stop = kind, path, cookie, port, stop
        self.results, self.stale, self.interval = results, stale, interval
        self.version, self.after = "", "0"

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        time.sleep(random.random() * self.interval)  # people do not open their screens in the same millisecond
        next_at = time.monotonic()
        while not self.stop.is_set():
            v = "stale" if self.stale else self.version
            after = "0" if self.stale else self.after
            url = f"{self.path}?partial={'feed' if self.kind == 'console' else 'poll'}&v={v}&after={after}"
            t0 = time.perf_counter()
            try:
                conn.request("GET", url, headers={"Cookie": f"sessionid={self.cookie}", "HX-Request": "true"})
                resp = conn.getresponse()
                body = resp.read().decode()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                self.results.append((self.kind, -1, time.perf_counter() - t0))
                continue
            self.results.append((self.kind, resp.status, time.perf_counter() - t0))
            if resp.status == 200:
                m = VERSION_RE.search(body)
                if m:
                    self.version = m.group(1)
                    self.after = m.group(2) or self.after
            next_at += self.interval  # htmx "every 2s": a fixed cadence, not 2 s after each answer
            time.sleep(max(0.0, next_at - time.monotonic()))


def play_the_exercise(exercise, facilitator, players, stop):
    """The facilitator releases an inject every 4 s; players answer what they can see."""
    from django.db import close_old_connections

    from governance.tabletop import services
    from governance.tabletop.models import InjectRelease

    rng = random.Random(1)
    injects = list(exercise.scenario.injects.order_by("order"))
    i = 0
    while not stop.wait(4.0):
        if i < len(injects):
            services.inject_release(actor=facilitator, exercise=exercise, inject=injects[i])
            i += 1
        visible = list(InjectRelease.objects.filter(exercise=exercise).select_related("inject"))
        for p in rng.sample(players, k=min(len(players), 6)):
            mine = [r for r in visible if r.inject.is_for(p.function)]
            if mine:
                services.response_record(participant=p, release=rng.choice(mine), text="We isolate and escalate.")
    close_old_connections()


def warm_up(port, people, rounds=3):
    """Load every worker's templates and connections before measuring (not recorded)."""
    for _ in range(rounds):
        for kind, path, cookie in people[:8]:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", f"{path}?partial={'feed' if kind == 'console' else 'poll'}&v=warm&after=0",
                         headers={"Cookie": f"sessionid={cookie}", "HX-Request": "true"})
            conn.getresponse().read()
            conn.close()


def phase(name, port, exercise, people, seconds, stale, facilitator, players):
    results: list[tuple[str, int, float]] = []
    warm_up(port, people)
    load_before = os.getloadavg()[0]
    stop = threading.Event()
    threads = [Poller(kind, path, cookie, port, stop, results, stale=stale) for kind, path, cookie in people]
    for t in threads:
        t.start()
    actor = threading.Thread(target=play_the_exercise, args=(exercise, facilitator, players, stop), daemon=True)
    actor.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(timeout=35)
    actor.join(timeout=10)
    print(f"\n{name} ({len(threads)} pollers every 2 s for {seconds} s; load average {load_before:.1f} → "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    print(f"  {'poll':10} {'requests':>8} {'200':>5} {'204':>5} {'errors':>6} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7}")
    summary = {}
    for kind in ("player", "observer", "console"):
        rows = [r for r in results if r[0] == kind]
        if not rows:
            continue
        lat = sorted(r[2] * 1000 for r in rows if r[1] > 0)
        p50 = statistics.median(lat)
        p95 = lat[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))]
        summary[kind] = (len(rows), p50, p95, lat[-1])
        print(f"  {kind:10} {len(rows):8d} {sum(r[1] == 200 for r in rows):5d} {sum(r[1] == 204 for r in rows):5d} "
              f"{sum(r[1] not in (200, 204) for r in rows):6d} {p50:7.1f} {p95:7.1f} {lat[-1]:7.1f}")
    return summary


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--participants", type=int, default=30)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    _setup.setup()
    print("machine:", _setup.machine())
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=_setup.ROOT, check=True)

    exercise, facilitator, players, observers = build_exercise(args.participants)
    people = [("console", f"/exercises/{exercise.pk}/console/", session_cookie(facilitator))]
    people += [("player", f"/exercises/{exercise.pk}/play/", session_cookie(p.user)) for p in players]
    people += [("observer", f"/exercises/{exercise.pk}/observe/", session_cookie(o.user)) for o in observers]
    print(f"exercise {exercise.pk}: {len(players)} players, {len(observers)} observers, 1 facilitator; "
          f"gunicorn {args.workers} workers × {args.threads} threads")

    port = free_port()
    server = start_server(port, args.workers, args.threads)
    try:
        phase("live (unchanged panels answer 204)", port, exercise, people, args.seconds, False, facilitator, players)
        exercise2, facilitator2, players2, observers2 = build_exercise(args.participants)
        people2 = [("console", f"/exercises/{exercise2.pk}/console/", session_cookie(facilitator2))]
        people2 += [("player", f"/exercises/{exercise2.pk}/play/", session_cookie(p.user)) for p in players2]
        people2 += [("observer", f"/exercises/{exercise2.pk}/observe/", session_cookie(o.user)) for o in observers2]
        phase("always render (every poll renders the whole panel)", port, exercise2, people2, args.seconds, True,
              facilitator2, players2)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
