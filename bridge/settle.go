package bridge

import (
	"context"
	"time"
)

// settleQuiet is how long the folder's message count must stay the same
// before a session that resumes interrupted APPENDs looks for their copies.
// An interrupted run (killed, or its connection cut) may have left APPENDs
// queued at the server, in its socket buffer or behind each other on one
// connection, and the server goes on storing them for a while after the
// client is gone. Were the folder indexed before the last of them landed,
// its message would look missing and be appended again. The deeper the
// APPEND windows, the longer that tail. Tests shorten it.
var settleQuiet = time.Second

// settleMax bounds the wait for a folder that never stops changing (other
// mail arriving all the time): after it, the session goes on.
const settleMax = 30 * time.Second

// settleFolder waits until the folder's message count has not changed for
// settleQuiet, and returns its state then. It costs one STATUS per
// settleQuiet, once per session that has interrupted APPENDs to resume,
// and nothing otherwise.
func settleFolder(ctx context.Context, c folderConn, folder string, last folderState) (folderState, error) {
	deadline := time.Now().Add(settleMax)
	for time.Now().Before(deadline) {
		select {
		case <-time.After(settleQuiet):
		case <-ctx.Done():
			return last, ctx.Err()
		}
		now, err := statFolder(c, folder)
		if err != nil {
			return last, err
		}
		if now == last {
			return now, nil
		}
		last = now
	}
	return last, nil
}
