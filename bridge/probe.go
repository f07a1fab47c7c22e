package bridge

import (
	"context"
	"time"
)

// Probe is what a check of one account found, without copying or
// changing anything: what the POP3 maildrop holds, and whether the folder
// exists (a run creates it when it does not).
type Probe struct {
	Messages     int
	Bytes        int64
	Folder       string // the folder's name on the server
	FolderExists bool
	FolderCount  uint32 // messages in the folder when it exists
}

// StatPOP3 logs in to the POP3 server, asks STAT, and quits. Nothing is
// retrieved or deleted.
func StatPOP3(ctx context.Context, ep *Endpoint) (count int, size int64, err error) {
	pc, err := DialPOP3(ctx, ep)
	if err != nil {
		return 0, 0, err
	}
	defer pc.Close()
	if count, size, err = pc.Stat(); err != nil {
		return 0, 0, err
	}
	return count, size, pc.Quit()
}

// ProbeAccount logs in to both servers, as imapsync's --justlogin does,
// asks the POP3 server STAT, and looks the folder up on the IMAP server
// without creating it. The two logins run at once.
func ProbeAccount(ctx context.Context, pop3, imap *Endpoint, folder string, timeout time.Duration) (*Probe, error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if folder == "" {
		folder = DefaultFolder
	}
	p := &Probe{Folder: folder}
	imapDone := make(chan error, 1)
	go func() {
		ic, err := DialIMAP(ctx, imap)
		if err != nil {
			imapDone <- err
			return
		}
		defer ic.Close()
		fc := goIMAPFolders{c: ic, timeout: timeout}
		name, err := resolveFolder(fc, folder)
		if err != nil {
			imapDone <- err
			return
		}
		st, err := statFolder(fc, name)
		if err == nil {
			p.Folder, p.FolderExists, p.FolderCount = name, !st.missing, st.messages
		}
		imapDone <- err
	}()
	var perr error
	p.Messages, p.Bytes, perr = StatPOP3(ctx, pop3)
	if ierr := <-imapDone; perr == nil && ierr != nil {
		perr = ierr
	}
	if perr != nil {
		return nil, perr
	}
	return p, nil
}
