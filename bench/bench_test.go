package bench

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/pop2imap/pop2imap/bench/corpus"
	"github.com/pop2imap/pop2imap/internal/delayproxy"
	"github.com/pop2imap/pop2imap/internal/dovecottest"
	"github.com/pop2imap/pop2imap/pop3"
)

// EnvBench gates TestBench: it runs only when this is "1" (bench/run.sh sets
// it), because it takes minutes and gigabytes of disk.
const EnvBench = "POP2IMAP_BENCH"

const password = "bench-pass"

// benchConfig is read from the environment that bench/run.sh sets.
type benchConfig struct {
	bin      string                 // the pop2imap binary to measure
	work     string                 // state files, results
	ns       []int                  // maildrop sizes
	rtts     []int                  // round-trip times in ms
	reps     int                    // runs per measurement; the median is reported
	seed     uint64                 // corpus seed
	sinkKs   []int                  // APPEND connection counts for the sink
	hugeMB   []int                  // single-message runs, in MB
	small    bool                   // corpus of small text messages only (corpus.SmallSpecFor)
	format   dovecottest.MailFormat // mailbox format of the IMAP targets (the source is always Maildir)
	netem    bool                   // delay with tc netem on lo (inside a private netns) instead of the proxy
	extra    []string               // extra pop2imap flags (e.g. --imap-conns 8)
	noVerify bool                   // skip the byte-for-byte check (only for quick experiments)
	fsync    string                 // Dovecot's mail_fsync: "always" (the default here) or "optimized" (Dovecot's own default: the fast sink)
	tls      bool                   // pop2imap talks implicit TLS (POP3S, IMAPS) instead of plain text
}

func ints(t *testing.T, name, def string) []int {
	v := os.Getenv(name)
	if v == "" {
		v = def
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 {
			t.Fatalf("%s=%q: want comma-separated non-negative integers", name, v)
		}
		out = append(out, n)
	}
	return out
}

func loadConfig(t *testing.T) benchConfig {
	c := benchConfig{
		bin:      os.Getenv("BENCH_BIN"),
		work:     os.Getenv("BENCH_WORK"),
		ns:       ints(t, "BENCH_N", "2000"),
		rtts:     ints(t, "BENCH_RTT", "0,20,50"),
		reps:     ints(t, "BENCH_REPS", "3")[0],
		seed:     uint64(ints(t, "BENCH_SEED", "1")[0]),
		sinkKs:   ints(t, "BENCH_SINK_K", "1,2,4,8"),
		hugeMB:   ints(t, "BENCH_HUGE_MB", ""),
		small:    os.Getenv("BENCH_MIX") == "small",
		format:   dovecottest.MailFormat(os.Getenv("BENCH_FORMAT")),
		netem:    os.Getenv("BENCH_NETEM") == "1",
		extra:    strings.Fields(os.Getenv("BENCH_FLAGS")),
		noVerify: os.Getenv("BENCH_NO_VERIFY") == "1",
		fsync:    os.Getenv("BENCH_FSYNC"),
		tls:      os.Getenv("BENCH_TLS") == "implicit",
	}
	switch c.fsync {
	case "":
		c.fsync = "always"
	case "always", "optimized":
	default:
		t.Fatalf("BENCH_FSYNC=%q: want always or optimized", c.fsync)
	}
	if c.reps < 1 {
		c.reps = 1
	}
	switch c.format {
	case "":
		c.format = dovecottest.Maildir
	case dovecottest.Maildir, dovecottest.Sdbox, dovecottest.Mdbox:
	default:
		t.Fatalf("BENCH_FORMAT=%q: want maildir, sdbox or mdbox", c.format)
	}
	if c.work == "" {
		c.work = t.TempDir()
	}
	if c.bin == "" {
		c.bin = filepath.Join(c.work, "pop2imap")
		out, err := exec.Command("go", "build", "-o", c.bin, "github.com/pop2imap/pop2imap/cmd/pop2imap").CombinedOutput()
		if err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
	}
	return c
}

// TestBench measures pop2imap against a real Dovecot: drain (POP3 only),
// sink (APPEND only) and the tool itself at each RTT, and checks that every
// run stored exactly the bytes POP3 served. Results go to the test log and
// to $BENCH_WORK/results.txt.
func TestBench(t *testing.T) {
	if os.Getenv(EnvBench) != "1" {
		t.Skipf("set %s=1 (or run bench/run.sh) to run the benchmark", EnvBench)
	}
	cfg := loadConfig(t)
	// The IMAP targets use cfg.format; the POP3 sources stay Maildir (see
	// newSource).
	// mail_fsync = always makes every APPEND wait for a disk flush, which
	// hides the link's latency behind the server; optimized, Dovecot's
	// default, is the fast sink that shows it.
	d := dovecottest.StartWith(t, dovecottest.Options{MailFormat: cfg.format, ExtraConfig: "mail_fsync = " + cfg.fsync})
	// Let run.sh remove it even if this process is killed.
	os.WriteFile(filepath.Join(cfg.work, "dovecot-dir"), []byte(d.Dir+"\n"), 0o644)
	b := &bench{t: t, cfg: cfg, d: d}
	b.uid, b.gid = mailUser(t)
	b.out, _ = os.Create(filepath.Join(cfg.work, "results.txt"))
	defer b.out.Close()
	b.printf("# pop2imap benchmark, %s; Dovecot %s (mail_fsync = %s, source maildir, target %s); %s; delay by %s; reps %d (median)",
		time.Now().UTC().Format(time.RFC3339), dovecotVersion(), cfg.fsync, cfg.format, map[bool]string{true: "implicit TLS", false: "plain text"}[cfg.tls], map[bool]string{true: "tc netem on lo", false: "delayproxy (no netem)"}[cfg.netem], cfg.reps)
	b.printf("# flags: %s; mix: %s", strings.Join(cfg.extra, " "), map[bool]string{true: "small (2-8 KB text)", false: "usual"}[cfg.small])

	for _, n := range cfg.ns {
		b.runSize(n)
	}
	for _, mb := range cfg.hugeMB {
		b.runHuge(mb)
	}
}

type bench struct {
	t        *testing.T
	cfg      benchConfig
	d        *dovecottest.Server
	uid, gid int
	out      *os.File
	users    int
	// statsFlag is 1 when the binary has --stats, -1 when not, 0 before
	// hasStats asked.
	statsFlag int
}

func (b *bench) printf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	b.t.Log(line)
	fmt.Fprintln(b.out, line)
	b.out.Sync()
}

// newUser adds a fresh Dovecot user, an IMAP target, and returns its name.
// Its mail is in the server's format (benchConfig.format).
func (b *bench) newUser(prefix string) string {
	b.users++
	name := fmt.Sprintf("%s%d", prefix, b.users)
	b.d.AddUser(b.t, name, password)
	return name
}

// newSource adds a fresh Dovecot user, a POP3 source, and returns its name.
// Its mail is always Maildir, whatever the targets use, because seedMaildir
// and sink work on its files.
func (b *bench) newSource(prefix string) string {
	b.users++
	name := fmt.Sprintf("%s%d", prefix, b.users)
	b.d.AddUserFormat(b.t, name, password, dovecottest.Maildir)
	return name
}

// dropUser removes a user's mail, to keep the disk from filling up.
func (b *bench) dropUser(name string) {
	os.RemoveAll(b.d.MailDir(b.t, name))
}

func mailUser(t *testing.T) (int, int) {
	u, err := user.Lookup(dovecottest.MailUser)
	if err != nil {
		t.Fatalf("mail user: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid
}

func dovecotVersion() string {
	out, err := exec.Command("dovecot", "--version").Output()
	if err != nil {
		out, _ = exec.Command("/usr/sbin/dovecot", "--version").Output()
	}
	return strings.TrimSpace(string(out))
}

// seedMaildir writes specs straight into user's Maildir/cur, owned by the
// mail user, with S= and W= in the names so that Dovecot need not read a
// file to LIST it (the corpus has CRLF line endings only, so both sizes are
// the file size). It returns the total bytes. The user must have been added
// with newSource, so that its mail is Maildir.
func (b *bench) seedMaildir(name string, specs []corpus.Spec) int64 {
	md := b.makeMaildir(name)
	var total atomic.Int64
	b.seed(name, len(specs), 2, func(i int) error {
		size, err := b.writeSeedFile(md, i, specs[i])
		total.Add(size)
		return err
	})
	return total.Load()
}

// writeSeedFile writes spec as message i (0-based, the POP3 order) of the
// Maildir md, made by makeMaildir, owned by the mail user, and returns its
// size. It does not sync.
func (b *bench) writeSeedFile(md string, i int, spec corpus.Spec) (int64, error) {
	tmp := filepath.Join(md, "tmp", fmt.Sprintf("seed%d", i))
	f, err := os.Create(tmp)
	if err != nil {
		return 0, err
	}
	size, err := corpus.Write(f, b.cfg.seed, spec)
	f.Close()
	if err == nil {
		err = os.Chown(tmp, b.uid, b.gid)
	}
	if err == nil {
		// Dovecot orders new mail by file name: keep corpus order.
		base := fmt.Sprintf("%d.M%06dP1.bench,S=%d,W=%d:2,", 1700000000+i, i, size, size)
		err = os.Rename(tmp, filepath.Join(md, "cur", base))
	}
	return size, err
}

// seed calls write for message 0 to n-1 from the given number of
// goroutines, fails the test at the first error, and then writes the
// seeded mail back, so that the first measurement does not pay for it in
// its fsyncs.
func (b *bench) seed(name string, n, workers int, write func(i int) error) {
	if err := parallel(n, workers, write); err != nil {
		b.t.Fatalf("seeding %s: %v", name, err)
	}
	syscall.Sync()
}

// makeMaildir creates user's Maildir and its subdirectories, owned by the
// mail user, and returns its path. The user must have been added with
// newSource.
func (b *bench) makeMaildir(name string) string {
	md := b.d.MailDir(b.t, name)
	if filepath.Base(md) != "Maildir" {
		b.t.Fatalf("seeding %s: its mail is in %s, not in a Maildir", name, md)
	}
	for _, sub := range []string{"", "cur", "new", "tmp"} {
		p := filepath.Join(md, sub)
		if err := os.MkdirAll(p, 0o700); err != nil {
			b.t.Fatal(err)
		}
		if err := os.Chown(p, b.uid, b.gid); err != nil {
			b.t.Fatal(err)
		}
	}
	return md
}

// digestSet is a multiset of SHA-256 sums.
type digestSet map[[32]byte]int

func (s digestSet) equal(o digestSet) (missing, extra int) {
	for k, v := range s {
		if o[k] < v {
			missing += v - o[k]
		}
	}
	for k, v := range o {
		if s[k] < v {
			extra += v - s[k]
		}
	}
	return
}

// drain retrieves the whole maildrop over POP3 with pipelined RETR, hashing
// each body as it streams, and nothing else: the POP3 side's physical limit.
func (b *bench) drain(addr, name string) (time.Duration, digestSet) {
	start := time.Now()
	c, err := pop3.Dial(context.Background(), addr, nil)
	if err != nil {
		b.t.Fatalf("drain: %v", err)
	}
	defer c.Close()
	if err := c.Login(name, password); err != nil {
		b.t.Fatalf("drain: %v", err)
	}
	list, err := c.List()
	if err != nil {
		b.t.Fatalf("drain: %v", err)
	}
	nums := make([]int, len(list))
	for i, m := range list {
		nums[i] = m.Number
	}
	set := digestSet{}
	h := sha256.New()
	err = c.RetrAll(nums, 16, func(n int, body io.Reader) error {
		h.Reset()
		if _, err := io.Copy(h, body); err != nil {
			return err
		}
		set[[32]byte(h.Sum(nil))]++
		return nil
	})
	if err != nil {
		b.t.Fatalf("drain: %v", err)
	}
	if err := c.Quit(); err != nil {
		b.t.Fatalf("drain: %v", err)
	}
	return time.Since(start), set
}

// sink APPENDs every file of the source Maildir to a fresh user's INBOX
// over k connections, one APPEND at a time on each, as pop2imap does: the
// IMAP side's physical limit. The files hold exactly the bytes POP3 serves.
func (b *bench) sink(src string, k int) time.Duration {
	files, err := filepath.Glob(filepath.Join(b.d.MailDir(b.t, src), "cur", "*"))
	if err != nil || len(files) == 0 {
		b.t.Fatalf("sink: no files in %s's Maildir (%v)", src, err)
	}
	sort.Strings(files)
	dst := b.newUser("sink")
	defer b.dropUser(dst)
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, k)
	for w := 0; w < k; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- b.appendFiles(dst, files, &next)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			b.t.Fatalf("sink k=%d: %v", k, err)
		}
	}
	return time.Since(start)
}

func (b *bench) appendFiles(dst string, files []string, next *atomic.Int64) error {
	c, err := imapclient.DialInsecure(b.d.IMAPAddr, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Login(dst, password).Wait(); err != nil {
		return err
	}
	for {
		i := int(next.Add(1) - 1)
		if i >= len(files) {
			break
		}
		f, err := os.Open(files[i])
		if err != nil {
			return err
		}
		st, _ := f.Stat()
		cmd := c.Append("INBOX", st.Size(), nil)
		_, werr := io.Copy(cmd, f)
		f.Close()
		cerr := cmd.Close()
		if _, err := cmd.Wait(); err != nil {
			return err
		}
		if werr != nil || cerr != nil {
			return fmt.Errorf("append: %v %v", werr, cerr)
		}
	}
	return c.Logout().Wait()
}

// fetchDigests streams every message of user's INBOX through SHA-256.
func (b *bench) fetchDigests(name string) digestSet {
	c, err := imapclient.DialInsecure(b.d.IMAPAddr, nil)
	if err != nil {
		b.t.Fatalf("verify: %v", err)
	}
	defer c.Close()
	if err := c.Login(name, password).Wait(); err != nil {
		b.t.Fatalf("verify: %v", err)
	}
	mbox, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		b.t.Fatalf("verify: %v", err)
	}
	set := digestSet{}
	if mbox.NumMessages == 0 {
		return set
	}
	var seq imap.SeqSet
	seq.AddRange(1, mbox.NumMessages)
	cmd := c.Fetch(seq, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
	h := sha256.New()
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		for item := msg.Next(); item != nil; item = msg.Next() {
			if body, ok := item.(imapclient.FetchItemDataBodySection); ok {
				h.Reset()
				if _, err := io.Copy(h, body.Literal); err != nil {
					b.t.Fatalf("verify: %v", err)
				}
				set[[32]byte(h.Sum(nil))]++
			}
		}
	}
	if err := cmd.Close(); err != nil {
		b.t.Fatalf("verify: %v", err)
	}
	return set
}

// runResult is one pop2imap run.
type runResult struct {
	wall   time.Duration
	rssKiB int64
	cpu    time.Duration // user and system time
	stats  string        // the --stats line
}

// migrate runs the pop2imap binary under /usr/bin/time -v from src to a
// fresh user at the given RTT, checks it, and removes the copy.
// link is how pop2imap reaches Dovecot in one run: the round-trip time
// added, and whether through internal/delayproxy (always for an RTT above
// 0 without netem; at 0 the proxy only forwards, so that a ratio against
// it measures the latency alone, not the proxy's own cost too).
type link struct {
	rttMS int
	proxy bool
}

func (l link) String() string {
	if l.rttMS == 0 && l.proxy {
		return "0 (proxy)"
	}
	return strconv.Itoa(l.rttMS)
}

// direct is a link straight to Dovecot.
var direct = link{}

func (b *bench) migrate(src string, l link, want digestSet) runResult {
	rttMS := l.rttMS
	dst := b.newUser("dst")
	defer b.dropUser(dst)
	pop3Addr, imapAddr := b.d.POP3Addr, b.d.IMAPAddr
	tlsMode := "none"
	if b.cfg.tls {
		pop3Addr, imapAddr, tlsMode = b.d.POP3SAddr, b.d.IMAPSAddr, "implicit"
	}
	if rttMS > 0 || l.proxy {
		oneWay := time.Duration(rttMS) * time.Millisecond / 2
		if b.cfg.netem && !l.proxy {
			tc(b.t, "replace", oneWay)
			defer tc(b.t, "del", 0)
		} else {
			pp, err := delayproxy.Listen(pop3Addr, oneWay)
			if err != nil {
				b.t.Fatal(err)
			}
			defer pp.Close()
			ip, err := delayproxy.Listen(imapAddr, oneWay)
			if err != nil {
				b.t.Fatal(err)
			}
			defer ip.Close()
			pop3Addr, imapAddr = pp.Addr(), ip.Addr()
		}
	}
	stateFile := filepath.Join(b.cfg.work, "journal-"+dst)
	defer os.Remove(stateFile)
	timeFile := filepath.Join(b.cfg.work, "time-"+dst)
	defer os.Remove(timeFile)
	args := []string{"-v", "-o", timeFile, b.cfg.bin, "migrate",
		"--pop3", pop3Addr, "--pop3-user", src, "--pop3-tls", tlsMode,
		"--imap", imapAddr, "--imap-user", dst, "--imap-tls", tlsMode,
		"--state", stateFile, "--progress", "never"}
	if b.hasStats() {
		args = append(args, "--stats")
	}
	if b.cfg.tls {
		// The delay proxy listens on 127.0.0.1 too, and the certificate is
		// valid for that address.
		args = append(args, "--ca-file", b.d.CAFile)
	}
	args = append(args, b.cfg.extra...)
	cmd := exec.Command("/usr/bin/time", args...)
	cmd.Env = append(os.Environ(), "POP2IMAP_POP3_PASSWORD="+password, "POP2IMAP_IMAP_PASSWORD="+password)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	wall := time.Since(start)
	if err != nil {
		b.t.Fatalf("pop2imap migrate (RTT %s ms): %v\n%s", l, err, out)
	}
	if rttMS > 0 && b.cfg.netem && !l.proxy {
		tc(b.t, "del", 0)
	}
	tv, _ := os.ReadFile(timeFile)
	res := runResult{wall: wall, rssKiB: parseMaxRSS(string(tv)), cpu: parseCPU(string(tv))}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "Stats: ") {
			res.stats = line
		}
	}
	if !b.cfg.noVerify {
		got := b.fetchDigests(dst)
		if missing, extra := want.equal(got); missing != 0 || extra != 0 {
			b.t.Fatalf("RTT %s ms: %d messages missing or altered, %d extra in %s", l, missing, extra, dst)
		}
	}
	return res
}

// hasStats reports whether the binary has --stats, which builds before it
// lack; an A/B comparison runs both.
func (b *bench) hasStats() bool {
	if b.statsFlag == 0 {
		out, _ := exec.Command(b.cfg.bin, "migrate", "--help").CombinedOutput()
		b.statsFlag = -1
		if strings.Contains(string(out), "--stats") {
			b.statsFlag = 1
		}
	}
	return b.statsFlag > 0
}

// parseCPU returns the user and system time that /usr/bin/time -v reports.
// On a shared machine it varies much less than the wall time.
func parseCPU(s string) time.Duration {
	var cpu time.Duration
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		for _, prefix := range []string{"User time (seconds): ", "System time (seconds): "} {
			if v, ok := strings.CutPrefix(line, prefix); ok {
				f, _ := strconv.ParseFloat(v, 64)
				cpu += time.Duration(f * float64(time.Second))
			}
		}
	}
	return cpu
}

func parseMaxRSS(s string) int64 {
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "Maximum resident set size (kbytes): "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// tc sets or removes netem on this network namespace's own lo (run.sh runs
// the test inside a private namespace when netem is available).
func tc(t *testing.T, op string, oneWay time.Duration) {
	args := []string{"qdisc", op, "dev", "lo", "root"}
	if op != "del" {
		args = append(args, "netem", "delay", fmt.Sprintf("%dus", oneWay.Microseconds()))
	}
	if out, err := exec.Command("tc", args...).CombinedOutput(); err != nil && op != "del" {
		t.Fatalf("tc %v: %v\n%s", args, err, out)
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func medianInt(xs []int64) int64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func fmtDurs(ds []time.Duration) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, fmt.Sprintf("%.2f", d.Seconds()))
	}
	return strings.Join(parts, "/")
}

// runSize measures one maildrop size: drain, sink for each k, then pop2imap
// at each RTT.
func (b *bench) runSize(n int) {
	specs := make([]corpus.Spec, n)
	for i := range specs {
		specs[i] = corpus.SpecFor(b.cfg.seed, i)
		if b.cfg.small {
			specs[i] = corpus.SmallSpecFor(b.cfg.seed, i)
		}
	}
	src := b.newSource("src")
	defer b.dropUser(src)
	seedStart := time.Now()
	total := b.seedMaildir(src, specs)
	b.printf("## N=%d: %.1f MB, seeded in %.1fs", n, float64(total)/1e6, time.Since(seedStart).Seconds())

	// The first POP3 session makes Dovecot build its index; keep it out of
	// the timings, as it is not what a real mailbox pays on each run.
	_, want := b.drain(b.d.POP3Addr, src)
	if got := sumCounts(want); got != n {
		b.t.Fatalf("POP3 serves %d messages, seeded %d", got, n)
	}
	var drains []time.Duration
	for r := 0; r < b.cfg.reps; r++ {
		d, _ := b.drain(b.d.POP3Addr, src)
		drains = append(drains, d)
	}
	drain := median(drains)
	b.printf("drain: %.2fs (runs %s)", drain.Seconds(), fmtDurs(drains))

	sink, bestK := time.Duration(0), 0
	for _, k := range b.cfg.sinkKs {
		if k <= 0 { // -k 0: no sink
			continue
		}
		var ds []time.Duration
		for r := 0; r < b.cfg.reps; r++ {
			ds = append(ds, b.sink(src, k))
		}
		m := median(ds)
		b.printf("sink k=%d: %.2fs (runs %s)", k, m.Seconds(), fmtDurs(ds))
		if bestK == 0 || m < sink {
			sink, bestK = m, k
		}
	}
	limit := max(drain, sink)

	// The links, with RTT 0 also through the proxy when the others go
	// through it: the ratios are taken against that run.
	var links []link
	base := -1
	for _, rtt := range b.cfg.rtts {
		links = append(links, link{rttMS: rtt, proxy: rtt > 0 && !b.cfg.netem})
		if rtt == 0 && !b.cfg.netem && slices.ContainsFunc(b.cfg.rtts, func(r int) bool { return r > 0 }) {
			links = append(links, link{proxy: true})
		}
	}
	for i, l := range links {
		if l.rttMS == 0 && (base < 0 || l.proxy) {
			base = i
		}
	}
	// Rep by rep, every link in turn, so that the machine's drift over
	// the minutes of a series falls on every link alike.
	runs := make([][]runResult, len(links))
	var statLines []string
	for r := 0; r < b.cfg.reps; r++ {
		for i, l := range links {
			res := b.migrate(src, l, want)
			runs[i] = append(runs[i], res)
			statLines = append(statLines, fmt.Sprintf("RTT %s ms, run %d (%.2f s): %s", l, r+1, res.wall.Seconds(), res.stats))
		}
	}

	b.printf("| N | RTT ms | drain s | sink s (k) | pop2imap s (runs) | vs drain/sink | vs RTT 0 | msgs/s | MB/s | peak RSS MiB | CPU s | ms/msg |")
	b.printf("|---|---|---|---|---|---|---|---|---|---|---|---|")
	var t0 time.Duration
	if base >= 0 {
		t0 = median(walls(runs[base]))
	}
	for i, l := range links {
		ws := walls(runs[i])
		var cpus []time.Duration
		var rss []int64
		for _, res := range runs[i] {
			cpus = append(cpus, res.cpu)
			rss = append(rss, res.rssKiB)
		}
		w := median(ws)
		vs0 := "-"
		if t0 > 0 {
			vs0 = fmt.Sprintf("%.2f", w.Seconds()/t0.Seconds())
		}
		b.printf("| %d | %s | %.2f | %.2f (%d) | %.2f (%s) | %.2f | %s | %.0f | %.1f | %.1f (max %.1f) | %.2f | %.2f |",
			n, l, drain.Seconds(), sink.Seconds(), bestK, w.Seconds(), fmtDurs(ws),
			w.Seconds()/limit.Seconds(), vs0, float64(n)/w.Seconds(), float64(total)/1e6/w.Seconds(),
			float64(medianInt(rss))/1024, float64(slices.Max(rss))/1024, median(cpus).Seconds(), w.Seconds()*1000/float64(n))
	}
	for _, l := range statLines {
		b.printf("%s", l)
	}
}

// walls returns the wall times of rs.
func walls(rs []runResult) []time.Duration {
	out := make([]time.Duration, len(rs))
	for i, r := range rs {
		out[i] = r.wall
	}
	return out
}

// runHuge migrates a maildrop of one message of mb MB at RTT 0 and reports
// the peak RSS.
func (b *bench) runHuge(mb int) {
	src := b.newSource("huge")
	defer b.dropUser(src)
	total := b.seedMaildir(src, []corpus.Spec{corpus.HugeSpec(0, int64(mb)<<20)})
	_, want := b.drain(b.d.POP3Addr, src)
	var walls []time.Duration
	var rss []int64
	for r := 0; r < b.cfg.reps; r++ {
		res := b.migrate(src, direct, want)
		walls = append(walls, res.wall)
		rss = append(rss, res.rssKiB)
	}
	b.printf("single message %d MB (%.1f MB): pop2imap %.2fs (runs %s), peak RSS %.1f MiB (max %.1f)",
		mb, float64(total)/1e6, median(walls).Seconds(), fmtDurs(walls), float64(medianInt(rss))/1024, float64(slices.Max(rss))/1024)
}

func sumCounts(s digestSet) int {
	n := 0
	for _, v := range s {
		n += v
	}
	return n
}
