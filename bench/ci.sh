#!/usr/bin/env bash
# CI smoke run of the benchmark: 200 messages, RTT 0 and 20 ms, one run
# each, against a fast sink (Dovecot's default mail_fsync = optimized, so
# that a cap on what is in flight shows instead of hiding behind the
# server's fsyncs), then the scale measurement on 2,000 messages, then a
# batch of 200 accounts of 3 messages (pop2imap batch with its defaults)
# and its single-mailbox baseline. It proves the benchmark still works end
# to end (Dovecot, corpus, delay, byte-for-byte check, --stats, the scale
# run's checks) and that the batch moved every message exactly once within
# 16 connections to Dovecot and 128 MiB; its timings do not decide whether
# CI passes (the timeouts only stop a hung run). Takes about 3 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
timeout 170 bench/run.sh -n 200 -r 0,20 -reps 1 -k 1,4 -fsync optimized "$@"
timeout 120 bench/run.sh -scale 2000
exec timeout 150 bench/run.sh -batch 200 -k 0
