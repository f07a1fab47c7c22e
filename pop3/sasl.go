package pop3

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// SASLClient is one SASL mechanism, as the client side of an AUTH exchange
// (RFC 5034). Start returns the mechanism name and the initial response;
// ir == nil means the mechanism has none, a non-nil empty ir is an empty
// initial response. Next answers each server challenge. An error from
// either cancels the exchange.
type SASLClient interface {
	Start() (mech string, ir []byte, err error)
	Next(challenge []byte) (response []byte, err error)
}

// maxAuthLine is the longest AUTH command line, CRLF included, that may
// carry the initial response (RFC 5034 section 4, from RFC 2449's limit).
const maxAuthLine = 255

// Auth logs in with a SASL mechanism (RFC 5034).
//
// The initial response goes on the AUTH line when that line fits in 255
// octets ("=" stands for an empty one); otherwise AUTH is sent alone and the
// response follows the server's "+ " prompt. Challenges are passed to
// mech.Next and its answers sent back; if Next fails, the exchange is
// cancelled with "*". Payloads never appear in errors or the Debug trace.
func (c *Client) Auth(mech SASLClient) error {
	var secret string
	if h, ok := mech.(interface{ secret() string }); ok {
		secret = h.secret()
	}
	return c.hiding(secret, func() error { return c.auth(mech) })
}

func (c *Client) auth(mech SASLClient) error {
	name, ir, err := mech.Start()
	if err != nil {
		return fmt.Errorf("pop3: AUTH: %w", err)
	}
	if name == "" || strings.ContainsAny(name, " \t\r\n\x00") {
		return fmt.Errorf("pop3: AUTH: mechanism name: %w", ErrBadArgument)
	}
	label := "AUTH " + name
	line, trace := label, ""
	var pending []byte // initial response still to send after "+ "
	if ir != nil {
		enc := "="
		if len(ir) > 0 {
			enc = base64.StdEncoding.EncodeToString(ir)
		}
		if len(label)+1+len(enc)+2 <= maxAuthLine {
			line += " " + enc
			trace = label + " <redacted>"
		} else {
			pending = ir
		}
	}
	if err := c.begin(label); err != nil {
		return err
	}
	c.setDeadline()
	c.send(line, trace)
	if err := c.flush(label); err != nil {
		return err
	}
	for step := 0; ; step++ {
		l, err := c.readLine(label)
		if err != nil {
			return err
		}
		c.traceLine(l)
		if ok, text, valid := parseStatus(l); valid {
			if !ok {
				return parseError(label, text)
			}
			c.forgetCapabilities()
			return nil
		}
		if len(l) == 0 || l[0] != '+' || (len(l) > 1 && l[1] != ' ') {
			return c.fail(&ProtocolError{Command: label, Msg: "malformed reply " + quoteReply(l)})
		}
		if step >= maxAuthSteps {
			return c.fail(&ProtocolError{Command: label, Msg: fmt.Sprintf("more than %d challenges", maxAuthSteps)})
		}
		var resp []byte
		challenge, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(l[1:])))
		switch {
		case err != nil:
			err = &ProtocolError{Command: label, Msg: "challenge is not base64"}
		case pending != nil:
			resp, pending = pending, nil
		default:
			resp, err = mech.Next(challenge)
			if err != nil {
				err = fmt.Errorf("pop3: %s: %w", label, err)
			}
		}
		c.setDeadline()
		if err != nil {
			return c.cancelAuth(label, err)
		}
		c.send(base64.StdEncoding.EncodeToString(resp), "<redacted>")
		if err := c.flush(label); err != nil {
			return err
		}
	}
}

// cancelAuth sends "*" and reads the server's reply, which should be -ERR;
// cause is what the caller learns.
func (c *Client) cancelAuth(label string, cause error) error {
	c.send("*", "")
	if err := c.flush(label); err != nil {
		return joinErrors(cause, err)
	}
	l, err := c.readLine(label)
	if err != nil {
		return joinErrors(cause, err)
	}
	c.traceLine(l)
	if ok, _, valid := parseStatus(l); !valid || ok {
		// Without a -ERR the server's state is unknown; do not go on.
		return c.fail(joinErrors(cause, &ProtocolError{Command: label, Msg: "unexpected reply to cancel " + quoteReply(l)}))
	}
	return cause
}

var errUnexpectedChallenge = errors.New("unexpected server challenge")

type plainClient struct{ identity, username, password string }

// NewPlainClient returns the PLAIN mechanism (RFC 4616). identity is the
// user to act as, usually "" for username itself.
func NewPlainClient(identity, username, password string) SASLClient {
	return &plainClient{identity, username, password}
}

func (a *plainClient) Start() (string, []byte, error) {
	return "PLAIN", []byte(a.identity + "\x00" + a.username + "\x00" + a.password), nil
}

func (a *plainClient) Next([]byte) ([]byte, error) {
	return nil, errUnexpectedChallenge
}

type loginClient struct {
	username, password string
	step               int
}

// NewLoginClient returns the LOGIN mechanism: the server prompts for the
// user name, then for the password.
func NewLoginClient(username, password string) SASLClient {
	return &loginClient{username: username, password: password}
}

func (a *loginClient) Start() (string, []byte, error) {
	a.step = 0
	return "LOGIN", nil, nil
}

func (a *loginClient) Next([]byte) ([]byte, error) {
	a.step++
	switch a.step {
	case 1:
		return []byte(a.username), nil
	case 2:
		return []byte(a.password), nil
	}
	return nil, errUnexpectedChallenge
}

type xoauth2Client struct {
	username, token string
	twoStep         bool
	sentToken       bool
}

// NewXOAUTH2Client returns the XOAUTH2 mechanism of Google and Microsoft.
// With twoStep, AUTH XOAUTH2 goes alone and the token follows the server's
// "+" prompt, as Microsoft 365 requires. When the token is refused, the
// server sends an error challenge, which is answered with an empty line so
// that the -ERR follows.
func NewXOAUTH2Client(username, token string, twoStep bool) SASLClient {
	return &xoauth2Client{username: username, token: token, twoStep: twoStep}
}

func (a *xoauth2Client) payload() []byte {
	return []byte("user=" + a.username + "\x01auth=Bearer " + a.token + "\x01\x01")
}

func (a *xoauth2Client) Start() (string, []byte, error) {
	if a.twoStep {
		a.sentToken = false
		return "XOAUTH2", nil, nil
	}
	a.sentToken = true
	return "XOAUTH2", a.payload(), nil
}

func (a *xoauth2Client) Next([]byte) ([]byte, error) {
	if !a.sentToken {
		a.sentToken = true
		return a.payload(), nil
	}
	return []byte{}, nil // the challenge is the JSON error; the -ERR follows
}

type oauthBearerClient struct {
	username, token, host string
	port                  int
}

// NewOAuthBearerClient returns the OAUTHBEARER mechanism (RFC 7628). host
// and port name the server as the client sees it; "" and 0 leave them out.
// An error challenge is answered with the single byte 0x01, as RFC 7628
// section 3.2.3 asks, so that the -ERR follows.
func NewOAuthBearerClient(username, token, host string, port int) SASLClient {
	return &oauthBearerClient{username: username, token: token, host: host, port: port}
}

func (a *oauthBearerClient) Start() (string, []byte, error) {
	var b strings.Builder
	b.WriteString("n,")
	if a.username != "" {
		b.WriteString("a=")
		// RFC 5801 saslname: "," and "=" are escaped.
		b.WriteString(strings.NewReplacer("=", "=3D", ",", "=2C").Replace(a.username))
	}
	b.WriteString(",\x01")
	if a.host != "" {
		b.WriteString("host=" + a.host + "\x01")
	}
	if a.port != 0 {
		b.WriteString("port=" + strconv.Itoa(a.port) + "\x01")
	}
	b.WriteString("auth=Bearer " + a.token + "\x01\x01")
	return "OAUTHBEARER", []byte(b.String()), nil
}

func (a *oauthBearerClient) Next([]byte) ([]byte, error) {
	return []byte{0x01}, nil
}

// secret tells Client.Auth what to keep out of errors and traces.
func (a *plainClient) secret() string       { return a.password }
func (a *loginClient) secret() string       { return a.password }
func (a *xoauth2Client) secret() string     { return a.token }
func (a *oauthBearerClient) secret() string { return a.token }
