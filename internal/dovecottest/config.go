package dovecottest

import (
	"fmt"
	"path/filepath"
	"strings"
)

// config renders dovecot.conf for the given ports (POP3, POP3S, IMAP, IMAPS).
// Nothing is inherited from /etc/dovecot: settings not named here keep
// Dovecot's compiled-in defaults.
func (s *Server) config(ports []int) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	path := func(name string) string { return filepath.Join(s.Dir, name) }

	p("# Written by pop2imap internal/dovecottest for one test; not for /etc/dovecot.")
	p("protocols = pop3 imap")
	p("listen = 127.0.0.1")
	p("base_dir = %s", path("run"))
	p("state_dir = %s", path("state"))
	p("log_path = %s", s.LogFile)
	p("info_log_path = %s", s.LogFile)
	p("auth_verbose = yes")
	p("login_greeting = %s", s.Greeting)
	p("")
	p("ssl = yes")
	p("ssl_cert = <%s", path("tls/server.pem"))
	p("ssl_key = <%s", path("tls/server.key"))
	p("")
	// Plaintext logins on the non-TLS ports are what most tests use.
	p("disable_plaintext_auth = no")
	// apop works because the passdb can hand out the plaintext password.
	p("auth_mechanisms = plain login apop")
	// Tests that try a wrong password must not slow down the logins after
	// it: no failure delay, and no per-IP auth penalty (2 s after one
	// failure, up to 15 s). The auth process disables the penalty when it
	// cannot reach anvil's penalty socket; 2.3 ignores
	// login_trusted_networks for this.
	p("auth_failure_delay = 0")
	p("service anvil {")
	p("  unix_listener anvil-auth-penalty {")
	p("    mode = 0")
	p("  }")
	p("}")
	// One passwd-file per user by default: Dovecot re-reads a passwd-file
	// at most once a second, so a single file would hide users added
	// within the same second. See writeUser, and Options.OnePasswdFile for
	// the single file.
	users := s.usersDir + "/%u"
	if s.opts.OnePasswdFile {
		users = s.passwdFile()
	}
	p("passdb {")
	p("  driver = passwd-file")
	p("  args = %s", users)
	p("}")
	p("userdb {")
	p("  driver = passwd-file")
	p("  args = %s", users)
	p("}")
	p("")
	p("mail_uid = %d", s.uid)
	p("mail_gid = %d", s.gid)
	// System users have small ids; the default floor is 500.
	p("first_valid_uid = 1")
	p("first_valid_gid = 1")
	p("mail_location = %s", s.opts.MailFormat.location())
	p("mail_fsync = always")
	// Pipelined and parallel tests open more than the default 10.
	p("mail_max_userip_connections = 100")
	// A POP3 session over a million messages needs more than the default
	// 256 MB of address space (bench/run.sh -scale).
	p("default_vsz_limit = 2G")
	p("pop3_uidl_format = %%08Xu%%08Xv")
	p("namespace inbox {")
	p("  inbox = yes")
	p("  separator = /")
	p("}")
	p("")
	p("service pop3-login {")
	p("  inet_listener pop3 {")
	p("    port = %d", ports[0])
	p("  }")
	p("  inet_listener pop3s {")
	p("    port = %d", ports[1])
	p("    ssl = yes")
	p("  }")
	p("}")
	p("service imap-login {")
	p("  inet_listener imap {")
	p("    port = %d", ports[2])
	p("  }")
	p("  inet_listener imaps {")
	p("    port = %d", ports[3])
	p("    ssl = yes")
	p("  }")
	p("}")
	if s.opts.QuotaBytes > 0 {
		p("")
		p("mail_plugins = $mail_plugins quota")
		p("protocol imap {")
		p("  mail_plugins = $mail_plugins imap_quota")
		p("}")
		p("plugin {")
		if s.opts.MailFormat == Maildir {
			p("  quota = maildir:User quota")
		} else {
			// The Maildir++ backend needs maildir; count works with any
			// format and needs the virtual sizes in the index.
			p("  quota = count:User quota")
			p("  quota_vsizes = yes")
		}
		p("  quota_rule = *:storage=%dB", s.opts.QuotaBytes)
		p("}")
	}
	if s.opts.ExtraConfig != "" {
		p("")
		p("# Options.ExtraConfig")
		p("%s", s.opts.ExtraConfig)
	}
	return b.String()
}
