package loadgen

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// pollReaders reads the browsers' sockets (/ws, or Mosquitto's MQTT over
// WebSocket) from Config.Pollers goroutines, each waiting in epoll_wait
// on its share of them (Config.Readers "epoll"), instead of one goroutine
// per browser. A fan-out to a thousand browsers then wakes one goroutine,
// not a thousand: the load generator's run
// queue stays short, so a simulated board's answer to a command does not
// wait behind a thousand readers, and the two cores the target also uses
// lose less time to the load generator's scheduling. Receipt is still
// taken at the socket (SO_TIMESTAMPNS of the read that completed a frame),
// so the figures measure the same thing in both modes.
//
// gorilla/websocket does the handshake; then the browser's socket is
// duplicated, gorilla's connection closed (which takes the socket out of
// the Go runtime's poller without closing it), and the duplicate is read
// here and written by the browser itself (pollWrite): a masked frame for
// a toggle, a pong, a close.
type pollReaders struct {
	eps   []int                     // one epoll instance per goroutine
	wake  [][2]int                  // a pipe per goroutine: closing [1] ends it
	byIdx []atomic.Pointer[browser] // the browser whose index an event carries
	wg    sync.WaitGroup
	once  sync.Once
}

// wakeMark is the event data of a goroutine's wake pipe (browser indexes
// are never negative).
const wakeMark = -1

// newPollReaders starts n goroutines for up to browsers browsers.
func newPollReaders(n, browsers int) (*pollReaders, error) {
	p := &pollReaders{byIdx: make([]atomic.Pointer[browser], browsers)}
	for range n {
		ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			p.close()
			return nil, fmt.Errorf("epoll readers: epoll_create1: %w", err)
		}
		var w [2]int
		if err := syscall.Pipe2(w[:], syscall.O_CLOEXEC); err != nil {
			syscall.Close(ep)
			p.close()
			return nil, fmt.Errorf("epoll readers: pipe: %w", err)
		}
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: wakeMark}
		if err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, w[0], &ev); err != nil {
			syscall.Close(ep)
			syscall.Close(w[0])
			syscall.Close(w[1])
			p.close()
			return nil, fmt.Errorf("epoll readers: add wake pipe: %w", err)
		}
		p.eps, p.wake = append(p.eps, ep), append(p.wake, w)
	}
	for i := range p.eps {
		p.wg.Add(1)
		go p.loop(i) // ends when close closes its wake pipe
	}
	return p, nil
}

// add starts reading b's socket (b.pfd).
func (p *pollReaders) add(b *browser) error {
	p.byIdx[b.idx].Store(b)
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(b.idx)}
	if err := syscall.EpollCtl(p.eps[b.idx%len(p.eps)], syscall.EPOLL_CTL_ADD, b.pfd, &ev); err != nil {
		p.byIdx[b.idx].Store(nil)
		return fmt.Errorf("epoll readers: add browser %d: %w", b.idx, err)
	}
	return nil
}

func (p *pollReaders) loop(i int) {
	defer p.wg.Done()
	ep := p.eps[i]
	events := make([]syscall.EpollEvent, 256)
	for {
		n, err := syscall.EpollWait(ep, events, -1)
		if err != nil {
			if err == syscall.EINTR {
				continue
			}
			return
		}
		for _, ev := range events[:n] {
			if ev.Fd == wakeMark {
				return
			}
			b := p.byIdx[ev.Fd].Load()
			if b == nil {
				continue
			}
			if !b.pollRead() {
				_ = syscall.EpollCtl(ep, syscall.EPOLL_CTL_DEL, b.pfd, nil)
				p.byIdx[ev.Fd].Store(nil)
				b.pollEnd()
			}
		}
	}
}

// close ends the goroutines and waits for them. Every browser must have
// ended before (its socket is not closed here).
func (p *pollReaders) close() {
	p.once.Do(func() {
		for _, w := range p.wake {
			syscall.Close(w[1]) // the read end sees EOF: readable
		}
		p.wg.Wait()
		for i, ep := range p.eps {
			syscall.Close(ep)
			syscall.Close(p.wake[i][0])
		}
	})
}

// pollStart hands b's socket, handshaken by gorilla (b.ws), to its
// poller; b's reader is counted in readers until pollEnd.
func (b *browser) pollStart(readers *sync.WaitGroup) error {
	if err := b.pollTake(); err != nil {
		b.ws.Close()
		return err
	}
	b.polled, b.readers = true, readers
	readers.Add(1)
	if err := b.r.poll.add(b); err != nil {
		b.pollEnd()
		return err
	}
	return nil
}

// pollTake takes b's socket from gorilla's connection after the handshake:
// a duplicate for b.pfd, and the connection closed.
func (b *browser) pollTake() error {
	if b.rx == nil {
		return errors.New("epoll readers: no socket")
	}
	var fd int
	var derr error
	if err := b.rx.raw.Control(func(f uintptr) { fd, derr = syscall.Dup(int(f)) }); err != nil {
		return fmt.Errorf("epoll readers: %w", err)
	}
	if derr != nil {
		return fmt.Errorf("epoll readers: dup: %w", derr)
	}
	syscall.CloseOnExec(fd)
	// The duplicate shares the socket's open file description, and with
	// it O_NONBLOCK; closing gorilla's connection removes the original
	// descriptor from the runtime's poller and leaves the socket open.
	_ = b.ws.NetConn().Close()
	b.ws, b.pfd = nil, fd
	b.pbuf = make([]byte, 0, 64<<10)
	b.pollOOB = make([]byte, len(b.rx.oob))
	return nil
}

// pollRead reads what b's socket holds and handles every complete frame;
// false: the connection ended (or must).
func (b *browser) pollRead() bool {
	for {
		if cap(b.pbuf)-len(b.pbuf) < 16<<10 {
			b.pbuf = append(b.pbuf[:cap(b.pbuf)], make([]byte, cap(b.pbuf))...)[:len(b.pbuf)]
		}
		space := b.pbuf[len(b.pbuf):cap(b.pbuf)]
		n, oobn, _, _, err := syscall.Recvmsg(b.pfd, space, b.pollOOB, 0)
		switch {
		case err == syscall.EAGAIN:
			return true
		case err == syscall.EINTR:
			continue
		case err != nil:
			b.pollErr = err
			return false
		case n == 0:
			b.pollErr = io.EOF
			return false
		}
		now := time.Now()
		at := now
		if ts, ok := parseRxTimestamp(b.pollOOB[:oobn]); ok {
			at = time.Unix(0, ts)
		}
		b.pbuf = b.pbuf[:len(b.pbuf)+n]
		message := func(msg []byte, compressed bool) error { return b.pollMessage(msg, compressed, at, now) }
		if b.pollMQ {
			message = func(msg []byte, _ bool) error { return b.pollMQTT(msg, at, now) }
		}
		if err := b.pollFrames(message); err != nil {
			b.pollErr = err
			return false
		}
		if n < len(space) {
			return true // drained: the level-triggered epoll says when more comes
		}
	}
}

// pollFrames handles every complete frame in b.pbuf, hands each whole
// message to message, and keeps the rest.
func (b *browser) pollFrames(message func(msg []byte, compressed bool) error) error {
	data := b.pbuf
	for {
		if len(data) < 2 {
			break
		}
		h0, h1 := data[0], data[1]
		if h1&0x80 != 0 {
			return errors.New("a masked frame from the server")
		}
		hdr, size := 2, uint64(h1&0x7f)
		switch size {
		case 126:
			if len(data) < 4 {
				goto partial
			}
			hdr, size = 4, uint64(binary.BigEndian.Uint16(data[2:4]))
		case 127:
			if len(data) < 10 {
				goto partial
			}
			hdr, size = 10, binary.BigEndian.Uint64(data[2:10])
		}
		if size > 64<<20 {
			return fmt.Errorf("a frame of %d bytes", size)
		}
		if uint64(len(data)-hdr) < size {
			break
		}
		payload := data[hdr : hdr+int(size)]
		data = data[hdr+int(size):]
		fin, op := h0&0x80 != 0, h0&0x0f
		switch op {
		case 0x1, 0x2: // a message's first frame
			b.pmsg, b.pdeflate = append(b.pmsg[:0], payload...), h0&0x40 != 0
		case 0x0: // continuation
			b.pmsg = append(b.pmsg, payload...)
		case 0x8: // close: answer it, then end
			_ = b.pollWrite(0x8, payload[:min(len(payload), 2)])
			return io.EOF
		case 0x9: // ping
			if err := b.pollWrite(0xA, payload); err != nil {
				return err
			}
			continue
		default: // pong, or unknown
			continue
		}
		if fin {
			if err := message(b.pmsg, b.pdeflate); err != nil {
				return err
			}
		}
	}
partial:
	if len(data) == len(b.pbuf) {
		return nil // nothing whole yet: a large frame arriving in pieces
	}
	n := copy(b.pbuf, data)
	b.pbuf = b.pbuf[:n]
	if cap(b.pbuf) > 1<<20 && n < 64<<10 {
		b.pbuf = append(make([]byte, 0, 64<<10), b.pbuf...) // a snapshot: don't keep it
	}
	return nil
}

// deflateTail ends a permessage-deflate message (RFC 7692, 7.2.2).
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

// pollMessage handles one whole message, received at at (the read that
// completed it) and read at now, as readWS does.
func (b *browser) pollMessage(msg []byte, compressed bool, at, now time.Time) error {
	msg, err := measured(msg, compressed)
	if msg == nil || err != nil {
		return err
	}
	b.markReady()
	if b.measure {
		b.frameData = msg
		b.frame(msg, at, now)
		b.frameData, b.prevAt = nil, at.UnixNano()
	}
	return nil
}

// pollConnectMQTT connects a Mosquitto browser: the WebSocket handshake,
// then CONNECT (no keepalive: nothing to ping) and SUBSCRIBE sent at once,
// as a client may before its CONNACK. The poller checks the CONNACK and
// takes the SUBACK as the browser's first frame.
func (b *browser) pollConnectMQTT(readers *sync.WaitGroup) error {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, Subprotocols: []string{"mqtt"}, NetDialContext: rxDialExact(&b.rx, true)}
	c, _, err := d.Dial(b.r.cfg.WS, http.Header{})
	if err != nil {
		return fmt.Errorf("dial %s: %w", b.r.cfg.WS, err)
	}
	b.ws, b.pollMQ = c, true
	if err := b.pollStart(readers); err != nil {
		return err
	}
	pkts := append(mqttPacket(0x10, connectBody(b.mqttClientID(), 0)), mqttPacket(0x82, subscribeBody(b.r.topics.AllFilter()))...)
	if err := b.pollWrite(0x2, pkts); err != nil {
		b.pollShutdown() // its poller ends it
		return fmt.Errorf("mqtt connect: %w", err)
	}
	return nil
}

// pollMQTT handles the MQTT packets in a binary message of Mosquitto's
// (received at at, read at now); packets may span or share messages.
func (b *browser) pollMQTT(msg []byte, at, now time.Time) error {
	b.mqbuf = append(b.mqbuf, msg...)
	data := b.mqbuf
	for len(data) >= 2 {
		size, mult, i := 0, 1, 1
		for {
			if i >= len(data) {
				goto partial
			}
			c := data[i]
			i++
			size += int(c&0x7f) * mult
			mult *= 128
			if c&0x80 == 0 {
				break
			}
			if i == 5 {
				return errors.New("mqtt: malformed remaining length")
			}
		}
		if len(data)-i < size {
			break
		}
		h, body := data[0], data[i:i+size]
		data = data[i+size:]
		switch h >> 4 {
		case 2: // CONNACK
			if len(body) < 2 || body[1] != 0 {
				return fmt.Errorf("mqtt connack: refused (body %x)", body)
			}
		case 9: // SUBACK
			b.markReady()
		case 3: // PUBLISH
			if b.measure {
				b.onPublish(h, body, at, now)
			}
		}
	}
partial:
	if len(data) < len(b.mqbuf) {
		n := copy(b.mqbuf, data)
		b.mqbuf = b.mqbuf[:n]
	}
	return nil
}

// measured returns a message's text, inflated; nil for another package's
// event (`{"event":…`: nothing measured is in it; see readWS), which is
// not inflated past its first bytes.
func measured(msg []byte, compressed bool) ([]byte, error) {
	if !compressed {
		if bytes.HasPrefix(msg, evOther) {
			return nil, nil
		}
		return msg, nil
	}
	fr := flate.NewReader(io.MultiReader(bytes.NewReader(msg), bytes.NewReader(deflateTail)))
	head := make([]byte, len(evOther))
	n, err := io.ReadFull(fr, head)
	if bytes.Equal(head[:n], evOther) {
		return nil, nil
	}
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, fmt.Errorf("inflate: %w", err)
	}
	rest, err := io.ReadAll(fr)
	if err != nil {
		return nil, fmt.Errorf("inflate: %w", err)
	}
	return append(head[:n], rest...), nil
}

// pollWrite sends one masked client frame on b's socket: a toggle, a pong
// or a close, each small enough for the socket's send buffer.
func (b *browser) pollWrite(op byte, payload []byte) error {
	b.wsMu.Lock()
	defer b.wsMu.Unlock()
	if b.pfd < 0 {
		return errors.New("closed")
	}
	if len(payload) > 125 && op >= 0x8 {
		payload = payload[:125]
	}
	frame := make([]byte, 0, 14+len(payload))
	frame = append(frame, 0x80|op)
	switch {
	case len(payload) < 126:
		frame = append(frame, 0x80|byte(len(payload)))
	case len(payload) <= 0xffff:
		frame = append(frame, 0x80|126)
		frame = binary.BigEndian.AppendUint16(frame, uint16(len(payload)))
	default:
		frame = append(frame, 0x80|127)
		frame = binary.BigEndian.AppendUint64(frame, uint64(len(payload)))
	}
	var key [4]byte
	binary.LittleEndian.PutUint32(key[:], rand.Uint32())
	frame = append(frame, key[:]...)
	for i, c := range payload {
		frame = append(frame, c^key[i&3])
	}
	for len(frame) > 0 {
		n, err := syscall.Write(b.pfd, frame)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("browser %d: write: %w", b.idx, err)
		}
		frame = frame[n:]
	}
	return nil
}

// pollShutdown sends a close frame and shuts the socket's reading down:
// its poller then reads the end and calls pollEnd.
func (b *browser) pollShutdown() {
	_ = b.pollWrite(0x8, []byte{0x03, 0xe8}) // 1000: normal closure
	b.wsMu.Lock()
	if b.pfd >= 0 {
		_ = syscall.Shutdown(b.pfd, syscall.SHUT_RD)
	}
	b.wsMu.Unlock()
}

// pollEnd closes b's socket once its poller has let it go, and ends b.
func (b *browser) pollEnd() {
	if !b.closing.Load() && b.pollErr != nil {
		b.r.log.Warn("browser connection ended", "browser", b.idx, "err", b.pollErr)
	}
	b.wsMu.Lock()
	syscall.Close(b.pfd)
	b.pfd = -1
	b.wsMu.Unlock()
	b.finish(b.readers)
}
