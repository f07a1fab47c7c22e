package bridge

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"os"
)

// maxHeaderCapture bounds how much of a message's header is kept in memory for
// parsing Message-ID, Received and Date. A header larger than this is still
// copied byte for byte; only the fields beyond the bound go unparsed.
const maxHeaderCapture = 64 << 10

// spool holds one retrieved message until its APPEND is confirmed. Small
// messages stay in memory; a message larger than the threshold goes to an
// unlinked temporary file, so memory stays bounded whatever the server sends
// and nothing is left behind on disk after a crash.
type spool struct {
	mem    []byte
	file   *os.File
	size   int64
	sum    [sha256.Size]byte
	norm   [sha256.Size]byte
	header []byte
	// crlfSize is the size with every line ending made CRLF: the size
	// under which a server that rewrites line endings stores the copy.
	crlfSize int64
}

// spoolMessage copies r into a new spool, hashing the bytes as they pass. The
// caller must Close the spool. hint is the size the server announced, or 0:
// a message expected to stay in memory gets its buffer in one allocation
// instead of a series of doublings, which halves the garbage per message.
func spoolMessage(r io.Reader, hint, threshold int64, dir string) (*spool, error) {
	sp := &spool{}
	if hint > 0 && hint <= threshold {
		sp.mem = make([]byte, 0, min(hint+1024, threshold))
	}
	sum := sha256.New()
	norm := newCRLFHasher()
	w := &spoolWriter{sp: sp, threshold: threshold, dir: dir}
	hc := &headerCapture{}
	crlf := &crlfCounter{}
	_, err := io.Copy(io.MultiWriter(w, sum, norm, hc, crlf), r)
	if err != nil {
		sp.Close()
		return nil, err
	}
	sum.Sum(sp.sum[:0])
	norm.Sum(sp.norm[:0])
	sp.header = hc.buf
	sp.size = w.n
	sp.crlfSize = crlf.total()
	return sp, nil
}

// Reader returns a reader over the whole message from its first byte. Each
// call starts again from the beginning, so an APPEND can be retried.
func (sp *spool) Reader() (io.Reader, error) {
	if sp.file == nil {
		return bytes.NewReader(sp.mem), nil
	}
	return io.NewSectionReader(sp.file, 0, sp.size), nil
}

// Close releases the memory or the temporary file.
func (sp *spool) Close() error {
	sp.mem = nil
	if sp.file != nil {
		err := sp.file.Close()
		sp.file = nil
		return err
	}
	return nil
}

type spoolWriter struct {
	sp        *spool
	threshold int64
	dir       string
	n         int64
}

func (w *spoolWriter) Write(p []byte) (int, error) {
	sp := w.sp
	if sp.file == nil && w.n+int64(len(p)) > w.threshold {
		f, err := os.CreateTemp(w.dir, "pop2imap-spool-*")
		if err != nil {
			return 0, fmt.Errorf("bridge: spool: %w", err)
		}
		// Unlink at once: the open descriptor keeps the data, and a crash
		// leaves no copy of anyone's mail in the temp directory.
		os.Remove(f.Name())
		if _, err := f.Write(sp.mem); err != nil {
			f.Close()
			return 0, fmt.Errorf("bridge: spool: %w", err)
		}
		sp.mem = nil
		sp.file = f
	}
	if sp.file != nil {
		n, err := sp.file.Write(p)
		w.n += int64(n)
		if err != nil {
			return n, fmt.Errorf("bridge: spool: %w", err)
		}
		return n, nil
	}
	sp.mem = append(sp.mem, p...)
	w.n += int64(len(p))
	return len(p), nil
}

// headerCapture keeps the bytes up to and including the blank line that ends
// the header, or up to maxHeaderCapture bytes, whichever comes first.
type headerCapture struct {
	buf  []byte
	done bool
}

func (h *headerCapture) Write(p []byte) (int, error) {
	if h.done {
		return len(p), nil
	}
	start := len(h.buf) - 3
	if start < 0 {
		start = 0
	}
	room := maxHeaderCapture - len(h.buf)
	chunk := p
	if len(chunk) > room {
		chunk = chunk[:room]
		h.done = true
	}
	h.buf = append(h.buf, chunk...)
	if i := bytes.Index(h.buf[start:], []byte("\n\r\n")); i >= 0 {
		h.buf = h.buf[:start+i+3]
		h.done = true
	} else if i := bytes.Index(h.buf[start:], []byte("\n\n")); i >= 0 {
		h.buf = h.buf[:start+i+2]
		h.done = true
	}
	return len(p), nil
}

// crlfHasher computes the loose hash: SHA-256 of the message with every CR
// byte left out and every NUL byte read as 0x80. IMAP servers rewrite stored
// mail in small ways (Dovecot turns a bare LF into CRLF, "\r\r\n" into
// "\r\n", drops a final bare CR, and serves NUL as 0x80), so a copy stored
// by an interrupted run may not hash exactly like the bytes sent. The loose
// hash still recognises it. It is only ever used together with a Message-ID
// or date search and after the exact hash failed to match.
type crlfHasher struct {
	h   hash.Hash
	out []byte
}

func newCRLFHasher() *crlfHasher {
	return &crlfHasher{h: sha256.New(), out: make([]byte, 0, 8192)}
}

func (c *crlfHasher) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		chunk := p[:min(len(p), cap(c.out))]
		p = p[len(chunk):]
		out := c.out[:0]
		for _, b := range chunk {
			switch b {
			case '\r':
			case 0:
				out = append(out, 0x80)
			default:
				out = append(out, b)
			}
		}
		c.h.Write(out)
	}
	return n, nil
}

// Sum appends the loose hash of everything written.
func (c *crlfHasher) Sum(b []byte) []byte {
	return c.h.Sum(b)
}
