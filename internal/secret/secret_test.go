package secret

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// open opens r with the command's stderr discarded: a shell child left
// running must not hold the test binary's own stderr open.
func open(t *testing.T, r Ref, opts Options) *Source {
	t.Helper()
	opts.Stderr = io.Discard
	src, err := r.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// TestCommandDeadline: a command that hangs is killed at its deadline and
// reported as a timeout, also when a child of the shell keeps its output
// open. Before the deadline existed, Resolve waited for sleep to end.
func TestCommandDeadline(t *testing.T) {
	for _, cmd := range []string{"sleep 20", "sleep 20; echo late", "(sleep 20; echo late) & sleep 20"} {
		t.Run(cmd, func(t *testing.T) {
			src := open(t, Ref{Kind: Command, Value: cmd}, Options{What: "POP3 password", Timeout: 100 * time.Millisecond})
			_, err := src.Resolve(context.Background())
			var serr *Error
			if !errors.As(err, &serr) || !serr.Timeout {
				t.Fatalf("got %v; want a *secret.Error with Timeout", err)
			}
			if !strings.Contains(err.Error(), "POP3 password command did not finish within 100ms") {
				t.Errorf("error %q does not say what timed out", err)
			}
		})
	}
}

// TestCommandChildKeepsOutputOpen: a command that prints the secret and
// leaves a child holding its stdout still yields the secret, after
// WaitDelay rather than when the child ends.
func TestCommandChildKeepsOutputOpen(t *testing.T) {
	src := open(t, Ref{Kind: Command, Value: "(sleep 20) & echo s3cret"}, Options{Timeout: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	var got string
	var err error
	go func() { got, err = src.Resolve(ctx); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute): // far beyond WaitDelay: the test fails only if Resolve waits for sleep
		t.Fatal("Resolve waited for the child that holds the output")
	}
	if err != nil || got != "s3cret" {
		t.Fatalf("got %q, %v", got, err)
	}
}

// TestCommandCancelled: cancelling the run stops the command and is not
// reported as a timeout.
func TestCommandCancelled(t *testing.T) {
	src := open(t, Ref{Kind: Command, Value: "sleep 20"}, Options{Timeout: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	_, err := src.Resolve(ctx)
	var serr *Error
	if !errors.Is(err, context.Canceled) || !errors.As(err, &serr) || serr.Timeout {
		t.Fatalf("got %v; want context.Canceled, not a timeout", err)
	}
}

// TestCommandOutputBounded: a command that prints without end is cut off at
// MaxOutput and refused.
func TestCommandOutputBounded(t *testing.T) {
	for _, tc := range []struct {
		cmd, want string
	}{
		{"yes", "printed more than 64 KiB"},
		{"head -c 65537 /dev/zero", "printed more than 64 KiB"},
		{"printf '%65535s' x | tr ' ' y; echo", ""},
		{"true", "printed nothing"},
		{"echo; echo second", "printed nothing"},
		{"exit 3", "failed: exit status 3"},
	} {
		t.Run(tc.cmd, func(t *testing.T) {
			src := open(t, Ref{Kind: Command, Value: tc.cmd}, Options{Timeout: time.Hour})
			got, err := src.Resolve(context.Background())
			if tc.want == "" {
				if err != nil || len(got) != 65535 {
					t.Fatalf("got %d bytes, %v; want the 65535-byte line", len(got), err)
				}
				return
			}
			var serr *Error
			if !errors.As(err, &serr) || serr.Timeout || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %q, %v; want an error with %q", got, err, tc.want)
			}
		})
	}
}

// TestCommandEnvironment: a command sees none of pop2imap's secret
// variables, nor any variable an env reference has read; it sees the rest.
func TestCommandEnvironment(t *testing.T) {
	t.Setenv("POP2IMAP_IMAP_PASSWORD", "imap-secret")
	t.Setenv("POP2IMAP_POP3_PASSWORD", "pop3-secret")
	t.Setenv("CREDENTIALS_DIRECTORY", "/run/credentials/x")
	t.Setenv("TEST_SECRET_REF_VAR", "ref-secret")
	t.Setenv("TEST_PLAIN_VAR", "plain")
	open(t, Ref{Kind: Env, Value: "TEST_SECRET_REF_VAR"}, Options{})
	src := open(t, Ref{Kind: Command, Value: `echo "${POP2IMAP_IMAP_PASSWORD-}|${POP2IMAP_POP3_PASSWORD-}|${CREDENTIALS_DIRECTORY-}|${TEST_SECRET_REF_VAR-}|${TEST_PLAIN_VAR-}"`},
		Options{Timeout: time.Hour})
	got, err := src.Resolve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got != "||||plain" {
		t.Errorf("the command saw %q; want only TEST_PLAIN_VAR", got)
	}
}

// TestFilePermissions: a secret file other users can read is refused at
// Open and at every later read, naming the file and the chmod; a private
// one is read again at every Resolve.
func TestFilePermissions(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pass")
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o620} {
		os.WriteFile(path, []byte("pw\n"), 0o600)
		os.Chmod(path, mode)
		_, err := Ref{Kind: File, Value: path}.Open(Options{What: "IMAP password"})
		var perr *PermissionError
		if !errors.As(err, &perr) || perr.Path != path {
			t.Fatalf("mode %04o: got %v; want a *PermissionError for %s", mode, err, path)
		}
		if want := "chmod go-rwx " + path; !strings.Contains(err.Error(), want) {
			t.Errorf("mode %04o: %q does not say %q", mode, err, want)
		}
	}
	os.Chmod(path, 0o400)
	src := open(t, Ref{Kind: File, Value: "pass"}, Options{BaseDir: dir})
	os.Chmod(path, 0o600)
	os.WriteFile(path, []byte("rotated\r\nsecond line"), 0o600)
	if got, err := src.Resolve(context.Background()); got != "rotated" || err != nil {
		t.Errorf("after rotation: %q, %v", got, err)
	}
	os.Chmod(path, 0o644)
	if _, err := src.Resolve(context.Background()); !errors.As(err, new(*PermissionError)) {
		t.Errorf("a file made readable later: %v; want a *PermissionError", err)
	}
}

// TestCredential reads $CREDENTIALS_DIRECTORY/NAME and refuses names that
// leave the directory.
func TestCredential(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "imap"), []byte("cred\n"), 0o400)
	t.Setenv("CREDENTIALS_DIRECTORY", dir)
	if got, err := open(t, Ref{Kind: Credential, Value: "imap"}, Options{}).Resolve(context.Background()); got != "cred" || err != nil {
		t.Errorf("got %q, %v", got, err)
	}
	for _, name := range []string{"../imap", "..", "a/b"} {
		if _, err := (Ref{Kind: Credential, Value: name}).Open(Options{}); err == nil {
			t.Errorf("credential %q accepted", name)
		}
	}
	t.Setenv("CREDENTIALS_DIRECTORY", "")
	if _, err := (Ref{Kind: Credential, Value: "imap"}).Open(Options{}); err == nil || !strings.Contains(err.Error(), "CREDENTIALS_DIRECTORY is not set") {
		t.Errorf("got %v", err)
	}
}

func TestCheckNotWritable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bridge.toml")
	os.WriteFile(path, nil, 0o644)
	if err := CheckNotWritable(path); err != nil {
		t.Errorf("mode 0644: %v", err)
	}
	for _, mode := range []os.FileMode{0o664, 0o646, 0o666} {
		os.Chmod(path, mode)
		err := CheckNotWritable(path)
		var perr *PermissionError
		if !errors.As(err, &perr) || !strings.Contains(err.Error(), "chmod go-w "+path) {
			t.Errorf("mode %04o: got %v", mode, err)
		}
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		v    any
		want Ref
		err  string
	}{
		{map[string]any{"env": "X"}, Ref{Env, "X"}, ""},
		{map[string]any{"file": "/p"}, Ref{File, "/p"}, ""},
		{map[string]any{"command": "pass x"}, Ref{Command, "pass x"}, ""},
		{map[string]any{"credential": "c"}, Ref{Credential, "c"}, ""},
		{"hunter2", Ref{}, "a literal password is not allowed"},
		{nil, Ref{}, "missing"},
		{map[string]any{"oauth2_token_file": "/t"}, Ref{OAuth2TokenFile, "/t"}, ""},
		{map[string]any{"env": "A", "file": "/b"}, Ref{}, "exactly one of env, file, command, credential or oauth2_token_file"},
		{map[string]any{"vault": "x"}, Ref{}, `unknown secret source "vault"`},
		{map[string]any{"env": ""}, Ref{}, "non-empty"},
		{map[string]any{"env": 3}, Ref{}, "non-empty"},
	}
	for _, tt := range tests {
		got, err := Parse(tt.v)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("Parse(%v) = %v; want an error with %q", tt.v, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Parse(%v) = %v, %v; want %v", tt.v, got, err, tt.want)
		}
	}
}
