package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/pop2imap/pop2imap/bench/corpus"
	"github.com/pop2imap/pop2imap/internal/delayproxy"
	"github.com/pop2imap/pop2imap/internal/dovecottest"
	"github.com/pop2imap/pop2imap/pop3"
)

// TestAppendModes measures APPEND-only throughput against Dovecot at one RTT
// for three ways of sending, to size the fix for the IMAP side of the
// pipeline:
//
//	sync:      imapclient, one APPEND at a time per connection (as bridge
//	           does); imapclient sends a synchronizing literal for every
//	           message over 4 KiB, so each costs two round trips
//	pipelined: imapclient, several APPENDs in flight per connection (one
//	           goroutine each); the literal still waits for "+", one round
//	           trip per message per connection
//	literal+:  raw APPEND with non-synchronizing literals ({n+}, RFC 7888,
//	           which Dovecot announces), several in flight per connection:
//	           no round trip per message
//
// Gated by POP2IMAP_BENCH_APPEND=1; BENCH_N, BENCH_RTT (one value, ms),
// BENCH_CONNS (default 4) and BENCH_INFLIGHT (default 4) choose the run.
func TestAppendModes(t *testing.T) {
	if os.Getenv("POP2IMAP_BENCH_APPEND") != "1" {
		t.Skip("set POP2IMAP_BENCH_APPEND=1 to compare APPEND modes")
	}
	n := ints(t, "BENCH_N", "400")[0]
	rtt := time.Duration(ints(t, "BENCH_RTT", "50")[0]) * time.Millisecond
	conns := ints(t, "BENCH_CONNS", "4")[0]
	inflight := ints(t, "BENCH_INFLIGHT", "4")[0]
	d := dovecottest.Start(t)
	b := &bench{t: t, cfg: benchConfig{seed: 1}, d: d}
	b.uid, b.gid = mailUser(t)
	b.out, _ = os.Create(filepath.Join(t.TempDir(), "out"))
	src := b.newUser("src")
	specs := make([]corpus.Spec, n)
	for i := range specs {
		specs[i] = corpus.SpecFor(1, i)
	}
	total := b.seedMaildir(src, specs)
	files, _ := filepath.Glob(filepath.Join(d.Dir, "home", src, "Maildir", "cur", "*"))
	sort.Strings(files)
	addr := d.IMAPAddr
	if rtt > 0 {
		p, err := delayproxy.Listen(addr, rtt/2)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		addr = p.Addr()
	}
	modes := []struct {
		name string
		conn func(dst string, next *atomic.Int64) error
	}{
		{"sync", func(dst string, next *atomic.Int64) error { return imapclientAppend(addr, dst, files, next, 1) }},
		{"pipelined", func(dst string, next *atomic.Int64) error { return imapclientAppend(addr, dst, files, next, inflight) }},
		{"literal+", func(dst string, next *atomic.Int64) error { return rawAppend(addr, dst, files, next, inflight) }},
	}
	reps := ints(t, "BENCH_REPS", "1")[0]
	for r := 0; r < reps*len(modes); r++ {
		// Rotate, so that no mode always runs first.
		m := modes[(r+r/len(modes))%len(modes)]
		dst := b.newUser("dst")
		var next atomic.Int64
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, conns)
		for c := 0; c < conns; c++ {
			wg.Add(1)
			go func() { defer wg.Done(); errs <- m.conn(dst, &next) }()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("%s: %v", m.name, err)
			}
		}
		wall := time.Since(start)
		got := b.fetchDigests(dst)
		if c := sumCounts(got); c != n {
			t.Fatalf("%s: %d stored, want %d", m.name, c, n)
		}
		b.dropUser(dst)
		t.Logf("APPEND %-9s N=%d (%.1f MB) RTT %v conns %d in flight/conn %d: %.2fs, %.0f msgs/s",
			m.name, n, float64(total)/1e6, rtt, conns, map[bool]int{true: 1, false: inflight}[m.name == "sync"], wall.Seconds(), float64(n)/wall.Seconds())
	}
}

// imapclientAppend appends files over one imapclient connection with up to
// inflight APPENDs outstanding (one goroutine each).
func imapclientAppend(addr, dst string, files []string, next *atomic.Int64, inflight int) error {
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Login(dst, password).Wait(); err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make(chan error, inflight)
	for g := 0; g < inflight; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(files) {
					errs <- nil
					return
				}
				data, err := os.ReadFile(files[i])
				if err != nil {
					errs <- err
					return
				}
				cmd := c.Append("INBOX", int64(len(data)), nil)
				cmd.Write(data)
				cmd.Close()
				if _, err := cmd.Wait(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return c.Logout().Wait()
}

// rawAppend appends files over one plain connection with non-synchronizing
// literals, up to inflight commands outstanding.
func rawAppend(addr, dst string, files []string, next *atomic.Int64, inflight int) error {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	w := bufio.NewWriterSize(conn, 256<<10)
	line := func() (string, error) {
		s, err := r.ReadString('\n')
		return strings.TrimRight(s, "\r\n"), err
	}
	if _, err := line(); err != nil {
		return err
	}
	fmt.Fprintf(w, "l LOGIN %s %s\r\n", dst, password)
	w.Flush()
	for {
		s, err := line()
		if err != nil {
			return err
		}
		if strings.HasPrefix(s, "l ") {
			if !strings.HasPrefix(s, "l OK") {
				return fmt.Errorf("LOGIN: %s", s)
			}
			break
		}
	}
	if caps, _ := capability(w, line); !strings.Contains(caps, "LITERAL+") {
		return fmt.Errorf("server lacks LITERAL+: %s", caps)
	}
	slots := make(chan struct{}, inflight)
	readErr := make(chan error, 1)
	var sent atomic.Int64
	writerDone := make(chan struct{})
	go func() {
		// Reader: every tagged reply frees a slot.
		var got int64
		for {
			s, err := line()
			if err != nil {
				readErr <- err
				return
			}
			if strings.HasPrefix(s, "* ") {
				continue
			}
			if !strings.Contains(s, " OK ") {
				readErr <- fmt.Errorf("APPEND: %s", s)
				return
			}
			got++
			<-slots
			select {
			case <-writerDone:
				if got == sent.Load() {
					readErr <- nil
					return
				}
			default:
			}
		}
	}()
	tag := 0
	for {
		i := int(next.Add(1) - 1)
		if i >= len(files) {
			break
		}
		f, err := os.Open(files[i])
		if err != nil {
			return err
		}
		st, _ := f.Stat()
		select {
		case slots <- struct{}{}:
		case err := <-readErr:
			f.Close()
			return err
		}
		tag++
		sent.Add(1)
		fmt.Fprintf(w, "a%d APPEND INBOX {%d+}\r\n", tag, st.Size())
		io.Copy(w, f)
		f.Close()
		w.WriteString("\r\n")
		if len(slots) == cap(slots) || next.Load() >= int64(len(files)) {
			w.Flush()
		}
	}
	w.Flush()
	close(writerDone)
	if sent.Load() == 0 {
		return nil
	}
	// Wait for the replies still outstanding: nudge the reader with a NOOP
	// whose reply also counts as OK.
	sent.Add(1)
	slots <- struct{}{}
	fmt.Fprintf(w, "n NOOP\r\n")
	w.Flush()
	return <-readErr
}

func capability(w *bufio.Writer, line func() (string, error)) (string, error) {
	fmt.Fprintf(w, "c CAPABILITY\r\n")
	w.Flush()
	var caps string
	for {
		s, err := line()
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(s, "* CAPABILITY") {
			caps = s
		}
		if strings.HasPrefix(s, "c ") {
			return caps, nil
		}
	}
}

// TestDrainModes measures the POP3 side alone at one RTT: one RetrAll over
// the whole maildrop (window 16), against RetrAll restarted for every batch
// of 16 as bridge's produce does, which empties the pipeline (one idle round
// trip) at each batch boundary. Gated by POP2IMAP_BENCH_APPEND=1; BENCH_N,
// BENCH_RTT, BENCH_WINDOW (default 16), BENCH_REPS.
func TestDrainModes(t *testing.T) {
	if os.Getenv("POP2IMAP_BENCH_APPEND") != "1" {
		t.Skip("set POP2IMAP_BENCH_APPEND=1 to compare RETR modes")
	}
	n := ints(t, "BENCH_N", "2000")[0]
	rtt := time.Duration(ints(t, "BENCH_RTT", "50")[0]) * time.Millisecond
	window := ints(t, "BENCH_WINDOW", "16")[0]
	reps := ints(t, "BENCH_REPS", "1")[0]
	d := dovecottest.Start(t)
	b := &bench{t: t, cfg: benchConfig{seed: 1}, d: d}
	b.uid, b.gid = mailUser(t)
	b.out, _ = os.Create(filepath.Join(t.TempDir(), "out"))
	src := b.newUser("src")
	specs := make([]corpus.Spec, n)
	for i := range specs {
		specs[i] = corpus.SpecFor(1, i)
	}
	b.seedMaildir(src, specs)
	b.drain(d.POP3Addr, src)
	addr := d.POP3Addr
	if rtt > 0 {
		p, err := delayproxy.Listen(addr, rtt/2)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		addr = p.Addr()
	}
	for r := 0; r < reps; r++ {
		for _, batch := range []int{0, window} {
			start := time.Now()
			c, err := pop3.Dial(context.Background(), addr, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Login(src, password); err != nil {
				t.Fatal(err)
			}
			list, _ := c.List()
			nums := make([]int, len(list))
			for i, m := range list {
				nums[i] = m.Number
			}
			step := len(nums)
			if batch > 0 {
				step = batch
			}
			for s := 0; s < len(nums); s += step {
				err := c.RetrAll(nums[s:min(s+step, len(nums))], window, func(n int, body io.Reader) error {
					_, err := io.Copy(io.Discard, body)
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			c.Quit()
			wall := time.Since(start)
			how := "one RetrAll"
			if batch > 0 {
				how = fmt.Sprintf("RetrAll per %d", batch)
			}
			t.Logf("RETR %-16s N=%d RTT %v window %d: %.2fs, %.0f msgs/s", how, n, rtt, window, wall.Seconds(), float64(n)/wall.Seconds())
		}
	}
}
