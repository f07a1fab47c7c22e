package bridge

import (
	"cmp"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"slices"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// This file is the one place that decides whether the IMAP folder already
// holds a message: migrate asks it before appending a message the journal
// does not know, and verify asks it for every message. Both build the same
// index of the folder and confirm candidates by the same rule (sameBytes).

// fingerprint is what identifies one message's bytes.
type fingerprint struct {
	size     int64
	crlfSize int64 // the size with every line ending made CRLF, as Dovecot serves it
	sum      [sha256.Size]byte
	loose    [sha256.Size]byte // crlfHasher's loose hash
	// messageID is the Message-ID header, "" when there is none.
	messageID string
}

// indexed is what the index keeps of one stored message: 24 bytes, never
// its body or even its Message-ID, so that a folder of 100,000 messages
// costs a few MiB.
type indexed struct {
	uid  imap.UID
	size int64
	mid  uint64 // hash of the Message-ID; 0 when there is none
}

// folderIndex is the target folder, read once per session with one
// pipelined FETCH. Stored messages are named by their position in msgs,
// which is in UID order.
type folderIndex struct {
	missing     bool
	uidValidity uint32
	seed        maphash.Seed
	msgs        []indexed
	byMID       []int32 // positions, ordered by mid
	bySize      []int32 // positions, ordered by size
	// claimed marks the stored messages that a source message already
	// owns, so that one stored copy never stands for two messages.
	claimed []bool
}

// midHash hashes a Message-ID for the index; "" gives 0.
func (x *folderIndex) midHash(mid string) uint64 {
	if mid == "" {
		return 0
	}
	h := maphash.String(x.seed, mid)
	if h == 0 {
		h = 1
	}
	return h
}

// indexProgress, when not nil, is told how many messages of how many the
// index has read so far.
type indexProgress func(done, total int64)

// buildIndex EXAMINEs the folder and reads UID, RFC822.SIZE and Message-ID
// of every message in one UID FETCH. A missing folder gives an empty index
// with missing set. The folder stays selected (read-only) afterwards, so
// that candidates can be fetched.
func buildIndex(c *imapclient.Client, folder string, timeout time.Duration, progress indexProgress) (*folderIndex, error) {
	x := &folderIndex{seed: maphash.MakeSeed()}
	var sel *imap.SelectData
	err := withDeadline(c, timeout, func() error {
		var err error
		sel, err = c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
		return err
	})
	var ierr *imap.Error
	if errors.As(err, &ierr) && ierr.Type == imap.StatusResponseTypeNo {
		x.missing = true
		return x, nil
	}
	if err != nil {
		return nil, fmt.Errorf("imap: EXAMINE %q: %w", folder, err)
	}
	x.uidValidity = sel.UIDValidity
	if sel.NumMessages == 0 {
		return x, nil
	}
	total := int64(sel.NumMessages)
	x.msgs = make([]indexed, 0, min(total, 1<<20))
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
			var e indexed
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
					e.mid = x.midHash(parseMeta(hdr).MessageID)
				}
			}
			if e.uid == 0 {
				continue
			}
			x.msgs = append(x.msgs, e)
			if progress != nil && len(x.msgs)%1000 == 0 {
				progress(int64(len(x.msgs)), total)
			}
		}
		return cmd.Close()
	})
	if err != nil {
		return nil, fmt.Errorf("imap: UID FETCH 1:* in %q: %w", folder, err)
	}
	if progress != nil {
		progress(int64(len(x.msgs)), total)
	}
	x.sort()
	return x, nil
}

// sort orders msgs by UID (servers send them so, but need not) and builds
// the two orderings that lookups search.
func (x *folderIndex) sort() {
	slices.SortFunc(x.msgs, func(a, b indexed) int { return cmp.Compare(a.uid, b.uid) })
	x.byMID = make([]int32, len(x.msgs))
	x.bySize = make([]int32, len(x.msgs))
	for i := range x.msgs {
		x.byMID[i], x.bySize[i] = int32(i), int32(i)
	}
	slices.SortFunc(x.byMID, func(a, b int32) int { return cmp.Compare(x.msgs[a].mid, x.msgs[b].mid) })
	slices.SortFunc(x.bySize, func(a, b int32) int { return cmp.Compare(x.msgs[a].size, x.msgs[b].size) })
	x.claimed = make([]bool, len(x.msgs))
}

// len is the number of stored messages indexed.
func (x *folderIndex) len() int { return len(x.msgs) }

// byUID returns the position of the stored message with uid.
func (x *folderIndex) byUID(uid imap.UID) (int32, bool) {
	i, ok := slices.BinarySearchFunc(x.msgs, uid, func(e indexed, uid imap.UID) int { return cmp.Compare(e.uid, uid) })
	return int32(i), ok
}

// claim marks the stored message with uid as owned, if it is indexed.
func (x *folderIndex) claimUID(uid imap.UID) {
	if k, ok := x.byUID(uid); ok {
		x.claimed[k] = true
	}
}

// withMID returns the positions of the stored messages whose Message-ID
// hashes to mid.
func (x *folderIndex) withMID(mid uint64) []int32 {
	if mid == 0 {
		return nil
	}
	return equalRun(x.byMID, func(k int32) uint64 { return x.msgs[k].mid }, mid)
}

// withSize returns the positions of the stored messages of exactly size
// bytes.
func (x *folderIndex) withSize(size int64) []int32 {
	return equalRun(x.bySize, func(k int32) int64 { return x.msgs[k].size }, size)
}

// equalRun returns the run of positions in order, which is sorted by key,
// whose key is want.
func equalRun[K cmp.Ordered](order []int32, key func(int32) K, want K) []int32 {
	lo, _ := slices.BinarySearchFunc(order, want, func(k int32, want K) int { return cmp.Compare(key(k), want) })
	hi := lo
	for hi < len(order) && key(order[hi]) == want {
		hi++
	}
	return order[lo:hi]
}

// candidates returns the stored messages that may be a copy of fp. A copy
// has the same header, so for a message with a Message-ID they are the
// stored messages with that Message-ID, whatever their size (a server may
// rewrite line endings). For one without, they are the stored messages
// without a Message-ID of its exact size, then of its size with every line
// ending made CRLF. A folder of look-alike notifications of one size thus
// costs no fetch per message and size. skip, when not nil, leaves some out.
func (x *folderIndex) candidates(fp *fingerprint, skip func(k int32) bool) []int32 {
	var out []int32
	add := func(ks []int32) {
		for _, k := range ks {
			if (skip == nil || !skip(k)) && x.msgs[k].mid == 0 {
				out = append(out, k)
			}
		}
	}
	if mid := x.midHash(fp.messageID); mid != 0 {
		for _, k := range x.withMID(mid) {
			if skip == nil || !skip(k) {
				out = append(out, k)
			}
		}
		return out
	}
	add(x.withSize(fp.size))
	if fp.crlfSize != fp.size {
		add(x.withSize(fp.crlfSize))
	}
	return out
}

// sameBytes reports whether a stored message, as fetched, is a copy of fp:
// exactly, or only once CRs are left out and NULs read as 0x80 (loose), for
// a server that rewrote line endings as it stored the message.
func sameBytes(fp *fingerprint, got imapDigest) (exact, loose bool) {
	exact = got.size == fp.size && got.sum == fp.sum
	return exact, exact || got.loose == fp.loose
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

// copyMatch is one stored message that holds the same bytes as a source
// message.
type copyMatch struct {
	k     int32 // its position in the index
	loose bool  // the same only once line endings are normalised
}

// findCopies fetches candidates and returns those that hold fp's bytes,
// exact matches before loose ones. With all false it stops at the first
// exact match, which is all that migrate needs; verify asks for all, to
// find extra copies. A candidate that cannot be read ends the search with
// its error, together with its position.
func (x *folderIndex) findCopies(c *imapclient.Client, timeout time.Duration, fp *fingerprint, cands []int32, all bool) ([]copyMatch, int32, error) {
	var exact, loose []copyMatch
	for _, k := range cands {
		if len(exact) > 0 && !all {
			break
		}
		got, err := fetchDigest(c, x.msgs[k].uid, timeout, x.msgs[k].size)
		if err != nil {
			return nil, k, err
		}
		switch e, l := sameBytes(fp, got); {
		case e:
			exact = append(exact, copyMatch{k: k})
		case l:
			loose = append(loose, copyMatch{k: k, loose: true})
		}
	}
	return append(exact, loose...), -1, nil
}
