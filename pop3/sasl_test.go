package pop3

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func xoauth2(user, token string) string {
	return "user=" + user + "\x01auth=Bearer " + token + "\x01\x01"
}

// TestAuth proves the AUTH exchanges of RFC 5034 byte for byte, and that no
// password or token reaches an error or the Debug trace.
func TestAuth(t *testing.T) {
	const (
		password = "s3cretPassw0rd"
		token    = "ya29.tokenTOKENtoken"
	)
	// A token that makes "AUTH XOAUTH2 <ir>\r\n" exactly 255 octets, and
	// one a byte longer, which must go after the "+ " prompt.
	fits := strings.Repeat("t", 155)
	tooLong := strings.Repeat("t", 156)
	if n := len("AUTH XOAUTH2 " + b64(xoauth2("a@b.c", fits)) + "\r\n"); n != 255 {
		t.Fatalf("test setup: line is %d octets, want 255", n)
	}
	jsonErr := b64(`{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}`)
	tests := []struct {
		name    string
		mech    SASLClient
		script  []string
		wantErr func(error) bool
		secrets []string
	}{
		{
			name: "PLAIN with initial response",
			mech: NewPlainClient("", "alice", password),
			script: []string{
				"C: AUTH PLAIN " + b64("\x00alice\x00"+password),
				"S: +OK logged in",
			},
		},
		{
			name: "empty initial response is =",
			mech: &fakeMech{name: "X-EMPTY", ir: []byte{}},
			script: []string{
				"C: AUTH X-EMPTY =",
				"S: +OK",
			},
		},
		{
			name: "LOGIN answers two prompts",
			mech: NewLoginClient("alice", password),
			script: []string{
				"C: AUTH LOGIN",
				"S: + " + b64("Username:"),
				"C: " + b64("alice"),
				"S: + " + b64("Password:"),
				"C: " + b64(password),
				"S: +OK",
			},
		},
		{
			name: "XOAUTH2 that fits in 255 octets goes on the AUTH line",
			mech: NewXOAUTH2Client("a@b.c", fits, false),
			script: []string{
				"C: AUTH XOAUTH2 " + b64(xoauth2("a@b.c", fits)),
				"S: +OK",
			},
			secrets: []string{fits},
		},
		{
			name: "XOAUTH2 over 255 octets goes after +",
			mech: NewXOAUTH2Client("a@b.c", tooLong, false),
			script: []string{
				"C: AUTH XOAUTH2",
				"S: + ",
				"C: " + b64(xoauth2("a@b.c", tooLong)),
				"S: +OK",
			},
			secrets: []string{tooLong},
		},
		{
			name: "XOAUTH2 two-step",
			mech: NewXOAUTH2Client("alice@example.com", token, true),
			script: []string{
				"C: AUTH XOAUTH2",
				"S: +",
				"C: " + b64(xoauth2("alice@example.com", token)),
				"S: +OK",
			},
		},
		{
			name: "XOAUTH2 refused: empty answer to the error challenge",
			mech: NewXOAUTH2Client("alice@example.com", token, false),
			script: []string{
				"C: AUTH XOAUTH2 " + b64(xoauth2("alice@example.com", token)),
				"S: + " + jsonErr,
				"C: ",
				"S: -ERR [AUTH] Authentication failed",
			},
			wantErr: func(err error) bool {
				var perr *Error
				return errors.As(err, &perr) && perr.Code == "AUTH" && err.Error() == "pop3: AUTH XOAUTH2: [AUTH] Authentication failed"
			},
		},
		{
			name: "XOAUTH2 two-step refused",
			mech: NewXOAUTH2Client("alice@example.com", token, true),
			script: []string{
				"C: AUTH XOAUTH2",
				"S: + ",
				"C: " + b64(xoauth2("alice@example.com", token)),
				"S: + " + jsonErr,
				"C: ",
				"S: -ERR [AUTH] Authentication failed",
			},
			wantErr: func(err error) bool { var perr *Error; return errors.As(err, &perr) },
		},
		{
			name: "OAUTHBEARER",
			mech: NewOAuthBearerClient("a,b=c@example.com", token, "pop.example.com", 995),
			script: []string{
				"C: AUTH OAUTHBEARER " + b64("n,a=a=2Cb=3Dc@example.com,\x01host=pop.example.com\x01port=995\x01auth=Bearer "+token+"\x01\x01"),
				"S: +OK",
			},
		},
		{
			name: "OAUTHBEARER refused: AQ== answers the error challenge",
			mech: NewOAuthBearerClient("alice", token, "", 0),
			script: []string{
				"C: AUTH OAUTHBEARER " + b64("n,a=alice,\x01auth=Bearer "+token+"\x01\x01"),
				"S: + " + jsonErr,
				"C: AQ==",
				"S: -ERR [AUTH] invalid token",
			},
			wantErr: func(err error) bool { var perr *Error; return errors.As(err, &perr) && perr.Code == "AUTH" },
		},
		{
			name: "unexpected challenge is cancelled with *",
			mech: NewPlainClient("", "alice", password),
			script: []string{
				"C: AUTH PLAIN " + b64("\x00alice\x00"+password),
				"S: + " + b64("more?"),
				"C: *",
				"S: -ERR cancelled",
			},
			wantErr: func(err error) bool {
				return errors.Is(err, errUnexpectedChallenge) && err.Error() == "pop3: AUTH PLAIN: unexpected server challenge"
			},
		},
		{
			name: "challenge that is not base64 is cancelled",
			mech: NewLoginClient("alice", password),
			script: []string{
				"C: AUTH LOGIN",
				"S: + !!!",
				"C: *",
				"S: -ERR cancelled",
			},
			wantErr: func(err error) bool { var perr *ProtocolError; return errors.As(err, &perr) },
		},
		{
			name: "garbage instead of a challenge",
			mech: NewLoginClient("alice", password),
			script: []string{
				"C: AUTH LOGIN",
				"S: * what",
			},
			wantErr: func(err error) bool { var perr *ProtocolError; return errors.As(err, &perr) },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var trace bytes.Buffer
			script := append([]string{"S: +OK ready"}, tc.script...)
			c := scriptClient(t, &Options{Debug: &trace}, script)
			err := c.Auth(tc.mech)
			if tc.wantErr == nil && err != nil {
				t.Fatalf("Auth: %v", err)
			}
			if tc.wantErr != nil && !tc.wantErr(err) {
				t.Fatalf("Auth error = %v (%T), not the one expected", err, err)
			}
			c.Close()
			secrets := append([]string{password, token, b64(password), b64(token)}, tc.secrets...)
			for _, s := range tc.script { // every payload the client sent
				f := strings.Fields(s)
				switch {
				case len(f) == 4 && f[1] == "AUTH":
					secrets = append(secrets, f[3])
				case len(f) == 2 && f[0] == "C:" && f[1] != "*" && f[1] != "AQ==":
					secrets = append(secrets, f[1])
				}
			}
			if err != nil {
				if found := secretsIn(err.Error(), secrets...); len(found) > 0 {
					t.Errorf("secret in error %q", err)
				}
			}
			if found := secretsIn(trace.String(), secrets...); len(found) > 0 {
				t.Errorf("secret %q in trace:\n%s", found, trace.String())
			}
			if !strings.Contains(trace.String(), "C: AUTH ") {
				t.Errorf("trace lacks the AUTH command:\n%s", trace.String())
			}
		})
	}
}

// TestTraceRedaction proves that PASS and APOP secrets stay out of the
// Debug trace and of errors, while the rest of the conversation shows.
func TestTraceRedaction(t *testing.T) {
	const password = "hunter2-Pass"
	digest := "c4c9334bac560ecc979e58001b3e22fb"
	var trace bytes.Buffer
	c := scriptClient(t, &Options{Debug: &trace}, []string{
		"S: +OK ready <1896.697170952@dbc.mtview.ca.us>",
		"C: APOP mrose " + digest,
		"S: -ERR [AUTH] no",
		"C: USER alice",
		"S: +OK",
		"C: PASS " + password,
		"S: -ERR [AUTH] invalid login",
	})
	err1 := c.APOP("mrose", "tanstaaf")
	err2 := c.Login("alice", password)
	c.Close()
	for _, err := range []error{err1, err2} {
		if err == nil {
			t.Fatal("login succeeded")
		}
		if found := secretsIn(err.Error(), password, digest, "tanstaaf"); len(found) > 0 {
			t.Errorf("secret %q in error %q", found, err)
		}
	}
	if got, want := err2.Error(), "pop3: PASS: [AUTH] invalid login"; got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
	got := trace.String()
	if found := secretsIn(got, password, digest, "tanstaaf"); len(found) > 0 {
		t.Errorf("secret %q in trace:\n%s", found, got)
	}
	for _, want := range []string{"C: APOP mrose <redacted>\n", "C: USER alice\n", "C: PASS <redacted>\n", "S: -ERR [AUTH] invalid login\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("trace lacks %q:\n%s", want, got)
		}
	}
}

// TestEchoedSecretIsScrubbed: a server that echoes the password or token in
// its -ERR text must not get it into the error or the Debug trace.
func TestEchoedSecretIsScrubbed(t *testing.T) {
	const secret = "s3cret-Echo-Value"
	tests := []struct {
		name  string
		login func(c *Client) error
		reply string
	}{
		{"PASS", func(c *Client) error { return c.Login("u", secret) }, "-ERR [AUTH] bad password " + secret},
		{"AUTH PLAIN", func(c *Client) error { return c.Auth(NewPlainClient("", "u", secret)) }, "-ERR [AUTH] no such password: " + secret},
		{"XOAUTH2", func(c *Client) error { return c.Auth(NewXOAUTH2Client("u", secret, false)) }, "-ERR token " + secret + " expired"},
		// The same servers echoing the SASL payload as it came, in base64.
		{"AUTH PLAIN payload", func(c *Client) error { return c.Auth(NewPlainClient("", "u", secret)) },
			"-ERR [AUTH] cannot decode " + base64.StdEncoding.EncodeToString([]byte("\x00u\x00"+secret))},
		{"AUTH LOGIN payload", func(c *Client) error { return c.Auth(NewLoginClient("u", secret)) },
			"-ERR [AUTH] bad " + base64.StdEncoding.EncodeToString([]byte(secret))},
		{"XOAUTH2 payload", func(c *Client) error { return c.Auth(NewXOAUTH2Client("user@example.com", secret, false)) },
			"-ERR bad " + base64.StdEncoding.EncodeToString([]byte("user=user@example.com\x01auth=Bearer "+secret+"\x01\x01"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, server := net.Pipe()
			defer client.Close()
			go func() {
				defer server.Close()
				w := bufio.NewWriter(server)
				r := bufio.NewReader(server)
				w.WriteString("+OK ready\r\n")
				w.Flush()
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if strings.HasPrefix(line, "USER") {
						w.WriteString("+OK\r\n")
					} else {
						w.WriteString(tt.reply + "\r\n")
					}
					w.Flush()
				}
			}()
			var trace strings.Builder
			c, err := NewClient(client, &Options{Debug: &trace, Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			err = tt.login(c)
			if err == nil {
				t.Fatal("login succeeded against a refusing server")
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(trace.String(), secret) {
				t.Errorf("secret leaked: err %q, trace %q", err, trace.String())
			}
			for _, form := range base64Cores(secret) {
				if strings.Contains(err.Error(), form) || strings.Contains(trace.String(), form) {
					t.Errorf("base64 form %q of the secret leaked: err %q, trace %q", form, err, trace.String())
				}
			}
			var perr *Error
			if !errors.As(err, &perr) {
				t.Errorf("scrubbed error %v is no longer a *pop3.Error", err)
			}
		})
	}
}
