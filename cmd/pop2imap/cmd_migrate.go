package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/pop2imap/pop2imap/bridge"
	"github.com/pop2imap/pop2imap/state"
)

// connOptions holds the flags that say how to reach and log in to both
// servers. Every command that talks to the servers shares them.
type connOptions struct {
	POP3, POP3User, POP3TLS           string
	IMAP, IMAPUser, IMAPTLS           string
	POP3PasswordFile, POP3PasswordCmd string
	IMAPPasswordFile, IMAPPasswordCmd string
	POP3TokenCmd, IMAPTokenCmd        string // print OAuth2 access tokens
	POP3TokenFile, IMAPTokenFile      string // OAuth2 token files written by `pop2imap login`
	POP3Auth, IMAPAuth                string // forced login mechanisms, or "auto"
	CAFile, TLSServerName             string
	AllowInsecureAuth                 bool
	Folder                            string
	Timeout                           time.Duration
}

// migrateOptions holds the flags of `pop2imap migrate`.
type migrateOptions struct {
	connOptions
	Delete, DryRun, Seen bool
	Limit                int
	State, Report        string
	Progress, LogFormat  string
	Verbose              bool
	Stats                bool
	IMAPConns, Window    int
	MaxMessageSize       sizeValue
}

// AddFlags registers the connection flags on fs.
func (o *connOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.POP3, "pop3", "", "POP3 server `HOST[:PORT]` (port 995 with implicit TLS, else 110)")
	fs.StringVar(&o.POP3User, "pop3-user", "", "POP3 user name")
	fs.StringVar(&o.POP3TLS, "pop3-tls", "implicit", "POP3 TLS mode: implicit, starttls or none")
	fs.StringVar(&o.POP3PasswordFile, "pop3-password-file", "", "read the POP3 password from `FILE` (first line)")
	fs.StringVar(&o.POP3PasswordCmd, "pop3-password-cmd", "", "run `COMMAND` and use the first line it prints as the POP3 password")
	fs.StringVar(&o.POP3TokenCmd, "pop3-oauth2-token-cmd", "", "run `COMMAND` at each login and use the first line it prints as an OAuth2 access token for POP3 (implies XOAUTH2)")
	fs.StringVar(&o.POP3TokenFile, "pop3-oauth2-token-file", "", "take OAuth2 access tokens for POP3 from `FILE`, written by 'pop2imap login' and refreshed as needed (implies XOAUTH2)")
	fs.StringVar(&o.POP3Auth, "pop3-auth", "auto", "POP3 login `MECHANISM`: auto, user, apop, plain, login, xoauth2 or oauthbearer")
	fs.StringVar(&o.IMAP, "imap", "", "IMAP server `HOST[:PORT]` (port 993 with implicit TLS, else 143)")
	fs.StringVar(&o.IMAPUser, "imap-user", "", "IMAP user name")
	fs.StringVar(&o.IMAPTLS, "imap-tls", "implicit", "IMAP TLS mode: implicit, starttls or none")
	fs.StringVar(&o.IMAPPasswordFile, "imap-password-file", "", "read the IMAP password from `FILE` (first line)")
	fs.StringVar(&o.IMAPPasswordCmd, "imap-password-cmd", "", "run `COMMAND` and use the first line it prints as the IMAP password")
	fs.StringVar(&o.IMAPTokenCmd, "imap-oauth2-token-cmd", "", "run `COMMAND` at each login and use the first line it prints as an OAuth2 access token for IMAP (implies XOAUTH2)")
	fs.StringVar(&o.IMAPTokenFile, "imap-oauth2-token-file", "", "take OAuth2 access tokens for IMAP from `FILE`, written by 'pop2imap login' and refreshed as needed (implies XOAUTH2)")
	fs.StringVar(&o.IMAPAuth, "imap-auth", "auto", "IMAP login `MECHANISM`: auto, login, plain, xoauth2 or oauthbearer")
	fs.StringVar(&o.CAFile, "ca-file", "", "trust the PEM certificates in `FILE` in addition to the system roots")
	fs.StringVar(&o.TLSServerName, "tls-server-name", "", "verify certificates against `NAME` (for servers reached by IP address)")
	fs.BoolVar(&o.AllowInsecureAuth, "allow-insecure-auth", false, "allow sending passwords unencrypted to hosts other than loopback")
	fs.StringVar(&o.Folder, "folder", bridge.DefaultFolder, "target IMAP `FOLDER`, created if missing")
	fs.DurationVar(&o.Timeout, "timeout", bridge.DefaultTimeout, "deadline for each command on the wire (0: one minute)")
}

// AddFlags registers the flags of migrate on fs.
func (o *migrateOptions) AddFlags(fs *pflag.FlagSet) {
	o.connOptions.AddFlags(fs)
	fs.BoolVar(&o.Delete, "delete", false, "DELE each message once its append is confirmed and recorded (default: keep)")
	fs.BoolVar(&o.DryRun, "dry-run", false, "connect, list, and print what would be copied and deleted; change nothing anywhere")
	fs.IntVar(&o.Limit, "limit", 0, "copy at most `N` new messages in this run (0: all)")
	fs.BoolVar(&o.Seen, "seen", false, `store appended messages as \Seen`)
	fs.StringVar(&o.State, "state", "", "journal `FILE` (default: one per account pair under $XDG_STATE_HOME/pop2imap)")
	fs.StringVar(&o.Report, "report", "", "write a JSON summary to `FILE`")
	fs.StringVar(&o.Progress, "progress", "auto", "progress bar: auto (on a terminal), always or never")
	fs.StringVar(&o.LogFormat, "log-format", "text", "log format on stderr: text or json")
	fs.BoolVarP(&o.Verbose, "verbose", "v", false, "log every message copied and deleted")
	fs.BoolVar(&o.Stats, "stats", false, "print where the time went: set-up, RETR, APPEND, the journal, messages in flight, the round trip")
	fs.IntVar(&o.IMAPConns, "imap-conns", bridge.DefaultIMAPConns, fmt.Sprintf("parallel IMAP connections (1 to %d)", bridge.MaxIMAPConns))
	fs.IntVar(&o.Window, "pop3-window", bridge.DefaultWindow, "RETR commands in flight when the POP3 server allows pipelining")
	o.MaxMessageSize = bridge.DefaultMaxMessageSize
	fs.Var(&o.MaxMessageSize, "max-message-size", "leave messages larger than `SIZE` (e.g. 256MiB) on the POP3 server; the IMAP server's APPENDLIMIT lowers it")
}

func runMigrateCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o migrateOptions
	fs, err := parseFlags("migrate", args, stderr, o.AddFlags,
		"Usage: pop2imap migrate --pop3 HOST[:PORT] --pop3-user USER --imap HOST[:PORT] --imap-user USER [flags]\n")
	if fs == nil {
		return err
	}
	pop3Secret, imapSecret, err := o.secrets()
	if err != nil {
		return err
	}
	return runMigrate(ctx, &o, pop3Secret, imapSecret, stdout, stderr)
}

func (o *connOptions) secrets() (pop3Secret, imapSecret bridge.SecretFunc, err error) {
	pop3Secret, err = secretSource{what: "POP3 password", envVar: "POP2IMAP_POP3_PASSWORD",
		file: o.POP3PasswordFile, command: o.POP3PasswordCmd, tokenCommand: o.POP3TokenCmd,
		tokenFile: o.POP3TokenFile, oauth2: isOAuth2Mech(o.POP3Auth), flagFor: "--pop3", timeout: o.Timeout}.resolve()
	if err != nil {
		return nil, nil, err
	}
	imapSecret, err = secretSource{what: "IMAP password", envVar: "POP2IMAP_IMAP_PASSWORD",
		file: o.IMAPPasswordFile, command: o.IMAPPasswordCmd, tokenCommand: o.IMAPTokenCmd,
		tokenFile: o.IMAPTokenFile, oauth2: isOAuth2Mech(o.IMAPAuth), flagFor: "--imap", timeout: o.Timeout}.resolve()
	return pop3Secret, imapSecret, err
}

// endpoints checks the connection flags and builds both endpoints.
func (o *connOptions) endpoints(pop3Secret, imapSecret bridge.SecretFunc) (*bridge.Endpoint, *bridge.Endpoint, error) {
	for _, req := range []struct{ val, flag string }{
		{o.POP3, "--pop3"}, {o.POP3User, "--pop3-user"}, {o.IMAP, "--imap"}, {o.IMAPUser, "--imap-user"},
	} {
		if req.val == "" {
			return nil, nil, usageErrorf("missing %s", req.flag)
		}
	}
	if o.Timeout < 0 {
		return nil, nil, usageErrorf("--timeout must not be negative (0 means the default of one minute)")
	}
	folder, err := bridge.CanonicalFolder(o.Folder)
	if err != nil {
		return nil, nil, usageErrorf("--folder: %v", err)
	}
	o.Folder = folder
	// A flag for each field of the one EndpointSpec builder.
	flagFor := func(e *bridge.SpecError) string {
		switch e.Field {
		case "server":
			return "--" + e.Proto
		case "ca_file":
			return "--ca-file"
		}
		return "--" + e.Proto + "-" + e.Field
	}
	build := func(spec bridge.EndpointSpec) (*bridge.Endpoint, error) {
		ep, err := spec.Build()
		var serr *bridge.SpecError
		if errors.As(err, &serr) && serr.Value != "" {
			return nil, usageErrorf("%s %s: %v", flagFor(serr), serr.Value, serr.Err)
		}
		if errors.As(err, &serr) {
			return nil, usageErrorf("%s: %v", flagFor(serr), serr.Err)
		}
		return ep, err
	}
	pop3, err := build(bridge.EndpointSpec{Proto: "pop3", Server: o.POP3, User: o.POP3User, TLS: o.POP3TLS,
		Auth: o.POP3Auth, CAFile: o.CAFile, TLSServerName: o.TLSServerName, AllowInsecureAuth: o.AllowInsecureAuth,
		Timeout: o.Timeout, Secret: pop3Secret, OAuth2: o.POP3TokenCmd != "" || o.POP3TokenFile != ""})
	if err != nil {
		return nil, nil, err
	}
	imap, err := build(bridge.EndpointSpec{Proto: "imap", Server: o.IMAP, User: o.IMAPUser, TLS: o.IMAPTLS,
		Auth: o.IMAPAuth, CAFile: o.CAFile, TLSServerName: o.TLSServerName, AllowInsecureAuth: o.AllowInsecureAuth,
		Timeout: o.Timeout, Secret: imapSecret, OAuth2: o.IMAPTokenCmd != "" || o.IMAPTokenFile != ""})
	if err != nil {
		return nil, nil, err
	}
	return pop3, imap, nil
}

// journalFor is --state when given, or else the default journal of this
// pair of endpoints and folder: migrate, verify and the one-account bridge
// agree on it.
func journalFor(explicit, folder string, pop3, imap *bridge.Endpoint) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	path, err := state.DefaultPath(pop3.Addr, pop3.Username, imap.Addr, imap.Username, folder)
	if err != nil {
		return "", fmt.Errorf("finding the state directory: %w (set --state)", err)
	}
	return path, nil
}

// runMigrate runs one migration with resolved secrets. The demo calls it too,
// so the demo exercises exactly the code a real migration runs.
func runMigrate(ctx context.Context, o *migrateOptions, pop3Secret, imapSecret bridge.SecretFunc, stdout, stderr io.Writer) error {
	pop3, imap, err := o.endpoints(pop3Secret, imapSecret)
	if err != nil {
		return err
	}
	if o.IMAPConns < 1 || o.IMAPConns > bridge.MaxIMAPConns {
		return usageErrorf("--imap-conns must be between 1 and %d", bridge.MaxIMAPConns)
	}
	if o.Limit < 0 {
		return usageErrorf("--limit must be 0 (all) or more")
	}
	if o.Window < 1 {
		return usageErrorf("--pop3-window must be 1 or more")
	}

	logger, err := newLogger(o.LogFormat, o.Verbose, stderr)
	if err != nil {
		return err
	}
	if o.Progress != "auto" && o.Progress != "always" && o.Progress != "never" {
		return usageErrorf("--progress must be auto, always or never")
	}

	journalPath, err := journalFor(o.State, o.Folder, pop3, imap)
	if err != nil {
		return err
	}
	// Every output path is checked before anything connects, so that a
	// typo fails at once instead of after the whole mailbox was copied.
	if err := checkJournalPath("--state", journalPath); err != nil {
		return err
	}
	if o.Report != "" {
		if err := checkOutputFile("--report", o.Report); err != nil {
			return err
		}
	}
	// The journal is opened once both logins have succeeded (a typo in a
	// host or password leaves no journal behind), or never by a dry run
	// that finds none.
	var journal *state.Journal
	openJournal := func() (*state.Journal, error) {
		j, err := state.Open(journalPath)
		if err == nil {
			journal = j
			warnRepaired(logger, j)
		}
		return j, err
	}
	if _, statErr := os.Stat(journalPath); o.DryRun && statErr != nil {
		openJournal = nil
	}
	defer func() {
		if journal != nil {
			journal.Close()
		}
	}()

	stats := &bridge.Stats{}
	rep := newReport(o, journalPath)
	m := &bridge.Migrator{
		Config: bridge.Config{
			Folder: o.Folder, Delete: o.Delete, DryRun: o.DryRun, Limit: o.Limit, Seen: o.Seen,
			IMAPConns: o.IMAPConns, Window: o.Window, Timeout: o.Timeout,
			MaxMessageSize: int64(o.MaxMessageSize),
		},
		POP3: pop3, IMAP: imap, OpenJournal: openJournal, Stats: stats,
	}
	plan := &dryRunPlan{}
	m.OnEvent = func(e bridge.Event) {
		e.Log(logger)
		rep.add(e)
		if e.Kind == bridge.EventWouldDelete {
			plan.deletes.Add(1)
			plan.deleteBytes.Add(e.Size)
		}
		if o.DryRun && (e.Kind == bridge.EventWouldCopy || e.Kind == bridge.EventWouldDelete) {
			fmt.Fprintf(stdout, "%s\t%d\t%s\t%d bytes\n", e.Kind, e.Number, e.UIDL, e.Size)
		}
	}
	logger.Info("starting", "pop3", pop3.Addr, "pop3_user", o.POP3User, "imap", imap.Addr,
		"imap_user", o.IMAPUser, "folder", o.Folder, "delete", o.Delete, "dry_run", o.DryRun, "journal", journalPath)

	start := time.Now()
	prog := startProgress(o.Progress, stats, stderr, logger)
	runErr := m.Run(ctx)
	prog.stop()
	elapsed := time.Since(start)

	if runErr == nil && stats.LeftBehind.Load() > 0 {
		runErr = &errLeftBehind{stats.LeftBehind.Load()}
	}
	// A run that failed before it changed anything has nothing to sum
	// up; the error line says what happened.
	if runErr == nil || copiedCount(stats)+stats.Deleted.Load() > 0 {
		printSummary(stdout, stats, elapsed, o.DryRun, plan)
		if o.Stats {
			printStats(stdout, stats)
		}
	}
	if o.Verbose {
		logStats(logger, stats)
	}
	if o.Report != "" {
		if err := rep.write(o.Report, stats, elapsed, runErr); err != nil {
			logger.Error("could not write the report", "file", o.Report, "err", err)
			if runErr == nil {
				runErr = err
			}
		}
	}
	return runErr
}

// warnRepaired says in one line what Open cut off a damaged journal, and
// what the run does about it. It is never silent.
func warnRepaired(logger *slog.Logger, j *state.Journal) {
	if r := j.Repaired(); r != nil {
		logger.Warn(r.String())
	}
}

func newLogger(format string, verbose bool, w io.Writer) (*slog.Logger, error) {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageErrorf("--log-format must be text or json")
}
