package pop3

import (
	"strconv"
	"strings"
	"time"
)

// Capabilities is the server's CAPA reply (RFC 2449).
type Capabilities struct {
	Pipelining bool // PIPELINING: commands may be sent before earlier replies arrive
	UIDL       bool
	Top        bool
	RespCodes  bool // RESP-CODES: -ERR replies may carry [CODE]
	UTF8       bool // UTF8 (RFC 6856)
	STLS       bool
	User       bool // USER/PASS login is offered

	SASL           []string // mechanisms after SASL, upper case
	Expire         string   // arguments of EXPIRE, e.g. "NEVER" or "30 USER"
	LoginDelay     string   // arguments of LOGIN-DELAY, e.g. "900" or "60 USER"
	Implementation string   // the text after IMPLEMENTATION

	// Raw holds every capability line: the tag in upper case maps to its
	// arguments (an empty, non-nil slice when there are none).
	Raw map[string][]string
}

// parseCapa reads capability lines. It accepts anything: unknown or
// malformed lines only land in Raw.
func parseCapa(lines []string) *Capabilities {
	caps := &Capabilities{Raw: make(map[string][]string)}
	for _, line := range lines {
		line = strings.TrimSpace(line)
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		tag := strings.ToUpper(fields[0])
		args := fields[1:]
		caps.Raw[tag] = append(caps.Raw[tag], args...)
		if caps.Raw[tag] == nil {
			caps.Raw[tag] = []string{}
		}
		switch tag {
		case "PIPELINING":
			caps.Pipelining = true
		case "UIDL":
			caps.UIDL = true
		case "TOP":
			caps.Top = true
		case "RESP-CODES":
			caps.RespCodes = true
		case "UTF8":
			caps.UTF8 = true
		case "STLS":
			caps.STLS = true
		case "USER":
			caps.User = true
		case "SASL":
			for _, m := range args {
				caps.SASL = append(caps.SASL, strings.ToUpper(m))
			}
		case "EXPIRE":
			caps.Expire = strings.Join(args, " ")
		case "LOGIN-DELAY":
			caps.LoginDelay = strings.Join(args, " ")
		case "IMPLEMENTATION":
			caps.Implementation = strings.TrimSpace(line[len(fields[0]):])
		}
	}
	return caps
}

// HasSASL reports whether the server offers the SASL mechanism mech.
func (caps *Capabilities) HasSASL(mech string) bool {
	for _, m := range caps.SASL {
		if strings.EqualFold(m, mech) {
			return true
		}
	}
	return false
}

func (caps *Capabilities) clone() *Capabilities {
	c := *caps
	c.SASL = append([]string(nil), caps.SASL...)
	c.Raw = make(map[string][]string, len(caps.Raw))
	for k, v := range caps.Raw {
		c.Raw[k] = append([]string{}, v...)
	}
	return &c
}

// MinLoginInterval is the LOGIN-DELAY the server announces (RFC 2449): the
// shortest time it allows between two logins of the account, or 0 when it
// announces none or an unreadable one.
func (c *Capabilities) MinLoginInterval() time.Duration {
	fields := strings.Fields(c.LoginDelay)
	if len(fields) == 0 {
		return 0
	}
	n, err := strconv.ParseUint(fields[0], 10, 31)
	if err != nil {
		return 0
	}
	return time.Duration(n) * time.Second
}
