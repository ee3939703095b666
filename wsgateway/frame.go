// Frame encoding (RFC 6455, server to client): the frames the writer
// sends, encoded by hand.

package wsgateway

// WebSocket opcodes (RFC 6455 section 5.2).
const (
	opText  = 0x1
	opClose = 0x8
	opPing  = 0x9
	opPong  = 0xA
)

// appendFrameHeader appends the header of a final, unmasked frame of
// opcode op carrying n payload bytes.
func appendFrameHeader(b []byte, op byte, n int) []byte {
	b = append(b, 0x80|op)
	switch {
	case n < 126:
		return append(b, byte(n))
	case n <= 0xffff:
		return append(b, 126, byte(n>>8), byte(n))
	default:
		return append(b, 127, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

// appendFrame appends a whole frame.
func appendFrame(b []byte, op byte, payload []byte) []byte {
	return append(appendFrameHeader(b, op, len(payload)), payload...)
}

// appendChunksFrame appends one text frame holding chunks joined by commas,
// wrapped in [ ] (a JSON array) when asArray.
func appendChunksFrame(b []byte, chunks [][]byte, asArray bool) []byte {
	b = appendFrameHeader(b, opText, chunksLen(chunks, asArray))
	if asArray {
		b = append(b, '[')
	}
	for i, ch := range chunks {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, ch...)
	}
	if asArray {
		b = append(b, ']')
	}
	return b
}

// chunksLen is the payload length of appendChunksFrame's frame.
func chunksLen(chunks [][]byte, asArray bool) int {
	n := max(len(chunks)-1, 0) // commas
	for _, ch := range chunks {
		n += len(ch)
	}
	if asArray {
		n += 2
	}
	return n
}
