package bridge

import (
	"github.com/pop2imap/pop2imap/state"
)

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
