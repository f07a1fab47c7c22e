package bridge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/pop2imap/pop2imap/internal/imapappend"
	"github.com/pop2imap/pop2imap/internal/pacer"
	"github.com/pop2imap/pop2imap/state"
)

// imapConn is one IMAP connection shared by the appenders that use it. It is
// dialed again after a failure; gen tells a stale failure from a fresh one,
// so that two appenders failing together close the connection only once.
type imapConn struct {
	ep *Endpoint
	// timeout bounds each command's reply (Config.Timeout).
	timeout time.Duration
	// win is how many of the connection's appenders may have a message in
	// flight. With LITERAL+ their APPENDs go out back to back and share
	// each round trip; with synchronizing literals the next one's command
	// goes out while the server stores the last.
	win *appendWindow

	mu       sync.Mutex
	c        *imapappend.Client
	gen      int
	dialErr  error // warm's failure, for the first get to report
	measured bool  // warm has run
}

// warm dials the connection ahead of the first message, unless the
// session handed it one already logged in, and measures the
// link's round trip on it with one NOOP. The NOOP goes out first, so that
// no APPEND queued ahead of it at the server delays its reply (or makes it
// time out); the APPENDs follow without waiting for that reply.
func (ic *imapConn) warm(ctx context.Context, stats *Stats) {
	ic.mu.Lock()
	if ic.measured {
		ic.mu.Unlock()
		return
	}
	ic.measured = true
	if ic.c == nil {
		c, err := dialAppendClient(ctx, ic.ep, ic.timeout)
		if err != nil {
			ic.dialErr = err
			ic.mu.Unlock()
			return
		}
		ic.c = c
		ic.gen++
	}
	c := ic.c
	queued := make(chan struct{})
	go func() {
		rtt, err := c.Noop(func() { close(queued) })
		if err == nil {
			storeMin(&stats.RTTNanos, int64(rtt))
		}
		select {
		case <-queued:
		default:
			close(queued) // it failed before it was written
		}
	}()
	<-queued
	ic.mu.Unlock()
}

func (ic *imapConn) get(ctx context.Context) (*imapappend.Client, int, error) {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	if err := ic.dialErr; err != nil {
		// One failed login is reported as it would have been without warm,
		// instead of trying again at once.
		ic.dialErr = nil
		return nil, 0, err
	}
	if ic.c == nil {
		c, err := dialAppendClient(ctx, ic.ep, ic.timeout)
		if err != nil {
			return nil, 0, err
		}
		ic.c = c
		ic.gen++
	}
	return ic.c, ic.gen, nil
}

// drop closes the connection of generation gen, if it is still the current
// one.
func (ic *imapConn) drop(gen int) {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	if ic.c != nil && ic.gen == gen {
		ic.c.Close()
		ic.c = nil
		ic.win.reset()
	}
}

func (ic *imapConn) close() {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	if ic.c != nil {
		ic.c.Close()
		ic.c = nil
	}
}

// appender delivers jobs over a shared IMAP connection.
type appender struct {
	p    *pipeline
	conn *imapConn
}

// deliver appends one job, retrying temporary failures, and records the
// outcome. A nil error means the job is settled; an error stops the run.
// The duration is how long the server took to reply to the APPEND once it
// was out (0 when none was answered), for the connection's window.
func (w *appender) deliver(ctx context.Context, j *job) (time.Duration, error) {
	defer w.p.release(j)
	p, m := w.p, w.p.m
	if p.adopt != nil {
		uid, err := p.adopt.find(&j.fp)
		if err != nil {
			return 0, err
		}
		if uid != 0 {
			kind := EventAdopted
			if j.entry.ID != 0 {
				kind = EventRecovered
			}
			return 0, w.recordAppended(j, p.adopt.idx.uidValidity, uint32(uid), kind)
		}
	}
	if j.entry.ID == 0 {
		// The intent must be on disk before the APPEND goes out. Appenders
		// record in parallel, so their fsyncs share group commits.
		began := time.Now()
		id, err := m.Journal.BeginAppend(j.entry)
		m.Stats.JournalNanos.Add(int64(time.Since(began)))
		if err != nil {
			return 0, &JournalError{err}
		}
		j.entry.ID, j.entry.Step = id, state.Appending
	}
	return w.send(ctx, j)
}

// send APPENDs a job whose intent is recorded, retrying temporary
// failures, and records the outcome.
func (w *appender) send(ctx context.Context, j *job) (time.Duration, error) {
	p, cfg, m := w.p, w.p.cfg, w.p.m
	opts := &imap.AppendOptions{Time: j.entry.InternalDate}
	if cfg.Seen {
		opts.Flags = []imap.Flag{imap.FlagSeen}
	}
	retry := pacer.New(cfg.Retries, cfg.RetryDelay)
	created := false
	for {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		c, gen, err := w.conn.get(ctx)
		if err != nil {
			// Reconnecting failed: that says nothing about this message,
			// so it must not be taken for a refusal of it.
			var cerr *ConnectError
			if !errors.As(err, &cerr) || !cerr.Temporary() || !retry.Left() {
				return 0, err
			}
			m.Stats.Retries.Add(1)
			m.emit(Event{Kind: EventRetry, Number: j.num, UIDL: j.uidl, Err: err})
			if _, werr := retry.Again(ctx); werr != nil {
				return 0, werr
			}
			continue
		}
		// The latency counts the wait for the connection's other literals
		// to go out: a queue there is one the window made too deep.
		sent := time.Now()
		data, err := w.append(ctx, c, j, opts)
		latency := time.Since(sent)
		if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return 0, err // cancelled before the APPEND went out
		}
		m.Stats.AppendNanos.Add(int64(latency))
		m.Stats.AppendCount.Add(1)
		if err == nil {
			return latency, w.recordAppended(j, data.UIDValidity, uint32(data.UID), EventAppended)
		}
		kind, certain := classifyAppendError(err)
		if !certain {
			// The message may or may not be stored. Searching for it now
			// could find the copy of another message still in flight, so
			// end the session: the next one searches before anything else
			// is sent (see session), and Run starts it after a pause.
			w.conn.drop(gen)
			return 0, fmt.Errorf("imap: APPEND to %q: outcome unknown: %w", cfg.Folder, err)
		}
		switch kind {
		case errTryCreate:
			// The folder went away during the run.
			if created {
				return 0, fmt.Errorf("imap: APPEND to %q: %w (even after creating it)", cfg.Folder, err)
			}
			if cerr := c.Create(ctx, cfg.Folder); cerr != nil {
				return 0, cerr
			}
			created = true
			continue
		case errRefused:
			if err := m.Journal.MarkRefused(j.entry.ID, err.Error()); err != nil {
				return 0, &JournalError{err}
			}
			p.settle()
			m.Stats.LeftBehind.Add(1)
			m.emit(Event{Kind: EventRefused, Number: j.num, UIDL: j.uidl, Size: j.sp.size, MessageID: j.entry.MessageID, Err: &RefusedError{err}})
			return 0, nil
		case errFatalQuota:
			return 0, fmt.Errorf("imap: APPEND: %w: %w", ErrOverQuota, err)
		case errFatal:
			return 0, fmt.Errorf("imap: APPEND to %q: %w", cfg.Folder, err)
		}
		if !retry.Left() {
			return 0, fmt.Errorf("imap: APPEND to %q: giving up after %d attempts: %w", cfg.Folder, retry.Attempts+1, err)
		}
		m.Stats.Retries.Add(1)
		m.emit(Event{Kind: EventRetry, Number: j.num, UIDL: j.uidl, Err: err})
		if _, werr := retry.Again(ctx); werr != nil {
			return 0, werr
		}
	}
}

// append sends the job's spooled message.
func (w *appender) append(ctx context.Context, c *imapappend.Client, j *job, opts *imap.AppendOptions) (*imap.AppendData, error) {
	r, err := j.sp.Reader()
	if err != nil {
		return nil, err
	}
	return c.Append(ctx, w.p.cfg.Folder, r, j.sp.size, opts)
}

// recordAppended records the append, or the copy found in the folder, and
// offers the message for deletion, which run does only after a
// Journal.Sync. An adopted message has no entry yet: Adopt creates it,
// durably, at step Appended.
func (w *appender) recordAppended(j *job, uidValidity, uid uint32, kind EventKind) error {
	p, m := w.p, w.p.m
	if kind == EventAdopted {
		id, err := m.Journal.Adopt(j.entry, uidValidity, uid)
		if err != nil {
			return &JournalError{err}
		}
		j.entry.ID = id
	} else if err := m.Journal.MarkAppendedLater(j.entry.ID, uidValidity, uid); err != nil {
		return &JournalError{err}
	}
	p.mu.Lock()
	p.unsettled--
	if p.cfg.Delete {
		p.confirmed = append(p.confirmed, delMsg{num: j.num, id: j.entry.ID})
	}
	p.mu.Unlock()
	switch kind {
	case EventRecovered:
		m.Stats.Recovered.Add(1)
	case EventAdopted:
		m.Stats.Adopted.Add(1)
	default:
		m.Stats.Appended.Add(1)
	}
	m.Stats.Bytes.Add(j.sp.size)
	m.emit(Event{Kind: kind, Number: j.num, UIDL: j.uidl, Size: j.sp.size, MessageID: j.entry.MessageID, UID: uid})
	return nil
}
