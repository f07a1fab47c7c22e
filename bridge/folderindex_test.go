package bridge

import (
	"hash/maphash"
	"slices"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// TestFolderIndexCandidates proves which stored messages the matcher will
// fetch: by Message-ID whatever the size, by size (exact or CRLF) only among
// messages without a Message-ID, never a claimed one, and by UID exactly.
func TestFolderIndexCandidates(t *testing.T) {
	x := &folderIndex{seed: maphash.MakeSeed()}
	add := func(uid imap.UID, size int64, mid string) {
		x.msgs = append(x.msgs, indexed{uid: uid, size: size, mid: x.midHash(mid)})
	}
	// Out of UID order, as a server may send them.
	add(9, 100, "<a@x>")
	add(3, 100, "")
	add(5, 104, "")
	add(7, 100, "<b@x>")
	add(2, 250, "<a@x>")
	add(4, 100, "")
	x.sort()

	uids := func(ks []int32) []imap.UID {
		var out []imap.UID
		for _, k := range ks {
			out = append(out, x.msgs[k].uid)
		}
		slices.Sort(out)
		return out
	}
	for _, tt := range []struct {
		name string
		fp   fingerprint
		skip imap.UID
		want []imap.UID
	}{
		{"by Message-ID, any size", fingerprint{size: 100, crlfSize: 100, messageID: "<a@x>"}, 0, []imap.UID{2, 9}},
		{"an unknown Message-ID has none", fingerprint{size: 100, crlfSize: 100, messageID: "<c@x>"}, 0, nil},
		{"no Message-ID: same size without one", fingerprint{size: 100, crlfSize: 100}, 0, []imap.UID{3, 4}},
		{"no Message-ID: the CRLF size too", fingerprint{size: 100, crlfSize: 104}, 0, []imap.UID{3, 4, 5}},
		{"a claimed copy is left out", fingerprint{size: 100, crlfSize: 100}, 3, []imap.UID{4}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clear(x.claimed)
			if tt.skip != 0 {
				x.claimUID(tt.skip)
			}
			got := uids(x.candidates(&tt.fp, func(k int32) bool { return x.claimed[k] }))
			if !slices.Equal(got, tt.want) {
				t.Fatalf("candidates = %v, want %v", got, tt.want)
			}
		})
	}
	for _, uid := range []imap.UID{2, 3, 4, 5, 7, 9} {
		if k, ok := x.byUID(uid); !ok || x.msgs[k].uid != uid {
			t.Errorf("byUID(%d) = %d, %v", uid, k, ok)
		}
	}
	if _, ok := x.byUID(6); ok {
		t.Error("byUID(6) found a message the folder does not hold")
	}
}
