package batch

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/pop2imap/pop2imap/bridge"
	"github.com/pop2imap/pop2imap/internal/secret"
	"github.com/pop2imap/pop2imap/state"
)

// The columns of an accounts file.
const (
	colName         = "name"
	colFolder       = "folder"
	colDelete       = "delete"
	colPOP3Server   = "pop3_server"
	colPOP3User     = "pop3_user"
	colPOP3Password = "pop3_password"
	colPOP3TLS      = "pop3_tls"
	colPOP3Auth     = "pop3_auth"
	colIMAPServer   = "imap_server"
	colIMAPUser     = "imap_user"
	colIMAPPassword = "imap_password"
	colIMAPTLS      = "imap_tls"
	colIMAPAuth     = "imap_auth"
)

// requiredColumns must all be in the header; optionalColumns may be.
var (
	requiredColumns = []string{colPOP3Server, colPOP3User, colPOP3Password, colIMAPServer, colIMAPUser, colIMAPPassword}
	optionalColumns = []string{colName, colFolder, colPOP3TLS, colIMAPTLS, colPOP3Auth, colIMAPAuth, colDelete}
)

// MaxFileSize bounds an accounts file: far beyond a million accounts, and
// small enough that a wrong path (a mailbox, a disk image) is refused at
// once rather than read whole.
const MaxFileSize = 64 << 20

// maxNameLen bounds the name column, which reports show on one line.
const maxNameLen = 200

// Defaults fill the cells a row leaves empty; the command's flags set them.
type Defaults struct {
	POP3TLS, IMAPTLS   string // implicit (""), starttls or none
	POP3Auth, IMAPAuth string // a login mechanism; "" is auto
	Folder             string // "" is bridge.DefaultFolder
	Delete             bool
	Seen               bool   // there is no column: every account stores as \Seen or none does
	CAFile             string // extra PEM roots, already an absolute path
	AllowInsecureAuth  bool
	Timeout            time.Duration // each command on the wire; 0 means bridge.DefaultTimeout
	SecretTimeout      time.Duration // each run of a cmd: password; 0 means secret.DefaultTimeout
}

// Account is one row of an accounts file, checked and ready to run.
type Account struct {
	Line int    // the line its row starts on
	Name string // the name column, or pop3_user@pop3_server as written
	// ID is the account's identity: the first 16 hex digits of
	// state.PairHash of the POP3 address and user, the IMAP address and
	// user, and the folder. It does not depend on the row's place in the
	// file or its name, and it names the account in results.jsonl.
	ID         string
	POP3, IMAP *bridge.Endpoint
	Folder     string // canonical (bridge.CanonicalFolder)
	Delete     bool
	Seen       bool
}

// JournalPath is where the journal of a is kept in the state directory
// dir: dir/journals/ and the name state.JournalName gives the pair, the
// same name migrate gives it under $XDG_STATE_HOME.
func JournalPath(dir string, a Account) string {
	return filepath.Join(dir, "journals",
		state.JournalName(a.POP3.Addr, a.POP3.Username, a.IMAP.Addr, a.IMAP.Username, a.Folder))
}

// accountID is Account.ID of a pair.
func accountID(pop3, imap *bridge.Endpoint, folder string) string {
	sum := state.PairHash(pop3.Addr, pop3.Username, imap.Addr, imap.Username, folder)
	return hex.EncodeToString(sum[:8])
}

// Load reads and checks an accounts file: an RFC 4180 CSV file with a
// header row naming its columns in any order (case and surrounding spaces
// do not matter; a UTF-8 byte order mark is skipped). The required columns
// are pop3_server, pop3_user, pop3_password, imap_server, imap_user and
// imap_password; name, folder, pop3_tls, imap_tls, pop3_auth, imap_auth and
// delete may be added. An unknown or repeated column is refused, which
// catches a misspelt one. Blank lines, and rows whose cells are all empty,
// are skipped.
//
// The file holds passwords, so one that its group or other users can read
// or write is refused, as ssh refuses such a key. A password cell is read by
// secret.ParseCell: a password, or env:VAR, file:PATH (relative to the
// file's directory) or cmd:COMMAND; references are opened now (a command
// is not run until login). Cells other than passwords lose their
// surrounding spaces; an empty one takes its value from d.
//
// Every row is checked before Load returns, and nothing is returned unless
// all are good: the errors come together as *RowErrors, each a *RowError
// naming its line and column, the first MaxRowErrors of them. Two rows
// listing the same POP3 mailbox (server with its host lower-cased and its
// default port, and user) are an error naming both lines. A default that
// cannot work is a *DefaultsError; a file that cannot be read a *FileError.
func Load(path string, d Defaults) ([]Account, error) {
	if err := secret.CheckPrivate(path); err != nil {
		var perr *secret.PermissionError
		if errors.As(err, &perr) {
			// The file is the user's own: 600 is the one mode to suggest.
			p := *perr
			if quoted, ok := strings.CutPrefix(p.Fix, "chmod go-rwx "); ok {
				p.Fix = "chmod 600 " + quoted
			}
			err = &p
		}
		return nil, &FileError{Path: path, Err: err}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, &FileError{Path: path, Err: err}
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > MaxFileSize {
		return nil, &FileError{Path: path, Err: errTooLarge}
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, &FileError{Path: path, Err: err}
	}
	l := &loader{path: path, dir: dir, d: d, seen: map[string]int{}}
	return l.load(&limitReader{r: f, left: MaxFileSize})
}

var errTooLarge = fmt.Errorf("larger than %d MiB; is it the accounts file?", MaxFileSize>>20)

// limitReader fails with errTooLarge once more than left bytes are read,
// for files whose size Stat cannot tell (a pipe) or that grow.
type limitReader struct {
	r    io.Reader
	left int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, errTooLarge
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return 0, errTooLarge
	}
	return n, err
}

// loader reads one accounts file.
type loader struct {
	path     string
	dir      string // absolute: anchors file: references
	d        Defaults
	cols     map[string]int // column name to field index
	nfields  int            // fields in the header
	seen     map[string]int // POP3 address and user to the line that listed them
	errs     RowErrors
	defaults *DefaultsError // the first default found not to work
	row      []*RowError    // the errors of the row being checked
	// roots is the pool of the system's roots and Defaults.CAFile, once
	// an endpoint has been built with it. Build makes a pool for each
	// endpoint, a copy of the system's roots: for 10,000 rows that was
	// 2.5 s and 650 MB. The endpoints built after the first that checked
	// the file share its pool, which is only read.
	roots *x509.CertPool
}

// rowError records an error of the row being checked: the first of each
// cell, since a cell that is not text also fails the checks that read it
// as empty.
func (l *loader) rowError(line int, column string, err error) {
	for _, e := range l.row {
		if e.Column == column && column != "" {
			return
		}
	}
	l.row = append(l.row, &RowError{Path: l.path, Line: line, Column: column, Err: err})
}

// endRow adds the row's errors to the file's, in the order of the row's
// columns, and reports whether there were any.
func (l *loader) endRow() bool {
	slices.SortStableFunc(l.row, func(a, b *RowError) int { return l.columnIndex(a.Column) - l.columnIndex(b.Column) })
	for _, e := range l.row {
		l.errs.add(e)
	}
	bad := len(l.row) > 0
	l.row = l.row[:0]
	return bad
}

// columnIndex is the field of column, or -1 for an error of the whole row.
func (l *loader) columnIndex(column string) int {
	if i, ok := l.cols[column]; ok {
		return i
	}
	return -1
}

func (l *loader) load(r io.Reader) ([]Account, error) {
	br := bufio.NewReader(r)
	if b, err := br.Peek(3); err == nil && string(b) == "\uFEFF" {
		br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1 // checked here, with a clearer message
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil, &FileError{Path: l.path, Err: errors.New("empty: want a header row naming the columns, " + strings.Join(requiredColumns, ","))}
	}
	if err != nil {
		return nil, l.readError(err)
	}
	headerLine, _ := cr.FieldPos(0)
	if err := l.readHeader(headerLine, header); err != nil {
		return nil, err
	}
	var accounts []Account
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var perr *csv.ParseError
			if !errors.As(err, &perr) {
				return nil, l.readError(err)
			}
			// What follows a broken quote cannot be told apart into
			// rows, so checking stops here.
			l.rowError(perr.Line, "", syntaxError(perr.Err))
			l.endRow()
			break
		}
		line, _ := cr.FieldPos(0)
		if blank(rec) {
			continue
		}
		if len(rec) != l.nfields {
			l.rowError(line, "", fmt.Errorf("%d fields, but the header names %d columns (a value with a comma needs double quotes around it)", len(rec), l.nfields))
			l.endRow()
			continue
		}
		a, ok := l.account(line, rec)
		if l.defaults != nil {
			return nil, l.defaults
		}
		if ok {
			accounts = append(accounts, a)
		}
	}
	if err := l.errs.err(); err != nil {
		return nil, err
	}
	if len(accounts) == 0 {
		return nil, &FileError{Path: l.path, Err: errors.New("no accounts: the file has a header row and nothing else")}
	}
	return accounts, nil
}

// readError is a failure to read the file itself.
func (l *loader) readError(err error) error {
	var perr *csv.ParseError
	if errors.As(err, &perr) {
		return &RowErrors{Errs: []*RowError{{Path: l.path, Line: perr.Line, Err: syntaxError(perr.Err)}}}
	}
	return &FileError{Path: l.path, Err: err}
}

// syntaxError explains encoding/csv's complaint about quotes, which is
// about the file's quoting, never its values.
func syntaxError(err error) error {
	switch {
	case errors.Is(err, csv.ErrBareQuote):
		return fmt.Errorf("%w (a value with a \" needs double quotes around it, and each \" inside doubled: \"pa\"\"ss\")", err)
	case errors.Is(err, csv.ErrQuote):
		return fmt.Errorf("%w (a quoted value must end with a \" followed by a comma or the end of the line)", err)
	}
	return err
}

// readHeader maps the header's column names to their fields.
func (l *loader) readHeader(line int, header []string) error {
	known := map[string]bool{}
	for _, c := range append(append([]string{}, requiredColumns...), optionalColumns...) {
		known[c] = true
	}
	var errs RowErrors
	bad := func(column string, err error) {
		errs.add(&RowError{Path: l.path, Line: line, Column: column, Err: err})
	}
	if !slices.ContainsFunc(header, func(h string) bool { return known[strings.ToLower(strings.TrimSpace(h))] }) {
		// Most likely an account, with its passwords, where the header
		// should be: its fields are not repeated.
		bad("", fmt.Errorf("the first row names none of the columns; start the file with a header row such as %s",
			strings.Join(requiredColumns, ",")))
		return errs.err()
	}
	l.cols, l.nfields = map[string]int{}, len(header)
	for i, h := range header {
		name := strings.ToLower(strings.TrimSpace(h))
		switch {
		case name == "":
			bad("", fmt.Errorf("column %d has no name in the header", i+1))
		case !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl):
			bad("", fmt.Errorf("column %d has a name that is not text", i+1))
		case !known[name]:
			bad(name, fmt.Errorf("unknown column; the columns are %s, and optionally %s",
				strings.Join(requiredColumns, ","), strings.Join(optionalColumns, ",")))
		default:
			if _, dup := l.cols[name]; dup {
				bad(name, errors.New("named twice in the header"))
			}
		}
		l.cols[name] = i
	}
	for _, c := range requiredColumns {
		if _, ok := l.cols[c]; !ok {
			bad(c, errors.New("missing from the header; it is required"))
		}
	}
	return errs.err()
}

// blank reports whether every cell of a row is empty or spaces, as a
// spreadsheet writes its empty rows (",,,,").
func blank(rec []string) bool {
	for _, c := range rec {
		if strings.TrimSpace(c) != "" {
			return false
		}
	}
	return true
}

// account checks one row and builds its account. ok is false when the row
// has errors, which are recorded.
func (l *loader) account(line int, rec []string) (Account, bool) {
	a, ok := l.check(line, rec)
	if l.endRow() {
		return Account{}, false
	}
	return a, ok
}

// check is account before the row's errors are added to the file's.
func (l *loader) check(line int, rec []string) (Account, bool) {
	cell := l.cells(line, rec)
	a := Account{Line: line, Seen: l.d.Seen, Delete: l.d.Delete}
	a.Name = cell[colName]
	if a.Name == "" {
		a.Name = cell[colPOP3User] + "@" + cell[colPOP3Server]
	} else if len(a.Name) > maxNameLen {
		l.rowError(line, colName, fmt.Errorf("longer than %d bytes", maxNameLen))
	}
	folder := cell[colFolder]
	if folder == "" {
		folder = l.d.Folder
	}
	if folder == "" {
		folder = bridge.DefaultFolder
	}
	var err error
	if a.Folder, err = bridge.CanonicalFolder(folder); err != nil {
		l.rowError(line, colFolder, err)
	}
	if v := cell[colDelete]; v != "" {
		if a.Delete, err = parseYesNo(v); err != nil {
			l.rowError(line, colDelete, err)
		}
	}
	a.POP3 = l.endpoint(line, "pop3", cell, rec[l.cols[colPOP3Password]], l.d.POP3TLS, l.d.POP3Auth)
	a.IMAP = l.endpoint(line, "imap", cell, rec[l.cols[colIMAPPassword]], l.d.IMAPTLS, l.d.IMAPAuth)
	if len(l.row) > 0 || a.POP3 == nil || a.IMAP == nil {
		return Account{}, false
	}
	key := a.POP3.Addr + "\x00" + a.POP3.Username
	if first, dup := l.seen[key]; dup {
		l.rowError(line, colPOP3User, &DuplicateError{Addr: a.POP3.Addr, User: a.POP3.Username, FirstLine: first})
		return Account{}, false
	}
	l.seen[key] = line
	a.ID = accountID(a.POP3, a.IMAP, a.Folder)
	return a, true
}

// cells returns the row's cells other than the passwords, by column,
// without surrounding spaces; a column the header lacks reads as "". Text
// that cannot be a host, user, mode or folder is an error and reads as "".
func (l *loader) cells(line int, rec []string) map[string]string {
	cell := make(map[string]string, len(l.cols))
	for col, i := range l.cols {
		if col == colPOP3Password || col == colIMAPPassword {
			continue
		}
		v := strings.TrimSpace(rec[i]) // the order of errors is endRow's
		switch {
		case !utf8.ValidString(v):
			l.rowError(line, col, errors.New("not valid UTF-8 (save the file as UTF-8)"))
		case strings.ContainsFunc(v, unicode.IsControl):
			l.rowError(line, col, errors.New("holds a control character, such as a line break"))
		default:
			cell[col] = v
		}
	}
	return cell
}

// endpoint builds one side of a row with bridge.EndpointSpec, the one
// builder that the flags and the bridge's configuration use too. It
// returns nil when the row has an error there, which is recorded; a
// default that cannot work is recorded in l.defaults, and stops Load.
func (l *loader) endpoint(line int, proto string, cell map[string]string, password, defTLS, defAuth string) *bridge.Endpoint {
	col := func(field string) string { return proto + "_" + field }
	secretFn, oauth2, ok := l.secret(line, proto, password)
	spec := bridge.EndpointSpec{
		Proto:             proto,
		Server:            lowerHost(cell[col("server")]),
		User:              cell[col("user")],
		TLS:               cell[col("tls")],
		Auth:              cell[col("auth")],
		AllowInsecureAuth: l.d.AllowInsecureAuth,
		Timeout:           l.d.Timeout,
		Secret:            secretFn,
		OAuth2:            oauth2,
	}
	if l.roots == nil {
		spec.CAFile = l.d.CAFile
	}
	fromDefault := map[string]bool{}
	if spec.TLS == "" {
		spec.TLS, fromDefault["tls"] = defTLS, true
	}
	if spec.Auth == "" {
		spec.Auth, fromDefault["auth"] = defAuth, true
	}
	ep, err := spec.Build()
	var serr *bridge.SpecError
	switch {
	case err == nil:
		if !ok {
			return nil
		}
		if spec.CAFile != "" {
			l.roots = ep.TLSConfig.RootCAs
		} else if l.roots != nil {
			ep.TLSConfig.RootCAs = l.roots
		}
		return ep
	case errors.As(err, &serr) && (serr.Field == "ca_file" || serr.Field == "timeout"):
		l.defaultsErr(serr.Field, serr.Err)
	case errors.As(err, &serr) && fromDefault[serr.Field]:
		l.defaultsErr(col(serr.Field), serr.Err)
	case errors.As(err, &serr) && serr.Field == "tls":
		l.rowError(line, col("tls"), &withoutValue{err: serr.Err, value: spec.TLS})
	case errors.As(err, &serr) && serr.Field == "auth":
		l.rowError(line, col("auth"), &withoutValue{err: serr.Err, value: spec.Auth})
	case errors.As(err, &serr):
		l.rowError(line, col(serr.Field), serr.Err)
	case errors.Is(err, bridge.ErrInsecureAuth):
		hint := ""
		if proto == "pop3" {
			hint = " (or pop3_auth to apop, which sends only a digest)"
		}
		l.rowError(line, col("tls"), fmt.Errorf("%w; set %s to implicit or starttls%s, or pass --allow-insecure-auth if you accept that the password can be read on the network",
			bridge.ErrInsecureAuth, col("tls"), hint))
	default:
		l.rowError(line, "", err)
	}
	return nil
}

// defaultsErr records a default that cannot work. It is reported alone:
// every row that relies on it fails alike, and the fix is one flag.
func (l *loader) defaultsErr(setting string, err error) {
	if l.defaults == nil {
		l.defaults = &DefaultsError{Setting: setting, Err: err}
	}
}

// secret turns a password cell into the function that yields it at each
// login. A reference is opened now, so a variable that is not set or a
// file that is missing or open to others is found before anything runs.
// Its errors never repeat the cell.
func (l *loader) secret(line int, proto, cell string) (fn bridge.SecretFunc, oauth2, ok bool) {
	col := proto + "_password"
	what := strings.ToUpper(proto) + " password"
	ref, literal, isRef := secret.ParseCell(cell)
	if isRef {
		src, err := ref.Open(secret.Options{What: what, BaseDir: l.dir, Timeout: l.d.SecretTimeout})
		if err != nil {
			l.rowError(line, col, err)
			return nil, false, false
		}
		return src.Resolve, ref.OAuth2(), true
	}
	switch {
	case literal == "":
		l.rowError(line, col, errors.New("empty; write the password, or env:VAR, file:PATH or cmd:COMMAND"))
		return nil, false, false
	case strings.ContainsAny(literal, "\r\n\x00"):
		l.rowError(line, col, errors.New("the password holds a line break or a NUL, which no login can carry"))
		return nil, false, false
	}
	return func(context.Context) (string, error) { return literal, nil }, false, true
}

// lowerHost lower-cases the host of HOST or HOST:PORT: host names are not
// case-sensitive, and one mailbox must have one identity however its host
// is spelt.
func lowerHost(server string) string { return strings.ToLower(server) }

// parseYesNo reads the delete column.
func parseYesNo(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "true", "yes", "1":
		return true, nil
	case "false", "no", "0":
		return false, nil
	}
	return false, errors.New("not yes or no (write true, false, yes, no, 1 or 0, or leave it empty for the default)")
}

// withoutValue is the error of a cell whose values are a closed set (a TLS
// mode, a login mechanism), without the cell's value in its text. A row
// error names its line and column, which find the cell; the value is left
// out because, in a file whose header does not match its rows, it may be a
// password that landed in the wrong column.
type withoutValue struct {
	err   error
	value string
}

func (e *withoutValue) Error() string {
	msg := e.err.Error()
	if e.value == "" {
		return msg
	}
	q := strconv.Quote(e.value)
	msg = strings.ReplaceAll(msg, " "+q, "")
	return strings.ReplaceAll(msg, e.value, "…")
}

func (e *withoutValue) Unwrap() error { return e.err }
