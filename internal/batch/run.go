package batch

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/pop2imap/pop2imap/bridge"
	"github.com/pop2imap/pop2imap/internal/errkind"
	"github.com/pop2imap/pop2imap/internal/fleet"
	"github.com/pop2imap/pop2imap/internal/pacer"
	"github.com/pop2imap/pop2imap/state"
)

// Defaults of Options.
const (
	DefaultRetries    = 3
	DefaultRetryDelay = 10 * time.Second
)

// Options say how a batch runs.
type Options struct {
	StateDir string
	Runner   *fleet.Runner // the caps; every connection goes through it
	// Config is each account's engine configuration; the account's
	// folder, delete and seen settings, the runner's grant of appending
	// connections and Retries (the batch owns every retry) override it.
	Config bridge.Config
	// Retries is how many times an account whose attempt failed in a way
	// worth retrying (a dropped connection, a temporary refusal,
	// throttling) is tried again, with backoff from RetryDelay, before it
	// is reported failed; 0 means DefaultRetries, negative means none.
	// Between attempts the account holds no connection and no job slot.
	Retries    int
	RetryDelay time.Duration
	Log        *Log         // where each account's result is written
	Logger     *slog.Logger // nil means none
	// Advice says in one line what to do about a failure; nil means none.
	Advice   func(error) string
	Progress *Progress // nil means not counted
	Shard    Shard
	// Quiet logs an account that ended well at debug level rather than
	// info, for a display (a progress bar) that counts them instead.
	// Failures and accounts that left mail behind are always logged.
	Quiet bool
}

// Run copies every account, jobs of them at a time within the caps, and
// writes one result per account to opts.Log as it ends. One account's
// failure never stops the others, and none is held in memory: the log
// has them. An account cut short by ctx has no result (it is not
// finished), and Run returns ctx.Err() then. Any other error is the
// batch's own: the results log could not be written.
func Run(ctx context.Context, accounts []Account, opts Options) error {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case opts.Retries == 0:
		opts.Retries = DefaultRetries
	case opts.Retries < 0:
		opts.Retries = 0
	}
	if opts.RetryDelay <= 0 {
		opts.RetryDelay = DefaultRetryDelay
	}
	if err := os.MkdirAll(filepath.Join(opts.StateDir, "journals"), 0o700); err != nil {
		return &LogError{Path: filepath.Join(opts.StateDir, "journals"), Op: "mkdir", Err: err}
	}
	var (
		mu     sync.Mutex
		logErr error
	)
	each(ctx, opts.Runner.Jobs(), len(accounts), func(k int) bool {
		r, ok := runAccount(ctx, accounts[k], &opts)
		if !ok {
			return true
		}
		err := opts.Log.Write(r)
		mu.Lock()
		defer mu.Unlock()
		if err != nil && logErr == nil {
			logErr = err // the batch cannot record what it does: stop
		}
		return logErr == nil
	})
	if logErr != nil {
		return logErr
	}
	return ctx.Err()
}

// runAccount runs one account to its end, retrying what is worth it. It
// reports false when ctx ended first: the account is not finished.
func runAccount(ctx context.Context, a Account, opts *Options) (Result, bool) {
	log := opts.Logger.With("account", a.Name)
	r := Result{Account: a.Name, ID: a.ID, Line: a.Line, Start: time.Now()}
	r.Shard = opts.Shard.String()
	stats := &bridge.Stats{}
	opts.Progress.started(stats, a.ID)
	retry := pacer.New(opts.Retries, opts.RetryDelay)
	retry.Floor = func() time.Duration { return time.Duration(stats.LoginDelay.Load()) }
	var err error
	for {
		err = attempt(ctx, a, opts, stats, log)
		if err == nil || ctx.Err() != nil || !errkind.Of(err).Retryable() || !retry.Left() {
			break
		}
		log.Warn("account failed; will retry", "kind", string(errkind.Of(err)), "err", err)
		if _, werr := retry.Again(ctx); werr != nil {
			break
		}
		r.Retries++
	}
	r.End = time.Now()
	r.Listed, r.Done = stats.Listed.Load(), stats.AlreadyDone.Load()
	r.Appended, r.Recovered, r.Adopted = stats.Appended.Load(), stats.Recovered.Load(), stats.Adopted.Load()
	r.Deleted, r.LeftCount, r.Bytes = stats.Deleted.Load(), stats.LeftBehind.Load(), stats.Bytes.Load()
	if err != nil && ctx.Err() != nil && (errors.Is(err, ctx.Err()) || errkind.Of(err) == errkind.Canceled) {
		opts.Progress.stopped(stats)
		log.Info("account interrupted; the next run continues it", "appended", r.Appended)
		return r, false
	}
	attrs := []any{"listed", r.Listed, "appended", r.Appended, "left_behind", r.LeftCount, "bytes", r.Bytes,
		"duration", r.End.Sub(r.Start).Round(time.Millisecond)}
	switch {
	case err != nil:
		r.Status, r.Kind, r.Error = Failed, string(errkind.Of(err)), err.Error()
		if opts.Advice != nil {
			r.Advice = opts.Advice(err)
		}
		log.Error("account failed", append(attrs, "kind", r.Kind, "err", err, "retries", r.Retries)...)
	case r.LeftCount > 0:
		r.Status = LeftBehind
		log.Warn("account done; some messages left behind", attrs...)
	default:
		r.Status = Done
		level := slog.LevelInfo
		if opts.Quiet {
			level = slog.LevelDebug
		}
		log.Log(context.Background(), level, "account done", attrs...)
	}
	opts.Progress.finished(stats, r.Status)
	return r, true
}

// attempt runs the engine once on the account, within the runner's caps.
func attempt(ctx context.Context, a Account, opts *Options, stats *bridge.Stats, log *slog.Logger) error {
	cfg := opts.Config
	want := cfg.IMAPConns
	if want <= 0 {
		want = bridge.DefaultIMAPConns
	}
	if n, ok := opts.Progress.messages(a.ID); ok {
		// The engine opens one appending connection per
		// bridge.MessagesPerConn messages; reserve no more.
		want = max(1, min(want, int((n+bridge.MessagesPerConn-1)/bridge.MessagesPerConn)))
	}
	need := fleet.Need{POP3: a.POP3, IMAP: a.IMAP, Appenders: want}
	return opts.Runner.Do(ctx, need, func(ctx context.Context, g fleet.Grant) error {
		cfg.Folder, cfg.Delete, cfg.Seen = a.Folder, a.Delete, a.Seen
		cfg.IMAPConns = g.Appenders
		cfg.Retries = -1
		cfg.Memory = opts.Runner.Memory()
		path := JournalPath(opts.StateDir, a)
		m := &bridge.Migrator{
			Config: cfg, POP3: g.POP3, IMAP: g.IMAP, Index: g.Index, Stats: stats,
			// A new journal is made only once both logins succeed, so an
			// account with a wrong password leaves none behind.
			OpenJournal: func() (*state.Journal, error) { return state.Open(path) },
			OnEvent:     func(e bridge.Event) { e.Log(log) },
		}
		if _, err := os.Stat(path); err == nil {
			j, err := state.Open(path)
			if err != nil {
				return err
			}
			if rep := j.Repaired(); rep != nil {
				log.Warn(rep.String())
			}
			m.Journal = j
		}
		err := m.Run(ctx)
		if m.Journal != nil {
			if cerr := m.Journal.Close(); err == nil && cerr != nil {
				err = &bridge.JournalError{Err: cerr}
			}
		}
		return err
	})
}
