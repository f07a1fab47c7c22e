package batch

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"
)

var base = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

// at is base plus minutes.
func at(minutes int) time.Time { return base.Add(time.Duration(minutes) * time.Minute) }

// sampleShards is a batch run as two shards, as `batch report` merges
// them: alice failed in shard 1 and was done by a later run that logged to
// shard 2, shard 2 also holds a copy of alice's first attempt, eve was
// done once and failed on a later run, and adam has no ID and an attempt
// of no duration.
func sampleShards() (shard1, shard2 []Result) {
	alice1 := Result{Account: "alice", ID: "a", Start: at(0), End: at(10), Status: Failed, Kind: "temporary",
		Error: "pop3: RETR 17: connection reset", Retries: 2, Listed: 200, Appended: 100, Bytes: 1_000_000}
	shard1 = []Result{
		alice1,
		{Account: "bob", ID: "b", Start: at(5), End: at(6), Status: Failed, Kind: "auth",
			Error: "imap: LOGIN refused"},
		{Account: "carol", ID: "c", Start: at(0), End: at(30), Status: LeftBehind, Listed: 306,
			Appended: 300, Adopted: 4, Deleted: 300, LeftCount: 2, Bytes: 3_000_000,
			Error: "2 messages larger than the IMAP server's APPENDLIMIT", Advice: "move them by hand"},
		{Account: "eve", ID: "e", Start: at(0), End: at(5), Status: Done, Appended: 10, Bytes: 50_000},
	}
	shard2 = []Result{
		{Account: "alice", ID: "a", Start: at(60), End: at(80), Status: Done, Retries: 1, Listed: 100,
			Done: 100, Appended: 50, Recovered: 1, Bytes: 400_000},
		alice1,
		{Account: "dave", ID: "d", Start: at(2), End: at(3), Status: Failed, Kind: "auth",
			Error: "pop3: PASS refused", Advice: "check the POP3 password"},
		{Account: "eve", ID: "e", Start: at(40), End: at(41), Status: Failed, Error: "something odd"},
		{Account: "Zed", ID: "z", Start: at(20), End: at(25), Status: Done, Appended: 5, Bytes: 5_000},
		{Account: "adam", Start: at(70), End: at(70), Status: Done, Appended: 1, Bytes: 100},
	}
	return shard1, shard2
}

func reversed(rs []Result) []Result {
	c := slices.Clone(rs)
	slices.Reverse(c)
	return c
}

func sampleResults() []Result {
	shard1, shard2 := sampleShards()
	return append(shard1, shard2...)
}

// TestSummarizeTotals checks the arithmetic on the sample by hand: the
// latest attempt decides an account's status whatever the input order, a
// repeated attempt counts once, work adds up over attempts, and what is
// left behind is the latest attempt's.
func TestSummarizeTotals(t *testing.T) {
	now := at(90)
	s := Summarize(sampleResults(), now)

	ints := []struct {
		name      string
		got, want int64
	}{
		{"attempts", int64(s.Attempts), 9}, // alice's first attempt is in both shards
		{"attempted", int64(s.Attempted), 7},
		{"total", int64(s.Total()), 7},
		{"done", int64(s.Done), 3},              // alice (latest), Zed, adam
		{"left behind", int64(s.LeftBehind), 1}, // carol
		{"failed", int64(s.Failed), 3},          // bob, dave, eve (latest)
		{"retries", s.Retries, 3},
		{"appended", s.Appended, 100 + 50 + 300 + 10 + 5 + 1},
		{"recovered", s.Recovered, 1},
		{"adopted", s.Adopted, 4},
		{"deleted", s.Deleted, 300},
		{"messages left behind", s.MessagesLeftBehind, 2},
		{"bytes", s.Bytes, 1_000_000 + 400_000 + 3_000_000 + 50_000 + 5_000 + 100},
	}
	for _, c := range ints {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	if !s.Generated.Equal(now) || !s.Start.Equal(at(0)) || !s.End.Equal(at(80)) {
		t.Errorf("generated, start, end = %v, %v, %v; want %v, %v, %v", s.Generated, s.Start, s.End, now, at(0), at(80))
	}
	if s.WallSeconds != 80*60 {
		t.Errorf("wall = %vs, want 4800s", s.WallSeconds)
	}
	if want := 466.0 / 4800; math.Abs(s.MessagesPerSecond-want) > 1e-12 {
		t.Errorf("messages/s = %v, want %v", s.MessagesPerSecond, want)
	}
	if want := 4_455_100.0 / 4800; math.Abs(s.BytesPerSecond-want) > 1e-9 {
		t.Errorf("bytes/s = %v, want %v", s.BytesPerSecond, want)
	}

	s.Pending = 3
	if s.Total() != 10 {
		t.Errorf("with 3 pending, Total = %d, want 10", s.Total())
	}
}

// TestSummarizeAccounts checks the table: failed first, then left behind,
// then done, by name without regard to case; each account's latest status
// with the work of all its attempts.
func TestSummarizeAccounts(t *testing.T) {
	s := Summarize(sampleResults(), at(90))
	var names []string
	for _, a := range s.Accounts {
		names = append(names, a.Account+"/"+string(a.Status))
	}
	want := []string{"bob/failed", "dave/failed", "eve/failed", "carol/left-behind", "adam/done", "alice/done", "Zed/done"}
	if !slices.Equal(names, want) {
		t.Fatalf("accounts in order %q, want %q", names, want)
	}

	alice := s.Accounts[5]
	if alice.Attempts != 2 || alice.Seconds != 30*60 || alice.Appended != 150 || alice.Bytes != 1_400_000 ||
		alice.Retries != 3 || alice.Recovered != 1 || alice.Listed != 100 || alice.Done != 100 ||
		alice.Error != "" || alice.Kind != "" || !alice.Start.Equal(at(60)) || !alice.End.Equal(at(80)) {
		t.Errorf("alice = %+v; want the done attempt of 10:00-10:20 with both attempts' work: 2 attempts, 1800 s, "+
			"150 appended, 1400000 bytes, 3 retries, 1 recovered, and no error", alice)
	}
	eve := s.Accounts[2]
	if eve.Status != Failed || eve.Error != "something odd" || eve.Appended != 10 || eve.Attempts != 2 || eve.Seconds != 6*60 {
		t.Errorf("eve = %+v; want the later failure, with the earlier attempt's 10 appended, 2 attempts, 360 s", eve)
	}
	if adam := s.Accounts[4]; adam.Attempts != 1 || adam.Seconds != 0 || adam.Appended != 1 {
		t.Errorf("adam, known by name = %+v; want 1 attempt of 0 s, 1 appended", adam)
	}
}

// TestSummarizeFailures: failed accounts grouped by kind, the most
// common first, an empty kind as "unknown", and an example with advice
// preferred over one without.
func TestSummarizeFailures(t *testing.T) {
	s := Summarize(sampleResults(), at(90))
	want := []Failure{
		{Kind: "auth", Count: 2, Account: "dave", Error: "pop3: PASS refused", Advice: "check the POP3 password"},
		{Kind: "unknown", Count: 1, Account: "eve", Error: "something odd"},
	}
	if !reflect.DeepEqual(s.Failures, want) {
		t.Errorf("failures = %+v, want %+v", s.Failures, want)
	}
}

// TestSummarizeOrderIndependent: the shards may be merged in any order and
// any number of times over; the summary is the same.
func TestSummarizeOrderIndependent(t *testing.T) {
	shard1, shard2 := sampleShards()
	want := Summarize(append(slices.Clone(shard1), shard2...), at(90))
	for name, rs := range map[string][]Result{
		"shard 2 first":   append(slices.Clone(shard2), shard1...),
		"reversed":        reversed(append(slices.Clone(shard1), shard2...)),
		"merged twice":    append(append(append(slices.Clone(shard1), shard2...), shard2...), shard1...),
		"shard 1 reverse": append(reversed(shard1), shard2...),
	} {
		if got := Summarize(rs, at(90)); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: the summary differs:\n got %+v\nwant %+v", name, got, want)
		}
	}
}

// TestThroughputSpreadsEvenly checks the series against the sample: one
// minute buckets over the 80 minutes, rates that add back up to the
// totals, and the first and a late bucket worked out by hand.
func TestThroughputSpreadsEvenly(t *testing.T) {
	s := Summarize(sampleResults(), at(90))
	if s.BucketSeconds != 60 || len(s.Throughput) != 80 {
		t.Fatalf("%d buckets of %vs, want 80 of 60s (30s would take 160)", len(s.Throughput), s.BucketSeconds)
	}
	var bytesSum, msgsSum float64
	for i, p := range s.Throughput {
		if !p.Start.Equal(at(i)) {
			t.Errorf("bucket %d starts %v, want %v", i, p.Start, at(i))
		}
		bytesSum += p.BytesPerSecond * s.BucketSeconds
		msgsSum += p.MessagesPerSecond * s.BucketSeconds
	}
	if math.Abs(bytesSum-float64(s.Bytes)) > 1e-6*float64(s.Bytes) || math.Abs(msgsSum-float64(s.Appended)) > 1e-6 {
		t.Errorf("the buckets add up to %v bytes and %v messages, want %d and %d", bytesSum, msgsSum, s.Bytes, s.Appended)
	}
	// 09:00: a tenth of alice's first attempt, a thirtieth of carol's and
	// a fifth of eve's first.
	first := s.Throughput[0]
	if want := (100_000.0 + 100_000 + 10_000) / 60; math.Abs(first.BytesPerSecond-want) > 1e-6 {
		t.Errorf("09:00 bytes/s = %v, want %v", first.BytesPerSecond, want)
	}
	if want := (10.0 + 10 + 2) / 60; math.Abs(first.MessagesPerSecond-want) > 1e-9 {
		t.Errorf("09:00 messages/s = %v, want %v", first.MessagesPerSecond, want)
	}
	// 10:10: a twentieth of alice's second attempt and all of adam's,
	// which took no time.
	if got, want := s.Throughput[70].BytesPerSecond, (20_000.0+100)/60; math.Abs(got-want) > 1e-6 {
		t.Errorf("10:10 bytes/s = %v, want %v", got, want)
	}
	// 09:45: nothing ran.
	if p := s.Throughput[45]; p.BytesPerSecond != 0 || p.MessagesPerSecond != 0 {
		t.Errorf("09:45 = %+v, want nothing", p)
	}
}

// TestBucketWidth: for batches from a second to a year, the width is the
// smallest round one that keeps the series within MaxPoints.
func TestBucketWidth(t *testing.T) {
	start := time.Date(2025, 3, 1, 9, 17, 23, 0, time.UTC)
	for _, span := range []time.Duration{0, 900 * time.Millisecond, 10 * time.Second, 119 * time.Second,
		2 * time.Hour, 3 * time.Hour, 26 * time.Hour, 10 * 24 * time.Hour, 100 * 24 * time.Hour, 3 * 365 * 24 * time.Hour} {
		end := start.Add(span)
		w := bucketWidth(start, end)
		if n := bucketCount(start.Truncate(w), end, w); n > MaxPoints {
			t.Errorf("span %v: width %v makes %d buckets, more than %d", span, w, n, MaxPoints)
		}
		for _, smaller := range roundWidths {
			if smaller >= w {
				break
			}
			if n := bucketCount(start.Truncate(smaller), end, smaller); n <= MaxPoints {
				t.Errorf("span %v: width %v, but %v makes only %d buckets", span, w, smaller, n)
			}
		}
		s := Summarize([]Result{{ID: "x", Start: start, End: end, Status: Done, Appended: 7, Bytes: 7000}}, end)
		if len(s.Throughput) > MaxPoints || len(s.Throughput) == 0 {
			t.Errorf("span %v: %d points", span, len(s.Throughput))
		}
	}
}

// TestSummarizeNothing: no results make an empty summary whose lists are
// empty rather than null, so that a reader of the JSON need not care.
func TestSummarizeNothing(t *testing.T) {
	s := Summarize(nil, at(0))
	if s.Attempts != 0 || s.Attempted != 0 || !s.Start.IsZero() || s.WallSeconds != 0 || s.BytesPerSecond != 0 {
		t.Errorf("summary of nothing = %+v", s)
	}
	var buf bytes.Buffer
	if err := WriteJSON(&buf, s); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"accounts", "failures", "throughput"} {
		if l, ok := m[key].([]any); !ok || len(l) != 0 {
			t.Errorf("%q = %v, want []", key, m[key])
		}
	}
}

// TestWriteJSONRoundTrip: what WriteJSON writes reads back into the same
// Summary, under the snake_case names a tool may rely on, with the total
// that counts the pending accounts.
func TestWriteJSONRoundTrip(t *testing.T) {
	s := Summarize(sampleResults(), at(90))
	s.Pending = 3
	var buf bytes.Buffer
	if err := WriteJSON(&buf, s); err != nil {
		t.Fatal(err)
	}
	var back Summary
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, s) {
		t.Errorf("read back:\n%+v\nwant\n%+v", back, s)
	}

	var m struct {
		AccountsTotal      int              `json:"accounts_total"`
		Pending            int              `json:"pending"`
		MessagesLeftBehind int64            `json:"messages_left_behind"`
		BucketSeconds      float64          `json:"bucket_seconds"`
		Accounts           []map[string]any `json:"accounts"`
		Failures           []map[string]any `json:"failures"`
	}
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if m.AccountsTotal != 10 || m.Pending != 3 || m.MessagesLeftBehind != 2 || m.BucketSeconds != 60 {
		t.Errorf("accounts_total, pending, messages_left_behind, bucket_seconds = %d, %d, %d, %v; want 10, 3, 2, 60",
			m.AccountsTotal, m.Pending, m.MessagesLeftBehind, m.BucketSeconds)
	}
	if len(m.Accounts) != 7 || m.Accounts[0]["account"] != "bob" || m.Accounts[0]["status"] != "failed" ||
		m.Accounts[5]["attempts"] != 2.0 || m.Accounts[5]["appended"] != 150.0 {
		t.Errorf("accounts = %v", m.Accounts)
	}
	if len(m.Failures) != 2 || m.Failures[0]["example_account"] != "dave" || m.Failures[0]["advice"] != "check the POP3 password" {
		t.Errorf("failures = %v", m.Failures)
	}
	if !bytes.Contains(buf.Bytes(), []byte("\n  \"accounts_total\": 10,\n")) {
		t.Errorf("not indented by two spaces:\n%s", buf.Bytes()[:200])
	}
}
