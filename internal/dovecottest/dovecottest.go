// Package dovecottest starts a real Dovecot (POP3 and IMAP) on 127.0.0.1 in a
// temporary directory, for integration tests.
//
// Every Server is its own Dovecot master process with its own configuration,
// users, mail and TLS certificate; nothing under /etc/dovecot is read and the
// system service is not touched. Mail is stored in Maildir (or, with
// Options.MailFormat, in sdbox or mdbox) owned by the unprivileged system user
// pop2imap-mail, which Start creates when missing.
// Running Dovecot this way needs root, so Start skips the test when it cannot
// run, unless the environment says POP2IMAP_DOVECOT=require, which turns every
// such skip into a failure (CI sets it so that a broken setup cannot pass as a
// green run of skipped tests).
//
// What a test can count on:
//   - Plaintext logins (USER/PASS, LOGIN, AUTH PLAIN) work on the plain ports;
//     STLS and STARTTLS are offered there too. APOP works.
//   - A wrong password costs about 0.5 s and does not slow later logins (the
//     per-IP auth penalty is off).
//   - Folders use "/" as the separator; mail is Maildir under
//     Dir/home/<user>/Maildir unless Options.MailFormat or AddUserFormat
//     says otherwise (see MailDir), served in UID order as POP3 messages
//     1..n.
//   - POP3 UIDLs are %08Xu%08Xv (UID, then UIDVALIDITY, in hex). RETR sets
//     \Seen; FetchAll does not.
//
// Dovecot keeps APPENDed mail with LF line endings, so tests compare
// what the server serves (FetchAll, RetrAll), never its files. What it does
// to bare LF, bare CR and NUL is pinned down in TestAppendNormalization.
package dovecottest

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// MailUser is the system user that owns the mailboxes and runs Dovecot's mail
// processes.
const MailUser = "pop2imap-mail"

// EnvVar names the environment variable that controls Start: "require" makes
// every reason to skip a failure, "skip" skips every test that needs Dovecot,
// anything else (or unset) runs when possible and skips otherwise.
const EnvVar = "POP2IMAP_DOVECOT"

// startTimeout bounds how long Start waits for both greetings.
const startTimeout = 30 * time.Second

// MailFormat is a Dovecot mailbox format: how a user's mail is kept on disk.
type MailFormat string

// The mailbox formats a Server can use. All of them fsync every write
// (mail_fsync = always); they differ in what an APPEND costs as a folder
// grows.
const (
	// Maildir is one file per message plus dovecot-uidlist, the list of
	// file names by UID, under Dir/home/<user>/Maildir. It is the default.
	// Every session that finds the uidlist changed by another one reads it
	// again and rehashes every name in it, so parallel APPENDs to one large
	// folder get slower with each message (and wait for each other on the
	// uidlist's lock).
	Maildir MailFormat = "maildir"
	// Sdbox is one file per message with Dovecot's index as the only list,
	// under Dir/home/<user>/sdbox.
	Sdbox MailFormat = "sdbox"
	// Mdbox keeps many messages per file, with a map index shared by all
	// folders, under Dir/home/<user>/mdbox.
	Mdbox MailFormat = "mdbox"
)

// valid reports whether f is one of the formats above.
func (f MailFormat) valid() bool {
	return f == Maildir || f == Sdbox || f == Mdbox
}

// dir is the directory under a user's home that holds mail in format f.
func (f MailFormat) dir() string {
	if f == Maildir {
		return "Maildir"
	}
	return string(f)
}

// location is Dovecot's mail_location for format f.
func (f MailFormat) location() string { return string(f) + ":~/" + f.dir() }

// Options are the knobs of StartWith. The zero value is what Start uses.
type Options struct {
	// MailFormat is the mailbox format of every user that AddUser creates;
	// empty means Maildir. AddUserFormat overrides it for one user.
	MailFormat MailFormat
	// QuotaBytes, when positive, gives every user a storage quota of that
	// many bytes (Dovecot's quota plugin, maildir backend; count backend
	// with quota_vsizes for sdbox and mdbox), so APPEND past it fails with
	// NO [OVERQUOTA].
	QuotaBytes int64
	// OnePasswdFile keeps every user in one passwd-file, as a provider
	// does, instead of one file per user. Dovecot's auth process keeps
	// every passwd-file it has read open, so with a file per user it runs
	// out of descriptors ("Too many open files") once some tens of
	// thousands of users have logged in. Every write of the one file
	// rewrites it whole and waits for Dovecot's next look (up to a
	// second), so add many users at once with AddUsers.
	OnePasswdFile bool
	// ExtraConfig is appended verbatim to the generated dovecot.conf, after
	// everything else, so later settings win.
	ExtraConfig string
}

// Server is a running Dovecot. Its fields are read-only.
type Server struct {
	Dir string // the temporary directory holding config, logs, users and mail

	// Listeners, each "127.0.0.1:port". POP3Addr and IMAPAddr speak plain
	// text and offer STLS / STARTTLS; POP3SAddr and IMAPSAddr are implicit TLS.
	POP3Addr, POP3SAddr, IMAPAddr, IMAPSAddr string

	// CAFile is the PEM of the CA that signed the server certificate, which
	// is valid for DNS name "localhost" and IP 127.0.0.1.
	CAFile string

	// ConfigFile is the dovecot.conf that Start wrote; LogFile is where
	// Dovecot logs everything (errors and info, including auth decisions).
	ConfigFile, LogFile string

	// Greeting is the text Dovecot puts after "+OK " or "* OK " in its
	// greetings. It carries a random token so that Start knows it is talking
	// to this server and not to another one that took a port.
	Greeting string

	opts       Options
	bin        string
	uid, gid   int
	stderrFile string
	usersDir   string
	caPEM      []byte

	mu               sync.Mutex
	users            map[string]*account // by lowercased name
	passwdGeneration int64               // writes of the one passwd-file (Options.OnePasswdFile): its mtime

	cmd      *exec.Cmd
	exited   chan struct{} // closed when the master process has been reaped
	waitErr  error         // valid after exited is closed
	stopOnce sync.Once
}

// Start starts a Dovecot with the default Options and stops it in t.Cleanup.
// It skips the test when Dovecot cannot run here (not installed, not root),
// unless POP2IMAP_DOVECOT=require.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith is Start with knobs.
func StartWith(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.MailFormat == "" {
		opts.MailFormat = Maildir
	}
	if !opts.MailFormat.valid() {
		t.Fatalf("dovecottest: unknown MailFormat %q: want %q, %q or %q", opts.MailFormat, Maildir, Sdbox, Mdbox)
	}
	bin := checkEnvironment(t)
	uid, gid := ensureMailUser(t)

	dir, err := makeDir()
	if err != nil {
		t.Fatalf("dovecottest: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })

	token := make([]byte, 6)
	if _, err := rand.Read(token); err != nil {
		t.Fatalf("dovecottest: %v", err)
	}
	s := &Server{
		Dir:        dir,
		ConfigFile: filepath.Join(dir, "dovecot.conf"),
		LogFile:    filepath.Join(dir, "dovecot.log"),
		Greeting:   "Dovecot ready (dovecottest " + hex.EncodeToString(token) + ")",
		opts:       opts,
		bin:        bin,
		uid:        uid,
		gid:        gid,
		stderrFile: filepath.Join(dir, "dovecot.stderr"),
		usersDir:   filepath.Join(dir, "passwd"),
		users:      map[string]*account{},
	}
	if err := s.prepareDir(); err != nil {
		t.Fatalf("dovecottest: %v", err)
	}

	// A port picked by listening on :0 and closing can be taken by someone
	// else before Dovecot binds it. Dovecot then exits at once, so retry with
	// fresh ports.
	const attempts = 5
	for attempt := 1; ; attempt++ {
		err := s.launch()
		if err == nil {
			break
		}
		if errors.Is(err, errPortClash) && attempt < attempts {
			t.Logf("dovecottest: attempt %d: %v; retrying with other ports", attempt, err)
			continue
		}
		t.Fatalf("dovecottest: start: %v", err)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("dovecottest: last lines of %s:\n%s", s.LogFile, s.LogTail(40))
		}
	})
	return s
}

// checkEnvironment returns the dovecot binary, or skips (fails under
// POP2IMAP_DOVECOT=require) when Dovecot cannot run here.
func checkEnvironment(t testing.TB) string {
	t.Helper()
	mode := os.Getenv(EnvVar)
	if mode == "skip" {
		t.Skipf("dovecottest: %s=skip", EnvVar)
	}
	cannot := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if mode == "require" {
			t.Fatalf("dovecottest: %s (and %s=require)", msg, EnvVar)
		}
		t.Skipf("dovecottest: %s; install dovecot-pop3d and dovecot-imapd and run as root, or set %s=require to fail instead", msg, EnvVar)
	}
	bin, err := exec.LookPath("dovecot")
	if err != nil {
		// /usr/sbin is often missing from PATH.
		bin = "/usr/sbin/dovecot"
		if _, err := os.Stat(bin); err != nil {
			cannot("dovecot is not installed")
		}
	}
	if os.Geteuid() != 0 {
		cannot("running Dovecot with a separate mail user needs root (euid is %d)", os.Geteuid())
	}
	return bin
}

// useraddMu keeps the tests of one binary from racing each other in useradd;
// other test binaries running at the same time are handled by the re-lookup.
var useraddMu sync.Mutex

// ensureMailUser looks up MailUser, creating it when missing.
func ensureMailUser(t testing.TB) (uid, gid int) {
	t.Helper()
	useraddMu.Lock()
	defer useraddMu.Unlock()
	var lastErr error
	for try := 0; try < 10; try++ {
		if u, err := user.Lookup(MailUser); err == nil {
			uid, err1 := strconv.Atoi(u.Uid)
			gid, err2 := strconv.Atoi(u.Gid)
			if err1 != nil || err2 != nil {
				t.Fatalf("dovecottest: user %s has uid %q gid %q", MailUser, u.Uid, u.Gid)
			}
			return uid, gid
		}
		out, err := exec.Command("useradd", "--system", "--no-create-home",
			"--shell", "/usr/sbin/nologin", MailUser).CombinedOutput()
		if err == nil {
			continue
		}
		// Another test binary may be creating it right now (useradd then
		// fails on the lock or on "already exists"): look again shortly.
		lastErr = fmt.Errorf("useradd %s: %v: %s", MailUser, err, bytes.TrimSpace(out))
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("dovecottest: cannot create the mail user: %v", lastErr)
	return 0, 0
}

// makeDir creates the server's directory. Dovecot's login processes (user
// dovenull) and mail processes (MailUser) must be able to traverse it, so it
// is 0755, unlike t.TempDir's 0700 parents. Unix socket paths live under it
// and are limited to 108 bytes, hence the short name and the fallback to /tmp.
func makeDir() (string, error) {
	parent := os.TempDir()
	if len(parent) > 40 {
		parent = "/tmp"
	}
	dir, err := os.MkdirTemp(parent, "dovecottest-")
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	return dir, nil
}

// prepareDir writes the TLS files and creates the directories Dovecot expects.
func (s *Server) prepareDir() error {
	// passwd is read by the auth process, which runs as user dovecot.
	for _, d := range []string{"run", "state", "home", "tls", "passwd"} {
		if err := os.Mkdir(filepath.Join(s.Dir, d), 0o755); err != nil {
			return err
		}
	}
	if s.opts.OnePasswdFile {
		// Dovecot opens it at start.
		if err := s.writePasswdFile(); err != nil {
			return fmt.Errorf("passwd-file: %w", err)
		}
	}
	caFile, caPEM, err := writeTLSFiles(filepath.Join(s.Dir, "tls"))
	if err != nil {
		return fmt.Errorf("TLS files: %w", err)
	}
	s.CAFile, s.caPEM = caFile, caPEM
	return nil
}

// started holds the process group of every master this binary launched, so
// the package's own TestMain can check that none outlives the tests.
var (
	startedMu sync.Mutex
	started   []int
)

var errPortClash = errors.New("a listener port is already in use")

// launch picks ports, writes the config, starts the master and waits for both
// greetings.
func (s *Server) launch() error {
	ports, err := pickPorts(4)
	if err != nil {
		return err
	}
	addr := func(p int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)) }
	s.POP3Addr, s.POP3SAddr, s.IMAPAddr, s.IMAPSAddr = addr(ports[0]), addr(ports[1]), addr(ports[2]), addr(ports[3])
	if err := os.WriteFile(s.ConfigFile, []byte(s.config(ports)), 0o644); err != nil {
		return err
	}
	// Keep only this attempt's output, so the tail shown on failure is ours.
	os.Remove(s.LogFile)
	stderr, err := os.Create(s.stderrFile)
	if err != nil {
		return err
	}
	defer stderr.Close()

	cmd := exec.Command(s.bin, "-F", "-c", s.ConfigFile)
	cmd.Dir = s.Dir
	cmd.Stdout = stderr
	cmd.Stderr = stderr
	// Its own process group, so Stop can reach every child; and killed if
	// the test binary dies without running its cleanups.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("dovecot: %w", err)
	}
	s.cmd = cmd
	startedMu.Lock()
	started = append(started, cmd.Process.Pid)
	startedMu.Unlock()
	s.exited = make(chan struct{})
	s.stopOnce = sync.Once{}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()

	if err := s.waitReady(); err != nil {
		s.Stop()
		tail := s.LogTail(30)
		if strings.Contains(tail, "Address already in use") {
			return fmt.Errorf("%w: %v", errPortClash, err)
		}
		return fmt.Errorf("%v\n--- tail of %s and its stderr:\n%s", err, s.LogFile, tail)
	}
	return nil
}

// waitReady polls until POP3 and IMAP both greet with this server's token.
func (s *Server) waitReady() error {
	deadline := time.Now().Add(startTimeout)
	checks := []struct{ name, addr, prefix string }{
		{"POP3", s.POP3Addr, "+OK "},
		{"IMAP", s.IMAPAddr, "* OK "},
	}
	var lastErr error
	for _, c := range checks {
		for {
			select {
			case <-s.exited:
				return fmt.Errorf("dovecot exited during startup (%v)", s.waitErr)
			default:
			}
			if lastErr = greets(c.addr, c.prefix, s.Greeting); lastErr == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("no %s greeting on %s within %v: %v", c.name, c.addr, startTimeout, lastErr)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

// greets reads one greeting line from addr and checks that it is ours.
func greets(addr, prefix, token string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("reading greeting: %w", err)
	}
	if !strings.HasPrefix(line, prefix) || !strings.Contains(line, token) {
		return fmt.Errorf("greeting %q is not from this server", strings.TrimSpace(line))
	}
	return nil
}

// pickPorts is freePorts; a test replaces it to force a port clash.
var pickPorts = freePorts

// freePorts returns n distinct ports that were free on 127.0.0.1 a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for len(ports) < n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("picking a free port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Stop shuts Dovecot down and waits until the master and all its children are
// gone. It is called by t.Cleanup; calling it earlier (to test a server
// outage) is fine, and calling it twice is harmless.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		if s.cmd == nil || s.cmd.Process == nil {
			return
		}
		pgid := s.cmd.Process.Pid
		// SIGTERM to the whole group: signalled alone, the master takes 1-2
		// seconds to shut its children down.
		syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			syscall.Kill(-pgid, syscall.SIGKILL)
			<-s.exited
		}
		// Children that outlived the master (it was killed, or they were
		// slow) are still in its process group.
		for i := 0; i < 100; i++ {
			if err := syscall.Kill(-pgid, syscall.SIGKILL); errors.Is(err, syscall.ESRCH) {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// Running reports whether the master process is still up.
func (s *Server) Running() bool {
	select {
	case <-s.exited:
		return false
	default:
		return s.cmd != nil
	}
}

// LogTail returns the last n lines of Dovecot's log, followed by anything it
// wrote to stderr (configuration errors go there, before the log is open).
func (s *Server) LogTail(n int) string {
	var b strings.Builder
	if data, err := os.ReadFile(s.LogFile); err == nil {
		b.WriteString(lastLines(string(data), n))
	} else {
		fmt.Fprintf(&b, "(%v)\n", err)
	}
	if data, err := os.ReadFile(s.stderrFile); err == nil && len(data) > 0 {
		b.WriteString("--- stderr:\n")
		b.WriteString(lastLines(string(data), n))
	}
	return b.String()
}

func lastLines(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	out := strings.Join(lines, "")
	if out != "" && !strings.HasSuffix(out, "\n") {
		out += "\n"
	}
	return out
}
