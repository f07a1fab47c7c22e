package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"os"
	"sort"
)

// The journal keeps no entry in memory. Its index lives in two temporary
// files next to the journal, so that a journal of a million entries costs
// the process no more memory than one of ten: the operating system's page
// cache holds what is read often, and gives it back under pressure.
//
//   - The rows file has one fixed-size row per entry, in ID order. A row
//     holds the entry's step and where in the journal its records are, so
//     that an entry is read back by decoding at most three records. The
//     newest rows stay in memory until a fixed number of them has
//     gathered.
//   - The slots file is a hash table with open addressing, from the hash
//     of a UIDL to the row of an entry with that UIDL.
//
// The index is a cache: Open rebuilds it from the journal, and it is never
// fsync'd. Its files are removed as soon as they are created (and at the
// next Open, where the system does not allow removing an open file).
//
// A small journal needs no file at all: the smallest hash table (16 KiB)
// stays in memory, and the rows file is only created when the tail first
// fills. So a batch of many small accounts does not create and remove two
// files for each of them.

// indexSuffix names, after the journal's own name, each temporary file of
// the index while it is created: it is unlinked at once, so the name is
// free again for the next one, and a crash in between leaves a file that
// the next Open removes by name (see compactSuffix).
const indexSuffix = ".index-tmp"

// span is where one record line is in the journal: its offset and its
// length, newline included.
type span struct {
	off int64
	n   uint32
}

// row is the index's record of one entry.
type row struct {
	id   uint64
	step Step
	full span // the entry record that created the entry
	app  span // the Appended step record, if any came after full
	last span // the Refused or Deleted step record, if any came after full
}

const rowSize = 48

func (r *row) put(b []byte) {
	binary.LittleEndian.PutUint64(b[0:], r.id)
	binary.LittleEndian.PutUint64(b[8:], uint64(r.full.off))
	binary.LittleEndian.PutUint64(b[16:], uint64(r.app.off))
	binary.LittleEndian.PutUint64(b[24:], uint64(r.last.off))
	binary.LittleEndian.PutUint32(b[32:], r.full.n)
	binary.LittleEndian.PutUint32(b[36:], r.app.n)
	binary.LittleEndian.PutUint32(b[40:], r.last.n)
	b[44] = byte(r.step)
	clear(b[45:rowSize])
}

func (r *row) get(b []byte) {
	r.id = binary.LittleEndian.Uint64(b[0:])
	r.full.off = int64(binary.LittleEndian.Uint64(b[8:]))
	r.app.off = int64(binary.LittleEndian.Uint64(b[16:]))
	r.last.off = int64(binary.LittleEndian.Uint64(b[24:]))
	r.full.n = binary.LittleEndian.Uint32(b[32:])
	r.app.n = binary.LittleEndian.Uint32(b[36:])
	r.last.n = binary.LittleEndian.Uint32(b[40:])
	r.step = Step(b[44])
}

// A slot is a UIDL's hash and its row number plus one; zero marks a free
// slot.
const slotSize = 16

// minSlots is the smallest hash table; it always has a power of two slots
// and is at most half full.
const minSlots = 1024

// seg is a run of consecutive IDs stored in consecutive rows. A journal
// written by pop2imap has a single one; only a hand-edited journal with
// gaps between IDs has more.
type seg struct {
	firstID  uint64
	firstRow int64
}

// index is the journal's on-disk index. It is used under the journal's
// mutex.
type index struct {
	name   string // of its temporary files while they are created
	rows   store  // nil until the tail first fills
	slots  store
	nrows  int64
	nslots int64 // a power of two
	segs   []seg
	seed   maphash.Seed
	b      [rowSize]byte

	// The newest rows are kept in tail, from row tailRow on, and written
	// to the file when it fills: rows are added in order, and the newest
	// are the ones that change, so most row reads and writes cost no
	// system call.
	tail    []byte
	tailRow int64
}

// tailRows is how many rows the tail holds.
const tailRows = 1024

// openIndex creates an empty index, sized for about want entries, in
// unlinked temporary files created under name.
func openIndex(name string, want int64) (*index, error) {
	x := &index{name: name, seed: maphash.MakeSeed(), tail: make([]byte, 0, tailRows*rowSize)}
	var err error
	n := int64(minSlots)
	for n < 2*want {
		n *= 2
	}
	if x.slots, err = x.newSlots(n); err != nil {
		x.close()
		return nil, err
	}
	x.nslots = n
	return x, nil
}

func (x *index) tempFile() (*os.File, error) {
	f, err := os.OpenFile(x.name, os.O_RDWR|os.O_CREATE|os.O_TRUNC|oNoFollow, 0o600)
	if err != nil {
		return nil, fileErr("create index file", x.name, err)
	}
	os.Remove(f.Name()) // fails only where open files cannot be removed
	return f, nil
}

// store is where the index keeps rows or slots: an unlinked temporary
// file, or memory while it is small.
type store interface {
	io.ReaderAt
	io.WriterAt
	Truncate(size int64) error
	Close() error
	Name() string
}

// memStore is a store in memory.
type memStore struct{ b []byte }

func (m *memStore) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *memStore) WriteAt(p []byte, off int64) (int, error) {
	if end := off + int64(len(p)); end > int64(len(m.b)) {
		m.Truncate(end)
	}
	return copy(m.b[off:], p), nil
}

func (m *memStore) Truncate(size int64) error {
	if size < int64(len(m.b)) {
		clear(m.b[size:])
		m.b = m.b[:size]
	} else {
		m.b = append(m.b, make([]byte, size-int64(len(m.b)))...)
	}
	return nil
}

func (m *memStore) Close() error { m.b = nil; return nil }
func (m *memStore) Name() string { return "(index in memory)" }

// drop closes s and removes its file, if it has one.
func drop(s store) {
	s.Close()
	if _, ok := s.(*os.File); ok {
		os.Remove(s.Name())
	}
}

// newSlots returns an empty hash table of n slots: in memory when it is
// the smallest, else in a file.
func (x *index) newSlots(n int64) (store, error) {
	if n <= minSlots {
		return &memStore{b: make([]byte, n*slotSize)}, nil
	}
	f, err := x.tempFile()
	if err != nil {
		return nil, err
	}
	if err := f.Truncate(n * slotSize); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fileErr("size index file", f.Name(), err)
	}
	return f, nil
}

func (x *index) close() {
	for _, s := range []store{x.rows, x.slots} {
		if s != nil {
			drop(s)
		}
	}
	x.rows, x.slots = nil, nil
}

// reset empties the index, keeping its files.
func (x *index) reset() error {
	if x.rows != nil {
		if err := x.rows.Truncate(0); err != nil {
			return fileErr("truncate index file", x.rows.Name(), err)
		}
	}
	if err := x.slots.Truncate(0); err != nil {
		return fileErr("truncate index file", x.slots.Name(), err)
	}
	if err := x.slots.Truncate(x.nslots * slotSize); err != nil {
		return fileErr("size index file", x.slots.Name(), err)
	}
	x.nrows, x.segs = 0, nil
	x.tail, x.tailRow = x.tail[:0], 0
	return nil
}

// rowOf returns the row number of entry id.
func (x *index) rowOf(id uint64) (int64, bool) {
	k := sort.Search(len(x.segs), func(k int) bool { return x.segs[k].firstID > id }) - 1
	if k < 0 {
		return 0, false
	}
	n := x.segs[k].firstRow + int64(id-x.segs[k].firstID)
	end := x.nrows
	if k+1 < len(x.segs) {
		end = x.segs[k+1].firstRow
	}
	return n, n < end
}

func (x *index) readRow(n int64, r *row) error {
	if n >= x.tailRow {
		r.get(x.tail[(n-x.tailRow)*rowSize:])
		return nil
	}
	if _, err := x.rows.ReadAt(x.b[:], n*rowSize); err != nil {
		return fileErr("read index file", x.rows.Name(), err)
	}
	r.get(x.b[:])
	return nil
}

func (x *index) writeRow(n int64, r *row) error {
	if n >= x.tailRow {
		k := int((n - x.tailRow) * rowSize)
		if k < len(x.tail) {
			r.put(x.tail[k:])
			return nil
		}
		if k > len(x.tail) {
			return fmt.Errorf("state: index row %d written before row %d", n, x.tailRow+int64(len(x.tail)/rowSize))
		}
		// n is the next new row.
		if len(x.tail) == tailRows*rowSize {
			if err := x.flushTail(); err != nil {
				return err
			}
		}
		x.tail = x.tail[:len(x.tail)+rowSize]
		r.put(x.tail[len(x.tail)-rowSize:])
		return nil
	}
	r.put(x.b[:])
	if _, err := x.rows.WriteAt(x.b[:], n*rowSize); err != nil {
		return fileErr("write index file", x.rows.Name(), err)
	}
	return nil
}

// flushTail writes the tail to the file and empties it.
func (x *index) flushTail() error {
	if x.rows == nil {
		f, err := x.tempFile()
		if err != nil {
			return err
		}
		x.rows = f
	}
	if _, err := x.rows.WriteAt(x.tail, x.tailRow*rowSize); err != nil {
		return fileErr("write index file", x.rows.Name(), err)
	}
	x.tailRow += int64(len(x.tail) / rowSize)
	x.tail = x.tail[:0]
	return nil
}

// add indexes a new entry, whose ID is higher than any before it.
func (x *index) add(uidl string, r *row) error {
	n := x.nrows
	if k := len(x.segs); k == 0 || x.segs[k-1].firstID+uint64(n-x.segs[k-1].firstRow) != r.id {
		x.segs = append(x.segs, seg{firstID: r.id, firstRow: n})
	}
	if err := x.writeRow(n, r); err != nil {
		return err
	}
	x.nrows++
	if 2*x.nrows > x.nslots {
		if err := x.grow(); err != nil {
			return err
		}
	}
	return insertSlot(x.slots, x.nslots, maphash.String(x.seed, uidl), n)
}

// probeSlots is how many slots a probe reads with one system call. The
// table is at most half full, so a probe seldom needs a second read.
const probeSlots = 32

// probe calls fn with each slot of table f (of size slots) in the probe
// sequence of hash h, and its number, until fn returns true or a free slot
// is reached; it returns the number of the slot where it stopped.
func probe(f store, size int64, h uint64, fn func(i int64, slot []byte) bool) (int64, error) {
	var buf [probeSlots * slotSize]byte
	i := int64(h) & (size - 1)
	for {
		b := buf[:min(probeSlots, size-i)*slotSize]
		if _, err := f.ReadAt(b, i*slotSize); err != nil {
			return 0, fileErr("read index file", f.Name(), err)
		}
		for ; len(b) > 0; b, i = b[slotSize:], i+1 {
			if binary.LittleEndian.Uint64(b[8:]) == 0 || fn(i, b[:slotSize]) {
				return i, nil
			}
		}
		i &= size - 1
	}
}

// insertSlot puts row n under hash h into the table f of size slots.
func insertSlot(f store, size int64, h uint64, n int64) error {
	i, err := probe(f, size, h, func(int64, []byte) bool { return false })
	if err != nil {
		return err
	}
	var b [slotSize]byte
	binary.LittleEndian.PutUint64(b[0:], h)
	binary.LittleEndian.PutUint64(b[8:], uint64(n)+1)
	if _, err := f.WriteAt(b[:], i*slotSize); err != nil {
		return fileErr("write index file", f.Name(), err)
	}
	return nil
}

// grow doubles the hash table, streaming the old one into the new one.
func (x *index) grow() error {
	size := 2 * x.nslots
	f, err := x.newSlots(size)
	if err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	for off, end := int64(0), x.nslots*slotSize; off < end; off += int64(len(buf)) {
		buf = buf[:min(int64(len(buf)), end-off)]
		if _, err := x.slots.ReadAt(buf, off); err != nil {
			f.Close()
			return fileErr("read index file", x.slots.Name(), err)
		}
		for b := buf; len(b) > 0; b = b[slotSize:] {
			if n := binary.LittleEndian.Uint64(b[8:]); n != 0 {
				if err := insertSlot(f, size, binary.LittleEndian.Uint64(b), int64(n-1)); err != nil {
					f.Close()
					return err
				}
			}
		}
	}
	drop(x.slots)
	x.slots, x.nslots = f, size
	return nil
}

// lookup returns the rows whose UIDL may be uidl (they share its hash), in
// row order. The caller checks the UIDL itself.
func (x *index) lookup(uidl string) ([]int64, error) {
	h := maphash.String(x.seed, uidl)
	var out []int64
	_, err := probe(x.slots, x.nslots, h, func(_ int64, slot []byte) bool {
		if binary.LittleEndian.Uint64(slot) == h {
			out = append(out, int64(binary.LittleEndian.Uint64(slot[8:])-1))
		}
		return false
	})
	if err != nil {
		return nil, err
	}
	// A table that grew may have reordered entries of one hash.
	sort.Slice(out, func(a, b int) bool { return out[a] < out[b] })
	return out, nil
}

// readRecord reads and decodes the record at s.
func (j *Journal) readRecord(s span) (*record, error) {
	if cap(j.rbuf) < int(s.n) {
		j.rbuf = make([]byte, s.n)
	}
	b := j.rbuf[:s.n]
	if _, err := j.f.ReadAt(b, s.off); err != nil {
		return nil, err
	}
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return nil, errors.New("no record there")
	}
	r, _, err := parseLine(b[:len(b)-1])
	return r, err
}
