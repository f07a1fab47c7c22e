#!/usr/bin/env bash
# CI smoke run of the benchmark: 200 messages, RTT 0 and 20 ms, one run
# each, against a fast sink (Dovecot's default mail_fsync = optimized, so
# that a cap on what is in flight shows instead of hiding behind the
# server's fsyncs), then the scale measurement on 2,000 messages. It proves
# the benchmark still works end to end (Dovecot, corpus, delay, byte-for-byte
# check, --stats, the scale run's checks); its timings do not decide whether
# CI passes. Takes well under 3 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
timeout 170 bench/run.sh -n 200 -r 0,20 -reps 1 -k 1,4 -fsync optimized "$@"
exec timeout 120 bench/run.sh -scale 2000
