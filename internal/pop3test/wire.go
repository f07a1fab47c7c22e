package pop3test

import "bytes"

// WireBody returns the bytes the server sends for a message body after the
// "+OK" line of RETR (and, for the lines TOP selects, of TOP): data
// dot-stuffed, then the terminator.
//
// Dot-stuffing doubles the "." at the start of every line. A line starts at
// position 0 and after every LF, bare or not: a client that unstuffs after
// every LF gets data back exactly, and no line of data can be mistaken for
// the terminator even by a client that splits lines on bare LF.
//
// The terminator follows RFC 1939, where a multi-line response ends with
// CRLF "." CRLF and the first CRLF ends the last line of the response, so it
// belongs to the message:
//
//   - When data is empty or ends in CRLF, the server sends ".\r\n" right
//     after it (for empty data, right after the "+OK" line). A correct
//     client receives data byte for byte.
//   - Otherwise (data ends without a line break, or with a bare LF or a bare
//     CR) the server must finish the last line first and sends
//     "\r\n.\r\n". A client cannot tell this added CRLF from one that was
//     in the message, so it receives data followed by CRLF.
//
// Test messages should therefore end in CRLF whenever a test compares the
// bytes a client received with the bytes given to AddMessage.
func WireBody(data []byte) []byte {
	return appendWireBody(make([]byte, 0, len(data)+len(data)/64+5), data)
}

// appendWireBody appends WireBody(data) to dst.
func appendWireBody(dst, data []byte) []byte {
	lineStart := true
	for _, b := range data {
		if lineStart && b == '.' {
			dst = append(dst, '.')
		}
		dst = append(dst, b)
		lineStart = b == '\n'
	}
	if len(data) == 0 || bytes.HasSuffix(data, []byte("\r\n")) {
		return append(dst, ".\r\n"...)
	}
	return append(dst, "\r\n.\r\n"...)
}

// topOf returns what TOP sends of data: the header, the empty line that
// ends it, and then at most n lines of the body. Lines end at every LF, as
// in dot-stuffing. A message without an empty line is all header and is
// returned whole.
func topOf(data []byte, n int) []byte {
	pos := 0
	inHeader := true
	for pos < len(data) {
		if !inHeader {
			if n == 0 {
				break
			}
			n--
		}
		end := bytes.IndexByte(data[pos:], '\n')
		if end < 0 {
			return data
		}
		line := data[pos : pos+end+1]
		pos += end + 1
		if inHeader && (len(line) == 1 || (len(line) == 2 && line[0] == '\r')) {
			inHeader = false
		}
	}
	return data[:pos]
}
