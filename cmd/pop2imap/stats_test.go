package main

import (
	"regexp"
	"strings"
	"testing"
)

// TestStatsLine: --stats prints one line that says where the time went, and
// -v logs the same figures; without either, neither appears.
func TestStatsLine(t *testing.T) {
	e := newCLIEnv(t)
	t.Setenv("POP2IMAP_POP3_PASSWORD", testPOP3Pass)
	t.Setenv("POP2IMAP_IMAP_PASSWORD", testIMAPPass)
	code, stdout, stderr := runCLI(t, append(e.args, "--stats", "-v")...)
	if code != exitOK {
		t.Fatalf("exit %d; stderr: %s", code, stderr)
	}
	var line string
	for _, l := range strings.Split(stdout, "\n") {
		if strings.HasPrefix(l, "Stats: ") {
			if line != "" {
				t.Fatalf("more than one Stats line:\n%s", stdout)
			}
			line = l
		}
	}
	want := regexp.MustCompile(`^Stats: set-up [0-9.]+ s \(listing [0-9.]+ s\), copying [0-9.]+ s \(RETR [0-9.]+ s, waiting for the IMAP side [0-9.]+ s\), ` +
		`APPEND [0-9.]+ ms a message, journal [0-9.]+ ms a message, [0-9.]+ in flight on average \(window up to [1-9][0-9]*\), RTT [0-9.]+ ms$`)
	if !want.MatchString(line) {
		t.Errorf("Stats line %q does not say where the time went", line)
	}
	if !strings.Contains(stderr, "timings") || !strings.Contains(stderr, "in_flight=") {
		t.Errorf("-v did not log the timings:\n%s", stderr)
	}

	e = newCLIEnv(t)
	code, stdout, stderr = runCLI(t, e.args...)
	if code != exitOK {
		t.Fatalf("exit %d; stderr: %s", code, stderr)
	}
	if strings.Contains(stdout, "Stats:") || strings.Contains(stderr, "timings") {
		t.Errorf("timings without --stats or -v:\n%s\n%s", stdout, stderr)
	}
}
