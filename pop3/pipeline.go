package pop3

import (
	"errors"
	"fmt"
	"io"
	"strconv"
)

// ErrStopSending, returned by RetrAll's callback, stops the sending of
// further commands while the replies already requested are still handed to
// the callback.
var ErrStopSending = errors.New("pop3: stop sending")

// RetrAll retrieves the messages nums in order and calls fn with each body.
// The body follows the rules of Retr but is valid only during the call.
//
// If the server announces PIPELINING, up to window RETR commands are in
// flight at once (at most 256); otherwise, or if window < 2, one at a time.
// New commands are sent in batches, one flush each, once half the window is
// free.
//
// The loop stops at the first error: fn's, or a -ERR for one message. The
// replies still outstanding are then read and their bodies dropped, so the
// connection stays usable, and that error is returned. The exception is
// ErrStopSending: when fn returns it, no further RETR is sent, but fn still
// receives every body already requested, and RetrAll returns nil once they
// are done. A caller that is asked to stop uses it to finish cleanly, with
// nothing retrieved and thrown away. A body cut off or a
// broken connection ends RetrAll at once with an error that leaves the
// client unusable.
func (c *Client) RetrAll(nums []int, window int, fn func(n int, body io.Reader) error) error {
	for _, n := range nums {
		if n <= 0 {
			return badNumber("RETR " + strconv.Itoa(n))
		}
	}
	if len(nums) == 0 {
		return nil
	}
	return c.pipeline("RETR", nums, window, func(n int, label string) error {
		body := c.openBody(label)
		err := c.callback(fn, n, body)
		if ferr := c.finishBody(); ferr != nil {
			if err != nil && !errors.Is(err, ferr) {
				return joinErrors(err, ferr)
			}
			return ferr
		}
		return err
	})
}

// DeleAll marks the messages nums deleted, pipelined like RetrAll. At the
// first -ERR no more DELE commands are sent, the outstanding replies are
// read, and that error is returned; some of the other messages may then be
// marked deleted. Call Rset to unmark them, or Close without Quit, which
// deletes nothing.
func (c *Client) DeleAll(nums []int, window int) error {
	for _, n := range nums {
		if n <= 0 {
			return badNumber("DELE " + strconv.Itoa(n))
		}
	}
	if len(nums) == 0 {
		return nil
	}
	return c.pipeline("DELE", nums, window, nil)
}

// callback runs fn with the client locked against use from inside fn, which
// would put a command between pipelined replies.
func (c *Client) callback(fn func(int, io.Reader) error, n int, body io.Reader) error {
	c.inCallback = true
	defer func() { c.inCallback = false }()
	return fn(n, body)
}

// pipeline sends "verb n" for each of nums with up to window in flight and
// reads the replies in order. onOK, if set, handles what follows a +OK. After
// the first refusal or onOK error, nothing more is sent, the outstanding
// replies are read (bodies dropped), and that first error is returned.
// Errors that break the connection return at once.
func (c *Client) pipeline(verb string, nums []int, window int, onOK func(n int, label string) error) error {
	if err := c.begin(verb + " " + strconv.Itoa(nums[0])); err != nil {
		return err
	}
	pipe, err := c.pipelining()
	if err != nil {
		return err
	}
	if !pipe || window < 1 {
		window = 1
	}
	if window > maxWindow {
		window = maxWindow
	}
	var (
		stop        error // first refusal or callback error
		stopSending bool  // the callback asked for no more commands
		sent, done  int
	)
	for done < sent || (stop == nil && !stopSending && sent < len(nums)) {
		if stop == nil && !stopSending && sent < len(nums) && sent-done <= window/2 {
			c.setDeadline()
			for sent < len(nums) && sent-done < window {
				c.send(verb+" "+strconv.Itoa(nums[sent]), "")
				sent++
			}
			if err := c.flush(fmt.Sprintf("%s %d", verb, nums[done])); err != nil {
				return err
			}
		}
		n := nums[done]
		done++
		label := verb + " " + strconv.Itoa(n)
		c.setDeadline()
		if _, err := c.readStatus(label); err != nil {
			var perr *Error
			if !errors.As(err, &perr) {
				return err
			}
			if stop == nil {
				stop = err
			}
			continue
		}
		if onOK == nil {
			continue
		}
		if stop != nil {
			// Outstanding reply after the loop stopped: drop the body.
			c.openBody(label)
			if err := c.finishBody(); err != nil {
				return joinErrors(stop, err)
			}
			continue
		}
		if err := onOK(n, label); err != nil {
			if c.err != nil {
				return err
			}
			if errors.Is(err, ErrStopSending) {
				stopSending = true
				continue
			}
			stop = err
		}
	}
	return stop
}
