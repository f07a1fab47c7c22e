package batch

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/pop2imap/pop2imap/internal/errkind"
)

// Summary is a batch at a glance, built by Summarize from the results of
// every attempt: how many accounts ended how, what was moved, when and how
// fast, which kinds of failure stopped accounts, and every account.
//
// An attempt counts only the work it did itself, so the messages, bytes
// and retries are summed over all attempts; what is left behind is the
// latest attempts', since a later attempt meets the same messages again.
type Summary struct {
	Generated time.Time `json:"generated"`

	// Accounts by how their latest attempt ended. Attempted counts the
	// accounts with at least one attempt; Pending counts those of the CSV
	// never attempted, which only the caller knows: it sets the field
	// after Summarize. Total adds the two.
	Attempted  int `json:"attempted"`
	Pending    int `json:"pending"`
	Done       int `json:"done"`
	LeftBehind int `json:"left_behind"`
	Failed     int `json:"failed"`

	// Attempts counts every attempt, so Attempts-Attempted accounts were
	// tried again; Retries sums the attempts' own retries of temporary
	// failures.
	Attempts int   `json:"attempts"`
	Retries  int64 `json:"retries"`

	Appended           int64 `json:"appended"`
	Recovered          int64 `json:"recovered"`
	Adopted            int64 `json:"adopted"`
	Deleted            int64 `json:"deleted"`
	MessagesLeftBehind int64 `json:"messages_left_behind"`
	Bytes              int64 `json:"bytes"`

	// Start is the earliest attempt's start and End the latest attempt's
	// end; both are zero when nothing was attempted. The means are the
	// messages appended and the bytes over the wall time between them.
	Start             time.Time `json:"start"`
	End               time.Time `json:"end"`
	WallSeconds       float64   `json:"wall_seconds"`
	MessagesPerSecond float64   `json:"messages_per_second"`
	BytesPerSecond    float64   `json:"bytes_per_second"`

	// Failures groups the failed accounts by kind, most common first.
	Failures []Failure `json:"failures"`

	// Throughput is the batch's rate over time in buckets of
	// BucketSeconds, from Start to End, at most MaxPoints of them.
	BucketSeconds float64 `json:"bucket_seconds"`
	Throughput    []Point `json:"throughput"`

	// Accounts holds every attempted account, failed first, then left
	// behind, then done, each group by name.
	Accounts []AccountSummary `json:"accounts"`
}

// Total is every account of the batch: those attempted and those pending.
func (s *Summary) Total() int { return s.Attempted + s.Pending }

// AccountSummary is one account in a Summary. Its Result is the account's
// latest attempt, which says the account's status, error and advice and
// what is left behind, except that the counts of work done (appended,
// recovered, adopted, deleted, bytes, retries) are summed over all its
// attempts, as each attempt counts only its own.
type AccountSummary struct {
	Result
	Attempts int     `json:"attempts"`
	Seconds  float64 `json:"seconds"` // the attempts' durations added up
}

// Failure is one kind of failure among the accounts that failed: how many
// it stopped, and one of them as an example of what went wrong and what to
// do about it.
type Failure struct {
	Kind    string `json:"kind"` // an errkind.Kind; "unknown" when the result named none
	Count   int    `json:"count"`
	Account string `json:"example_account"`
	Error   string `json:"error"`
	Advice  string `json:"advice,omitempty"`
}

// Point is the batch's throughput over one bucket of time: every
// attempt's bytes and appended messages spread evenly over its duration,
// and what falls in the bucket divided by its width.
type Point struct {
	Start             time.Time `json:"start"`
	BytesPerSecond    float64   `json:"bytes_per_second"`
	MessagesPerSecond float64   `json:"messages_per_second"`
}

// MaxPoints bounds the throughput series: the bucket width is the
// smallest round duration that covers the batch in this many buckets.
const MaxPoints = 120

// Summarize sums up results, the attempts of one or many shards in any
// order, as of now. An account is known by its ID (by its name when the ID
// is empty), and its latest attempt by End decides its status. The same
// attempt met twice (the same account, Start and End), as when one
// results file is merged twice, counts once. A status other than done or
// left-behind counts as failed, so that nothing unexplained looks well.
func Summarize(results []Result, now time.Time) Summary {
	s := Summary{Generated: now, Failures: []Failure{}, Throughput: []Point{}, Accounts: []AccountSummary{}}
	attempts := dedupe(results)
	byAccount := map[string]*AccountSummary{}
	var order []string
	for _, r := range attempts {
		s.Attempts++
		s.Retries += int64(r.Retries)
		s.Appended += r.Appended
		s.Recovered += r.Recovered
		s.Adopted += r.Adopted
		s.Deleted += r.Deleted
		s.Bytes += r.Bytes
		if s.Start.IsZero() || r.Start.Before(s.Start) {
			s.Start = r.Start
		}
		if end := attemptEnd(r); s.End.IsZero() || end.After(s.End) {
			s.End = end
		}

		key := accountKey(r)
		a, ok := byAccount[key]
		if !ok {
			a = &AccountSummary{Result: r}
			byAccount[key] = a
			order = append(order, key)
		} else {
			a.merge(r)
		}
		a.Attempts++
		a.Seconds += attemptEnd(r).Sub(r.Start).Seconds()
	}

	for _, key := range order {
		a := byAccount[key]
		s.Accounts = append(s.Accounts, *a)
		s.MessagesLeftBehind += a.LeftCount
		switch a.Status {
		case Done:
			s.Done++
		case LeftBehind:
			s.LeftBehind++
		default:
			s.Failed++
		}
	}
	s.Attempted = len(s.Accounts)
	sort.SliceStable(s.Accounts, func(i, j int) bool { return accountLess(&s.Accounts[i].Result, &s.Accounts[j].Result) })
	s.Failures = failures(s.Accounts)

	if wall := s.End.Sub(s.Start); wall > 0 {
		s.WallSeconds = wall.Seconds()
		s.MessagesPerSecond = float64(s.Appended) / s.WallSeconds
		s.BytesPerSecond = float64(s.Bytes) / s.WallSeconds
	}
	if len(attempts) > 0 {
		width := bucketWidth(s.Start, s.End)
		s.BucketSeconds = width.Seconds()
		s.Throughput = throughput(attempts, s.Start.Truncate(width), s.End, width)
	}
	return s
}

// merge folds another attempt at the same account into a: the later one
// by End (then by Start) gives the status and what is left behind, and
// the work done adds up.
func (a *AccountSummary) merge(r Result) {
	sum := a.Result
	sum.Appended += r.Appended
	sum.Recovered += r.Recovered
	sum.Adopted += r.Adopted
	sum.Deleted += r.Deleted
	sum.Bytes += r.Bytes
	sum.Retries += r.Retries
	if later(r, a.Result) {
		latest := r
		latest.Appended, latest.Recovered, latest.Adopted = sum.Appended, sum.Recovered, sum.Adopted
		latest.Deleted, latest.Bytes, latest.Retries = sum.Deleted, sum.Bytes, sum.Retries
		sum = latest
	}
	a.Result = sum
}

// later reports whether attempt r ended after attempt than. Equal ends,
// which real attempts hardly have, are broken by Start and then by status,
// so that the choice does not depend on the order of the input.
func later(r, than Result) bool {
	re, te := attemptEnd(r), attemptEnd(than)
	if !re.Equal(te) {
		return re.After(te)
	}
	if !r.Start.Equal(than.Start) {
		return r.Start.After(than.Start)
	}
	return r.Status > than.Status
}

// attemptEnd is r.End, or r.Start for a result that ended before it began
// (a clock stepped back, or an End never filled in).
func attemptEnd(r Result) time.Time {
	if r.End.Before(r.Start) {
		return r.Start
	}
	return r.End
}

func accountKey(r Result) string {
	if r.ID != "" {
		return "id:" + r.ID
	}
	return "name:" + r.Account
}

// dedupe drops the repeats of an attempt, keeping the first.
func dedupe(results []Result) []Result {
	type attemptKey struct {
		account    string
		start, end int64
	}
	seen := make(map[attemptKey]bool, len(results))
	out := make([]Result, 0, len(results))
	for _, r := range results {
		k := attemptKey{accountKey(r), r.Start.UnixNano(), r.End.UnixNano()}
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, r)
	}
	return out
}

// statusRank orders the statuses as an operator works through them: what
// failed first, then what was left behind, then what is done.
func statusRank(s Status) int {
	switch s {
	case Done:
		return 2
	case LeftBehind:
		return 1
	}
	return 0
}

// accountLess orders accounts by status rank, then by name ignoring case
// (as the page's script sorts), then exactly, then by ID.
func accountLess(a, b *Result) bool {
	if ra, rb := statusRank(a.Status), statusRank(b.Status); ra != rb {
		return ra < rb
	}
	if la, lb := strings.ToLower(a.Account), strings.ToLower(b.Account); la != lb {
		return la < lb
	}
	if a.Account != b.Account {
		return a.Account < b.Account
	}
	return a.ID < b.ID
}

// failures groups the failed accounts by kind. The example is the first
// account of the kind, in the order of accounts, that has advice, or the
// first one when none has.
func failures(accounts []AccountSummary) []Failure {
	out := []Failure{}
	index := map[string]int{}
	for _, a := range accounts {
		if statusRank(a.Status) != 0 {
			continue
		}
		kind := a.Kind
		if kind == "" {
			kind = string(errkind.Unknown)
		}
		i, ok := index[kind]
		if !ok {
			i = len(out)
			index[kind] = i
			out = append(out, Failure{Kind: kind, Account: a.Account, Error: a.Error, Advice: a.Advice})
		}
		f := &out[i]
		f.Count++
		if f.Advice == "" && a.Advice != "" {
			f.Account, f.Error, f.Advice = a.Account, a.Error, a.Advice
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Kind < out[j].Kind
	})
	return out
}

// roundWidths are the bucket widths a reader takes in at a glance; a
// batch longer than MaxPoints days gets buckets of whole weeks.
var roundWidths = []time.Duration{
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
	2 * 24 * time.Hour, 7 * 24 * time.Hour,
}

// bucketWidth is the smallest round width whose buckets, aligned to
// multiples of it, cover [start, end] in at most MaxPoints.
func bucketWidth(start, end time.Time) time.Duration {
	for _, w := range roundWidths {
		if bucketCount(start.Truncate(w), end, w) <= MaxPoints {
			return w
		}
	}
	const week = 7 * 24 * time.Hour
	weeks := time.Duration(math.Ceil(float64(end.Sub(start)) / float64(week) / (MaxPoints - 1)))
	return weeks * week
}

// bucketCount is how many buckets of width, from origin, it takes to
// reach end: at least one.
func bucketCount(origin, end time.Time, width time.Duration) int {
	n := int((end.Sub(origin) + width - 1) / width)
	return max(n, 1)
}

// throughput spreads each attempt's bytes and appended messages evenly
// over [Start, End] into buckets of width from origin, and returns each
// bucket's rates. An attempt of no duration falls whole into the bucket of
// its Start.
func throughput(attempts []Result, origin, end time.Time, width time.Duration) []Point {
	n := bucketCount(origin, end, width)
	bytes := make([]float64, n)
	msgs := make([]float64, n)
	bucketOf := func(t time.Time) int { return min(max(int(t.Sub(origin)/width), 0), n-1) }
	for _, r := range attempts {
		if r.Bytes == 0 && r.Appended == 0 {
			continue
		}
		start, stop := r.Start, attemptEnd(r)
		span := stop.Sub(start)
		if span <= 0 {
			i := bucketOf(start)
			bytes[i] += float64(r.Bytes)
			msgs[i] += float64(r.Appended)
			continue
		}
		for i := bucketOf(start); i <= bucketOf(stop); i++ {
			lo := origin.Add(time.Duration(i) * width)
			hi := lo.Add(width)
			if lo.Before(start) {
				lo = start
			}
			if hi.After(stop) {
				hi = stop
			}
			if !hi.After(lo) {
				continue
			}
			share := float64(hi.Sub(lo)) / float64(span)
			bytes[i] += float64(r.Bytes) * share
			msgs[i] += float64(r.Appended) * share
		}
	}
	points := make([]Point, n)
	secs := width.Seconds()
	for i := range points {
		points[i] = Point{Start: origin.Add(time.Duration(i) * width),
			BytesPerSecond: bytes[i] / secs, MessagesPerSecond: msgs[i] / secs}
	}
	return points
}

// WriteJSON writes s as indented JSON: the totals, with "accounts_total"
// (Total) first, the failures, the throughput and every account. The field
// names are stable; a tool may read them.
func WriteJSON(w io.Writer, s Summary) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	v := struct {
		AccountsTotal int `json:"accounts_total"`
		Summary
	}{s.Total(), s}
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("batch: write the JSON report: %w", err)
	}
	return nil
}
