package bridge

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"testing"

	"github.com/pop2imap/pop2imap/pop3"
)

// scriptedListing serves STAT, UIDL and LIST with the given listing lines
// on one end of a pipe, and returns a client on the other end.
func scriptedListing(t *testing.T, uidl, list []string) *pop3.Client {
	t.Helper()
	server, client := net.Pipe()
	t.Cleanup(func() { server.Close(); client.Close() })
	go func() {
		w := bufio.NewWriter(server)
		r := bufio.NewReader(server)
		w.WriteString("+OK ready\r\n")
		w.Flush()
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			switch verb := strings.Fields(line)[0]; verb {
			case "STAT":
				fmt.Fprintf(w, "+OK %d 0\r\n", max(len(uidl), len(list)))
			case "UIDL", "LIST":
				lines := uidl
				if verb == "LIST" {
					lines = list
				}
				w.WriteString("+OK\r\n")
				for _, l := range lines {
					w.WriteString(l + "\r\n")
				}
				w.WriteString(".\r\n")
			default:
				w.WriteString("-ERR not here\r\n")
			}
			w.Flush()
		}
	}()
	pc, err := pop3.NewClient(client, nil)
	if err != nil {
		t.Fatal(err)
	}
	return pc
}

func TestListMailbox(t *testing.T) {
	tests := []struct {
		name       string
		uidl, list []string
		want       []listedMsg
		wantErr    string
	}{
		{
			name: "in order",
			uidl: []string{"1 a", "2 b", "3 c"},
			list: []string{"1 10", "2 20", "3 30"},
			want: []listedMsg{{1, "a", 10}, {2, "b", 20}, {3, "c", 30}},
		},
		{
			name: "out of order, with gaps",
			uidl: []string{"7 g", "2 b", "4 d"},
			list: []string{"4 40", "7 70", "2 20"},
			want: []listedMsg{{2, "b", 20}, {4, "d", 40}, {7, "g", 70}},
		},
		{
			name: "LIST has more than UIDL",
			uidl: []string{"1 a"},
			list: []string{"1 10", "2 20"},
			want: []listedMsg{{1, "a", 10}},
		},
		{
			name: "8-bit UIDL",
			uidl: []string{"1 \xe9t\xe9", "2 " + strings.Repeat("x", 70)},
			list: []string{"1 1", "2 2"},
			want: []listedMsg{{1, "\xe9t\xe9", 1}, {2, strings.Repeat("x", 70), 2}},
		},
		{
			name: "sizes past 4 GiB",
			uidl: []string{"1 a", "2 b", "3 c"},
			list: []string{"1 4294967294", "2 4294967295", "3 5000000000"},
			want: []listedMsg{{1, "a", 4294967294}, {2, "b", 4294967295}, {3, "c", 5000000000}},
		},
		{
			name:    "missing from LIST",
			uidl:    []string{"1 a", "2 b"},
			list:    []string{"1 10"},
			wantErr: "pop3: message 2 is in UIDL but not in LIST",
		},
		{
			name:    "number listed twice",
			uidl:    []string{"1 a", "2 b", "1 c"},
			list:    []string{"1 10", "2 20"},
			wantErr: "pop3: message 1 is listed twice in UIDL",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := listMailbox(scriptedListing(t, tt.uidl, tt.list))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("listMailbox error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := l.all(); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("listing = %+v, want %+v", got, tt.want)
			}
			for i, m := range tt.want {
				if k, ok := l.index(m.num); !ok || k != i {
					t.Errorf("index(%d) = %d, %v; want %d", m.num, k, ok, i)
				}
			}
			if _, ok := l.index(5); ok {
				t.Error("index found a message that is not listed")
			}
		})
	}
}

func TestDupUIDLs(t *testing.T) {
	uidl := []string{"1 x", "2 a", "3 x", "4 b", "5 a", "6 c", "7 x"}
	list := []string{"1 1", "2 1", "3 1", "4 1", "5 1", "6 1", "7 1"}
	l, err := listMailbox(scriptedListing(t, uidl, list))
	if err != nil {
		t.Fatal(err)
	}
	want := []bool{true, true, true, false, true, false, true}
	if got := l.dupUIDLs(); !reflect.DeepEqual(got, want) {
		t.Fatalf("dupUIDLs = %v, want %v", got, want)
	}
}

func TestCopyListLimit(t *testing.T) {
	pl := &plan{pending: []int32{7, 8}, fresh: []int32{1, 2, 3}}
	tests := []struct {
		limit int
		want  []int32
	}{
		{0, []int32{7, 8, 1, 2, 3}},
		{1, []int32{7}},
		{2, []int32{7, 8}},
		{4, []int32{7, 8, 1, 2}},
		{9, []int32{7, 8, 1, 2, 3}},
	}
	for _, tt := range tests {
		c := pl.copyList(syntheticListing(10), tt.limit)
		var got []int32
		for k := range c.len() {
			got = append(got, c.index(k))
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("limit %d: copies %v, want %v", tt.limit, got, tt.want)
		}
	}
}

// TestListingHeldBound: the listing pop2imap holds is bounded in bytes,
// whatever STAT said: past maxListingBytes the UIDL is refused as a
// *pop3.ProtocolError that stops the listing, instead of growing.
func TestListingHeldBound(t *testing.T) {
	defer func(n int) { maxListingBytes = n }(maxListingBytes)
	maxListingBytes = 33 * 30 // 30 messages of a 20-byte UIDL: 12 + 1 + 20 bytes each
	for _, tc := range []struct {
		n  int
		ok bool
	}{{30, true}, {32, false}, {1000, false}} {
		var uidl, list []string
		for i := 1; i <= tc.n; i++ {
			uidl = append(uidl, fmt.Sprintf("%d %020d", i, i))
			list = append(list, fmt.Sprintf("%d 100", i))
		}
		_, err := listMailbox(scriptedListing(t, uidl, list))
		var perr *pop3.ProtocolError
		if tc.ok && err != nil || !tc.ok && (!errors.As(err, &perr) || !errors.Is(err, pop3.ErrStopListing)) {
			t.Errorf("%d messages: %v; want ok=%v", tc.n, err, tc.ok)
		}
	}
}
