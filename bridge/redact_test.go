package bridge

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pop2imap/pop2imap/internal/testnet"
)

// echoingIMAP is an IMAP server that refuses every login and quotes what it
// was sent in its NO: the password of LOGIN, or the base64 SASL payload of
// AUTHENTICATE, as broken servers do.
func echoingIMAP(t *testing.T, caps string) string {
	t.Helper()
	return testnet.Serve(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "* OK [CAPABILITY %s] echo\r\n", caps)
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			tag, cmd := f[0], strings.ToUpper(f[1])
			switch {
			case cmd == "CAPABILITY":
				fmt.Fprintf(c, "* CAPABILITY %s\r\n%s OK done\r\n", caps, tag)
			case cmd == "LOGIN" || cmd == "AUTHENTICATE":
				fmt.Fprintf(c, "%s NO [AUTHENTICATIONFAILED] refused %s\r\n", tag, strings.Join(f[2:], " "))
			case cmd == "LOGOUT":
				fmt.Fprintf(c, "* BYE\r\n%s OK bye\r\n", tag)
				return
			default:
				fmt.Fprintf(c, "%s OK\r\n", tag)
			}
		}
	})
}

// TestIMAPEchoedSecretIsRedacted: an IMAP server that quotes the password,
// or the base64 SASL payload that carries it, in its refusal does not get
// it into the error; the error keeps its type.
func TestIMAPEchoedSecretIsRedacted(t *testing.T) {
	const secret = "imap-Echo-s3cret-Value"
	for _, tc := range []struct {
		name, caps string
		mech       AuthMech
	}{
		{"LOGIN", "IMAP4rev1", AuthLogin},
		{"AUTHENTICATE PLAIN", "IMAP4rev1 SASL-IR AUTH=PLAIN", AuthPlain},
		{"AUTHENTICATE XOAUTH2", "IMAP4rev1 SASL-IR AUTH=XOAUTH2", AuthXOAUTH2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ep := &Endpoint{Addr: echoingIMAP(t, tc.caps), Username: "someone@example.com", TLS: TLSNone,
				Secret: staticSecret(secret), Auth: tc.mech, OAuth2: tc.mech.OAuth2(), Timeout: 5 * time.Second}
			_, err := DialIMAP(context.Background(), ep)
			if err == nil {
				t.Fatal("login succeeded against a refusing server")
			}
			if !strings.Contains(err.Error(), "refused") {
				t.Fatalf("the server's refusal is not in the error: %v", err)
			}
			assertRedacted(t, err.Error(), secret)
			var aerr *AuthError
			if !errors.As(err, &aerr) {
				t.Errorf("%T is no longer an *AuthError", err)
			}
		})
	}
}

// TestPOP3EchoedSecretIsRedacted: the same through DialPOP3, with the
// password echoed plainly and as the base64 payload of AUTH PLAIN.
func TestPOP3EchoedSecretIsRedacted(t *testing.T) {
	const secret = "pop3-Echo-s3cret-Value"
	addr := testnet.Serve(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprint(c, "+OK echo\r\n")
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			verb, arg, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
			switch strings.ToUpper(verb) {
			case "CAPA":
				fmt.Fprint(c, "+OK\r\nUSER\r\nSASL PLAIN\r\n.\r\n")
			case "PASS", "AUTH":
				fmt.Fprintf(c, "-ERR [AUTH] refused %s\r\n", arg)
			default:
				fmt.Fprint(c, "+OK\r\n")
			}
		}
	})
	for _, mech := range []AuthMech{AuthUser, AuthPlain} {
		ep := &Endpoint{Addr: addr, Username: "u", TLS: TLSNone, Secret: staticSecret(secret), Auth: mech, Timeout: 5 * time.Second}
		_, err := DialPOP3(context.Background(), ep)
		if err == nil || !strings.Contains(err.Error(), "refused") {
			t.Fatalf("%s: %v; want the server's refusal", mech, err)
		}
		assertRedacted(t, err.Error(), secret)
	}
}

// assertRedacted fails if text holds secret or a base64 run of it (as
// the base64 of a PLAIN or XOAUTH2 payload would, at any alignment).
func assertRedacted(t *testing.T, text, secret string) {
	t.Helper()
	if strings.Contains(text, secret) {
		t.Errorf("the error holds the secret: %s", text)
	}
	for k := 0; k < 3; k++ {
		enc := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("\xff", k) + secret))
		mid := enc[4 : len(enc)-4] // groups wholly inside the secret, for every k
		if strings.Contains(text, mid) {
			t.Errorf("the error holds the secret in base64 (%s): %s", mid, text)
		}
	}
}
