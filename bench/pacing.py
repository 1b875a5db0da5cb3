#!/usr/bin/python3
"""Pacing accuracy at the receiver, for bench/pacing.sh (issue 8, part 1).

Reads the dialogue log of tests/servers/smtpd.py (JSON lines with the server's own timestamp
"t" of every command) and, per listener, takes the times of the MAIL FROM commands: one per
message, stamped by the receiving server, not by ipwarm. For each provider it prints one line:
    NAME RATE PLANNED COUNT COUNT_ERR_PCT GAP_PLANNED_S GAP_MEAN_S CV MIN_GAP_RATIO
where PLANNED is the number of messages the plan allows in the run (one at the start, then
one every 60/RATE seconds: ceil(DURATION * RATE / 60)), CV the coefficient of variation
(population standard deviation / mean) of the gaps between consecutive messages, and
MIN_GAP_RATIO the smallest gap divided by the planned gap.
NAME is a listener, or LISTENER@IP: the messages that listener received from source IP IP
(the peer address it logged), for a pool of source IPs each paced on its own.
Usage: pacing.py LOG DURATION_S NAME=RATE_PER_MIN...
"""
import json
import math
import statistics
import sys


def main():
    log, duration = sys.argv[1], float(sys.argv[2])
    rates = dict((a.split("=")[0], float(a.split("=")[1])) for a in sys.argv[3:])
    times = {name: [] for name in rates}
    with open(log) as f:
        for line in f:
            d = json.loads(line)
            if d.get("ev") == "cmd" and d.get("line", "").upper().startswith("MAIL FROM"):
                listener = d.get("listener")
                peer = "%s@%s" % (listener, d.get("peer", "").rsplit(":", 1)[0])
                for name in (listener, peer):
                    if name in times:
                        times[name].append(d["t"])
    for name, rate in rates.items():
        t = sorted(times[name])
        planned = math.ceil(duration * rate / 60 - 1e-9)
        gap = 60.0 / rate
        gaps = [b - a for a, b in zip(t, t[1:])]
        mean = statistics.fmean(gaps) if gaps else 0.0
        cv = statistics.pstdev(gaps) / mean if len(gaps) > 1 and mean > 0 else float("nan")
        min_ratio = min(gaps) / gap if gaps else float("nan")
        err = 100.0 * (len(t) - planned) / planned
        print("%s %g %d %d %.2f %.4f %.4f %.4f %.3f" % (name, rate, planned, len(t), err, gap,
                                                       mean, cv, min_ratio))


if __name__ == "__main__":
    main()
