package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"

	"github.com/pop2imap/pop2imap/bridge"
	"github.com/pop2imap/pop2imap/internal/batch"
	"github.com/pop2imap/pop2imap/internal/fleet"
	"github.com/pop2imap/pop2imap/internal/humanize"
)

// batchOptions holds the flags of `pop2imap batch`.
type batchOptions struct {
	fleetOptions
	Accounts, StateDir string
	Shard, Only        string
	Check, Estimate    bool
	Report, HTML       string
	Progress           string
	LogFormat          string
	Verbose            bool
	Retries            int
	IMAPConns          int
	MaxMessageSize     sizeValue
	conn               connOptions // the defaults of empty cells
	Delete, Seen       bool
	all                []batch.Account // the accounts of this shard, whatever --only says
}

const batchUsage = `Usage:
  pop2imap batch --accounts FILE.csv --state-dir DIR [flags]
  pop2imap batch report --state-dir DIR [--report FILE.json] [--html FILE]

Moves every mailbox listed in FILE.csv (RFC 4180, a header row; columns
pop3_server, pop3_user, pop3_password, imap_server, imap_user,
imap_password, and optionally name, folder, pop3_tls, imap_tls, pop3_auth,
imap_auth, delete), --jobs accounts at a time, with at most
--max-conns-per-host connections to any server. DIR keeps one journal per
account and results.jsonl; rerunning the same command continues, and
copies only what is new from accounts already done. The file holds
passwords: it must not be readable by others (chmod 600). A password cell
may instead be env:VAR, file:PATH or cmd:COMMAND.

Exit codes: 0 every account done; 3 some accounts failed or left messages
behind (see the results; rerun later, or with --only failed); 1 the batch
could not run (worth retrying); 2 bad flags or a bad accounts file.

Flags:
`

// AddFlags registers the flags of batch on fs. The flags that give the
// defaults of empty cells are migrate's own, with migrate's help text.
func (o *batchOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Accounts, "accounts", "", "the accounts `FILE`, CSV with a header row")
	fs.StringVar(&o.StateDir, "state-dir", "", "keep journals and results.jsonl in `DIR` (created if missing)")
	o.fleetOptions.AddFlags(fs)
	fs.StringVar(&o.Shard, "shard", "", "run only shard `I/N` of the accounts (0 <= I < N), chosen by a stable hash of each account")
	fs.StringVar(&o.Only, "only", "", "run only the accounts whose last result is `WHICH`: failed (failed or left messages behind) or pending (never finished)")
	fs.BoolVar(&o.Check, "check", false, "log in to both sides of every account, count the mail and look for the folder; copy nothing")
	fs.BoolVar(&o.Estimate, "estimate", true, "STAT every account before copying, for one total and time left (false: skip it, for servers that enforce a LOGIN-DELAY between logins)")
	fs.StringVar(&o.Report, "report", "", "write the totals and every account as JSON to `FILE`")
	fs.StringVar(&o.HTML, "html", "", "write a self-contained HTML report to `FILE`")
	fs.StringVar(&o.Progress, "progress", "auto", "progress bar: auto (on a terminal), always or never (a log line every 5s)")
	fs.StringVar(&o.LogFormat, "log-format", "text", "log format on stderr: text or json")
	fs.BoolVarP(&o.Verbose, "verbose", "v", false, "log every message copied and deleted")
	fs.IntVar(&o.Retries, "retries", batch.DefaultRetries, "retry an account this many times after a failure worth retrying (a dropped connection, throttling)")
	fs.IntVar(&o.IMAPConns, "imap-conns", bridge.DefaultIMAPConns, fmt.Sprintf("IMAP connections an account appends on, at most (1 to %d); the cap may give fewer", bridge.MaxIMAPConns))
	o.MaxMessageSize = bridge.DefaultMaxMessageSize
	fs.Var(&o.MaxMessageSize, "max-message-size", "leave messages larger than `SIZE` (e.g. 256MiB) on the POP3 server")
	fs.BoolVar(&o.Delete, "delete", false, "DELE each message once its append is confirmed and recorded, for rows with an empty delete cell")
	fs.BoolVar(&o.Seen, "seen", false, `store appended messages as \Seen`)

	conn := pflag.NewFlagSet("conn", pflag.ContinueOnError)
	o.conn.AddFlags(conn)
	for _, name := range []string{"pop3-tls", "imap-tls", "pop3-auth", "imap-auth", "ca-file", "allow-insecure-auth", "folder", "timeout"} {
		f := conn.Lookup(name)
		f.Usage += " (for empty cells)"
		fs.AddFlag(f)
	}
}

func runBatchCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "report" {
		return runBatchReport(ctx, args[1:], stdout, stderr)
	}
	var o batchOptions
	fs, err := parseFlags("batch", args, stderr, o.AddFlags, batchUsage)
	if fs == nil {
		return err
	}
	if err := o.fleetOptions.check(); err != nil {
		return err
	}
	for _, req := range []struct{ val, flag string }{{o.Accounts, "--accounts"}, {o.StateDir, "--state-dir"}} {
		if req.val == "" {
			return usageErrorf("missing %s", req.flag)
		}
	}
	if o.Retries < 0 {
		return usageErrorf("--retries must not be negative")
	}
	if o.IMAPConns < 1 || o.IMAPConns > bridge.MaxIMAPConns {
		return usageErrorf("--imap-conns must be between 1 and %d", bridge.MaxIMAPConns)
	}
	logger, err := newLogger(o.LogFormat, o.Verbose, stderr)
	if err != nil {
		return err
	}
	var shard batch.Shard
	if o.Shard != "" {
		if shard, err = batch.ParseShard(o.Shard); err != nil {
			var se *batch.ShardError
			if errors.As(err, &se) {
				return &usageError{msg: fmt.Sprintf("--shard %s: %v", se.Value, se.Err), err: err}
			}
			return err
		}
	}
	accounts, err := o.load()
	if err != nil {
		return err
	}
	mine := make([]batch.Account, 0, len(accounts)) // never nil: summarizeDir reads nil as every account in DIR
	for _, a := range accounts {
		if shard.Has(a) {
			mine = append(mine, a)
		}
	}
	latest, torn, err := batch.ReadLatest(o.StateDir)
	if err != nil {
		return err
	}
	if torn > 0 {
		logger.Warn("results log ended in a torn line, from a run that was killed; it was skipped", "dir", o.StateDir)
	}
	o.all = mine
	if mine, err = batch.Select(mine, latest, o.Only); err != nil {
		return &usageError{msg: fmt.Sprintf("--only %s: want %s or %s, or no --only for every account", o.Only, batch.OnlyFailed, batch.OnlyPending), err: err}
	}
	needs := make([]fleet.Need, len(mine))
	for i, a := range mine {
		needs[i] = fleet.Need{POP3: a.POP3, IMAP: a.IMAP, Appenders: o.IMAPConns}
	}
	runner, err := o.fleetOptions.runner(needs)
	if err != nil {
		return err
	}
	if o.Check {
		return runBatchCheck(ctx, &o, mine, runner, stdout)
	}
	return runBatch(ctx, &o, mine, runner, shard, logger, stdout, stderr)
}

// load reads the accounts file with the flags as defaults.
func (o *batchOptions) load() ([]batch.Account, error) {
	caFile := o.conn.CAFile
	if caFile != "" {
		abs, err := filepath.Abs(caFile)
		if err != nil {
			return nil, &settingError{setting: "--ca-file", err: err}
		}
		caFile = abs
	}
	if o.conn.Timeout < 0 {
		return nil, usageErrorf("--timeout must not be negative (0 means the default of one minute)")
	}
	return batch.Load(o.Accounts, batch.Defaults{
		POP3TLS: o.conn.POP3TLS, IMAPTLS: o.conn.IMAPTLS,
		POP3Auth: authDefault(o.conn.POP3Auth), IMAPAuth: authDefault(o.conn.IMAPAuth),
		Folder: o.conn.Folder, Delete: o.Delete, Seen: o.Seen, CAFile: caFile,
		AllowInsecureAuth: o.conn.AllowInsecureAuth, Timeout: o.conn.Timeout,
	})
}

func authDefault(s string) string {
	if s == "auto" {
		return ""
	}
	return s
}

// errBatchIncomplete ends a batch in which some accounts failed or left
// messages behind: exit 3.
type errBatchIncomplete struct{ failed, left int }

func (e *errBatchIncomplete) Error() string {
	return fmt.Sprintf("%d accounts failed and %d left messages behind; see the results for which and why, then rerun (--only failed retries just those)", e.failed, e.left)
}

func runBatchCheck(ctx context.Context, o *batchOptions, accounts []batch.Account, runner *fleet.Runner, stdout io.Writer) error {
	checked := batch.Check(ctx, accounts, runner, o.conn.Timeout)
	var msgs, bytes int64
	failed := 0
	for _, c := range checked {
		if c.Err != nil {
			failed++
			fmt.Fprintf(stdout, "FAIL  %s (line %d): %s\n", c.Account.Name, c.Account.Line, explainShort(c.Err))
			continue
		}
		folder := "exists"
		if !c.Probe.FolderExists {
			folder = "will be created"
		}
		fmt.Fprintf(stdout, "ok    %s: %d messages, %s; folder %q %s\n", c.Account.Name, c.Probe.Messages, humanize.Bytes(c.Probe.Bytes), c.Probe.Folder, folder)
		msgs += int64(c.Probe.Messages)
		bytes += c.Probe.Bytes
	}
	fmt.Fprintf(stdout, "%d accounts checked, %d failed; %d messages, %s to move\n", len(checked), failed, msgs, humanize.Bytes(bytes))
	if err := ctx.Err(); err != nil {
		return err
	}
	if failed > 0 {
		return &errBatchIncomplete{failed: failed}
	}
	return nil
}

// explainShort is explain without the program's name: the line of one
// account in a list.
func explainShort(err error) string {
	s := explain(err)
	const prefix = "pop2imap: "
	if len(s) > len(prefix) && s[:len(prefix)] == prefix {
		return s[len(prefix):]
	}
	return s
}

func runBatch(ctx context.Context, o *batchOptions, accounts []batch.Account, runner *fleet.Runner, shard batch.Shard, logger *slog.Logger, stdout, stderr io.Writer) error {
	log, err := batch.OpenLog(o.StateDir, shard)
	if err != nil {
		return err
	}
	defer log.Close()
	logger.Info("batch starting", "accounts", len(accounts), "jobs", runner.Jobs(), "max_conns_per_host", runner.MaxConnsPerHost(), "state_dir", o.StateDir)
	progress := batch.NewProgress(len(accounts))
	show := startBatchProgress(o.Progress, progress, stderr, logger)
	defer show.stop()
	if o.Estimate {
		if err := progress.Estimate(ctx, accounts, runner); err != nil {
			return err
		}
		s := progress.Snapshot()
		logger.Info("batch estimate", "accounts", s.Accounts, "messages", s.MessagesTotal, "bytes", s.BytesTotal, "unknown", s.Unknown)
	}

	cfg := bridge.Config{IMAPConns: o.IMAPConns, MaxMessageSize: int64(o.MaxMessageSize), Timeout: o.conn.Timeout}
	err = batch.Run(ctx, accounts, batch.Options{
		StateDir: o.StateDir, Runner: runner, Config: cfg, Retries: o.Retries, Log: log,
		Logger: logger, Advice: advice, Progress: progress, Shard: shard,
		Quiet: wantBar(o.Progress, stderr), // the bar counts them
	})
	show.stop()
	if err != nil && ctx.Err() == nil {
		return err
	}
	s := progress.Snapshot()
	fmt.Fprintf(stdout, "%d accounts: %d done, %d left messages behind, %d failed, %d not finished; %d messages (%s) copied in %s\n",
		s.Accounts, s.Done, s.LeftBehind, s.Failed, s.Accounts-s.Done-s.LeftBehind-s.Failed,
		s.Copied, humanize.Bytes(s.Bytes), s.Elapsed.Round(time.Second))
	if o.Report != "" || o.HTML != "" {
		sum, rerr := summarizeDir(o.StateDir, o.all)
		if rerr == nil {
			rerr = writeSummary(sum, o.Report, o.HTML)
		}
		if rerr != nil {
			return rerr
		}
	}
	if err != nil {
		return err // interrupted: the next run continues
	}
	if s.Failed > 0 || s.LeftBehind > 0 {
		return &errBatchIncomplete{failed: s.Failed, left: s.LeftBehind}
	}
	return nil
}
