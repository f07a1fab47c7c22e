package state

import (
	"os"
	"testing"
)

// BenchmarkMarkAppended measures recording one message: BeginAppend then
// MarkAppended, each with a real fsync. It reports the journal bytes per
// message as B/msg.
func BenchmarkMarkAppended(b *testing.B) {
	path := journalPath(b)
	j := mustOpen(b, path)
	defer j.Close()
	e := message(1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id, err := j.BeginAppend(e)
		if err != nil {
			b.Fatal(err)
		}
		if err := j.MarkAppended(id, 1700000000, uint32(id)); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(fi.Size()-int64(len(header)))/float64(b.N), "B/msg")
}
