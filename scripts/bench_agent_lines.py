#!/usr/bin/env python3
"""Input for scripts/bench_agent.sh: nginx-access-like log lines (~185 bytes, with a sequence number).

  bench_agent_lines.py write LINES_PER_FILE FILE... [--seed N]
      writes LINES_PER_FILE lines to each FILE (file i uses seed N+i, so runs are repeatable);
  bench_agent_lines.py append --rate R --seconds S FILE...
      appends R lines per second in all, round-robin over the FILEs, for S seconds, flushing every
      10 ms as a busy web server's log would grow; prints how many lines it appended.
"""
import argparse
import os
import random
import time

IPS_SEED = 7
PATHS = ["/", "/index.html", "/api/v1/orders", "/api/v1/users/{}", "/static/app.{}.js", "/img/logo.png",
         "/search?q={}", "/cart/checkout"]
REFERERS = ["-", "https://shop.example.com/", "https://shop.example.com/products/{}", "https://www.google.com/"]
AGENTS = ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
          "curl/7.88.1", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15",
          "Go-http-client/1.1"]
METHODS = ["GET"] * 8 + ["POST", "HEAD"]
STATUSES = [200] * 17 + [301, 404, 500]


class Lines:
    """An endless, repeatable stream of "combined" log lines plus a request time and a sequence number."""

    def __init__(self, seed):
        self.rnd = random.Random(seed)
        ips = random.Random(IPS_SEED)
        self.ips = [f"{ips.randrange(1, 224)}.{ips.randrange(256)}.{ips.randrange(256)}.{ips.randrange(1, 255)}"
                    for _ in range(500)]
        self.seq = 0

    def next(self):
        r, i = self.rnd, self.seq
        self.seq += 1
        return (f'{r.choice(self.ips)} - - [23/Nov/2026:{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{i % 60:02d} +0000] '
                f'"{r.choice(METHODS)} {r.choice(PATHS).format(r.randrange(100000))} HTTP/1.1" '
                f'{r.choice(STATUSES)} {r.randrange(100, 50000)} "{r.choice(REFERERS).format(r.randrange(10000))}" '
                f'"{r.choice(AGENTS)}" rt={r.random():.3f} seq={i}\n')


def write(args):
    for i, path in enumerate(args.files):
        lines = Lines(args.seed + i)
        with open(path, "w") as f:
            left = args.lines
            while left:
                n = min(left, 10000)
                f.write("".join(lines.next() for _ in range(n)))
                left -= n


def append(args):
    fds = [os.open(p, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644) for p in args.files]
    streams = [Lines(10_000 + i) for i in range(len(fds))]
    start = time.monotonic()
    written, turn = 0, 0
    total = int(args.rate * args.seconds)
    while written < total:
        due = min(total, int(args.rate * (time.monotonic() - start)))
        batch = {}
        while written < due:
            batch.setdefault(turn, []).append(streams[turn].next())
            turn = (turn + 1) % len(fds)
            written += 1
        for i, lines in batch.items():
            os.write(fds[i], "".join(lines).encode())
        time.sleep(0.01)
    for fd in fds:
        os.close(fd)
    print(written)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write")
    w.add_argument("lines", type=int)
    w.add_argument("files", nargs="+")
    w.add_argument("--seed", type=int, default=1)
    a = sub.add_parser("append")
    a.add_argument("--rate", type=float, required=True)
    a.add_argument("--seconds", type=float, required=True)
    a.add_argument("files", nargs="+")
    args = parser.parse_args()
    write(args) if args.command == "write" else append(args)


if __name__ == "__main__":
    main()
