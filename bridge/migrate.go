package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/pop2imap/pop2imap/internal/errkind"
	"github.com/pop2imap/pop2imap/pop3"
	"github.com/pop2imap/pop2imap/state"
)

// Config tunes one migration run.
type Config struct {
	Folder string // target folder; "" means INBOX
	Delete bool   // DELE each message once its append is confirmed and recorded
	DryRun bool   // list and plan only; change nothing anywhere
	Limit  int    // copy at most this many new messages; 0 means all
	Seen   bool   // store appended messages with \Seen
	// DeleteAfter, when positive and Delete is false, deletes a message
	// from POP3 once its append was confirmed at least this long ago,
	// according to the journal. Newer copies stay on the server.
	DeleteAfter time.Duration
	// Baseline records every message now on the server as done without
	// retrieving or copying it, so that later runs copy only new mail.
	Baseline bool
	// RetryRefusedAfter, when positive, leaves a message the IMAP server
	// refused alone until that long after the refusal, instead of trying it
	// again on every run. A daemon sets it so that one oversized message
	// does not cost a RETR and an APPEND every cycle.
	RetryRefusedAfter time.Duration

	// IMAPConns is how many IMAP connections append in parallel; 0 means 4.
	IMAPConns int
	// Window is how many RETR commands may be outstanding on the POP3
	// connection when the server allows pipelining; 0 means 64. DELEs use
	// a larger window derived from it (see deleWindow).
	Window int
	// SpoolThreshold is the largest message kept in memory; larger ones are
	// spooled to an unlinked file in TempDir. 0 means 1 MiB.
	SpoolThreshold int64
	TempDir        string
	// MaxMessageSize is the largest message copied; 0 means
	// DefaultMaxMessageSize. When the IMAP server gives an APPENDLIMIT,
	// the smaller of the two applies. A larger message is left on the
	// POP3 server with a *TooLargeError, and no message, whatever LIST
	// says of it, makes the spool grow past the limit.
	MaxMessageSize int64
	// Retries is how many times a temporary failure is retried, with
	// exponential backoff from RetryDelay (0 means 5 and 1s; a negative
	// Retries means none, so that the first failure ends the run).
	Retries    int
	RetryDelay time.Duration
	// Timeout bounds each IMAP command; 0 means one minute.
	Timeout time.Duration

	// Now returns the current time; nil means time.Now. Tests set it.
	Now func() time.Time
}

func (cfg *Config) withDefaults() Config {
	c := *cfg
	if c.Folder == "" {
		c.Folder = "INBOX"
	}
	if c.IMAPConns <= 0 {
		c.IMAPConns = 4
	}
	if c.IMAPConns > MaxIMAPConns {
		c.IMAPConns = MaxIMAPConns
	}
	if c.Window <= 0 {
		c.Window = 64
	}
	if c.SpoolThreshold <= 0 {
		c.SpoolThreshold = 1 << 20
	}
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	switch {
	case c.Retries == 0:
		c.Retries = 5
	case c.Retries < 0:
		c.Retries = 0
	}
	if c.RetryDelay <= 0 {
		c.RetryDelay = time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// DefaultMaxMessageSize is the largest message copied when
// Config.MaxMessageSize is 0.
const DefaultMaxMessageSize = 256 << 20

// TooLargeError is a message larger than pop2imap copies: over the IMAP
// server's APPENDLIMIT or over Config.MaxMessageSize. It is not retrieved
// and stays on the POP3 server.
type TooLargeError struct {
	Number      int
	Size        int64 // as LIST gives it
	Limit       int64
	AppendLimit bool // Limit is the IMAP server's APPENDLIMIT
}

func (e *TooLargeError) Error() string {
	if e.AppendLimit {
		return fmt.Sprintf("message %d is %d bytes, over the IMAP server's APPENDLIMIT of %d bytes", e.Number, e.Size, e.Limit)
	}
	return fmt.Sprintf("message %d is %d bytes, over the largest message copied (%d bytes)", e.Number, e.Size, e.Limit)
}

// sizeLimit is the largest message this session copies, and whether it is
// the server's APPENDLIMIT.
func (cfg *Config) sizeLimit(appendLimit int64) (int64, bool) {
	if appendLimit > 0 && appendLimit < cfg.MaxMessageSize {
		return appendLimit, true
	}
	return cfg.MaxMessageSize, false
}

// MaxIMAPConns caps parallel IMAP connections: servers commonly limit a user
// to about ten (Gmail to 15, Dovecot by default to 10 per user and IP).
const MaxIMAPConns = 8

// Stats are the run's counters. The pipeline only adds to them; the caller
// may read them at any time to draw progress.
type Stats struct {
	Listed      atomic.Int64 // messages in the POP3 mailbox
	AlreadyDone atomic.Int64 // skipped: the journal shows them copied
	ToCopy      atomic.Int64 // messages this run will try to copy
	BytesToCopy atomic.Int64 // their sizes as LIST reported them
	Appended    atomic.Int64 // appended in this run
	Recovered   atomic.Int64 // found already in the folder after an interrupted run
	// Adopted counts messages the journal did not know that were found
	// already in the folder (copied by a run whose journal was lost, or
	// another way) and recorded instead of appended again.
	Adopted    atomic.Int64
	Indexed    atomic.Int64 // folder messages read into the folder index so far
	IndexTotal atomic.Int64 // messages in the folder when the index was built
	Deleted    atomic.Int64 // DELE committed by QUIT in this run
	LeftBehind atomic.Int64 // refused by the IMAP server; still on the POP3 server
	Bytes      atomic.Int64 // bytes retrieved and appended in this run
	Retries    atomic.Int64 // temporary failures retried
	Baselined  atomic.Int64 // recorded as done without copying (Baseline)
	// LoginDelay is the shortest time between logins that the POP3
	// server announced with LOGIN-DELAY (RFC 2449), in nanoseconds; 0 when
	// it announced none.
	LoginDelay atomic.Int64

	// Where the time went, in nanoseconds, for a summary that says why a
	// run was slow. Sums over messages run in parallel and may exceed the
	// wall time.
	SetupNanos    atomic.Int64 // from the start of the session to the first RETR: logins, listing, folder checks and index
	ListNanos     atomic.Int64 // STAT, UIDL and LIST, part of the set-up (it runs alongside the IMAP login)
	PipelineNanos atomic.Int64 // from the first RETR to the last message recorded
	RetrNanos     atomic.Int64 // the POP3 side retrieving and spooling, in the pipeline's wall time
	HandoffNanos  atomic.Int64 // the POP3 side waiting for room among the appenders: the IMAP side is the limit
	AppendNanos   atomic.Int64 // APPENDs from the first byte out to the reply, summed over messages
	AppendCount   atomic.Int64 // APPENDs sent, including those refused
	JournalNanos  atomic.Int64 // appenders waiting for their intent to be on disk, summed over messages
	RTTNanos      atomic.Int64 // lowest NOOP round trip on an APPEND connection; 0 when none was measured
	MaxWindow     atomic.Int64 // the widest any connection's APPEND window grew
}

// InFlight is the mean number of APPENDs in flight over the pipeline's
// wall time.
func (s *Stats) InFlight() float64 {
	if w := s.PipelineNanos.Load(); w > 0 {
		return float64(s.AppendNanos.Load()) / float64(w)
	}
	return 0
}

// storeMin lowers v to d unless it is already lower (0 counts as unset).
func storeMin(v *atomic.Int64, d int64) {
	for {
		old := v.Load()
		if old != 0 && old <= d || v.CompareAndSwap(old, d) {
			return
		}
	}
}

// storeMax raises v to d unless it is already higher.
func storeMax(v *atomic.Int64, d int64) {
	for {
		old := v.Load()
		if old >= d || v.CompareAndSwap(old, d) {
			return
		}
	}
}

// EventKind says what happened to a message.
type EventKind int

const (
	EventAppended           EventKind = iota // stored in the folder
	EventRecovered                           // found in the folder from an interrupted run
	EventRefused                             // the IMAP server refused it; left on the POP3 server
	EventDeleted                             // deleted from the POP3 server (QUIT succeeded)
	EventWouldCopy                           // dry run: would be copied
	EventWouldDelete                         // dry run: would be deleted
	EventRetry                               // a temporary failure; retrying
	EventFolderCreated                       // the target folder was created
	EventAdopted                             // found in the folder, unknown to the journal; recorded, not appended
	EventUIDValidityChanged                  // the folder is not the one the journal recorded; Err says how
	EventIndexing                            // the folder index is being built (Stats.IndexTotal messages)
)

func (k EventKind) String() string {
	return [...]string{"appended", "recovered", "refused", "deleted", "would-copy", "would-delete", "retry", "folder-created",
		"adopted", "uidvalidity-changed", "indexing"}[k]
}

// Event reports one step for one message, for logs and reports.
type Event struct {
	Kind      EventKind
	Number    int // POP3 message number in this session
	UIDL      string
	Size      int64
	MessageID string
	UID       uint32 // IMAP UID when known
	Err       error  // for EventRefused and EventRetry
}

// Migrator moves the messages of one POP3 mailbox into one IMAP folder.
type Migrator struct {
	Config  Config
	POP3    *Endpoint
	IMAP    *Endpoint
	Journal *state.Journal // nil only in a dry run with no journal yet
	// OpenJournal, when set and Journal is nil, opens the journal once
	// both servers have accepted the login, so that a mistyped host,
	// password or folder leaves no journal and lock file behind.
	OpenJournal func() (*state.Journal, error)
	Stats       *Stats
	// OnEvent, when set, is called for each event. Calls may come from
	// several goroutines at once.
	OnEvent func(Event)
}

// Run performs the migration. It retries the whole session after a temporary
// failure (a dropped connection, [SYS/TEMP], [IN-USE]); each retry resumes
// from the journal. It returns ctx.Err() when cancelled, after letting the
// messages already retrieved finish so that the journal stays exact.
func (m *Migrator) Run(ctx context.Context) error {
	cfg := m.Config.withDefaults()
	if m.Stats == nil {
		m.Stats = &Stats{}
	}
	delay := cfg.RetryDelay
	for attempt := 0; ; attempt++ {
		err := m.session(ctx, &cfg)
		if err == nil || ctx.Err() != nil || !isTemporary(err) || attempt >= cfg.Retries {
			return err
		}
		m.Stats.Retries.Add(1)
		m.emit(Event{Kind: EventRetry, Err: err})
		select {
		case <-time.After(max(delay, time.Duration(m.Stats.LoginDelay.Load()))):
		case <-ctx.Done():
			return ctx.Err()
		}
		delay = min(delay*2, time.Minute)
	}
}

func (m *Migrator) emit(e Event) {
	if m.OnEvent != nil {
		m.OnEvent(e)
	}
}

// isTemporary reports whether a failed session is worth retrying as a whole,
// within seconds. An unreachable host, a failed handshake or a broken
// password command will not mend itself within a few retries; a login the
// server refused "for now", or a connection lost in the middle, may.
func isTemporary(err error) bool {
	return errkind.Of(err).Retryable()
}

// OversizeError is a message whose body ran far past the size LIST gave
// for it: the POP3 server is misbehaving. The run stops without retrying.
type OversizeError struct {
	Number          int
	ListSize, Limit int64
}

func (e *OversizeError) Error() string {
	return fmt.Sprintf("pop3: RETR %d: the server sent more than %d bytes for a message LIST gave as %d bytes; the POP3 server is misbehaving",
		e.Number, e.Limit, e.ListSize)
}

// JournalError wraps a failure to record a step. The run stops at once,
// because nothing may be deleted that is not durably recorded.
type JournalError struct{ Err error }

func (e *JournalError) Error() string { return e.Err.Error() }
func (e *JournalError) Unwrap() error { return e.Err }

// UIDValidityChangedError says that the folder's UIDVALIDITY is not the one
// under which the journal recorded copies: the folder was deleted and made
// again, or the journal belongs to another folder. The recorded UIDs no
// longer name those copies, so the run looks for the messages in the folder
// instead of trusting the journal. It is a warning, not a failure.
type UIDValidityChangedError struct {
	Folder   string
	Recorded uint32 // the UIDVALIDITY of a recorded copy
	Now      uint32 // the folder's UIDVALIDITY now; 0 when the folder is missing
	Entries  int    // listed messages whose recorded copies are affected
}

func (e *UIDValidityChangedError) Error() string {
	now := fmt.Sprint(e.Now)
	if e.Now == 0 {
		now = "none (the folder is missing)"
	}
	return fmt.Sprintf("folder %q: UIDVALIDITY is %s, but the journal recorded copies under %d: the folder was recreated or is another one; %d recorded copies will be looked up in the folder instead of trusted",
		e.Folder, now, e.Recorded, e.Entries)
}

// task is one listed message with what the journal knows of it.
type task struct {
	listedMsg
	// entry is the journal entry this message was matched to, if any.
	entry *state.Entry
}

// session runs one POP3 session from login to QUIT.
func (m *Migrator) session(ctx context.Context, cfg *Config) error {
	setupStart := time.Now()
	// The IMAP login and folder check need nothing from POP3: they run
	// while POP3 logs in and lists, instead of a round trip after each.
	imapDone := make(chan struct{})
	var ic *imapclient.Client
	var folder folderState
	var ierr error
	resolved := cfg.Folder
	imapCtx, cancelIMAP := context.WithCancel(ctx)
	go func() {
		defer close(imapDone)
		ic, ierr = DialIMAP(imapCtx, m.IMAP)
		if ierr == nil {
			// --folder takes / between levels, whatever the server uses.
			resolved, ierr = resolveFolder(ic, resolved, cfg.Timeout)
		}
		if ierr == nil {
			folder, ierr = statFolder(ic, resolved, cfg.Timeout)
		}
	}()
	imapReady := func() error {
		<-imapDone
		return ierr
	}
	defer func() {
		cancelIMAP() // the POP3 side failed first: stop dialing
		<-imapDone
		if ic != nil {
			ic.Close()
		}
	}()

	pc, err := DialPOP3(ctx, m.POP3)
	if err != nil {
		return err
	}
	quitOK := false
	defer func() {
		if !quitOK {
			// Dropping the connection without QUIT makes the server forget
			// every DELE of this session: nothing is lost, and the next run
			// deletes again what was confirmed.
			pc.Close()
		}
	}()

	// After login CAPA tells this account's LOGIN-DELAY; the scheduler
	// never logs in more often than that.
	if caps, err := pc.Capabilities(); err == nil {
		m.Stats.LoginDelay.Store(int64(caps.MinLoginInterval()))
	}
	listStart := time.Now()
	l, err := listMailbox(pc)
	if err != nil {
		return err
	}
	m.Stats.ListNanos.Add(int64(time.Since(listStart)))
	m.Stats.Listed.Store(int64(l.len()))

	if err := imapReady(); err != nil {
		return err
	}
	cfg.Folder = resolved
	if m.Journal == nil && m.OpenJournal != nil {
		if m.Journal, err = m.OpenJournal(); err != nil {
			return err
		}
	}

	pl, err := m.plan(l, folder.uidValidity)
	if err != nil {
		return &JournalError{err}
	}
	m.Stats.AlreadyDone.Store(int64(pl.done))
	if pl.stale > 0 {
		m.emit(Event{Kind: EventUIDValidityChanged, Err: &UIDValidityChangedError{
			Folder: cfg.Folder, Recorded: pl.staleUIDValidity, Now: folder.uidValidity, Entries: pl.stale}})
	}

	if cfg.DryRun {
		return m.dryRun(pc, ic, cfg, l, pl)
	}
	if len(pl.pending) > 0 && !folder.missing && !cfg.Baseline {
		// Let the APPENDs an interrupted run left queued at the server
		// land before the folder is searched for them.
		if folder, err = settleFolder(ctx, ic, cfg.Folder, cfg.Timeout, folder); err != nil {
			return err
		}
	}
	if cfg.Baseline {
		for _, idx := range [][]int32{pl.pending, pl.fresh} {
			if err := m.baseline(l, idx); err != nil {
				return err
			}
		}
		pl.pending, pl.fresh = nil, nil
	}

	if folder.missing {
		if created, err := ensureFolder(ic, cfg.Folder, cfg.Timeout); err != nil {
			return err
		} else if created {
			m.emit(Event{Kind: EventFolderCreated})
		}
	}

	copyList := pl.copyList(l, cfg.Limit)
	maxSize, isAppendLimit := cfg.sizeLimit(appendLimit(ic.Caps()))
	copyList.dropTooLarge(maxSize, func(t task) {
		m.Stats.LeftBehind.Add(1)
		m.emit(Event{Kind: EventRefused, Number: t.num, UIDL: t.uidl, Size: t.size,
			Err: &TooLargeError{Number: t.num, Size: t.size, Limit: maxSize, AppendLimit: isAppendLimit}})
	})
	m.Stats.ToCopy.Store(int64(copyList.len()))
	m.Stats.BytesToCopy.Store(copyList.bytes())

	// Every message to copy is one the journal cannot vouch for: it was
	// never begun, its APPEND had an unknown outcome, or its copy was
	// recorded in another folder. The folder decides: index it once, and
	// before each of them is appended, look for a copy that no other
	// message owns.
	var adopt *adopter
	if copyList.len() > 0 && folder.messages > 0 {
		m.Stats.IndexTotal.Store(int64(folder.messages))
		m.emit(Event{Kind: EventIndexing})
		idx, err := buildIndex(ic, cfg.Folder, cfg.Timeout, func(done, total int64) {
			m.Stats.Indexed.Store(done)
			m.Stats.IndexTotal.Store(total)
		})
		if err != nil {
			return err
		}
		if idx.len() > 0 {
			adopt = &adopter{c: ic, idx: idx, folder: cfg.Folder, timeout: cfg.Timeout, journal: m.Journal}
		}
	}
	if adopt == nil {
		// The appenders open connections of their own; this one has done
		// its part, and some providers cap how many an account may hold.
		ic.Close()
	}

	m.Stats.SetupNanos.Add(int64(time.Since(setupStart)))
	p := &pipeline{m: m, cfg: cfg, pc: pc, adopt: adopt, confirmed: pl.deletable, maxSize: maxSize}
	if err := p.run(ctx, copyList); err != nil {
		return err
	}

	if err := pc.Quit(); err != nil {
		return err
	}
	quitOK = true
	if err := m.recordDeleted(p.deleted); err != nil {
		// The server has deleted them; the journal merely lags. A rerun
		// will not find them and so will not copy them again.
		return &JournalError{err}
	}
	return ctx.Err()
}

// markDeletedBatch is how many entries one MarkDeleted call records, so
// that deleting a large maildrop does not build all its records at once.
const markDeletedBatch = 1024

// recordDeleted records in the journal the messages the server has
// deleted, those of them that have an entry to record it in.
func (m *Migrator) recordDeleted(deleted []delMsg) error {
	ids := make([]uint64, 0, min(len(deleted), markDeletedBatch))
	for k, d := range deleted {
		if d.id != 0 {
			ids = append(ids, d.id)
		}
		if len(ids) == markDeletedBatch || (k == len(deleted)-1 && len(ids) > 0) {
			if err := m.Journal.MarkDeleted(ids); err != nil {
				return err
			}
			m.Stats.Deleted.Add(int64(len(ids)))
			ids = ids[:0]
		}
	}
	for _, d := range deleted {
		m.emit(Event{Kind: EventDeleted, Number: d.num})
	}
	return nil
}

// deleWindow is how many DELE commands may be outstanding. They and their
// replies are a few bytes each, so many more fit in flight than RETRs, and
// at 50 ms a round trip, 2,000 DELEs in windows of 64 would cost 1.6 s.
// A window of 1, for a server whose pipelining is broken, stays 1.
func (cfg *Config) deleWindow() int {
	if cfg.Window <= 1 {
		return 1
	}
	return min(cfg.Window*8, 1024)
}

// deletable reports whether a message the journal shows as done may be
// deleted from POP3 in this run. Baseline and refused messages were never
// copied, so they are never deleted. A nil entry is not deletable.
func (cfg *Config) deletable(e *state.Entry) bool {
	switch {
	case e == nil:
		return false
	case e.Step == state.Baseline, e.Step == state.Refused:
		return false
	case cfg.Delete:
		return true
	case cfg.DeleteAfter > 0:
		return e.Step == state.Deleted || cfg.Now().Sub(e.Updated) >= cfg.DeleteAfter
	}
	return false
}

// baselineBatch is how many entries one AddBaseline call records.
const baselineBatch = 1024

// baseline records the given messages of the listing as done without
// copying them.
func (m *Migrator) baseline(l *listing, idx []int32) error {
	es := make([]state.Entry, 0, min(len(idx), baselineBatch))
	for k, i := range idx {
		t := l.at(int(i))
		es = append(es, state.Entry{UIDL: t.uidl, ListSize: t.size})
		if len(es) == baselineBatch || k == len(idx)-1 {
			if _, err := m.Journal.AddBaseline(es); err != nil {
				return &JournalError{err}
			}
			m.Stats.Baselined.Add(int64(len(es)))
			es = es[:0]
		}
	}
	return nil
}

// plan is what a session does with each listed message. Messages are
// named by their index in the listing.
type plan struct {
	done      int      // messages the journal shows as done
	deletable []delMsg // those of them that may be deleted in this run
	pending   []int32  // messages whose last APPEND has an unknown outcome
	fresh     []int32  // messages to copy
	// entries holds the journal entry of each pending message.
	entries map[int32]*state.Entry
	// stale counts the fresh messages whose recorded copy is under another
	// UIDVALIDITY than the folder's, staleUIDValidity (one of them).
	stale            int
	staleUIDValidity uint32
}

// delMsg is a message that may be deleted, and the journal entry that
// records its copy; id is 0 when the entry is already recorded deleted.
type delMsg struct {
	num int
	id  uint64
}

// plan matches the listing against the journal. Each journal entry stands
// for at most one listed message, so identical messages sharing a UIDL are
// each copied once. A message is done when an entry with its UIDL and size
// is recorded appended (or deleted, for a server that kept it anyway);
// pending when an entry shows an APPEND whose outcome is unknown; and fresh
// otherwise.
//
// It keeps nothing per message beyond a few bytes, except for pending and
// deletable messages, so a large maildrop kept on the server costs little.
//
// uidValidity is the folder's now (0 when it is missing). A copy recorded
// under another UIDVALIDITY is not in this folder as the journal knows it,
// so its message is planned fresh, to be looked up in the folder.
func (m *Migrator) plan(l *listing, uidValidity uint32) (*plan, error) {
	pl := &plan{entries: map[int32]*state.Entry{}}
	if m.Journal == nil {
		pl.fresh = make([]int32, l.len())
		for i := range pl.fresh {
			pl.fresh[i] = int32(i)
		}
		return pl, nil
	}
	cfg := m.Config.withDefaults()
	recentRefusal := func(e *state.Entry) bool {
		return e.Step == state.Refused && cfg.RetryRefusedAfter > 0 &&
			cfg.Now().Sub(e.Updated) < cfg.RetryRefusedAfter
	}
	// stale reports a copy recorded under another UIDVALIDITY.
	stale := func(e *state.Entry) bool {
		return (e.Step == state.Appended || e.Step == state.Deleted) &&
			e.UIDValidity != 0 && e.UIDValidity != uidValidity
	}
	isDone := func(e *state.Entry) bool {
		switch e.Step {
		case state.Appended, state.Deleted:
			return !stale(e)
		case state.Baseline:
			return true
		}
		return recentRefusal(e)
	}
	isPending := func(e *state.Entry) bool { return e.Step == state.Appending }
	// Only messages that share a UIDL can compete for one entry, so only
	// their claims are remembered.
	dup := l.dupUIDLs()
	used := map[uint64]bool{}
	claim := func(i int32, want func(*state.Entry) bool) (*state.Entry, error) {
		t := l.at(int(i))
		es, err := m.Journal.ByUIDL(t.uidl)
		if err != nil {
			return nil, err
		}
		for k := range es {
			e := &es[k]
			if used[e.ID] || e.ListSize != t.size || !want(e) {
				continue
			}
			if dup[i] {
				used[e.ID] = true
			}
			return e, nil
		}
		return nil, nil
	}
	var unmatched []int32
	for i := range int32(l.len()) {
		e, err := claim(i, isDone)
		if err != nil {
			return nil, err
		}
		if e == nil {
			unmatched = append(unmatched, i)
			continue
		}
		pl.done++
		if cfg.deletable(e) {
			d := delMsg{num: int(l.recs[i].num)}
			// An entry already recorded deleted belongs to a server that
			// kept the message anyway: DELE it again, record nothing new.
			if e.Step != state.Deleted {
				d.id = e.ID
			}
			pl.deletable = append(pl.deletable, d)
		}
	}
	// fresh takes over unmatched's array: it is filled no faster than
	// unmatched is read.
	pl.fresh = unmatched[:0]
	for _, i := range unmatched {
		e, err := claim(i, isPending)
		if err != nil {
			return nil, err
		}
		if e != nil {
			pl.pending = append(pl.pending, i)
			pl.entries[i] = e
			continue
		}
		if e, err := claim(i, stale); err != nil {
			return nil, err
		} else if e != nil {
			pl.stale++
			pl.staleUIDValidity = e.UIDValidity
		}
		pl.fresh = append(pl.fresh, i)
	}
	return pl, nil
}

// copyList returns what the session copies: the pending messages the
// folder did not hold, then the fresh ones, at most limit (0: all).
func (pl *plan) copyList(l *listing, limit int) *copyList {
	c := &copyList{l: l, retry: pl.pending, fresh: pl.fresh, entries: pl.entries}
	if limit > 0 && c.len() > limit {
		if limit <= len(c.retry) {
			c.retry, c.fresh = c.retry[:limit], nil
		} else {
			c.fresh = c.fresh[:limit-len(c.retry)]
		}
	}
	return c
}

// copyList is the messages a session copies, in order: retry, then fresh,
// by their index in the listing.
type copyList struct {
	l            *listing
	retry, fresh []int32
	// entries holds the journal entry of a message whose earlier APPEND
	// had an unknown outcome: it is sent again under that entry.
	entries map[int32]*state.Entry
}

func (c *copyList) len() int { return len(c.retry) + len(c.fresh) }

// dropTooLarge takes out the messages LIST gives as larger than limit, and
// calls left for each: they are never retrieved.
func (c *copyList) dropTooLarge(limit int64, left func(task)) {
	for _, idx := range []*[]int32{&c.retry, &c.fresh} {
		keep := (*idx)[:0:0]
		for _, i := range *idx {
			if c.l.size(int(i)) > limit {
				left(task{c.l.at(int(i)), c.entries[i]})
				continue
			}
			keep = append(keep, i)
		}
		*idx = keep
	}
}

// index returns the listing index of the kth message to copy.
func (c *copyList) index(k int) int32 {
	if k < len(c.retry) {
		return c.retry[k]
	}
	return c.fresh[k-len(c.retry)]
}

func (c *copyList) task(k int) task {
	i := c.index(k)
	return task{c.l.at(int(i)), c.entries[i]}
}

func (c *copyList) bytes() int64 {
	var n int64
	for k := range c.len() {
		n += c.l.size(int(c.index(k)))
	}
	return n
}

func (m *Migrator) dryRun(pc *pop3.Client, ic *imapclient.Client, cfg *Config, l *listing, pl *plan) error {
	c := pl.copyList(l, cfg.Limit)
	m.Stats.ToCopy.Store(int64(c.len()))
	m.Stats.BytesToCopy.Store(c.bytes())
	for k := range c.len() {
		t := c.task(k)
		m.emit(Event{Kind: EventWouldCopy, Number: t.num, UIDL: t.uidl, Size: t.size})
	}
	for _, d := range pl.deletable {
		i, _ := l.index(d.num)
		t := l.at(i)
		m.emit(Event{Kind: EventWouldDelete, Number: t.num, UIDL: t.uidl, Size: t.size})
	}
	if cfg.Delete {
		for k := range c.len() {
			t := c.task(k)
			m.emit(Event{Kind: EventWouldDelete, Number: t.num, UIDL: t.uidl, Size: t.size})
		}
	}
	if _, err := folderExists(ic, cfg.Folder, cfg.Timeout); err != nil {
		return err
	}
	// Nothing was retrieved or deleted, so QUIT changes nothing.
	return pc.Quit()
}

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
	mem *memBudget

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
		p.mem = newMemBudget(inFlightMemory)
	}
	start := time.Now()
	jobs := make(chan *job, p.cfg.IMAPConns)
	var wg sync.WaitGroup
	conns := min(p.cfg.IMAPConns, tasks.len())
	for i := 0; i < conns; i++ {
		// Each connection has up to maxAppendsPerConn appenders, of which
		// its window lets some take jobs: the window, not the number of
		// goroutines or connections, sets how much is in flight.
		conn := &imapConn{ep: p.m.IMAP, win: newAppendWindow(maxAppendsPerConn)}
		defer conn.close()
		// Log in now, while the first RETRs are on their way, rather than
		// when the first message arrives.
		go conn.warm(abort, p.m.Stats, p.cfg.Timeout)
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
	if p.cfg.DryRun {
		return nil
	}
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

// imapConn is one IMAP connection shared by the appenders that use it. It is
// dialed again after a failure; gen tells a stale failure from a fresh one,
// so that two appenders failing together close the connection only once.
type imapConn struct {
	ep *Endpoint
	// win is how many of the connection's appenders may have a message in
	// flight. With LITERAL+ their APPENDs go out back to back and share
	// each round trip; with synchronizing literals the next one's command
	// goes out while the server stores the last.
	win *appendWindow

	mu      sync.Mutex
	c       *appendConn
	gen     int
	dialErr error // warm's failure, for the first get to report
}

// warm dials the connection ahead of the first message, and measures the
// link's round trip on it with one NOOP. The NOOP goes out first, so that
// no APPEND queued ahead of it at the server delays its reply (or makes it
// time out); the APPENDs follow without waiting for that reply.
func (ic *imapConn) warm(ctx context.Context, stats *Stats, timeout time.Duration) {
	ic.mu.Lock()
	if ic.c != nil {
		ic.mu.Unlock()
		return
	}
	c, err := dialAppendConn(ctx, ic.ep)
	if err != nil {
		ic.dialErr = err
		ic.mu.Unlock()
		return
	}
	ic.c = c
	ic.gen++
	queued := make(chan struct{})
	go func() {
		rtt, err := c.Noop(timeout, func() { close(queued) })
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

func (ic *imapConn) get(ctx context.Context) (*appendConn, int, error) {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	if err := ic.dialErr; err != nil {
		// One failed login is reported as it would have been without warm,
		// instead of trying again at once.
		ic.dialErr = nil
		return nil, 0, err
	}
	if ic.c == nil {
		c, err := dialAppendConn(ctx, ic.ep)
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
	delay := cfg.RetryDelay
	created := false
	for attempt := 0; ; attempt++ {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		c, gen, err := w.conn.get(ctx)
		if err != nil {
			// Reconnecting failed: that says nothing about this message,
			// so it must not be taken for a refusal of it.
			var cerr *ConnectError
			if !errors.As(err, &cerr) || !cerr.Temporary() || attempt >= cfg.Retries {
				return 0, err
			}
			m.Stats.Retries.Add(1)
			m.emit(Event{Kind: EventRetry, Number: j.num, UIDL: j.uidl, Err: err})
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return 0, ctx.Err()
			}
			delay = min(delay*2, time.Minute)
			continue
		}
		// The latency counts the wait for the connection's other literals
		// to go out: a queue there is one the window made too deep.
		sent := time.Now()
		data, err := c.Append(cfg.Folder, j.sp, opts, cfg.Timeout)
		latency := time.Since(sent)
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
			if cerr := c.Create(cfg.Folder, cfg.Timeout); cerr != nil {
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
		if attempt >= cfg.Retries {
			return 0, fmt.Errorf("imap: APPEND to %q: giving up after %d attempts: %w", cfg.Folder, attempt+1, err)
		}
		m.Stats.Retries.Add(1)
		m.emit(Event{Kind: EventRetry, Number: j.num, UIDL: j.uidl, Err: err})
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		delay = min(delay*2, time.Minute)
	}
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
