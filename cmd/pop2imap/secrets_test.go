package main

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pop2imap/pop2imap/internal/testnet"
)

// assertNoSecret fails the test if any of texts contains any of secrets.
func assertNoSecret(t *testing.T, texts map[string]string, secrets ...string) {
	t.Helper()
	for name, text := range texts {
		for _, s := range secrets {
			if s != "" && strings.Contains(text, s) {
				t.Errorf("%s contains the password %q:\n%s", name, s, text)
			}
		}
	}
}

// readIfExists returns a file's text, or "" when it does not exist.
func readIfExists(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// TestFailuresKeepSecrets runs migrations that fail on the way, with every
// way of giving a password and every log format, and checks that no
// password (right or wrong) appears in stdout, stderr, the report or the
// journal.
func TestFailuresKeepSecrets(t *testing.T) {
	const wrongPOP3, wrongIMAP = "wrong-pop3-Secret-4Kd", "wrong-imap-Secret-8Lp"
	tests := []struct {
		name     string
		env      map[string]string
		file     map[string]string // flag -> file content
		command  map[string]string // flag -> command
		wantCode int
	}{
		{"wrong POP3 password from the environment",
			map[string]string{"POP2IMAP_POP3_PASSWORD": wrongPOP3, "POP2IMAP_IMAP_PASSWORD": testIMAPPass}, nil, nil, exitError},
		{"wrong IMAP password from a file",
			map[string]string{"POP2IMAP_POP3_PASSWORD": testPOP3Pass}, map[string]string{"--imap-password-file": wrongIMAP + "\n"}, nil, exitError},
		{"wrong IMAP password from a command",
			map[string]string{"POP2IMAP_POP3_PASSWORD": testPOP3Pass}, nil, map[string]string{"--imap-password-cmd": "echo " + wrongIMAP}, exitError},
		{"password command that prints the password and then fails",
			map[string]string{"POP2IMAP_POP3_PASSWORD": testPOP3Pass}, nil, map[string]string{"--imap-password-cmd": "echo " + testIMAPPass + "; exit 3"}, exitUsage},
		{"wrong POP3 password from a file, right IMAP password from a command",
			nil, map[string]string{"--pop3-password-file": wrongPOP3 + "\n"}, map[string]string{"--imap-password-cmd": "printf '%s\\n' " + testIMAPPass}, exitError},
	}
	for _, tt := range tests {
		for _, format := range []string{"text", "json"} {
			t.Run(tt.name+"/"+format, func(t *testing.T) {
				e := newCLIEnv(t)
				t.Setenv("POP2IMAP_POP3_PASSWORD", "")
				t.Setenv("POP2IMAP_IMAP_PASSWORD", "")
				for k, v := range tt.env {
					t.Setenv(k, v)
				}
				report := filepath.Join(e.dir, "report.json")
				args := append(append([]string{}, e.args...), "--report", report, "-v", "--log-format", format, "--delete")
				for flag, content := range tt.file {
					p := filepath.Join(e.dir, strings.TrimPrefix(flag, "--"))
					if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
						t.Fatal(err)
					}
					args = append(args, flag, p)
				}
				for flag, cmd := range tt.command {
					args = append(args, flag, cmd)
				}
				code, stdout, stderr := runCLI(t, args...)
				if code != tt.wantCode {
					t.Errorf("exit %d, want %d; stderr: %s", code, tt.wantCode, stderr)
				}
				assertNoSecret(t, map[string]string{
					"stdout": stdout, "stderr": stderr,
					"report":  readIfExists(t, report),
					"journal": readIfExists(t, filepath.Join(e.dir, "j")),
				}, testPOP3Pass, testIMAPPass, wrongPOP3, wrongIMAP)
				if len(e.pop.Messages()) != e.samples {
					t.Error("a failed login changed the maildrop")
				}
			})
		}
	}
}

// echoingPOP3 is a POP3 server that refuses every password and quotes it
// back in its -ERR text, as some broken servers do.
func echoingPOP3(t *testing.T) string {
	t.Helper()
	return testnet.Serve(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(30 * time.Second))
		io.WriteString(c, "+OK echo\r\n")
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\r\n")
			verb, arg, _ := strings.Cut(line, " ")
			switch strings.ToUpper(verb) {
			case "CAPA":
				io.WriteString(c, "+OK\r\nUSER\r\n.\r\n")
			case "PASS":
				io.WriteString(c, "-ERR [AUTH] invalid password "+arg+" for this user\r\n")
			default:
				io.WriteString(c, "+OK\r\n")
			}
		}
	})
}

// TestServerEchoingThePasswordIsRedacted: a POP3 server that quotes the
// password in its refusal must not make pop2imap print it. (The IMAP side
// redacts such replies; the POP3 side must too.)
func TestServerEchoingThePasswordIsRedacted(t *testing.T) {
	e := newCLIEnv(t)
	t.Setenv("POP2IMAP_POP3_PASSWORD", testPOP3Pass)
	t.Setenv("POP2IMAP_IMAP_PASSWORD", testIMAPPass)
	args := append([]string{}, e.args...)
	for i, a := range args {
		if a == "--pop3" {
			args[i+1] = echoingPOP3(t)
		}
	}
	report := filepath.Join(e.dir, "report.json")
	for _, format := range []string{"text", "json"} {
		code, stdout, stderr := runCLI(t, append(args, "--report", report, "-v", "--log-format", format)...)
		if code != exitError {
			t.Errorf("%s: exit %d, want %d", format, code, exitError)
		}
		assertNoSecret(t, map[string]string{"stdout (" + format + ")": stdout, "stderr (" + format + ")": stderr,
			"report (" + format + ")": readIfExists(t, report)}, testPOP3Pass)
	}
}

// procInfo is one process seen under the binary.
type procInfo struct {
	pid     int
	cmdline string
}

// processTree returns the command lines of root and every descendant.
func processTree(root int) []procInfo {
	parent := map[int]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		parent[pid] = ppid
	}
	var out []procInfo
	for pid := range parent {
		for p := pid; p != 0 && p != 1; p = parent[p] {
			if p == root {
				b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
				out = append(out, procInfo{pid, string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))})
				break
			}
		}
	}
	return out
}

// TestSecretsNotInArgv runs the real binary the documented ways (password
// from the environment, from a file, from a command) and watches the
// command line of the binary and of every process under it, the password
// command's shell included, while it runs: no password may appear there,
// where any user of the machine could read it.
func TestSecretsNotInArgv(t *testing.T) {
	if _, err := os.Stat("/proc/self/cmdline"); err != nil {
		t.Skip("no /proc")
	}
	bin := buildBinary(t)
	e := newCLIEnv(t)
	passFile := filepath.Join(e.dir, "pop3.pass")
	imapFile := filepath.Join(e.dir, "imap.pass")
	os.WriteFile(passFile, []byte(testPOP3Pass+"\n"), 0o600)
	os.WriteFile(imapFile, []byte(testIMAPPass+"\n"), 0o600)
	tests := []struct {
		name string
		args []string
		env  []string
	}{
		{"environment", nil, []string{"POP2IMAP_POP3_PASSWORD=" + testPOP3Pass, "POP2IMAP_IMAP_PASSWORD=" + testIMAPPass}},
		{"file and command", []string{"--pop3-password-file", passFile, "--imap-password-cmd", "sleep 0.3; cat " + imapFile}, nil},
		{"two commands", []string{"--pop3-password-cmd", "sleep 0.3; cat " + passFile, "--imap-password-cmd", "sleep 0.3; cat " + imapFile}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append(append([]string{}, e.args[1:]...), tt.args...)
			for i, a := range args {
				if a == "--state" {
					args[i+1] = filepath.Join(t.TempDir(), "j")
				}
			}
			cmd := exec.Command(bin, append([]string{"migrate", "--delete"}, args...)...)
			cmd.Env = append(os.Environ(), "POP2IMAP_POP3_PASSWORD=", "POP2IMAP_IMAP_PASSWORD=")
			cmd.Env = append(cmd.Env, tt.env...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			seen := map[string]bool{}
			go func() {
				defer close(done)
				cmd.Wait()
			}()
		watch:
			for {
				for _, p := range processTree(cmd.Process.Pid) {
					seen[p.cmdline] = true
				}
				select {
				case <-done:
					break watch
				case <-time.After(5 * time.Millisecond):
				}
			}
			if cmd.ProcessState.ExitCode() != exitOK {
				t.Fatalf("exit %d:\n%s", cmd.ProcessState.ExitCode(), out.String())
			}
			var lines []string
			for l := range seen {
				lines = append(lines, l)
				for _, s := range []string{testPOP3Pass, testIMAPPass} {
					if strings.Contains(l, s) {
						t.Errorf("a process under pop2imap has the password in its command line: %q", l)
					}
				}
			}
			if !strings.Contains(strings.Join(lines, "\n"), bin) {
				t.Errorf("never saw the binary's own command line; saw %q", lines)
			}
			if len(tt.args) > 0 && tt.args[len(tt.args)-2] == "--imap-password-cmd" && !strings.Contains(strings.Join(lines, "\n"), "/bin/sh -c") {
				t.Errorf("never saw the password command's shell; saw %q", lines)
			}
			assertNoSecret(t, map[string]string{"output": out.String()}, testPOP3Pass, testIMAPPass)
			e.pop.AddMessage("again-"+tt.name, []byte("Subject: again\r\n\r\nx\r\n")) // something to copy next time
		})
	}
}

// TestPasswordCommandBounds: a password command that hangs ends the run
// at --timeout with exit code 2 (a setting to fix, not a server to retry);
// a password file others can read is refused with the chmod that fixes it;
// a password command does not see the other side's password variable.
func TestPasswordCommandBounds(t *testing.T) {
	t.Run("hanging command", func(t *testing.T) {
		e := newCLIEnv(t)
		t.Setenv("POP2IMAP_IMAP_PASSWORD", testIMAPPass)
		code, _, stderr := runCLI(t, append(e.args, "--timeout", "1s", "--pop3-password-cmd", "exec sleep 20")...)
		if code != exitUsage || !strings.Contains(stderr, "POP3 password command did not finish within 1s") {
			t.Errorf("exit %d, want %d and the timeout named; stderr: %s", code, exitUsage, stderr)
		}
	})
	t.Run("readable password file", func(t *testing.T) {
		e := newCLIEnv(t)
		t.Setenv("POP2IMAP_IMAP_PASSWORD", testIMAPPass)
		pass := filepath.Join(e.dir, "pop3.pass")
		os.WriteFile(pass, []byte(testPOP3Pass+"\n"), 0o644)
		code, _, stderr := runCLI(t, append(e.args, "--pop3-password-file", pass)...)
		if code != exitUsage || !strings.Contains(stderr, "chmod go-rwx "+pass) {
			t.Errorf("exit %d, want %d and the chmod; stderr: %s", code, exitUsage, stderr)
		}
		assertNoSecret(t, map[string]string{"stderr": stderr}, testPOP3Pass)
	})
	t.Run("command environment", func(t *testing.T) {
		e := newCLIEnv(t)
		t.Setenv("POP2IMAP_POP3_PASSWORD", testPOP3Pass)
		// Were POP2IMAP_POP3_PASSWORD passed on, the IMAP password would be
		// wrong and the login refused.
		code, _, stderr := runCLI(t, append(e.args, "--imap-password-cmd", `echo "${POP2IMAP_POP3_PASSWORD-}`+testIMAPPass+`"`)...)
		if code != exitOK {
			t.Errorf("exit %d; stderr: %s", code, stderr)
		}
	})
}
