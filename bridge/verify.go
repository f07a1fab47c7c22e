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
	// Normalised counts the '=' verdicts that needed line-ending
	// normalisation.
	Normalised int
	// FolderMissing is set when the IMAP folder does not exist.
	FolderMissing bool
}

// OK reports whether every message is in the folder, unchanged.
func (s *VerifyStats) OK() bool { return s.Same == s.Checked }

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
	// Window is how many RETR commands may be in flight; 0 means 16.
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
		folder = "INBOX"
	}
	timeout := v.Timeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	window := v.Window
	if window <= 0 {
		window = 16
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
	if folder, err = resolveFolder(ic, folder, timeout); err != nil { // "/" between levels, as migrate takes it
		return stats, err
	}
	idx, err := buildIndex(ic, folder, timeout)
	if err != nil {
		return stats, err
	}
	stats.FolderMissing = idx.missing

	c := &checker{v: v, pc: pc, ic: ic, idx: idx, folder: folder, timeout: timeout,
		claimed: map[imap.UID]bool{}, stats: stats}
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
	logout := ic.Logout()
	withDeadline(ic, timeout, logout.Wait)
	return stats, nil
}

// imapEntry is what the index keeps of one stored message: a few fields,
// never its body.
type imapEntry struct {
	uid       imap.UID
	size      int64
	messageID string
}

// folderIndex is the target folder, read once.
type folderIndex struct {
	missing     bool
	uidValidity uint32
	byUID       map[imap.UID]*imapEntry
	byMessageID map[string][]*imapEntry
	bySize      map[int64][]*imapEntry
}

// buildIndex EXAMINEs the folder and reads UID, RFC822.SIZE and Message-ID
// of every message in one UID FETCH.
func buildIndex(c *imapclient.Client, folder string, timeout time.Duration) (*folderIndex, error) {
	idx := &folderIndex{byUID: map[imap.UID]*imapEntry{}, byMessageID: map[string][]*imapEntry{}, bySize: map[int64][]*imapEntry{}}
	var sel *imap.SelectData
	err := withDeadline(c, timeout, func() error {
		var err error
		sel, err = c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
		return err
	})
	var ierr *imap.Error
	if errors.As(err, &ierr) && ierr.Type == imap.StatusResponseTypeNo {
		idx.missing = true
		return idx, nil
	}
	if err != nil {
		return nil, fmt.Errorf("imap: EXAMINE %q: %w", folder, err)
	}
	idx.uidValidity = sel.UIDValidity
	if sel.NumMessages == 0 {
		return idx, nil
	}
	// A fetch of the whole folder takes longer than one command on a big
	// folder: allow a second per 2,000 messages on top.
	d := timeout + time.Duration(sel.NumMessages/2000)*time.Second
	err = withDeadline(c, d, func() error {
		cmd := c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{
			UID:        true,
			RFC822Size: true,
			BodySection: []*imap.FetchItemBodySection{{
				Specifier:    imap.PartSpecifierHeader,
				HeaderFields: []string{"Message-ID"},
				Peek:         true,
			}},
		})
		defer cmd.Close()
		for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
			e := &imapEntry{}
			for item := msg.Next(); item != nil; item = msg.Next() {
				switch item := item.(type) {
				case imapclient.FetchItemDataUID:
					e.uid = item.UID
				case imapclient.FetchItemDataRFC822Size:
					e.size = item.Size
				case imapclient.FetchItemDataBodySection:
					if item.Literal == nil {
						continue
					}
					hdr, err := io.ReadAll(io.LimitReader(item.Literal, maxHeaderCapture))
					if err != nil {
						return err
					}
					io.Copy(io.Discard, item.Literal)
					e.messageID = parseMeta(hdr).MessageID
				}
			}
			if e.uid == 0 {
				continue
			}
			idx.byUID[e.uid] = e
			idx.bySize[e.size] = append(idx.bySize[e.size], e)
			if e.messageID != "" {
				idx.byMessageID[e.messageID] = append(idx.byMessageID[e.messageID], e)
			}
		}
		return cmd.Close()
	})
	if err != nil {
		return nil, fmt.Errorf("imap: UID FETCH 1:* in %q: %w", folder, err)
	}
	return idx, nil
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
	// reserved maps the UIDs the journal gives to listed messages to their
	// message numbers, so that no other message takes them.
	reserved map[imap.UID]int
	// claimed holds the UIDs already matched, so one stored copy never
	// stands for two messages.
	claimed map[imap.UID]bool
}

// matchJournal pairs listed messages with the journal entries that
// recorded their copies, each entry used once, as migrate pairs them.
func (c *checker) matchJournal(listing []listedMsg) error {
	c.journal, c.reserved = map[int]state.Entry{}, map[imap.UID]int{}
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
				c.reserved[imap.UID(e.UID)] = l.num
			}
			break
		}
	}
	return nil
}

// journalUID is the UID the journal recorded for message num, if it is
// still in the folder.
func (c *checker) journalUID(num int) *imapEntry {
	e, ok := c.journal[num]
	if !ok || e.UID == 0 || c.reserved[imap.UID(e.UID)] != num {
		return nil
	}
	return c.idx.byUID[imap.UID(e.UID)]
}

// free reports whether stored message ie may still match message num.
func (c *checker) free(ie *imapEntry, num int) bool {
	if c.claimed[ie.uid] {
		return false
	}
	owner, ok := c.reserved[ie.uid]
	return !ok || owner == num
}

func (c *checker) report(r VerifyResult) {
	c.stats.Checked++
	switch r.Mark {
	case VerifySame:
		c.stats.Same++
		if r.Normalised {
			c.stats.Normalised++
		}
		c.claimed[imap.UID(r.UID)] = true
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

// popDigest is what one RETR yields: sizes and hashes, never the body.
type popDigest struct {
	listedMsg
	size      int64
	crlfSize  int64 // the size with every line ending made CRLF, as Dovecot serves it
	sum       [sha256.Size]byte
	loose     [sha256.Size]byte // crlfHasher's loose hash
	messageID string
	err       error // a -ERR for this message
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
	d.size, d.crlfSize = size, n.total()
	sum.Sum(d.sum[:0])
	loose.Sum(d.loose[:0])
	d.messageID = parseMeta(hc.buf).MessageID
	return d, nil
}

// checkFull finds the copy of one retrieved message. Candidates are the
// journal's UID, then the stored messages with its Message-ID (all fetched
// and hashed, whatever their size, since a server may rewrite line
// endings), then any stored message of its exact size or of its size with
// every line ending made CRLF.
func (c *checker) checkFull(d *popDigest) error {
	r := VerifyResult{Number: d.num, UIDL: d.uidl, Size: d.size, MessageID: d.messageID}
	if d.err != nil {
		r.Mark, r.Size, r.Err = VerifyError, d.listedMsg.size, d.err
		c.report(r)
		return nil
	}
	type candidate struct {
		*imapEntry
		by string
	}
	var cands []candidate
	seen := map[imap.UID]bool{}
	add := func(ie *imapEntry, by string) {
		if ie != nil && !seen[ie.uid] && c.free(ie, d.num) {
			seen[ie.uid] = true
			cands = append(cands, candidate{ie, by})
		}
	}
	add(c.journalUID(d.num), "journal")
	if d.messageID != "" {
		for _, ie := range c.idx.byMessageID[d.messageID] {
			add(ie, "message-id")
		}
	}
	// The copy that should be this message, if its bytes differ.
	var expected *candidate
	if len(cands) > 0 {
		expected = &cands[0]
	}
	for _, size := range []int64{d.size, d.crlfSize} {
		for _, ie := range c.idx.bySize[size] {
			add(ie, "hash")
		}
	}
	for _, cand := range cands {
		got, err := fetchDigest(c.ic, cand.uid, c.timeout, cand.size)
		if err != nil {
			var ierr *imap.Error
			if !errors.As(err, &ierr) {
				return fmt.Errorf("imap: UID FETCH %d in %q: %w", cand.uid, c.folder, err)
			}
			r.Mark, r.UID, r.By, r.Err = VerifyError, uint32(cand.uid), cand.by, err
			c.report(r)
			return nil
		}
		if got.size == d.size && got.sum == d.sum {
			r.Mark, r.UID, r.By = VerifySame, uint32(cand.uid), cand.by
			c.report(r)
			return nil
		}
		if got.loose == d.loose {
			r.Mark, r.UID, r.By, r.Normalised = VerifySame, uint32(cand.uid), cand.by, true
			c.report(r)
			return nil
		}
	}
	if expected != nil {
		r.Mark, r.UID, r.By = VerifyDiffer, uint32(expected.uid), expected.by
	} else {
		r.Mark = VerifyMissing
	}
	c.report(r)
	return nil
}

// imapDigest is the hashes of one stored message.
type imapDigest struct {
	size       int64
	sum, loose [sha256.Size]byte
}

// fetchDigest streams one stored message through both hashes without
// holding it in memory.
func fetchDigest(c *imapclient.Client, uid imap.UID, timeout time.Duration, size int64) (imapDigest, error) {
	var d imapDigest
	found := false
	err := withDeadline(c, timeout+time.Duration(size/100_000)*time.Second, func() error {
		cmd := c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{
			UID:         true,
			BodySection: []*imap.FetchItemBodySection{{Peek: true}},
		})
		defer cmd.Close()
		for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
			for item := msg.Next(); item != nil; item = msg.Next() {
				body, ok := item.(imapclient.FetchItemDataBodySection)
				if !ok || body.Literal == nil {
					continue
				}
				sum, loose := sha256.New(), newCRLFHasher()
				n, err := io.Copy(io.MultiWriter(sum, loose), body.Literal)
				if err != nil {
					return err
				}
				d.size, found = n, true
				sum.Sum(d.sum[:0])
				loose.Sum(d.loose[:0])
			}
		}
		return cmd.Close()
	})
	if err == nil && !found {
		err = &imap.Error{Type: imap.StatusResponseTypeNo, Text: "the server sent no body (expunged meanwhile?)"}
	}
	return d, err
}

// quickBatch checks a batch without retrieving anything. A message is
// taken as copied when the journal's UID for it is still in the folder
// under the same UIDVALIDITY: an IMAP message never changes under its UID,
// so it is what was appended. Otherwise a stored message must have its
// Message-ID (read with TOP n 0) and its LIST size, or, without a
// Message-ID, just its size.
func (c *checker) quickBatch(batch []listedMsg) error {
	for _, l := range batch {
		r := VerifyResult{Number: l.num, UIDL: l.uidl, Size: l.size}
		if ie := c.journalUID(l.num); ie != nil {
			r.Mark, r.UID, r.By, r.MessageID = VerifySame, uint32(ie.uid), "journal", c.journal[l.num].MessageID
			c.report(r)
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
		var pool []*imapEntry
		by := "size"
		if r.MessageID != "" {
			pool, by = c.idx.byMessageID[r.MessageID], "message-id"
		} else {
			pool = c.idx.bySize[l.size]
		}
		for _, ie := range pool {
			if !c.free(ie, l.num) {
				continue
			}
			if ie.size == l.size {
				r.Mark, r.UID, r.By = VerifySame, uint32(ie.uid), by
				break
			}
			if r.Mark == VerifyMissing {
				r.Mark, r.UID, r.By = VerifyDiffer, uint32(ie.uid), by
			}
		}
		c.report(r)
	}
	return nil
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
	delay := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		pc, err := DialPOP3(ctx, ep)
		var cerr *ConnectError
		if err == nil || attempt >= 5 || !errors.As(err, &cerr) || !cerr.Temporary() {
			return pc, err
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		delay = min(2*delay, time.Second)
	}
}
