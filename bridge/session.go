package bridge

import (
	"context"
	"fmt"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/pop2imap/pop2imap/internal/errkind"
	"github.com/pop2imap/pop2imap/internal/imapappend"
	"github.com/pop2imap/pop2imap/internal/pacer"
	"github.com/pop2imap/pop2imap/state"
)

// Migrator moves the messages of one POP3 mailbox into one IMAP folder.
type Migrator struct {
	Config Config
	POP3   *Endpoint
	IMAP   *Endpoint
	// Index, when set, is the IMAP server again, for the connection that
	// indexes a folder holding mail: a runner of many accounts admits it
	// differently from the account's own (fleet.Grant.Index). nil: IMAP.
	Index   *Endpoint
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
	retry := pacer.New(cfg.Retries, cfg.RetryDelay)
	retry.Floor = func() time.Duration { return time.Duration(m.Stats.LoginDelay.Load()) }
	for {
		err := m.session(ctx, &cfg)
		if err == nil || ctx.Err() != nil || !isTemporary(err) || !retry.Left() {
			return err
		}
		m.Stats.Retries.Add(1)
		m.emit(Event{Kind: EventRetry, Err: err})
		if _, werr := retry.Again(ctx); werr != nil {
			return werr
		}
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
	// They use the connection the first APPENDs go out on, so that an
	// account costs one IMAP login; a go-imap connection is opened as
	// well only when the folder must be indexed.
	imapDone := make(chan struct{})
	var primary *imapappend.Client
	var folder folderState
	var ierr error
	resolved := cfg.Folder
	imapCtx, cancelIMAP := context.WithCancel(ctx)
	go func() {
		defer close(imapDone)
		primary, ierr = dialAppendClient(imapCtx, m.IMAP, cfg.Timeout)
		if ierr == nil {
			fc := appendFolders{ctx: imapCtx, c: primary}
			// --folder takes / between levels, whatever the server uses.
			resolved, ierr = resolveFolder(fc, resolved)
			if ierr == nil {
				folder, ierr = statFolder(fc, resolved)
			}
		}
	}()
	imapReady := func() error {
		<-imapDone
		return ierr
	}
	var ic *imapclient.Client // the go-imap connection of the folder index
	defer func() {
		cancelIMAP() // the POP3 side failed first: stop dialing
		<-imapDone
		if primary != nil {
			primary.Close() // unless the pipeline took it over
		}
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

	// The settling wait and the folder index only serve the copy, which a
	// dry run does not make (see skipDestructive); they are not needed.
	if len(pl.pending) > 0 && !folder.missing && !cfg.Baseline && !cfg.DryRun {
		// Let the APPENDs an interrupted run left queued at the server
		// land before the folder is searched for them.
		if folder, err = settleFolder(ctx, appendFolders{ctx: ctx, c: primary}, cfg.Folder, folder); err != nil {
			return err
		}
	}
	if cfg.Baseline {
		if !m.skipDestructive(cfg, nil) {
			for _, idx := range [][]int32{pl.pending, pl.fresh} {
				if err := m.baseline(l, idx); err != nil {
					return err
				}
			}
		}
		pl.pending, pl.fresh = nil, nil
	}

	if folder.missing && !m.skipDestructive(cfg, nil) {
		if created, err := ensureFolder(appendFolders{ctx: ctx, c: primary}, cfg.Folder); err != nil {
			return err
		} else if created {
			m.emit(Event{Kind: EventFolderCreated})
		}
	}

	copyList := pl.copyList(l, cfg.Limit)
	maxSize, isAppendLimit := cfg.sizeLimit(imapappend.AppendLimit(primary.Caps()))
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
	if copyList.len() > 0 && folder.messages > 0 && !cfg.DryRun {
		m.Stats.IndexTotal.Store(int64(folder.messages))
		m.emit(Event{Kind: EventIndexing})
		index := m.Index
		if index == nil {
			index = m.IMAP
		}
		if ic, err = DialIMAP(ctx, index); err != nil {
			return err
		}
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
	if adopt == nil && ic != nil {
		// Indexed, and nothing to adopt: some providers cap how many
		// connections an account may hold.
		ic.Close()
		ic = nil
	}

	m.Stats.SetupNanos.Add(int64(time.Since(setupStart)))
	p := &pipeline{m: m, cfg: cfg, pc: pc, adopt: adopt, confirmed: pl.deletable, maxSize: maxSize}
	if !cfg.DryRun {
		p.first, primary = primary, nil // the pipeline appends on it, and closes it
	}
	if !m.skipDestructive(cfg, func() { m.announce(cfg, l, pl, copyList) }) {
		if err := p.run(ctx, copyList); err != nil {
			return err
		}
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

// skipDestructive is the one gate in front of every step that writes or
// deletes: a journal record, CREATE, RETR and APPEND, DELE. A dry run
// takes the same path as a real one up to each such step, and there the
// gate says no, after calling report, when given, to tell what would have
// happened (as rclone's SkipDestructive does). Reading steps (logins, the
// listing, STATUS) run in a dry run as in a real one; QUIT commits nothing,
// since no DELE was sent.
func (m *Migrator) skipDestructive(cfg *Config, report func()) bool {
	if !cfg.DryRun {
		return false
	}
	if report != nil {
		report()
	}
	return true
}

// announce reports what a dry run would copy and delete: would-copy for
// each message to copy, would-delete for each done message that may go and,
// with Delete, for each message to copy.
func (m *Migrator) announce(cfg *Config, l *listing, pl *plan, c *copyList) {
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
}
