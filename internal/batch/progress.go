package batch

import (
	"context"
	"sync"
	"time"

	"github.com/pop2imap/pop2imap/bridge"
	"github.com/pop2imap/pop2imap/internal/fleet"
)

// Progress counts a batch as it moves, for one display of the whole
// batch: accounts done, running and failed, messages and bytes, the rate
// and one estimate of the time left. A nil *Progress counts nothing. Its
// methods may be called from many goroutines.
type Progress struct {
	mu       sync.Mutex
	start    time.Time
	accounts int
	estimate map[string]estimate // by account ID, from STAT
	running  map[*bridge.Stats]string

	msgsTotal, bytesTotal int64 // what STAT found, corrected as accounts end
	done, left, failed    int
	finishedMsgs          int64 // messages of ended accounts, all counted as processed
	finishedCopied        int64 // messages those accounts appended, recovered or adopted
	finishedBytes         int64 // bytes they appended
	unknown               int   // accounts whose STAT failed
}

type estimate struct {
	msgs, bytes int64
}

// NewProgress starts counting a batch of the given accounts.
func NewProgress(accounts int) *Progress {
	return &Progress{start: time.Now(), accounts: accounts, estimate: map[string]estimate{}, running: map[*bridge.Stats]string{}}
}

// Estimate asks every account's POP3 server STAT, within the runner's
// caps, so that the display can give one total and one time left before
// the copy starts. An account whose STAT fails is counted as unknown; its
// run says why. It returns ctx.Err() when ctx ends first.
func (p *Progress) Estimate(ctx context.Context, accounts []Account, runner *fleet.Runner) error {
	each(ctx, runner.Jobs(), len(accounts), func(k int) bool {
		a := accounts[k]
		var n int
		var size int64
		err := runner.Do(ctx, fleet.Need{POP3: a.POP3}, func(ctx context.Context, g fleet.Grant) error {
			var err error
			n, size, err = bridge.StatPOP3(ctx, g.POP3)
			return err
		})
		p.mu.Lock()
		defer p.mu.Unlock()
		if err != nil {
			p.unknown++
		} else {
			p.estimate[a.ID] = estimate{int64(n), size}
			p.msgsTotal += int64(n)
			p.bytesTotal += size
		}
		return true
	})
	p.mu.Lock()
	p.start = time.Now() // the rate counts from the copy's start
	p.mu.Unlock()
	return ctx.Err()
}

// messages is what STAT found in the account's maildrop.
func (p *Progress) messages(id string) (int64, bool) {
	if p == nil {
		return 0, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.estimate[id]
	return e.msgs, ok
}

func (p *Progress) started(stats *bridge.Stats, id string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.running[stats] = id
	p.mu.Unlock()
}

// stopped forgets an account cut short.
func (p *Progress) stopped(stats *bridge.Stats) {
	if p == nil {
		return
	}
	p.mu.Lock()
	delete(p.running, stats)
	p.mu.Unlock()
}

// finished counts an ended account: everything it listed is processed,
// and its STAT estimate gives way to what it found.
func (p *Progress) finished(stats *bridge.Stats, st Status) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	id := p.running[stats]
	delete(p.running, stats)
	e, known := p.estimate[id]
	listed := stats.Listed.Load()
	switch {
	case st == Failed && listed == 0 && known:
		listed = e.msgs // never listed: nothing more will happen to them in this run
	case !known:
		p.msgsTotal += listed
	default:
		p.msgsTotal += listed - e.msgs
	}
	p.finishedMsgs += listed
	p.finishedCopied += copied(stats)
	p.finishedBytes += stats.Bytes.Load()
	switch st {
	case Done:
		p.done++
	case LeftBehind:
		p.left++
	default:
		p.failed++
	}
}

func copied(s *bridge.Stats) int64 {
	return s.Appended.Load() + s.Recovered.Load() + s.Adopted.Load()
}

// Snapshot is the batch at one moment.
type Snapshot struct {
	Accounts, Done, LeftBehind, Failed, Running int
	Unknown                                     int // accounts whose STAT failed
	Messages, MessagesTotal                     int64
	Copied                                      int64 // appended, recovered or adopted in this run
	Bytes, BytesTotal                           int64 // appended in this run; STAT's total
	Elapsed                                     time.Duration
	// Left is the estimated time to the end, from the rate so far; zero
	// until there is a rate to go by.
	Left time.Duration
}

// Snapshot returns the counts now.
func (p *Progress) Snapshot() Snapshot {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := Snapshot{Accounts: p.accounts, Done: p.done, LeftBehind: p.left, Failed: p.failed, Running: len(p.running),
		Unknown: p.unknown, Messages: p.finishedMsgs, MessagesTotal: p.msgsTotal, Copied: p.finishedCopied,
		Bytes: p.finishedBytes, BytesTotal: p.bytesTotal, Elapsed: time.Since(p.start)}
	for st := range p.running {
		s.Messages += st.AlreadyDone.Load() + copied(st) + st.LeftBehind.Load() + st.Baselined.Load()
		s.Copied += copied(st)
		s.Bytes += st.Bytes.Load()
	}
	s.MessagesTotal = max(s.MessagesTotal, s.Messages)
	if s.Messages > 0 && s.Elapsed >= time.Second {
		s.Left = time.Duration(float64(s.Elapsed) * float64(s.MessagesTotal-s.Messages) / float64(s.Messages)).Round(time.Second)
	}
	return s
}
