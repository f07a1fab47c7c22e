package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pop2imap/pop2imap/internal/dovecottest"
	"github.com/pop2imap/pop2imap/pop3"
	"github.com/pop2imap/pop2imap/state"
)

// TestScale measures what a very large maildrop costs pop2imap in memory
// where nothing has to be copied, so that the size of the maildrop is all
// that varies: BENCH_SCALE_N tiny messages (default 1,000,000) are
// written into a Dovecot maildir, then
//
//   - "pop2imap bridge --once --baseline" lists them all and records each
//     in a fresh journal as done, and
//   - "pop2imap migrate" with that journal opens it, lists the maildrop,
//     finds every message done, and copies nothing.
//
// Both run under /usr/bin/time -v; the results give their wall time and
// peak RSS. Run it with bench/run.sh -scale N.
func TestScale(t *testing.T) {
	if os.Getenv(EnvBench) != "1" {
		t.Skipf("set %s=1 (or run bench/run.sh -scale N) to run the benchmark", EnvBench)
	}
	cfg := loadConfig(t)
	n := ints(t, "BENCH_SCALE_N", "1000000")[0]
	d := dovecottest.StartWith(t, dovecottest.Options{})
	os.WriteFile(filepath.Join(cfg.work, "dovecot-dir"), []byte(d.Dir+"\n"), 0o644)
	b := &bench{t: t, cfg: cfg, d: d}
	b.uid, b.gid = mailUser(t)
	b.out, _ = os.Create(filepath.Join(cfg.work, "results.txt"))
	defer b.out.Close()
	b.printf("# pop2imap scale benchmark, %s; Dovecot %s (maildir); %d messages",
		time.Now().UTC().Format(time.RFC3339), dovecotVersion(), n)

	src := b.newSource("scale")
	start := time.Now()
	bytes := b.seedTiny(src, n)
	b.printf("seeded %d messages (%.1f MB) in %.1f s", n, float64(bytes)/1e6, time.Since(start).Seconds())

	// Dovecot scans a new maildir and numbers its messages at the first
	// login; do that now, so that neither measured run pays for it.
	start = time.Now()
	pc, err := pop3.Dial(context.Background(), d.POP3Addr, &pop3.Options{Timeout: 30 * time.Minute})
	if err == nil {
		err = pc.Login(src, password)
	}
	var count int
	if err == nil {
		count, _, err = pc.Stat()
	}
	if err != nil {
		t.Fatalf("first POP3 login: %v", err)
	}
	pc.Quit()
	if count != n {
		t.Fatalf("POP3 STAT says %d messages, want %d", count, n)
	}
	b.printf("Dovecot's first login (scan and index): %.1f s", time.Since(start).Seconds())

	dst := b.newUser("dst")
	journal := filepath.Join(cfg.work, "journal-scale")
	defer os.Remove(journal)
	for _, run := range []struct {
		what string
		args []string
	}{
		{"bridge --once --baseline (list, record every message)", []string{"bridge", "--once", "--baseline"}},
		{"migrate again (open journal, list, nothing to copy)", []string{"migrate", "--progress", "never"}},
	} {
		res := b.runScale(run.args, src, dst, journal)
		b.printf("%-55s %8.1f s  peak RSS %6.1f MiB", run.what, res.wall.Seconds(), float64(res.rssKiB)/1024)
	}
	// The baseline recorded every message, and the rerun copied none.
	j, err := state.Open(journal)
	if err != nil {
		t.Fatal(err)
	}
	entries := j.Len()
	j.Close()
	if entries != n {
		t.Fatalf("the journal has %d entries, want %d", entries, n)
	}
	if got := b.fetchDigests(dst); len(got) != 0 {
		t.Fatalf("the rerun copied %d messages, want none", sumCounts(got))
	}
	fi, err := os.Stat(journal)
	if err != nil {
		t.Fatal(err)
	}
	b.printf("journal: %.1f MB, %d bytes per message", float64(fi.Size())/1e6, fi.Size()/int64(n))
}

// runScale runs one pop2imap command under /usr/bin/time -v.
func (b *bench) runScale(args []string, src, dst, journal string) runResult {
	timeFile := filepath.Join(b.cfg.work, "time-scale")
	defer os.Remove(timeFile)
	full := append([]string{"-v", "-o", timeFile, b.cfg.bin}, args...)
	full = append(full,
		"--pop3", b.d.POP3Addr, "--pop3-user", src, "--pop3-tls", "none",
		"--imap", b.d.IMAPAddr, "--imap-user", dst, "--imap-tls", "none",
		"--state", journal, "--timeout", "30m")
	cmd := exec.Command("/usr/bin/time", full...)
	cmd.Env = append(os.Environ(), "POP2IMAP_POP3_PASSWORD="+password, "POP2IMAP_IMAP_PASSWORD="+password)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	wall := time.Since(start)
	if err != nil {
		b.t.Fatalf("pop2imap %s: %v\n%s", args[0], err, out)
	}
	tv, _ := os.ReadFile(timeFile)
	return runResult{wall: wall, rssKiB: parseMaxRSS(string(tv))}
}

// seedTiny writes n messages of about 100 bytes straight into user's
// Maildir/cur, named so that Dovecot need not read them to list them, and
// returns their total size.
func (b *bench) seedTiny(name string, n int) int64 {
	md := b.makeMaildir(name)
	var total atomic.Int64
	b.seed(name, n, 4, func(i int) error {
		msg := fmt.Sprintf("Message-ID: <%d@scale.example>\r\nSubject: message %d\r\n\r\nbody %d\r\n", i, i, i)
		base := fmt.Sprintf("%d.M%07dP1.scale,S=%d,W=%d:2,", 1700000000+i, i, len(msg), len(msg))
		p := filepath.Join(md, "cur", base)
		err := os.WriteFile(p, []byte(msg), 0o600)
		if err == nil {
			err = os.Chown(p, b.uid, b.gid)
		}
		total.Add(int64(len(msg)))
		return err
	})
	return total.Load()
}
