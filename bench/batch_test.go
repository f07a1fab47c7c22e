package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pop2imap/pop2imap/bench/corpus"
	"github.com/pop2imap/pop2imap/internal/batch"
	"github.com/pop2imap/pop2imap/internal/dovecottest"
	"github.com/pop2imap/pop2imap/pop3"
)

// The bounds a batch run must keep; crossing one fails TestBatch, as a
// lost or duplicated message does. Its timings never do.
const (
	batchMaxRSSMiB = 128 // peak RSS of the pop2imap process
	batchConnCap   = 16  // pop2imap batch's default --max-conns-per-host; -flags may set another
)

// batchSampleSize is how many accounts, picked at random, are checked
// byte for byte after a batch run; every account is counted.
const batchSampleSize = 100

// performanceLogin is Dovecot tuned for many logins, as providers run it
// with virtual users: its login processes in "high-performance" mode (each
// serves many connections and two wait ready, instead of one fork per
// connection, Dovecot's default "high-security"), and each imap and pop3
// process reused for up to 100 sessions, four waiting ready, which Dovecot
// allows where every user has the same UID, as here (mail_uid). A later
// service section of the same name merges into the one dovecottest
// writes.
const performanceLogin = `service imap-login {
  service_count = 0
  process_min_avail = 2
}
service pop3-login {
  service_count = 0
  process_min_avail = 2
}
service imap {
  service_count = 100
  process_min_avail = 4
}
service pop3 {
  service_count = 100
  process_min_avail = 4
}`

// TestBatch measures "pop2imap batch" on many small mailboxes against one
// Dovecot: BENCH_BATCH_N POP3 sources (default 10,000) of BENCH_BATCH_MSGS
// messages each (default 3), each moved to the INBOX of its own IMAP
// target, so that Dovecot holds 2×N users. The built binary runs as a user
// runs it, with its defaults (--jobs 8, --max-conns-per-host 16), under
// /usr/bin/time -v, while the connections to Dovecot's ports are sampled
// every 100 ms. The same messages, as one maildrop, go through "pop2imap
// migrate" before and after it: the single-mailbox baseline.
//
// It fails only on correctness: an exit code other than 0, an account not
// done, a message lost or duplicated (every target's count on disk, the
// results log's totals, and a random sample of accounts byte for byte), more
// connections than the cap, or a peak RSS over 128 MiB. Run it with
// bench/run.sh -batch N.
func TestBatch(t *testing.T) {
	if os.Getenv(EnvBench) != "1" {
		t.Skipf("set %s=1 (or run bench/run.sh -batch N) to run the benchmark", EnvBench)
	}
	cfg := loadConfig(t)
	n := ints(t, "BENCH_BATCH_N", "10000")[0]
	perAccount := ints(t, "BENCH_BATCH_MSGS", "3")[0]
	if n < 1 || perAccount < 1 {
		t.Fatalf("BENCH_BATCH_N=%d, BENCH_BATCH_MSGS=%d: want at least 1 of each", n, perAccount)
	}
	login := os.Getenv("BENCH_LOGIN")
	extra := "mail_fsync = " + cfg.fsync
	switch login {
	case "", "high-security":
		login = "high-security"
	case "performance":
		extra += "\n" + performanceLogin
	default:
		t.Fatalf("BENCH_LOGIN=%q: want high-security or performance", login)
	}
	// -flags are batch's in this benchmark, not the baseline migrate's.
	batchFlags := cfg.extra
	cfg.extra = nil

	// One passwd-file for all the users: with a file per user, Dovecot's
	// auth process runs out of descriptors.
	d := dovecottest.StartWith(t, dovecottest.Options{MailFormat: cfg.format, OnePasswdFile: true, ExtraConfig: extra})
	os.WriteFile(filepath.Join(cfg.work, "dovecot-dir"), []byte(d.Dir+"\n"), 0o644)
	b := &bench{t: t, cfg: cfg, d: d}
	b.uid, b.gid = mailUser(t)
	b.out, _ = os.Create(filepath.Join(cfg.work, "results.txt"))
	defer b.out.Close()
	mix := map[bool]string{true: "small (2-8 KB text)", false: "usual"}[cfg.small]
	b.printf("# pop2imap batch benchmark, %s; Dovecot %s (mail_fsync = %s, %s login, source maildir, target %s); plain text, RTT 0",
		time.Now().UTC().Format(time.RFC3339), dovecotVersion(), cfg.fsync, login, cfg.format)
	b.printf("# %d accounts of %d messages (mix: %s); batch flags: %s", n, perAccount, mix, strings.Join(batchFlags, " "))

	w := b.newBatchWorld(n, perAccount)
	w.cap = connCap(t, batchFlags)
	msgs := n * perAccount

	// The baseline: the same messages as one maildrop, through migrate,
	// against the same server, once before the batch and once after it.
	// This machine's disk latency drifts by a third over minutes, and the
	// baseline, one folder taking one message at a time per connection,
	// feels it most; the ratio is taken against the faster of the two.
	specs := make([]corpus.Spec, msgs)
	for i := range specs {
		specs[i] = w.spec(i)
	}
	src := b.newSource("one")
	seedStart := time.Now()
	total := b.seedMaildir(src, specs)
	seeded := time.Since(seedStart)
	_, want := b.drain(d.POP3Addr, src) // Dovecot indexes it now, not in the measured run
	if got := sumCounts(want); got != msgs {
		t.Fatalf("one mailbox: POP3 serves %d messages, seeded %d", got, msgs)
	}
	baseline := func() (runResult, time.Duration) {
		cpuBefore := dovecotCPU(d)
		one := b.migrate(src, direct, want)
		return one, dovecotCPU(d) - cpuBefore // includes the check's FETCH
	}
	before, beforeDovecot := baseline()
	res := w.run(batchFlags)
	w.check(res)
	after, afterDovecot := baseline()

	b.printf("")
	b.printf("| run | accounts | messages | MB | wall s | accounts/s | msgs/s | MB/s | peak RSS MiB | CPU s | Dovecot CPU s | most ESTABLISHED |")
	b.printf("|---|---|---|---|---|---|---|---|---|---|---|---|")
	b.printf("| batch | %d | %d | %.1f | %.2f | %.1f | %.0f | %.2f | %.1f | %.2f | %.2f | %d (%d samples) |",
		n, msgs, float64(w.bytes)/1e6, res.wall.Seconds(), float64(n)/res.wall.Seconds(), float64(msgs)/res.wall.Seconds(),
		float64(w.bytes)/1e6/res.wall.Seconds(), float64(res.rssKiB)/1024, res.cpu.Seconds(), res.dovecotCPU.Seconds(), res.maxConns, res.samples)
	for _, r := range []struct {
		when    string
		one     runResult
		dovecot time.Duration
	}{{"before", before, beforeDovecot}, {"after", after, afterDovecot}} {
		b.printf("| one mailbox (migrate), %s the batch | 1 | %d | %.1f | %.2f | | %.0f | %.2f | %.1f | %.2f | %.2f¹ | |",
			r.when, msgs, float64(total)/1e6, r.one.wall.Seconds(), float64(msgs)/r.one.wall.Seconds(),
			float64(total)/1e6/r.one.wall.Seconds(), float64(r.one.rssKiB)/1024, r.one.cpu.Seconds(), r.dovecot.Seconds())
	}
	for _, k := range cfg.sinkKs {
		if k > 0 {
			s := b.sink(src, k)
			b.printf("| one mailbox (sink, APPEND only, k=%d) | 1 | %d | %.1f | %.2f | | %.0f | %.2f | | | | |",
				k, msgs, float64(total)/1e6, s.Seconds(), float64(msgs)/s.Seconds(), float64(total)/1e6/s.Seconds())
		}
	}
	one := min(before.wall, after.wall)
	b.printf("")
	b.printf("¹ with the FETCH of all %d messages that checks the run", msgs)
	b.printf("t(batch)/t(one mailbox) = %.2f against the faster one mailbox (%.2f against the slower; issue target: <= 1.5)",
		res.wall.Seconds()/one.Seconds(), res.wall.Seconds()/max(before.wall, after.wall).Seconds())
	b.printf("one mailbox: seeded in %.1f s; before: %s; after: %s", seeded.Seconds(), before.stats, after.stats)
}

// batchWorld is the Dovecot side of a batch run: n POP3 sources of
// perAccount messages, each with its own IMAP target, and the accounts
// file that lists them.
type batchWorld struct {
	b          *bench
	n, per     int
	sources    []string
	targets    []string
	bytes      int64 // what was seeded
	csv, state string
	cap        int // the most connections to Dovecot allowed at once
}

// connCap is the --max-conns-per-host among the batch flags, or the
// default.
func connCap(t *testing.T, flags []string) int {
	for i, f := range flags {
		v, ok := strings.CutPrefix(f, "--max-conns-per-host=")
		if f == "--max-conns-per-host" && i+1 < len(flags) {
			v, ok = flags[i+1], true
		}
		if ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("--max-conns-per-host %q: %v", v, err)
			}
			return n
		}
	}
	return batchConnCap
}

// spec is message i of the whole batch: account i/per's message i%per.
// The baseline maildrop holds the same messages in the same order.
func (w *batchWorld) spec(i int) corpus.Spec {
	if w.b.cfg.small {
		return corpus.SmallSpecFor(w.b.cfg.seed, i)
	}
	return corpus.SpecFor(w.b.cfg.seed, i)
}

// newBatchWorld adds the users, seeds the sources' Maildirs as files, lets
// Dovecot index each source once (a POP3 STAT, as a mailbox in use has
// been), and writes the accounts file.
func (b *bench) newBatchWorld(n, per int) *batchWorld {
	w := &batchWorld{b: b, n: n, per: per}
	start := time.Now()
	var users []dovecottest.User
	for i := 1; i <= n; i++ {
		// Sources are Maildir whatever the targets use: seeded as files.
		w.sources = append(w.sources, fmt.Sprintf("bs%d", i))
		users = append(users, dovecottest.User{Name: w.sources[i-1], Password: password, Format: dovecottest.Maildir})
	}
	for i := 1; i <= n; i++ {
		w.targets = append(w.targets, fmt.Sprintf("bt%d", i))
		users = append(users, dovecottest.User{Name: w.targets[i-1], Password: password})
	}
	b.d.AddUsers(b.t, users)
	b.printf("added %d users to one passwd-file in %.1f s", len(users), time.Since(start).Seconds())

	start = time.Now()
	mds := make([]string, n)
	for i, src := range w.sources {
		mds[i] = b.makeMaildir(src)
	}
	var total atomic.Int64
	b.seed("the batch's sources", n*per, 4, func(i int) error {
		size, err := b.writeSeedFile(mds[i/per], i%per, w.spec(i))
		total.Add(size)
		return err
	})
	w.bytes = total.Load()
	b.printf("seeded %d messages (%.1f MB) into %d Maildirs in %.1f s", n*per, float64(w.bytes)/1e6, n, time.Since(start).Seconds())

	start = time.Now()
	if err := parallel(n, 4, func(i int) error { return w.statSource(i) }); err != nil {
		b.t.Fatalf("indexing the sources: %v", err)
	}
	b.printf("Dovecot indexed the %d sources (one POP3 STAT each) in %.1f s", n, time.Since(start).Seconds())

	// A fresh state directory: a results log left by an earlier run
	// would count its accounts twice.
	dir := filepath.Join(b.cfg.work, "batch")
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		b.t.Fatal(err)
	}
	w.csv, w.state = filepath.Join(dir, "accounts.csv"), filepath.Join(dir, "state")
	var sb strings.Builder
	sb.WriteString("name,pop3_server,pop3_user,pop3_password,imap_server,imap_user,imap_password,folder\n")
	for i := range w.sources {
		fmt.Fprintf(&sb, "%s,%s,%s,%s,%s,%s,%s,INBOX\n", w.sources[i], b.d.POP3Addr, w.sources[i], password,
			b.d.IMAPAddr, w.targets[i], password)
	}
	if err := os.WriteFile(w.csv, []byte(sb.String()), 0o600); err != nil {
		b.t.Fatal(err)
	}
	return w
}

// statSource logs in to source i over POP3 and checks its count.
func (w *batchWorld) statSource(i int) error {
	c, err := pop3.Dial(context.Background(), w.b.d.POP3Addr, &pop3.Options{Timeout: time.Minute})
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Login(w.sources[i], password); err != nil {
		return err
	}
	count, _, err := c.Stat()
	if err != nil {
		return err
	}
	if count != w.per {
		return fmt.Errorf("%s: POP3 STAT says %d messages, seeded %d", w.sources[i], count, w.per)
	}
	return c.Quit()
}

// parallel calls f for 0 to n-1 from the given number of goroutines and
// returns the first error; after one, the others stop taking work.
func parallel(n, workers int, f func(i int) error) error {
	var next atomic.Int64
	var once sync.Once
	var first error
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { first = err })
					failed.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// batchResult is one pop2imap batch run.
type batchResult struct {
	runResult
	maxConns, samples int
	summary           string        // the line batch prints on stdout
	dovecotCPU        time.Duration // what Dovecot's processes spent meanwhile
}

// run runs pop2imap batch with its defaults and the given extra flags
// under /usr/bin/time -v, sampling the connections to Dovecot as it goes.
// A non-zero exit fails the test.
func (w *batchWorld) run(flags []string) batchResult {
	b := w.b
	timeFile := filepath.Join(b.cfg.work, "time-batch")
	logFile := filepath.Join(b.cfg.work, "batch.log")
	args := append([]string{"-v", "-o", timeFile, b.cfg.bin, "batch",
		"--accounts", w.csv, "--state-dir", w.state,
		"--pop3-tls", "none", "--imap-tls", "none", "--progress", "never"}, flags...)
	cmd := exec.Command("/usr/bin/time", args...)
	logf, err := os.Create(logFile)
	if err != nil {
		b.t.Fatal(err)
	}
	defer logf.Close()
	var stdout strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, logf

	cpuBefore := dovecotCPU(b.d)
	sampler := startConnSampler(b.t, []string{b.d.POP3Addr, b.d.POP3SAddr, b.d.IMAPAddr, b.d.IMAPSAddr}, 100*time.Millisecond)
	start := time.Now()
	err = cmd.Run()
	wall := time.Since(start)
	maxConns, samples, serr := sampler.stop()
	dovecot := dovecotCPU(b.d) - cpuBefore
	if err != nil {
		b.t.Fatalf("pop2imap batch: %v\nstdout: %s\nlast lines of %s:\n%s", err, stdout.String(), logFile, tailFile(logFile, 20))
	}
	if serr != nil {
		b.t.Fatalf("sampling connections: %v", serr)
	}
	tv, _ := os.ReadFile(timeFile)
	res := batchResult{
		runResult: runResult{wall: wall, rssKiB: parseMaxRSS(string(tv)), cpu: parseCPU(string(tv))},
		maxConns:  maxConns, samples: samples, summary: strings.TrimSpace(stdout.String()), dovecotCPU: dovecot,
	}
	b.printf("pop2imap batch: %s", res.summary)
	return res
}

// check fails the test unless the run moved every message exactly once
// within the bounds: the results log says every account is done with all
// its messages appended once, every target holds exactly its account's
// number of messages, and a random sample holds exactly the bytes its
// source serves.
func (w *batchWorld) check(res batchResult) {
	b, t := w.b, w.b.t
	if res.maxConns > w.cap {
		t.Errorf("saw %d ESTABLISHED connections to Dovecot at once, over the cap of %d", res.maxConns, w.cap)
	}
	if res.samples < 2 {
		t.Errorf("only %d connection samples: the cap was not watched", res.samples)
	}
	if res.rssKiB > batchMaxRSSMiB<<10 {
		t.Errorf("peak RSS %.1f MiB, over the bound of %d MiB", float64(res.rssKiB)/1024, batchMaxRSSMiB)
	}

	results, torn, err := batch.ReadResults(w.state)
	if err != nil || torn != 0 {
		t.Fatalf("results log: %v (%d torn lines)", err, torn)
	}
	latest := batch.Latest(results)
	var appended int64
	notDone := 0
	for _, r := range latest {
		appended += r.Appended
		if r.Status != batch.Done || r.Listed != int64(w.per) || r.Appended != int64(w.per) || r.Done != 0 {
			if notDone++; notDone <= 5 {
				t.Errorf("account %s: %s, listed %d, appended %d, already done %d; want done, %d listed and appended (%s)",
					r.Account, r.Status, r.Listed, r.Appended, r.Done, w.per, r.Error)
			}
		}
	}
	if len(results) != w.n || len(latest) != w.n || appended != int64(w.n*w.per) {
		t.Errorf("results log: %d lines for %d accounts, %d messages appended; want %d accounts, one line each, %d messages",
			len(results), len(latest), appended, w.n, w.n*w.per)
	}

	// Every target, counted: a lost or doubled message shows here.
	if b.cfg.format == dovecottest.Maildir {
		wrong := 0
		for i, dst := range w.targets {
			got, err := countMaildir(b.d.MailDir(t, dst))
			if err != nil || got != w.per {
				if wrong++; wrong <= 5 {
					t.Errorf("%s (from %s) holds %d messages, want %d (%v)", dst, w.sources[i], got, w.per, err)
				}
			}
		}
		b.printf("every target counted on disk: %d of %d hold a number other than %d", wrong, w.n, w.per)
	} else {
		b.printf("targets in %s: not counted on disk; the results log and the sample check them", b.cfg.format)
	}

	// A sample, byte for byte through IMAP against what POP3 serves.
	rng := rand.New(rand.NewPCG(b.cfg.seed, uint64(w.n)))
	sample := rng.Perm(w.n)[:min(w.n, batchSampleSize)]
	for _, i := range sample {
		_, want := b.drain(b.d.POP3Addr, w.sources[i])
		got := b.fetchDigests(w.targets[i])
		if missing, extra := want.equal(got); missing != 0 || extra != 0 {
			t.Errorf("%s -> %s: %d messages missing or altered, %d extra", w.sources[i], w.targets[i], missing, extra)
		}
	}
	b.printf("checked: results log (%d accounts done, %d messages appended), %d accounts byte for byte over IMAP; most ESTABLISHED %d (cap %d); peak RSS %.1f MiB (bound %d)",
		len(latest)-notDone, appended, len(sample), res.maxConns, w.cap, float64(res.rssKiB)/1024, batchMaxRSSMiB)
	if t.Failed() {
		t.FailNow()
	}
}

// countMaildir counts the messages of a Maildir: the files in cur and new.
func countMaildir(md string) (int, error) {
	n := 0
	for _, sub := range []string{"cur", "new"} {
		entries, err := os.ReadDir(filepath.Join(md, sub))
		if err != nil {
			return n, err
		}
		n += len(entries)
	}
	return n, nil
}

// connSampler asks the kernel every interval for the ESTABLISHED TCP
// connections (what "ss -tn state established" shows, over the same
// netlink sock_diag interface, without starting a process each time, so
// that the sampling takes next to no CPU from the run it watches) and keeps
// the most whose peer is one of the given ports: pop2imap's side of its
// connections to Dovecot, POP3 and IMAP together, counted once.
type connSampler struct {
	done     chan struct{}
	finished chan struct{}
	most     int
	samples  int
	err      error
}

func startConnSampler(t *testing.T, addrs []string, every time.Duration) *connSampler {
	ports := map[uint16]bool{}
	for _, a := range addrs {
		_, port, err := net.SplitHostPort(a)
		if err != nil {
			t.Fatal(err)
		}
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			t.Fatal(err)
		}
		ports[uint16(n)] = true
	}
	if _, err := countEstablished(ports); err != nil {
		t.Fatalf("sampling connections: %v", err)
	}
	s := &connSampler{done: make(chan struct{}), finished: make(chan struct{})}
	go func() {
		defer close(s.finished)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			n, err := countEstablished(ports)
			if err != nil {
				s.err = err
				return
			}
			s.samples++
			s.most = max(s.most, n)
			select {
			case <-s.done:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// stop ends the sampling and returns the most connections seen and the
// number of samples.
func (s *connSampler) stop() (most, samples int, err error) {
	close(s.done)
	<-s.finished
	return s.most, s.samples, s.err
}

// tailFile returns the last n lines of a file, for a failure message.
func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// dovecotCPU returns the user and system time of Dovecot's processes: the
// live ones in the master's process group and, through the master's
// cutime and cstime, the ones it has reaped. The difference of two calls
// is close to what Dovecot spent between them (a process that lived
// through the first call and ended before the second counts whole).
func dovecotCPU(d *dovecottest.Server) time.Duration {
	data, err := os.ReadFile(filepath.Join(d.Dir, "run", "master.pid"))
	if err != nil {
		return 0
	}
	master := strings.TrimSpace(string(data))
	procs, _ := filepath.Glob("/proc/[0-9]*/stat")
	var ticks int64
	for _, p := range procs {
		stat, err := os.ReadFile(p)
		if err != nil {
			continue // ended meanwhile
		}
		// The fields after the command name, which may hold spaces:
		// state ppid pgrp ... utime(14) stime cutime cstime.
		i := strings.LastIndexByte(string(stat), ')')
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 15 || f[2] != master {
			continue
		}
		for _, v := range f[11:15] {
			n, _ := strconv.ParseInt(v, 10, 64)
			ticks += n
		}
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}
