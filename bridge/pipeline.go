package bridge

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/pop2imap/pop2imap/internal/imapappend"
	"github.com/pop2imap/pop2imap/pop3"
	"github.com/pop2imap/pop2imap/state"
)

// pipeline streams messages from the POP3 session to parallel IMAP appenders
// and feeds confirmed messages back to the POP3 session for deletion.
type pipeline struct {
	m   *Migrator
	cfg *Config
	pc  *pop3.Client

	// adopt, when not nil, looks in the folder for each message before it
	// is appended; nil when the folder held nothing at the start.
	adopt   *adopter
	maxSize int64 // the largest message the spool takes
	// mem bounds the spooled bytes in memory between RETR and APPEND.
	mem *MemoryBudget
	// first, when not nil, is the session's logged-in appending
	// connection that checked the folder: the first appender uses it
	// instead of logging in again. run closes it if no appender does.
	first *imapappend.Client

	mu        sync.Mutex
	confirmed []delMsg // recorded appended, not yet DELE'd
	deleted   []delMsg // DELE'd in this session
	unsettled int      // retrieved but not yet recorded appended or refused
	fatal     error
}

type job struct {
	task
	sp    *spool
	entry state.Entry
	fp    fingerprint
	mem   int64 // bytes taken from pipeline.mem
}

// release closes the job's spool and gives its memory back.
func (p *pipeline) release(j *job) {
	j.sp.Close()
	p.mem.give(j.mem)
	j.mem = 0
}

func (p *pipeline) fail(err error) {
	p.mu.Lock()
	if p.fatal == nil {
		p.fatal = err
	}
	p.mu.Unlock()
}

func (p *pipeline) failed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fatal
}

// run copies the tasks, then, once every record is durable, sends the DELEs
// in one pipelined stream. It returns nil only when every retrieved message
// is settled, so that QUIT cannot commit anything unrecorded.
func (p *pipeline) run(ctx context.Context, tasks *copyList) error {
	// Fatal errors abort work at once; a cancelled ctx only stops new work.
	abort, cancel := context.WithCancel(context.Background())
	defer cancel()

	if p.mem == nil {
		p.mem = p.cfg.Memory
	}
	if p.mem == nil {
		p.mem = NewMemoryBudget(inFlightMemory)
	}
	start := time.Now()
	defer func() {
		if p.first != nil {
			p.first.Close() // nothing to append
		}
	}()
	jobs := make(chan *job, p.cfg.IMAPConns)
	var wg sync.WaitGroup
	// A login costs the server more than a few messages do: a small
	// mailbox gets one connection per MessagesPerConn messages.
	conns := min(p.cfg.IMAPConns, (tasks.len()+MessagesPerConn-1)/MessagesPerConn)
	for i := 0; i < conns; i++ {
		// Each connection has up to maxAppendsPerConn appenders, of which
		// its window lets some take jobs: the window, not the number of
		// goroutines or connections, sets how much is in flight.
		conn := &imapConn{ep: p.m.IMAP, timeout: p.cfg.Timeout, win: newAppendWindow(maxAppendsPerConn)}
		if p.first != nil {
			conn.c, conn.gen, p.first = p.first, 1, nil
		}
		defer conn.close()
		// Log in now, while the first RETRs are on their way, rather than
		// when the first message arrives.
		go conn.warm(abort, p.m.Stats)
		for k := 0; k < maxAppendsPerConn; k++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w := &appender{p: p, conn: conn}
				for {
					conn.win.acquire()
					j, ok := <-jobs
					if !ok {
						conn.win.release(0)
						return
					}
					latency, err := w.deliver(abort, j)
					conn.win.release(latency)
					storeMax(&p.m.Stats.MaxWindow, int64(conn.win.width()))
					if err != nil {
						p.fail(err)
						cancel()
					}
				}
			}()
		}
	}

	perr := p.produce(ctx, abort, tasks, jobs)
	if perr != nil {
		p.fail(perr)
		cancel()
	}
	close(jobs)
	wg.Wait()
	p.m.Stats.PipelineNanos.Add(int64(time.Since(start)))
	if err := p.failed(); err != nil {
		return err
	}
	// The appenders record each success without waiting for its fsync
	// (the next BeginAppend's fsync usually covers it); nothing is deleted
	// before all of them are on disk.
	if err := p.m.Journal.Sync(); err != nil {
		return &JournalError{err}
	}
	// DELE takes effect only at QUIT, so sending them all now, in one
	// pipelined stream, commits exactly what sending them earlier would.
	if err := p.flushDeletes(); err != nil {
		return err
	}
	if p.unsettled != 0 {
		return fmt.Errorf("bridge: %d retrieved messages were not recorded", p.unsettled)
	}
	return nil
}

// produce retrieves the tasks with one pipelined RETR stream and hands each
// message to the appenders. When ctx is cancelled it stops asking for more,
// but every message already requested is still handed on, so that all that
// was retrieved gets recorded and the session can end with QUIT.
func (p *pipeline) produce(ctx, abort context.Context, tasks *copyList, jobs chan<- *job) error {
	if tasks.len() == 0 {
		return nil
	}
	next := 0 // replies come in the order of the commands
	stopping := false
	start := time.Now()
	var handoff time.Duration
	defer func() {
		p.m.Stats.HandoffNanos.Add(int64(handoff))
		p.m.Stats.RetrNanos.Add(int64(time.Since(start) - handoff))
	}()
	retrieve := func(n int, body io.Reader) error {
		t := tasks.task(next)
		next++
		if t.num != n {
			return fmt.Errorf("bridge: got message %d from RETR, want %d", n, t.num)
		}
		p.mu.Lock()
		p.unsettled++
		p.mu.Unlock()
		j, err := p.prepare(t, body)
		if err != nil {
			return err
		}
		waitStart := time.Now()
		j.mem = int64(cap(j.sp.mem))
		if !p.mem.take(j.mem, abort.Done()) {
			j.mem = 0
			p.release(j)
			return p.failed()
		}
		select {
		case jobs <- j:
		case <-abort.Done():
			p.release(j)
			return p.failed()
		}
		handoff += time.Since(waitStart)
		if !stopping && ctx.Err() != nil {
			stopping = true
			return pop3.ErrStopSending
		}
		return nil
	}
	// The RETRs go out in runs of retrChunk, so that the message numbers
	// of a large maildrop are never all in one slice; the window drains
	// once per run, a round trip in thousands of messages.
	nums := make([]int, 0, min(tasks.len(), retrChunk))
	for start := 0; start < tasks.len() && !stopping && ctx.Err() == nil; start += retrChunk {
		nums = nums[:0]
		for k := start; k < min(start+retrChunk, tasks.len()); k++ {
			nums = append(nums, int(tasks.l.recs[tasks.index(k)].num))
		}
		if err := p.pc.RetrAll(nums, p.cfg.Window, retrieve); err != nil {
			return err
		}
	}
	return nil
}

// retrChunk is how many RETR commands one RetrAll call sends. Tests make
// it small.
var retrChunk = 8192

// settle records that one retrieved message has reached the journal.
func (p *pipeline) settle() {
	p.mu.Lock()
	p.unsettled--
	p.mu.Unlock()
}

// prepare spools one retrieved message and works out its journal entry. The
// appender records the entry just before the APPEND.
func (p *pipeline) prepare(t task, body io.Reader) (*job, error) {
	// LIST gave the size; some servers count a little differently, but a
	// body far larger than that is a server gone wrong, and spooling it
	// would fill the disk. Whatever LIST says, the spool stops at maxSize.
	limit := t.size + max(t.size, 1<<20)
	if p.maxSize > 0 {
		limit = min(limit, p.maxSize)
	}
	sp, err := spoolMessage(io.LimitReader(body, limit+1), t.size, p.cfg.SpoolThreshold, p.cfg.TempDir)
	if err != nil {
		return nil, fmt.Errorf("pop3: RETR %d: %w", t.num, err)
	}
	if sp.size > limit {
		sp.Close()
		// The rest of the body may never end: drop the connection rather
		// than drain it. Nothing of this session is committed.
		p.pc.Close()
		return nil, &OversizeError{Number: t.num, ListSize: t.size, Limit: limit}
	}
	meta := parseMeta(sp.header)
	fp := fingerprint{size: sp.size, crlfSize: sp.crlfSize, sum: sp.sum, loose: sp.norm, messageID: meta.MessageID}
	if t.entry != nil && t.entry.SHA256 == sp.sum {
		// A retry of an APPEND whose outcome was unknown: look for it in
		// the folder, then send it again under the same journal entry.
		return &job{task: t, sp: sp, entry: *t.entry, fp: fp}, nil
	}
	date := meta.Date
	if date.IsZero() {
		date = p.cfg.Now().Truncate(time.Second)
	}
	e := state.Entry{
		UIDL:         t.uidl,
		ListSize:     t.size,
		Size:         sp.size,
		SHA256:       sp.sum,
		NormSHA256:   sp.norm,
		MessageID:    meta.MessageID,
		InternalDate: date,
	}
	return &job{task: t, sp: sp, entry: e, fp: fp}, nil
}

// flushDeletes sends DELE for every message recorded appended since the last
// call. This is the only place pop2imap deletes anything.
func (p *pipeline) flushDeletes() error {
	p.mu.Lock()
	ds := p.confirmed
	p.confirmed = nil
	p.mu.Unlock()
	if len(ds) == 0 {
		return nil
	}
	nums := make([]int, len(ds))
	for k, d := range ds {
		nums[k] = d.num
	}
	if err := p.pc.DeleAll(nums, p.cfg.deleWindow()); err != nil {
		return err
	}
	p.deleted = append(p.deleted, ds...)
	return nil
}
