package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/pop2imap/pop2imap/bridge"
	"github.com/pop2imap/pop2imap/internal/batch"
	"github.com/pop2imap/pop2imap/internal/daemon"
	"github.com/pop2imap/pop2imap/internal/errkind"
	"github.com/pop2imap/pop2imap/internal/oauthtoken"
	"github.com/pop2imap/pop2imap/internal/secret"
	"github.com/pop2imap/pop2imap/pop3"
	"github.com/pop2imap/pop2imap/state"
)

// Exit codes, as documented in the README and the usage text.
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitLeftBehind  = 3
	exitInterrupted = 130
)

// usageError is a mistake on the command line or in the config file.
type usageError struct {
	msg string
	cmd string // the subcommand, for the hint; set by run
	err error  // the cause, if any
}

func (e *usageError) Error() string           { return e.msg }
func (e *usageError) Unwrap() error           { return e.err }
func (e *usageError) ErrorKind() errkind.Kind { return errkind.Usage }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// settingError is a setting that can never work as given, found before or
// while connecting: a path that cannot be written, an address that cannot
// be listened on. It carries the advice that fits it.
type settingError struct {
	setting string // the flag or key, e.g. "--report"
	hint    string // what to do about it
	err     error
}

func (e *settingError) Error() string           { return e.setting + ": " + e.err.Error() }
func (e *settingError) Unwrap() error           { return e.err }
func (e *settingError) ErrorKind() errkind.Kind { return errkind.Config }

// errLeftBehind ends a run that finished but could not copy some messages.
type errLeftBehind struct{ n int64 }

func (e *errLeftBehind) Error() string {
	return fmt.Sprintf("%d messages were refused by the IMAP server and left on the POP3 server; see the log or --report for which and why", e.n)
}

// exitCode maps an error to the documented exit code by its kind: the
// user's mistakes (usage and settings) exit 2.
func exitCode(err error) int {
	var lb *errLeftBehind
	var bi *errBatchIncomplete
	switch k := errkind.Of(err); {
	case err == nil:
		return exitOK
	case k == errkind.Canceled:
		return exitInterrupted
	case k.UserError():
		return exitUsage
	case errors.As(err, &lb), errors.As(err, &bi):
		return exitLeftBehind
	}
	return exitError
}

// explain turns an error into the one line the user sees: what went wrong,
// then what to do about it.
func explain(err error) string {
	var (
		ue     *usageError
		se     *settingError
		lb     *errLeftBehind
		auth   *bridge.AuthError
		conn   *bridge.ConnectError
		lock   *state.LockedError
		bad    *state.CorruptError
		jerr   *bridge.JournalError
		perr   *pop3.Error
		uaerr  x509.UnknownAuthorityError
		hnerr  x509.HostnameError
		cierr  x509.CertificateInvalidError
		tlsv   *tls.CertificateVerificationError
		cfgErr *daemon.ConfigError
		vm     *verifyMismatchError
		ierr   *imap.Error
		tpe    *bridge.TLSPortError
		rec    tls.RecordHeaderError
		oerr   *oauthtoken.Error
	)
	hint := ""
	var rows *batch.RowErrors
	switch {
	case errors.As(err, &rows):
		n := len(rows.Errs) + rows.More
		return fmt.Sprintf("pop2imap: the accounts file has %d %s, so nothing was run; fix %s, then rerun:\n  %s",
			n, plural(n, "error", "errors"), plural(n, "it", "them all"), strings.ReplaceAll(rows.Error(), "\n", "\n  "))
	case errors.As(err, new(*secret.PermissionError)):
		return "pop2imap: " + err.Error() // it says what to run
	case errors.As(err, new(*batch.FileError)):
		hint = "check the --accounts path"
	case errors.As(err, &cfgErr):
		hint = "fix the file, then check it with 'pop2imap bridge --config FILE --check'"
	case errors.As(err, &ue) && ue.cmd != "":
		hint = "run 'pop2imap " + ue.cmd + " --help' for the flags"
	case errors.As(err, &ue):
		hint = "run 'pop2imap help' for the commands"
	case errors.As(err, &se):
		hint = se.hint
	case errkind.Of(err) == errkind.Canceled:
		return "pop2imap: interrupted; the journal is consistent, so rerun the same command to continue"
	case errors.As(err, &lb):
		hint = "rerun after fixing the cause; messages already copied are skipped"
	case errors.As(err, &lock), errors.As(err, &bad), errors.As(err, new(*errBatchIncomplete)):
		return "pop2imap: " + err.Error()
	case errors.As(err, &vm):
		hint = "run migrate again to copy what is missing (-); a message marked * has a copy with different bytes in the folder; a + is an extra copy that migrate never removes (see README, \"Removing duplicates\")"
	case errors.As(err, &jerr):
		hint = "nothing unrecorded was deleted; free disk space or fix the state directory, then rerun"
	case errors.Is(err, bridge.ErrOverQuota):
		hint = "free space in the IMAP account, then rerun: copying resumes where it stopped"
	case errors.Is(err, bridge.ErrInsecureAuth):
		hint = "use --pop3-tls/--imap-tls implicit or starttls, or pass --allow-insecure-auth if you accept that the password can be read on the network"
	case errors.Is(err, bridge.ErrLoginDisabled), errors.As(err, &ierr) && ierr.Code == imap.ResponseCodePrivacyRequired:
		hint = "the server accepts passwords only over TLS: use --imap-tls implicit or starttls"
	case errors.As(err, &oerr):
		hint = oerr.Hint()
	case errors.As(err, &auth) && auth.Mech.OAuth2():
		hint = fmt.Sprintf("check that the access token (--%s-oauth2-token-file or -cmd) is for this account with the mail scope, and that %s access is enabled for the account",
			auth.Proto, upper(auth.Proto))
	case errors.As(err, &auth):
		hint = fmt.Sprintf("check the %s password and that %s access is enabled for the account (Gmail and Microsoft 365 need an app password or OAuth2)",
			upper(auth.Proto), upper(auth.Proto))
	case errors.As(err, &cierr) && cierr.Reason == x509.Expired:
		hint = "the server's certificate has expired (or this computer's clock is wrong); its administrator must renew it"
	case errors.As(err, &uaerr), errors.As(err, &cierr):
		hint = "if the server uses a private or self-signed CA, pass its certificate with --ca-file"
	case errors.As(err, &hnerr):
		hint = "connect by the name on the certificate, or set --tls-server-name when connecting by IP address"
	case errors.As(err, &tlsv):
		hint = "check the server's certificate, or pass its CA with --ca-file"
	case errors.As(err, &perr) && perr.Code == "IN-USE":
		hint = "another client holds the POP3 mailbox; close other mail programs and rerun"
	case errors.As(err, &perr) && perr.Code == "LOGIN-DELAY":
		hint = "the server limits how often you may log in; wait and rerun"
	case errors.As(err, &conn) && (conn.Op == "password" || conn.Op == "access token"):
		hint = "run the password or token command by hand to see why it failed"
	case errors.As(err, &conn) && conn.Op == "login" && conn.Temporary():
		hint = "the server refused or did not answer for now; wait a while and rerun"
	case errors.As(err, &tpe):
		hint = fmt.Sprintf("or keep --%s-tls and connect to the plain-text port (%s)", tpe.Proto, plainPort(tpe.Proto))
	case errors.As(err, &conn) && conn.Op == "greeting":
		hint = fmt.Sprintf("the server does not speak %s as expected there: check the host, the port and --%s-tls", upper(conn.Proto), conn.Proto)
	case errors.As(err, &conn) && conn.Op == "tls" && errors.As(err, &rec):
		hint = fmt.Sprintf("use --%s-tls starttls (or none) on this port, or connect to the implicit-TLS port (%s)", conn.Proto, tlsPort(conn.Proto))
	case errors.As(err, &conn) && conn.Op == "tls":
		hint = "check --pop3-tls/--imap-tls and the port (implicit uses 995/993, the others 110/143)"
	case errors.As(err, &conn) && conn.Op == "dial":
		hint = "check the host and port, and the --pop3-tls/--imap-tls mode (implicit uses 995/993, the others 110/143)"
	default:
		hint = kindHint(errkind.Of(err))
	}
	if hint == "" {
		return "pop2imap: " + err.Error()
	}
	return "pop2imap: " + err.Error() + "; " + hint
}

// advice is what explain says to do about err, without the error itself:
// the status page shows it beside the error.
func advice(err error) string {
	s := strings.TrimPrefix(explain(err), "pop2imap: "+err.Error())
	return strings.TrimPrefix(s, "; ")
}

// kindHint is the advice for an error that no more particular case above
// explains. Only a failure that a rerun can mend is told to rerun.
func kindHint(k errkind.Kind) string {
	switch k {
	case errkind.Config:
		return "fix the setting named above, then rerun"
	case errkind.Usage:
		return "run 'pop2imap help' for the commands"
	case errkind.Auth:
		return "check the user name and the password"
	case errkind.TLS:
		return "check the server's certificate and the --pop3-tls/--imap-tls mode"
	case errkind.Unreachable:
		return "check the host and port"
	case errkind.Protocol:
		return "the server does not follow the protocol; tell its administrator (mail already copied stays recorded)"
	case errkind.Journal:
		return "nothing unrecorded was deleted; fix the state directory, then rerun"
	case errkind.InUse, errkind.LoginDelay, errkind.Throttled:
		return "the server refused for now; wait a while and rerun"
	}
	return "rerun the same command to continue: progress is saved in the journal"
}

func plainPort(proto string) string {
	if proto == "imap" {
		return "143"
	}
	return "110"
}

func tlsPort(proto string) string {
	if proto == "imap" {
		return "993"
	}
	return "995"
}

func upper(proto string) string {
	switch proto {
	case "pop3":
		return "POP3"
	case "imap":
		return "IMAP"
	}
	return proto
}

// strayArguments refuses arguments left after the flags. It never repeats
// them: the likeliest stray argument is a password, which must not end up
// on the terminal's screen, in a log or in a CI transcript.
func strayArguments(n int) error {
	return usageErrorf("%d unexpected argument(s) after the flags, not shown in case one is a password (passwords are never given on the command line)", n)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
