// Package bench holds the throughput benchmark of pop2imap against a real
// Dovecot (bench_test.go, driven by run.sh and ci.sh) and its tools: the
// corpus generator (bench/corpus, bench/cmd/gencorpus). See README.md.
package bench
