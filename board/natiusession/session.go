// Package natiusession implements board.Session with the packet encoder and
// decoder of github.com/soypat/natiu-mqtt, for TinyGo targets (ESP32 with
// espradio WiFi) where Paho does not build.
//
// natiu's own Client publishes at QoS 0 only, and the contract wants QoS 1
// for status, led and info, so this package runs the MQTT 3.1.1 client side
// itself on natiu's codec: one goroutine reads packets (acknowledging QoS 1
// PUBLISHes and completing PUBACK and SUBACK waits) and one pings at half
// the keepalive and declares the connection lost when the broker falls
// silent for 1.5 keepalives. It has no build tags and builds with standard
// Go, so it is tested against a real broker like the Paho session.
package natiusession

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/soypat/natiu-mqtt"

	"switchyard/board"
	"switchyard/board/internal/connslot"
)

// Dialer opens the transport to the broker: a TCP connection (or TLS over
// one). If it has SetReadDeadline, the handshake is bounded by the context.
type Dialer func(ctx context.Context) (io.ReadWriteCloser, error)

// maxPacket bounds the topic of an inbound PUBLISH.
const maxPacket = 512

// Session is a board.Session over natiu-mqtt's codec. It is safe for
// concurrent use.
type Session struct {
	dial Dialer
	conn connslot.Slot[*conn] // the open connection, if any
}

var _ board.Session = (*Session)(nil)

// New returns a Session that connects through dial.
func New(dial Dialer) *Session { return &Session{dial: dial} }

// ErrNotConnected (board.ErrNotConnected) is returned by Subscribe and
// Publish without a connection.
var ErrNotConnected = board.ErrNotConnected

// conn is one MQTT connection.
type conn struct {
	rwc       io.ReadWriteCloser
	r         *bufio.Reader
	keepAlive time.Duration
	onMessage func(board.Message)
	onLost    func(error)

	txMu sync.Mutex // serialises writes
	tx   mqtt.Tx

	mu      sync.Mutex
	nextID  uint16
	waiting map[uint16]chan byte // packet id -> its ack's return code

	lastRx  atomic.Int64 // unix nanoseconds of the last packet read
	closing atomic.Bool  // Disconnect was called: no OnLost
	done    chan struct{}
	wg      sync.WaitGroup
}

// Connect dials, sends CONNECT and waits for the CONNACK; see
// board.Session.
func (s *Session) Connect(ctx context.Context, o board.ConnectOptions) error {
	rwc, err := s.dial(ctx)
	if err != nil {
		return fmt.Errorf("connect: dial: %w", err)
	}
	c := &conn{
		rwc:       rwc,
		r:         bufio.NewReaderSize(rwc, 256),
		keepAlive: o.KeepAlive,
		onMessage: o.OnMessage,
		onLost:    o.OnLost,
		waiting:   map[uint16]chan byte{},
		done:      make(chan struct{}),
	}
	c.tx.SetTxTransport(rwc)
	if err := c.handshake(ctx, o); err != nil {
		rwc.Close()
		return fmt.Errorf("connect: %w", err)
	}
	c.lastRx.Store(time.Now().UnixNano())
	c.wg.Add(2)
	go c.readLoop() // ends when the transport fails or is closed
	go c.pingLoop() // ends when done is closed
	if old := s.conn.Swap(c); old != nil {
		old.stop()
	}
	return nil
}

type readDeadliner interface{ SetReadDeadline(time.Time) error }

func (c *conn) handshake(ctx context.Context, o board.ConnectOptions) error {
	if d, ok := c.rwc.(readDeadliner); ok {
		if dl, ok := ctx.Deadline(); ok {
			_ = d.SetReadDeadline(dl)
			defer d.SetReadDeadline(time.Time{})
		}
	}
	vc := mqtt.VariablesConnect{
		ClientID:      []byte(o.ClientID),
		Protocol:      []byte("MQTT"),
		ProtocolLevel: 4,
		KeepAlive:     uint16(o.KeepAlive / time.Second),
		CleanSession:  true,
	}
	if o.Username != "" {
		vc.Username, vc.Password = []byte(o.Username), []byte(o.Password)
	}
	if w := o.Will; w != nil {
		vc.WillTopic, vc.WillMessage = []byte(w.Topic), w.Payload
		vc.WillQoS, vc.WillRetain = mqtt.QoSLevel(w.QoS), w.Retained
	}
	if err := c.tx.WriteConnect(&vc); err != nil {
		return fmt.Errorf("send CONNECT: %w", err)
	}
	h, _, err := mqtt.DecodeHeader(c.r)
	if err != nil {
		return fmt.Errorf("read CONNACK: %w", err)
	}
	if h.Type() != mqtt.PacketConnack || h.RemainingLength != 2 {
		return fmt.Errorf("read CONNACK: got %s", h.Type())
	}
	var b [2]byte
	if _, err := io.ReadFull(c.r, b[:]); err != nil {
		return fmt.Errorf("read CONNACK: %w", err)
	}
	if b[1] != 0 {
		return fmt.Errorf("refused by the broker: %w", mqtt.ConnectReturnCode(b[1]))
	}
	return nil
}

// readLoop reads packets until the transport fails or is closed.
func (c *conn) readLoop() {
	defer c.wg.Done()
	topic := make([]byte, maxPacket)
	err := c.readPackets(topic)
	c.close(true)
	if !c.closing.Load() && c.onLost != nil {
		c.onLost(err)
	}
}

func (c *conn) readPackets(topic []byte) error {
	dec := mqtt.DecoderNoAlloc{UserBuffer: topic}
	for {
		h, _, err := mqtt.DecodeHeader(c.r)
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		c.lastRx.Store(time.Now().UnixNano())
		switch h.Type() {
		case mqtt.PacketPublish:
			qos := h.Flags().QoS()
			vp, n, err := dec.DecodePublish(c.r, qos)
			if err != nil {
				return fmt.Errorf("read PUBLISH: %w", err)
			}
			payload := make([]byte, int(h.RemainingLength)-n)
			if _, err := io.ReadFull(c.r, payload); err != nil {
				return fmt.Errorf("read PUBLISH: %w", err)
			}
			if qos == mqtt.QoS1 {
				if err := c.write(func() error { return c.tx.WriteIdentified(mqtt.PacketPuback, vp.PacketIdentifier) }); err != nil {
					return fmt.Errorf("send PUBACK: %w", err)
				}
			}
			if c.onMessage != nil {
				c.onMessage(board.Message{Topic: string(vp.TopicName), Payload: payload, QoS: byte(qos), Retained: h.Flags().Retain()})
			}
		case mqtt.PacketPuback, mqtt.PacketSuback:
			b := make([]byte, h.RemainingLength)
			if len(b) < 2 {
				return fmt.Errorf("read %s: too short", h.Type())
			}
			if _, err := io.ReadFull(c.r, b); err != nil {
				return fmt.Errorf("read %s: %w", h.Type(), err)
			}
			code := byte(0)
			if h.Type() == mqtt.PacketSuback && len(b) > 2 {
				code = b[2]
			}
			c.complete(uint16(b[0])<<8|uint16(b[1]), code)
		default: // PINGRESP and anything unexpected: skip the body
			if _, err := io.CopyN(io.Discard, c.r, int64(h.RemainingLength)); err != nil {
				return fmt.Errorf("read %s: %w", h.Type(), err)
			}
		}
	}
}

// pingLoop sends PINGREQ at half the keepalive and closes the connection
// when nothing has come from the broker for 1.5 keepalives.
func (c *conn) pingLoop() {
	defer c.wg.Done()
	if c.keepAlive <= 0 {
		<-c.done
		return
	}
	t := time.NewTicker(c.keepAlive / 2)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case now := <-t.C:
			if now.Sub(time.Unix(0, c.lastRx.Load())) > c.keepAlive*3/2 {
				c.rwc.Close() // the read loop reports the loss
				return
			}
			if c.write(func() error { return c.tx.WriteSimple(mqtt.PacketPingreq) }) != nil {
				return // the read loop reports the loss
			}
		}
	}
}

func (c *conn) write(f func() error) error {
	c.txMu.Lock()
	defer c.txMu.Unlock()
	return f()
}

// expect registers a wait for the ack of a new packet id.
func (c *conn) expect() (uint16, chan byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextID++
	if c.nextID == 0 {
		c.nextID = 1
	}
	ch := make(chan byte, 1)
	c.waiting[c.nextID] = ch
	return c.nextID, ch
}

func (c *conn) forget(id uint16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.waiting, id)
}

func (c *conn) complete(id uint16, code byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch, ok := c.waiting[id]; ok {
		ch <- code
		delete(c.waiting, id)
	}
}

// await waits for the ack of id.
func (c *conn) await(ctx context.Context, id uint16, ch chan byte) (byte, error) {
	defer c.forget(id)
	select {
	case code := <-ch:
		return code, nil
	case <-c.done:
		return 0, errors.New("connection closed")
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// close ends the connection once; with lost unset it first sends
// DISCONNECT, so the broker drops the Will.
func (c *conn) close(lost bool) {
	if !lost {
		c.closing.Store(true) // before done, so the read loop stays quiet
	}
	c.mu.Lock()
	select {
	case <-c.done:
		c.mu.Unlock()
		return
	default:
		close(c.done)
	}
	c.mu.Unlock()
	if !lost {
		_ = c.write(func() error { return c.tx.WriteSimple(mqtt.PacketDisconnect) })
	}
	c.rwc.Close()
}

// stop closes the connection cleanly and waits for its goroutines.
func (c *conn) stop() {
	c.close(false)
	c.wg.Wait()
}

// Subscribe subscribes and waits for the SUBACK; a refused subscription is
// an error.
func (s *Session) Subscribe(ctx context.Context, filter string, qos byte) error {
	c, err := s.conn.Get()
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", filter, err)
	}
	id, ch := c.expect()
	vs := mqtt.VariablesSubscribe{
		PacketIdentifier: id,
		TopicFilters:     []mqtt.SubscribeRequest{{TopicFilter: []byte(filter), QoS: mqtt.QoSLevel(qos)}},
	}
	if err := c.write(func() error { return c.tx.WriteSubscribe(vs) }); err != nil {
		c.forget(id)
		return fmt.Errorf("subscribe %s: %w", filter, err)
	}
	code, err := c.await(ctx, id, ch)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", filter, err)
	}
	if code >= 0x80 {
		return fmt.Errorf("subscribe %s: refused by the broker (code %#x)", filter, code)
	}
	return nil
}

// Publish publishes at QoS 0 (returns once written) or 1 (returns once
// acknowledged).
func (s *Session) Publish(ctx context.Context, topic string, payload []byte, qos byte, retain bool) error {
	c, err := s.conn.Get()
	if err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	if qos > 1 {
		return fmt.Errorf("publish %s: QoS %d not supported", topic, qos)
	}
	flags, err := mqtt.NewPublishFlags(mqtt.QoSLevel(qos), false, retain)
	if err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	h, err := mqtt.NewHeader(mqtt.PacketPublish, flags, 0) // length set by the encoder
	if err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	vp := mqtt.VariablesPublish{TopicName: []byte(topic)}
	var ch chan byte
	if qos == 1 {
		vp.PacketIdentifier, ch = c.expect()
	}
	if err := c.write(func() error { return c.tx.WritePublishPayload(h, vp, payload) }); err != nil {
		c.forget(vp.PacketIdentifier)
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	if ch == nil {
		return nil
	}
	if _, err := c.await(ctx, vp.PacketIdentifier, ch); err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	return nil
}

// Disconnect sends DISCONNECT, closes the transport and waits for the
// session's goroutines. It is idempotent.
func (s *Session) Disconnect(context.Context) error {
	if c := s.conn.Take(); c != nil {
		c.stop()
	}
	return nil
}
