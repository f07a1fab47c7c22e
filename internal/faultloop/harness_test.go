package faultloop

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pop2imap/pop2imap/internal/dovecottest"
	"github.com/pop2imap/pop2imap/internal/faultproxy"
	"github.com/pop2imap/pop2imap/state"
)

// Exit codes of pop2imap, as the README documents them.
const (
	exitOK         = 0
	exitError      = 1
	exitUsage      = 2
	exitLeftBehind = 3
)

// binEnv names an environment variable that, when set, gives a pop2imap
// binary to test instead of building cmd/pop2imap.
const binEnv = "POP2IMAP_TEST_BINARY"

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
	buildDir  string
)

func TestMain(m *testing.M) {
	// Most of these tests wait: on deadlines, on retry backoff, on Dovecot.
	// Let their subtests overlap beyond one per CPU unless told otherwise.
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		flag.Set("test.parallel", "12")
	}
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// binary builds cmd/pop2imap once per test binary, so that the tests run
// exactly what a user runs.
func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if bin := os.Getenv(binEnv); bin != "" {
			builtBin = bin
			return
		}
		buildDir, buildErr = os.MkdirTemp("", "faultloop-bin-")
		if buildErr != nil {
			return
		}
		builtBin = filepath.Join(buildDir, "pop2imap")
		out, err := exec.Command("go", "build", "-o", builtBin, "../../cmd/pop2imap").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// runResult is how one run of the binary ended.
type runResult struct {
	code     int
	killed   bool // ended by our SIGKILL
	output   string
	elapsed  time.Duration
	peakRSS  int64 // KiB, when measured
	peakTmp  int64 // bytes in open files under runOptions.tmpDir, sampled
	cmdlines []string
}

// runOptions say how to run the binary once.
type runOptions struct {
	args      []string
	env       []string
	killAfter time.Duration // >0: SIGKILL after this long
	timeLimit time.Duration // the run must end by then (it is killed and the test fails otherwise); 0: 3 minutes
	measure   bool          // peak RSS through /usr/bin/time -v, or VmHWM
	// watch, when set, is called with the pid of the binary while it runs.
	watch func(pid int)
	// tmpDir, when set, is watched while the binary runs: the peak of the
	// bytes its open files under tmpDir hold (spool files are unlinked at
	// once, so only their descriptors show them) goes to peakTmp.
	tmpDir string
}

var maxRSSLine = regexp.MustCompile(`Maximum resident set size \(kbytes\): (\d+)`)

// runBinary runs pop2imap once with args and env added to the environment.
func runBinary(t testing.TB, o runOptions) runResult {
	t.Helper()
	bin := binary(t)
	if o.timeLimit == 0 {
		o.timeLimit = 3 * time.Minute
	}
	args := o.args
	name := bin
	var timeFile string
	if o.measure {
		if _, err := os.Stat("/usr/bin/time"); err == nil {
			f, err := os.CreateTemp("", "faultloop-time-")
			if err != nil {
				t.Fatal(err)
			}
			f.Close()
			timeFile = f.Name()
			defer os.Remove(timeFile)
			name = "/usr/bin/time"
			args = append([]string{"-v", "-o", timeFile, bin}, args...)
		}
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), o.env...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var res runResult
	done := make(chan struct{})
	var hwm int64
	var wg sync.WaitGroup
	if o.measure && timeFile == "" || o.watch != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pid := cmd.Process.Pid
			if o.watch != nil {
				o.watch(pid)
			}
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				if kb := vmHWM(pid); kb > hwm {
					hwm = kb
				}
				select {
				case <-done:
					return
				case <-tick.C:
				}
			}
		}()
	}
	var peakTmp atomic.Int64
	if o.tmpDir != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(2 * time.Millisecond)
			defer tick.Stop()
			for {
				if n := openBytesUnder(cmd.Process.Pid, o.tmpDir); n > peakTmp.Load() {
					peakTmp.Store(n)
				}
				select {
				case <-done:
					return
				case <-tick.C:
				}
			}
		}()
	}
	var killTimer, limitTimer *time.Timer
	if o.killAfter > 0 {
		killTimer = time.AfterFunc(o.killAfter, func() { cmd.Process.Signal(syscall.SIGKILL) })
	}
	limitHit := false
	limitTimer = time.AfterFunc(o.timeLimit, func() { limitHit = true; cmd.Process.Signal(syscall.SIGKILL) })
	err := cmd.Wait()
	close(done)
	wg.Wait()
	limitTimer.Stop()
	if killTimer != nil {
		killTimer.Stop()
	}
	res.elapsed = time.Since(start)
	res.peakTmp = peakTmp.Load()
	res.output = out.String()
	res.code = cmd.ProcessState.ExitCode()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
		res.killed = true
	}
	if timeFile != "" {
		b, _ := os.ReadFile(timeFile)
		if m := maxRSSLine.FindSubmatch(b); m != nil {
			res.peakRSS, _ = strconv.ParseInt(string(m[1]), 10, 64)
		}
		if strings.Contains(string(b), "Command terminated by signal 9") {
			res.killed = true
		}
		if i := strings.Index(string(b), "Command exited with non-zero status "); i >= 0 {
			fmt.Sscanf(string(b[i:]), "Command exited with non-zero status %d", &res.code)
		}
	} else {
		res.peakRSS = hwm
	}
	if limitHit {
		t.Errorf("pop2imap %s did not end within %v; killed. Output:\n%s", strings.Join(o.args, " "), o.timeLimit, tail(res.output, 20))
	}
	_ = err
	return res
}

// openBytesUnder sums the sizes of the files under dir that pid or any of
// its descendants hold open, deleted ones included.
func openBytesUnder(pid int, dir string) int64 {
	var total int64
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		link := fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())
		if target, err := os.Readlink(link); err == nil && strings.HasPrefix(target, dir+"/") {
			if fi, err := os.Stat(link); err == nil && fi.Mode().IsRegular() {
				total += fi.Size()
			}
		}
	}
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, task := range tasks {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, task.Name()))
		for _, c := range strings.Fields(string(b)) {
			if child, err := strconv.Atoi(c); err == nil {
				total += openBytesUnder(child, dir)
			}
		}
	}
	return total
}

// vmHWM reads the peak resident set size of pid, in KiB (0 when gone).
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				n, _ := strconv.ParseInt(f[1], 10, 64)
				return n
			}
		}
	}
	return 0
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// world is one Dovecot with a template maildrop that every scenario copies.
type world struct {
	d       *dovecottest.Server
	corpus  []Mail
	served  []popMsg // the template maildrop as Dovecot's POP3 serves it
	refused map[string]bool
	tmpl    string // template user
	uid     int
	gid     int
	next    int
}

// popMsg is one message of a POP3 maildrop.
type popMsg struct {
	uidl string
	data []byte
}

// corpusFor returns the corpus of the fault loop and integration tests: the
// bad mail and n generated messages.
func corpusFor(t testing.TB, seed uint64, n int) []Mail {
	t.Helper()
	bad, err := BadMail("../../testdata/badmail")
	if err != nil {
		t.Fatal(err)
	}
	return append(bad, Generated(seed, n)...)
}

// newWorld starts Dovecot and fills a template maildrop with corpus. Dovecot
// refuses to APPEND an empty message, so any empty one is written into the
// Maildir directly: POP3 serves it, and pop2imap's APPEND of it is refused.
func newWorld(t testing.TB, corpus []Mail) *world {
	t.Helper()
	d := dovecottest.Start(t)
	u, err := user.Lookup(dovecottest.MailUser)
	if err != nil {
		t.Fatal(err)
	}
	w := &world{d: d, corpus: corpus, tmpl: "template", refused: map[string]bool{}}
	w.uid, _ = strconv.Atoi(u.Uid)
	w.gid, _ = strconv.Atoi(u.Gid)
	d.AddUser(t, w.tmpl, "template-pass")
	var viaIMAP [][]byte
	var empty int
	for _, m := range corpus {
		if len(m.Data) == 0 {
			empty++
			continue
		}
		viaIMAP = append(viaIMAP, m.Data)
	}
	d.SeedMaildrop(t, w.tmpl, viaIMAP)
	for i := 0; i < empty; i++ {
		w.writeMaildir(t, w.tmpl, fmt.Sprintf("%d.faultloop-empty-%d.localhost", time.Now().Unix(), i), nil)
	}
	w.served, err = popListing(d.POP3Addr, w.tmpl, "template-pass")
	if err != nil {
		t.Fatal(err)
	}
	// The harness's own reader must agree with dovecottest's.
	if ref := d.RetrAll(t, w.tmpl, "template-pass"); len(ref) != len(w.served) {
		t.Fatalf("RetrAll gives %d messages, popListing %d", len(ref), len(w.served))
	} else {
		for i := range ref {
			if !bytes.Equal(ref[i], w.served[i].data) {
				t.Fatalf("message %d: RetrAll and popListing disagree", i+1)
			}
		}
	}
	if len(w.served) != len(corpus) {
		t.Fatalf("template maildrop serves %d messages for a corpus of %d", len(w.served), len(corpus))
	}
	seen := map[string]bool{}
	for _, m := range w.served {
		if seen[string(m.data)] {
			t.Fatalf("the corpus has two identical messages; the checks need them distinct")
		}
		seen[string(m.data)] = true
		if len(m.data) == 0 {
			// Dovecot refuses to store an empty message. (Its POP3
			// serves an empty Maildir file as CRLF, so the corpus's
			// empty message never reaches this.)
			w.refused[m.uidl] = true
		}
	}
	return w
}

func (w *world) maildir(name string) string {
	return filepath.Join(w.d.Dir, "home", name, "Maildir")
}

// writeMaildir puts one message file into name's Maildir/new.
func (w *world) writeMaildir(t testing.TB, name, file string, data []byte) {
	t.Helper()
	dir := filepath.Join(w.maildir(name), "new")
	p := filepath.Join(dir, file)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, w.uid, w.gid); err != nil {
		t.Fatal(err)
	}
}

// pair is a fresh POP3 source and IMAP target, with a copy of the template
// maildrop.
type pair struct {
	w                     *world
	src, dst              string
	srcPass, dstPass      string
	dir                   string // journal, report
	folder                string
	popProxy, imapProxy   *faultproxy.Proxy
	popAddr, imapAddr     string
	imapConns, pop3Window int
}

func (w *world) newPair(t testing.TB) *pair {
	t.Helper()
	w.next++
	p := &pair{
		w:   w,
		src: fmt.Sprintf("src%d", w.next), dst: fmt.Sprintf("dst%d", w.next),
		srcPass: fmt.Sprintf("pop-Pass-%d-Zq", w.next), dstPass: fmt.Sprintf("imap-Pass-%d-Yx", w.next),
		folder:    "Fault Loop",
		imapConns: 4, pop3Window: 16,
	}
	w.d.AddUser(t, p.src, p.srcPass)
	w.d.AddUser(t, p.dst, p.dstPass)
	if err := copyTree(w.maildir(w.tmpl), w.maildir(p.src), w.uid, w.gid); err != nil {
		t.Fatal(err)
	}
	var err error
	p.dir, err = os.MkdirTemp("", "faultloop-pair-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(p.dir) })
	p.popProxy, err = faultproxy.Listen(w.d.POP3Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.popProxy.Close() })
	p.imapProxy, err = faultproxy.Listen(w.d.IMAPAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.imapProxy.Close() })
	p.popAddr, p.imapAddr = p.popProxy.Addr(), p.imapProxy.Addr()
	return p
}

// copyTree copies a Maildir, owned by the mail user.
func copyTree(from, to string, uid, gid int) error {
	return filepath.WalkDir(from, func(path string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		dst := filepath.Join(to, rel)
		info, err := de.Info()
		if err != nil {
			return err
		}
		if de.IsDir() {
			if err := os.MkdirAll(dst, info.Mode().Perm()); err != nil {
				return err
			}
			return os.Chown(dst, uid, gid)
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := os.WriteFile(dst, b, info.Mode().Perm()); err != nil {
			return err
		}
		return os.Chown(dst, uid, gid)
	})
}

func (p *pair) journal() string { return filepath.Join(p.dir, "journal") }
func (p *pair) report() string  { return filepath.Join(p.dir, "report.json") }

// args is the documented command line for this pair, through the proxies.
func (p *pair) args(extra ...string) []string {
	return append([]string{"migrate",
		"--pop3", p.popAddr, "--pop3-user", p.src, "--pop3-tls", "none",
		"--imap", p.imapAddr, "--imap-user", p.dst, "--imap-tls", "none",
		"--folder", p.folder, "--state", p.journal(), "--report", p.report(),
		"--delete", "--progress", "never", "--timeout", "20s",
		"--imap-conns", strconv.Itoa(p.imapConns), "--pop3-window", strconv.Itoa(p.pop3Window),
	}, extra...)
}

func (p *pair) env() []string {
	return []string{"POP2IMAP_POP3_PASSWORD=" + p.srcPass, "POP2IMAP_IMAP_PASSWORD=" + p.dstPass}
}

func (p *pair) run(t testing.TB, killAfter time.Duration) runResult {
	t.Helper()
	return runBinary(t, runOptions{args: p.args(), env: p.env(), killAfter: killAfter})
}

// tally counts what went wrong, over one check or many.
type tally struct {
	lost, duplicated, altered int
	// unconfirmed: gone from POP3 without a journal record of the copy;
	// keptDeleted: recorded deleted yet still on POP3.
	unconfirmed, keptDeleted int
}

func (a *tally) add(b tally) {
	a.lost += b.lost
	a.duplicated += b.duplicated
	a.altered += b.altered
	a.unconfirmed += b.unconfirmed
	a.keptDeleted += b.keptDeleted
}

func (a *tally) maxWith(b tally) {
	a.lost = max(a.lost, b.lost)
	a.duplicated = max(a.duplicated, b.duplicated)
	a.altered = max(a.altered, b.altered)
	a.unconfirmed = max(a.unconfirmed, b.unconfirmed)
	a.keptDeleted = max(a.keptDeleted, b.keptDeleted)
}

func (a tally) zero() bool { return a == tally{} }

func (a tally) String() string {
	return fmt.Sprintf("lost %d, duplicated %d, altered %d, deleted unconfirmed %d, recorded deleted but kept %d",
		a.lost, a.duplicated, a.altered, a.unconfirmed, a.keptDeleted)
}

// state is what the servers and the journal hold for a pair right now.
type pairState struct {
	folder   [][]byte
	maildrop []popMsg
	entries  []state.Entry
}

func (p *pair) snapshot(t testing.TB) pairState {
	t.Helper()
	var s pairState
	s.folder = p.w.d.FetchAll(t, p.dst, p.dstPass, p.folder)
	var err error
	s.maildrop, err = popListing(p.w.d.POP3Addr, p.src, p.srcPass)
	if err != nil {
		t.Fatal(err)
	}
	s.entries = readJournal(t, p.journal())
	return s
}

// readJournal reads a copy of the journal, so that the next run of the
// binary finds the file exactly as the last one left it (torn tail and all).
func readJournal(t testing.TB, path string) []state.Entry {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(t.TempDir(), "journal-copy")
	if err := os.WriteFile(cp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	j, err := state.Open(cp)
	if err != nil {
		t.Fatalf("the journal does not open: %v", err)
	}
	defer j.Close()
	es, err := j.Entries()
	if err != nil {
		t.Fatalf("the journal does not read back: %v", err)
	}
	return es
}

// check compares a snapshot with what the template served: every message
// is in the folder at most once and byte-identical, and each one is in the
// folder or still on the POP3 server; a message is gone from POP3 only if
// the journal recorded its copy, and none recorded deleted is still there.
// With final, the migration must be complete: every message in the folder
// but the refused ones, which alone stay on the POP3 server.
func (p *pair) check(t testing.TB, s pairState, final bool) (tally, []string) {
	t.Helper()
	var c tally
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	byData := map[string]int{} // served content -> index
	byView := map[string]int{} // served content as IMAP FETCH shows it -> index
	for i, m := range p.w.served {
		byData[string(m.data)] = i
		byView[string(imapView(m.data))] = i
	}
	inFolder := make([]int, len(p.w.served))
	for _, m := range s.folder {
		i, ok := byView[string(m)]
		if !ok {
			c.altered++
			bad("the folder holds a message that POP3 never served (%d bytes, starting %q)", len(m), head(m))
			continue
		}
		inFolder[i]++
	}
	onPOP3 := map[string]bool{}
	for _, m := range s.maildrop {
		onPOP3[m.uidl] = true
		if i, ok := byData[string(m.data)]; !ok || p.w.served[i].uidl != m.uidl {
			c.altered++
			bad("POP3 now serves %s differently", m.uidl)
		}
	}
	recorded := map[string][]state.Step{}
	for _, e := range s.entries {
		recorded[e.UIDL] = append(recorded[e.UIDL], e.Step)
	}
	for i, m := range p.w.served {
		steps := recorded[m.uidl]
		switch {
		case inFolder[i] > 1:
			c.duplicated += inFolder[i] - 1
			bad("%s is in the folder %d times", m.uidl, inFolder[i])
		case inFolder[i] == 0 && !onPOP3[m.uidl]:
			c.lost++
			bad("%s (%d bytes) is neither in the folder nor on the POP3 server", m.uidl, len(m.data))
		}
		if !onPOP3[m.uidl] && !hasStep(steps, state.Appended, state.Deleted) {
			c.unconfirmed++
			bad("%s left the POP3 server but the journal shows no confirmed copy (steps %v)", m.uidl, steps)
		}
		if onPOP3[m.uidl] && hasStep(steps, state.Deleted) {
			c.keptDeleted++
			bad("%s is recorded deleted but still on the POP3 server", m.uidl)
		}
		if final {
			if p.w.refused[m.uidl] {
				if !onPOP3[m.uidl] || inFolder[i] != 0 {
					bad("refused message %s: on POP3 %v, in the folder %d times; want left on POP3 only", m.uidl, onPOP3[m.uidl], inFolder[i])
				}
			} else if inFolder[i] != 1 || onPOP3[m.uidl] {
				bad("after completion %s is in the folder %d times and on POP3 %v; want once and gone", m.uidl, inFolder[i], onPOP3[m.uidl])
			}
		}
	}
	return c, problems
}

// imapView is how Dovecot's IMAP FETCH BODY[] shows stored bytes: it
// replaces each NUL, which an IMAP literal may not carry, with 0x80. The
// stored file keeps the NUL (its POP3 serves it), so this is the only
// difference the checks allow.
func imapView(b []byte) []byte {
	return bytes.ReplaceAll(b, []byte{0}, []byte{0x80})
}

func hasStep(steps []state.Step, want ...state.Step) bool {
	for _, s := range steps {
		for _, w := range want {
			if s == w {
				return true
			}
		}
	}
	return false
}

func head(b []byte) string {
	if len(b) > 60 {
		b = b[:60]
	}
	return string(b)
}

// leftInReport returns the UIDLs the --report file lists as left behind.
func leftInReport(t testing.TB, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading the report: %v", err)
	}
	var rep struct {
		Left []struct {
			UIDL   string `json:"uidl"`
			Reason string `json:"reason"`
		} `json:"left_behind_messages"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("the report is not JSON: %v", err)
	}
	var out []string
	for _, l := range rep.Left {
		out = append(out, l.UIDL)
	}
	return out
}

// popListing logs in to POP3 and returns every message with its UIDL and
// its bytes as RETR delivers them, unstuffed; it ends with QUIT, deleting
// nothing. It is written on the standard library so that it does not share
// code with the client it checks.
func popListing(addr, user, pass string) ([]popMsg, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Minute))
	r := bufio.NewReaderSize(conn, 64<<10)
	status := func(cmd string) (string, error) {
		if cmd != "" {
			if _, err := io.WriteString(conn, cmd+"\r\n"); err != nil {
				return "", err
			}
		}
		line, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		if !strings.HasPrefix(line, "+OK") {
			if strings.HasPrefix(cmd, "PASS ") {
				cmd = "PASS"
			}
			return "", fmt.Errorf("POP3 %s: %q", cmd, strings.TrimSpace(line))
		}
		return line, nil
	}
	body := func() ([]byte, error) {
		var buf bytes.Buffer
		start := true
		for {
			chunk, err := r.ReadBytes('\n')
			if err != nil {
				return nil, err
			}
			if start && chunk[0] == '.' {
				if string(chunk) == ".\r\n" {
					return buf.Bytes(), nil
				}
				chunk = chunk[1:]
			}
			buf.Write(chunk)
			start = bytes.HasSuffix(chunk, []byte("\r\n"))
		}
	}
	for _, cmd := range []string{"", "USER " + user, "PASS " + pass, "UIDL"} {
		if _, err := status(cmd); err != nil {
			return nil, err
		}
	}
	list, err := body()
	if err != nil {
		return nil, err
	}
	var out []popMsg
	for _, l := range strings.Split(strings.TrimSpace(string(list)), "\r\n") {
		f := strings.Fields(l)
		if len(f) != 2 {
			continue
		}
		if _, err := status("RETR " + f[0]); err != nil {
			return nil, err
		}
		b, err := body()
		if err != nil {
			return nil, err
		}
		out = append(out, popMsg{uidl: f[1], data: b})
	}
	_, err = status("QUIT")
	return out, err
}
