package bridge

import (
	"context"
	"log/slog"
)

// Log writes one event to logger, at the level and in the words that
// migrate and the bridge daemon both use: a warning for a message left
// behind, a retry or a changed folder, information for what was found in
// the folder, and debug for each message copied. The engine itself never
// logs; its callers pass their logger here.
func (e Event) Log(logger *slog.Logger) {
	var attrs []any
	if e.Number != 0 {
		attrs = append(attrs, "msg_num", e.Number, "uidl", e.UIDL)
	}
	if e.Size > 0 {
		attrs = append(attrs, "size", e.Size)
	}
	if e.UID != 0 {
		attrs = append(attrs, "uid", e.UID)
	}
	if e.MessageID != "" {
		attrs = append(attrs, "message_id", e.MessageID)
	}
	level, msg := slog.LevelDebug, e.Kind.String()
	switch e.Kind {
	case EventRefused:
		level, msg, attrs = slog.LevelWarn, "left on the POP3 server", append(attrs, "err", e.Err)
	case EventRetry:
		level, msg, attrs = slog.LevelWarn, "temporary failure; retrying", append(attrs, "err", e.Err)
	case EventRecovered:
		level, msg = slog.LevelInfo, "found already in the folder from an interrupted run"
	case EventAdopted:
		level, msg = slog.LevelInfo, "adopted: already in the folder, unknown to the journal; recorded, not appended again"
	case EventUIDValidityChanged:
		level, msg = slog.LevelWarn, e.Err.Error()
	case EventIndexing:
		level, msg = slog.LevelInfo, "indexing the folder, to find messages already there that the journal does not know"
	case EventFolderCreated:
		level, msg = slog.LevelInfo, "created the target folder"
	}
	logger.Log(context.Background(), level, msg, attrs...)
}
