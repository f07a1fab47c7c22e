package batch

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pop2imap/pop2imap/bridge"
	"github.com/pop2imap/pop2imap/internal/errkind"
	"github.com/pop2imap/pop2imap/internal/secret"
	"github.com/pop2imap/pop2imap/internal/testcert"
	"github.com/pop2imap/pop2imap/state"
)

// writeFile writes an accounts file with mode 0600 in a new directory and
// returns its path.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "accounts.csv")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// load writes content and loads it with d.
func load(t *testing.T, content string, d Defaults) ([]Account, error) {
	t.Helper()
	return Load(writeFile(t, content), d)
}

// mustLoad is load that expects no error.
func mustLoad(t *testing.T, content string, d Defaults) []Account {
	t.Helper()
	accounts, err := load(t, content, d)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return accounts
}

// rowErrors returns the *RowErrors of err, failing the test if it has none.
func rowErrors(t *testing.T, err error) []*RowError {
	t.Helper()
	var re *RowErrors
	if !errors.As(err, &re) {
		t.Fatalf("got %v; want *RowErrors", err)
	}
	if errkind.Of(err) != errkind.Config {
		t.Errorf("kind of %v is %q, want config", err, errkind.Of(err))
	}
	return re.Errs
}

// resolve returns what an endpoint's secret yields.
func resolve(t *testing.T, ep *bridge.Endpoint) string {
	t.Helper()
	s, err := ep.Secret(context.Background())
	if err != nil {
		t.Fatalf("secret of %s: %v", ep.Addr, err)
	}
	return s
}

// summary is what a test compares of an account.
func summary(a Account) string {
	return fmt.Sprintf("line %d %q %s pop3=%s/%s/%v/%s imap=%s/%s/%v/%s folder=%q delete=%v seen=%v",
		a.Line, a.Name, a.ID, a.POP3.Addr, a.POP3.Username, a.POP3.TLS, a.POP3.Auth,
		a.IMAP.Addr, a.IMAP.Username, a.IMAP.TLS, a.IMAP.Auth, a.Folder, a.Delete, a.Seen)
}

const header = "pop3_server,pop3_user,pop3_password,imap_server,imap_user,imap_password\n"

// TestLoadColumnsInAnyOrder proves that the header decides which field is
// which: the same accounts written with their columns in another order,
// header names in other case and with spaces, and a byte order mark, load
// the same.
func TestLoadColumnsInAnyOrder(t *testing.T) {
	a := mustLoad(t, "name,pop3_server,pop3_user,pop3_password,imap_server,imap_user,imap_password,folder,delete\n"+
		"alice,pop.example.com,alice,pw1,imap.example.com,alice@example.com,pw2,Old,yes\n"+
		",pop.example.com,bob,pw3,imap.example.com,bob@example.com,pw4,,\n", Defaults{})
	b := mustLoad(t, "\uFEFF Delete , IMAP_Password,Folder,imap_user, POP3_USER,imap_server,pop3_password,Name,pop3_server\r\n"+
		"yes,pw2,Old,alice@example.com,alice,imap.example.com,pw1,alice,pop.example.com\r\n"+
		",pw4,,bob@example.com,bob,imap.example.com,pw3,,pop.example.com\r\n", Defaults{})
	if len(a) != 2 || len(b) != 2 {
		t.Fatalf("loaded %d and %d accounts, want 2 and 2", len(a), len(b))
	}
	for i := range a {
		if summary(a[i]) != summary(b[i]) {
			t.Errorf("account %d differs with the columns reordered:\n%s\n%s", i, summary(a[i]), summary(b[i]))
		}
		if resolve(t, a[i].POP3) != resolve(t, b[i].POP3) || resolve(t, a[i].IMAP) != resolve(t, b[i].IMAP) {
			t.Errorf("account %d: the passwords differ with the columns reordered", i)
		}
	}
	want := []string{
		`line 2 "alice" ` + a[0].ID + ` pop3=pop.example.com:995/alice/implicit/ imap=imap.example.com:993/alice@example.com/implicit/ folder="Old" delete=true seen=false`,
		`line 3 "bob@pop.example.com" ` + a[1].ID + ` pop3=pop.example.com:995/bob/implicit/ imap=imap.example.com:993/bob@example.com/implicit/ folder="INBOX" delete=false seen=false`,
	}
	for i := range want {
		if got := summary(a[i]); got != want[i] {
			t.Errorf("account %d:\n got %s\nwant %s", i, got, want[i])
		}
	}
	if resolve(t, a[0].POP3) != "pw1" || resolve(t, a[0].IMAP) != "pw2" {
		t.Error("alice's passwords are not pw1 and pw2")
	}
}

// TestLoadQuoting proves RFC 4180 quoting: a quoted field may hold commas
// and doubled quotes, and a password keeps them, and its spaces, byte for
// byte.
func TestLoadQuoting(t *testing.T) {
	accounts := mustLoad(t, "name,"+header+
		`"Doe, Jane",pop.example.com,alice,"pa,ss ""word"" ",imap.example.com,alice,"x"`+"\r\n"+
		`,pop.example.com,bob,  spaced  ,imap.example.com,bob,plain`+"\r\n", Defaults{})
	if len(accounts) != 2 {
		t.Fatalf("got %d accounts, want 2", len(accounts))
	}
	for _, tt := range []struct {
		ep   *bridge.Endpoint
		want string
	}{
		{accounts[0].POP3, `pa,ss "word" `},
		{accounts[1].POP3, "  spaced  "},
		{accounts[1].IMAP, "plain"},
	} {
		if got := resolve(t, tt.ep); got != tt.want {
			t.Errorf("%s password = %q, want %q", tt.ep.Username, got, tt.want)
		}
	}
	if accounts[0].Name != "Doe, Jane" || accounts[1].Line != 3 {
		t.Errorf("name %q, second row on line %d; want \"Doe, Jane\" and line 3", accounts[0].Name, accounts[1].Line)
	}
}

// TestLoadQuotedLineBreak: a quoted field may span lines, and the rows
// after it keep their line numbers; but a literal password cannot hold a
// line break, since no login can carry one, so the file says so at once.
func TestLoadQuotedLineBreak(t *testing.T) {
	_, err := load(t, "imap_tls,"+header+
		`,pop.example.com,alice,pw,imap.example.com,alice,"multi`+"\n"+`line"`+"\n"+
		"bogus,pop.example.com,bob,pw,imap.example.com,bob,pw\n", Defaults{})
	errs := rowErrors(t, err)
	if len(errs) != 2 || errs[0].Column != "imap_password" || errs[0].Line != 2 || errs[1].Column != "imap_tls" || errs[1].Line != 4 {
		t.Fatalf("got %v; want errors in column imap_password on line 2 and imap_tls on line 4", err)
	}
	if strings.Contains(err.Error(), "multi") {
		t.Errorf("%q repeats the password", err)
	}
}

// TestLoadDefaults proves that empty cells take the defaults and that
// cells overrule them.
func TestLoadDefaults(t *testing.T) {
	d := Defaults{POP3TLS: "starttls", IMAPTLS: "none", POP3Auth: "apop", IMAPAuth: "plain", Folder: "Archive/Old",
		Delete: true, Seen: true, AllowInsecureAuth: true}
	accounts := mustLoad(t, "pop3_server,pop3_user,pop3_password,imap_server,imap_user,imap_password,pop3_tls,imap_tls,pop3_auth,imap_auth,folder,delete\n"+
		"pop.example.com,a,pw,imap.example.com,a,pw,,,,,,\n"+
		"pop.example.com,b,pw,imap.example.com,b,pw,implicit,starttls,user,login,inbox,no\n"+
		"pop.example.com:1100,c,pw,imap.example.com:1430,c,pw,,,,,Sent,0\n", d)
	want := []string{
		`pop3=pop.example.com:110/a/starttls/apop imap=imap.example.com:143/a/none/plain folder="Archive/Old" delete=true seen=true`,
		`pop3=pop.example.com:995/b/implicit/user imap=imap.example.com:143/b/starttls/login folder="INBOX" delete=false seen=true`,
		`pop3=pop.example.com:1100/c/starttls/apop imap=imap.example.com:1430/c/none/plain folder="Sent" delete=false seen=true`,
	}
	for i, a := range accounts {
		if got := summary(a); !strings.HasSuffix(got, want[i]) {
			t.Errorf("row %d:\n got %s\nwant …%s", i+2, got, want[i])
		}
		if a.POP3.AllowInsecureAuth != true || a.IMAP.AllowInsecureAuth != true {
			t.Errorf("row %d: AllowInsecureAuth not passed on", i+2)
		}
	}
	// Without a folder anywhere, INBOX.
	if a := mustLoad(t, header+"p,u,pw,i,v,pw\n", Defaults{}); a[0].Folder != bridge.DefaultFolder {
		t.Errorf("folder = %q, want %q", a[0].Folder, bridge.DefaultFolder)
	}
}

// TestLoadDelete proves the values the delete column takes.
func TestLoadDelete(t *testing.T) {
	for _, tt := range []struct {
		cell string
		def  bool
		want bool
		ok   bool
	}{
		{"true", false, true, true}, {"YES", false, true, true}, {"1", false, true, true},
		{"false", true, false, true}, {"No", true, false, true}, {"0", true, false, true},
		{"", true, true, true}, {"", false, false, true}, {" yes ", false, true, true},
		{"y", false, false, false}, {"on", false, false, false}, {"2", false, false, false},
	} {
		accounts, err := load(t, "delete,"+header+tt.cell+",p,u,pw,i,v,pw\n", Defaults{Delete: tt.def})
		if !tt.ok {
			if errs := rowErrors(t, err); errs[0].Column != "delete" {
				t.Errorf("delete %q: error %v is not about the delete column", tt.cell, err)
			}
			continue
		}
		if err != nil || accounts[0].Delete != tt.want {
			t.Errorf("delete %q (default %v): %v, %v; want %v", tt.cell, tt.def, accounts, err, tt.want)
		}
	}
}

// TestLoadRefusesReadableFile proves that a file others may read or write
// is refused before it is read, with the chmod that fixes it, as ssh does
// for keys; a private one is read.
func TestLoadRefusesReadableFile(t *testing.T) {
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o620, 0o660} {
		path := writeFile(t, header+"p,u,pw,i,v,pw\n")
		os.Chmod(path, mode)
		_, err := Load(path, Defaults{})
		var ferr *FileError
		var perr *secret.PermissionError
		if !errors.As(err, &ferr) || !errors.As(err, &perr) {
			t.Fatalf("mode %04o: got %v; want a *FileError with a *secret.PermissionError", mode, err)
		}
		if want := "chmod 600 " + path; !strings.Contains(err.Error(), want) {
			t.Errorf("mode %04o: %q does not say %q", mode, err, want)
		}
	}
	for _, mode := range []os.FileMode{0o600, 0o400} {
		path := writeFile(t, header+"p,u,pw,i,v,pw\n")
		os.Chmod(path, mode)
		if _, err := Load(path, Defaults{}); err != nil {
			t.Errorf("mode %04o: %v", mode, err)
		}
	}
}

// TestLoadReferences proves each kind of password reference: env:, file:
// (relative to the accounts file's directory, not the working directory),
// cmd: and literal:, resolved by package secret.
func TestLoadReferences(t *testing.T) {
	path := writeFile(t, header+
		"p,a,env:POP2IMAP_TEST_BATCH_PW,i,a,file:secrets/a\n"+
		"p,b,cmd:echo from-cmd,i,b,literal:env:NOT_A_REFERENCE\n")
	dir := filepath.Dir(path)
	os.Mkdir(filepath.Join(dir, "secrets"), 0o700)
	if err := os.WriteFile(filepath.Join(dir, "secrets", "a"), []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("POP2IMAP_TEST_BATCH_PW", "from-env")
	accounts, err := Load(path, Defaults{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		ep   *bridge.Endpoint
		want string
	}{
		{accounts[0].POP3, "from-env"},
		{accounts[0].IMAP, "from-file"},
		{accounts[1].POP3, "from-cmd"},
		{accounts[1].IMAP, "env:NOT_A_REFERENCE"},
	} {
		if got := resolve(t, tt.ep); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.ep.Username, got, tt.want)
		}
	}
}

// TestLoadBadReferences proves that a reference that cannot be opened is an
// error of its row and column, found before anything runs.
func TestLoadBadReferences(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open")
	os.WriteFile(open, []byte("pw\n"), 0o644)
	os.Setenv("POP2IMAP_TEST_BATCH_UNSET", "")
	for _, tt := range []struct {
		cell, want string
	}{
		{"env:POP2IMAP_TEST_BATCH_UNSET", "POP2IMAP_TEST_BATCH_UNSET is not set"},
		{"env:", "non-empty"},
		{"file:" + filepath.Join(dir, "missing"), "no such file"},
		{"file:" + open, "chmod go-rwx"},
		{"cmd:", "non-empty"},
		{"", "empty"},
		{"literal:", "empty"},
	} {
		_, err := load(t, header+"p,u,pw,i,v,pw\np,u2,pw,i,v,"+tt.cell+"\n", Defaults{})
		errs := rowErrors(t, err)
		if len(errs) != 1 || errs[0].Line != 3 || errs[0].Column != "imap_password" || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("cell %q: got %v; want one error on line 3, column imap_password, saying %q", tt.cell, err, tt.want)
		}
	}
}

// TestLoadHeaderErrors proves that the header's mistakes are found, each
// named by its column on the header's line.
func TestLoadHeaderErrors(t *testing.T) {
	for _, tt := range []struct {
		name, header string
		columns      []string // the columns the errors name
		want         string
	}{
		{"missing", "pop3_server,pop3_user,pop3_password,imap_server,imap_user\n", []string{"imap_password"}, "missing from the header"},
		{"two missing", "pop3_server,pop3_password,imap_server,imap_user\n", []string{"pop3_user", "imap_password"}, "required"},
		{"unknown", "pop3_sever," + header, []string{"pop3_sever"}, "unknown column"},
		{"duplicate", strings.TrimSuffix(header, "\n") + ", POP3_User\n", []string{"pop3_user"}, "named twice"},
		{"empty name", "," + header, []string{""}, "column 1 has no name"},
		{"no header", "pop.example.com,alice,Hunter2,imap.example.com,bob,Hunter3\n", []string{""}, "names none of the columns"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, "\n"+tt.header+"p,u,pw,i,v,pw\n", Defaults{})
			errs := rowErrors(t, err)
			var cols []string
			for _, e := range errs {
				cols = append(cols, e.Column)
				if e.Line != 2 {
					t.Errorf("%v: line %d, want the header's line 2", e, e.Line)
				}
			}
			if fmt.Sprint(cols) != fmt.Sprint(tt.columns) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v (columns %q); want columns %q and %q", err, cols, tt.columns, tt.want)
			}
			if strings.Contains(strings.ToLower(err.Error()), "hunter") {
				t.Errorf("%q repeats a password", err)
			}
		})
	}
}

// TestLoadRowErrors proves that a malformed row is an error naming the
// file's line and the column, in a compiler's format.
func TestLoadRowErrors(t *testing.T) {
	const full = "name,pop3_server,pop3_user,pop3_password,imap_server,imap_user,imap_password,pop3_tls,imap_tls,pop3_auth,imap_auth,folder,delete\n"
	const good = "n,p,u%d,pw,i,v,pw,,,,,,\n"
	for _, tt := range []struct {
		name, row string
		column    string
		want      string // in the error's text, after "accounts.csv:3: "
	}{
		{"bad TLS mode", "n,p,u,pw,i,v,pw,,startls,,,,", "imap_tls", "column imap_tls: unknown TLS mode (want implicit, starttls or none)"},
		{"bad POP3 mechanism", "n,p,u,pw,i,v,pw,,,cram-md5,,,", "pop3_auth", "column pop3_auth: unknown pop3 login mechanism (want auto, "},
		{"POP3 mechanism on IMAP", "n,p,u,pw,i,v,pw,,,,apop,,", "imap_auth", "column imap_auth: unknown imap login mechanism (want auto, "},
		{"bad port", "n,p:99999,u,pw,i,v,pw,,,,,,", "pop3_server", "column pop3_server: bad port"},
		{"no server", "n,,u,pw,i,v,pw,,,,,,", "pop3_server", "column pop3_server: no pop3 server given"},
		{"no user", "n,p,u,pw,i,,pw,,,,,,", "imap_user", "column imap_user: no imap user given"},
		{"bad delete", "n,p,u,pw,i,v,pw,,,,,,maybe", "delete", "column delete: not yes or no"},
		{"line break in user", "n,p,\"u\nx\",pw,i,v,pw,,,,,,", "pop3_user", "column pop3_user: holds a control character"},
		{"not UTF-8", "n,p,u,pw,i,v,pw,,,,,\xff\xfe,", "folder", "column folder: not valid UTF-8"},
		{"too few fields", "n,p,u,pw,i,v,pw", "", "7 fields, but the header names 13 columns"},
		{"plain text to a remote host", "n,pop.example.com,u,pw,i,v,pw,none,,,,,", "pop3_tls", "column pop3_tls: refusing to send a password over an unencrypted connection"},
		{"name too long", strings.Repeat("x", 201) + ",p,u,pw,i,v,pw,,,,,,", "name", "column name: longer than 200 bytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, full+fmt.Sprintf(good, 1)+tt.row+"\n"+fmt.Sprintf(good, 2))
			_, err := Load(path, Defaults{})
			errs := rowErrors(t, err)
			if len(errs) != 1 {
				t.Fatalf("got %d errors, want 1:\n%v", len(errs), err)
			}
			e := errs[0]
			if e.Line != 3 || e.Column != tt.column || e.Path != path {
				t.Errorf("error at %s:%d column %q; want %s:3 column %q", e.Path, e.Line, e.Column, path, tt.column)
			}
			if want := path + ":3: " + tt.want; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error %q\ndoes not start with %q", err, want)
			}
		})
	}
}

// TestLoadCollectsAllErrors proves that every row is checked and the
// errors come together, bounded, so one pass fixes the file.
func TestLoadCollectsAllErrors(t *testing.T) {
	var b strings.Builder
	b.WriteString("imap_tls," + header)
	for i := range 25 {
		fmt.Fprintf(&b, "bogus,p,u%d,pw,i,v,pw\n", i)
	}
	b.WriteString(",p,ok,pw,i,v,pw\n")
	_, err := load(t, b.String(), Defaults{})
	errs := rowErrors(t, err)
	if len(errs) != MaxRowErrors {
		t.Fatalf("got %d errors, want the first %d", len(errs), MaxRowErrors)
	}
	for i, e := range errs {
		if e.Line != i+2 || e.Column != "imap_tls" {
			t.Errorf("error %d at line %d column %q; want line %d column imap_tls", i, e.Line, e.Column, i+2)
		}
	}
	if !strings.HasSuffix(err.Error(), "\nand 5 more") {
		t.Errorf("error does not end with the count of those left out:\n%v", err)
	}
	var re *RowError
	if !errors.As(err, &re) || re.Line != 2 {
		t.Errorf("errors.As finds %v; want the first *RowError", re)
	}
}

// TestLoadErrorsInColumnOrder proves that a row's errors come in the
// order of its columns, whichever check found them first.
func TestLoadErrorsInColumnOrder(t *testing.T) {
	_, err := load(t, "delete,imap_tls,name,pop3_server,pop3_user,pop3_password,imap_server,imap_user,imap_password,pop3_tls,folder\n"+
		"maybe,bogus,\"n\x01\",p,u,,i,v,pw,bogus,\"\xff\"\n", Defaults{})
	var cols []string
	for _, e := range rowErrors(t, err) {
		cols = append(cols, e.Column)
	}
	if want := "[delete imap_tls name pop3_password pop3_tls folder]"; fmt.Sprint(cols) != want {
		t.Errorf("columns %v, want %s", cols, want)
	}
}

// TestLoadOneErrorPerCell: a cell that is not text is reported once, not
// again by each check that then reads it as empty.
func TestLoadOneErrorPerCell(t *testing.T) {
	_, err := load(t, header+"\xff,u,pw,i,v,pw\n", Defaults{})
	if errs := rowErrors(t, err); len(errs) != 1 || errs[0].Column != "pop3_server" {
		t.Errorf("got %v; want one error, for pop3_server", err)
	}
}

// TestLoadDuplicatePOP3 proves that two rows with one POP3 mailbox are an
// error naming both lines, however the host is spelt, while one mailbox
// on different ports, or two users on one server, are not.
func TestLoadDuplicatePOP3(t *testing.T) {
	_, err := load(t, header+
		"POP.Example.com,alice,pw,imap.example.com,a1,pw\n"+
		"pop.example.com,bob,pw,imap.example.com,b,pw\n"+
		"pop.example.com:995,alice,pw,imap.other.example,a2,pw\n", Defaults{})
	errs := rowErrors(t, err)
	var derr *DuplicateError
	if len(errs) != 1 || !errors.As(errs[0], &derr) {
		t.Fatalf("got %v; want one *DuplicateError", err)
	}
	if errs[0].Line != 4 || derr.FirstLine != 2 || derr.Addr != "pop.example.com:995" || derr.User != "alice" {
		t.Errorf("got line %d, %+v; want line 4, first line 2, alice on pop.example.com:995", errs[0].Line, derr)
	}
	if msg := err.Error(); !strings.Contains(msg, "accounts.csv:4:") || !strings.Contains(msg, "line 2") {
		t.Errorf("%q does not name both lines", msg)
	}
	mustLoad(t, "pop3_tls,"+header+
		"implicit,pop.example.com,alice,pw,i,a,pw\n"+
		"starttls,pop.example.com,alice,pw,i,b,pw\n"+
		",pop.example.com,Alice2,pw,i,c,pw\n", Defaults{})
}

// TestLoadPasswordsNeverInErrors proves that no error repeats a password,
// whatever else is wrong with its row or the file.
func TestLoadPasswordsNeverInErrors(t *testing.T) {
	const full = "pop3_server,pop3_user,pop3_password,imap_server,imap_user,imap_password,imap_tls,delete\n"
	var rows []string
	var passwords []string
	for i, bad := range []string{
		"pop.example.com,u%[1]d,%[2]s,imap.example.com,v,%[2]s,bogus,",
		"pop.example.com,u%[1]d,%[2]s,imap.example.com,v,%[2]s,,perhaps",
		"pop.example.com,u%[1]d,%[2]s,,v,%[2]s,,",
		"pop.example.com,u%[1]d,%[2]s,imap.example.com,v,\"%[2]s\n\",,",
		"pop.example.com,u%[1]d,%[2]s,imap.example.com,v,%[2]s,%[2]s,%[2]s",
		"pop.example.com,u%[1]d,%[2]s,imap.example.com,v,%[2]s,,", // good
		"pop.example.com,u%[1]d,%[2]s,imap.example.com,v,%[2]s,,,extra",
		"pop.example.com,u%[1]d,%[2]s,imap.example.com,v,%[2]s",
		"pop.example.com,u5,%[2]s,imap.example.com,v,%[2]s,,", // a duplicate of the row before
		"pop.example.com,u%[1]d,%[2]s,imap.example.com,v,\"%[2]s\"x,,",
	} {
		pw := fmt.Sprintf("Hunter2-secret-%d", i)
		passwords = append(passwords, pw)
		rows = append(rows, fmt.Sprintf(bad, i, pw))
	}
	_, err := load(t, full+strings.Join(rows, "\n")+"\n", Defaults{})
	if n := len(rowErrors(t, err)); n < len(rows)-1 {
		t.Errorf("got %d errors for %d bad rows:\n%v", n, len(rows)-1, err)
	}
	for _, pw := range passwords {
		if strings.Contains(strings.ToLower(err.Error()), strings.ToLower(pw)) || strings.Contains(err.Error(), "Hunter2") {
			t.Fatalf("the errors repeat a password:\n%v", err)
		}
	}
}

// TestLoadSkipsBlankRows proves that blank lines and spreadsheet rows of
// empty cells are skipped, and the lines of the rest stay right.
func TestLoadSkipsBlankRows(t *testing.T) {
	accounts := mustLoad(t, "\n"+header+"\n,,,,,\n  ,  , ,,,\np,u,pw,i,v,pw\n\n", Defaults{})
	if len(accounts) != 1 || accounts[0].Line != 6 {
		t.Fatalf("got %d accounts (first on line %d); want one on line 6", len(accounts), accounts[0].Line)
	}
}

// TestLoadSyntaxError proves that broken quoting stops the check at its
// line, with how to quote.
func TestLoadSyntaxError(t *testing.T) {
	_, err := load(t, header+"p,u,pw,i,v,pw\np,u2,pa\"ss,i,v,pw\np,u3,pw,i,v,pw\n", Defaults{})
	errs := rowErrors(t, err)
	if len(errs) != 1 || errs[0].Line != 3 || !strings.Contains(err.Error(), `each " inside doubled`) {
		t.Errorf("got %v; want one error on line 3 saying how to quote", err)
	}
}

// TestLoadFileErrors proves the failures of the file as a whole.
func TestLoadFileErrors(t *testing.T) {
	big := writeFile(t, "")
	if err := os.Truncate(big, MaxFileSize+1); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(t.TempDir(), "none.csv"), "no such file"},
		{"empty", writeFile(t, ""), "empty: want a header row"},
		{"header only", writeFile(t, header), "no accounts"},
		{"too large", big, "larger than 64 MiB"},
	} {
		_, err := Load(tt.path, Defaults{})
		var ferr *FileError
		if !errors.As(err, &ferr) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v; want a *FileError saying %q", tt.name, err, tt.want)
		}
	}
}

// TestLimitReader proves the bound on a file whose size Stat cannot tell.
func TestLimitReader(t *testing.T) {
	for _, tt := range []struct {
		size, limit int
		ok          bool
	}{{10, 10, true}, {11, 10, false}, {0, 0, true}, {5000, 4096, false}} {
		r := &limitReader{r: strings.NewReader(strings.Repeat("x", tt.size)), left: int64(tt.limit)}
		b, err := readAll(r)
		if tt.ok != (err == nil) || (tt.ok && len(b) != tt.size) || (!tt.ok && !errors.Is(err, errTooLarge)) {
			t.Errorf("%d bytes, limit %d: read %d, %v; want ok=%v", tt.size, tt.limit, len(b), err, tt.ok)
		}
	}
}

// TestLoadBoundsUnsizedInput proves that Load's reader stops a file that
// grows past the bound, as a pipe might, with a *FileError.
func TestLoadBoundsUnsizedInput(t *testing.T) {
	content := header + strings.Repeat("p,u,pw,i,v,pw\n", 100)
	l := &loader{path: "pipe", seen: map[string]int{}}
	_, err := l.load(&limitReader{r: strings.NewReader(content), left: int64(len(content) - 1)})
	var ferr *FileError
	if !errors.As(err, &ferr) || !errors.Is(err, errTooLarge) {
		t.Errorf("got %v; want a *FileError for a file too large", err)
	}
}

func readAll(r *limitReader) ([]byte, error) {
	var out []byte
	buf := make([]byte, 7)
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			if err.Error() == "EOF" {
				return out, nil
			}
			return out, err
		}
	}
}

// TestLoadDefaultsError proves that a default that cannot work is one
// error naming the setting, not one per row, and that a row's own cell
// overrules it.
func TestLoadDefaultsError(t *testing.T) {
	for _, tt := range []struct {
		d       Defaults
		setting string
	}{
		{Defaults{POP3TLS: "bogus"}, "pop3_tls"},
		{Defaults{IMAPAuth: "apop"}, "imap_auth"},
		{Defaults{CAFile: filepath.Join(t.TempDir(), "missing.pem")}, "ca_file"},
		{Defaults{Timeout: -1}, "timeout"},
	} {
		_, err := load(t, header+"p,u,pw,i,v,pw\np,u2,pw,i,v,pw\n", tt.d)
		var derr *DefaultsError
		if !errors.As(err, &derr) || derr.Setting != tt.setting || errkind.Of(err) != errkind.Usage {
			t.Errorf("%+v: got %v; want a *DefaultsError for %s", tt.d, err, tt.setting)
		}
	}
	if _, err := load(t, "pop3_tls,"+header+"implicit,p,u,pw,i,v,pw\n", Defaults{POP3TLS: "bogus"}); err != nil {
		t.Errorf("a cell that overrules a bad default: %v", err)
	}
}

// TestAccountID proves that an account's identity is the hash of its pair
// and of nothing else: not its name, its line, its password or how its
// host is spelt; and that its journal is named as migrate names it.
func TestAccountID(t *testing.T) {
	a := mustLoad(t, "name,"+header+
		"first,pop.example.com,alice,pw,imap.example.com,bob,pw\n"+
		"other,pop.example.com,carol,pw,imap.example.com,bob,pw\n", Defaults{})
	b := mustLoad(t, "imap_password,folder,imap_user,pop3_server,pop3_password,pop3_user,imap_server\n"+
		"x,,bob,pop.example.com,y,carol,imap.example.com\n"+
		"x,inbox,bob,POP.example.com:995,y,alice,imap.example.com:993\n", Defaults{})
	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(a[0].ID) {
		t.Fatalf("ID %q is not 16 hex digits", a[0].ID)
	}
	if a[0].ID != b[1].ID || a[1].ID != b[0].ID {
		t.Errorf("the same pairs in another file have other IDs: %s %s, %s %s", a[0].ID, a[1].ID, b[1].ID, b[0].ID)
	}
	if a[0].ID == a[1].ID {
		t.Error("two pairs share an ID")
	}
	sum := state.PairHash("pop.example.com:995", "alice", "imap.example.com:993", "bob", "INBOX")
	if want := hex.EncodeToString(sum[:8]); a[0].ID != want {
		t.Errorf("ID = %s, want the start of state.PairHash, %s", a[0].ID, want)
	}
	c := mustLoad(t, "folder,"+header+"Archive,pop.example.com,alice,pw,imap.example.com,bob,pw\n", Defaults{})
	if c[0].ID == a[0].ID {
		t.Error("another folder has the same ID")
	}

	t.Setenv("XDG_STATE_HOME", "/xdg")
	migratePath, err := state.DefaultPath(a[0].POP3.Addr, a[0].POP3.Username, a[0].IMAP.Addr, a[0].IMAP.Username, a[0].Folder)
	if err != nil {
		t.Fatal(err)
	}
	got := JournalPath("/state", a[0])
	if want := filepath.Join("/state", "journals", filepath.Base(migratePath)); got != want {
		t.Errorf("JournalPath = %s, want %s", got, want)
	}
	if !strings.HasPrefix(filepath.Base(got), "alice@pop.example.com_995-to-bob@imap.example.com_993-INBOX-") {
		t.Errorf("journal name %s is not readable", filepath.Base(got))
	}
}

// TestLoadCAFile proves that every endpoint trusts the extra CA, while the
// rows share one pool of roots rather than each copying the system's.
func TestLoadCAFile(t *testing.T) {
	ca := testcert.New(t)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(testcert.Leaf{})
	if err != nil {
		t.Fatal(err)
	}
	accounts := mustLoad(t, accountsFile(5, nil), Defaults{CAFile: caFile})
	first := accounts[0].POP3.TLSConfig.RootCAs
	for _, a := range accounts {
		for _, ep := range []*bridge.Endpoint{a.POP3, a.IMAP} {
			if ep.TLSConfig.RootCAs != first {
				t.Errorf("%s %s has a pool of its own", a.Name, ep.Addr)
			}
			if _, err := leaf.Leaf.Verify(x509.VerifyOptions{Roots: ep.TLSConfig.RootCAs, DNSName: "localhost"}); err != nil {
				t.Errorf("%s %s does not trust the CA file: %v", a.Name, ep.Addr, err)
			}
		}
	}
	if a := mustLoad(t, accountsFile(1, nil), Defaults{}); a[0].POP3.TLSConfig.RootCAs != nil {
		t.Error("without a CA file, the endpoint does not use the system's roots")
	}
}
