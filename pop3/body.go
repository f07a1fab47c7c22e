package pop3

import (
	"bytes"
	"fmt"
	"io"
)

// bodyReader streams one dot-stuffed message body (RETR, TOP) straight out
// of the client's read buffer. It keeps only a one-bit state between calls,
// "at the start of a line", so lines of any length pass through the fixed
// buffer. The exact rules are documented on Client.Retr.
type bodyReader struct {
	c         *Client
	label     string // "RETR 17", for errors
	lineStart bool
	size      int64 // bytes delivered, for the trace
	err       error // io.EOF once the terminator was read, or the failure
}

// dotAfterLF marks where stuffing must be looked at: a line that starts
// with a dot.
var dotAfterLF = []byte("\n.")

func (c *Client) openBody(label string) *bodyReader {
	b := &bodyReader{c: c, label: label, lineStart: true}
	c.body = b
	return b
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		// Never block while holding data for the caller.
		c, err := b.chunk(len(p)-n, n == 0)
		if err != nil {
			return n, err
		}
		if c == nil {
			break
		}
		copy(p[n:], c)
		b.consume(c)
		n += len(c)
	}
	return n, nil
}

// WriteTo hands the message to w straight from the read buffer, saving
// io.Copy a copy. A failed write leaves the rest of the body unread, for
// the next command to drain.
func (b *bodyReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		c, err := b.chunk(maxInt, true)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		m, err := w.Write(c)
		if m < 0 || m > len(c) {
			m = 0
		}
		b.consume(c[:m])
		total += int64(m)
		if err == nil && m < len(c) {
			err = io.ErrShortWrite
		}
		if err != nil {
			return total, err
		}
	}
}

// chunk returns the next run of message bytes, at most max long, as a view
// of the read buffer that consume must then take. It handles the dot at a
// line start: a stuffing dot is dropped, the terminator ends the body with
// io.EOF. If block is false it returns nil rather than wait for the network.
func (b *bodyReader) chunk(max int, block bool) ([]byte, error) {
	if b.err != nil {
		return nil, b.err
	}
	r := b.c.r
	for {
		avail := r.Buffered()
		if avail == 0 {
			if !block {
				return nil, nil
			}
			if err := b.fill(1); err != nil {
				return nil, err
			}
			continue
		}
		buf, _ := r.Peek(avail) // already buffered: no I/O, no error
		if b.lineStart && buf[0] == '.' {
			if len(buf) < 3 {
				// ".\r\n" needs three bytes to be told from a stuffed line.
				// A body must still end with ".\r\n", so if fewer than three
				// bytes are left the stream was cut.
				if !block {
					return nil, nil
				}
				if err := b.fill(3); err != nil {
					return nil, err
				}
				continue
			}
			if buf[1] == '\r' && buf[2] == '\n' {
				r.Discard(3)
				b.finish()
				return nil, io.EOF
			}
			r.Discard(1) // the stuffing dot
			b.lineStart = false
			continue
		}
		// Everything up to the next line that starts with a dot is plain
		// data, however many lines that is.
		c := buf
		if len(c) > max {
			c = c[:max]
		}
		if i := bytes.Index(c, dotAfterLF); i >= 0 {
			c = c[:i+1]
		}
		return c, nil
	}
}

// consume takes the bytes of c, a prefix of the last chunk, off the buffer.
func (b *bodyReader) consume(c []byte) {
	if len(c) == 0 {
		return
	}
	b.lineStart = c[len(c)-1] == '\n'
	b.c.r.Discard(len(c))
	b.size += int64(len(c))
}

// fill waits until k bytes are buffered, moving the read deadline forward
// first: the body is alive as long as data keeps arriving.
func (b *bodyReader) fill(k int) error {
	b.c.extendRead()
	_, err := b.c.r.Peek(k)
	if err == nil {
		return nil
	}
	if err == io.EOF {
		err = fmt.Errorf("pop3: %s: message cut off before its terminating line: %w", b.label, io.ErrUnexpectedEOF)
	} else {
		err = fmt.Errorf("pop3: %s: %w", b.label, err)
	}
	b.err = b.c.fail(err)
	return err
}

func (b *bodyReader) finish() {
	b.err = io.EOF
	if b.c.debug != nil {
		fmt.Fprintf(b.c.debug, "S: [%d-byte body]\nS: .\n", b.size)
	}
}

// finishBody ends the life of the body handed out by the last command:
// whatever the caller did not read is read and dropped, so the next reply
// starts in step, and the reader stops working.
func (c *Client) finishBody() error {
	b := c.body
	if b == nil {
		return nil
	}
	c.body = nil
	switch b.err {
	case nil:
		if _, err := b.WriteTo(io.Discard); err != nil {
			return err
		}
		b.err = fmt.Errorf("pop3: %s: body read after the next command was sent", b.label)
		return nil
	case io.EOF:
		return nil
	default:
		return b.err
	}
}
