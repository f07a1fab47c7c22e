package pop3

import "fmt"

// Listing runs STAT, then UIDL, then LIST, as Stat, ScanUidl and ScanList
// do, calling onStat with STAT's reply before the listings (whose length
// it bounds). When the server announces PIPELINING (RFC 2449) the three
// commands go out together, so the listing costs one round trip instead
// of three.
//
// Pipelined, every reply must be read whatever the ones before it said: a
// -ERR or a callback's error before the last reply leaves the client
// unusable (drop the connection; without QUIT nothing is deleted), and is
// returned.
func (c *Client) Listing(onStat func(count int, size int64) error, onUIDL func(UIDInfo) error, onList func(MessageInfo) error) error {
	pipe, err := c.pipelining()
	if err != nil {
		return err
	}
	if !pipe {
		count, size, err := c.Stat()
		if err == nil {
			err = onStat(count, size)
		}
		if err == nil {
			err = c.ScanUidl(onUIDL)
		}
		if err == nil {
			err = c.ScanList(onList)
		}
		return err
	}
	if err := c.begin("STAT"); err != nil {
		return err
	}
	c.setDeadline()
	c.send("STAT", "")
	c.send("UIDL", "")
	c.send("LIST", "")
	if err := c.flush("STAT"); err != nil {
		return err
	}
	// The replies of the commands after a failed one are still on their
	// way: the connection is out of step, so it is not used again.
	outOfStep := func(err error) error {
		c.fail(fmt.Errorf("pop3: a pipelined listing failed: %w", err))
		return err
	}
	text, err := c.readStatus("STAT")
	if err != nil {
		return outOfStep(err)
	}
	count, size, err := c.parseStat(text)
	if err == nil {
		err = onStat(count, size)
	}
	if err != nil {
		return outOfStep(err)
	}
	if _, err := c.readStatus("UIDL"); err != nil {
		return outOfStep(err)
	}
	if err := scanReply(c, "UIDL", parseUIDListing, checkedUIDs(onUIDL)); err != nil {
		return outOfStep(err)
	}
	if _, err := c.readStatus("LIST"); err != nil {
		return err // the last reply: the connection is in step
	}
	return scanReply(c, "LIST", parseScanListing, onList)
}
