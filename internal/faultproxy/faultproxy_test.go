package faultproxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/pop2imap/pop2imap/internal/testnet"
)

// greeting is what the test server sends first: several lines, 1000 bytes.
var greeting = func() []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < 1000; i++ {
		fmt.Fprintf(&b, "+OK line %03d of the greeting %s\r\n", i, bytes.Repeat([]byte("g"), 40))
	}
	return b.Bytes()[:1000]
}()

// echoServer greets with greeting, then echoes every byte it reads. When a
// connection ends it sends everything it received on the channel.
func echoServer(t *testing.T) (string, <-chan []byte) {
	t.Helper()
	got := make(chan []byte, 16)
	addr := testnet.Serve(t, func(c net.Conn) {
		c.Write(greeting)
		var rec bytes.Buffer
		io.Copy(io.MultiWriter(c, &rec), c)
		got <- rec.Bytes()
	})
	return addr, got
}

// anything marks a test case that does not check what the client receives.
var anything = []byte("(anything)")

// readAll reads until an error or until the connection is silent for
// quiet, and says which.
func readAll(c net.Conn, quiet time.Duration) (data []byte, silent bool, err error) {
	buf := make([]byte, 4096)
	for {
		c.SetReadDeadline(time.Now().Add(quiet))
		n, err := c.Read(buf)
		data = append(data, buf[:n]...)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return data, true, nil
		}
		if err != nil {
			return data, false, err
		}
	}
}

func receive(t *testing.T, ch <-chan []byte) []byte {
	t.Helper()
	select {
	case b := <-ch:
		return b
	case <-time.After(5 * time.Second):
		t.Fatal("the server never saw the connection end")
		return nil
	}
}

// TestFaults proves each fault on one connection: where the bytes stop, and
// whether the connection is closed or left hanging.
func TestFaults(t *testing.T) {
	request := bytes.Repeat([]byte("a1 NOOP\r\n"), 100) // 900 bytes
	tests := []struct {
		name   string
		faults []Fault
		send   []byte
		// what the client receives, and whether the connection then ends
		// (false: it stays open and silent)
		wantDown []byte
		closed   bool
		// what the server receives before the end (nil: not checked)
		wantUp []byte
	}{
		{"no fault", nil, request, append(greeting, request...), false, request},
		{"cut server->client at 0", []Fault{{Dir: Downstream, Offset: 0, Action: Cut}}, nil, nil, true, nil},
		{"cut server->client at 1", []Fault{{Dir: Downstream, Offset: 1, Action: Cut}}, nil, greeting[:1], true, nil},
		{"cut server->client at 777", []Fault{{Dir: Downstream, Offset: 777, Action: Cut}}, nil, greeting[:777], true, nil},
		{"cut server->client inside the echo", []Fault{{Dir: Downstream, Offset: 1500, Action: Cut}}, request, append(greeting, request[:500]...), true, request},
		// The client is the sender here: what it had not read yet when the
		// proxy closed it may be lost, so only the server side is exact.
		{"cut client->server at 0", []Fault{{Dir: Upstream, Offset: 0, Action: Cut}}, request, anything, true, []byte{}},
		{"cut client->server at 433", []Fault{{Dir: Upstream, Offset: 433, Action: Cut}}, request, anything, true, request[:433]},
		{"greeting then hang", HangAfterGreeting(), request, greeting[:len("+OK line 000 of the greeting ")+40+2], false, nil},
		{"stall server->client for good at 10", []Fault{{Dir: Downstream, Offset: 10, Action: Stall}}, request, greeting[:10], false, nil},
		{"cut after two lines", []Fault{{Dir: Downstream, Lines: 2, Action: Cut}}, nil, greeting[:2*(len("+OK line 000 of the greeting ")+42)], true, nil},
		{
			"swallow replies once the client sends APPEND",
			[]Fault{{Dir: Downstream, PeerSends: "APPEND", Action: Stall}},
			[]byte("a1 LOGIN\r\n"),
			append(append([]byte{}, greeting...), "a1 LOGIN\r\n"...), false, nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, up := echoServer(t)
			p, err := Listen(addr, tt.faults...)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			c, err := net.Dial("tcp", p.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if len(tt.send) > 0 {
				c.Write(tt.send)
			}
			got, silent, err := readAll(c, 300*time.Millisecond)
			if !bytes.Equal(tt.wantDown, anything) && !bytes.Equal(got, tt.wantDown) {
				t.Errorf("client received %d bytes, want %d:\n%q\nwant\n%q", len(got), len(tt.wantDown), got, tt.wantDown)
			}
			if tt.closed && silent {
				t.Errorf("connection still open after the fault")
			}
			if !tt.closed && !silent {
				t.Errorf("connection ended (%v), want it open and silent", err)
			}
			if tt.wantUp != nil {
				if !tt.closed {
					c.Close()
				}
				if got := receive(t, up); !bytes.Equal(got, tt.wantUp) {
					t.Errorf("server received %d bytes, want %d", len(got), len(tt.wantUp))
				}
			}
			if tt.name == "swallow replies once the client sends APPEND" {
				// Armed now: the echo of this command never arrives.
				c.Write([]byte("a2 APPEND x {3}\r\nabc\r\n"))
				if got, silent, _ := readAll(c, 300*time.Millisecond); len(got) != 0 || !silent {
					t.Errorf("after APPEND the client received %q (silent %v), want nothing", got, silent)
				}
			}
			wantFired := len(tt.faults)
			if tt.name == "no fault" {
				wantFired = 0
			}
			if fired := p.Fired(); len(fired) < min(1, wantFired) {
				t.Errorf("Fired() = %q, want the fault listed", fired)
			}
		})
	}
}

// TestStallAndDelay proves the timed faults: every byte still arrives, in
// order, but no sooner than the fault says.
func TestStallAndDelay(t *testing.T) {
	tests := []struct {
		name    string
		fault   Fault
		minTime time.Duration
	}{
		{"stall 300ms at 500", Fault{Dir: Downstream, Offset: 500, Action: Stall, Duration: 300 * time.Millisecond}, 300 * time.Millisecond},
		{"delay 200ms from the start", Fault{Dir: Downstream, Action: Delay, Duration: 200 * time.Millisecond}, 200 * time.Millisecond},
		{"stall client->server 300ms", Fault{Dir: Upstream, Action: Stall, Duration: 300 * time.Millisecond}, 300 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, _ := echoServer(t)
			p, err := Listen(addr, tt.fault)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			// The clock starts before the dial: the server's greeting, and
			// a fault at its bytes, may come before the first write.
			start := time.Now()
			c, err := net.Dial("tcp", p.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write([]byte("ping\r\n"))
			want := append(append([]byte{}, greeting...), "ping\r\n"...)
			got := make([]byte, len(want))
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("bytes changed or reordered")
			}
			if d := time.Since(start); d < tt.minTime {
				t.Errorf("everything arrived after %v, want at least %v", d, tt.minTime)
			}
		})
	}
}

// TestConnSelection proves that Conn picks one connection, and that a
// Global offset counts across connections and fires once.
func TestConnSelection(t *testing.T) {
	tests := []struct {
		name  string
		fault Fault
		want  []int // bytes each of three connections receives
	}{
		{"second connection cut at 100", Fault{Conn: 2, Dir: Downstream, Offset: 100, Action: Cut}, []int{1000, 100, 1000}},
		{"every connection cut at 100", Fault{Dir: Downstream, Offset: 100, Action: Cut}, []int{100, 100, 100}},
		{"global offset 1500", Fault{Global: true, Dir: Downstream, Offset: 1500, Action: Cut}, []int{1000, 500, 1000}},
		{"global offset 2000 at a connection boundary", Fault{Global: true, Dir: Downstream, Offset: 2000, Action: Cut}, []int{1000, 1000, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, _ := echoServer(t)
			p, err := Listen(addr, tt.fault)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			for i, want := range tt.want {
				c, err := net.Dial("tcp", p.Addr())
				if err != nil {
					t.Fatal(err)
				}
				got, _, _ := readAll(c, 200*time.Millisecond)
				c.Close()
				if len(got) != want || !bytes.Equal(got, greeting[:len(got)]) {
					t.Errorf("connection %d received %d bytes, want the first %d of the greeting", i+1, len(got), want)
				}
			}
			if n := len(p.Fired()); n != 1 && tt.name != "every connection cut at 100" {
				t.Errorf("fired %d times, want once: %q", n, p.Fired())
			}
		})
	}
}

// TestSetFaultsAndBytes proves that SetFaults applies to new connections
// only, numbers them afresh, and that Bytes counts what was delivered.
func TestSetFaultsAndBytes(t *testing.T) {
	addr, _ := echoServer(t)
	p, err := Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c1, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	got, _, _ := readAll(c1, 200*time.Millisecond)
	if len(got) != len(greeting) {
		t.Fatalf("plain proxy delivered %d bytes", len(got))
	}
	p.SetFaults(Fault{Conn: 1, Dir: Downstream, Offset: 10, Action: Cut})
	c1.Write([]byte("still fine\r\n"))
	if got, _, _ := readAll(c1, 200*time.Millisecond); string(got) != "still fine\r\n" {
		t.Errorf("an open connection took the new fault: got %q", got)
	}
	c2, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if got, _, _ := readAll(c2, 200*time.Millisecond); len(got) != 10 {
		t.Errorf("first connection after SetFaults received %d bytes, want 10", len(got))
	}
	if got, want := p.Bytes(Downstream), int64(len(greeting)+len("still fine\r\n")+10); got != want {
		t.Errorf("Bytes(Downstream) = %d, want %d", got, want)
	}
	if got, want := p.Bytes(Upstream), int64(len("still fine\r\n")); got != want {
		t.Errorf("Bytes(Upstream) = %d, want %d", got, want)
	}
}
