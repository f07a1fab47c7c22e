package dovecottest

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// usernameChars is Dovecot's default auth_username_chars: a login name with
// any other byte is refused before the passdb is asked.
const usernameChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01234567890.-_@"

type account struct {
	password   string
	format     MailFormat // "" means the server's Options.MailFormat
	generation int64      // how many times it was written (its own passwd-file's mtime)
}

// AddUser creates a user that can log in to both POP3 and IMAP, or changes
// the password of an existing one. The password may hold any bytes except CR,
// LF and NUL, which no POP3 or IMAP login can carry. Dovecot lowercases login
// names (auth_username_format = %Lu), so "Alice" and "alice" are the same
// user. The user's mail is kept in the format Options.MailFormat names (an
// existing user keeps its own, see AddUserFormat), under MailDir(name).
//
// A new user can log in as soon as AddUser returns. Changing a password
// takes up to a second, because Dovecot looks at a passwd-file at most once a
// second; so does every AddUser with Options.OnePasswdFile (use AddUsers).
func (s *Server) AddUser(t testing.TB, name, password string) {
	t.Helper()
	s.addUser(t, name, password, nil)
}

// AddUserFormat is AddUser for a user whose mail is kept in format rather
// than in Options.MailFormat, for example a Maildir that a test fills by
// writing files while the other users use sdbox. An existing user's format
// cannot change, and a format other than the server's does not combine with
// Options.QuotaBytes (the quota backend depends on the format).
func (s *Server) AddUserFormat(t testing.TB, name, password string, format MailFormat) {
	t.Helper()
	f := s.ownFormat(t, name, format)
	s.addUser(t, name, password, &f)
}

// User is one user for AddUsers.
type User struct {
	Name, Password string
	// Format is the user's own mail format, as with AddUserFormat; empty
	// means the server's (Options.MailFormat), or for an existing user
	// its own.
	Format MailFormat
}

// AddUsers is AddUser (or AddUserFormat, for a User with a Format) for
// many users at once: with Options.OnePasswdFile it writes the passwd-file
// once and waits for Dovecot once, so that adding twenty thousand users
// takes seconds instead of hours. Every user can log in as soon as it
// returns.
func (s *Server) AddUsers(t testing.TB, users []User) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var changed []string
	for _, u := range users {
		var format *MailFormat
		if u.Format != "" {
			f := s.ownFormat(t, u.Name, u.Format)
			format = &f
		}
		changed = append(changed, s.register(t, u.Name, u.Password, format))
	}
	s.persist(t, changed)
}

// addUser is AddUser and AddUserFormat. format is nil for AddUser (an
// existing user keeps its format), else the user's own format, "" for the
// server's.
func (s *Server) addUser(t testing.TB, name, password string, format *MailFormat) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.persist(t, []string{s.register(t, name, password, format)})
}

// ownFormat is what AddUserFormat stores as a user's format: "" when it is
// the server's.
func (s *Server) ownFormat(t testing.TB, name string, format MailFormat) MailFormat {
	t.Helper()
	if !format.valid() {
		t.Fatalf("dovecottest: AddUserFormat %q: unknown format %q: want %q, %q or %q", name, format, Maildir, Sdbox, Mdbox)
	}
	if format == s.opts.MailFormat {
		return ""
	}
	if s.opts.QuotaBytes > 0 {
		t.Fatalf("dovecottest: AddUserFormat %q: format %s on a %s server with QuotaBytes is not supported", name, format, s.opts.MailFormat)
	}
	return format
}

// register checks a user, creates its home and records it, and returns
// its lowercased name; persist then writes it where Dovecot reads it.
// s.mu is held.
func (s *Server) register(t testing.TB, name, password string, format *MailFormat) string {
	t.Helper()
	name = strings.ToLower(name)
	if name == "" || strings.Trim(name, usernameChars) != "" || strings.Trim(name, ".") == "" {
		t.Fatalf("dovecottest: AddUser %q: a name needs at least one of %q and nothing else", name, usernameChars)
	}
	if strings.ContainsAny(password, "\r\n\x00") {
		t.Fatalf("dovecottest: AddUser %q: password holds CR, LF or NUL", name)
	}
	acct := s.users[name]
	if acct != nil && format != nil && acct.format != *format {
		t.Fatalf("dovecottest: AddUser %q: the user exists with format %s; it cannot change",
			name, s.formatOf(acct))
	}
	home := s.home(name)
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatalf("dovecottest: AddUser %q: %v", name, err)
	}
	if err := os.Chown(home, s.uid, s.gid); err != nil {
		t.Fatalf("dovecottest: AddUser %q: %v", name, err)
	}
	if acct == nil {
		acct = &account{}
		if format != nil {
			acct.format = *format
		}
		s.users[name] = acct
	}
	acct.password = password
	acct.generation++
	return name
}

// persist writes the named users' passwd entries and returns once Dovecot
// is sure to read them at the next login. s.mu is held.
func (s *Server) persist(t testing.TB, names []string) {
	t.Helper()
	if s.opts.OnePasswdFile {
		if err := s.writePasswdFile(); err != nil {
			t.Fatalf("dovecottest: AddUser: %v", err)
		}
		// Dovecot may have looked at the file during this second; it
		// will not look again before the next one.
		waitNextSecond()
		return
	}
	rewritten := false
	for _, name := range names {
		acct := s.users[name]
		if err := s.writeUser(name, acct); err != nil {
			t.Fatalf("dovecottest: AddUser %q: %v", name, err)
		}
		rewritten = rewritten || acct.generation > 1
	}
	if rewritten {
		// Dovecot may have looked at the old file during this second.
		waitNextSecond()
	}
}

// waitNextSecond sleeps past the start of the next second, when Dovecot
// looks at a changed passwd-file again (2.3 db-passwd-file.c syncs a file
// at most once per second of its clock).
func waitNextSecond() {
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(1100 * time.Millisecond)))
}

func (s *Server) home(name string) string { return filepath.Join(s.Dir, "home", name) }

// formatOf is the format acct's mail is kept in.
func (s *Server) formatOf(acct *account) MailFormat {
	if acct.format != "" {
		return acct.format
	}
	return s.opts.MailFormat
}

// MailDir returns the directory that holds the mail (and Dovecot's indexes)
// of user name, added with AddUser or AddUserFormat: Dir/home/<name>/Maildir,
// /sdbox or /mdbox. It need not exist before the user's first session.
func (s *Server) MailDir(t testing.TB, name string) string {
	t.Helper()
	name = strings.ToLower(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	acct, ok := s.users[name]
	if !ok {
		t.Fatalf("dovecottest: MailDir: no user %q; call AddUser first", name)
	}
	return filepath.Join(s.home(name), s.formatOf(acct).dir())
}

// writeUser writes name's passwd-file, Dir/passwd/<name>.
//
// Dovecot (2.3 db-passwd-file.c) re-reads a passwd-file when its mtime, in
// whole seconds, or its size differs from what it read last. A rewrite within
// the same second at the same size would go unseen, so every write gets its
// own mtime: the generation, in seconds since 1970.
//
// The password is stored as {PLAIN.b64} so that ':' and any other byte
// survive the colon-separated format; the passdb still yields the plaintext,
// which is what APOP needs. A user with its own format gets it as the extra
// field userdb_mail, which overrides mail_location.
func (s *Server) writeUser(name string, acct *account) error {
	return writeAtomic(filepath.Join(s.usersDir, name), s.passwdLine(name, acct), time.Unix(acct.generation, 0))
}

// passwdFile is the one passwd-file of a server with
// Options.OnePasswdFile, Dir/users.passwd.
func (s *Server) passwdFile() string { return filepath.Join(s.Dir, "users.passwd") }

// writePasswdFile writes every user into the one passwd-file
// (Options.OnePasswdFile), stamped with a new generation of the file, so
// that Dovecot sees each rewrite. s.mu is held.
func (s *Server) writePasswdFile() error {
	names := make([]string, 0, len(s.users))
	for name := range s.users {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, name := range names {
		b.WriteString(s.passwdLine(name, s.users[name]))
	}
	s.passwdGeneration++
	return writeAtomic(s.passwdFile(), b.String(), time.Unix(s.passwdGeneration, 0))
}

// passwdLine is name's line of a passwd-file:
// user:password:uid:gid:gecos:home:shell:extra; uid and gid come from
// mail_uid and mail_gid.
func (s *Server) passwdLine(name string, acct *account) string {
	var extra string
	if acct.format != "" {
		extra = "userdb_mail=" + acct.format.location()
	}
	return fmt.Sprintf("%s:{PLAIN.b64}%s::::%s::%s\n",
		name, base64.StdEncoding.EncodeToString([]byte(acct.password)), s.home(name), extra)
}

// writeAtomic writes a passwd-file through a temporary file renamed into
// place, so that Dovecot never reads half a file, with the given mtime.
func writeAtomic(path, content string, mtime time.Time) error {
	tmp := filepath.Join(filepath.Dir(path), "#tmp-"+filepath.Base(path))
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return err
	}
	if err := os.Chtimes(tmp, mtime, mtime); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// password returns the password AddUser gave name.
func (s *Server) password(t testing.TB, name string) string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	acct, ok := s.users[strings.ToLower(name)]
	if !ok {
		t.Fatalf("dovecottest: no user %q; call AddUser first", name)
	}
	return acct.password
}
