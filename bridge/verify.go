package bridge

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/pop2imap/pop2imap/internal/pacer"
	"github.com/pop2imap/pop2imap/pop3"
	"github.com/pop2imap/pop2imap/state"
)

// VerifyMark is the outcome for one POP3 message, marked as rclone check
// marks files.
type VerifyMark byte

const (
	VerifySame    VerifyMark = '=' // a copy in the folder has the same bytes
	VerifyMissing VerifyMark = '-' // no copy in the folder
	VerifyDiffer  VerifyMark = '*' // a copy is there, by journal or Message-ID, but its bytes differ
	VerifyError   VerifyMark = '!' // the message or its copy could not be read
	// VerifyDuplicate is a second copy of a message that already has one:
	// the folder holds it more than once. It follows the message's own
	// verdict, with the UID of the extra copy.
	VerifyDuplicate VerifyMark = '+'
)

// VerifyResult is the verdict on one POP3 message.
type VerifyResult struct {
	Mark      VerifyMark
	Number    int    // POP3 message number in this session
	UIDL      string //
	Size      int64  // bytes RETR delivered; the LIST size with Quick
	MessageID string // "" when unknown (no header, or Quick without TOP)
	// UID is the IMAP message that matched, or that should have matched
	// and differs; 0 when none.
	UID uint32
	// By says how the copy was found: "journal", "message-id", "hash" (the
	// same bytes under another identity) or, with Quick, "size".
	By string
	// Normalised is set when the copy matches only by the loose hash
	// (crlfHasher: CR bytes left out, NUL read as 0x80), because the server
	// rewrote line endings or NUL as it stored the message (Dovecot turns
	// bare LF into CRLF). The text is the same, so it is marked '='.
	Normalised bool
	Err        error // for VerifyError
}

// VerifyStats counts the verdicts of one run.
type VerifyStats struct {
	Checked, Same, Missing, Differ, Errors int
	// Duplicates counts the extra copies ('+'): stored messages that hold
	// the same bytes as a message that already has its copy. They are not
	// in Checked.
	Duplicates int
	// Normalised counts the '=' verdicts that needed line-ending
	// normalisation.
	Normalised int
	// FolderMissing is set when the IMAP folder does not exist.
	FolderMissing bool
}

// OK reports whether every message is in the folder, unchanged.
func (s *VerifyStats) OK() bool { return s.Same == s.Checked && s.Duplicates == 0 }

// Verifier checks that every message of a POP3 mailbox is in an IMAP folder,
// byte for byte. It only reads: no APPEND, no STORE, no DELE, and the POP3
// session ends without QUIT, so that no server enters its UPDATE state.
type Verifier struct {
	POP3, IMAP *Endpoint
	Folder     string         // "" means INBOX
	Journal    *state.Journal // nil when there is none; it is only read
	// Quick trusts the journal and the sizes instead of comparing bytes:
	// nothing is retrieved, only TOP n 0 for Message-IDs.
	Quick bool
	// Window is how many RETR commands may be in flight; 0 means
	// DefaultWindow.
	Window int
	// Timeout bounds each IMAP command; 0 means one minute.
	Timeout time.Duration
	// OnResult, when set, is called for each POP3 message, in order.
	OnResult func(VerifyResult)
}

// Run verifies the whole mailbox. Verdicts go to OnResult and into the
// returned stats; an error means the run could not finish (the stats then
// cover the messages checked so far).
func (v *Verifier) Run(ctx context.Context) (*VerifyStats, error) {
	stats := &VerifyStats{}
	folder := v.Folder
	if folder == "" {
		folder = DefaultFolder
	}
	timeout := v.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	window := v.Window
	if window <= 0 {
		window = DefaultWindow
	}

	pc, err := dialPOP3Patiently(ctx, v.POP3)
	if err != nil {
		return stats, err
	}
	// No QUIT: RETR without DELE changes nothing on a standard server, and
	// never entering the UPDATE state keeps it that way on servers that
	// would mark retrieved messages as seen.
	defer pc.Close()
	l, err := listMailbox(pc)
	if err != nil {
		return stats, err
	}
	listing := l.all()

	ic, err := DialIMAP(ctx, v.IMAP)
	if err != nil {
		return stats, err
	}
	defer ic.Close()
	if folder, err = resolveFolder(goIMAPFolders{c: ic, timeout: timeout}, folder); err != nil { // "/" between levels, as migrate takes it
		return stats, err
	}
	idx, err := buildIndex(ic, folder, timeout, nil)
	if err != nil {
		return stats, err
	}
	stats.FolderMissing = idx.missing

	c := &checker{v: v, pc: pc, ic: ic, idx: idx, folder: folder, timeout: timeout, stats: stats}
	if err := c.matchJournal(listing); err != nil {
		return stats, &JournalError{err}
	}
	if v.Quick {
		caps, _ := pc.Capabilities()
		c.top = caps != nil && caps.Top
	}
	for start := 0; start < len(listing); start += window {
		if err := ctx.Err(); err != nil {
			return stats, err
		}
		batch := listing[start:min(start+window, len(listing))]
		if v.Quick {
			err = c.quickBatch(batch)
		} else {
			err = c.fullBatch(batch, window)
		}
		if err != nil {
			return stats, err
		}
	}
	c.reportDuplicates()
	logout := ic.Logout()
	withDeadline(ic, timeout, logout.Wait)
	return stats, nil
}

// checker holds the state of one verify run.
type checker struct {
	v       *Verifier
	pc      *pop3.Client
	ic      *imapclient.Client
	idx     *folderIndex
	folder  string
	timeout time.Duration
	stats   *VerifyStats
	top     bool // Quick: the server has TOP, so Message-IDs can be read

	// journal holds, by message number, the journal entry that recorded
	// the message's copy.
	journal map[int]state.Entry
	// reserved maps the stored messages the journal gives to listed
	// messages to their message numbers, so that no other message takes
	// them.
	reserved map[int32]int
	// extras are further stored copies of messages that already have
	// one. Those that no other message claims by the end are duplicates.
	extras []extraCopy
}

// extraCopy is a stored message that holds the same bytes as message num,
// which has its own copy already.
type extraCopy struct {
	num  int
	uidl string
	k    int32
}

// matchJournal pairs listed messages with the journal entries that
// recorded their copies, each entry used once, as migrate pairs them.
func (c *checker) matchJournal(listing []listedMsg) error {
	c.journal, c.reserved = map[int]state.Entry{}, map[int32]int{}
	if c.v.Journal == nil {
		return nil
	}
	used := map[uint64]bool{}
	for _, l := range listing {
		es, err := c.v.Journal.ByUIDL(l.uidl)
		if err != nil {
			return err
		}
		for _, e := range es {
			if used[e.ID] || e.ListSize != l.size || (e.Step != state.Appended && e.Step != state.Deleted) {
				continue
			}
			used[e.ID] = true
			c.journal[l.num] = e
			if e.UID != 0 && (e.UIDValidity == 0 || e.UIDValidity == c.idx.uidValidity) {
				if k, ok := c.idx.byUID(imap.UID(e.UID)); ok {
					c.reserved[k] = l.num
				}
			}
			break
		}
	}
	return nil
}

// journalCopy is the position of the stored message the journal recorded
// for message num, if it is still in the folder.
func (c *checker) journalCopy(num int) (int32, bool) {
	e, ok := c.journal[num]
	if !ok || e.UID == 0 {
		return 0, false
	}
	k, ok := c.idx.byUID(imap.UID(e.UID))
	if !ok || c.reserved[k] != num {
		return 0, false
	}
	return k, true
}

// taken reports whether stored message k may no longer match message num.
func (c *checker) taken(k int32, num int) bool {
	if c.idx.claimed[k] {
		return true
	}
	owner, ok := c.reserved[k]
	return ok && owner != num
}

func (c *checker) report(r VerifyResult) {
	c.stats.Checked++
	switch r.Mark {
	case VerifySame:
		c.stats.Same++
		if r.Normalised {
			c.stats.Normalised++
		}
		c.idx.claimUID(imap.UID(r.UID))
	case VerifyMissing:
		c.stats.Missing++
	case VerifyDiffer:
		c.stats.Differ++
	default:
		c.stats.Errors++
	}
	if c.v.OnResult != nil {
		c.v.OnResult(r)
	}
}

// reportDuplicates marks '+' every extra copy that no message claimed.
// It runs after every message has been checked, so that of two identical
// messages under different UIDLs each keeps its own copy.
func (c *checker) reportDuplicates() {
	for _, x := range c.extras {
		if c.idx.claimed[x.k] {
			continue
		}
		c.idx.claimed[x.k] = true
		c.stats.Duplicates++
		if c.v.OnResult != nil {
			m := c.idx.msgs[x.k]
			c.v.OnResult(VerifyResult{Mark: VerifyDuplicate, Number: x.num, UIDL: x.uidl, Size: m.size, UID: uint32(m.uid)})
		}
	}
}

// popDigest is what one RETR yields: sizes and hashes, never the body.
type popDigest struct {
	listedMsg
	fingerprint
	err error // a -ERR for this message
}

// fullBatch retrieves a batch, hashing each body as it streams, then looks
// for each message's copy. A -ERR for one message marks it '!' and the
// others go on.
func (c *checker) fullBatch(batch []listedMsg, window int) error {
	digests := make([]popDigest, 0, len(batch))
	byNum := make(map[int]listedMsg, len(batch))
	for _, l := range batch {
		byNum[l.num] = l
	}
	rest := batch
	for len(rest) > 0 {
		nums := make([]int, len(rest))
		for i, l := range rest {
			nums[i] = l.num
		}
		done := 0
		err := c.pc.RetrAll(nums, window, func(n int, body io.Reader) error {
			d, err := digestPOP3(byNum[n], body)
			if err != nil {
				return fmt.Errorf("pop3: RETR %d: %w", n, err)
			}
			digests = append(digests, d)
			done++
			return nil
		})
		var perr *pop3.Error
		if err == nil {
			break
		}
		if !errors.As(err, &perr) || done >= len(rest) {
			return err
		}
		// RetrAll stops at the first refusal, which is for the first
		// message not yet handed to the callback.
		digests = append(digests, popDigest{listedMsg: rest[done], err: err})
		rest = rest[done+1:]
	}
	for i := range digests {
		if err := c.checkFull(&digests[i]); err != nil {
			return err
		}
	}
	return nil
}

// digestPOP3 hashes one body: its exact and loose SHA-256, its size as it
// is and with CRLF line endings, and its Message-ID.
func digestPOP3(l listedMsg, body io.Reader) (popDigest, error) {
	d := popDigest{listedMsg: l}
	sum, loose, n := sha256.New(), newCRLFHasher(), &crlfCounter{}
	hc := &headerCapture{}
	size, err := io.Copy(io.MultiWriter(sum, loose, n, hc), body)
	if err != nil {
		return d, err
	}
	d.fingerprint.size, d.crlfSize = size, n.total()
	sum.Sum(d.sum[:0])
	loose.Sum(d.loose[:0])
	d.messageID = parseMeta(hc.buf).MessageID
	return d, nil
}

// checkFull finds the copy of one retrieved message among the folder
// index's candidates (see folderIndex.candidates), the journal's copy
// first. Further copies with the same bytes are remembered as possible
// duplicates.
func (c *checker) checkFull(d *popDigest) error {
	r := VerifyResult{Number: d.num, UIDL: d.uidl, Size: d.fingerprint.size, MessageID: d.messageID}
	if d.err != nil {
		r.Mark, r.Size, r.Err = VerifyError, d.listedMsg.size, d.err
		c.report(r)
		return nil
	}
	var cands []int32
	jk, byJournal := c.journalCopy(d.num)
	if byJournal && !c.idx.claimed[jk] {
		cands = append(cands, jk)
	}
	for _, k := range c.idx.candidates(&d.fingerprint, func(k int32) bool { return c.taken(k, d.num) }) {
		if !byJournal || k != jk {
			cands = append(cands, k)
		}
	}
	mid := c.idx.midHash(d.messageID)
	by := func(k int32) string {
		switch {
		case byJournal && k == jk:
			return "journal"
		case mid != 0 && c.idx.msgs[k].mid == mid:
			return "message-id"
		}
		return "hash"
	}
	matches, bad, err := c.idx.findCopies(c.ic, c.timeout, &d.fingerprint, cands, true)
	if err != nil {
		var ierr *imap.Error
		if !errors.As(err, &ierr) {
			return fmt.Errorf("imap: UID FETCH %d in %q: %w", c.idx.msgs[bad].uid, c.folder, err)
		}
		r.Mark, r.UID, r.By, r.Err = VerifyError, uint32(c.idx.msgs[bad].uid), by(bad), err
		c.report(r)
		return nil
	}
	if len(matches) > 0 {
		k := matches[0].k
		r.Mark, r.UID, r.By, r.Normalised = VerifySame, uint32(c.idx.msgs[k].uid), by(k), matches[0].loose
		c.report(r)
		for _, m := range matches[1:] {
			c.extras = append(c.extras, extraCopy{num: d.num, uidl: d.uidl, k: m.k})
		}
		return nil
	}
	// The copy that should be this message, if its bytes differ.
	r.Mark = VerifyMissing
	for _, k := range cands {
		if b := by(k); b != "hash" {
			r.Mark, r.UID, r.By = VerifyDiffer, uint32(c.idx.msgs[k].uid), b
			break
		}
	}
	c.report(r)
	return nil
}

// quickBatch checks a batch without retrieving anything. A message is
// taken as copied when the journal's UID for it is still in the folder
// under the same UIDVALIDITY: an IMAP message never changes under its UID,
// so it is what was appended. Otherwise a stored message must have its
// Message-ID (read with TOP n 0) and its LIST size, or, without a
// Message-ID, just its size. Further stored messages with the same
// Message-ID and size are remembered as possible duplicates; without a
// Message-ID, a size alone says too little to call anything a duplicate.
func (c *checker) quickBatch(batch []listedMsg) error {
	for _, l := range batch {
		r := VerifyResult{Number: l.num, UIDL: l.uidl, Size: l.size}
		if k, ok := c.journalCopy(l.num); ok && !c.idx.claimed[k] {
			r.Mark, r.UID, r.By, r.MessageID = VerifySame, uint32(c.idx.msgs[k].uid), "journal", c.journal[l.num].MessageID
			c.report(r)
			c.quickExtras(l, r.MessageID, c.idx.msgs[k].size)
			continue
		}
		if c.top {
			mid, err := c.topMessageID(l.num)
			var perr *pop3.Error
			if errors.As(err, &perr) {
				r.Mark, r.Err = VerifyError, err
				c.report(r)
				continue
			}
			if err != nil {
				return err
			}
			r.MessageID = mid
		}
		if e, ok := c.journal[l.num]; ok && r.MessageID == "" {
			r.MessageID = e.MessageID
		}
		r.Mark = VerifyMissing
		var pool []int32
		by := "size"
		if r.MessageID != "" {
			pool, by = c.idx.withMID(c.idx.midHash(r.MessageID)), "message-id"
		} else {
			pool = c.idx.withSize(l.size)
		}
		for _, k := range pool {
			if c.taken(k, l.num) {
				continue
			}
			if c.idx.msgs[k].size == l.size {
				r.Mark, r.UID, r.By = VerifySame, uint32(c.idx.msgs[k].uid), by
				break
			}
			if r.Mark == VerifyMissing {
				r.Mark, r.UID, r.By = VerifyDiffer, uint32(c.idx.msgs[k].uid), by
			}
		}
		c.report(r)
		if r.Mark == VerifySame {
			c.quickExtras(l, r.MessageID, l.size)
		}
	}
	return nil
}

// quickExtras remembers the stored messages other than the claimed copy
// that have message l's Message-ID and size.
func (c *checker) quickExtras(l listedMsg, messageID string, size int64) {
	for _, k := range c.idx.withMID(c.idx.midHash(messageID)) {
		if !c.taken(k, l.num) && c.idx.msgs[k].size == size {
			c.extras = append(c.extras, extraCopy{num: l.num, uidl: l.uidl, k: k})
		}
	}
}

// topMessageID reads message num's header with TOP n 0.
func (c *checker) topMessageID(num int) (string, error) {
	body, err := c.pc.Top(num, 0)
	if err != nil {
		return "", err
	}
	hc := &headerCapture{}
	if _, err := io.Copy(hc, body); err != nil {
		return "", err
	}
	return parseMeta(hc.buf).MessageID, nil
}

// crlfCounter counts the bytes a message would have with every bare LF and
// bare CR made CRLF: the size under which a server that rewrites line
// endings lists the copy.
type crlfCounter struct {
	n      int64
	prevCR bool
}

func (c *crlfCounter) Write(p []byte) (int, error) {
	for _, b := range p {
		if c.prevCR {
			c.prevCR = false
			if b == '\n' {
				c.n++
				continue
			}
			c.n++ // the LF that completes a bare CR
		}
		switch b {
		case '\r':
			c.n++
			c.prevCR = true
		case '\n':
			c.n += 2
		default:
			c.n++
		}
	}
	return len(p), nil
}

func (c *crlfCounter) total() int64 {
	if c.prevCR {
		return c.n + 1
	}
	return c.n
}

// dialPOP3Patiently logs in, trying again a few times, a second apart at
// most, while the server refuses for now: a session that just ended by
// dropping the connection (as verify's own do) may hold the maildrop's
// lock until the server notices, which it answers with [IN-USE].
func dialPOP3Patiently(ctx context.Context, ep *Endpoint) (*pop3.Client, error) {
	retry := pacer.New(5, 100*time.Millisecond)
	for {
		pc, err := DialPOP3(ctx, ep)
		var cerr *ConnectError
		if err == nil || !errors.As(err, &cerr) || !cerr.Temporary() {
			return pc, err
		}
		if ok, werr := retry.Again(ctx); werr != nil {
			return nil, werr
		} else if !ok {
			return nil, err
		}
	}
}
