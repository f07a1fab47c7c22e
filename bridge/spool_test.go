package bridge

import (
	"bytes"
	"crypto/sha256"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// looseReference is the obvious, whole-buffer version of the loose hash's
// rewrite, to check the streaming one against.
func looseReference(b []byte) []byte {
	var out []byte
	for _, c := range b {
		switch c {
		case '\r':
		case 0:
			out = append(out, 0x80)
		default:
			out = append(out, c)
		}
	}
	return out
}

func TestSpoolHashesAndThreshold(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef\n"), 10000)
	tests := []struct {
		name     string
		data     []byte
		onDisk   bool
		wantNorm []byte
	}{
		{"empty", nil, false, nil},
		{"crlf", []byte("a\r\nb\r\n"), false, []byte("a\nb\n")},
		{"bare lf", []byte("a\nb\n"), false, []byte("a\nb\n")},
		{"bare cr", []byte("a\rb\r"), false, []byte("ab")},
		{"mixed with NUL and 8-bit", []byte("\x00\xff\r\r\n\n"), false, []byte("\x80\xff\n\n")},
		{"above threshold goes to disk", big, true, looseReference(big)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// One byte at a time, so a CR and its LF land in different writes.
			sp, err := spoolMessage(iotest.OneByteReader(bytes.NewReader(tt.data)), int64(len(tt.data)), 4096, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer sp.Close()
			if (sp.file != nil) != tt.onDisk {
				t.Errorf("on disk = %v, want %v", sp.file != nil, tt.onDisk)
			}
			if sp.size != int64(len(tt.data)) || sp.sum != sha256.Sum256(tt.data) {
				t.Errorf("size or hash wrong: size %d, want %d", sp.size, len(tt.data))
			}
			if sp.norm != sha256.Sum256(tt.wantNorm) {
				t.Error("loose hash differs from the reference")
			}
			for i := 0; i < 2; i++ { // the reader restarts for a retried APPEND
				r, _ := sp.Reader()
				got, _ := io.ReadAll(r)
				if !bytes.Equal(got, tt.data) {
					t.Fatalf("read %d: spool returned different bytes", i)
				}
			}
		})
	}
}

func TestParseMeta(t *testing.T) {
	tests := []struct {
		name   string
		header string
		id     string
		date   string // RFC 3339, "" for zero
	}{
		{"received wins", "Received: from a by b; Tue, 3 Mar 2015 10:12:01 +0100\r\nDate: Mon, 2 Mar 2015 00:00:00 +0000\r\nMessage-ID: <x@y>\r\n\r\n", "<x@y>", "2015-03-03T10:12:01+01:00"},
		{"topmost received", "Received: by c; Wed, 4 Mar 2015 08:00:00 +0000\r\nReceived: by b; Tue, 3 Mar 2015 08:00:00 +0000\r\n\r\n", "", "2015-03-04T08:00:00Z"},
		{"folded received with comment", "Received: from a\r\n\tby b;\r\n\tTue, 3 Mar 2015 10:12:01 +0000 (UTC)\r\n\r\n", "", "2015-03-03T10:12:01Z"},
		{"date fallback", "Received: garbage without date\r\nDate: Thu, 5 Mar 2015 18:30:00 +0100\r\n\r\n", "", "2015-03-05T18:30:00+01:00"},
		{"no date at all", "Subject: x\r\n\r\n", "", ""},
		{"bare lf header", "Message-ID: <lf@x>\nDate: Sat, 7 Mar 2015 12:00:00 +0000\n\n", "<lf@x>", "2015-03-07T12:00:00Z"},
		{"no header", "\r\nbody only\r\n", "", ""},
		{"garbage", "\x00\x01\x02 not a header", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hc := &headerCapture{}
			io.Copy(hc, iotest.HalfReader(strings.NewReader(tt.header+"Body text\r\n")))
			m := parseMeta(hc.buf)
			if m.MessageID != tt.id {
				t.Errorf("MessageID = %q, want %q", m.MessageID, tt.id)
			}
			if tt.date == "" {
				if !m.Date.IsZero() {
					t.Errorf("Date = %v, want zero", m.Date)
				}
				return
			}
			want, _ := time.Parse(time.RFC3339, tt.date)
			if !m.Date.Equal(want) {
				t.Errorf("Date = %v, want %v", m.Date, want)
			}
		})
	}
}

func TestHeaderCaptureIsBounded(t *testing.T) {
	hc := &headerCapture{}
	io.Copy(hc, io.LimitReader(neverEnding('x'), 10<<20))
	if len(hc.buf) > maxHeaderCapture {
		t.Fatalf("captured %d bytes, bound is %d", len(hc.buf), maxHeaderCapture)
	}
}

type neverEnding byte

func (b neverEnding) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

// TestLooseHashMatchesServerRewrites: the loose hash of a message equals the
// loose hash of the form Dovecot serves it in, as observed with Dovecot
// 2.3.19 (internal/dovecottest TestAppendNormalization).
func TestLooseHashMatchesServerRewrites(t *testing.T) {
	tests := []struct{ sent, served string }{
		{"a\nb\n", "a\r\nb\r\n"},
		{"a\r\r\nb\r\n", "a\r\nb\r\n"},
		{"a\rb\r\n", "a\rb\r\n"},
		{"x\r\ny\r", "x\r\ny"},
		{"nul\x00here\r\n", "nul\x80here\r\n"},
	}
	for _, tt := range tests {
		a, b := newCRLFHasher(), newCRLFHasher()
		a.Write([]byte(tt.sent))
		b.Write([]byte(tt.served))
		if !bytes.Equal(a.Sum(nil), b.Sum(nil)) {
			t.Errorf("loose hash of %q differs from that of %q", tt.sent, tt.served)
		}
	}
	a, b := newCRLFHasher(), newCRLFHasher()
	a.Write([]byte("one body\r\n"))
	b.Write([]byte("another body\r\n"))
	if bytes.Equal(a.Sum(nil), b.Sum(nil)) {
		t.Error("different messages share a loose hash")
	}
}
