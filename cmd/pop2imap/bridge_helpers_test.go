package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pop2imap/pop2imap/internal/imaptest"
	"github.com/pop2imap/pop2imap/internal/pop3test"
)

// logWatch is an io.Writer that collects log lines and lets a test wait
// for a line, so tests follow the bridge's cycles without sleeping.
type logWatch struct {
	mu      sync.Mutex
	partial []byte
	lines   []string
	changed chan struct{}
}

func newLogWatch() *logWatch { return &logWatch{changed: make(chan struct{})} }

func (w *logWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.lines = append(w.lines, string(w.partial[:i]))
		w.partial = w.partial[i+1:]
	}
	close(w.changed)
	w.changed = make(chan struct{})
	return len(p), nil
}

func (w *logWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.lines, "\n")
}

// waitFor returns the first line at index from or later that contains all
// of subs, and the index after it. It fails the test after 60 seconds, a
// guard against a hang and not a measure of speed.
func (w *logWatch) waitFor(t *testing.T, from int, subs ...string) (string, int) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		w.mu.Lock()
		for i := from; i < len(w.lines); i++ {
			ok := true
			for _, s := range subs {
				if !strings.Contains(w.lines[i], s) {
					ok = false
					break
				}
			}
			if ok {
				line := w.lines[i]
				w.mu.Unlock()
				return line, i + 1
			}
		}
		changed := w.changed
		w.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no log line with %q; the log:\n%s", subs, w.String())
		}
	}
}

// bridgeEnv is a POP3 and an IMAP server for bridge tests.
type bridgeEnv struct {
	t    *testing.T
	pop  *pop3test.Server
	imap *imaptest.Server
	dir  string
	sent [][]byte
	seq  int
}

func newBridgeEnv(t *testing.T, initial int) *bridgeEnv {
	t.Helper()
	pop, im := startServers(t)
	e := &bridgeEnv{t: t, pop: pop, imap: im, dir: t.TempDir()}
	e.deliver(initial)
	return e
}

func (e *bridgeEnv) deliver(n int) {
	for i := 0; i < n; i++ {
		e.seq++
		data := []byte(fmt.Sprintf("From: a@example.org\r\nSubject: bridged %d\r\nMessage-ID: <b%d@example.org>\r\n\r\n..dots\r\nbody %d\r\n", e.seq, e.seq, e.seq))
		e.pop.AddMessage(fmt.Sprintf("u%d", e.seq), data)
		e.sent = append(e.sent, data)
	}
}

// flags are the connection flags of a single-account bridge.
func (e *bridgeEnv) flags(folder string) []string {
	return []string{"--pop3", e.pop.Addr(), "--pop3-tls", "none", "--pop3-user", "alice",
		"--imap", e.imap.Addr(), "--imap-tls", "none", "--imap-user", "alice@example.com",
		"--folder", folder, "--state", filepath.Join(e.dir, "journal-"+folder)}
}

// accountTOML is the same account as a config file section, its passwords
// in files.
func (e *bridgeEnv) accountTOML(name, folder, extra string) string {
	popFile, imapFile := filepath.Join(e.dir, "pop3.pass"), filepath.Join(e.dir, "imap.pass")
	os.WriteFile(popFile, []byte(testPOP3Pass+"\n"), 0o600)
	os.WriteFile(imapFile, []byte(testIMAPPass+"\n"), 0o600)
	return fmt.Sprintf(`
[[account]]
name = %q
folder = %q
journal = %q
%s
  [account.pop3]
  server = %q
  user = "alice"
  tls = "none"
  password = { file = %q }
  [account.imap]
  server = %q
  user = "alice@example.com"
  tls = "none"
  password = { file = %q }
`, name, folder, filepath.Join(e.dir, name+".journal"), extra, e.pop.Addr(), popFile, e.imap.Addr(), imapFile)
}

// assertOnce checks that folder holds the messages sent, each exactly once
// and byte for byte.
func (e *bridgeEnv) assertOnce(folder string) {
	e.t.Helper()
	got := e.imap.Messages(folder)
	if missing, extra := sameMultiset(got, e.sent); missing != 0 || extra != 0 {
		e.t.Fatalf("folder %s: %d messages for %d sent: %d missing or altered, %d extra", folder, len(got), len(e.sent), missing, extra)
	}
}

// startBridge runs "pop2imap bridge args..." in-process until the returned
// stop function cancels it; stop returns the exit code.
func startBridge(t *testing.T, logs io.Writer, args ...string) (stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	code := make(chan int, 1)
	var out bytes.Buffer
	go func() { code <- run(ctx, append([]string{"bridge"}, args...), &out, logs) }()
	var once sync.Once
	var result int
	stop = func() int {
		once.Do(func() {
			cancel()
			select {
			case result = <-code:
			case <-time.After(60 * time.Second):
				t.Fatal("the bridge did not stop")
			}
		})
		return result
	}
	t.Cleanup(func() { stop() })
	return stop
}

// waitForCycles waits for "cycle done" lines of account, from index from
// on, until their counts add up to the wanted ones (e.g. appended=3,
// deleted=3), however the messages were split over cycles; it fails when
// they add up to more. It returns the index after the last line used.
func (w *logWatch) waitForCycles(t *testing.T, from int, account string, want map[string]int) int {
	t.Helper()
	sums := map[string]int{}
	for {
		done := true
		for k, v := range want {
			if sums[k] > v {
				t.Fatalf("cycles of %s from line %d add up to %s=%d, want %d; the log:\n%s", account, from, k, sums[k], v, w.String())
			}
			if sums[k] < v {
				done = false
			}
		}
		if done {
			return from
		}
		var line string
		line, from = w.waitFor(t, from, `msg="cycle done"`, "account="+account+" ")
		for k := range want {
			if m := regexp.MustCompile(` ` + k + `=(\d+)`).FindStringSubmatch(line); m != nil {
				n, _ := strconv.Atoi(m[1])
				sums[k] += n
			}
		}
	}
}

var metricsAddrRE = regexp.MustCompile(`msg="serving metrics" addr=(\S+)`)

// httpGet fetches a URL on the metrics listener.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// allowShortIntervals lifts the interval floor for a test that watches
// several cycles in milliseconds.
func allowShortIntervals(t *testing.T) {
	old := minInterval
	minInterval = 0
	t.Cleanup(func() { minInterval = old })
}
