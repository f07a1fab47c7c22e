package imapappend

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
)

// Client is a logged-in IMAP connection that sends APPEND, CREATE, NOOP,
// and the STATUS and LIST of a session's folder checks, several at once. Its methods may be called from many goroutines;
// commands go out in the order they take the connection's write lock.
type Client struct {
	wire
	limit   int64 // APPENDLIMIT, 0 when the server does not say
	caps    imap.CapSet
	timeout time.Duration

	wmu sync.Mutex // held while one command is written
	cmu sync.Mutex // held by the one command that collects untagged replies

	mu      sync.Mutex
	tag     int
	pending map[string]chan reply
	collect *collector    // where untagged STATUS or LIST replies go
	cont    chan struct{} // a continuation request arrived
	bye     *imap.Error   // the server said BYE
	err     error         // why the connection ended; set once
	done    chan struct{} // closed when the connection ends
}

// Options configure a Client.
type Options struct {
	// Timeout bounds the wait for each reply once the command is out; an
	// APPEND gets a second more per 100 KB of message, for slow links.
	// Zero means one minute. A command without a reply in time ends the
	// connection.
	Timeout time.Duration
}

// maxNonSyncLiteral is the largest message sent without waiting for "+".
// A server may have to drop the connection on a literal it cannot take,
// and for a message this large one round trip costs nothing next to the
// transfer.
const maxNonSyncLiteral = 16 << 20

// NewClient starts a Client on conn, which is connected, secured and
// logged in (see Setup); caps are the server's capabilities after login.
// A goroutine reads the replies until Close or a failure.
func NewClient(conn net.Conn, caps imap.CapSet, opts *Options) *Client {
	c := &Client{caps: caps, limit: AppendLimit(caps), timeout: time.Minute}
	if opts != nil && opts.Timeout > 0 {
		c.timeout = opts.Timeout
	}
	if bc, ok := conn.(*bufferedConn); ok {
		// Keep the bytes a Setup read ahead, without a second buffer.
		c.conn, c.br = bc.Conn, bc.r
		c.bw = newWriter(bc.Conn)
	} else {
		c.setConn(conn)
	}
	c.pending = map[string]chan reply{}
	c.cont = make(chan struct{}, 1)
	c.done = make(chan struct{})
	go c.readLoop()
	return c
}

// reply is a tagged reply and the arguments of its response code.
type reply struct {
	st   *imap.StatusResponse
	args string
}

func (c *Client) readLoop() {
	for {
		line, err := c.readLine()
		if err != nil {
			c.fail(err)
			return
		}
		if strings.HasPrefix(line, "+") {
			select {
			case c.cont <- struct{}{}:
			default:
			}
			continue
		}
		if rest, ok := strings.CutPrefix(line, "* "); ok {
			c.mu.Lock()
			took := c.collected(rest)
			c.mu.Unlock()
			if took {
				continue
			}
			// EXISTS, RECENT and the like say nothing about an APPEND.
			if st, _, err := parseStatus(rest); err == nil && st.Type == imap.StatusResponseTypeBye {
				c.mu.Lock()
				c.bye = (*imap.Error)(st)
				c.mu.Unlock()
			}
			continue
		}
		tag, rest, _ := strings.Cut(line, " ")
		st, args, err := parseStatus(rest)
		if err != nil {
			c.fail(err)
			return
		}
		c.mu.Lock()
		ch := c.pending[tag]
		delete(c.pending, tag)
		c.mu.Unlock()
		if ch == nil {
			c.fail(fmt.Errorf("reply for unknown command %q", clip(line)))
			return
		}
		ch <- reply{st, args}
	}
}

// fail ends the connection; every command still waiting gets err, along
// with the server's BYE when it said one.
func (c *Client) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
		if c.bye != nil {
			c.err = fmt.Errorf("%w (%w)", c.bye, err)
		}
		close(c.done)
	}
	c.mu.Unlock()
	c.conn.Close()
}

func (c *Client) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// roundTrip runs one command: write sends it under the write lock and may
// end early with the server's reply (a refusal before a literal). If no
// reply comes within d, the connection is closed and the outcome is unknown.
func (c *Client) roundTrip(d time.Duration, write func(tag string, ch chan reply) (*reply, error)) (reply, error) {
	r, _, err := c.timedRoundTrip(d, write)
	return r, err
}

// timedRoundTrip is roundTrip that also returns how long the reply took
// from the moment the command was out: the link's round trip plus the
// server's time for it and for the commands before it. It is 0 for a reply
// that came before the command was out.
func (c *Client) timedRoundTrip(d time.Duration, write func(tag string, ch chan reply) (*reply, error)) (reply, time.Duration, error) {
	ch := make(chan reply, 1)
	c.wmu.Lock()
	// The clock starts once it is this command's turn: the wait for another
	// one's large literal to go out is not the server's delay.
	timer := time.AfterFunc(d, func() { c.fail(fmt.Errorf("no reply within %v: %w", d, os.ErrDeadlineExceeded)) })
	defer timer.Stop()
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		c.wmu.Unlock()
		return reply{}, 0, err
	}
	c.tag++
	tag := "P" + strconv.Itoa(c.tag)
	c.pending[tag] = ch
	c.mu.Unlock()
	c.conn.SetWriteDeadline(time.Now().Add(d))
	early, err := write(tag, ch)
	if err == nil && early == nil {
		err = c.bw.Flush()
	}
	c.wmu.Unlock()
	if err != nil {
		c.fail(err)
		return reply{}, 0, err
	}
	if early != nil {
		return *early, 0, nil
	}
	sent := time.Now()
	select {
	case r := <-ch:
		return r, time.Since(sent), nil
	case <-c.done:
		select {
		case r := <-ch:
			return r, time.Since(sent), nil
		default:
			return reply{}, 0, c.failure()
		}
	}
}

// Noop sends NOOP and returns how long its reply took: the link's round
// trip, as near as a command can measure it. written, when not nil, is
// called once the command is queued, with the connection's write lock
// still held, so that no command started after it can go out before it.
func (c *Client) Noop(written func()) (time.Duration, error) {
	rep, rtt, err := c.timedRoundTrip(c.timeout, func(tag string, _ chan reply) (*reply, error) {
		_, err := c.bw.WriteString(tag + " NOOP\r\n")
		if written != nil {
			written()
		}
		return nil, err
	})
	if err != nil {
		return 0, fmt.Errorf("imap: NOOP: %w", err)
	}
	if rep.st.Type != imap.StatusResponseTypeOK {
		return 0, fmt.Errorf("imap: NOOP: %w", (*imap.Error)(rep.st))
	}
	return rtt, nil
}

// Append stores the size bytes that r yields in mailbox, and returns the
// message's UID when the server tells it (UIDPLUS). A NO or BAD reply is an
// *imap.Error; any other error leaves the outcome unknown, except ctx's
// error, which Append returns before anything is sent. Once the command is
// out, Append waits for the reply, or the timeout, whatever ctx says:
// leaving earlier would leave the outcome unknown. A reader that ends
// before size bytes ends the connection.
func (c *Client) Append(ctx context.Context, mailbox string, r io.Reader, size int64, opts *imap.AppendOptions) (*imap.AppendData, error) {
	if c.limit > 0 && size > c.limit {
		// Not sent at all: the server announced it would refuse it.
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTooBig,
			Text: fmt.Sprintf("the message is %d bytes, over the server's APPENDLIMIT of %d", size, c.limit)}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	nonSync := size <= maxNonSyncLiteral &&
		(c.caps.Has(imap.CapLiteralPlus) || c.caps.Has(imap.CapLiteralMinus) && size <= 4096)
	// Allow for slow links: the timeout plus a second per 100 KB.
	d := c.timeout + time.Duration(size/100_000)*time.Second
	rep, err := c.roundTrip(d, func(tag string, ch chan reply) (*reply, error) {
		c.bw.WriteString(tag + " APPEND " + quoteMailbox(mailbox))
		if opts != nil && len(opts.Flags) > 0 {
			flags := make([]string, len(opts.Flags))
			for i, f := range opts.Flags {
				flags[i] = string(f)
			}
			c.bw.WriteString(" (" + strings.Join(flags, " ") + ")")
		}
		if opts != nil && !opts.Time.IsZero() {
			c.bw.WriteString(` "` + opts.Time.Format(imapDateTime) + `"`)
		}
		if nonSync {
			fmt.Fprintf(c.bw, " {%d+}\r\n", size)
		} else {
			fmt.Fprintf(c.bw, " {%d}\r\n", size)
			if err := c.bw.Flush(); err != nil {
				return nil, err
			}
			select {
			case <-c.cont:
			case r := <-ch: // refused before the literal
				return &r, nil
			case <-c.done:
				return nil, c.failure()
			}
		}
		if n, err := io.CopyN(c.bw, r, size); err != nil {
			if err == io.EOF {
				err = fmt.Errorf("the message ended after %d of its %d bytes", n, size)
			}
			return nil, err
		}
		_, err := c.bw.WriteString("\r\n")
		return nil, err
	})
	if err != nil {
		return nil, err
	}
	if rep.st.Type != imap.StatusResponseTypeOK {
		return nil, (*imap.Error)(rep.st)
	}
	data := &imap.AppendData{}
	if rep.st.Code == codeAppendUID {
		f := strings.Fields(rep.args)
		if len(f) == 2 {
			v, err1 := strconv.ParseUint(f[0], 10, 32)
			u, err2 := strconv.ParseUint(f[1], 10, 32)
			if err1 == nil && err2 == nil {
				data.UIDValidity, data.UID = uint32(v), imap.UID(u)
			}
		}
	}
	return data, nil
}

// Create creates mailbox, for an APPEND refused with TRYCREATE. A mailbox
// that already exists is not an error. ctx is checked before the command
// is sent, as in Append.
func (c *Client) Create(ctx context.Context, mailbox string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("imap: CREATE %q: %w", mailbox, err)
	}
	rep, err := c.roundTrip(c.timeout, func(tag string, _ chan reply) (*reply, error) {
		_, err := c.bw.WriteString(tag + " CREATE " + quoteMailbox(mailbox) + "\r\n")
		return nil, err
	})
	if err != nil {
		return fmt.Errorf("imap: CREATE %q: %w", mailbox, err)
	}
	if rep.st.Type != imap.StatusResponseTypeOK && rep.st.Code != imap.ResponseCodeAlreadyExists {
		return fmt.Errorf("imap: CREATE %q: %w", mailbox, (*imap.Error)(rep.st))
	}
	return nil
}

// Close logs out, without waiting for the reply, and closes the connection.
// It does not wait for a command being written: that one fails.
func (c *Client) Close() {
	if c.wmu.TryLock() {
		if c.failure() == nil {
			c.conn.SetWriteDeadline(time.Now().Add(time.Second))
			c.bw.WriteString("L LOGOUT\r\n")
			c.bw.Flush()
		}
		c.wmu.Unlock()
	}
	c.fail(net.ErrClosed)
}

// AppendLimit returns the largest message a server with caps takes (RFC
// 7889 APPENDLIMIT), or 0 when it does not say.
func AppendLimit(caps imap.CapSet) int64 {
	for cp := range caps {
		if v, ok := cutPrefixFold(string(cp), "APPENDLIMIT="); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err == nil && n > 0 {
				return n
			}
		}
	}
	return 0
}
