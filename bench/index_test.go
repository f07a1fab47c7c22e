package bench

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pop2imap/pop2imap/internal/dovecottest"
	"github.com/pop2imap/pop2imap/pop3"
)

// TestFolderIndex measures what "the folder is the ground truth" costs on
// a large folder: the target INBOX holds BENCH_INDEX_N tiny messages
// (default 100,000), and pop2imap migrates with a journal that knows none
// of them.
//
//   - "one new message": the maildrop holds one message the folder does not
//     have, so the run builds the folder index, finds no candidate, and
//     appends it. This is the cost a bridge cycle with new mail pays.
//   - "journal lost": the maildrop holds the same N messages as the folder,
//     so every one is matched and adopted, none appended.
//
// Both run under /usr/bin/time -v. Run it with bench/run.sh -index N.
func TestFolderIndex(t *testing.T) {
	if os.Getenv(EnvBench) != "1" {
		t.Skipf("set %s=1 (or run bench/run.sh -index N) to run the benchmark", EnvBench)
	}
	cfg := loadConfig(t)
	n := ints(t, "BENCH_INDEX_N", "100000")[0]
	d := dovecottest.StartWith(t, dovecottest.Options{})
	b := &bench{t: t, cfg: cfg, d: d}
	b.uid, b.gid = mailUser(t)
	b.out, _ = os.Create(filepath.Join(cfg.work, "results.txt"))
	defer b.out.Close()
	b.printf("# pop2imap folder index benchmark, %s; Dovecot %s (maildir); a folder of %d messages",
		time.Now().UTC().Format(time.RFC3339), dovecotVersion(), n)

	// The same tiny messages in the target's INBOX and in a maildrop.
	dst := b.newSource("dst")
	b.seedTiny(dst, n)
	same := b.newSource("same")
	b.seedTiny(same, n)
	one := b.newSource("one")
	d.SeedMaildrop(t, one, [][]byte{[]byte("Message-ID: <new@index.example>\r\nSubject: new\r\n\r\nnew\r\n")})
	for _, u := range []string{dst, same} {
		start := time.Now()
		pc, err := pop3.Dial(context.Background(), d.POP3Addr, &pop3.Options{Timeout: 30 * time.Minute})
		if err == nil {
			err = pc.Login(u, password)
		}
		if err == nil {
			_, _, err = pc.Stat()
		}
		if err != nil {
			t.Fatalf("first POP3 login of %s: %v", u, err)
		}
		pc.Quit()
		b.printf("Dovecot's first login of %s (scan and index): %.1f s", u, time.Since(start).Seconds())
	}

	for _, run := range []struct {
		what, src string
	}{
		{"one new message (index, nothing adopted)", one},
		{"journal lost (index, every message adopted)", same},
	} {
		journal := filepath.Join(cfg.work, "journal-"+run.src)
		res := b.runScale([]string{"migrate", "--progress", "never"}, run.src, dst, journal)
		b.printf("%-50s %8.1f s  peak RSS %6.1f MiB", run.what, res.wall.Seconds(), float64(res.rssKiB)/1024)
		os.Remove(journal)
	}
	// Nothing was copied twice: the folder holds the N messages and the
	// one new message, each once.
	got := b.fetchDigests(dst)
	if len(got) != n+1 || sumCounts(got) != n+1 {
		t.Fatalf("the folder holds %d messages (%d distinct), want %d, each once", sumCounts(got), len(got), n+1)
	}
}
