package state

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"time"
	"unicode/utf8"
)

// header is the first line of every journal; the number is the format version.
const (
	headerPrefix  = "pop2imap-journal "
	formatVersion = 1
	header        = "pop2imap-journal 1\n"
)

// crcLen is the length of the checksum field plus the space after it.
const crcLen = 9

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendRecord appends one record line for e to b. A full record carries all
// the entry's fields and creates the entry on replay; otherwise only the ID,
// the step and that step's own fields are written.
func appendRecord(b []byte, e *Entry, full bool) []byte {
	start := len(b)
	b = append(b, "00000000 "...)
	js := len(b)
	b = append(b, `{"i":`...)
	b = strconv.AppendUint(b, e.ID, 10)
	b = append(b, `,"s":"`...)
	b = append(b, e.Step.String()...)
	b = append(b, '"')
	if full {
		b = append(b, `,"u":`...)
		b = appendString(b, e.UIDL)
		b = append(b, `,"l":`...)
		b = strconv.AppendInt(b, e.ListSize, 10)
		b = append(b, `,"z":`...)
		b = strconv.AppendInt(b, e.Size, 10)
		b = append(b, `,"h":"`...)
		b = hex.AppendEncode(b, e.SHA256[:])
		b = append(b, `","n":"`...)
		b = hex.AppendEncode(b, e.NormSHA256[:])
		b = append(b, '"')
		if e.MessageID != "" {
			b = append(b, `,"m":`...)
			b = appendString(b, e.MessageID)
		}
		if !e.InternalDate.IsZero() {
			b = append(b, `,"d":"`...)
			b = e.InternalDate.AppendFormat(b, time.RFC3339Nano)
			b = append(b, '"')
		}
	}
	if (full && (e.UIDValidity != 0 || e.UID != 0)) || (!full && e.Step == Appended) {
		b = append(b, `,"uv":`...)
		b = strconv.AppendUint(b, uint64(e.UIDValidity), 10)
		b = append(b, `,"uid":`...)
		b = strconv.AppendUint(b, uint64(e.UID), 10)
	}
	if (full && e.Reason != "") || (!full && e.Step == Refused) {
		b = append(b, `,"r":`...)
		b = appendString(b, e.Reason)
	}
	if !e.Updated.IsZero() {
		b = append(b, `,"t":"`...)
		b = e.Updated.AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	b = append(b, '}')
	sum := crc32c(b[js:])
	hexCRC(b[start:start+8], sum)
	return append(b, '\n')
}

func hexCRC(dst []byte, sum uint32) {
	const digits = "0123456789abcdef"
	for i := 7; i >= 0; i-- {
		dst[i] = digits[sum&0xf]
		sum >>= 4
	}
}

// appendString appends s as a JSON value that decodes back to exactly s.
// Valid UTF-8 becomes a JSON string with only the escapes JSON requires (so
// a Message-ID keeps its angle brackets readable); anything else becomes
// {"x":"<hex>"}, because a JSON string cannot hold arbitrary bytes.
func appendString(b []byte, s string) []byte {
	if !utf8.ValidString(s) {
		b = append(b, `{"x":"`...)
		b = hex.AppendEncode(b, []byte(s))
		return append(b, `"}`...)
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// rawString is a string field as appendString writes it.
type rawString string

func (s *rawString) UnmarshalJSON(data []byte) error {
	if len(data) > 0 && data[0] == '{' {
		var v struct {
			X string `json:"x"`
		}
		if err := json.Unmarshal(data, &v); err != nil {
			return err
		}
		raw, err := hex.DecodeString(v.X)
		if err != nil {
			return err
		}
		*s = rawString(raw)
		return nil
	}
	var v string
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	*s = rawString(v)
	return nil
}

// record is one decoded journal line.
type record struct {
	ID           uint64     `json:"i"`
	Step         string     `json:"s"`
	UIDL         *rawString `json:"u"`
	ListSize     int64      `json:"l"`
	Size         int64      `json:"z"`
	SHA256       string     `json:"h"`
	NormSHA256   string     `json:"n"`
	MessageID    rawString  `json:"m"`
	InternalDate string     `json:"d"`
	UIDValidity  uint32     `json:"uv"`
	UID          uint32     `json:"uid"`
	Reason       rawString  `json:"r"`
	Updated      string     `json:"t"`
}

// parseLine checks and decodes one record line, without its newline. torn
// reports that the line failed its checksum (or never got as far as having
// one), which is what a write cut short by a crash looks like; a line that
// passes its checksum but does not decode was damaged some other way.
func parseLine(line []byte) (r *record, torn bool, err error) {
	if len(line) < crcLen+2 || line[crcLen-1] != ' ' || !isLowerHex(line[:crcLen-1]) {
		return nil, true, errors.New("malformed record")
	}
	var want [4]byte
	if _, err := hex.Decode(want[:], line[:crcLen-1]); err != nil {
		return nil, true, errors.New("malformed checksum")
	}
	js := line[crcLen:]
	if crc32c(js) != binary.BigEndian.Uint32(want[:]) {
		return nil, true, errors.New("checksum mismatch")
	}
	r = new(record)
	if err := json.Unmarshal(js, r); err != nil {
		return nil, false, fmt.Errorf("bad record: %v", err)
	}
	if r.ID == 0 {
		return nil, false, errors.New("record without an entry ID")
	}
	return r, false, nil
}

func isLowerHex(b []byte) bool {
	for _, c := range b {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// parseHeader checks the first line of a journal, without its newline.
func parseHeader(line []byte) error {
	if !bytes.HasPrefix(line, []byte(headerPrefix)) {
		return errNotJournal
	}
	v, err := strconv.Atoi(string(line[len(headerPrefix):]))
	if err != nil {
		return errNotJournal
	}
	if v != formatVersion {
		return &versionError{version: v}
	}
	return nil
}

var errNotJournal = errors.New("not a pop2imap journal (bad header line)")

type versionError struct{ version int }

func (e *versionError) Error() string {
	return fmt.Sprintf("journal format version %d is not supported (this pop2imap reads version %d)", e.version, formatVersion)
}

func decodeHash(s string) ([32]byte, error) {
	var h [32]byte
	if len(s) != 64 {
		return h, fmt.Errorf("hash %q is not 64 hex digits", s)
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("hash %q: %v", s, err)
	}
	return h, nil
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	return t, nil
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }
