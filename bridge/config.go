package bridge

import (
	"fmt"
	"sync/atomic"
	"time"
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
	// Memory bounds the bytes of messages held in memory between RETR
	// and the confirmed APPEND; nil means a budget of 16 MiB for this run
	// alone. Runs of many accounts in one process share one.
	Memory *MemoryBudget
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
		c.Folder = DefaultFolder
	}
	if c.IMAPConns <= 0 {
		c.IMAPConns = DefaultIMAPConns
	}
	if c.IMAPConns > MaxIMAPConns {
		c.IMAPConns = MaxIMAPConns
	}
	if c.Window <= 0 {
		c.Window = DefaultWindow
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
		c.Timeout = DefaultTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

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
