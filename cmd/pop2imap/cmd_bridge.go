package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/pop2imap/pop2imap/bridge"
	"github.com/pop2imap/pop2imap/internal/daemon"
	"github.com/pop2imap/pop2imap/internal/fleet"
)

// minInterval is the floor under --interval and the file's intervals unless
// --once; tests that watch several cycles lower it.
var minInterval = daemon.MinInterval

// bridgeOptions holds the flags of `pop2imap bridge`.
type bridgeOptions struct {
	connOptions
	fleetOptions
	Config               string
	Interval, MaxBackoff time.Duration
	Keep, Delete         bool
	DeleteAfter          time.Duration
	Baseline, Seen       bool
	State                string
	LogFormat            string
	Verbose              bool
	MetricsAddr          string
	HealthIntervals      int
	MaxMessageSize       sizeValue
	Once, Check          bool
	connFlags            *pflag.FlagSet // the connection flags, to tell which were given
}

const bridgeUsage = `Usage:
  pop2imap bridge --pop3 HOST[:PORT] --pop3-user USER --imap HOST[:PORT] --imap-user USER [flags]
  pop2imap bridge --config FILE [flags]

Polls the POP3 mailbox every --interval and copies new mail into the IMAP
folder, exactly once, until stopped. SIGTERM or Ctrl-C finishes the current
messages and exits 0; SIGHUP re-reads --config.

Flags:
`

// AddFlags registers the flags of bridge on fs.
func (o *bridgeOptions) AddFlags(fs *pflag.FlagSet) {
	o.connFlags = pflag.NewFlagSet("connection", pflag.ContinueOnError)
	o.connOptions.AddFlags(o.connFlags)
	fs.AddFlagSet(o.connFlags)
	fs.StringVar(&o.Config, "config", "", "read the accounts from the TOML `FILE` instead of the connection flags")
	o.Interval, o.MaxBackoff = daemon.DefaultInterval, daemon.DefaultMaxBackoff
	fs.Var(durationFlag{&o.Interval}, "interval", "time between cycles of an account (5m, 90s, 1h; jittered by 10%)")
	fs.Var(durationFlag{&o.MaxBackoff}, "max-backoff", "longest wait after failed cycles")
	fs.BoolVar(&o.Keep, "keep", false, "keep copied messages on the POP3 server (the default)")
	fs.BoolVar(&o.Delete, "delete", false, "DELE each message once its append is confirmed and recorded")
	fs.Var(durationFlag{&o.DeleteAfter}, "delete-after", "DELE a copied message this long after its append was confirmed (e.g. 7d)")
	fs.BoolVar(&o.Baseline, "baseline", false, "at the first cycle, record the mail already on the server as done without copying it (only when the journal is empty)")
	fs.BoolVar(&o.Seen, "seen", false, `store appended messages as \Seen`)
	fs.StringVar(&o.State, "state", "", "journal `FILE` (default: one per account pair under $XDG_STATE_HOME/pop2imap)")
	fs.StringVar(&o.LogFormat, "log-format", "text", "log format on stderr: text or json")
	fs.BoolVarP(&o.Verbose, "verbose", "v", false, "log every message copied and deleted")
	fs.StringVar(&o.MetricsAddr, "metrics-addr", "", "serve a status page at /, /metrics and /healthz on `HOST:PORT`, e.g. 127.0.0.1:9465 (default: off)")
	fs.IntVar(&o.HealthIntervals, "health-intervals", daemon.DefaultHealthIntervals, "/healthz fails for an account with no successful cycle in this many intervals")
	o.MaxMessageSize = bridge.DefaultMaxMessageSize
	fs.Var(&o.MaxMessageSize, "max-message-size", "leave messages larger than `SIZE` (e.g. 256MiB) on the POP3 server; the IMAP server's APPENDLIMIT lowers it")
	o.fleetOptions.AddFlags(fs)
	fs.BoolVar(&o.Once, "once", false, "run one cycle of each account and exit")
	fs.BoolVar(&o.Check, "check", false, "check the flags or the config file, print the accounts and exit")
}

func runBridgeCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseBridgeFlags(args, stderr)
	if err != nil || o == nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	return runBridge(ctx, o, hup, stdout, stderr)
}

// parseBridgeFlags returns nil options and no error for --help.
func parseBridgeFlags(args []string, stderr io.Writer) (*bridgeOptions, error) {
	var o bridgeOptions
	fs, err := parseFlags("bridge", args, stderr, o.AddFlags, bridgeUsage)
	if fs == nil {
		return nil, err
	}
	if err := o.fleetOptions.check(); err != nil {
		return nil, err
	}
	policies := 0
	for _, set := range []bool{o.Keep, o.Delete, fs.Changed("delete-after")} {
		if set {
			policies++
		}
	}
	switch {
	case policies > 1:
		return nil, usageErrorf("--keep, --delete and --delete-after exclude each other")
	case fs.Changed("delete-after") && o.DeleteAfter <= 0:
		return nil, usageErrorf("--delete-after must be positive, e.g. 7d or 36h")
	case o.Interval <= 0:
		return nil, usageErrorf("--interval must be positive")
	case o.Interval < minInterval && !o.Once:
		return nil, usageErrorf("--interval %s is below the floor of %s, which keeps the bridge from hammering the server (use --once for a single cycle)",
			daemon.FormatDuration(o.Interval), daemon.FormatDuration(minInterval))
	case o.MaxBackoff <= 0:
		return nil, usageErrorf("--max-backoff must be positive")
	case o.HealthIntervals < 1:
		return nil, usageErrorf("--health-intervals must be 1 or more")
	case o.LogFormat != "text" && o.LogFormat != "json":
		return nil, usageErrorf("--log-format must be text or json")
	}
	if o.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(o.MetricsAddr); err != nil {
			return nil, &usageError{msg: fmt.Sprintf("--metrics-addr %q: want HOST:PORT, e.g. 127.0.0.1:9465", o.MetricsAddr), err: err}
		}
	}
	if o.Config != "" {
		// With a file, each account says these itself; a flag beside it
		// would silently apply to one account or to all.
		var given []string
		o.connFlags.VisitAll(func(f *pflag.Flag) {
			if f.Changed && f.Name != "timeout" {
				given = append(given, "--"+f.Name)
			}
		})
		for _, name := range []string{"keep", "delete", "delete-after", "seen", "state"} {
			if fs.Changed(name) {
				given = append(given, "--"+name)
			}
		}
		if len(given) > 0 {
			return nil, usageErrorf("%s cannot be combined with --config: set it for each account in the file", given[0])
		}
	}
	return &o, nil
}

// runBridge runs the bridge until ctx is cancelled, re-reading the config
// file whenever hup delivers.
func runBridge(ctx context.Context, o *bridgeOptions, hup <-chan os.Signal, stdout, stderr io.Writer) error {
	logger, err := newLogger(o.LogFormat, o.Verbose, stderr)
	if err != nil {
		return err
	}
	accounts, warnings, err := o.accounts()
	if err != nil {
		return err
	}
	for _, a := range accounts {
		if err := checkJournalPath(journalSetting(o, a), a.Journal); err != nil && o.Check {
			warnings = append(warnings, err.Error()+"; check it where the service runs")
		} else if err != nil {
			return err
		}
	}
	needs := make([]fleet.Need, len(accounts))
	for i, a := range accounts {
		needs[i] = fleet.Need{POP3: a.POP3, IMAP: a.IMAP, Appenders: appenders(a.Bridge)}
	}
	runner, err := o.fleetOptions.runner(needs)
	if err != nil {
		return err
	}
	if o.Check {
		printAccounts(stdout, accounts)
		for _, w := range warnings {
			fmt.Fprintln(stdout, "warning:", w)
		}
		return nil
	}
	svc := daemon.New(daemon.Options{Logger: logger, HealthIntervals: o.HealthIntervals, Advice: advice, Runner: runner})

	// The metrics address is taken before the first cycle, with --once
	// too, so that a wrong one fails at once rather than after a cycle.
	if o.MetricsAddr != "" {
		ln, err := net.Listen("tcp", o.MetricsAddr)
		if err != nil {
			return &settingError{setting: "--metrics-addr", err: err,
				hint: "choose a free HOST:PORT on this machine, e.g. 127.0.0.1:9465"}
		}
		if !daemon.IsLoopback(o.MetricsAddr) {
			logger.Warn("the metrics and health endpoints are reachable from other hosts; they show account names and mail counts, so listen on 127.0.0.1 or firewall the port",
				"addr", o.MetricsAddr)
		}
		srv := daemon.MetricsServer(svc.Handler())
		go srv.Serve(ln)
		defer func() {
			shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(shutdownCtx)
		}()
		logger.Info("serving metrics", "addr", ln.Addr().String(), "paths", "/ /metrics /healthz")
	}

	if o.Once {
		return onceResult(svc.RunOnce(ctx, accounts))
	}

	svc.Apply(ctx, accounts)
	logger.Info("bridge started", "accounts", len(accounts), "config", o.Config)
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-hup:
			if o.Config == "" {
				logger.Warn("SIGHUP ignored: there is no --config to reload")
				continue
			}
			next, _, err := o.accounts()
			if err != nil {
				logger.Error("reload failed; the running configuration stays", "err", err)
				continue
			}
			logger.Info("reloading", "config", o.Config, "accounts", len(next))
			svc.Apply(ctx, next)
		}
	}
	logger.Info("stopping: finishing the messages in hand")
	svc.Wait()
	logger.Info("bridge stopped")
	return nil
}

// accounts reads the config file, or builds the one account of the flags.
// With --check, the password references of the file that cannot be resolved
// here come back as warnings.
func (o *bridgeOptions) accounts() ([]daemon.Account, []string, error) {
	def := daemon.Defaults{Interval: o.Interval, MaxBackoff: o.MaxBackoff, Timeout: o.Timeout, Baseline: o.Baseline,
		MaxMessageSize: int64(o.MaxMessageSize), MinInterval: minInterval}
	if o.Once {
		def.MinInterval = 0
	}
	def.CheckOnly = o.Check
	if o.Config != "" {
		cfg, err := daemon.LoadConfig(o.Config, def)
		if err != nil {
			return nil, nil, &usageError{msg: err.Error(), err: err}
		}
		return cfg.Accounts, cfg.Warnings, nil
	}
	pop3Secret, imapSecret, err := o.secrets()
	if err != nil {
		return nil, nil, err
	}
	pop3, imap, err := o.endpoints(pop3Secret, imapSecret)
	if err != nil {
		return nil, nil, err
	}
	journal, err := journalFor(o.State, o.Folder, pop3, imap)
	if err != nil {
		return nil, nil, err
	}
	return []daemon.Account{{
		Name: "default",
		POP3: pop3,
		IMAP: imap,
		Bridge: bridge.Config{
			Folder: o.Folder, Delete: o.Delete, DeleteAfter: o.DeleteAfter, Seen: o.Seen, Timeout: o.Timeout,
			MaxMessageSize: int64(o.MaxMessageSize),
		},
		Journal:  journal,
		Baseline: o.Baseline,
		Policy:   daemon.Policy{Interval: o.Interval, MaxBackoff: o.MaxBackoff, Jitter: daemon.DefaultJitter},
	}}, nil, nil
}

// journalSetting names where an account's journal path was set, for errors.
func journalSetting(o *bridgeOptions, a daemon.Account) string {
	if o.Config != "" {
		return fmt.Sprintf("account %q: journal %s", a.Name, a.Journal)
	}
	return "--state"
}

func printAccounts(w io.Writer, accounts []daemon.Account) {
	for _, a := range accounts {
		fmt.Fprintf(w, "%s\n  pop3     %s@%s (%s)\n  imap     %s@%s (%s), folder %q\n  delete   %s\n  journal  %s\n  interval %s, baseline %t\n",
			a.Name, a.POP3.Username, a.POP3.Addr, a.POP3.TLS, a.IMAP.Username, a.IMAP.Addr, a.IMAP.TLS, a.Bridge.Folder,
			a.DeletePolicy(), a.Journal, daemon.FormatDuration(a.Policy.Interval), a.Baseline)
	}
}

// onceResult turns the reports of --once into the command's error: every
// account's failure, else the messages left behind, else nil. A cycle cut
// short by a signal is a clean stop.
func onceResult(reports []daemon.Report) error {
	var errs []error
	var left int64
	for _, r := range reports {
		left += r.LeftBehind
		if r.Err != nil && !r.Stopped {
			errs = append(errs, fmt.Errorf("account %q: %w", r.Account, r.Err))
		}
	}
	switch {
	case len(errs) == 1:
		return errs[0]
	case len(errs) > 1:
		return errors.Join(errs...)
	case left > 0:
		return &errLeftBehind{left}
	}
	return nil
}
