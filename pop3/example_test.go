package pop3_test

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"os"
	"time"

	"github.com/pop2imap/pop2imap/pop3"
)

// A whole session: STLS, login, list, fetch pipelined, delete, QUIT.
func Example() {
	ctx := context.Background()
	c, err := pop3.Dial(ctx, "pop.example.com:110", &pop3.Options{Timeout: 30 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.StartTLS(&tls.Config{}); err != nil { // verifies pop.example.com
		log.Fatal(err)
	}
	if err := c.Login("alice", os.Getenv("POP3_PASSWORD")); err != nil {
		log.Fatal(err)
	}
	uids, err := c.Uidl()
	if err != nil {
		log.Fatal(err)
	}
	var nums []int
	for _, u := range uids {
		nums = append(nums, u.Number)
	}
	err = c.RetrAll(nums, 16, func(n int, body io.Reader) error {
		_, err := io.Copy(io.Discard, body) // the exact bytes of message n
		return err
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := c.DeleAll(nums, 16); err != nil {
		log.Fatal(err)
	}
	if err := c.Quit(); err != nil { // only now are the messages deleted
		log.Fatal(err)
	}
}
