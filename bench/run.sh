#!/usr/bin/env bash
# Throughput benchmark of pop2imap against a real Dovecot on 127.0.0.1.
#
# usage: bench/run.sh [-n 2000[,20000]] [-r 0,20,50] [-reps 3] [-k 1,2,4,8]
#                     [-huge 20,100] [-seed 1] [-flags "--imap-conns 8"]
#                     [-mix usual|small] [-format maildir|sdbox|mdbox]
#                     [-delay auto|netem|proxy] [-fsync always|optimized]
#                     [-tls none|implicit] [-o results.txt]
#        bench/run.sh -scale 1000000
#        bench/run.sh -index 100000
#        bench/run.sh -batch 10000 [-batch-msgs 3] [-login high-security|performance]
#
#   -n      maildrop sizes (messages of the usual mix, see bench/corpus)
#   -mix    small: 2 to 8 KB text messages only, for the many-messages runs
#   -format Dovecot mailbox format of the IMAP targets (default maildir; the
#           POP3 source is always maildir). Parallel APPENDs to a large
#           maildir folder get slower with every message; sdbox stays near
#           flat, so use it for runs of 100,000 messages
#   -r      round-trip times in ms between pop2imap and Dovecot. Through
#           the proxy, RTT 0 is run twice, straight to Dovecot and through
#           the proxy with no delay, and "vs RTT 0" is taken against the
#           latter, so that it holds the latency alone and not the proxy's
#           own CPU. Each rep runs every RTT in turn
#   -reps   runs per measurement; the median is reported
#   -k      IMAP connection counts tried for the APPEND-only sink (0: none)
#   -huge   also migrate a maildrop of one message of this many MB (RTT 0)
#   -flags  extra pop2imap migrate flags
#   -fsync  Dovecot's mail_fsync (default always: every APPEND waits for the
#           disk, a slow sink that hides latency); optimized, Dovecot's own
#           default, is the fast sink
#   -tls    implicit: pop2imap talks POP3S and IMAPS (default none: plain)
#   -delay  netem: tc netem on lo inside a private network namespace;
#           proxy: internal/delayproxy on 127.0.0.1; auto (default): netem
#           when the kernel has it, else proxy
#   -scale  instead of all the above, measure memory for a maildrop of this
#           many tiny messages where nothing is copied: a bridge --baseline
#           run that records them all, then a migrate run that finds them
#           all done (bench/scale_test.go)
#   -index  instead of all the above, measure the folder index on a target
#           folder of this many tiny messages with a journal that knows none
#           of them: one new message, then every message adopted
#           (bench/index_test.go)
#   -batch  instead of all the above, measure "pop2imap batch" (its defaults,
#           --jobs 8 --max-conns-per-host 16) on this many accounts of
#           -batch-msgs messages each (default 3), every source and target
#           its own Dovecot user (2 x N users); the same messages as one
#           maildrop through "pop2imap migrate" before the batch and after
#           it (the ratio is against the faster), and the sink at each -k
#           (default 4; 0: none). Fails on a lost or duplicated message, an
#           account not done, more ESTABLISHED connections to Dovecot than
#           the cap (16, or --max-conns-per-host in -flags; sampled
#           every 100 ms, as ss does, over netlink) or a peak RSS over 128 MiB, never on time
#           (bench/batch_test.go). Dovecot keeps its users in one
#           passwd-file. In this mode -mix defaults to small, -fsync to
#           optimized, -k to 4, and -flags are extra batch flags
#   -login  Dovecot's processes in -batch mode: high-security (the
#           default, one fork per connection and per session) or
#           performance, as providers with virtual users run it (login
#           processes with service_count = 0, process_min_avail = 2; imap
#           and pop3 processes reused for 100 sessions each)
#
# Needs root (Dovecot switches to its mail user), dovecot-pop3d,
# dovecot-imapd and time (/usr/bin/time). Traffic stays on 127.0.0.0/8.
# Everything it creates (temp dirs, Dovecot, network namespace) is removed
# on exit, also on failure or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

sizes=2000 rtts=0,20,50 reps=3 ks=1,2,4,8 huge= seed=1 flags= mix=usual format=maildir delay=auto fsync=always tlsmode=none out= scale= index=
batch= batchmsgs=3 login=high-security
set_mix= set_fsync= set_k=
while (($#)); do
	case $1 in
	-n) sizes=$2 ;;
	-r) rtts=$2 ;;
	-reps) reps=$2 ;;
	-k) ks=$2 set_k=1 ;;
	-huge) huge=$2 ;;
	-seed) seed=$2 ;;
	-flags) flags=$2 ;;
	-scale) scale=$2 ;;
	-index) index=$2 ;;
	-batch) batch=$2 ;;
	-batch-msgs) batchmsgs=$2 ;;
	-login) login=$2 ;;
	-mix) mix=$2 set_mix=1 ;;
	-format) format=$2 ;;
	-delay) delay=$2 ;;
	-fsync) fsync=$2 set_fsync=1 ;;
	-tls) tlsmode=$2 ;;
	-o) out=$2 ;;
	-h | --help)
		sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "bench/run.sh: unknown argument $1 (try -h)" >&2
		exit 2
		;;
	esac
	shift 2 || { echo "bench/run.sh: $1 needs a value" >&2; exit 2; }
done

if [[ $(id -u) -ne 0 ]]; then
	echo "bench/run.sh: must run as root (Dovecot switches to its mail user)" >&2
	exit 1
fi
if [[ ! -x /usr/bin/time ]]; then
	echo "bench/run.sh: /usr/bin/time is missing: apt-get install time" >&2
	exit 1
fi

work=$(mktemp -d /tmp/pop2imap-bench.XXXXXX)
netns=
testpid=
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [[ -n $testpid ]] && kill -0 "$testpid" 2>/dev/null; then
		kill -TERM "$testpid" 2>/dev/null || true
		wait "$testpid" 2>/dev/null || true
	fi
	if [[ -f $work/dovecot-dir ]]; then
		dir=$(<"$work/dovecot-dir")
		# Only what this run's Dovecot created (dovecottest.makeDir).
		[[ $dir == */dovecottest-* ]] && rm -rf -- "$dir"
	fi
	[[ -n $netns ]] && ip netns del "$netns" 2>/dev/null
	rm -rf -- "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# netem works when a private namespace can put it on its own lo; a kernel
# without sch_netem fails at "tc qdisc add".
have_netem() {
	local probe=p2i-probe-$$ ok=1
	ip netns add "$probe" 2>/dev/null || return 1
	ip netns exec "$probe" ip link set lo up 2>/dev/null &&
		ip netns exec "$probe" tc qdisc add dev lo root netem delay 1ms 2>/dev/null || ok=0
	ip netns del "$probe" 2>/dev/null || true
	((ok))
}
if [[ -n $batch ]]; then
	# Many small mailboxes against the fast sink, at RTT 0: no namespace.
	[[ -n $set_mix ]] || mix=small
	[[ -n $set_fsync ]] || fsync=optimized
	[[ -n $set_k ]] || ks=4
	delay=proxy rtts=0
fi
case $login in
high-security | performance) ;;
*) echo "bench/run.sh: -login must be high-security or performance" >&2; exit 2 ;;
esac
case $mix in
usual | small) ;;
*) echo "bench/run.sh: -mix must be usual or small" >&2; exit 2 ;;
esac
case $format in
maildir | sdbox | mdbox) ;;
*) echo "bench/run.sh: -format must be maildir, sdbox or mdbox" >&2; exit 2 ;;
esac
case $tlsmode in
none | implicit) ;;
*) echo "bench/run.sh: -tls must be none or implicit" >&2; exit 2 ;;
esac
case $delay in
auto) if have_netem; then delay=netem; else delay=proxy; fi ;;
netem) have_netem || { echo "bench/run.sh: tc netem does not work on this kernel" >&2; exit 1; } ;;
proxy) ;;
*) echo "bench/run.sh: -delay must be auto, netem or proxy" >&2; exit 2 ;;
esac
if [[ -n $batch ]]; then
	echo "bench: batch of $batch accounts x $batchmsgs messages ($mix mix); mail_fsync = $fsync; $login login; target $format; work dir $work"
else
	echo "bench: delay by $delay; mail_fsync = $fsync; TLS $tlsmode; sizes $sizes; RTT $rtts ms; $reps runs each; target $format; work dir $work"
fi

go build -o "$work/pop2imap" ./cmd/pop2imap
go test -c -o "$work/bench.test" ./bench

prefix=()
netem_flag=0
if [[ $delay == netem ]]; then
	netns=p2i-bench-$$
	ip netns add "$netns"
	ip netns exec "$netns" ip link set lo up
	prefix=(ip netns exec "$netns")
	netem_flag=1
fi

export POP2IMAP_BENCH=1 POP2IMAP_DOVECOT=require
export BENCH_BIN=$work/pop2imap BENCH_WORK=$work BENCH_N=$sizes BENCH_RTT=$rtts \
	BENCH_REPS=$reps BENCH_SINK_K=$ks BENCH_HUGE_MB=$huge BENCH_SEED=$seed \
	BENCH_FLAGS=$flags BENCH_NETEM=$netem_flag BENCH_MIX=$mix BENCH_FORMAT=$format \
	BENCH_FSYNC=$fsync BENCH_TLS=$tlsmode \
	BENCH_SCALE_N=$scale BENCH_INDEX_N=$index \
	BENCH_BATCH_N=$batch BENCH_BATCH_MSGS=$batchmsgs BENCH_LOGIN=$login
run='^TestBench$'
if [[ -n $scale ]]; then
	run='^TestScale$'
elif [[ -n $index ]]; then
	run='^TestFolderIndex$'
elif [[ -n $batch ]]; then
	run='^TestBatch$'
fi
(cd bench && exec "${prefix[@]}" "$work/bench.test" -test.run "$run" -test.v -test.count=1 -test.timeout=0) &
testpid=$!
status=0
wait "$testpid" || status=$?
testpid=
echo
echo "== results"
cat "$work/results.txt" 2>/dev/null || true
if [[ -n $out && -f $work/results.txt ]]; then
	cp "$work/results.txt" "$out"
fi
exit "$status"
