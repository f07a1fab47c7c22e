package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pop2imap/pop2imap/internal/batch"
	"github.com/pop2imap/pop2imap/internal/dovecottest"
	"github.com/pop2imap/pop2imap/internal/tcprelay"
)

// batchWorld is a Dovecot with n POP3 users (bsrcNN, password src-NN) whose
// mail goes to one IMAP user's folders "From bsrcNN", through a relay that
// counts the connections Dovecot sees, and an accounts file for them.
type batchWorld struct {
	t        *testing.T
	d        *dovecottest.Server
	seen     tcprelay.Gauge
	csv      string
	stateDir string
	mail     [][][]byte // per account, what was seeded
}

func newBatchWorld(t *testing.T, n, perAccount int) *batchWorld {
	t.Helper()
	w := &batchWorld{t: t, d: dovecottest.Start(t)}
	w.d.AddUser(t, "bdest", "dest-pass")
	relay := func(target string) string {
		r, err := tcprelay.Listen(target, w.seen.Handler)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r.Addr()
	}
	popAddr, imapAddr := relay(w.d.POP3Addr), relay(w.d.IMAPAddr)
	dir := t.TempDir()
	w.stateDir = filepath.Join(dir, "state")
	t.Setenv("TEST_BATCH_DEST_PASSWORD", "dest-pass")
	var b strings.Builder
	b.WriteString("name,pop3_server,pop3_user,pop3_password,imap_server,imap_user,imap_password,folder\n")
	corpus := integrationCorpus(t, n*perAccount)
	for i := 0; i < n; i++ {
		user := fmt.Sprintf("bsrc%02d", i)
		w.d.AddUser(t, user, "src-"+user)
		msgs := corpus[i*perAccount : (i+1)*perAccount]
		w.d.SeedMaildrop(t, user, msgs)
		// What RETR serves is the truth (Dovecot mends bare LFs).
		w.mail = append(w.mail, w.d.RetrAll(t, user, "src-"+user))
		// Passwords both written out and as references, as admins do.
		fmt.Fprintf(&b, "%s,%s,%s,src-%s,%s,bdest,env:TEST_BATCH_DEST_PASSWORD,From %s\n", user, popAddr, user, user, imapAddr, user)
	}
	w.csv = filepath.Join(dir, "accounts.csv")
	if err := os.WriteFile(w.csv, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *batchWorld) args(extra ...string) []string {
	return append([]string{"batch", "--accounts", w.csv, "--state-dir", w.stateDir,
		"--pop3-tls", "none", "--imap-tls", "none", "--progress", "never"}, extra...)
}

// checkOnce fails the test unless every account's folder holds exactly
// its seeded messages, each once, byte for byte.
func (w *batchWorld) checkOnce() {
	w.t.Helper()
	for i, want := range w.mail {
		got := w.d.FetchAll(w.t, "bdest", "dest-pass", fmt.Sprintf("From bsrc%02d", i))
		if missing, extra := sameMultiset(got, want); missing != 0 || extra != 0 {
			w.t.Errorf("bsrc%02d: %d of %d messages missing, %d extra", i, missing, len(want), extra)
		}
	}
}

// TestDovecotBatch runs a batch of 12 accounts against Dovecot under a cap
// of 5 connections: every message arrives once, the cap holds at the
// server, the results log and the JSON report say done for each account;
// a rerun is the final sync: it copies only the mail that arrived since.
func TestDovecotBatch(t *testing.T) {
	w := newBatchWorld(t, 12, 6)
	report := filepath.Join(t.TempDir(), "report.json")
	code, stdout, stderr := runCLI(t, w.args("--jobs", "4", "--max-conns-per-host", "5", "--report", report)...)
	if code != 0 {
		t.Fatalf("batch exited %d\nstdout: %s\nstderr: %s", code, stdout, lastLines(stderr, 20))
	}
	w.checkOnce()
	if p := w.seen.Peak(); p > 5 {
		t.Errorf("Dovecot saw %d connections at once; the cap is 5", p)
	}
	if !strings.Contains(stdout, "12 accounts: 12 done") {
		t.Errorf("summary: %s", stdout)
	}
	results, _, err := batch.ReadResults(w.stateDir)
	if err != nil || len(results) != 12 {
		t.Fatalf("results: %d, %v", len(results), err)
	}
	for _, r := range results {
		if r.Status != batch.Done || r.Appended != 6 {
			t.Errorf("%s: %s, %d appended", r.Account, r.Status, r.Appended)
		}
	}
	var rep struct {
		Accounts []struct {
			Status string `json:"status"`
		} `json:"accounts"`
	}
	if b, err := os.ReadFile(report); err != nil || json.Unmarshal(b, &rep) != nil || len(rep.Accounts) != 12 {
		t.Fatalf("report: %v\n%s", err, b)
	}

	// New mail for two accounts, then the same command again.
	more := integrationCorpus(t, 80)[70:72]
	w.d.SeedMaildrop(t, "bsrc03", more[:1])
	w.d.SeedMaildrop(t, "bsrc07", more[1:])
	w.mail[3] = w.d.RetrAll(t, "bsrc03", "src-bsrc03")
	w.mail[7] = w.d.RetrAll(t, "bsrc07", "src-bsrc07")
	if code, stdout, stderr := runCLI(t, w.args("--jobs", "4", "--max-conns-per-host", "5")...); code != 0 {
		t.Fatalf("rerun exited %d\n%s\n%s", code, stdout, lastLines(stderr, 20))
	}
	w.checkOnce()
	results, _, _ = batch.ReadResults(w.stateDir)
	latest := batch.Latest(results)
	var appended int64
	for _, r := range latest {
		appended += r.Appended
	}
	if appended != 2 {
		t.Errorf("the rerun appended %d messages, want the 2 new ones", appended)
	}
}

// TestDovecotBatchCheckAndFailures: --check logs in to every pair and
// names the one with a wrong password (exit 3) without copying anything;
// the batch then copies the others, reports the one failure with its
// kind, and --only failed retries just it once its password is fixed.
func TestDovecotBatchCheckAndFailures(t *testing.T) {
	w := newBatchWorld(t, 4, 3)
	text, _ := os.ReadFile(w.csv)
	broken := strings.Replace(string(text), ",src-bsrc02,", ",wrong-password,", 1)
	os.WriteFile(w.csv, []byte(broken), 0o600)

	code, stdout, _ := runCLI(t, w.args("--check")...)
	if code != 3 {
		t.Fatalf("--check exited %d, want 3:\n%s", code, stdout)
	}
	if !strings.Contains(stdout, "FAIL  bsrc02") || strings.Count(stdout, "ok    ") != 3 || !strings.Contains(stdout, "9 messages") {
		t.Errorf("--check printed:\n%s", stdout)
	}
	if strings.Contains(stdout, "wrong-password") {
		t.Error("--check printed a password")
	}
	if got := w.d.FetchAll(t, "bdest", "dest-pass", "From bsrc00"); len(got) != 0 {
		t.Errorf("--check copied %d messages", len(got))
	}

	code, stdout, stderr := runCLI(t, w.args()...)
	if code != 3 {
		t.Fatalf("a batch with a failing account exited %d, want 3\n%s", code, stdout)
	}
	if strings.Contains(stderr, "wrong-password") {
		t.Error("the log holds a password")
	}
	results, _, _ := batch.ReadResults(w.stateDir)
	latest := batch.Latest(results)
	failed := 0
	for _, r := range latest {
		if r.Status == batch.Failed {
			failed++
			if r.Account != "bsrc02" || r.Kind != "auth" || r.Advice == "" || strings.Contains(r.Error, "wrong-password") {
				t.Errorf("failure: %+v", r)
			}
		}
	}
	if failed != 1 {
		t.Fatalf("%d failed accounts, want 1", failed)
	}

	os.WriteFile(w.csv, text, 0o600)
	code, stdout, _ = runCLI(t, w.args("--only", "failed")...)
	if code != 0 || !strings.Contains(stdout, "1 accounts: 1 done") {
		t.Fatalf("--only failed exited %d:\n%s", code, stdout)
	}
	w.checkOnce()
}

// TestDovecotBatchKill9 interrupts the batch binary once with Ctrl-C
// (exit 130), then kills it with SIGKILL at random moments, several times, and loses one account's journals between two of
// the runs, then reruns it until it finishes: every message of every
// account is in its folder exactly once.
func TestDovecotBatchKill9(t *testing.T) {
	bin := buildBinary(t)
	w := newBatchWorld(t, 8, 25)
	rng := rand.New(rand.NewPCG(7, uint64(os.Getpid())))
	kills := 0
	for round := 0; round < 6; round++ {
		cmd := exec.Command(bin, w.args("-v", "--jobs", "3", "--max-conns-per-host", "6")[0:]...)
		cmd.Env = os.Environ()
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killAt := 5 + rng.IntN(60)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		appended := 0
		for sc.Scan() {
			if strings.Contains(sc.Text(), "msg=appended") {
				appended++
				if appended == killAt {
					if round == 0 {
						// Ctrl-C: the messages under way finish, then exit 130.
						cmd.Process.Signal(os.Interrupt)
					} else {
						cmd.Process.Kill()
					}
					kills++
				}
			}
		}
		err := cmd.Wait()
		if err == nil {
			break
		}
		if round == 0 && cmd.ProcessState.ExitCode() != 130 {
			t.Errorf("after Ctrl-C the batch exited %d, want 130", cmd.ProcessState.ExitCode())
		}
		if round == 2 {
			// The journal is not the ground truth: lose some.
			matches, _ := filepath.Glob(filepath.Join(w.stateDir, "journals", "bsrc0[13]*"))
			for _, m := range matches {
				os.Remove(m)
			}
		}
	}
	if code, stdout, stderr := runCLI(t, w.args()...); code != 0 {
		t.Fatalf("the final run exited %d\n%s\n%s", code, stdout, lastLines(stderr, 20))
	}
	if kills == 0 {
		t.Fatal("no run was killed")
	}
	t.Logf("%d runs killed", kills)
	w.checkOnce()
}
