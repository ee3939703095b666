package loadgen

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"switchyard/devices"
)

// browser is one simulated browser: a /ws client (Switchyard, Node-RED) or
// an MQTT-over-WebSocket subscriber (Mosquitto). Its reader goroutine is
// the only one touching lat, tog, lastSeq, lastToggle, dups and errorEvts
// until it has ended.
type browser struct {
	r       *run
	idx     int
	measure bool

	ws   *websocket.Conn // /ws
	mq   *mqttWS         // Mosquitto
	rx   *rxConn         // ws's or mq's TCP connection; nil: no receive timestamps
	wsMu sync.Mutex      // guards writes on ws, and pfd

	// With Config.Readers "epoll" (pollread_linux.go), ws is nil once
	// connected: the socket is pfd, read by a pollReaders goroutine, which
	// alone touches pbuf, pmsg, pdeflate, pollOOB and pollErr.
	polled   bool
	pfd      int
	pbuf     []byte // received, not yet a whole frame
	pmsg     []byte // the message being assembled
	pdeflate bool   // pmsg is compressed
	pollOOB  []byte
	pollErr  error           // why the connection ended
	readers  *sync.WaitGroup // Done at pollEnd
	pollMQ   bool            // Mosquitto's: the messages carry MQTT packets
	mqbuf    []byte          // MQTT bytes received, not yet a whole packet

	received   atomic.Int64 // window events, each once
	lat        Histogram    // at socket receipt (see rxConn)
	tog        Histogram    // Result.ToggleEach
	readLat    Histogram    // when the reader got to it
	readTog    Histogram    // Result.ReadToggleEach
	lastSeq    []int64      // by board; -1: none yet
	lastToggle int64
	prevAt     int64  // unix ns: socket receipt of the frame before the one being read
	frameData  []byte // the frame being read (/ws)
	dups       int64
	errorEvts  int64

	ready    chan struct{} // closed at the first frame (the snapshot) or SUBACK
	done     chan struct{} // closed when the reader ends
	closing  atomic.Bool   // we are closing it: its end is not a drop
	dropped  atomic.Bool   // it ended on its own
	shutOnce sync.Once
}

func newBrowser(r *run, idx int, measure bool) *browser {
	b := &browser{r: r, idx: idx, measure: measure, pfd: -1, ready: make(chan struct{}), done: make(chan struct{})}
	if measure {
		b.lastSeq = make([]int64, len(r.boards))
		for i := range b.lastSeq {
			b.lastSeq[i] = -1
		}
	}
	return b
}

// readyWait bounds the wait for a browser's first frame. A control plane
// that knows no board sends no snapshot, so its absence is not an error.
const readyWait = 10 * time.Second

// connect opens the connection, starts the reader (counted in readers) and
// waits until the server has registered the browser: its snapshot, or the
// SUBACK of its subscription.
func (b *browser) connect(readers *sync.WaitGroup) error {
	cfg := &b.r.cfg
	switch {
	case cfg.Target == Mosquitto && b.r.poll != nil:
		if err := b.pollConnectMQTT(readers); err != nil {
			return fmt.Errorf("browser %d: %w", b.idx, err)
		}
	case cfg.Target == Mosquitto:
		c, err := dialMQTTWS(cfg.WS, b.mqttClientID(), 10*time.Second, rxDial(&b.rx))
		if err != nil {
			return fmt.Errorf("browser %d: %w", b.idx, err)
		}
		b.mq = c
		if err := c.subscribe(b.r.topics.AllFilter()); err != nil {
			c.close()
			return fmt.Errorf("browser %d: subscribe: %w", b.idx, err)
		}
		readers.Add(1)
		go b.readMQTT(readers) // ends when the connection closes
	default:
		// EnableCompression: browsers offer permessage-deflate (Chromium
		// and Firefox always do), and a server may then compress.
		poll := b.r.poll != nil
		d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 16 << 10, WriteBufferSize: 1 << 10,
			NetDialContext: rxDialExact(&b.rx, poll), EnableCompression: true}
		c, _, err := d.Dial(cfg.WS, nil)
		if err != nil {
			return fmt.Errorf("browser %d: dial %s: %w", b.idx, cfg.WS, err)
		}
		b.ws = c
		if poll {
			if err := b.pollStart(readers); err != nil {
				return fmt.Errorf("browser %d: %w", b.idx, err)
			}
		} else {
			readers.Add(1)
			go b.readWS(readers) // ends when the connection closes
		}
	}
	select {
	case <-b.ready:
	case <-b.done:
		return fmt.Errorf("browser %d: connection ended before its first frame", b.idx)
	case <-time.After(readyWait):
		b.r.log.Warn("browser got no first frame", "browser", b.idx, "waited", readyWait)
	}
	return nil
}

// mqttClientID is the client id of a Mosquitto browser.
func (b *browser) mqttClientID() string {
	return fmt.Sprintf("%s-browser-%d", b.r.cfg.IDPrefix, b.idx)
}

// ended reports whether the reader has ended.
func (b *browser) ended() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

// shutdown closes the connection; the reader then ends.
func (b *browser) shutdown() {
	b.shutOnce.Do(func() {
		b.closing.Store(true)
		switch {
		case b.polled:
			b.pollShutdown()
		case b.ws != nil:
			b.wsMu.Lock()
			_ = b.ws.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(100*time.Millisecond))
			b.wsMu.Unlock()
			_ = b.ws.Close()
		case b.mq != nil:
			_ = b.mq.close()
		}
	})
}

// sendToggle asks for board id's LED to toggle, in the target's dialect.
func (b *browser) sendToggle(id string) error {
	if b.mq != nil {
		return b.mq.publish(b.r.topics.LEDSet(id), []byte(devices.CmdToggle.Payload()))
	}
	if b.pollMQ {
		return b.pollWrite(0x2, mqttPacket(0x30, publishBody(b.r.topics.LEDSet(id), []byte(devices.CmdToggle.Payload()))))
	}
	if b.polled {
		if err := b.pollWrite(0x1, []byte(`{"device":"`+id+`","action":"toggle"}`)); err != nil {
			return fmt.Errorf("browser %d: send toggle: %w", b.idx, err)
		}
		return nil
	}
	b.wsMu.Lock()
	defer b.wsMu.Unlock()
	_ = b.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := b.ws.WriteMessage(websocket.TextMessage, []byte(`{"device":"`+id+`","action":"toggle"}`)); err != nil {
		return fmt.Errorf("browser %d: send toggle: %w", b.idx, err)
	}
	return nil
}

func (b *browser) finish(readers *sync.WaitGroup) {
	if !b.closing.Load() {
		b.dropped.Store(true)
	}
	select {
	case <-b.ready:
	default:
		close(b.ready)
	}
	close(b.done)
	readers.Done()
}

func (b *browser) markReady() {
	select {
	case <-b.ready:
	default:
		close(b.ready)
	}
}

// readWS reads /ws frames (one event object or an array of them).
func (b *browser) readWS(readers *sync.WaitGroup) {
	defer b.finish(readers)
	buf := make([]byte, 0, 64<<10)
	for {
		_, rd, err := b.ws.NextReader()
		if err != nil {
			if !b.closing.Load() {
				b.r.log.Warn("browser connection ended", "browser", b.idx, "err", err)
			}
			return
		}
		buf = buf[:0]
		skip := false
		for {
			if len(buf) == cap(buf) {
				buf = append(buf, 0)[:len(buf)]
			}
			n, err := rd.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
			if len(buf) >= len(evOther) && len(buf)-n < len(evOther) && bytes.HasPrefix(buf, evOther) {
				// Another package's event (a rollout's: big, sent
				// compressed): nothing measured is in it, so gorilla
				// skips the rest unread. A real browser inflates it on
				// its own CPU, not on the control plane's machine.
				skip = true
				break
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				if !b.closing.Load() {
					b.r.log.Warn("browser read", "browser", b.idx, "err", err)
				}
				return
			}
		}
		if skip {
			continue
		}
		b.markReady()
		if b.measure {
			now := time.Now()
			at := b.rxTime(now)
			b.frameData = buf
			b.frame(buf, at, now)
			b.frameData, b.prevAt = nil, at.UnixNano()
		}
		if cap(buf) > 1<<20 {
			buf = make([]byte, 0, 64<<10) // a snapshot: don't keep it
		}
	}
}

var (
	evOther  = []byte(`{"event":`)
	evDevice = []byte(`{"device":"`)
	evLabel  = []byte(`","label":"`)
	evValue  = []byte(`","value":`)
	evError  = []byte(`"label":"error"`)
	evCount  = []byte(`"label":"count"`)
)

// rxTime returns when the data just read reached the socket, or now
// without receive timestamps.
func (b *browser) rxTime(now time.Time) time.Time {
	if b.rx != nil {
		if ns := b.rx.last.Load(); ns != 0 {
			return time.Unix(0, ns)
		}
	}
	return now
}

// frame accounts for every event in a /ws frame, received at at (the
// socket) and read at now. Events are read in the
// compact form Switchyard and the Node-RED flow write:
// {"device":"<id>","label":"<label>","value":<value>}.
func (b *browser) frame(data []byte, at, now time.Time) {
	if bytes.Contains(data, evError) {
		b.errorEvts++
	}
	for {
		i := bytes.Index(data, evDevice)
		if i < 0 {
			return
		}
		data = data[i+len(evDevice):]
		j := bytes.IndexByte(data, '"')
		if j < 0 {
			return
		}
		id := data[:j]
		data = data[j:]
		if !bytes.HasPrefix(data, evLabel) {
			continue
		}
		data = data[len(evLabel):]
		j = bytes.IndexByte(data, '"')
		if j < 0 {
			return
		}
		label := data[:j]
		data = data[j:]
		if !bytes.HasPrefix(data, evValue) {
			continue
		}
		data = data[len(evValue):]
		switch string(label) {
		case "count":
			j = 0
			for j < len(data) && data[j] >= '0' && data[j] <= '9' {
				j++
			}
			if v, err := strconv.ParseInt(string(data[:j]), 10, 64); err == nil {
				b.onCount(id, v, at, now)
			}
		case "ledStatus":
			switch {
			case bytes.HasPrefix(data, []byte(`"LED ON"`)):
				b.onLED(id, true, at, now)
			case bytes.HasPrefix(data, []byte(`"LED OFF"`)):
				b.onLED(id, false, at, now)
			}
		}
	}
}

// readMQTT reads MQTT packets from the broker's websockets listener.
func (b *browser) readMQTT(readers *sync.WaitGroup) {
	defer b.finish(readers)
	ping := time.NewTicker(60 * time.Second)
	defer ping.Stop()
	for {
		select {
		case <-ping.C:
			if err := b.mq.ping(); err != nil {
				return
			}
		default:
		}
		h, body, err := b.mq.readPacket()
		if err != nil {
			if !b.closing.Load() {
				b.r.log.Warn("browser connection ended", "browser", b.idx, "err", err)
			}
			return
		}
		switch h >> 4 {
		case 9: // SUBACK
			b.markReady()
			continue
		case 3: // PUBLISH
		default:
			continue
		}
		if b.measure {
			now := time.Now()
			b.onPublish(h, body, b.rxTime(now), now)
		}
	}
}

// onPublish accounts for a PUBLISH packet (fixed header h, body) received
// at at, read at now.
func (b *browser) onPublish(h byte, body []byte, at, now time.Time) {
	topic, payload, ok := parsePublish(h, body)
	if !ok {
		return
	}
	id, kind, ok := b.r.topics.ParseBytes(topic)
	if !ok {
		return
	}
	switch kind {
	case devices.KindCount:
		if v, err := strconv.ParseInt(string(payload), 10, 64); err == nil {
			b.onCount(id, v, at, now)
		}
	case devices.KindLED:
		b.onLED(id, string(payload) == "ON", at, now)
	}
	b.prevAt = at.UnixNano()
}

// onCount accounts for a count event received at at, read at now.
func (b *browser) onCount(id []byte, v int64, at, now time.Time) {
	bi := b.r.boardIndex(id)
	if bi < 0 {
		return
	}
	bd := b.r.boards[bi]
	seq := v - b.r.base
	if seq < 0 || seq >= int64(len(bd.sent)) {
		return // another run's value (a snapshot), not ours
	}
	sent := bd.sent[seq].Load()
	if sent == 0 {
		return
	}
	if seq <= b.lastSeq[bi] {
		b.dups++
		return
	}
	b.lastSeq[bi] = seq
	if sent < b.r.winStart.Load() || sent >= b.r.winEnd.Load() {
		return
	}
	b.received.Add(1)
	b.lat.Record(at.Sub(time.Unix(0, sent)))
	b.r.record(sent, at.Sub(time.Unix(0, sent)))
	b.readLat.Record(now.Sub(time.Unix(0, sent)))
}

// onLED accounts for an LED event (received at at, read at now): a
// toggle's confirmation when it is the state the toggle in flight wants.
func (b *browser) onLED(id []byte, on bool, at, now time.Time) {
	t := b.r.toggle.Load()
	if t == nil || t.seq <= b.lastToggle || on != t.want {
		return
	}
	if bi := b.r.boardIndex(id); bi != t.board {
		return
	}
	b.lastToggle = t.seq
	b.tog.Record(at.Sub(t.sent))
	b.readTog.Record(now.Sub(t.sent))
	t.traceRx(b.idx, toggleRx{at: at.UnixNano(), read: now.UnixNano(), prev: b.prevAt, counts: bytes.Count(b.frameData, evCount)})
	t.confirm(at, now)
}
