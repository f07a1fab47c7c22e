package pop3

import (
	"bytes"
	"io"
	"testing"
)

// stuffedMessage builds a RETR reply of about size bytes: 78-byte lines,
// every tenth one starting with a stuffed dot, then the terminator.
func stuffedMessage(size int) (wire []byte, msgLen int64) {
	var b bytes.Buffer
	b.Grow(size + 1024)
	b.WriteString("+OK\r\n")
	line := bytes.Repeat([]byte("x"), 76)
	for i := 0; b.Len() < size; i++ {
		if i%10 == 0 {
			b.WriteString("..")
			b.Write(line[2:])
			msgLen += 75 + 2
		} else {
			b.Write(line)
			msgLen += 76 + 2
		}
		b.WriteString("\r\n")
	}
	b.WriteString(".\r\n")
	return b.Bytes(), msgLen
}

// benchRetr copies one message through Retr per iteration, on a client
// made once: B/op and allocs/op are what one RETR costs, and must not grow
// with the size of the message.
func benchRetr(b *testing.B, size int) {
	wire, msgLen := stuffedMessage(size)
	c, err := NewClient(newReplayConn("+OK ready\r\n", wire), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(msgLen)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		body, err := c.Retr(1)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, body)
		if err != nil || n != msgLen {
			b.Fatalf("copied %d, %v; want %d", n, err, msgLen)
		}
	}
}

func BenchmarkRetr1MB(b *testing.B)   { benchRetr(b, 1<<20) }
func BenchmarkRetr100MB(b *testing.B) { benchRetr(b, 100<<20) }
