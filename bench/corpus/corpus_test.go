package corpus

import (
	"bytes"
	"crypto/sha256"
	"net/mail"
	"testing"
)

// TestDeterministic proves that message i depends only on the seed and i.
func TestDeterministic(t *testing.T) {
	for i := 0; i < 50; i++ {
		var a, b bytes.Buffer
		Write(&a, 7, SpecFor(7, i))
		Write(&b, 7, SpecFor(7, i))
		if sha256.Sum256(a.Bytes()) != sha256.Sum256(b.Bytes()) {
			t.Fatalf("message %d differs between two writes", i)
		}
	}
	var a, b bytes.Buffer
	Write(&a, 7, SpecFor(7, 3))
	Write(&b, 8, SpecFor(8, 3))
	if bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("seeds 7 and 8 give the same message 3")
	}
}

// TestShape proves the messages parse, end every line in CRLF, and follow
// the size mix: mostly 2 to 50 KB, some attachments of 0.2 to 5 MB.
func TestShape(t *testing.T) {
	const n = 400
	var big int
	for i := 0; i < n; i++ {
		var buf bytes.Buffer
		size, err := Write(&buf, 1, SpecFor(1, i))
		if err != nil || size != int64(buf.Len()) {
			t.Fatalf("message %d: size %d, %d written, err %v", i, size, buf.Len(), err)
		}
		data := buf.Bytes()
		if bytes.Count(data, []byte("\n")) != bytes.Count(data, []byte("\r\n")) || !bytes.HasSuffix(data, []byte("\r\n")) {
			t.Fatalf("message %d has a line not ending in CRLF", i)
		}
		if _, err := mail.ReadMessage(bytes.NewReader(data)); err != nil {
			t.Fatalf("message %d does not parse: %v", i, err)
		}
		switch {
		case size > 150_000 && size < 7_000_000:
			big++
		case size < 1_500 || size > 80_000:
			t.Errorf("message %d: %d bytes, outside both size bands", i, size)
		}
	}
	if big < n/50 || big > n/10 {
		t.Errorf("%d of %d messages have attachments, want about 5%%", big, n)
	}
}

// TestHuge proves a huge message has about the size asked for.
func TestHuge(t *testing.T) {
	var buf bytes.Buffer
	size, _ := Write(&buf, 1, HugeSpec(0, 20<<20))
	if size < 19<<20 || size > 22<<20 {
		t.Errorf("20 MiB message is %d bytes", size)
	}
}
