package batch

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/pop2imap/pop2imap/internal/errkind"
)

// TestParseShard proves which shards are read and which refused.
func TestParseShard(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Shard
		err  string
	}{
		{"0/1", Shard{0, 1}, ""},
		{"0/4", Shard{0, 4}, ""},
		{"3/4", Shard{3, 4}, ""},
		{"99999/100000", Shard{99999, 100000}, ""},
		{"4/4", Shard{}, "numbered from 0, so 4 shards are 0/4 to 3/4"},
		{"1/0", Shard{}, "between 1 and"},
		{"0/100001", Shard{}, "between 1 and"},
		{"-1/4", Shard{}, "two whole numbers"},
		{"+1/4", Shard{}, "two whole numbers"},
		{" 1/4", Shard{}, "two whole numbers"},
		{"1/4 ", Shard{}, "two whole numbers"},
		{"a/b", Shard{}, "two whole numbers"},
		{"1/2/3", Shard{}, "two whole numbers"},
		{"/4", Shard{}, "two whole numbers"},
		{"99999999999999999999/4", Shard{}, "two whole numbers"},
		{"1", Shard{}, "want INDEX/COUNT"},
		{"", Shard{}, "want INDEX/COUNT"},
	} {
		got, err := ParseShard(tt.in)
		if tt.err == "" {
			if err != nil || got != tt.want {
				t.Errorf("ParseShard(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
			if got.String() != tt.in {
				t.Errorf("Shard %v prints as %q, want %q", got, got.String(), tt.in)
			}
			continue
		}
		var serr *ShardError
		if !errors.As(err, &serr) || serr.Value != tt.in || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("ParseShard(%q) = %v; want a *ShardError saying %q", tt.in, err, tt.err)
		}
		if errkind.Of(err) != errkind.Usage {
			t.Errorf("ParseShard(%q): kind %q, want usage", tt.in, errkind.Of(err))
		}
	}
	if s := (Shard{}).String(); s != "" {
		t.Errorf("the whole batch prints as %q, want \"\"", s)
	}
}

// accountsFile returns an accounts file of n accounts, its rows in the
// order perm gives (nil: in order).
func accountsFile(n int, perm []int) string {
	var b strings.Builder
	b.WriteString("name," + header)
	for i := range n {
		j := i
		if perm != nil {
			j = perm[i]
		}
		fmt.Fprintf(&b, "acct%d,pop%d.example.com,user%d,pw,imap.example.com,dest%d,pw\n", j, j%7, j, j)
	}
	return b.String()
}

// TestShardsPartition proves that the shards of a file split its accounts
// between them, each account in exactly one shard, and that reordering
// the rows moves no account to another shard.
func TestShardsPartition(t *testing.T) {
	const n = 300
	accounts := mustLoad(t, accountsFile(n, nil), Defaults{})
	shuffled := mustLoad(t, accountsFile(n, rand.New(rand.NewPCG(1, 2)).Perm(n)), Defaults{})
	for _, count := range []int{1, 2, 3, 7, 16} {
		shardOf := map[string]int{}
		sizes := make([]int, count)
		for i := range count {
			s, err := ParseShard(fmt.Sprintf("%d/%d", i, count))
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range accounts {
				if !s.Has(a) {
					continue
				}
				if prev, ok := shardOf[a.ID]; ok {
					t.Fatalf("%d shards: %s is in shards %d and %d", count, a.Name, prev, i)
				}
				shardOf[a.ID] = i
				sizes[i]++
			}
		}
		if len(shardOf) != n {
			t.Fatalf("%d shards: %d of %d accounts are in a shard", count, len(shardOf), n)
		}
		for i, size := range sizes {
			// With 300 accounts an empty shard of 16 is a broken hash,
			// not bad luck: the chance is (15/16)^300, below 1e-8.
			if size == 0 {
				t.Errorf("%d shards: shard %d is empty (sizes %v)", count, i, sizes)
			}
		}
		for _, a := range shuffled {
			s := Shard{Index: shardOf[a.ID], Count: count}
			if !s.Has(a) {
				t.Errorf("%d shards: %s moved to another shard when the rows were reordered", count, a.Name)
			}
		}
	}
	for _, a := range accounts {
		if !(Shard{}).Has(a) {
			t.Fatalf("the whole batch does not have %s", a.Name)
		}
	}
}

// TestShardByIDNotName proves that the shard follows the ID, not what an
// account is called or where its row is.
func TestShardByIDNotName(t *testing.T) {
	a := Account{Name: "a", Line: 2, ID: "0000000000000005"}
	b := Account{Name: "b", Line: 9, ID: "0000000000000005"}
	for i := range 3 {
		s := Shard{Index: i, Count: 3}
		if s.Has(a) != s.Has(b) || s.Has(a) != (i == 2) {
			t.Errorf("shard %v: has a=%v b=%v; want both %v (5 mod 3 is 2)", s, s.Has(a), s.Has(b), i == 2)
		}
	}
	// An ID not made by Load still lands in exactly one shard.
	odd := Account{ID: "not hex"}
	in := 0
	for i := range 5 {
		if (Shard{Index: i, Count: 5}).Has(odd) {
			in++
		}
	}
	if in != 1 {
		t.Errorf("an ID that is not hex is in %d of 5 shards", in)
	}
}
