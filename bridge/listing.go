package bridge

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"unsafe"

	"github.com/pop2imap/pop2imap/pop3"
)

// listedMsg is one message of the POP3 listing.
type listedMsg struct {
	num  int
	uidl string
	size int64
}

// listing is the POP3 listing in message-number order, kept compact: 12
// bytes per message plus its UIDL, in two allocations with no pointers for
// the garbage collector to follow. A maildrop of a million messages with
// Dovecot's 16-character UIDLs then costs 29 MB rather than the 100 MB or
// more of a slice of listedMsg.
type listing struct {
	recs  []listRec
	uidls []byte // each UIDL as a uvarint length and its bytes
	// big holds the sizes that do not fit in a listRec, by index.
	big map[int32]int64
}

type listRec struct {
	size uint32 // bigSize: see listing.big
	num  uint32
	uoff uint32 // where the UIDL is in uidls
}

// bigSize marks a size too large for a listRec.
const bigSize = math.MaxUint32

func (l *listing) len() int { return len(l.recs) }

// at returns message i of the listing (not message number i).
func (l *listing) at(i int) listedMsg {
	r := &l.recs[i]
	return listedMsg{num: int(r.num), uidl: string(l.uidl(i)), size: l.size(i)}
}

// size returns the size of message i.
func (l *listing) size(i int) int64 {
	if s := l.recs[i].size; s != bigSize {
		return int64(s)
	}
	return l.big[int32(i)]
}

// uidl returns the UIDL of message i without copying it.
func (l *listing) uidl(i int) []byte {
	b := l.uidls[l.recs[i].uoff:]
	n, k := binary.Uvarint(b)
	return b[k : k+int(n)]
}

// index returns the index of message number num.
func (l *listing) index(num int) (int, bool) {
	return slices.BinarySearchFunc(l.recs, num, func(r listRec, n int) int { return cmp.Compare(int(r.num), n) })
}

// all returns the listing as a slice, for the callers that hold it whole.
func (l *listing) all() []listedMsg {
	out := make([]listedMsg, l.len())
	for i := range out {
		out[i] = l.at(i)
	}
	return out
}

// dupUIDLs returns, for each message, whether another message of the
// listing has the same UIDL. A server should not give one out twice, but
// some do for identical messages.
func (l *listing) dupUIDLs() []bool {
	idx := make([]int32, l.len())
	for i := range idx {
		idx[i] = int32(i)
	}
	slices.SortFunc(idx, func(a, b int32) int { return bytes.Compare(l.uidl(int(a)), l.uidl(int(b))) })
	dup := make([]bool, l.len())
	for k := 1; k < len(idx); k++ {
		if bytes.Equal(l.uidl(int(idx[k-1])), l.uidl(int(idx[k]))) {
			dup[idx[k-1]], dup[idx[k]] = true, true
		}
	}
	return dup
}

// maxListingBytes bounds the listing as held, whatever STAT claims: some
// 1.15 million messages with Dovecot's UIDLs (29 bytes each), or 400,000
// with the longest unique-ids RFC 1939 allows (83 bytes). Past it the UIDL
// is refused with a *pop3.ProtocolError, which drops the session rather
// than read the rest. A variable so tests can lower it.
var maxListingBytes = 32 << 20

// listingTooLarge is a *pop3.ProtocolError that also stops the listing: the
// rest of it is not read.
type listingTooLarge struct{ *pop3.ProtocolError }

func (e *listingTooLarge) Unwrap() error        { return e.ProtocolError }
func (e *listingTooLarge) Is(target error) bool { return target == pop3.ErrStopListing }

// listMailbox joins UIDL and LIST into one listing in message-number
// order. STAT, UIDL and LIST go out together when the server allows
// pipelining: one round trip, not three.
func listMailbox(pc *pop3.Client) (*listing, error) {
	var (
		l      *listing
		count  int
		sorted = true
		sized  []bool
		next   int // LIST comes in message-number order too, as a rule
	)
	// STAT first: it bounds the listings, so a server that sends an endless
	// one cannot make pop2imap hold it.
	onStat := func(n int, _ int64) error {
		count = n
		// Sized by STAT, a large listing is not copied as it grows; the
		// hint is capped so that a server's claim alone cannot make
		// pop2imap allocate much.
		hint := min(max(count, 0), 1<<20)
		l = &listing{recs: make([]listRec, 0, hint), uidls: make([]byte, 0, hint*17)}
		return nil
	}
	onUIDL := func(u pop3.UIDInfo) error {
		if u.Number <= 0 || u.Number > math.MaxUint32 || len(l.uidls) > math.MaxUint32-len(u.UID)-binary.MaxVarintLen64 {
			return fmt.Errorf("pop3: UIDL: message %d is out of range", u.Number)
		}
		if held := len(l.recs)*int(unsafe.Sizeof(listRec{})) + len(l.uidls); held > maxListingBytes {
			return &listingTooLarge{&pop3.ProtocolError{Command: "UIDL", Msg: fmt.Sprintf(
				"the listing takes more than %d MiB after %d messages (STAT said %d); pop2imap holds it in memory, so it refuses one this large",
				maxListingBytes>>20, len(l.recs), count)}}
		}
		if n := len(l.recs); n > 0 && uint32(u.Number) <= l.recs[n-1].num {
			sorted = false
		}
		l.recs = append(l.recs, listRec{num: uint32(u.Number), uoff: uint32(len(l.uidls))})
		l.uidls = binary.AppendUvarint(l.uidls, uint64(len(u.UID)))
		l.uidls = append(l.uidls, u.UID...)
		return nil
	}
	// endUIDL puts the UIDL listing in order once it is whole: before the
	// first LIST line, or after an empty LIST.
	endUIDL := func() error {
		if sized != nil {
			return nil
		}
		if !sorted {
			slices.SortStableFunc(l.recs, func(a, b listRec) int { return cmp.Compare(a.num, b.num) })
		}
		for k := 1; k < len(l.recs); k++ {
			if l.recs[k].num == l.recs[k-1].num {
				return fmt.Errorf("pop3: message %d is listed twice in UIDL", l.recs[k].num)
			}
		}
		sized = make([]bool, len(l.recs))
		return nil
	}
	onList := func(m pop3.MessageInfo) error {
		if err := endUIDL(); err != nil {
			return err
		}
		k := next
		if k >= len(l.recs) || int(l.recs[k].num) != m.Number {
			var ok bool
			if k, ok = l.index(m.Number); !ok {
				return nil // not in UIDL: reported below if it matters
			}
		}
		if m.Size >= bigSize {
			if l.big == nil {
				l.big = map[int32]int64{}
			}
			l.big[int32(k)] = m.Size
			l.recs[k].size = bigSize
		} else {
			l.recs[k].size = uint32(m.Size)
		}
		sized[k] = true
		next = k + 1
		return nil
	}
	if err := pc.Listing(onStat, onUIDL, onList); err != nil {
		return nil, err
	}
	if err := endUIDL(); err != nil {
		return nil, err
	}
	for k := range l.recs {
		if !sized[k] {
			return nil, fmt.Errorf("pop3: message %d is in UIDL but not in LIST", l.recs[k].num)
		}
	}
	return l, nil
}
